"""POST /payments against moto: accepted once, replayed, refused, not active, throttled, failing."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from types import ModuleType
from typing import Any

import pytest

from tests.lambdas.conftest import (
    CONTROL,
    IDEMPOTENCY,
    PRIMARY,
    TRANSACTIONS,
    VALID_BODY,
    Aws,
    FakeContext,
    api_event,
    decode,
    function_env,
    import_fresh,
    inject_errors,
    load_handler,
)


@pytest.fixture
def validation(aws: Aws) -> ModuleType:
    return load_handler("payment_validation", PRIMARY)


def post(module: ModuleType, context: FakeContext, event: dict[str, Any]) -> tuple[int, dict[str, Any], dict]:
    response = module.handler(event, context)
    return response["statusCode"], decode(response), response["headers"]


def test_accepts_writes_pending_and_enqueues(validation: ModuleType, aws: Aws, context: FakeContext) -> None:
    status, body, headers = post(validation, context, api_event())
    assert status == 202
    assert body["status"] == "PENDING"
    assert headers["Location"] == f"/payments/{body['payment_id']}"
    item = aws.item(TRANSACTIONS, {"payment_id": body["payment_id"]})
    assert item is not None
    assert item["status"] == {"S": "PENDING"}
    assert item["version"] == {"N": "1"}
    assert item["home_region"] == {"S": PRIMARY}
    assert item["amount"] == {"S": "10.50"}
    assert item["currency"] == {"S": "USD"}
    assert item["created_at"]["S"].endswith("Z")
    messages = aws.messages()
    assert [json.loads(m["Body"]) for m in messages] == [{"payment_id": body["payment_id"]}]
    records = aws.items(IDEMPOTENCY)
    assert len(records) == 1
    assert records[0]["id"]["S"].startswith("payment-validation-test.create_payment#")


def test_same_key_same_body_replays_the_answer(validation: ModuleType, aws: Aws, context: FakeContext) -> None:
    first = post(validation, context, api_event())
    again = post(validation, context, api_event())
    equivalent = post(validation, context, api_event({**VALID_BODY, "amount": "10.5"}))
    assert first[:2] == again[:2] == equivalent[:2]
    assert len(aws.items(TRANSACTIONS)) == 1
    assert len(aws.messages()) == 1


def test_same_key_different_body_is_refused(validation: ModuleType, aws: Aws, context: FakeContext) -> None:
    post(validation, context, api_event())
    status, body, _ = post(validation, context, api_event({**VALID_BODY, "amount": "99.00"}))
    assert status == 422
    assert (body["error"], body["field"]) == ("idempotency_key_reused", "Idempotency-Key")
    assert len(aws.items(TRANSACTIONS)) == 1
    assert len(aws.messages()) == 1


def test_different_keys_make_different_payments(validation: ModuleType, aws: Aws, context: FakeContext) -> None:
    a = post(validation, context, api_event(key="key-a"))[1]["payment_id"]
    b = post(validation, context, api_event(key="key-b"))[1]["payment_id"]
    assert a != b
    assert len(aws.items(TRANSACTIONS)) == 2


# Threads share one process's metrics: one invocation may flush another's, leaving it none.
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_concurrent_duplicates_make_one_payment(validation: ModuleType, aws: Aws) -> None:
    threads = 8
    barrier = Barrier(threads)

    def call(index: int) -> tuple[int, dict[str, Any]]:
        barrier.wait()
        context = FakeContext(aws_request_id=f"00000000-0000-4000-8000-{index:012d}")
        status, body, _ = post(validation, context, api_event())
        return status, body

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(call, range(threads)))
    statuses = sorted(status for status, _ in results)
    assert set(statuses) <= {202, 409}
    assert 202 in statuses
    assert {body["payment_id"] for status, body in results if status == 202} == {
        aws.items(TRANSACTIONS)[0]["payment_id"]["S"]
    }
    assert all(body["error"] == "request_in_progress" for status, body in results if status == 409)
    assert len(aws.items(TRANSACTIONS)) == 1
    assert len(aws.messages()) == 1


def test_in_progress_duplicate_gets_409_with_retry_after(
    validation: ModuleType, aws: Aws, context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers: list[tuple[int, dict, dict]] = []
    original = validation.create_payment

    def create_and_meanwhile_retry(request: Any) -> dict[str, str]:
        answers.append(post(validation, FakeContext(aws_request_id="retry"), api_event()))
        return original(request)

    monkeypatch.setattr(validation, "create_payment", create_and_meanwhile_retry)
    status, _, _ = post(validation, context, api_event())
    assert status == 202
    [(retry_status, retry_body, retry_headers)] = answers
    assert (retry_status, retry_body["error"], retry_headers["Retry-After"]) == (409, "request_in_progress", "1")
    assert len(aws.messages()) == 1


def existing(aws: Aws, validation: ModuleType, status: str, body: dict[str, Any] | None = None) -> str:
    """Write the payment of ``api_event(body)`` directly, as if an earlier attempt (or region) had."""
    request = validation.payment_request.parse(api_event(body))
    item = validation.payment_item(request, "us-east-2", "2024-01-01T00:00:00.000Z", 1)
    item["status"] = {"S": status}
    aws.dynamodb[PRIMARY].put_item(TableName=TRANSACTIONS, Item=item)
    return request.payment_id


def test_conditional_conflict_returns_existing_and_reenqueues_pending(
    validation: ModuleType, aws: Aws, context: FakeContext
) -> None:
    payment_id = existing(aws, validation, "PENDING")
    status, body, _ = post(validation, context, api_event())
    assert (status, body) == (202, {"payment_id": payment_id, "status": "PENDING"})
    assert len(aws.items(TRANSACTIONS)) == 1
    assert aws.item(TRANSACTIONS, {"payment_id": payment_id})["home_region"] == {"S": "us-east-2"}
    assert [json.loads(m["Body"])["payment_id"] for m in aws.messages()] == [payment_id]


def test_conditional_conflict_on_a_final_payment_does_not_enqueue(
    validation: ModuleType, aws: Aws, context: FakeContext
) -> None:
    payment_id = existing(aws, validation, "PROCESSED")
    status, body, _ = post(validation, context, api_event())
    assert (status, body) == (202, {"payment_id": payment_id, "status": "PROCESSED"})
    assert aws.messages() == []


def test_conditional_conflict_with_other_details_is_refused(
    validation: ModuleType, aws: Aws, context: FakeContext
) -> None:
    existing(aws, validation, "PENDING", {**VALID_BODY, "amount": "1.00"})
    status, body, _ = post(validation, context, api_event())
    assert (status, body["error"]) == (422, "idempotency_key_reused")
    assert aws.messages() == []
    assert aws.items(IDEMPOTENCY) == []


@pytest.mark.parametrize(
    "lease",
    [
        {"holder": "us-east-2", "epoch": 2},  # standby
        {"holder": PRIMARY, "valid_for": -1.0},  # lapsed: its own lease ran out
        {"holder": PRIMARY, "revoked_by": "us-east-2"},  # revoked by the standby
    ],
    ids=["standby", "lapsed", "revoked"],
)
def test_region_not_active_answers_421_and_writes_nothing(
    validation: ModuleType, aws: Aws, context: FakeContext, lease: dict[str, Any]
) -> None:
    aws.put_lease(**lease)
    status, body, headers = post(validation, context, api_event())
    assert (status, body["error"]) == (421, "region_not_active")
    assert int(headers["Retry-After"]) > 0
    assert aws.items(TRANSACTIONS) == []
    assert aws.items(IDEMPOTENCY) == []
    assert aws.messages() == []


def test_no_lease_yet_means_not_active(validation: ModuleType, aws: Aws, context: FakeContext) -> None:
    aws.dynamodb[PRIMARY].delete_item(TableName=CONTROL, Key={"pk": {"S": "lease"}})
    assert post(validation, context, api_event())[0] == 421


def test_active_region_records_the_epoch_and_the_pending_shard(
    validation: ModuleType, aws: Aws, context: FakeContext
) -> None:
    aws.put_lease(PRIMARY, epoch=7)
    status, body, _ = post(validation, context, api_event())
    assert status == 202
    item = aws.item(TRANSACTIONS, {"payment_id": body["payment_id"]})
    assert item["accepted_epoch"] == {"N": "7"}
    assert item["pending_shard"]["S"] in {f"p{n}" for n in range(8)}


def test_lease_lookup_is_cached(validation: ModuleType, aws: Aws, context: FakeContext) -> None:
    reads: list[str] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == CONTROL:
            reads.append(params["Key"]["pk"]["S"])

    validation.DYNAMODB.meta.events.register("provide-client-params.dynamodb.GetItem", count)
    try:
        post(validation, context, api_event(key="key-a"))
        post(validation, context, api_event(key="key-b"))
    finally:
        validation.DYNAMODB.meta.events.unregister("provide-client-params.dynamodb.GetItem", count)
    assert reads == ["lease"]


def test_unreadable_lease_fails_closed(validation: ModuleType, aws: Aws, context: FakeContext) -> None:
    aws.dynamodb[PRIMARY].delete_table(TableName=CONTROL)
    status, body, headers = post(validation, context, api_event())
    assert (status, body["error"]) == (503, "temporarily_unavailable")
    assert "Retry-After" in headers
    assert aws.items(TRANSACTIONS) == []


def test_throttled_write_is_retried(
    validation: ModuleType, aws: Aws, context: FakeContext, no_sleep: list[float]
) -> None:
    attempts, remove = inject_errors("dynamodb", "PutItem", failures=2)
    try:
        status, body, _ = post(validation, context, api_event())
    finally:
        remove()
    assert status == 202
    # Powertools' idempotency put takes the two throttles, then the payment put goes through.
    assert attempts[0] == 4
    assert len(no_sleep) == 2
    assert aws.item(TRANSACTIONS, {"payment_id": body["payment_id"]}) is not None


def test_persistent_throttling_is_a_retryable_503(
    validation: ModuleType, aws: Aws, context: FakeContext, no_sleep: list[float]
) -> None:
    attempts, remove = inject_errors("dynamodb", "PutItem", failures=None)
    try:
        status, body, headers = post(validation, context, api_event())
    finally:
        remove()
    assert (status, body["error"]) == (503, "temporarily_unavailable")
    assert "Retry-After" in headers
    assert attempts[0] == validation.DYNAMODB.meta.config.retries["total_max_attempts"]
    assert aws.items(TRANSACTIONS) == []
    assert aws.items(IDEMPOTENCY) == []


def test_enqueue_failure_is_recovered_by_the_client_retry(
    validation: ModuleType, aws: Aws, context: FakeContext, no_sleep: list[float], logs: list[str]
) -> None:
    _, remove = inject_errors("sqs", "SendMessage", failures=None, code="InternalFailure")
    try:
        status, body, _ = post(validation, context, api_event())
    finally:
        remove()
    assert (status, body["error"]) == (503, "temporarily_unavailable")
    assert aws.items(IDEMPOTENCY) == [], "a failed attempt must not be replayed"
    [item] = aws.items(TRANSACTIONS)
    assert item["status"] == {"S": "PENDING"}
    assert any("payment could not be created" in line and "Traceback" in line for line in logs)

    status, body, _ = post(validation, context, api_event())
    assert (status, body["payment_id"]) == (202, item["payment_id"]["S"])
    assert [json.loads(m["Body"])["payment_id"] for m in aws.messages()] == [item["payment_id"]["S"]]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (api_event(key=None), "Idempotency-Key"),
        (api_event("{oops"), "body"),
        (api_event({**VALID_BODY, "amount": True}), "amount"),
        (api_event({k: v for k, v in VALID_BODY.items() if k != "currency"}), "currency"),
        (api_event({**VALID_BODY, "currency": "ZZZ"}), "currency"),
        (api_event({**VALID_BODY, "pad": "x" * 17000}), "body"),
    ],
)
def test_bad_requests_are_400_naming_the_field_and_write_nothing(
    validation: ModuleType, aws: Aws, context: FakeContext, event: dict[str, Any], field: str
) -> None:
    status, body, _ = post(validation, context, event)
    assert status == 400
    assert body["field"] == field
    assert set(body) == {"error", "message", "field"}
    assert aws.items(TRANSACTIONS) == []
    assert aws.items(IDEMPOTENCY) == []
    assert aws.messages() == []


def test_card_number_is_rejected_and_never_logged(
    validation: ModuleType, aws: Aws, context: FakeContext, logs: list[str]
) -> None:
    event = api_event({**VALID_BODY, "card_token": "4111 1111 1111 1111"})
    status, body, _ = post(validation, context, event)
    assert (status, body["error"], body["field"]) == (400, "card_number_detected", "card_token")
    assert "4111" not in json.dumps(body)
    assert logs, "the rejection is logged"
    assert not any("4111" in line for line in logs)


def test_the_body_is_never_logged(validation: ModuleType, aws: Aws, context: FakeContext, logs: list[str]) -> None:
    marker = "tok_MARKERnotlogged"
    post(validation, context, api_event({**VALID_BODY, "card_token": marker}))
    service_lines = [line for line in logs if '"service":"payments-test"' in line.replace(" ", "")]
    assert any("payment accepted" in line for line in service_lines)
    assert not any(marker in line for line in service_lines)


def test_unexpected_failure_never_leaks_a_stack_trace(
    validation: ModuleType, aws: Aws, context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(event: Any) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(validation.payment_request, "parse", boom)
    response = validation.handler(api_event(), context)
    assert response["statusCode"] == 503
    assert "secret" not in response["body"]
    assert "Traceback" not in response["body"]


def test_missing_queue_url_fails_the_cold_start_with_its_name(aws: Aws) -> None:
    environ = {**function_env("payment_validation", PRIMARY), "PROCESSING_QUEUE_URL": ""}
    # A fresh import brings its own ConfigError class, so match on the base class and the name.
    with pytest.raises(RuntimeError, match="PROCESSING_QUEUE_URL") as caught:
        import_fresh("payment_validation", environ)
    assert type(caught.value).__name__ == "ConfigError"


def emitted(out: str, name: str) -> list[dict[str, Any]]:
    """Every EMF blob printed to stdout that holds metric ``name``."""
    blobs = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]
    return [blob for blob in blobs if name in blob]


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (api_event({**VALID_BODY, "merchant_id": "4111_1111_1111_1111"}), "card_number_detected"),
        (
            api_event('{"amount":1E+1000000000000000000,"currency":"USD","merchant_id":"m","card_token":"tok_abcd"}'),
            "number_out_of_range",
        ),
        (api_event({**VALID_BODY, "amount": "10.00000000000000000000"}), "amount_precision"),
        (api_event(key=None), "missing_idempotency_key"),
    ],
)
def test_every_rejection_is_a_400_counted_by_code_in_its_own_metric(
    validation: ModuleType,
    aws: Aws,
    context: FakeContext,
    logs: list[str],
    capsys: pytest.CaptureFixture[str],
    event: dict[str, Any],
    code: str,
) -> None:
    status, body, _ = post(validation, context, event)
    assert (status, body["error"]) == (400, code)
    out = capsys.readouterr().out
    (blob,) = emitted(out, "PaymentRejected")
    assert (blob["code"], blob["region"], blob["service"]) == (code, PRIMARY, "payments-test")
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["region", "service", "code"]]
    # The code dimension stays on its own blob: the invocation's other metrics keep their dimensions.
    assert all("code" not in other for other in emitted(out, "PaymentRequest"))
    assert not [line for line in logs if '"level":"ERROR"' in line.replace(" ", "")]
    assert aws.items(TRANSACTIONS) == []


def test_an_accepted_payment_counts_no_rejection(
    validation: ModuleType, aws: Aws, context: FakeContext, capsys: pytest.CaptureFixture[str]
) -> None:
    assert post(validation, context, api_event())[0] == 202
    assert emitted(capsys.readouterr().out, "PaymentRejected") == []
