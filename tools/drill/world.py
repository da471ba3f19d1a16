"""moto built from the synthesized definitions, plus what moto does not play.

That is: faults, the Lambda control API, global-table replication and the write stream the
figures are measured on.

Every AWS call the handlers make goes through :meth:`World.process_request` (moto's request
hook). In order: calls to a region that is down (or across a partition) fail as a lost
connection; injected faults answer with an AWS error; Lambda control calls (event source
mappings, reserved concurrency) are answered from :class:`LambdaControl`; everything else goes
to moto, and successful DynamoDB writes are captured for replication and for the observers
(payment status history, the payment-service-provider stand-in).
"""

from __future__ import annotations

import email.message
import json
import re
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3
from botocore.exceptions import EndpointConnectionError

from tools.drill.clock import SimClock
from tools.drill.replication import Replicator
from tools.drill.synth import ACCOUNT, MappingSpec, Topology

Response = tuple[int, dict[str, str], str]
#: observer(table, region, key, old image, new image, replicated)
WriteObserver = Callable[[str, str, dict[str, Any], dict[str, Any] | None, dict[str, Any] | None, bool], None]
_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")


class DrillSetupError(RuntimeError):
    """moto's resources do not match what the synth says (names, URLs, ARNs)."""


class FunctionCrashed(BaseException):
    """The function's process died mid-invocation (killed, timed out): nothing after this runs.

    A ``BaseException``, so no ``except Exception`` in the code under test can swallow it.
    """


@dataclass
class Crash:
    """Kill ``function`` in ``region`` right after its first successful write of item ``pk`` (one shot)."""

    region: str
    function: str
    pk: str
    fired_at: float | None = None


#: A :class:`Fault` code: the call does not connect (a broken endpoint), as for a region that is down.
UNREACHABLE = "EndpointConnectionError"


@dataclass
class Fault:
    """An injected AWS error: ``service`` calls in ``region`` (optionally only ``operations``, ``functions``)."""

    region: str
    service: str
    code: str = "ProvisionedThroughputExceededException"
    operations: frozenset[str] | None = None
    #: Only calls made by these functions (their keys); None: every caller.
    functions: frozenset[str] | None = None
    #: Fraction of matching calls that fail, deterministic: every n-th call with n = 1 / rate.
    rate: float = 1.0
    seen: int = 0

    def answer(self, operation: str, function: str | None = None) -> Response | None:
        """The error response for a matching call (``operation`` made by ``function``), or None."""
        if self.operations is not None and operation not in self.operations:
            return None
        if self.functions is not None and function not in self.functions:
            return None
        self.seen += 1
        if self.rate < 1.0 and (self.seen % max(1, round(1 / self.rate))) != 0:
            return None
        status = 500 if self.code in ("InternalServerError", "InternalFailure", "ServiceUnavailable") else 400
        prefix = "com.amazonaws.dynamodb.v20120810#" if self.service == "dynamodb" else ""
        body = json.dumps({"__type": f"{prefix}{self.code}", "message": f"drill fault {self.code}"})
        return status, {"x-amzn-errortype": self.code, "content-type": "application/x-amz-json-1.0"}, body


@dataclass
class Mapping:
    """An event source mapping's live state (the orchestrator can enable it)."""

    spec: MappingSpec
    uuid: str
    enabled: bool


