"""IAM enforcement against the resource a call touches (an extension of the local emulator).

moto enforces identity policies once enforcement is on (``INITIAL_NO_AUTH_ACTION_COUNT``, or
``POST /moto-api/reset-auth``), but for most services it checks the action against resource
``*`` only, takes the action's service from the signature's credential scope (``monitoring``
for CloudWatch) and its name from the API operation (``Invoke``, ``TransactWriteItems``). A
role granted ``dynamodb:GetItem`` on one table is then refused everything (its ``Resource`` never
matches ``*``), and a role granted ``*`` is never caught touching another table.

This extension answers each call of DynamoDB, SQS, SNS, KMS, Lambda and CloudWatch with the
(IAM action, resource ARN) pairs AWS evaluates for it (:func:`iam_targets`), and checks every
pair against the caller's policies:

- DynamoDB: the table (or ``table/<t>/index/<i>`` for an index query), every table of a batch,
  and ``TransactWriteItems`` / ``TransactGetItems`` as the per-item actions AWS requires
  (``PutItem``, ``UpdateItem``, ``DeleteItem``, ``ConditionCheckItem``, ``GetItem``), plus
  ``kms:Decrypt`` on each table's customer managed key (DynamoDB decrypts the table key as the caller);
- SQS: the queue (a batch operation as its single-message action: ``DeleteMessageBatch`` is
  ``sqs:DeleteMessage``), plus ``kms:GenerateDataKey`` / ``kms:Decrypt`` on the queue's KMS key for a
  send or receive on an encrypted queue (AWS makes the caller's own KMS permissions count there);
- SNS: the topic, plus ``kms:GenerateDataKey`` and ``kms:Decrypt`` on the key of an encrypted topic
  for ``Publish``;
- KMS: the key ARN, an alias or key id resolved (for ``Decrypt``, the key named in the ciphertext);
- Lambda: the function (``Invoke`` is ``lambda:InvokeFunction``) or the event source mapping;
- CloudWatch: ``cloudwatch:`` actions, on the alarm for alarm writes, ``*`` where AWS only
  accepts ``*`` (``PutMetricData``, ``GetMetricData``, ``DescribeAlarms``).

Calls it does not know fall back to moto's own check. With enforcement off nothing changes.

Every decision (caller, action, resource, allowed) of an assumed role, and every refusal, is kept
in :data:`DECISIONS` and, when ``EMULATOR_IAM_DECISIONS`` names a file, appended to it as one JSON
line: what a drill's callers used, for the coverage of their roles' grants (:mod:`tools.iam_coverage`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

#: (IAM action, resource ARN) pairs one call is authorized against.
Targets = list[tuple[str, str]]

#: DynamoDB operations whose IAM action is not ``dynamodb:<operation>``: one action per item kind.
TRANSACT_WRITE_ACTIONS: Mapping[str, str] = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
#: DynamoDB operations that name no table: AWS authorizes them on ``*``.
DYNAMODB_UNSCOPED = frozenset({"ListTables", "ListGlobalTables", "ListBackups", "DescribeLimits", "ListStreams"})
#: Lambda API operations whose IAM action has another name.
LAMBDA_ACTIONS: Mapping[str, str] = {"Invoke": "InvokeFunction"}
#: Lambda operations AWS authorizes on ``*`` only.
LAMBDA_UNSCOPED = frozenset({"ListFunctions", "ListEventSourceMappings", "ListLayers", "GetAccountSettings"})
#: CloudWatch operations that accept a resource: the alarms they name.
CLOUDWATCH_ALARM_OPERATIONS = frozenset(
    {
        "PutMetricAlarm",
        "PutCompositeAlarm",
        "DeleteAlarms",
        "SetAlarmState",
        "EnableAlarmActions",
        "DisableAlarmActions",
    }
)
#: SQS batch operations: AWS authorizes each as its single-message action.
SQS_BATCH_ACTIONS: Mapping[str, str] = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
#: SQS operations that put messages on the queue (need the queue key's GenerateDataKey) or take them off.
SQS_SENDS = frozenset({"SendMessage", "SendMessageBatch"})
SQS_RECEIVES = frozenset({"ReceiveMessage"})


def _param(response: Any, name: str) -> Any:
    """A request parameter as moto parsed it (JSON body, query string or path)."""
    return response._get_param(name)


def _dynamodb_table_arn(response: Any, table: str) -> str:
    if table.startswith("arn:"):
        return table
    return f"arn:aws:dynamodb:{response.region}:{response.current_account}:table/{table}"


def dynamodb_targets(response: Any, operation: str) -> Targets | None:
    """DynamoDB: the table (or index) each item or request touches, and each table's customer managed key."""
    targets = _dynamodb_resources(response, operation)
    return targets and targets + _table_keys(response, targets)


