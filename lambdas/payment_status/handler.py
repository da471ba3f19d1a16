"""``GET /payments/{id}``: the payment with its card token masked; 404 when unknown, 400 on a bad id.

Path input gets the rules of ``POST /payments``: whatever the event holds, a bad id is a 400
naming ``id`` (counted as ``PaymentRejected`` by code), never a 5xx, and the id is never echoed
or logged. 503 is for this region's own faults (DynamoDB) only.
"""

from __future__ import annotations

from typing import Any

from payments_common import clients, config, observability, responses, tenancy
from payments_common.ids import is_payment_id

SETTINGS = config.load()
logger = observability.logger()
metrics = observability.metrics(SETTINGS.region)
#: Codes this function answers 4xx with: the ``code`` dimension of its rejection metric.
ERROR_CODES = frozenset({"invalid_payment_id", "unauthenticated"})
DYNAMODB = clients.client("dynamodb", max_attempts=3)

#: Attributes a client may see (``request_hash`` and internals stay inside).
VISIBLE = (
    "payment_id",
    "status",
    "amount",
    "currency",
    "merchant_id",
    "created_at",
    "processed_at",
    "home_region",
    "processed_region",
    "decision_reason",
)


def mask_token(token: str) -> str:
    """Everything but the last four characters replaced by ``*``."""
    return "*" * max(len(token) - 4, 0) + token[-4:]


def view(item: dict[str, Any]) -> dict[str, Any]:
    """A transactions item as the client sees it."""
    body: dict[str, Any] = {name: item[name]["S"] for name in VISIBLE if "S" in item.get(name, {})}
    body["version"] = int(item["version"]["N"])
    body["card_token"] = mask_token(item["card_token"]["S"])
    return body


def payment_id_from(event: Any) -> str | None:
    """The ``{id}`` path parameter (``id`` or ``payment_id``), when present and a string."""
    params = event.get("pathParameters") if isinstance(event, dict) else None
    if not isinstance(params, dict):
        return None
    value = params.get("id", params.get("payment_id"))
    return value if isinstance(value, str) else None


def handle(event: Any) -> dict[str, Any]:
    """Look the payment up in this region's replica; another merchant's payment is "not found"."""
    merchant = tenancy.authenticated_merchant(event)
    if merchant is None:
        observability.count_rejection(metrics, "unauthenticated", ERROR_CODES)
        return responses.error(401, "unauthenticated", "no authenticated merchant", "Authorization")
    payment_id = payment_id_from(event)
    if payment_id is None or not is_payment_id(payment_id):
        observability.count_rejection(metrics, "invalid_payment_id", ERROR_CODES)
        return responses.error(400, "invalid_payment_id", "the payment id must be a lowercase UUID", "id")
    item = DYNAMODB.get_item(
        TableName=SETTINGS.transactions_table, Key={"payment_id": {"S": payment_id}}, ConsistentRead=True
    ).get("Item")
    if not item or item.get("merchant_id", {}).get("S") != merchant:
        return responses.error(404, "not_found", "no payment with this id", "id")
    return responses.json_response(200, view(item))


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (API Gateway REST proxy integration)."""
    try:
        return handle(event)
    except Exception:
        logger.exception("payment lookup failed")
        return responses.unavailable("temporarily_unavailable", "retry shortly")