class LambdaControl:
    """The Lambda control-plane calls the code makes: event source mappings and reserved concurrency."""

    _ESM = re.compile(r"^/2015-03-31/event-source-mappings/(?P<uuid>[^/?]*)")
    _CONCURRENCY = re.compile(r"^/20\d\d-\d\d-\d\d/functions/(?P<name>[^/]+)/concurrency")

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.mappings = [
            Mapping(spec, str(uuid.uuid5(uuid.NAMESPACE_URL, repr(spec))), spec.enabled) for spec in topology.mappings
        ]
        self.concurrency: dict[tuple[str, str], int | None] = {
            (spec.region, spec.name): spec.reserved_concurrency for spec in topology.functions.values()
        }

    def mapping(self, region: str, function: str) -> list[Mapping]:
        """The mappings of a function (key) in a region."""
        return [m for m in self.mappings if m.spec.region == region and m.spec.function == function]

    def _view(self, mapping: Mapping) -> dict[str, Any]:
        spec = mapping.spec
        function = self.topology.function(spec.region, spec.function)
        return {
            "UUID": mapping.uuid,
            "EventSourceArn": f"arn:aws:sqs:{spec.region}:{ACCOUNT}:{spec.queue}",
            "FunctionArn": function.arn,
            "BatchSize": spec.batch_size,
            "State": "Enabled" if mapping.enabled else "Disabled",
        }

    def answer(self, region: str, method: str, path: str, query: str, body: bytes | str | None) -> Response:
        """The JSON answer to one Lambda API call."""
        payload = json.loads(body or "{}") if body else {}
        if match := self._ESM.match(path):
            if method == "GET" and not match.group("uuid"):
                wanted = dict(part.split("=", 1) for part in query.split("&") if "=" in part).get("FunctionName", "")
                found = [
                    self._view(m)
                    for m in self.mappings
                    if m.spec.region == region and wanted in ("", self.topology.function(region, m.spec.function).name)
                ]
                return 200, {}, json.dumps({"EventSourceMappings": found})
            mapping = next((m for m in self.mappings if m.uuid == match.group("uuid")), None)
            if mapping is None:
                return 404, {"x-amzn-errortype": "ResourceNotFoundException"}, json.dumps({"Type": "User"})
            if method == "PUT" and "Enabled" in payload:
                mapping.enabled = bool(payload["Enabled"])
            return 202, {}, json.dumps(self._view(mapping))
        if match := self._CONCURRENCY.match(path):
            key = (region, match.group("name"))
            if method == "PUT":
                self.concurrency[key] = int(payload["ReservedConcurrentExecutions"])
            value = self.concurrency.get(key)
            return 200, {}, json.dumps({} if value is None else {"ReservedConcurrentExecutions": value})
        return 400, {"x-amzn-errortype": "InvalidRequestException"}, json.dumps({"message": f"drill: {path}"})


