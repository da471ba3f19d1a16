"""The drill against a deployment: what ``make deploy-local`` applied to the emulator, not moto made from the synth.

The topology (routes, checks, schedules, alarms) still comes from the synth, but every
function's environment, ARN and role are read from the deployed function, and the tables,
queues, topics and event source mappings are the ones Terraform created. Each function calls
AWS with credentials of its own deployed role (``sts:AssumeRole``, then IAM enforcement on),
so a call its role does not allow fails the drill; :mod:`tools.emulator_iam` checks every
call against the resource it touches, and its decisions are what :mod:`tools.iam_coverage`
reads. The harness itself (replication, the event source mappings' polling, the figures) is
an IAM user of its own, allowed everything, whose calls are never captured.

Requests still pass :meth:`World.process_request` (faults, a region that is down, the
partition, write capture): :meth:`DeployedWorld.hooked` puts it in front of botocore's HTTP
send instead of moto's in-process stub. The emulator's clock follows the drill's (SQS
visibility timeouts and delays in simulated seconds; ``POST /_emulator/clock``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
from botocore.exceptions import ClientError

from tools.drill.clock import SimClock
from tools.drill.synth import FunctionSpec, Topology
from tools.drill.world import DrillSetupError, World

#: The harness's IAM user in the emulator (created for a run, deleted after), ``-<suffix>`` appended.
HARNESS_USER = "drill-harness"
_ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
#: Credentials that work while IAM enforcement is off (what Terraform used).
_SETUP_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _post(endpoint: str, path: str, body: bytes) -> int:
    """A plain POST to the emulator (not through ``urllib.request``, which the drill answers itself)."""
    parts = urllib.parse.urlsplit(endpoint)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "text/plain"})
        return connection.getresponse().status
    finally:
        connection.close()


@dataclass
class Deployed:
    """A deployment in the emulator at ``endpoint``, read back; the drill's :class:`~tools.drill.drill.Target`."""

    endpoint: str
    topology: Topology
    #: (region, function key) -> the deployed function's role ARN.
    roles: dict[tuple[str, str], str]
    #: (region, function key, queue name) -> the deployed event source mapping's UUID.
    mappings: dict[tuple[str, str, str], str]
    #: (region, function key) -> the KMS key its environment is encrypted with, if any.
    environment_keys: dict[tuple[str, str], str] = field(default_factory=dict)
    #: (region, function key) -> the role's session credentials (set for the length of :meth:`aws`).
    credentials: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    harness: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, endpoint: str, synthesized: Topology) -> Deployed:
        """The synthesized topology with what the emulator holds: function settings, roles, mappings.

        Raises :class:`DrillSetupError` naming what is missing (nothing deployed, another suffix).
        """

        def client(service: str, region: str) -> Any:
            return boto3.client(service, region_name=region, endpoint_url=endpoint, **_SETUP_CREDENTIALS)

        functions: dict[tuple[str, str], FunctionSpec] = {}
        roles: dict[tuple[str, str], str] = {}
        environment_keys: dict[tuple[str, str], str] = {}
        for (region, key), spec in synthesized.functions.items():
            try:
                config = client("lambda", region).get_function_configuration(FunctionName=spec.name)
            except ClientError as error:
                raise DrillSetupError(
                    f"function {spec.name} is not deployed in {region} at {endpoint} "
                    f"({error.response['Error']['Code']}): `make deploy-local KEEP=1` first, with the same suffix"
                ) from error
            environment = dict(config.get("Environment", {}).get("Variables", {}))
            functions[(region, key)] = dataclasses.replace(spec, environment=environment, arn=config["FunctionArn"])
            roles[(region, key)] = config["Role"]
            if config.get("KMSKeyArn"):
                environment_keys[(region, key)] = config["KMSKeyArn"]
        for table in synthesized.tables.values():
            for region in table.regions:
                try:
                    client("dynamodb", region).describe_table(TableName=table.name)
                except ClientError as error:
                    raise DrillSetupError(f"table {table.name} is not deployed in {region} at {endpoint}") from error
        mappings: dict[tuple[str, str, str], str] = {}
        for spec in synthesized.mappings:
            function = functions[(spec.region, spec.function)]
            found = client("lambda", spec.region).list_event_source_mappings(FunctionName=function.name)
            for mapping in found["EventSourceMappings"]:
                same_queue = mapping["EventSourceArn"].rsplit(":", 1)[-1] == spec.queue
                if same_queue and mapping["FunctionArn"] == function.arn:
                    mappings[(spec.region, spec.function, spec.queue)] = mapping["UUID"]
            if (spec.region, spec.function, spec.queue) not in mappings:
                raise DrillSetupError(f"no event source mapping {spec.queue} -> {function.name} in {spec.region}")
        topology = dataclasses.replace(synthesized, functions=functions)
        return cls(endpoint, topology, roles, mappings, environment_keys)

    # ---------------------------------------------------------------- the Target protocol

    def client(self, service: str, region: str, credentials: dict[str, str] | None = None) -> Any:
        """A boto3 client of the emulator (default: the harness's credentials)."""
        keys = credentials or self.harness or {k.upper(): v for k, v in _SETUP_CREDENTIALS.items()}
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.endpoint,
            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=keys.get("AWS_SESSION_TOKEN"),
        )

    def world(self, topology: Topology, clock: SimClock) -> World:
        """The :class:`DeployedWorld` of this deployment."""
        return DeployedWorld(topology, clock, deployed=self)

    def environ(self, spec: FunctionSpec) -> dict[str, str]:
        """What the function's process gets: its role's session credentials and the emulator's endpoint."""
        try:
            credentials = self.credentials[(spec.region, spec.key)]
        except KeyError:
            raise DrillSetupError(f"no credentials of {spec.name}'s role: outside Deployed.aws()") from None
        return {**credentials, "AWS_ENDPOINT_URL": self.endpoint}

    @property
    def harness_user(self) -> str:
        """The harness's IAM user: ``drill-harness-<suffix>``."""
        suffix = next(iter(self.topology.functions.values())).environment.get("ENVIRONMENT_SUFFIX", "local")
        return f"{HARNESS_USER}-{suffix}"

    @contextmanager
    def aws(self) -> Iterator[Deployed]:
        """The harness user and each function's role credentials, with IAM enforcement on; all undone after."""
        iam = self.client("iam", self.topology.primary)
        user = self.harness_user
        iam.create_user(UserName=user)
        try:
            iam.put_user_policy(UserName=user, PolicyName="everything", PolicyDocument=json.dumps(_ADMIN_POLICY))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            self.harness = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
            sts = self.client("sts", self.topology.primary)
            for (region, key_name), role in sorted(self.roles.items()):
                session = sts.assume_role(RoleArn=role, RoleSessionName=f"drill-{key_name}")["Credentials"]
                self.credentials[(region, key_name)] = {
                    "AWS_ACCESS_KEY_ID": session["AccessKeyId"],
                    "AWS_SECRET_ACCESS_KEY": session["SecretAccessKey"],
                    "AWS_SESSION_TOKEN": session["SessionToken"],
                }
            self._enforce(True)
            try:
                self._cold_starts()
                yield self
            finally:
                self._enforce(False)
                _post(self.endpoint, "/_emulator/clock", b"real")
        finally:
            self.credentials.clear()
            self.harness = {}
            for access_key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
                iam.delete_access_key(UserName=user, AccessKeyId=access_key["AccessKeyId"])
            with contextlib.suppress(iam.exceptions.NoSuchEntityException):  # the policy write itself failed
                iam.delete_user_policy(UserName=user, PolicyName="everything")
            iam.delete_user(UserName=user)

    def _cold_starts(self) -> None:
        """What Lambda does with the role before a function's code runs: decrypt its environment.

        The emulator stores environments in the clear, so a blob encrypted with the function's key
        stands in; a role that may not decrypt it is a function that never starts.
        """
        for (region, key), key_arn in sorted(self.environment_keys.items()):
            blob = self.client("kms", region).encrypt(KeyId=key_arn, Plaintext=b"environment")["CiphertextBlob"]
            try:
                self.client("kms", region, self.credentials[(region, key)]).decrypt(CiphertextBlob=blob, KeyId=key_arn)
            except ClientError as error:
                raise DrillSetupError(
                    f"{self.topology.function(region, key).name} in {region} cannot decrypt its environment "
                    f"with its role ({error.response['Error']['Code']})"
                ) from error

    def _enforce(self, on: bool) -> None:
        status = _post(self.endpoint, "/moto-api/reset-auth", b"0" if on else b"inf")
        if status != 200:
            raise DrillSetupError(f"the emulator's reset-auth answered {status}")


