"""SQS consumer: move a PENDING payment to PROCESSED or DECLINED exactly once, in the active region only.

Per payment (docs/design.md, lease protocol): the lease is read from this region's replica; a
region that is not active **parks** the message (sends it again with a delay, reports it done)
so refusals never push it towards the DLQ, and never calls the provider. The active region
calls :func:`charge` with ``payment_id`` as the provider's idempotency key, then writes the
outcome in one transaction that checks the lease (same epoch and holder, still valid) and that
the payment is still ``PENDING`` at the version read, records ``processed_epoch``, bumps the
version and leaves the ``pending-index``. A redelivered or duplicated message finds the payment
final and succeeds without a second processing; repeated attempts are counted
(``PaymentAttemptRepeated``). Nothing here ever writes ``PENDING``.

Each record succeeds or fails on its own (``batchItemFailures``): a poison message (bad JSON,
no such payment) is retried by SQS and reaches the DLQ after ``maxReceiveCount``; throttling is
retried inside the invocation by botocore's standard retry mode, and a record that is still
throttled after that is reported as failed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError
from payments_common import clients, config, observability
from payments_common.control import LEASE_KEY, Lease, epoch_ms, read_lease
from payments_common.models import ProcessingMessage
from payments_common.timeutil import iso, utc_now
from pydantic import ValidationError

SETTINGS = config.load()
logger = observability.logger()
metrics = observability.metrics(SETTINGS.region)
#: More attempts than the API functions: a queue consumer can wait, a client cannot.
DYNAMODB = clients.client("dynamodb", max_attempts=6)
SQS = clients.client("sqs")
QUEUE_URL = SETTINGS.require("processing_queue_url")
#: A parked message comes back after this (SQS's maximum delay); by then the sweeper of the
#: active region has re-enqueued the payment there, and this copy finds it final.
PARK_DELAY_SECONDS = 900
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

FINAL_STATUSES = frozenset({"PROCESSED", "DECLINED"})
#: Stand-in for an authorization decision: above this many major units a payment is declined.
DECLINE_ABOVE = Decimal("1000000")
DECLINE_TOKEN_PREFIX = "tok_decline"  # noqa: S105 - a test-card convention, not a secret


class PoisonMessageError(Exception):
    """The message can never be processed (malformed body); SQS moves it to the DLQ eventually."""


class PaymentNotFoundError(Exception):
    """The message names a payment that does not exist (yet)."""


class ConcurrentUpdateError(Exception):
    """Someone changed the payment between read and write and it is not final: retry later."""


class NotActiveError(Exception):
    """The region does not hold a valid lease (or lost it between read and write): park the message."""


def decide(item: dict[str, Any]) -> tuple[str, str]:
    """The provider stand-in's deterministic decision: (``PROCESSED`` | ``DECLINED``, reason)."""
    if item["card_token"]["S"].startswith(DECLINE_TOKEN_PREFIX):
        return "DECLINED", "card_declined"
    if Decimal(item["amount"]["S"]) > DECLINE_ABOVE:
        return "DECLINED", "amount_over_limit"
    return "PROCESSED", "approved"


def charge(idempotency_key: str, item: dict[str, Any]) -> tuple[str, str]:
    """The payment service provider call; ``idempotency_key`` is always the ``payment_id``.

    Contract of the stand-in (and of a real provider integration): the same key always gets the
    same outcome and at most one charge, so an attempt repeated after a crash, a redelivery or a
    failover (the payment id is the same in both regions) is never a second charge.
    """
    if idempotency_key != item["payment_id"]["S"]:
        raise ValueError("the provider idempotency key must be the payment id")
    return decide(item)


def active_lease(now_ms: int) -> Lease:
    """The region's lease when it is active now; :class:`NotActiveError` otherwise."""
    lease = read_lease(DYNAMODB, SETTINGS.control_table)
    if not lease.active_for(SETTINGS.region, now_ms):
        raise NotActiveError(f"{SETTINGS.region} is not the active region (lease held by {lease.holder or 'nobody'})")
    return lease


def load_payment(payment_id: str) -> dict[str, Any]:
    """The payment item, strongly consistent; :class:`PaymentNotFoundError` when missing."""
    item = DYNAMODB.get_item(
        TableName=SETTINGS.transactions_table, Key={"payment_id": {"S": payment_id}}, ConsistentRead=True
    ).get("Item")
    if not item:
        raise PaymentNotFoundError(payment_id)
    return item


