"""API Gateway ``REQUEST`` authorizer: ``Authorization: Bearer <key>`` -> merchant id and key id.

Checks the key against this region's replica of the merchants table, so a key works in both
regions without the client knowing which one answers. A valid, active key gets a policy for
every payment route (API Gateway caches the answer per ``Authorization`` header, for every
route) and the context ``{"merchant_id", "key_id"}`` the handlers read. Anything else gets a
deny-all policy (403 ``access_denied`` at the edge), cached the same way: a malformed key,
another environment's key (refused before any read), an unknown, revoked or wrong secret.
A DynamoDB failure raises, which API Gateway answers as ``AUTHORIZER_FAILURE`` (503, not cached).

Never logged: the header, the key or its secret. Only the key id and the reason.

The policy is built here (a few lines) rather than with Powertools' ``APIGatewayAuthorizerResponse``:
importing it loads the whole ``data_classes`` package, about 65 ms of every cold start.
"""

from __future__ import annotations

import re
from typing import Any

from payments_common import clients, config, credentials, observability

SETTINGS = config.load()
MERCHANTS_TABLE = SETTINGS.require("merchants_table")
logger = observability.logger()
metrics = observability.metrics(SETTINGS.region)
#: An authorizer answers within API Gateway's budget or not at all: fail fast, one retry.
DYNAMODB = clients.client("dynamodb", max_attempts=2, connect_timeout=1.0, read_timeout=2.0)

#: Routes a valid key may call; the cached policy must cover all of them (the cache is per header).
PAYMENT_ROUTES = (("POST", "payments"), ("GET", "payments/*"))
#: ``arn:<partition>:execute-api:<region>:<account>:<api id>/<stage>/<method>/<path>``
_METHOD_ARN = re.compile(r"^(arn:[a-z-]+:execute-api:[a-z0-9-]+:\d{12}:[a-z0-9]+/[A-Za-z0-9_-]+)/[A-Z*]+/.*$")


def policy(principal_id: str, effect: str, resources: list[str]) -> dict[str, Any]:
    """An authorizer answer: ``execute-api:Invoke`` on ``resources``."""
    statement = {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resources}
    return {"principalId": principal_id, "policyDocument": {"Version": "2012-10-17", "Statement": [statement]}}


def deny_all() -> dict[str, Any]:
    """Deny every route (API Gateway answers 403 ``access_denied``)."""
    return policy("anonymous", "Deny", ["*"])


def header(event: dict[str, Any], name: str) -> Any:
    """A header of a REQUEST authorizer event, by case-insensitive name (None when absent)."""
    headers = event.get("headers")
    if not isinstance(headers, dict):
        return None
    lowered = name.lower()
    return next((value for key, value in headers.items() if isinstance(key, str) and key.lower() == lowered), None)


def lookup(key_id: str) -> dict[str, Any] | None:
    """The key's record in this region's replica."""
    return DYNAMODB.get_item(TableName=MERCHANTS_TABLE, Key={"key_id": {"S": key_id}}, ConsistentRead=True).get("Item")


def decide(event: dict[str, Any]) -> tuple[credentials.Principal | None, str, str | None]:
    """(principal or None, reason, key id when well formed). Reads the table only for this environment's keys."""
    key = credentials.parse(credentials.bearer(header(event, "Authorization")))
    if key is None:
        return None, "malformed", None
    if key.suffix != SETTINGS.environment_suffix:
        return None, "other_environment", key.key_id
    principal = credentials.authenticate(lookup(key.key_id), key)
    return principal, "ok" if principal else "unknown_or_revoked", key.key_id


def allow(method_arn: str, principal: credentials.Principal) -> dict[str, Any]:
    """Allow every payment route of this API and stage (from ``method_arn``), with the merchant in the context."""
    stage_arn = _METHOD_ARN.fullmatch(method_arn)
    if stage_arn is None:
        return deny_all()
    answer = policy(principal.merchant_id, "Allow", [f"{stage_arn[1]}/{m}/{path}" for m, path in PAYMENT_ROUTES])
    answer["context"] = {"merchant_id": principal.merchant_id, "key_id": principal.key_id}
    return answer


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (REST API ``REQUEST`` authorizer)."""
    if not isinstance(event, dict) or not isinstance(event.get("methodArn"), str):
        logger.warning("not an authorizer event")
        return deny_all()
    principal, reason, key_id = decide(event)
    if principal is None:
        logger.info("credential refused", extra={"reason": reason, "key_id": key_id})
        metrics.add_metric(name="CredentialRefused", unit="Count", value=1)
        return deny_all()
    logger.info("credential accepted", extra={"merchant_id": principal.merchant_id, "key_id": principal.key_id})
    metrics.add_metric(name="CredentialAccepted", unit="Count", value=1)
    return allow(event["methodArn"], principal)
