"""SQS consumer against moto: PENDING -> final once, duplicates, poison messages, throttling."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from tests.lambdas.conftest import (
    PRIMARY,
    SECONDARY,
    TRANSACTIONS,
    VALID_BODY,
    Aws,
    FakeContext,
    api_event,
    inject_errors,
    load_handler,
)


@pytest.fixture
def processing(aws: Aws) -> ModuleType:
    return load_handler("payment_processing", PRIMARY)


@pytest.fixture
def validation(aws: Aws) -> ModuleType:
    return load_handler("payment_validation", PRIMARY)


def create(validation: ModuleType, context: FakeContext, key: str = "key-1", **changes: Any) -> str:
    response = validation.handler(api_event({**VALID_BODY, **changes}, key=key), context)
    assert response["statusCode"] == 202, response["body"]
    return json.loads(response["body"])["payment_id"]


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"msg-{index}",
                "receiptHandle": f"handle-{index}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{PRIMARY}:123456789012:payments-processing-test",
                "awsRegion": PRIMARY,
            }
            for index, body in enumerate(bodies)
        ]
    }


def message(payment_id: str) -> str:
    return json.dumps({"payment_id": payment_id})


def failures(result: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in result["batchItemFailures"]]


def decide_after(processing: ModuleType, monkeypatch: pytest.MonkeyPatch, meanwhile: Any) -> None:
    """The decision runs ``meanwhile`` first: something changes between the read and the write."""
    original = processing.decide

    def decide(item: dict[str, Any]) -> tuple[str, str]:
        meanwhile()
        return original(item)

    monkeypatch.setattr(processing, "decide", decide)


def payment(aws: Aws, payment_id: str) -> dict[str, Any]:
    item = aws.item(TRANSACTIONS, {"payment_id": payment_id})
    assert item is not None
    return item


def test_pending_payment_is_processed_once(
    processing: ModuleType, validation: ModuleType, aws: Aws, context: FakeContext
) -> None:
    payment_id = create(validation, context)
    [queued] = aws.messages()
    result = processing.handler(sqs_event(queued["Body"]), context)
    assert failures(result) == []
    item = payment(aws, payment_id)
    assert item["status"] == {"S": "PROCESSED"}
    assert item["version"] == {"N": "2"}
    assert item["processed_region"] == {"S": PRIMARY}
    assert item["processed_at"]["S"].endswith("Z")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [({"card_token": "tok_decline_insufficient"}, "card_declined"), ({"amount": "1000000.01"}, "amount_over_limit")],
)
def test_decline_rules_are_deterministic(
    processing: ModuleType,
    validation: ModuleType,
    aws: Aws,
    context: FakeContext,
    changes: dict[str, str],
    reason: str,
) -> None:
    payment_id = create(validation, context, **changes)
    assert failures(processing.handler(sqs_event(message(payment_id)), context)) == []
    item = payment(aws, payment_id)
    assert (item["status"], item["decision_reason"]) == ({"S": "DECLINED"}, {"S": reason})


def test_duplicate_messages_do_not_process_twice(
    processing: ModuleType, validation: ModuleType, aws: Aws, context: FakeContext
) -> None:
    payment_id = create(validation, context)
    first = processing.handler(sqs_event(message(payment_id), message(payment_id)), context)
    processed = payment(aws, payment_id)
    redelivered = processing.handler(sqs_event(message(payment_id)), context)
    assert failures(first) == failures(redelivered) == []
    assert payment(aws, payment_id) == processed
    assert processed["version"] == {"N": "2"}


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "{}",
        json.dumps({"payment_id": "not-a-uuid"}),
        json.dumps({"payment_id": 42}),
        json.dumps(["payment_id"]),
        json.dumps({"payment_id": "00000000-0000-4000-8000-000000000000"}),  # no such payment
    ],
)
def test_poison_messages_fail_alone(
    processing: ModuleType, validation: ModuleType, aws: Aws, context: FakeContext, body: str
) -> None:
    payment_id = create(validation, context)
    result = processing.handler(sqs_event(body, message(payment_id)), context)
    assert failures(result) == ["msg-0"]
    assert payment(aws, payment_id)["status"] == {"S": "PROCESSED"}


def test_a_batch_that_fails_entirely_is_reported_not_raised(
    processing: ModuleType, aws: Aws, context: FakeContext
) -> None:
    result = processing.handler(sqs_event("x", "y"), context)
    assert failures(result) == ["msg-0", "msg-1"]


def test_finalised_concurrently_counts_as_success(
    processing: ModuleType, validation: ModuleType, aws: Aws, context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment_id = create(validation, context)
    original = processing.decide

    def decide_while_another_consumer_finishes(item: dict[str, Any]) -> tuple[str, str]:
        aws.dynamodb[PRIMARY].update_item(
            TableName=TRANSACTIONS,
            Key={"payment_id": {"S": payment_id}},
            UpdateExpression="SET #s = :s, #v = :v",
            ExpressionAttributeNames={"#s": "status", "#v": "version"},
            ExpressionAttributeValues={":s": {"S": "DECLINED"}, ":v": {"N": "2"}},
        )
        return original(item)

    monkeypatch.setattr(processing, "decide", decide_while_another_consumer_finishes)
    assert failures(processing.handler(sqs_event(message(payment_id)), context)) == []
    assert payment(aws, payment_id)["status"] == {"S": "DECLINED"}, "the other consumer's decision stands"


def test_version_conflict_on_a_pending_payment_is_retried_later(
    processing: ModuleType, validation: ModuleType, aws: Aws, context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment_id = create(validation, context)
    original = processing.decide

    def decide_while_version_moves(item: dict[str, Any]) -> tuple[str, str]:
        aws.dynamodb[PRIMARY].update_item(
            TableName=TRANSACTIONS,
            Key={"payment_id": {"S": payment_id}},
            UpdateExpression="SET #v = :v",
            ExpressionAttributeNames={"#v": "version"},
            ExpressionAttributeValues={":v": {"N": "7"}},
        )
        return original(item)

    monkeypatch.setattr(processing, "decide", decide_while_version_moves)
    assert failures(processing.handler(sqs_event(message(payment_id)), context)) == ["msg-0"]
    assert payment(aws, payment_id)["status"] == {"S": "PENDING"}


def test_throttled_update_is_retried_with_backoff(
    processing: ModuleType, validation: ModuleType, aws: Aws, context: FakeContext, no_sleep: list[float]
) -> None:
    payment_id = create(validation, context)
    attempts, remove = inject_errors("dynamodb", "TransactWriteItems", failures=2)
    try:
        result = processing.handler(sqs_event(message(payment_id)), context)
    finally:
        remove()
    assert failures(result) == []
    assert attempts[0] == 3
    assert len(no_sleep) == 2
    assert payment(aws, payment_id)["status"] == {"S": "PROCESSED"}


def test_persistent_throttling_becomes_a_batch_item_failure(
    processing: ModuleType, validation: ModuleType, aws: Aws, context: FakeContext, no_sleep: list[float]
) -> None:
    throttled = create(validation, context, key="key-throttled")
    attempts, remove = inject_errors("dynamodb", "TransactWriteItems", failures=None)
    try:
        result = processing.handler(sqs_event(message(throttled)), context)
    finally:
        remove()
    assert failures(result) == ["msg-0"]
    assert attempts[0] == processing.DYNAMODB.meta.config.retries["total_max_attempts"]
    assert len(no_sleep) == attempts[0] - 1
    assert payment(aws, throttled)["status"] == {"S": "PENDING"}
    assert failures(processing.handler(sqs_event(message(throttled)), context)) == []
    assert payment(aws, throttled)["status"] == {"S": "PROCESSED"}


# ---------------------------------------------------------------- one active region


def test_outcome_records_the_epoch_and_leaves_the_pending_index(
    processing: ModuleType, validation: ModuleType, aws: Aws, context: FakeContext
) -> None:
    aws.put_lease(PRIMARY, epoch=4)
    payment_id = create(validation, context)
    assert "pending_shard" in payment(aws, payment_id)
    assert failures(processing.handler(sqs_event(message(payment_id)), context)) == []
    item = payment(aws, payment_id)
    assert item["processed_epoch"] == {"N": "4"}
    assert "pending_shard" not in item


@pytest.mark.parametrize(
    "lease",
    [{"holder": SECONDARY, "epoch": 2}, {"holder": PRIMARY, "valid_for": -1.0}],
    ids=["standby", "lapsed"],
)
def test_a_region_that_is_not_active_parks_messages_and_never_charges(
    processing: ModuleType,
    validation: ModuleType,
    aws: Aws,
    context: FakeContext,
    monkeypatch: pytest.MonkeyPatch,
    lease: dict[str, Any],
) -> None:
    payment_id = create(validation, context)
    aws.messages()  # the enqueue of the creation
    charges: list[str] = []
    monkeypatch.setattr(processing, "decide", lambda item: charges.append(item["payment_id"]["S"]) or ("X", "x"))
    aws.put_lease(**lease)
    result = processing.handler(sqs_event(message(payment_id)), context)
    assert failures(result) == [], "a refused message must not count towards the DLQ"
    assert charges == []
    assert payment(aws, payment_id)["status"] == {"S": "PENDING"}
    # Parked: the same message is back on the queue, delayed, with a fresh receive count.
    attributes = aws.sqs[PRIMARY].get_queue_attributes(
        QueueUrl=processing.QUEUE_URL, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"


def test_lease_lost_between_charge_and_write_records_nothing_and_parks(
    processing: ModuleType, validation: ModuleType, aws: Aws, context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment_id = create(validation, context)
    decide_after(processing, monkeypatch, lambda: aws.put_lease(SECONDARY, epoch=2, into=PRIMARY))
    assert failures(processing.handler(sqs_event(message(payment_id)), context)) == []
    item = payment(aws, payment_id)
    assert (item["status"], item["version"]) == ({"S": "PENDING"}, {"N": "1"})


def test_the_provider_is_called_with_the_payment_id_as_idempotency_key(
    processing: ModuleType, validation: ModuleType, aws: Aws, context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment_id = create(validation, context)
    keys: list[str] = []
    original = processing.charge

    def recording_charge(idempotency_key: str, item: dict[str, Any]) -> tuple[str, str]:
        keys.append(idempotency_key)
        return original(idempotency_key, item)

    monkeypatch.setattr(processing, "charge", recording_charge)
    processing.handler(sqs_event(message(payment_id)), context)
    assert keys == [payment_id]
    with pytest.raises(ValueError, match="payment id"):
        original("another-key", payment(aws, payment_id))


def test_repeated_attempts_are_counted(
    processing: ModuleType, validation: ModuleType, aws: Aws, context: FakeContext, capsys: pytest.CaptureFixture[str]
) -> None:
    payment_id = create(validation, context)
    event = sqs_event(message(payment_id))
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "3"
    capsys.readouterr()
    assert failures(processing.handler(event, context)) == []
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(metric.get("PaymentAttemptRepeated") == [1.0] for metric in emitted)
