"""Shared fixtures for the Lambda tests: environment, moto in two regions, handler loading, logs.

Handlers read their environment and create their boto3 clients at import, as in Lambda.
:func:`load_handler` imports a fresh copy of a function (and of ``payments_common``) for a
region, so two "regions" can run side by side in one process; copies are cached per
(function, region, overrides) and their module-level caches are cleared before every test.

moto has no global tables: each region gets its own tables of the same name, and
:func:`replicate` copies items from one region's table to the other's, the way global-table
replication (last writer wins, per item) would, at the moment a test chooses.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import botocore.endpoint
import pytest
from moto import mock_aws  # imported before any handler: moto hooks every client created afterwards
from moto.core.models import botocore_stubber

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
if str(LAMBDAS) not in sys.path:
    sys.path.insert(0, str(LAMBDAS))

PRIMARY = "us-east-1"
SECONDARY = "us-east-2"
REGIONS = (PRIMARY, SECONDARY)
#: The lease witness: a plain table in a third region (docs/design.md, lease protocol).
WITNESS = "us-west-2"
ACCOUNT = "123456789012"
SUFFIX = "test"
TRANSACTIONS = f"payments-transactions-{SUFFIX}"
IDEMPOTENCY = f"payments-idempotency-{SUFFIX}"
CONTROL = f"payments-control-{SUFFIX}"
MERCHANTS = f"payments-merchants-{SUFFIX}"
WITNESS_TABLE = f"payments-lease-witness-{SUFFIX}"
QUEUE = f"payments-processing-{SUFFIX}"
TOPIC = f"payments-alerts-{SUFFIX}"
PROCESSING_FUNCTION = f"payment-processing-{SUFFIX}"
SERVICE = "payments-test"

FUNCTION_NAMES = {
    "payment_validation": f"payment-validation-{SUFFIX}",
    "payment_processing": PROCESSING_FUNCTION,
    "payment_status": f"payment-status-{SUFFIX}",
    "health": f"health-{SUFFIX}",
    "failover_orchestrator": f"failover-orchestrator-{SUFFIX}",
    "authorizer": f"authorizer-{SUFFIX}",
}


def queue_url(region: str) -> str:
    """The processing queue URL moto gives in ``region``."""
    return f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{QUEUE}"


def topic_arn(region: str) -> str:
    """The alert topic ARN in ``region``."""
    return f"arn:aws:sns:{region}:{ACCOUNT}:{TOPIC}"


def function_env(function: str, region: str) -> dict[str, str]:
    """The environment the compute layer gives ``function`` in ``region`` (docs/design.md)."""
    return {
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAMES[function],
        "PRIMARY_REGION": PRIMARY,
        "SECONDARY_REGION": SECONDARY,
        "ENVIRONMENT_SUFFIX": SUFFIX,
        "TRANSACTIONS_TABLE": TRANSACTIONS,
        "IDEMPOTENCY_TABLE": IDEMPOTENCY,
        "CONTROL_TABLE": CONTROL,
        "MERCHANTS_TABLE": MERCHANTS,
        "PROCESSING_QUEUE_URL": queue_url(region),
        "ALERT_TOPIC_ARN": topic_arn(region),
        "PROCESSING_FUNCTION_NAME": PROCESSING_FUNCTION,
        "WITNESS_TABLE": WITNESS_TABLE,
        "WITNESS_REGION": WITNESS,
        "HEARTBEAT_STALE_SECONDS": "180",
        "LEASE_SECONDS": "130",
        "LEASE_SAFETY_MARGIN_SECONDS": "40",
        "PENDING_SWEEP_AGE_SECONDS": "120",
        "PENDING_ALARM_AGE_SECONDS": "600",
        "POWERTOOLS_SERVICE_NAME": SERVICE,
        "POWERTOOLS_METRICS_NAMESPACE": "PaymentsTest",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
    }


def pytest_configure(config: pytest.Config) -> None:
    """Powertools metrics state is per process: two regions' copies of a function share it."""
    config.addinivalue_line("filterwarnings", "ignore:Dimension 'region' has already been added")


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a default region, so nothing can reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": PRIMARY,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


# ---------------------------------------------------------------- loading handlers

_LOADED: dict[tuple[str, str, tuple[tuple[str, str], ...]], ModuleType] = {}


def _purge() -> None:
    for name in list(sys.modules):
        if name == "payments_common" or name.startswith("payments_common.") or name.split(".")[0] in FUNCTION_NAMES:
            del sys.modules[name]