@dataclass
class World:
    """The simulated AWS of both regions."""

    topology: Topology
    clock: SimClock
    down: set[str] = field(default_factory=set)
    partitioned: bool = False
    faults: list[Fault] = field(default_factory=list)
    crashes: list[Crash] = field(default_factory=list)
    observers: list[WriteObserver] = field(default_factory=list)
    #: (region, subject) of every SNS publish (summaries the orchestrator sends).
    published: list[tuple[float, str, str]] = field(default_factory=list)
    #: (region, service, operation) -> count of calls the code made.
    calls: dict[tuple[str, str, str], int] = field(default_factory=dict)

    #: http(caller region, method, url) -> status, or None when nothing answers (down, partition, unknown host).
    http: Callable[[str | None, str, str], int | None] | None = None

    #: metric(region, namespace, name, dimensions, value): DynamoDB throttle datapoints of injected faults.
    metric: Callable[[str, str, str, dict[str, str], float], None] | None = None

    def __post_init__(self) -> None:
        self.replicator = Replicator(self._apply_replicated)
        self.lambda_control = LambdaControl(self.topology)
        self.caller: str | None = None
        #: The function (key) whose invocation is making the calls, if any.
        self.function: str | None = None
        self._internal = 0
        self._lock = threading.RLock()
        self._clients: dict[tuple[str, str], Any] = {}

    # ---------------------------------------------------------------- setup

    def client(self, service: str, region: str) -> Any:
        """A harness-side client (its calls bypass faults and capture)."""
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = boto3.client(service, region_name=region)
        return self._clients[key]

    @contextmanager
    def internal(self) -> Iterator[None]:
        """Harness calls: straight to moto, no faults, no capture."""
        self._internal += 1
        try:
            yield
        finally:
            self._internal -= 1

    def create(self) -> None:
        """Tables, queues and topics in moto, from the synthesized definitions."""
        with self.internal():
            for table in self.topology.tables.values():
                for region in table.regions:
                    self._create_table(table, region)
            # Dead-letter queues first: a queue's redrive policy names its DLQ's ARN.
            for (region, name), queue in sorted(self.topology.queues.items(), key=lambda kv: bool(kv[1].dlq_name)):
                attributes = {
                    "VisibilityTimeout": str(queue.visibility_timeout_s),
                    "MessageRetentionPeriod": str(queue.retention_s),
                }
                if queue.dlq_name:
                    dlq_arn = f"arn:aws:sqs:{region}:{ACCOUNT}:{queue.dlq_name}"
                    attributes["RedrivePolicy"] = json.dumps(
                        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.max_receive_count}
                    )
                url = self.client("sqs", region).create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
                if url != queue.url:
                    raise DrillSetupError(f"queue {name} in {region}: moto URL {url} != synthesized {queue.url}")
            for (region, name), arn in self.topology.topics.items():
                created = self.client("sns", region).create_topic(Name=name)["TopicArn"]
                if created != arn:
                    raise DrillSetupError(f"topic {name} in {region}: moto ARN {created} != synthesized {arn}")

    def _create_table(self, table: Any, region: str) -> None:
        client = self.client("dynamodb", region)
        kwargs: dict[str, Any] = {
            "TableName": table.name,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": table.hash_key, "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in table.attributes.items()],
        }
        if table.indexes:
            kwargs["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index["name"],
                    "KeySchema": [{"AttributeName": index["hash_key"], "KeyType": "HASH"}]
                    + ([{"AttributeName": index["range_key"], "KeyType": "RANGE"}] if index.get("range_key") else []),
                    "Projection": {"ProjectionType": index.get("projection_type", "ALL")},
                }
                for index in table.indexes
            ]
        if table.stream_view_type:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": table.stream_view_type}
        client.create_table(**kwargs)
        if table.ttl_attribute:
            client.update_time_to_live(
                TableName=table.name, TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute}
            )

    # ---------------------------------------------------------------- the request hook

    @contextmanager
    def hooked(self) -> Iterator[World]:
        """Route every botocore request through :meth:`process_request` (inside ``mock_aws``)."""
        from moto.core.models import botocore_stubber

        original = botocore_stubber.process_request

        def process_request(request: Any) -> Any:
            return self.process_request(request, original)

        with ExitStack() as stack:
            stack.enter_context(mock.patch.object(botocore_stubber, "process_request", process_request))
            stack.enter_context(_item_level_transaction_backups())
            # Before the handlers are imported: ``canary.region_healthy`` binds the opener as a default.
            stack.enter_context(mock.patch.object(urllib.request, "urlopen", self.urlopen))
            yield self

    def urlopen(self, request: Any, timeout: float | None = None) -> Any:
        """HTTPS from a function (the orchestrator's ``/health`` checks): answered by :attr:`http`.

        Nothing leaves the process: a host the drill does not serve is a ``URLError``.
        """
        url = request.full_url if isinstance(request, urllib.request.Request) else str(request)
        method = request.get_method() if isinstance(request, urllib.request.Request) else "GET"
        status = self.http(self.caller, method, url) if self.http is not None else None
        if status is None:
            raise urllib.error.URLError(f"drill: no answer from {url}")
        if status >= 400:
            raise urllib.error.HTTPError(url, status, "drill", email.message.Message(), None)
        return _HttpResponse(status)

    def process_request(self, request: Any, moto: Callable[[Any], Any]) -> Any:
        """Faults, the Lambda control API, moto, and write capture, in that order."""
        with self._lock:
            if self._internal:
                return moto(request)
            service, region, rest = _service_region(request)
            operation = _operation(request)
            self.calls[(region, service, operation)] = self.calls.get((region, service, operation), 0) + 1
            if region in self.down or self.cut(self.caller, region):
                raise EndpointConnectionError(endpoint_url=request.url)
            for fault in self.faults:
                if fault.region == region and fault.service == service:
                    answer = fault.answer(operation, self.function)
                    if answer is not None and fault.code == UNREACHABLE:
                        raise EndpointConnectionError(endpoint_url=request.url)
                    if answer is not None:
                        self._throttle_metric(region, service, operation, fault, request)
                        return answer
            if service == "lambda":
                return self._lambda(region, request, rest, moto)
            if service == "sns" and operation == "Publish":
                subject = _form(request).get("Subject", "")
                self.published.append((self.clock.now, region, subject))
            if service != "dynamodb" or operation not in _WRITES:
                return moto(request)
            return self._write(region, operation, request, moto)

    def _lambda(self, region: str, request: Any, rest: str, moto: Callable[[Any], Any]) -> Any:
        """A Lambda API call: answered by :class:`LambdaControl` (moto has no event source mapping state here)."""
        path, _, query = ("/" + rest).partition("?")
        return self.lambda_control.answer(region, request.method, path, query, request.body)

    def poller(self, region: str, function: str) -> Any:
        """The SQS client an event source mapping of ``function`` polls with (here: the harness's)."""
        return self.client("sqs", region)

    def queue_counts(self, region: str, name: str, poller: str | None = None) -> tuple[int, int]:
        """(visible, in flight) messages of a queue, read from moto's backend (its clock is the drill's).

        ``poller``: the function whose event source mapping asks (against a deployment, with its role).
        """
        from moto.sqs.models import sqs_backends

        queue = sqs_backends[ACCOUNT][region].queues[name]
        return queue.approximate_number_of_messages, queue.approximate_number_of_messages_not_visible

    def _throttle_metric(self, region: str, service: str, operation: str, fault: Fault, request: Any) -> None:
        """DynamoDB publishes ``Read``/``WriteThrottleEvents`` per table for throttled requests."""
        if (
            self.metric is None
            or service != "dynamodb"
            or ("Throughput" not in fault.code and "Throttl" not in fault.code)
        ):
            return
        body = json.loads(request.body or "{}")
        tables = (
            [body["TableName"]]
            if "TableName" in body
            else [action.get("TableName") for entry in body.get("TransactItems", []) for action in entry.values()]
        )
        name = "WriteThrottleEvents" if operation in _WRITES else "ReadThrottleEvents"
        for table in filter(None, tables):
            self.metric(region, "AWS/DynamoDB", name, {"TableName": table}, 1.0)

    def _write(self, region: str, operation: str, request: Any, moto: Callable[[Any], Any]) -> Any:
        body = json.loads(request.body or "{}")
        touched = list(_written_keys(operation, body, self.topology))
        before = {i: self._get(table, region, key) for i, (table, key) in enumerate(touched)}
        answer = moto(request)
        if answer is None or answer[0] != 200:
            return answer
        for i, (table, key) in enumerate(touched):
            after = self._get(table, region, key)
            spec = self.topology.tables.get(table)
            if spec is not None:
                self.replicator.record(table, region, spec.regions, key, after, self.clock.now)
            for observer in self.observers:
                observer(table, region, key, before[i], after, False)
        for crash in self.crashes:
            mine = crash.fired_at is None and (crash.region, crash.function) == (self.caller, self.function)
            if mine and any(key.get("pk") == {"S": crash.pk} for _table, key in touched):
                crash.fired_at = self.clock.elapsed
                raise FunctionCrashed(f"{self.function} in {region} crashed after writing {crash.pk}")
        return answer

    @staticmethod
    def _backend(region: str) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[ACCOUNT][region]

    def _get(self, table: str, region: str, key: dict[str, Any]) -> dict[str, Any] | None:
        """An item's image, read from moto's backend directly (no request: fast, and never captured).

        ``to_json`` builds new dicts, and moto builds a new item from the image it is given on a put,
        so images are never shared with the table.
        """
        item = self._backend(region).get_item(table, key)
        return item.to_json()["Attributes"] if item is not None else None

    def _apply_replicated(self, table: str, region: str, key: dict[str, Any], image: dict[str, Any] | None) -> None:
        before = self._get(table, region, key)
        backend = self._backend(region)
        if image is None:
            if before is not None:
                backend.delete_item(table, key)
        else:
            backend.put_item(table, image)
        for observer in self.observers:
            observer(table, region, key, before, image, True)

    # ---------------------------------------------------------------- faults

    def replicate(self) -> int:
        """Deliver due replication (a down region neither sends nor receives; a partition stalls all)."""
        down = set(self.topology.regions) if self.partitioned else set(self.down)
        return self.replicator.deliver(self.clock.now, down)

    def cut(self, caller: str | None, region: str) -> bool:
        """Whether a call from ``caller`` to ``region`` crosses the partition.

        The partition is between the two regions only: the witness region stays reachable from both.
        """
        pair = set(self.topology.regions)
        return self.partitioned and caller in pair and region in pair and caller != region

    def fail(self, region: str) -> None:
        """The whole region is unreachable (its API, its Lambda, its DynamoDB)."""
        self.down.add(region)

    def recover(self, region: str) -> None:
        """The region is back."""
        self.down.discard(region)


