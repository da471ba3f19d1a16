"""``POST /payments``: check the request, write the payment once as PENDING, enqueue it, answer 202.

Exactly once, across retries and regions:

1. every check runs before any I/O (:mod:`payments_common.payment_request`): a rejected
   request reads and writes nothing;
2. a region that does not hold a valid lease (standby, lapsed, unknown) answers 421
   ``region_not_active`` + ``Retry-After`` and writes nothing (docs/design.md, lease protocol);
3. Powertools idempotency (idempotency global table) replays the first answer for the same
   ``Idempotency-Key`` and refuses the key with a different body (422) or while the first
   attempt is still running (409);
4. the payment id is ``uuid5(merchant_id, key)`` and the write is conditional
   (``attribute_not_exists(payment_id)``), so even two regions racing on one key make one
   payment id. When it already exists (the idempotency record expired, or a first attempt
   failed after its write), the existing payment's answer is returned; while it is still
   PENDING it is enqueued again, which is safe because processing is conditional on status
   and version, and is what recovers a first attempt that died between write and enqueue.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from botocore.exceptions import ClientError
from payments_common import clients, config, observability, payment_request, responses, tenancy
from payments_common.control import LeaseCache, epoch_ms
from payments_common.payment_request import ParsedRequest, RequestError
from payments_common.timeutil import iso, utc_now

SETTINGS = config.load()
QUEUE_URL = SETTINGS.require("processing_queue_url")
logger = observability.logger()
metrics = observability.metrics(SETTINGS.region)

DYNAMODB = clients.client("dynamodb")
SQS = clients.client("sqs")
LEASES = LeaseCache(DYNAMODB, SETTINGS.control_table, SETTINGS.region)
#: Shards of the sparse ``pending-index`` GSI (spreads PENDING payments over partitions).
PENDING_SHARDS = 8

#: Idempotency records live a day: a client retry within a day replays the first answer.
IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60
IDEMPOTENCY = IdempotencyConfig(
    event_key_jmespath="idempotency_key",
    payload_validation_jmespath="request",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
    hash_function="sha256",
)
PERSISTENCE = DynamoDBPersistenceLayer(table_name=SETTINGS.idempotency_table, boto3_client=DYNAMODB)


class PaymentConflictError(Exception):
    """A payment with this id exists with different details: the key was reused for another payment."""


def pending_shard(payment_id: str) -> str:
    """``p0``..``p7``: the ``pending-index`` partition of a PENDING payment (removed when final)."""
    return f"p{int(payment_id.replace('-', '')[-2:], 16) % PENDING_SHARDS}"


def payment_item(request: ParsedRequest, region: str, created_at: str, epoch: int) -> dict[str, Any]:
    """The PENDING transactions item, as a low-level DynamoDB item."""
    canonical = request.payment.canonical()
    return {
        "accepted_epoch": {"N": str(epoch)},
        "pending_shard": {"S": pending_shard(request.payment_id)},
        "payment_id": {"S": request.payment_id},
        "status": {"S": "PENDING"},
        "version": {"N": "1"},
        "home_region": {"S": region},
        "created_at": {"S": created_at},
        "merchant_id": {"S": canonical["merchant_id"]},
        "amount": {"S": canonical["amount"]},
        "currency": {"S": canonical["currency"]},
        "card_token": {"S": canonical["card_token"]},
        "request_hash": {"S": request.request_hash},
    }


def enqueue(payment_id: str) -> None:
    """Hand the payment to the region's processing queue."""
    SQS.send_message(QueueUrl=QUEUE_URL, MessageBody=json.dumps({"payment_id": payment_id}))