class DeployedWorld(World):
    """:class:`World` over the emulator's HTTP API instead of moto's in-process backends."""

    def __init__(self, topology: Topology, clock: SimClock, deployed: Deployed) -> None:
        self.deployed = deployed
        super().__init__(topology, clock)
        for mapping in self.lambda_control.mappings:
            mapping.uuid = deployed.mappings[(mapping.spec.region, mapping.spec.function, mapping.spec.queue)]
        self._emulator_now: float | None = None

    def client(self, service: str, region: str) -> Any:
        """A harness client (the harness user's credentials; calls bypass faults and capture when internal)."""
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self.deployed.client(service, region)
        return self._clients[key]

    def create(self) -> None:
        """Nothing is created: the deployment is emptied (items, messages) and its mappings reset as deployed."""
        with self.internal():
            for table in self.topology.tables.values():
                for region in table.regions:
                    self._empty(table.name, table.hash_key, region)
            for (region, _name), queue in self.topology.queues.items():
                self.client("sqs", region).purge_queue(QueueUrl=queue.url)
            for mapping in self.lambda_control.mappings:
                self.client("lambda", mapping.spec.region).update_event_source_mapping(
                    UUID=mapping.uuid, Enabled=mapping.spec.enabled
                )
                mapping.enabled = mapping.spec.enabled

    def _empty(self, table: str, hash_key: str, region: str) -> None:
        client = self.client("dynamodb", region)
        for page in client.get_paginator("scan").paginate(
            TableName=table, ProjectionExpression="#k", ExpressionAttributeNames={"#k": hash_key}
        ):
            for item in page["Items"]:
                client.delete_item(TableName=table, Key=item)

    @contextmanager
    def hooked(self) -> Iterator[World]:
        """Every botocore request through :meth:`process_request`, then over HTTP to the emulator."""
        import botocore.endpoint
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse

        original = botocore.endpoint.Endpoint._send

        def send(endpoint: Any, request: Any) -> Any:
            def forward(prepared: Any) -> tuple[int, dict[str, str], bytes]:
                self._sync_clock()
                response = original(endpoint, prepared)
                return response.status_code, dict(response.headers), response.content

            status, headers, body = self.process_request(request, forward)
            return AWSResponse(request.url, status, headers, MockRawResponse(body))

        with ExitStack() as stack:
            stack.enter_context(mock.patch.object(botocore.endpoint.Endpoint, "_send", send))
            stack.enter_context(mock.patch.object(urllib.request, "urlopen", self.urlopen))
            yield self

    def _sync_clock(self) -> None:
        """The emulator's clock at the drill's simulated now (one control request when it moved)."""
        if self._emulator_now != self.clock.now:
            status = _post(self.deployed.endpoint, "/_emulator/clock", repr(self.clock.now).encode())
            if status != 200:
                raise DrillSetupError(f"the emulator's clock control answered {status}")
            self._emulator_now = self.clock.now

    def _lambda(self, region: str, request: Any, rest: str, moto: Callable[[Any], Any]) -> Any:
        """Lambda calls go to the emulator (checked against the caller's role); a mapping change is mirrored."""
        answer = moto(request)
        if 200 <= answer[0] < 300:
            super()._lambda(region, request, rest, moto)
        return answer

    def poller(self, region: str, function: str) -> Any:
        """Lambda polls a mapping's queue with the function's role: so does the drill."""
        key = ("sqs-poller", f"{region}/{function}")
        if key not in self._clients:
            self._clients[key] = self.deployed.client("sqs", region, self.deployed.credentials[(region, function)])
        return self._clients[key]

    def queue_counts(self, region: str, name: str, poller: str | None = None) -> tuple[int, int]:
        """(visible, in flight), from ``GetQueueAttributes`` (the poller's, with its function's role)."""
        queue = self.topology.queues[(region, name)]
        client = self.poller(region, poller) if poller else self.client("sqs", region)
        with self.internal():
            attributes = client.get_queue_attributes(
                QueueUrl=queue.url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def _get(self, table: str, region: str, key: dict[str, Any]) -> dict[str, Any] | None:
        with self.internal():
            item = self.client("dynamodb", region).get_item(TableName=table, Key=key, ConsistentRead=True)
        return item.get("Item")

    def _apply_replicated(self, table: str, region: str, key: dict[str, Any], image: dict[str, Any] | None) -> None:
        before = self._get(table, region, key)
        with self.internal():
            client = self.client("dynamodb", region)
            if image is None:
                if before is not None:
                    client.delete_item(TableName=table, Key=key)
            else:
                client.put_item(TableName=table, Item=image)
        for observer in self.observers:
            observer(table, region, key, before, image, True)


def role_policies(deployed: Deployed) -> dict[str, list[dict[str, Any]]]:
    """Role name -> the policy documents the deployed role has (inline and attached), for each function's role."""
    iam = deployed.client("iam", deployed.topology.primary)
    found: dict[str, list[dict[str, Any]]] = {}
    for role_arn in sorted(set(deployed.roles.values())):
        role = role_arn.rsplit("/", 1)[-1]
        documents = found.setdefault(role, [])
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            documents.append(_document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]))
        for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
            version = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"])
            documents.append(_document(version["PolicyVersion"]["Document"]))
    return found