@contextmanager
def _item_level_transaction_backups() -> Iterator[None]:
    """``TransactWriteItems`` backing up only the items it names (:func:`tools.emulator.item_level_backups`).

    moto backs up every touched table whole (``copy.deepcopy``) for its rollback: a third of the
    drill's CPU, growing with the table. Same answers, same final state
    (``tests/tools/drill/test_world.py``).
    """
    from moto.dynamodb import models

    from tools.emulator import NoTableCopies, item_level_backups

    with (
        mock.patch.object(models, "copy", NoTableCopies),
        mock.patch.object(
            models.DynamoDBBackend,
            "transact_write_items",
            item_level_backups(models.DynamoDBBackend.transact_write_items),
        ),
    ):
        yield


@dataclass
class _HttpResponse:
    """What ``urlopen`` returns, as far as the handlers use it."""

    status: int

    def __enter__(self) -> _HttpResponse:
        return self

    def __exit__(self, *_: Any) -> None:
        return None


#: ``Credential=<key>/<date>/<region>/<service>/aws4_request`` of a SigV4 ``Authorization`` header.
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)/aws4_request")


def _service_region(request: Any) -> tuple[str, str, str]:
    """(service, region, path after the host) of a request: from its AWS host name, or else its signature.

    In moto's process a request goes to ``<service>.<region>.amazonaws.com``; to an emulator
    (``AWS_ENDPOINT_URL``) the host is ``127.0.0.1``, and the signature's credential scope says both.
    """
    host, _, rest = request.url.split("://", 1)[-1].partition("/")
    if host.endswith(".amazonaws.com"):
        return host.split(".")[0], host.split(".")[1], rest
    authorization = request.headers.get("Authorization", b"")
    authorization = authorization.decode() if isinstance(authorization, bytes) else str(authorization)
    scope = _CREDENTIAL_SCOPE.search(authorization)
    if scope is None:
        raise DrillSetupError(f"an unsigned request to {host}: cannot tell its service and region")
    return scope.group("service"), scope.group("region"), rest