def _table_keys(response: Any, targets: Targets) -> Targets:
    """``kms:Decrypt`` on the customer managed key of every table in ``targets``.

    DynamoDB decrypts a table's key in the caller's context (cached per principal for five
    minutes), so the caller needs ``kms:Decrypt`` on it; AWS managed keys allow that by their policy.
    """
    from moto.dynamodb.models import dynamodb_backends
    from moto.kms.models import kms_backends

    keys: Targets = []
    for arn in dict.fromkeys(arn.split("/index/")[0] for _action, arn in targets if ":table/" in arn):
        region, name = arn.split(":")[3], arn.split(":table/")[1].split("/")[0]
        table = dynamodb_backends[response.current_account][region].tables.get(name)
        key_id = ((table.sse_specification or {}) if table is not None else {}).get("KMSMasterKeyId")
        key_arn = _kms_key_arn(response.current_account, region, key_id)
        if key_arn is None:
            continue
        key = kms_backends[response.current_account][key_arn.split(":")[3]].keys.get(key_arn.rsplit("/", 1)[-1])
        if key is not None and key.key_manager == "CUSTOMER" and ("kms:Decrypt", key_arn) not in keys:
            keys.append(("kms:Decrypt", key_arn))
    return keys


def _dynamodb_resources(response: Any, operation: str) -> Targets | None:
    """The (action, table or index ARN) pairs of a DynamoDB call."""
    if operation in DYNAMODB_UNSCOPED:
        return [(f"dynamodb:{operation}", "*")]
    if operation == "TransactWriteItems":
        targets: Targets = []
        for item in _param(response, "TransactItems") or []:
            for kind, action in TRANSACT_WRITE_ACTIONS.items():
                if kind in item:
                    targets.append((action, _dynamodb_table_arn(response, item[kind]["TableName"])))
        return targets
    if operation == "TransactGetItems":
        return [
            ("dynamodb:GetItem", _dynamodb_table_arn(response, item["Get"]["TableName"]))
            for item in _param(response, "TransactItems") or []
        ]
    if operation in {"BatchGetItem", "BatchWriteItem"}:
        tables = _param(response, "RequestItems") or {}
        return [(f"dynamodb:{operation}", _dynamodb_table_arn(response, table)) for table in tables]
    stream = _param(response, "StreamArn")
    if stream:
        return [(f"dynamodb:{operation}", stream)]
    table = _param(response, "TableName") or _param(response, "ResourceArn")
    if not table:
        return None
    arn = _dynamodb_table_arn(response, table)
    index = _param(response, "IndexName") if operation in {"Query", "Scan"} else None
    return [(f"dynamodb:{operation}", f"{arn}/index/{index}" if index else arn)]


def _kms_key_arn(account: str, region: str, key: str | None) -> str | None:
    """The ARN of the key that ``key`` (key id, key ARN, alias name or alias ARN) names, if it exists."""
    if not key:
        return None
    from moto.kms.models import kms_backends

    if key.startswith("arn:"):
        region = key.split(":")[3]
    backend = kms_backends[account][region]
    try:
        return str(backend.keys[backend.any_id_to_key_id(key)].arn)
    except (KeyError, TypeError, AttributeError):
        return None