def _document(value: Any) -> dict[str, Any]:
    """A policy document as botocore returns it: parsed already, or URL-encoded JSON text."""
    if isinstance(value, dict):
        return value
    return dict(json.loads(urllib.parse.unquote(str(value))))


@dataclass
class Outcome:
    """What a drill on the deployment found: each scenario's figures, each role's coverage, the refusals."""

    runs: list[dict[str, Any]]
    coverage: list[Any]
    #: The emulator's decisions that refused a call of a function's role.
    refused: list[dict[str, object]]
    #: Every decision the run recorded: each call of a function's role, and every refusal.
    decisions: list[dict[str, object]]

    @property
    def unused(self) -> list[Any]:
        """Grants no call used and nothing excuses."""
        return [grant for entry in self.coverage for grant in entry.unused]


def drill(endpoint: str, synthesized: Topology, scenarios: list[Any], decisions_file: Path, iam_out: Path) -> Outcome:
    """Run ``scenarios`` one after another on the deployment; write the IAM coverage table to ``iam_out``."""
    from tools import iam_coverage
    from tools.drill.drill import Drill

    deployed = Deployed.read(endpoint, synthesized)
    decisions_file.unlink(missing_ok=True)
    runs = [Drill(deployed.topology, scenario, target=deployed).run() for scenario in scenarios]
    policies = role_policies(deployed)
    recorded = iam_coverage.read_decisions(decisions_file)
    report = iam_coverage.coverage(
        {role: iam_coverage.grants(role, documents) for role, documents in policies.items()}, recorded
    )
    iam_out.parent.mkdir(parents=True, exist_ok=True)
    iam_out.write_text(iam_coverage.markdown(report))
    return Outcome(runs, report, denied(recorded, set(policies)), recorded)