def import_fresh(function: str, environ: dict[str, str]) -> ModuleType:
    """Import ``<function>.handler`` from scratch under ``environ`` (a cold start)."""
    saved = {name: os.environ.get(name) for name in environ}
    _purge()
    os.environ.update(environ)
    try:
        return importlib.import_module(f"{function}.handler")
    finally:
        _purge()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_handler(function: str, region: str = PRIMARY, **overrides: str) -> ModuleType:
    """A handler module as deployed in ``region`` (cached), with its caches cleared."""
    key = (function, region, tuple(sorted(overrides.items())))
    module = _LOADED.get(key)
    if module is None:
        module = import_fresh(function, {**function_env(function, region), **overrides})
        _LOADED[key] = module
    lease_cache = getattr(module, "LEASES", None)
    if lease_cache is not None:
        lease_cache.clear()
    recorder = getattr(module, "metrics", None)
    if recorder is not None:  # metrics added outside a handler (route() in tests) must not leak into the next test
        recorder.clear_metrics()
    return module


# ---------------------------------------------------------------- moto

_ATOMIC = threading.RLock()
#: Error injectors consulted before moto answers: (request) -> (status, headers, body) or None.
_INJECTORS: list[Callable[[Any], tuple[int, dict[str, str], str] | None]] = []