def create_payment(request: ParsedRequest) -> dict[str, str]:
    """Write the payment once and enqueue it; return the answer the client gets."""
    item = payment_item(request, SETTINGS.region, iso(utc_now()), LEASES.lease().epoch)
    try:
        DYNAMODB.put_item(
            TableName=SETTINGS.transactions_table,
            Item=item,
            ConditionExpression="attribute_not_exists(payment_id)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        return existing_payment(request, exc.response.get("Item"))
    enqueue(request.payment_id)
    logger.info("payment accepted", extra={"payment_id": request.payment_id, "home_region": SETTINGS.region})
    metrics.add_metric(name="PaymentAccepted", unit="Count", value=1)
    return {"payment_id": request.payment_id, "status": "PENDING"}


def existing_payment(request: ParsedRequest, item: dict[str, Any] | None) -> dict[str, str]:
    """The answer for a payment id that already exists; re-enqueue it while it is still PENDING.

    ``item`` is the existing payment DynamoDB returns with the refused conditional put
    (``ReturnValuesOnConditionCheckFailure``): the condition fails only when the item exists, so it is
    always there, and the role has no GetItem on the table.
    """
    if not item:
        raise RuntimeError("the refused conditional write returned no item")
    if item.get("request_hash", {}).get("S") != request.request_hash:
        raise PaymentConflictError(request.payment_id)
    status = item["status"]["S"]
    if status == "PENDING":
        enqueue(request.payment_id)
    logger.info("payment already exists", extra={"payment_id": request.payment_id, "status": status})
    metrics.add_metric(name="PaymentReplayed", unit="Count", value=1)
    return {"payment_id": request.payment_id, "status": status}


@idempotent_function(
    data_keyword_argument="data",
    persistence_store=PERSISTENCE,
    config=IDEMPOTENCY,
    key_prefix=f"{SETTINGS.function_name}.create_payment",
)
def create_payment_once(*, data: dict[str, Any], request: ParsedRequest) -> dict[str, str]:
    """:func:`create_payment` behind Powertools idempotency (``data`` is what gets hashed)."""
    return create_payment(request)


def accepted(answer: dict[str, str]) -> dict[str, Any]:
    """202 with the payment id and its status."""
    return responses.json_response(202, answer, headers={"Location": f"/payments/{answer['payment_id']}"})


def handle(event: Any, context: Any) -> dict[str, Any]:
    """The request flow; every outcome is a 2xx, a 4xx, or a 503 the client may retry."""
    metrics.add_metric(name="PaymentRequest", unit="Count", value=1)
    try:
        merchant = tenancy.require_merchant(event)
        request = payment_request.parse(event)
        tenancy.bind(request, merchant)
    except RequestError as exc:
        logger.info("request rejected", extra={"error": exc.code, "field": exc.field, "cause": exc.cause})
        observability.count_rejection(metrics, exc.code, payment_request.ERROR_CODES)
        return responses.error(exc.status, exc.code, exc.message, exc.field)
    try:
        if not LEASES.is_active(epoch_ms(utc_now())):
            logger.info("region not active: refusing new payment", extra={"region": SETTINGS.region})
            metrics.add_metric(name="PaymentRefusedNotActive", unit="Count", value=1)
            return responses.not_active(SETTINGS.region)
        IDEMPOTENCY.register_lambda_context(context)
        return accepted(create_payment_once(data=tenancy.idempotency_data(request, merchant), request=request))
    except IdempotencyValidationError:
        metrics.add_metric(name="PaymentKeyReused", unit="Count", value=1)
        return responses.error(
            422, "idempotency_key_reused", "this Idempotency-Key was used with a different request", "Idempotency-Key"
        )
    except PaymentConflictError:
        metrics.add_metric(name="PaymentKeyReused", unit="Count", value=1)
        return responses.error(
            422, "idempotency_key_reused", "this Idempotency-Key was used for a different payment", "Idempotency-Key"
        )
    except IdempotencyAlreadyInProgressError:
        metrics.add_metric(name="PaymentInProgress", unit="Count", value=1)
        response = responses.error(
            409, "request_in_progress", "a request with this Idempotency-Key is in progress", "Idempotency-Key"
        )
        response["headers"]["Retry-After"] = "1"
        return response
    except Exception:
        # Logged with its traceback but never with the body; the client retries the same key.
        logger.exception("payment could not be created", extra={"payment_id": request.payment_id})
        metrics.add_metric(name="PaymentError", unit="Count", value=1)
        return responses.unavailable("temporarily_unavailable", "the payment could not be created, retry shortly")


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (API Gateway REST proxy integration)."""
    try:
        return handle(event, context)
    except Exception:
        logger.exception("unexpected failure before the request was parsed")
        return responses.unavailable("temporarily_unavailable", "retry shortly")
