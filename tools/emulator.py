"""Local AWS for deploys and tests: moto in server mode, extended in-process where it falls short.

``python -m tools.emulator serve --port N`` registers the extensions below in this
process, then serves moto on 127.0.0.1:N (``--port 0`` picks a free port and writes
it to ``--port-file``). :class:`Emulator` starts that server in a subprocess, waits
until ``GET /moto-api/`` answers, clears it with ``POST /moto-api/reset`` and stops it
by its PID. ``python -m tools.emulator start|stop|status`` does the same from a shell
and remembers the running server in ``.state/emulator.json``.

Extensions (moto 5.2.5 gaps, each found against the Terraform AWS provider 5.100.0):

- DynamoDB global table replicas (``UpdateTable`` ``ReplicaUpdates``): moto answers 200
  and changes nothing, so the provider waits for a replica that never becomes ACTIVE.
- CloudWatch composite alarms (``PutCompositeAlarm``): not implemented (HTTP 500).
- SQS ``RedriveAllowPolicy``: accepted but never returned by ``GetQueueAttributes``; setting any
  attribute drops the queue policy; JSON attributes come back with spaces.
- KMS multi-region replica keys: a replica shares its primary's ``MultiRegionConfiguration``
  (a shallow copy), so reading the replica turns the primary into a REPLICA; ``ReplicateKey``
  ignores its ``Description``, ``Policy`` and ``Tags``.
- S3 bucket policies: conditions with an operator moto does not know (``Bool``) are taken as
  true, so a TLS-only ``Deny`` (``aws:SecureTransport = false``) denies every object request.
- Lambda ``DeadLetterConfig``: dropped, so every plan wants to set it again.
- Route 53 ``CLOUDWATCH_METRIC`` health checks: the alarm is dropped and endpoint-only
  settings are returned, so every plan replaces the check.
- EC2 security group rules to a prefix list or a security group: the description is dropped.
- IAM enforcement (once switched on) checks most services against resource ``*`` only, with the
  operation's name as the action: :mod:`tools.emulator_iam` checks DynamoDB, SQS, SNS, KMS, Lambda
  and CloudWatch calls against the resource ARNs (and IAM actions) AWS evaluates; every decision
  goes to the decisions file next to the log (:func:`decisions_path`).
- KMS ciphertexts of multi-region keys: moto's blob keeps 36 characters of the key id, and a
  multi-region key's id (``mrk-`` and a UUID) has 40, so nothing it encrypts decrypts.
- Lambda ``ListEventSourceMappings`` with ``FunctionName``: moto compares it with whatever the
  mapping was created with (the provider sends the function's ARN), so a function name finds nothing.
- DynamoDB ``TransactWriteItems``: moto deep-copies every table it touches, streams included,
  for its rollback, so each transaction costs time and memory in proportion to everything ever
  written (a drill of the deployment ran the emulator out of 24 GiB). It backs up the named items.
- Lambda code never runs: moto would receive an SQS event source mapping's messages and try to run
  the function in Docker (there is none). A mapping is configuration here; the DR drill polls.

Controls (not AWS): ``POST /_emulator/clock`` with an epoch-seconds body freezes the time moto's
models read (SQS visibility timeouts, delays, receive counts) at that moment, so a drill's
simulated clock and the emulator agree; a body of ``real`` returns to the wall clock. The frozen
clock never goes back: a time before the last one set shifts the timeline an hour past it.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

REPO_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = REPO_ROOT / ".state"
#: Where ``start`` remembers the running emulator (pid, port, log) for ``stop`` and the deploy tool.
STATE_FILE = STATE_DIR / "emulator.json"
HOST = "127.0.0.1"
#: moto's default account: every ARN the emulator hands out carries it.
ACCOUNT_ID = "123456789012"
#: Settings moto reads at import time.
MOTO_ENV = {
    # Lambda roles may attach AWS managed policies (e.g. AWSLambdaVPCAccessExecutionRole).
    "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
    # Certificates validated through DNS are ISSUED at once instead of after 60 s.
    "MOTO_ACM_VALIDATION_WAIT": "0",
}
#: Credentials and region every client of the emulator uses; never real ones.
CLIENT_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}
#: Variables that would send a client of the emulator to a real account.
FOREIGN_AWS_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CA_BUNDLE",
)
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 10


class EmulatorError(RuntimeError):
    """The emulator did not start, answer or stop; the message holds the end of its log."""


# --------------------------------------------------------------------------- launcher


def client_env(endpoint: str, region: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for any AWS client (terraform, the AWS CLI, boto3) talking to the emulator at ``endpoint``.

    ``AWS_ENDPOINT_URL`` sends every service to the emulator, including the S3 backend of
    ``terraform_remote_state`` data sources; an IP-address endpoint makes the SDKs use
    path-style S3 URLs, so no bucket host name has to resolve.
    """
    env = {k: v for k, v in (os.environ if environ is None else environ).items() if k not in FOREIGN_AWS_ENV}
    env = {k: v for k, v in env.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update(CLIENT_ENV)
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": region, "AWS_DEFAULT_REGION": region})
    return env


def _http(method: str, url: str, timeout: float = 5.0, body: bytes = b"") -> int:
    """Status code of one request to the emulator (raises ``OSError`` when nothing answers)."""
    # text/plain: with urllib's default (a form), the server would parse the body away.
    request = urllib.request.Request(  # noqa: S310
        url, method=method, data=body if method == "POST" else None, headers={"Content-Type": "text/plain"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http://127.0.0.1 only)
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


class Emulator:
    """A moto server (with the extensions) in a subprocess on 127.0.0.1.

    Use as a context manager, or ``start()`` and ``stop()`` in a ``try``/``finally``::

        with Emulator(log_path) as emulator:
            env = client_env(emulator.endpoint, "us-east-1")
    """

    def __init__(self, log_path: Path, port: int = 0) -> None:
        self.log_path = log_path
        self.requested_port = port
        self.port: int | None = None
        self.pid: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self.port is None:
            raise EmulatorError("the emulator is not running")
        return f"http://{HOST}:{self.port}"

    def start(self) -> Emulator:
        """Start the server and return once ``GET /moto-api/`` answers 200."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        port_file = self.log_path.with_suffix(".port")
        port_file.unlink(missing_ok=True)
        env = {**os.environ, **MOTO_ENV, "PYTHONUNBUFFERED": "1"}
        if "EMULATOR_IAM_DECISIONS" not in env:  # a caller's own file wins (tools.emulator_iam.DECISIONS_ENV)
            env["EMULATOR_IAM_DECISIONS"] = str(decisions_path(self.log_path))
            decisions_path(self.log_path).unlink(missing_ok=True)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tools.emulator",
                    "serve",
                    "--port",
                    str(self.requested_port),
                    "--port-file",
                    str(port_file),
                ],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it by PID
            )
        self.pid = self._process.pid
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise EmulatorError(f"the emulator exited with {self._process.returncode}:\n{self.log_tail()}")
                if self.port is None and port_file.exists() and port_file.read_text().strip():
                    self.port = int(port_file.read_text())
                if self.port is not None:
                    with contextlib.suppress(OSError):
                        if _http("GET", f"{self.endpoint}/moto-api/") == 200:
                            return self
                time.sleep(0.2)
            raise EmulatorError(f"the emulator did not answer within {START_TIMEOUT_S} s:\n{self.log_tail()}")
        except BaseException:
            self.stop()
            raise
        finally:
            port_file.unlink(missing_ok=True)

    def reset(self) -> None:
        """Forget every resource (``POST /moto-api/reset``)."""
        status = _http("POST", f"{self.endpoint}/moto-api/reset")
        if status != 200:
            raise EmulatorError(f"reset answered {status}")

    def enforce_iam(self, enforce: bool = True) -> None:
        """Switch IAM enforcement on (every later call is checked against its caller's policies) or off.

        Off is moto's default. On, a call needs credentials moto knows (an IAM user's access key, or
        ``AssumeRole`` credentials obtained while enforcement was off or allowed by policy).
        """
        body = b"0" if enforce else b"inf"
        status = _http("POST", f"{self.endpoint}/moto-api/reset-auth", body=body)
        if status != 200:
            raise EmulatorError(f"reset-auth answered {status}")

    def set_clock(self, epoch_s: float | None) -> None:
        """Freeze the emulator's clock at ``epoch_s`` (see the module docstring); ``None``: the wall clock."""
        set_clock(self.endpoint, epoch_s)

    def stop(self) -> None:
        """Stop the server by its PID: SIGTERM, then SIGKILL after a grace period."""
        if self.pid is not None:
            stop_pid(self.pid, self._process)
        self.pid = None
        self.port = None
        self._process = None

    def log_tail(self, lines: int = 80) -> str:
        """The end of the server's log without successful requests, for failure messages."""
        return log_excerpt(self.log_path, lines)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


#: A werkzeug access-log line of a request that succeeded: noise in a failure message.
_SUCCESS_LINE = re.compile(r'" (2\d\d|3\d\d) -?\s*$')


def log_excerpt(log_path: Path, lines: int = 80) -> str:
    """The last ``lines`` lines of an emulator log, leaving out requests that succeeded."""
    if not log_path.exists():
        return f"(no log at {log_path})"
    kept = [line for line in log_path.read_text(errors="replace").splitlines() if not _SUCCESS_LINE.search(line)]
    return "\n".join(kept[-lines:]) or "(only successful requests)"


def decisions_path(log_path: Path) -> Path:
    """Where the emulator logging to ``log_path`` appends its IAM decisions (one JSON object a line)."""
    return log_path.with_suffix(".iam.jsonl")


def set_clock(endpoint: str, epoch_s: float | None) -> None:
    """``POST /_emulator/clock``: freeze the clock of the emulator at ``endpoint``, or free it (``None``)."""
    body = b"real" if epoch_s is None else repr(float(epoch_s)).encode()
    status = _http("POST", f"{endpoint}{CLOCK_PATH}", body=body)
    if status != 200:
        raise EmulatorError(f"{CLOCK_PATH} answered {status}")


def stop_pid(pid: int, process: subprocess.Popen[bytes] | None = None) -> None:
    """Terminate one process by its id and wait for it (SIGKILL when it ignores SIGTERM)."""

    def gone() -> bool:
        if process is not None:
            return process.poll() is not None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.1)
    if not gone():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if process is not None:
            process.wait(timeout=STOP_TIMEOUT_S)


# ----------------------------------------------------------------- a remembered emulator


def remember(emulator: Emulator, state_file: Path = STATE_FILE) -> None:
    """Write pid, port and log of a running emulator, so another command can use or stop it."""
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(
        json.dumps({"pid": emulator.pid, "port": emulator.port, "log": str(emulator.log_path)}, indent=2) + "\n"
    )


def remembered(state_file: Path = STATE_FILE) -> dict[str, object] | None:
    """The remembered emulator when it still answers, else None (and the stale record is removed)."""
    if not state_file.exists():
        return None
    record = json.loads(state_file.read_text())
    try:
        alive = _http("GET", f"http://{HOST}:{record['port']}/moto-api/", timeout=2) == 200
    except OSError:
        alive = False
    if not alive:
        state_file.unlink(missing_ok=True)
        return None
    return record


def forget(state_file: Path = STATE_FILE) -> bool:
    """Stop the remembered emulator by its PID; False when none was running."""
    record = remembered(state_file)
    state_file.unlink(missing_ok=True)
    if record is None:
        return False
    stop_pid(int(record["pid"]))  # type: ignore[call-overload]
    return True


# ------------------------------------------------------------------------------ server


def serve(host: str, port: int, port_file: Path | None) -> None:
    """Register the extensions, then serve moto until SIGTERM/SIGINT."""
    for name, value in MOTO_ENV.items():
        os.environ.setdefault(name, value)
    install_extensions()

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    server = make_server(
        host,
        port,
        serialized(with_controls(DomainDispatcherApplication(create_backend_app))),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    actual_port = server.server_address[1]
    if port_file is not None:
        port_file.write_text(str(actual_port))

    def shutdown(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, shutdown)
    print(f"moto {_moto_version()} with extensions on http://{host}:{actual_port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.server_close()


def serialized(app: Callable[..., Iterable[bytes]]) -> Callable[..., list[bytes]]:
    """The WSGI ``app``, one request at a time.

    moto's backends are plain dicts and lists, not written for concurrent writers; several
    terraform processes at once (two suffixes, two regions) must not interleave inside them.
    Connections are still accepted by threads, so a slow request only delays the others.
    """
    lock = threading.Lock()

    def handle(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
        with lock:
            return list(app(environ, start_response))

    return handle


#: The control that sets the emulator's clock (not an AWS API).
CLOCK_PATH = "/_emulator/clock"
#: A clock set before the last time it was set jumps this far past that time instead (see :func:`with_controls`).
REWIND_GAP_S = 3600.0
#: The frozen time (naive UTC, as moto's ``utcnow``) or None for the wall clock; the shift that keeps it
#: moving forward; the last frozen moment (epoch seconds).
_CLOCK: dict[str, object] = {"frozen": None, "shift": 0.0, "last": None}


def _freeze(requested: float) -> None:
    """Freeze the clock at ``requested`` plus the shift; a moment before the last one moves the shift on.

    The emulator's clock never goes back: a second drill run starting its simulated clock again
    would otherwise meet timestamps of the first from its future (SQS's one purge a minute, message
    ages). Shifting keeps every difference a run sees exact.
    """
    import datetime

    moment = requested + float(_CLOCK["shift"])  # type: ignore[arg-type]
    last = _CLOCK["last"]
    if isinstance(last, float) and moment < last:
        _CLOCK["shift"] = float(_CLOCK["shift"]) + last - moment + REWIND_GAP_S  # type: ignore[arg-type]
        moment = requested + float(_CLOCK["shift"])  # type: ignore[arg-type]
    _CLOCK["last"] = moment
    _CLOCK["frozen"] = datetime.datetime.fromtimestamp(moment, datetime.UTC).replace(tzinfo=None)


def with_controls(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """The WSGI ``app`` with the emulator's own controls in front (:data:`CLOCK_PATH`)."""
    import datetime

    import moto.core.utils

    real_utcnow = moto.core.utils.utcnow

    def utcnow() -> datetime.datetime:
        frozen = _CLOCK["frozen"]
        return frozen if isinstance(frozen, datetime.datetime) else real_utcnow()

    # ``unix_time`` (SQS visibility, delays) and ``utcnow`` callers that look it up in the module.
    moto.core.utils.utcnow = utcnow

    def handle(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != CLOCK_PATH:
            return app(environ, start_response)
        stream = environ["wsgi.input"]
        length = int(str(environ.get("CONTENT_LENGTH") or 0))
        body = stream.read(length).decode().strip() if length else ""  # type: ignore[attr-defined]
        try:
            if body == "real":
                _CLOCK["frozen"] = None
            else:
                _freeze(float(body))
        except (ValueError, OverflowError, OSError):
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [f"{CLOCK_PATH}: epoch seconds or 'real', not {body!r}\n".encode()]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok\n"]

    return handle


def _moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


# -------------------------------------------------------------------------- extensions


_INSTALLED: list[str] = []
#: DynamoDB's answer to an update or delete of a replica that is not there (the provider tolerates it on destroy).
REPLICA_NOT_FOUND = "Replica specified in the Replica Update or Replica Delete action of the request was not found."


def install_extensions() -> None:
    """Patch moto in this process (idempotent). Call before serving, or before ``mock_aws`` in tests."""
    if _INSTALLED:
        return
    for extension in (
        _dynamodb_replicas,
        _cloudwatch_composite_alarms,
        _sqs_queue_attributes,
        _kms_replica_keys,
        _s3_bucket_policy_conditions,
        _lambda_dead_letter_config,
        _route53_health_checks,
        _ec2_security_group_rule_descriptions,
        _iam_resource_checks,
        _sqs_no_lambda_triggers,
        _lambda_mappings_by_function_name,
        _kms_multi_region_ciphertexts,
        _dynamodb_item_level_transaction_backups,
    ):
        extension()
        _INSTALLED.append(extension.__name__.lstrip("_"))


#: Request context the emulator evaluates bucket-policy conditions with: clients reach AWS over TLS, so
#: a request to the emulator (plain HTTP on 127.0.0.1) stands for an HTTPS one.
REQUEST_CONTEXT = {"aws:securetransport": "true"}


def installed_extensions() -> tuple[str, ...]:
    """Names of the extensions patched into this process."""
    return tuple(_INSTALLED)


def _dynamodb_replicas() -> None:
    """Global tables (version 2019.11.21): ``UpdateTable`` ``ReplicaUpdates`` create, update and delete replicas.

    A replica is a table of the same name in the replica region's backend (same keys,
    indexes, stream, TTL; its own KMS key), listed as ACTIVE under ``Replicas`` when
    either table is described. Deleting the replica (by ``ReplicaUpdates`` or by
    ``DeleteTable`` in its region) removes it from the group.
    """
    from moto.dynamodb.exceptions import MockValidationException
    from moto.dynamodb.models import DynamoDBBackend, Table, dynamodb_backends
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    def group(table: Table) -> dict[str, dict[str, str]]:
        """Region -> replica settings of the group ``table`` belongs to (shared by every member)."""
        if not hasattr(table, "emulator_replicas"):
            table.emulator_replicas = {}  # type: ignore[attr-defined]
        return table.emulator_replicas  # type: ignore[attr-defined,no-any-return]

    def create_replica(table: Table, action: dict[str, str]) -> None:
        region = action["RegionName"]
        backend = dynamodb_backends[table.account_id][region]
        if region == table.region_name or region in group(table) or table.name in backend.tables:
            raise MockValidationException(
                f"Failed to create a the new replica of table with name: '{table.name}' because one or more "
                "replicas already existed as tables."
            )
        sse = None
        key = action.get("KMSMasterKeyId")
        if key or (table.sse_specification or {}).get("Enabled"):
            sse = {"Enabled": True, "SSEType": "KMS"}
            if key:
                sse["KMSMasterKeyId"] = key
        pay_per_request = table.billing_mode == "PAY_PER_REQUEST"
        replica = backend.create_table(
            table.name,
            schema=table.schema,
            throughput=None
            if pay_per_request
            else {k: table.throughput[k] for k in ("ReadCapacityUnits", "WriteCapacityUnits")},
            attr=table.attr,
            global_indexes=[
                {k: v for k, v in index.describe().items() if k in {"IndexName", "KeySchema", "Projection"}}
                | ({} if pay_per_request else {"ProvisionedThroughput": index.describe()["ProvisionedThroughput"]})
                for index in table.global_indexes
            ],
            indexes=[
                {k: v for k, v in index.describe().items() if k in {"IndexName", "KeySchema", "Projection"}}
                for index in table.indexes
            ],
            streams=dict(table.stream_specification) if table.latest_stream_label else None,
            billing_mode=table.billing_mode or "PROVISIONED",
            sse_specification=sse,
            tags=[],
            deletion_protection_enabled=False,
            warm_throughput=None,
        )
        replica.ttl = dict(table.ttl)
        members = group(table)
        members[region] = {"RegionName": region, "ReplicaStatus": "ACTIVE"}
        if replica.sse_specification:
            members[region]["KMSMasterKeyId"] = replica.sse_specification["KMSMasterKeyId"]
        if table.region_name not in members:
            members[table.region_name] = {"RegionName": table.region_name, "ReplicaStatus": "ACTIVE"}
            if table.sse_specification and table.sse_specification.get("KMSMasterKeyId"):
                members[table.region_name]["KMSMasterKeyId"] = table.sse_specification["KMSMasterKeyId"]
        replica.emulator_replicas = members  # type: ignore[attr-defined]

    def update_replica(table: Table, action: dict[str, str]) -> None:
        region = action["RegionName"]
        members = group(table)
        if region not in members or region == table.region_name:
            raise MockValidationException(REPLICA_NOT_FOUND)
        key = action.get("KMSMasterKeyId")
        if key:
            replica = dynamodb_backends[table.account_id][region].tables[table.name]
            replica.sse_specification = {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key}
            members[region]["KMSMasterKeyId"] = key

    def delete_replica(table: Table, action: dict[str, str]) -> None:
        region = action["RegionName"]
        if region not in group(table) or region == table.region_name:
            raise MockValidationException(REPLICA_NOT_FOUND)
        dynamodb_backends[table.account_id][region].delete_table(table.name)

    original_update_table = DynamoHandler.update_table

    def update_table(self: DynamoHandler) -> object:
        updates = self.body.get("ReplicaUpdates") or []
        if not updates:
            return original_update_table(self)
        table = self.dynamodb_backend.get_table(self.body["TableName"])
        for update in updates:
            if "Create" in update:
                create_replica(table, update["Create"])
            elif "Update" in update:
                update_replica(table, update["Update"])
            elif "Delete" in update:
                delete_replica(table, update["Delete"])
        others = {k for k in self.body if k not in {"TableName", "ReplicaUpdates"}}
        if others:
            return original_update_table(self)
        return DynamoResult(table.describe())

    original_describe = Table.describe

    def describe(self: Table, base_key: str = "TableDescription") -> dict[str, object]:
        result = original_describe(self, base_key)
        members = getattr(self, "emulator_replicas", {})
        if members:
            result[base_key]["Replicas"] = [dict(v) for r, v in sorted(members.items()) if r != self.region_name]
            result[base_key]["GlobalTableVersion"] = "2019.11.21"
        return result

    original_delete_table = DynamoDBBackend.delete_table

    def delete_table(self: DynamoDBBackend, name: str) -> Table:
        table = original_delete_table(self, name)
        members = getattr(table, "emulator_replicas", {})
        members.pop(self.region_name, None)
        if len(members) == 1:
            members.clear()  # the last table of a group is an ordinary table again
        return table

    DynamoHandler.update_table = update_table  # type: ignore[method-assign]
    Table.describe = describe  # type: ignore[method-assign]
    DynamoDBBackend.delete_table = delete_table  # type: ignore[method-assign]


def _cloudwatch_composite_alarms() -> None:
    """``PutCompositeAlarm``: stored as an alarm with a rule, which moto already lists under ``CompositeAlarms``."""
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import EmptyResult

    def put_composite_alarm(self: CloudWatchResponse) -> EmptyResult:
        alarm = self.cloudwatch_backend.put_metric_alarm(
            name=self._get_param("AlarmName"),
            namespace=None,  # type: ignore[arg-type]
            metric_name=None,  # type: ignore[arg-type]
            comparison_operator=None,  # type: ignore[arg-type]
            evaluation_periods=None,  # type: ignore[arg-type]
            period=None,  # type: ignore[arg-type]
            threshold=None,  # type: ignore[arg-type]
            statistic=None,  # type: ignore[arg-type]
            description=self._get_param("AlarmDescription"),
            dimensions=[],
            alarm_actions=self._get_param("AlarmActions", []),
            ok_actions=self._get_param("OKActions", []),
            insufficient_data_actions=self._get_param("InsufficientDataActions", []),
            actions_enabled=self._get_bool_param("ActionsEnabled", True),
            rule=self._get_param("AlarmRule"),
            tags=self._get_param("Tags", []),
        )
        alarm.actions_suppressor = self._get_param("ActionsSuppressor")  # type: ignore[attr-defined]
        alarm.actions_suppressor_wait_period = self._get_param("ActionsSuppressorWaitPeriod")  # type: ignore[attr-defined]
        alarm.actions_suppressor_extension_period = self._get_param("ActionsSuppressorExtensionPeriod")  # type: ignore[attr-defined]
        return EmptyResult()

    CloudWatchResponse.put_composite_alarm = put_composite_alarm  # type: ignore[attr-defined]


def _sqs_queue_attributes() -> None:
    """SQS queue attributes round-trip as in SQS.

    ``RedriveAllowPolicy`` is returned like any attribute (and removed by an empty value),
    setting one attribute keeps the queue's policy, and ``RedrivePolicy`` and
    ``RedriveAllowPolicy`` come back as compact JSON, as SQS writes them. moto stores
    ``RedriveAllowPolicy`` but leaves it out of ``GetQueueAttributes``, every
    ``SetQueueAttributes`` without ``Policy`` (e.g. the redrive allow policy's) drops the
    policy, and JSON with spaces makes the provider plan a whitespace-only update.
    """
    from moto.sqs.models import Queue

    if "RedriveAllowPolicy" not in Queue.BASE_ATTRIBUTES:
        Queue.BASE_ATTRIBUTES.append("RedriveAllowPolicy")
    Queue.redrive_allow_policy = None  # type: ignore[attr-defined]
    original_set_attributes = Queue._set_attributes

    def set_attributes(self: Queue, attributes: dict[str, object], now: float | None = None) -> None:
        policy = getattr(self, "policy", None)
        original_set_attributes(self, attributes, now)
        if "Policy" not in attributes:
            self.policy = policy
        elif not attributes["Policy"]:
            self.policy = None  # an empty value removes the attribute, as in SQS
        if "RedriveAllowPolicy" in attributes and not attributes["RedriveAllowPolicy"]:
            self.redrive_allow_policy = None

    original_attributes = Queue.attributes

    def attributes(self: Queue) -> dict[str, object]:
        result: dict[str, object] = original_attributes.fget(self)  # type: ignore[attr-defined]
        if self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        if result.get("RedriveAllowPolicy"):
            result["RedriveAllowPolicy"] = _compact_json(str(result["RedriveAllowPolicy"]))
        return result

    Queue._set_attributes = set_attributes  # type: ignore[method-assign]
    Queue.attributes = property(attributes)  # type: ignore[method-assign,assignment]


def _compact_json(text: str) -> str:
    """``text`` re-serialized without spaces when it is JSON, else unchanged."""
    try:
        return json.dumps(json.loads(text), separators=(",", ":"))
    except ValueError:
        return text


def _lambda_dead_letter_config() -> None:
    """Lambda functions keep and return ``DeadLetterConfig`` (moto drops it), and updates change it.

    ``UpdateFunctionConfiguration`` also changes ``KMSKeyArn`` and ``TracingConfig``, which moto ignores.
    """
    from moto.awslambda.models import LambdaFunction

    original_init = LambdaFunction.__init__
    original_get_configuration = LambdaFunction.get_configuration
    original_update_configuration = LambdaFunction.update_configuration

    def init(self: LambdaFunction, account_id: str, spec: dict[str, object], *args: object, **kwargs: object) -> None:
        original_init(self, account_id, spec, *args, **kwargs)  # type: ignore[arg-type]
        self.dead_letter_config = spec.get("DeadLetterConfig") or None  # type: ignore[attr-defined]

    def get_configuration(self: LambdaFunction, on_create: bool = False) -> dict[str, object]:
        config = original_get_configuration(self, on_create)
        dead_letter = getattr(self, "dead_letter_config", None)
        if dead_letter and dead_letter.get("TargetArn"):
            config["DeadLetterConfig"] = {"TargetArn": dead_letter["TargetArn"]}
        return config

    def update_configuration(self: LambdaFunction, config_updates: dict[str, object]) -> dict[str, object]:
        if "DeadLetterConfig" in config_updates:
            self.dead_letter_config = config_updates["DeadLetterConfig"] or None  # type: ignore[attr-defined]
        if "KMSKeyArn" in config_updates:
            self.kms_key_arn = config_updates["KMSKeyArn"] or None
        if "TracingConfig" in config_updates:
            self.tracing_config = config_updates["TracingConfig"]
        return original_update_configuration(self, config_updates)

    LambdaFunction.__init__ = init  # type: ignore[method-assign]
    LambdaFunction.get_configuration = get_configuration  # type: ignore[method-assign]
    LambdaFunction.update_configuration = update_configuration  # type: ignore[method-assign]


def _route53_health_checks() -> None:
    """Health checks keep ``AlarmIdentifier`` and ``InsufficientDataHealthStatus``, and answer per type.

    moto drops the CloudWatch alarm of a ``CLOUDWATCH_METRIC`` check and gives it the
    interval, threshold, port and latency settings only endpoint checks have, so the
    provider plans to replace the check (``request_interval`` forces a new one).
    """
    from moto.route53.models import HealthCheck
    from moto.route53.responses import Route53

    endpoint_only = ("IPAddress", "Port", "RequestInterval", "FailureThreshold", "MeasureLatency")
    original_config = HealthCheck.health_check_config

    def health_check_config(self: HealthCheck) -> dict[str, object]:
        config: dict[str, object] = original_config.fget(self)  # type: ignore[attr-defined]
        if self.type_ == "CLOUDWATCH_METRIC":
            for key in endpoint_only:
                config.pop(key, None)
        alarm = getattr(self, "alarm_identifier", None)
        if alarm:
            config["AlarmIdentifier"] = alarm
        status = getattr(self, "insufficient_data_health_status", None)
        if status:
            config["InsufficientDataHealthStatus"] = status
        return config

    def remember_extras(handler: Route53, health_check: HealthCheck, config: Mapping[str, object]) -> None:
        if config.get("AlarmIdentifier"):
            health_check.alarm_identifier = config["AlarmIdentifier"]  # type: ignore[attr-defined]
        if config.get("InsufficientDataHealthStatus"):
            health_check.insufficient_data_health_status = config["InsufficientDataHealthStatus"]  # type: ignore[attr-defined]

    original_create = Route53.create_health_check
    original_update = Route53.update_health_check

    def create_health_check(self: Route53) -> object:
        result = original_create(self)
        backend = self.backend
        reference = self._get_param("CallerReference")
        created = next(h for h in backend.health_checks.values() if h.caller_reference == reference)
        remember_extras(self, created, self._get_param("HealthCheckConfig") or {})
        return result

    def update_health_check(self: Route53) -> object:
        backend = self.backend
        health_check = backend.health_checks.get(self._get_param("HealthCheckId"))
        if health_check is not None:
            remember_extras(
                self,
                health_check,
                {
                    "AlarmIdentifier": self._get_param("AlarmIdentifier"),
                    "InsufficientDataHealthStatus": self._get_param("InsufficientDataHealthStatus"),
                },
            )
        return original_update(self)

    HealthCheck.health_check_config = property(health_check_config)  # type: ignore[method-assign,assignment]
    Route53.create_health_check = create_health_check  # type: ignore[method-assign]
    Route53.update_health_check = update_health_check  # type: ignore[method-assign]


def _ec2_security_group_rule_descriptions() -> None:
    """A security group rule to a prefix list or another group keeps its description.

    moto reads a rule's description from its CIDR range only, so ``DescribeSecurityGroupRules``
    answers without it and the provider plans to set it again on every run.
    """
    from moto.ec2.models.security_groups import SecurityGroupRule

    original_init = SecurityGroupRule.__init__

    def init(self: SecurityGroupRule, *args: object, **kwargs: object) -> None:
        original_init(self, *args, **kwargs)  # type: ignore[arg-type]
        prefix_list = kwargs.get("prefix_list_id")
        if prefix_list is None and len(args) >= 8:
            prefix_list = args[7]
        self.prefix_list_description = (  # type: ignore[attr-defined]
            prefix_list.get("Description") if isinstance(prefix_list, dict) else None
        )

    def description(self: SecurityGroupRule) -> str | None:
        return (
            self.ip_range.get("Description")
            or self.source_group.get("Description")
            or getattr(self, "prefix_list_description", None)
        )

    SecurityGroupRule.__init__ = init  # type: ignore[method-assign]
    SecurityGroupRule.description = property(description)  # type: ignore[method-assign,assignment]


def _kms_replica_keys() -> None:
    """A replica key gets its own multi-region configuration instead of sharing (and flipping) its primary's."""
    import copy

    from moto.kms.models import KmsBackend, kms_backends
    from moto.kms.responses import KmsResponse

    original_replicate_key = KmsBackend.replicate_key

    def replicate_key(self: KmsBackend, key_id: str, replica_region: str) -> object:
        primary = self.keys[self.get_key_id(key_id)]
        replica = original_replicate_key(self, key_id, replica_region)
        shared = primary.multi_region_configuration
        primary.multi_region_configuration = copy.deepcopy(shared)
        primary.multi_region_configuration["MultiRegionKeyType"] = "PRIMARY"
        replica.multi_region_configuration = copy.deepcopy(shared)
        replica.multi_region_configuration["MultiRegionKeyType"] = "REPLICA"
        # Grants, aliases and rotations belong to one key in one region.
        replica.grants = {}
        replica.aliases = {}
        replica.rotations = []
        return replica

    original_response = KmsResponse.replicate_key

    def replicate_key_response(self: KmsResponse) -> str:
        """Honour ``Description``, ``Policy`` and ``Tags`` of ``ReplicateKey`` (moto copies the primary's)."""
        response = json.loads(original_response(self))
        metadata = response["ReplicaKeyMetadata"]
        backend = kms_backends[self.current_account][metadata["Arn"].split(":")[3]]
        replica = backend.keys[metadata["KeyId"]]
        replica.description = self._get_param("Description") or ""
        replica.policy = self._get_param("Policy") or replica.generate_default_policy()
        tags = self._get_param("Tags") or []
        if tags:
            backend.tagger.tag_resource(replica.id, tags)
        return json.dumps({"ReplicaKeyMetadata": replica.to_dict()["KeyMetadata"], "ReplicaPolicy": replica.policy})

    KmsBackend.replicate_key = replicate_key  # type: ignore[method-assign]
    KmsResponse.replicate_key = replicate_key_response  # type: ignore[method-assign]


def _condition_holds(conditions: Mapping[str, Mapping[str, object]], context: Mapping[str, str]) -> bool:
    """Whether an IAM ``Condition`` block holds in ``context``; an operator it cannot evaluate does not hold."""
    for operator, entries in conditions.items():
        base = operator.removesuffix("IfExists")
        for key, expected in entries.items():
            values = [str(v) for v in (expected if isinstance(expected, list) else [expected])]
            actual = context.get(key.lower())
            if actual is None:
                if operator.endswith("IfExists"):
                    continue
                return False
            if base == "Bool":
                holds = actual.lower() in {v.lower() for v in values}
            elif base == "StringEquals":
                holds = actual in values
            elif base == "StringNotEquals":
                holds = actual not in values
            elif base == "StringLike":
                holds = any(fnmatch.fnmatchcase(actual, v) for v in values)
            else:
                return False
            if not holds:
                return False
    return True


def _s3_bucket_policy_conditions() -> None:
    """Bucket policies honour their ``Condition`` (e.g. a TLS-only ``Deny`` on ``aws:SecureTransport = false``).

    moto ignores condition operators it does not know (``Bool`` among them), so such a
    ``Deny`` statement denies every object request. Here a statement applies only when its
    conditions hold in :data:`REQUEST_CONTEXT`; conditions the emulator cannot evaluate make
    the statement not apply (it cannot tell, and denying everything is never what AWS does).
    """
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult
    from moto.s3.models import FakeBucket

    def get_permission(self: FakeBucket, action: str, resource: str) -> PermissionResult:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(self.policy.decode() if isinstance(self.policy, bytes) else self.policy)
        statements = document.get("Statement", [])
        result = PermissionResult.NEUTRAL
        for statement in statements if isinstance(statements, list) else [statements]:
            if not _condition_holds(statement.get("Condition", {}), REQUEST_CONTEXT):
                continue
            unconditional = {k: v for k, v in statement.items() if k != "Condition"}
            permission = IAMPolicyStatement(unconditional).is_action_permitted(action, resource)
            if permission == PermissionResult.DENIED:
                return permission
            if permission == PermissionResult.PERMITTED:
                result = permission
        return result

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


def _iam_resource_checks() -> None:
    """IAM enforcement against the resource ARN each call touches (:mod:`tools.emulator_iam`)."""
    from tools import emulator_iam

    emulator_iam.install()


def _sqs_no_lambda_triggers() -> None:
    """An SQS event source mapping never receives messages itself (moto would run the function in Docker)."""
    from moto.sqs.models import Queue

    # moto's ``add_message`` receives for every mapping it finds here; the mapping itself stays in Lambda.
    Queue.lambda_event_source_mappings = property(lambda self: {}, lambda self, value: None)  # type: ignore[assignment]


def _lambda_mappings_by_function_name() -> None:
    """``ListEventSourceMappings(FunctionName=...)`` finds a mapping by the function's name or ARN, as AWS does."""
    from moto.awslambda.models import EventSourceMapping, LambdaBackend

    def list_event_source_mappings(
        self: LambdaBackend, event_source_arn: str, function_name: str
    ) -> list[EventSourceMapping]:
        found = list(self._event_source_mappings.values())
        if event_source_arn:
            found = [m for m in found if m.event_source_arn == event_source_arn]
        if function_name:
            name = function_name.split(":")[6] if function_name.startswith("arn:") else function_name
            found = [m for m in found if m.function_arn.split(":")[6] == name]
        return found

    LambdaBackend.list_event_source_mappings = list_event_source_mappings  # type: ignore[method-assign]


def _kms_multi_region_ciphertexts() -> None:
    """Ciphertext blobs with room for a multi-region key id (40 characters), read back without the padding."""
    from moto.kms import utils

    width = len("mrk-") + 36  # a UUID with its dashes
    utils.KEY_ID_LEN = width
    utils.HEADER_LEN = width + utils.IV_LEN + utils.TAG_LEN
    utils.CIPHERTEXT_HEADER_FORMAT = f">{width}s{utils.IV_LEN}s{utils.TAG_LEN}s"
    original = utils._deserialize_ciphertext_blob

    def deserialize(ciphertext_blob: bytes) -> utils.Ciphertext:
        ciphertext = original(ciphertext_blob)
        return ciphertext._replace(key_id=ciphertext.key_id.rstrip("\x00"))

    utils._deserialize_ciphertext_blob = deserialize


class NoTableCopies:
    """moto's ``copy`` module for ``moto.dynamodb.models``: a table is never deep-copied (everything else is)."""

    @staticmethod
    def deepcopy(value: object, memo: dict[int, object] | None = None) -> object:
        """``copy.deepcopy``, except for a whole ``Table``."""
        import copy

        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def item_level_backups(original: Callable[..., None]) -> Callable[..., None]:
    """``transact_write_items`` backing up the items it names, restoring them when it is cancelled.

    With :class:`NoTableCopies` in place, moto's own table backup is the table itself, so a
    cancelled transaction would keep its partial writes: these item backups undo them.
    """
    import copy

    def transact_write_items(backend: object, transact_items: list[dict[str, object]]) -> None:
        saved: list[tuple[str, dict[str, object], dict[str, object] | None]] = []
        for entry in transact_items:
            op: dict[str, object] = next(iter(entry.values()))  # type: ignore[assignment]
            table = backend.tables.get(op.get("TableName"))  # type: ignore[attr-defined]
            if table is None:
                continue
            names = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
            image: dict[str, object] = op.get("Item", {})  # type: ignore[assignment]
            key = op["Key"] if "Key" in op else {n: image[n] for n in names if n in image}
            item = backend.get_item(table.name, key) if len(key) == len(names) else None  # type: ignore[attr-defined]
            saved.append((table.name, key, copy.deepcopy(item.to_json()["Attributes"]) if item else None))  # type: ignore[arg-type]
        try:
            return original(backend, transact_items)
        except Exception:
            for table_name, key, attributes in reversed(saved):
                if attributes is None:
                    if backend.get_item(table_name, key) is not None:  # type: ignore[attr-defined]
                        backend.delete_item(table_name, key)  # type: ignore[attr-defined]
                else:
                    backend.put_item(table_name, attributes)  # type: ignore[attr-defined]
            raise

    return transact_write_items


def _dynamodb_item_level_transaction_backups() -> None:
    """``TransactWriteItems`` backs up the items it names instead of deep-copying whole tables."""
    from moto.dynamodb import models

    models.copy = NoTableCopies  # type: ignore[assignment]
    models.DynamoDBBackend.transact_write_items = item_level_backups(  # type: ignore[method-assign]
        models.DynamoDBBackend.transact_write_items
    )


# ------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """``serve`` (foreground, used by :class:`Emulator`), ``start``, ``stop``, ``status``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve_cmd = sub.add_parser("serve", help="serve moto with the extensions in the foreground")
    serve_cmd.add_argument("--host", default=HOST)
    serve_cmd.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve_cmd.add_argument("--port-file", type=Path, help="write the port here once listening")
    start_cmd = sub.add_parser("start", help="start in the background and remember it in .state/emulator.json")
    start_cmd.add_argument("--port", type=int, default=0)
    sub.add_parser("stop", help="stop the remembered emulator")
    sub.add_parser("status", help="print the remembered emulator's endpoint")
    args = parser.parse_args(argv)

    if args.command == "serve":
        serve(args.host, args.port, args.port_file)
        return 0
    if args.command == "start":
        record = remembered()
        if record is None:
            emulator = Emulator(STATE_DIR / "emulator.log", port=args.port).start()
            remember(emulator)
            record = remembered()
        assert record is not None
        print(f"http://{HOST}:{record['port']} (pid {record['pid']}, log {record['log']})")
        return 0
    if args.command == "stop":
        print("stopped" if forget() else "no emulator was running")
        return 0
    record = remembered()
    if record is None:
        print("no emulator is running")
        return 1
    print(f"http://{HOST}:{record['port']} (pid {record['pid']}, log {record['log']})")
    return 0


@contextlib.contextmanager
def running(log_path: Path) -> Iterator[Emulator]:
    """An emulator for the duration of a ``with`` block."""
    with Emulator(log_path) as emulator:
        yield emulator


if __name__ == "__main__":
    sys.exit(main())