@pytest.fixture(autouse=True)
def atomic_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Serialise moto requests (DynamoDB evaluates a condition and writes atomically, moto does not).

    Also the one place errors are injected: botocore calls every ``before-send`` handler, so an
    error returned by another handler would not stop moto from applying the request.
    """
    original = botocore_stubber.process_request

    def process_request(request: Any) -> Any:
        with _ATOMIC:
            for injector in list(_INJECTORS):
                answer = injector(request)
                if answer is not None:
                    return answer
            answer = original(request)
            if answer is not None and answer[0] == 200:
                _log_write(request)
            return answer

    monkeypatch.setattr(botocore_stubber, "process_request", process_request)
    yield
    _INJECTORS.clear()


def create_tables(region: str) -> None:
    """The three tables with the key schemas of docs/design.md."""
    client = boto3.client("dynamodb", region_name=region)
    client.create_table(
        TableName=TRANSACTIONS,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "payment_id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "payment_id", "AttributeType": "S"},
            {"AttributeName": "merchant_id", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "S"},
            {"AttributeName": "pending_shard", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "merchant-created-index",
                "KeySchema": [
                    {"AttributeName": "merchant_id", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "pending-index",
                "KeySchema": [
                    {"AttributeName": "pending_shard", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
    )
    for name, key, ttl in (
        (IDEMPOTENCY, "id", "expiration"),
        (CONTROL, "pk", "expires_at"),
        (MERCHANTS, "key_id", "expires_at"),
    ):
        client.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        )
        client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl})


@dataclass
class Aws:
    """Handles on the mocked accounts' resources, per region."""

    dynamodb: dict[str, Any] = field(default_factory=dict)
    sqs: dict[str, Any] = field(default_factory=dict)

    def items(self, table: str, region: str = PRIMARY) -> list[dict[str, Any]]:
        """Every item of a table (low-level format)."""
        return self.dynamodb[region].scan(TableName=table, ConsistentRead=True)["Items"]

    def item(self, table: str, key: dict[str, str], region: str = PRIMARY) -> dict[str, Any] | None:
        """One item by its string key, or None."""
        low = {name: {"S": value} for name, value in key.items()}
        return self.dynamodb[region].get_item(TableName=table, Key=low, ConsistentRead=True).get("Item")

    def messages(self, region: str = PRIMARY, url: str | None = None) -> list[dict[str, Any]]:
        """Receive (and so hide) every message of the processing queue."""
        received: list[dict[str, Any]] = []
        while True:
            batch = self.sqs[region].receive_message(
                QueueUrl=url or queue_url(region), MaxNumberOfMessages=10, VisibilityTimeout=300
            )
            if not batch.get("Messages"):
                return received
            received.extend(batch["Messages"])

    def queue_depth(self, region: str = PRIMARY) -> int:
        """Visible plus in-flight messages of the processing queue."""
        attributes = self.sqs[region].get_queue_attributes(
            QueueUrl=queue_url(region),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def put_lease(
        self,
        holder: str = PRIMARY,
        *,
        epoch: int = 1,
        valid_for: float = 86400.0,
        seq: int = 0,
        into: str | None = None,
        revoked_by: str = "",
    ) -> None:
        """Set the ``lease`` directly in the control table of ``into`` (a region, or :data:`WITNESS` for the
        witness table; default: all three copies)."""
        item = {
            "pk": {"S": "lease"},
            "epoch": {"N": str(epoch)},
            "holder": {"S": holder},
            "valid_until": {"N": str(int((time.time() + valid_for) * 1000))},
            "seq": {"N": str(seq)},
            "began_at": {"S": "2024-05-01T00:00:00.000Z"},
            "reason": {"S": "test"},
        }
        if revoked_by:
            item["revoked_by"] = {"S": revoked_by}
        for target in [into] if into else (*REGIONS, WITNESS):
            self.dynamodb[target].put_item(TableName=WITNESS_TABLE if target == WITNESS else CONTROL, Item=item)

    def lease(self, region: str) -> dict[str, Any] | None:
        """The ``lease`` item of ``region``'s replica (:data:`WITNESS`: of the witness table)."""
        return self.item(WITNESS_TABLE if region == WITNESS else CONTROL, {"pk": "lease"}, region)


@pytest.fixture
def aws() -> Iterator[Aws]:
    """moto with the tables, the processing queue and the alert topic in both regions."""
    with mock_aws():
        handles = Aws()
        for region in REGIONS:
            create_tables(region)
            handles.dynamodb[region] = boto3.client("dynamodb", region_name=region)
            handles.sqs[region] = boto3.client("sqs", region_name=region)
            url = handles.sqs[region].create_queue(QueueName=QUEUE, Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
            assert url == queue_url(region)
            boto3.client("sns", region_name=region).create_topic(Name=TOPIC)
        handles.dynamodb[WITNESS] = boto3.client("dynamodb", region_name=WITNESS)
        handles.dynamodb[WITNESS].create_table(
            TableName=WITNESS_TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        )
        # The steady state of a deployed pair: the primary holds the lease, in all three copies.
        handles.put_lease(PRIMARY)
        WRITES.clear()
        yield handles


#: Key attribute of each table, for the write log.
TABLE_KEYS = {TRANSACTIONS: "payment_id", IDEMPOTENCY: "id", CONTROL: "pk"}
#: (region, table, key) -> order of the last write there: the clock last-writer-wins compares.
WRITES: dict[tuple[str, str, str], int] = {}
_WRITE_ORDER = [0]
_WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems")


def _log_write(request: Any) -> None:
    """Record which items a successful DynamoDB write touched, in global order."""
    host = request.url.split("://", 1)[-1].split("/", 1)[0]
    if not host.startswith("dynamodb."):
        return
    target = request.headers.get("X-Amz-Target", b"")
    operation = (target.decode() if isinstance(target, bytes) else target).rsplit(".", 1)[-1]
    if operation not in _WRITE_OPERATIONS:
        return
    region = host.split(".")[1]
    body = json.loads(request.body.decode() if isinstance(request.body, bytes) else request.body or "{}")
    if operation == "TransactWriteItems":
        writes = [w[kind] for w in body.get("TransactItems", []) for kind in ("Put", "Update", "Delete") if kind in w]
    else:
        writes = [body]
    for write in writes:
        key_attr = TABLE_KEYS.get(write.get("TableName", ""))
        record = write.get("Item") or write.get("Key") or {}
        if key_attr and key_attr in record:
            _WRITE_ORDER[0] += 1
            WRITES[(region, write["TableName"], record[key_attr]["S"])] = _WRITE_ORDER[0]


class Replicator:
    """Global-table replication on demand: per item, the later write wins (last writer wins).

    ``sync`` copies every item written in ``source`` since it last arrived in ``target`` and
    whose write there is newer than the target's own last write of it; nothing moves until a
    test calls it, so lag, a stall and a partition are each just "not yet".
    """

    def __init__(self, aws: Aws) -> None:
        self.aws = aws

    def sync(self, table: str, source: str, target: str) -> int:
        """Replicate ``table`` from ``source`` to ``target``; returns how many items moved."""
        key_attr = TABLE_KEYS[table]
        moved = 0
        for (region, name, key), order in sorted(WRITES.items(), key=lambda entry: entry[1]):
            if region != source or name != table or order <= WRITES.get((target, table, key), 0):
                continue
            item = self.aws.item(table, {key_attr: key}, source)
            if item is None:
                self.aws.dynamodb[target].delete_item(TableName=table, Key={key_attr: {"S": key}})
            else:
                self.aws.dynamodb[target].put_item(TableName=table, Item=item)
            # A replicated write keeps the source's timestamp, it is not a new write in the target.
            WRITES[(target, table, key)] = order
            moved += 1
        return moved

    def both_ways(self, *tables: str) -> None:
        """Converge ``tables`` (default: all three) in both directions."""
        for table in tables or tuple(TABLE_KEYS):
            self.sync(table, PRIMARY, SECONDARY)
            self.sync(table, SECONDARY, PRIMARY)


@pytest.fixture
def replicator(aws: Aws) -> Replicator:
    """On-demand, last-writer-wins replication between the two regions' tables."""
    return Replicator(aws)


def replicate(aws: Aws, table: str, source: str, target: str) -> int:
    """Copy every item of ``table`` from ``source`` to ``target`` (simulated global-table replication)."""
    items = aws.items(table, source)
    for item in items:
        aws.dynamodb[target].put_item(TableName=table, Item=item)
    return len(items)


# ---------------------------------------------------------------- events and context


@dataclass
class FakeContext:
    """The parts of a Lambda context Powertools reads."""

    function_name: str = "payment-validation-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{PRIMARY}:{ACCOUNT}:function:payment-validation-test"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        """Plenty of time left."""
        return 30_000


@pytest.fixture
def context() -> FakeContext:
    """A Lambda context."""
    return FakeContext()


VALID_BODY = {"amount": "10.50", "currency": "USD", "merchant_id": "merchant-1", "card_token": "tok_visa_4242"}


def api_event(
    body: Any = None,
    key: str | None = "key-0001",
    *,
    headers: dict[str, Any] | None = None,
    multi: dict[str, list[Any]] | None = None,
    base64_body: bool = False,
    merchant: str | None = VALID_BODY["merchant_id"],
) -> dict[str, Any]:
    """A REST API (v1) proxy event for ``POST /payments``; dict bodies are JSON-encoded.

    ``merchant`` is who the authorizer authenticated (``requestContext.authorizer``); None: no authorizer context.
    """
    body = VALID_BODY if body is None else body
    text = body if isinstance(body, str) else json.dumps(body)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        all_headers["Idempotency-Key"] = key
    if base64_body:
        text = base64.b64encode(text.encode()).decode()
    return {
        "resource": "/payments",
        "path": "/payments",
        "httpMethod": "POST",
        "headers": all_headers,
        "multiValueHeaders": multi if multi is not None else {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": None,
        "pathParameters": None,
        "requestContext": {"requestId": "req-1", "stage": "v1", **authorizer_context(merchant)},
        "body": text,
        "isBase64Encoded": base64_body,
    }


def authorizer_context(merchant: str | None, key_id: str = "0123456789abcdef") -> dict[str, Any]:
    """The ``authorizer`` part of ``requestContext`` API Gateway adds after the authorizer allowed ``merchant``."""
    if merchant is None:
        return {}
    return {"authorizer": {"merchant_id": merchant, "key_id": key_id, "principalId": merchant}}


def decode(response: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a proxy response."""
    return json.loads(response["body"])


# ---------------------------------------------------------------- logs, throttling


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.plain = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        service_handler = getattr(logging.getLogger(SERVICE), "powertools_handler", None)
        formatter = service_handler.formatter if record.name == SERVICE and service_handler else self.plain
        try:
            self.lines.append(formatter.format(record))
        except Exception as exc:  # a formatting bug must fail the test, not vanish
            self.lines.append(f"FORMAT ERROR {exc!r}")


@pytest.fixture
def logs() -> Iterator[list[str]]:
    """Every log line any logger writes during the test, formatted as in CloudWatch (DEBUG and up)."""
    capture = _Capture()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        yield capture.lines
    finally:
        root.removeHandler(capture)
        root.setLevel(previous)


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry backoff records its delays instead of sleeping."""
    delays: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=delays.append))
    return delays


def inject_errors(
    service: str,
    operation: str,
    failures: int | None,
    code: str = "ProvisionedThroughputExceededException",
    region: str | None = None,
) -> tuple[list[int], Callable[[], None]]:
    """Make the first ``failures`` attempts of ``service.operation`` (None: every attempt) fail with ``code``.

    ``operation="*"`` fails every operation of ``service`` (in ``region``): a partition.

    The error replaces moto's answer, so botocore's retry handler sees a real error response and
    retries with the client's retry configuration. Returns (attempt counter, remove function).
    """
    attempts = [0]
    status = 500 if code in ("InternalServerError", "InternalFailure", "ServiceUnavailable") else 400
    prefix = "com.amazonaws.dynamodb.v20120810#" if service == "dynamodb" else ""

    def matches(request: Any) -> bool:
        host = request.url.split("://", 1)[-1].split("/", 1)[0]
        if not host.startswith(f"{service}.") or (region and f".{region}." not in host):
            return False
        if operation == "*":
            return True
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
        return target.endswith(f".{operation}") or f"Action={operation}" in body

    def injector(request: Any) -> tuple[int, dict[str, str], str] | None:
        if not matches(request):
            return None
        attempts[0] += 1
        if failures is not None and attempts[0] > failures:
            return None
        body = json.dumps({"__type": f"{prefix}{code}", "message": f"injected {code}"})
        return status, {"x-amzn-errortype": code, "content-type": "application/x-amz-json-1.0"}, body

    _INJECTORS.append(injector)
    return attempts, lambda: _INJECTORS.remove(injector)