def _operation(request: Any) -> str:
    target = request.headers.get("X-Amz-Target", b"")
    target = target.decode() if isinstance(target, bytes) else target
    if target:
        return target.rsplit(".", 1)[-1]
    return _form(request).get("Action", request.method)


def _form(request: Any) -> dict[str, str]:
    from urllib.parse import parse_qsl

    body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
    if body.startswith("{"):
        return {}
    return dict(parse_qsl(body))


def _key(table: str, item: dict[str, Any], topology: Topology) -> dict[str, Any]:
    spec = topology.tables.get(table)
    names = [spec.hash_key] if spec else list(item)[:1]
    return {name: item[name] for name in names if name in item}


def _written_keys(operation: str, body: dict[str, Any], topology: Topology) -> Iterator[tuple[str, dict[str, Any]]]:
    """(table, key) of every item a write request changes."""
    if operation == "PutItem":
        yield body["TableName"], _key(body["TableName"], body["Item"], topology)
    elif operation in ("UpdateItem", "DeleteItem"):
        yield body["TableName"], body["Key"]
    elif operation == "TransactWriteItems":
        for entry in body["TransactItems"]:
            for kind, action in entry.items():
                if kind == "Put":
                    yield action["TableName"], _key(action["TableName"], action["Item"], topology)
                elif kind in ("Update", "Delete"):
                    yield action["TableName"], action["Key"]
    elif operation == "BatchWriteItem":
        for table, requests in body["RequestItems"].items():
            for entry in requests:
                if "PutRequest" in entry:
                    yield table, _key(table, entry["PutRequest"]["Item"], topology)
                elif "DeleteRequest" in entry:
                    yield table, entry["DeleteRequest"]["Key"]