def kms_targets(response: Any, operation: str) -> Targets | None:
    """KMS: the key the call uses (for ``Decrypt`` without ``KeyId``, the key inside the ciphertext)."""
    key = _param(response, "KeyId") or _param(response, "TargetKeyId")
    if not key and operation == "Decrypt":
        key = _ciphertext_key(response)
    if not key:
        return None
    arn = _kms_key_arn(response.current_account, response.region, key)
    return [(f"kms:{operation}", arn)] if arn else None


def _ciphertext_key(response: Any) -> str | None:
    """The key id a moto ciphertext blob was made with."""
    import base64
    import struct

    from moto.kms.utils import _deserialize_ciphertext_blob

    blob = _param(response, "CiphertextBlob")
    if not blob:
        return None
    try:
        raw = blob if isinstance(blob, bytes) else base64.b64decode(blob)
        return str(_deserialize_ciphertext_blob(raw).key_id)
    except (ValueError, TypeError, AttributeError, struct.error):
        return None


def sqs_targets(response: Any, operation: str) -> Targets | None:
    """SQS: the queue, and its KMS key for sends and receives on an encrypted queue."""
    from moto.sqs.exceptions import QueueDoesNotExist

    try:
        queue = response.sqs_backend.get_queue(response._get_queue_name())
    except (QueueDoesNotExist, AttributeError, KeyError):
        return None
    targets: Targets = [(f"sqs:{SQS_BATCH_ACTIONS.get(operation, operation)}", queue.queue_arn)]
    key = _kms_key_arn(response.current_account, response.region, getattr(queue, "kms_master_key_id", None))
    if key and operation in SQS_SENDS:
        targets += [("kms:GenerateDataKey", key), ("kms:Decrypt", key)]
    elif key and operation in SQS_RECEIVES:
        targets.append(("kms:Decrypt", key))
    return targets


def sns_targets(response: Any, operation: str) -> Targets | None:
    """SNS: the topic, and its KMS key for a publish to an encrypted topic."""
    topic_arn = _param(response, "TopicArn") or _param(response, "TargetArn")
    if not topic_arn:
        return [(f"sns:{operation}", "*")] if operation.startswith("List") else None
    targets: Targets = [(f"sns:{operation}", topic_arn)]
    if operation == "Publish":
        from moto.sns.exceptions import TopicNotFound

        try:
            topic = response.backend.get_topic(topic_arn)
        except TopicNotFound:
            return targets  # moto answers NotFound itself
        key = _kms_key_arn(response.current_account, response.region, topic.kms_master_key_id or None)
        if key:
            targets += [("kms:GenerateDataKey", key), ("kms:Decrypt", key)]
    return targets


def lambda_targets(response: Any, operation: str) -> Targets | None:
    """Lambda: the function, or the event source mapping, the call names."""
    action = f"lambda:{LAMBDA_ACTIONS.get(operation, operation)}"
    if operation in LAMBDA_UNSCOPED:
        return [(action, "*")]
    prefix = f"arn:aws:lambda:{response.region}:{response.current_account}"
    uuid = (response.uri_match or {}).get("UUID")
    if uuid:
        return [(action, f"{prefix}:event-source-mapping:{uuid}")]
    name = (response.uri_match or {}).get("function_name") or _param(response, "FunctionName")
    if not name:
        return None
    name = name.split(":")[6] if name.startswith("arn:") else name.split(":")[0]
    return [(action, f"{prefix}:function:{name}")]


def cloudwatch_targets(response: Any, operation: str) -> Targets | None:
    """CloudWatch: ``cloudwatch:`` actions; alarm writes on their alarms, the rest on ``*``."""
    action = f"cloudwatch:{operation}"
    if operation not in CLOUDWATCH_ALARM_OPERATIONS:
        return [(action, "*")]
    names = _param(response, "AlarmNames") or [_param(response, "AlarmName")]
    prefix = f"arn:aws:cloudwatch:{response.region}:{response.current_account}:alarm"
    return [(action, f"{prefix}:{name}") for name in names if name] or None


