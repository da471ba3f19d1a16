"""SQS consumer: move a PENDING payment to PROCESSED or DECLINED exactly once.

The update is conditional on ``status = PENDING AND version = :v`` and bumps the version,
so a redelivered or duplicated message finds the payment final and succeeds without a
second processing. Each record succeeds or fails on its own (``batchItemFailures``): a
poison message (bad JSON, no such payment) is retried by SQS and reaches the DLQ after
``maxReceiveCount``; throttling is retried inside the invocation by botocore's standard
retry mode, and a record that is still throttled after that is reported as failed.

A real processor would call a payment service provider here, passing ``payment_id`` as
that call's idempotency key so the provider deduplicates too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError
from payments_common import clients, config, observability
from payments_common.models import ProcessingMessage
from payments_common.timeutil import iso, utc_now
from pydantic import ValidationError

SETTINGS = config.load()
logger = observability.logger()
metrics = observability.metrics(SETTINGS.region)
#: More attempts than the API functions: a queue consumer can wait, a client cannot.
DYNAMODB = clients.client("dynamodb", max_attempts=6)
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


def decide(item: dict[str, Any]) -> tuple[str, str]:
    """The deterministic decision for a payment: (``PROCESSED`` | ``DECLINED``, reason)."""
    if item["card_token"]["S"].startswith(DECLINE_TOKEN_PREFIX):
        return "DECLINED", "card_declined"
    if Decimal(item["amount"]["S"]) > DECLINE_ABOVE:
        return "DECLINED", "amount_over_limit"
    return "PROCESSED", "approved"


def load_payment(payment_id: str) -> dict[str, Any]:
    """The payment item, strongly consistent; :class:`PaymentNotFoundError` when missing."""
    item = DYNAMODB.get_item(
        TableName=SETTINGS.transactions_table, Key={"payment_id": {"S": payment_id}}, ConsistentRead=True
    ).get("Item")
    if not item:
        raise PaymentNotFoundError(payment_id)
    return item


def process_payment(payment_id: str) -> str:
    """Move one payment out of PENDING, once; returns the final status."""
    item = load_payment(payment_id)
    status = item["status"]["S"]
    if status in FINAL_STATUSES:
        logger.info("payment already final", extra={"payment_id": payment_id, "status": status})
        metrics.add_metric(name="PaymentDuplicateDelivery", unit="Count", value=1)
        return status
    if status != "PENDING":
        raise ConcurrentUpdateError(f"{payment_id} has unexpected status {status}")
    decision, reason = decide(item)
    try:
        DYNAMODB.update_item(
            TableName=SETTINGS.transactions_table,
            Key={"payment_id": {"S": payment_id}},
            UpdateExpression=(
                "SET #status = :decision, #version = #version + :one, processed_at = :now,"
                " processed_region = :region, decision_reason = :reason"
            ),
            ConditionExpression="#status = :pending AND #version = :version",
            ExpressionAttributeNames={"#status": "status", "#version": "version"},
            ExpressionAttributeValues={
                ":decision": {"S": decision},
                ":pending": {"S": "PENDING"},
                ":version": item["version"],
                ":one": {"N": "1"},
                ":now": {"S": iso(utc_now())},
                ":region": {"S": SETTINGS.region},
                ":reason": {"S": reason},
            },
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        current = load_payment(payment_id)["status"]["S"]
        if current in FINAL_STATUSES:
            logger.info("payment finalised concurrently", extra={"payment_id": payment_id, "status": current})
            return current
        raise ConcurrentUpdateError(f"{payment_id} changed while being processed") from None
    logger.info("payment processed", extra={"payment_id": payment_id, "status": decision, "reason": reason})
    metrics.add_metric(name=f"Payment{decision.capitalize()}", unit="Count", value=1)
    return decision


def record_handler(record: SQSRecord) -> str:
    """One SQS record: parse ``{"payment_id": ...}`` and process it."""
    try:
        message = ProcessingMessage.model_validate_json(record.body)
    except ValidationError:
        logger.error("poison message", extra={"message_id": record.message_id})
        raise PoisonMessageError(record.message_id) from None
    return process_payment(message.payment_id)


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (SQS event source with ``ReportBatchItemFailures``)."""
    metrics.add_metric(name="ProcessingRecords", unit="Count", value=len(event.get("Records") or []))
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