def process_payment(payment_id: str, receive_count: int = 1) -> str:
    """Move one payment out of PENDING, once; returns the final status (:class:`NotActiveError` if standby)."""
    lease = active_lease(epoch_ms(utc_now()))
    item = load_payment(payment_id)
    status = item["status"]["S"]
    if status in FINAL_STATUSES:
        logger.info("payment already final", extra={"payment_id": payment_id, "status": status})
        metrics.add_metric(name="PaymentDuplicateDelivery", unit="Count", value=1)
        return status
    if status != "PENDING":
        raise ConcurrentUpdateError(f"{payment_id} has unexpected status {status}")
    if receive_count > 1:
        metrics.add_metric(name="PaymentAttemptRepeated", unit="Count", value=1)
    decision, reason = charge(payment_id, item)
    now = utc_now()
    try:
        DYNAMODB.transact_write_items(
            TransactItems=[
                {
                    "ConditionCheck": {
                        "TableName": SETTINGS.control_table,
                        "Key": {"pk": {"S": LEASE_KEY}},
                        "ConditionExpression": (
                            "epoch = :epoch AND holder = :region AND valid_until > :now"
                            " AND attribute_not_exists(revoked_by)"
                        ),
                        "ExpressionAttributeValues": {
                            ":epoch": {"N": str(lease.epoch)},
                            ":region": {"S": SETTINGS.region},
                            ":now": {"N": str(epoch_ms(now))},
                        },
                    }
                },
                {
                    "Update": {
                        "TableName": SETTINGS.transactions_table,
                        "Key": {"payment_id": {"S": payment_id}},
                        "UpdateExpression": (
                            "SET #status = :decision, #version = #version + :one, processed_at = :now,"
                            " processed_region = :region, decision_reason = :reason, processed_epoch = :epoch"
                            " REMOVE pending_shard"
                        ),
                        "ConditionExpression": "#status = :pending AND #version = :version",
                        "ExpressionAttributeNames": {"#status": "status", "#version": "version"},
                        "ExpressionAttributeValues": {
                            ":decision": {"S": decision},
                            ":pending": {"S": "PENDING"},
                            ":version": item["version"],
                            ":one": {"N": "1"},
                            ":now": {"S": iso(now)},
                            ":region": {"S": SETTINGS.region},
                            ":reason": {"S": reason},
                            ":epoch": {"N": str(lease.epoch)},
                        },
                    }
                },
            ]
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
            raise
        reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
        if reasons and reasons[0] == "ConditionalCheckFailed":
            metrics.add_metric(name="PaymentAttemptRepeated", unit="Count", value=1)
            raise NotActiveError(f"{SETTINGS.region} lost the lease while processing {payment_id}") from None
        current = load_payment(payment_id)["status"]["S"]
        if current in FINAL_STATUSES:
            logger.info("payment finalised concurrently", extra={"payment_id": payment_id, "status": current})
            return current
        raise ConcurrentUpdateError(f"{payment_id} changed while being processed") from None
    logger.info(
        "payment processed",
        extra={"payment_id": payment_id, "status": decision, "reason": reason, "epoch": lease.epoch},
    )
    metrics.add_metric(name=f"Payment{decision.capitalize()}", unit="Count", value=1)
    return decision


def park(record: SQSRecord, reason: str) -> str:
    """Send the message again, delayed, and report the original done: a standby never fails a message."""
    SQS.send_message(QueueUrl=QUEUE_URL, MessageBody=record.body, DelaySeconds=PARK_DELAY_SECONDS)
    logger.info("message parked: region not active", extra={"message_id": record.message_id, "reason": reason})
    metrics.add_metric(name="PaymentParkedNotActive", unit="Count", value=1)
    return "PARKED"


def record_handler(record: SQSRecord) -> str:
    """One SQS record: parse ``{"payment_id": ...}`` and process it."""
    try:
        message = ProcessingMessage.model_validate_json(record.body)
    except ValidationError:
        logger.error("poison message", extra={"message_id": record.message_id})
        raise PoisonMessageError(record.message_id) from None
    receive_count = int(record.attributes.approximate_receive_count or "1")
    try:
        return process_payment(message.payment_id, receive_count)
    except NotActiveError as exc:
        return park(record, str(exc))


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (SQS event source with ``ReportBatchItemFailures``)."""
    metrics.add_metric(name="ProcessingRecords", unit="Count", value=len(event.get("Records") or []))
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