#: Environment variable naming the JSON-lines file decisions are appended to.
DECISIONS_ENV = "EMULATOR_IAM_DECISIONS"
#: Every decision of this process: ``{"principal", "action", "resource", "allowed"}``.
DECISIONS: list[dict[str, object]] = []


def record(principal: str, action: str, resource: str, allowed: bool) -> None:
    """Keep one authorization decision (and append it to the decisions file, if one is set).

    Only what is read later: every call of an assumed role (a function's, for the coverage) and
    every refusal. An IAM user's allowed calls (a drill harness's, most of a run) are not kept.
    """
    if allowed and ":assumed-role/" not in principal:
        return
    decision = {"principal": principal, "action": action, "resource": resource, "allowed": allowed}
    DECISIONS.append(decision)
    path = os.environ.get(DECISIONS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(decision, sort_keys=True) + "\n")


#: moto service names whose AWS API speaks JSON (errors as ``{"__type": ...}``); the others speak XML.
JSON_PROTOCOL_SERVICES = frozenset({"dynamodb", "sqs", "kms", "awslambda"})

#: moto service name -> the function that resolves its calls.
RESOLVERS: Mapping[str, Callable[[Any, str], Targets | None]] = {
    "dynamodb": dynamodb_targets,
    "sqs": sqs_targets,
    "sns": sns_targets,
    "kms": kms_targets,
    "awslambda": lambda_targets,
    "cloudwatch": cloudwatch_targets,
}


def iam_targets(response: Any) -> Targets | None:
    """The (action, resource) pairs AWS would authorize this call on, or ``None`` to leave it to moto."""
    resolver = RESOLVERS.get(getattr(response, "service_name", "") or "")
    if resolver is None:
        return None
    return resolver(response, response._get_action())


def install() -> None:
    """Patch moto's authorization of normal (non-S3) calls to check each of :func:`iam_targets`."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.exceptions import JsonRESTError
    from moto.iam.access_control import IAMRequest
    from werkzeug.exceptions import HTTPException

    original = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action

    def request_for(action: str, json_protocol: bool) -> type[IAMRequest]:
        class ScopedIAMRequest(IAMRequest):
            """moto's IAM request, evaluated for ``action`` instead of ``<credential scope>:<operation>``."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self._action = action

            def _create_aws_request(self) -> Any:
                # moto signs an empty body as its parsed parameters (``self._data``), so every GET of
                # a REST API (Lambda's GetFunctionConfiguration) fails its signature check.
                request = super()._create_aws_request()
                if self._method in {"GET", "DELETE", "HEAD"} and not self._body:
                    request.data = b""
                return request

            def check_action_permitted(self, resource: str) -> None:
                try:
                    super().check_action_permitted(resource)
                except HTTPException:
                    record(self._access_key.arn, action, resource, allowed=False)
                    raise
                record(self._access_key.arn, action, resource, allowed=True)

            def _raise_access_denied(self) -> None:
                if not json_protocol:
                    super()._raise_access_denied()
                # JSON-protocol services answer a JSON error, as AWS does (moto answers XML, which
                # botocore cannot read: the caller would see error code "403").
                error = JsonRESTError(
                    "AccessDeniedException",
                    f"User: {self._access_key.arn} is not authorized to perform: {action}",
                )
                error.code = 403
                raise error

        return ScopedIAMRequest

    def authorize(self: Any, resource: str = "*") -> None:
        enforcing = ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT
        targets = iam_targets(self) if enforcing else None
        if not targets:
            original(self, resource)
            return
        json_protocol = self.service_name in JSON_PROTOCOL_SERVICES
        for action, arn in targets:
            self._authenticate_and_authorize_action(request_for(action, json_protocol), arn)

    ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = authorize  # type: ignore[method-assign]