def denied(entries: list[dict[str, object]], roles: set[str]) -> list[dict[str, object]]:
    """Decisions that refused a call of one of ``roles`` (role names): what a function was not allowed to do."""
    from tools.iam_coverage import role_of

    return [d for d in entries if not d.get("allowed") and role_of(str(d["principal"])) in roles]


def story(figures: dict[str, Any], fault_region: str) -> str:
    """One payment through the failover, in words: sent to the failing region, accepted and finished in the other."""
    carried = [p for p in figures.get("across_regions", []) if p["first_sent_to"] == fault_region and p["finished_in"]]
    routine = (": standby", ": renewed", ": bootstrapped", ": OK")
    events = "; ".join(
        f"{e['t']:.0f} s {e['what']}" for e in figures.get("events", []) if not e["what"].endswith(routine)
    )
    if not carried:
        return f"no payment first sent to {fault_region} was finished in the other region ({events})"
    first = carried[0]
    return (
        f"payment {first['payment_id']} (Idempotency-Key {first['idempotency_key']}): sent to "
        f"{first['first_sent_to']} at {first['first_sent_s']:.0f} s ({first['first_answer']}), accepted by "
        f"{first['accepted_by']} at {first['accepted_s']:.0f} s with the same key ({first['attempts']} attempts), "
        f"{first['status']} in {first['finished_in']} at {first['finished_s']:.0f} s "
        f"({len(carried)} payments like it); the drill's events: {events}"
    )
