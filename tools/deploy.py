"""Deploy the synthesized stacks for real: to the local AWS emulator, or to AWS; plan review; destroy.

``python -m tools.deploy deploy-local [--keep] [--no-drill]``: start the emulator
(``tools.emulator``), bootstrap the state bucket and lock table in it, apply every stack in
deploy order, print the outputs, drill what was applied (:func:`drill_deployed`: a payment made,
the primary dies, the payment finished in the other region, failback; each function with its
own role); then, unless ``--keep``, destroy everything, check nothing is left, and stop the
emulator. With ``--keep`` the emulator keeps running with the deployment, so a user can
look around with the AWS CLI; ``destroy-local`` then destroys it in reverse order, checks
nothing is left and stops the emulator (unless ``--keep``).

``python -m tools.deploy plan [--target emulator|aws]``: binary plan and ``terraform show
-json`` of every stack, and one Markdown summary for reviewers (``reports/plan/summary.md``).

One synthesized JSON for both targets: only the environment and ``terraform init`` differ.
Against the emulator, ``AWS_ENDPOINT_URL`` (with test credentials) sends the provider and
the S3 backend of every ``terraform_remote_state`` to it (an IP-address endpoint makes the
SDK use path-style S3 URLs), the stacks' S3 backend gets the emulator's endpoints and
``use_path_style`` through ``-backend-config``, the bootstrap stack's local state goes to
``.state/emulator/`` (never the file that tracks the real bootstrap), and terraform keeps its
working data in ``.terraform-emulator`` so an AWS ``.terraform`` in the same folder is untouched.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layers.config import BOOTSTRAP, LAYER_ORDER, load_config
from tools import emulator, terraform
from tools.terraform import TerraformError

REPO_ROOT = Path(__file__).resolve().parent.parent
OUTDIR = REPO_ROOT / "cdktf.out"
#: One terraform call (init, apply, destroy, plan of one stack) may not take longer than this.
STACK_TIMEOUT_S = 600
#: Outputs cdktf generates for cross-stack references: plumbing, not for users.
CROSS_STACK_OUTPUT = re.compile(r"^cross-stack-output-")
EMULATOR_DATA_DIR = ".terraform-emulator"

Progress = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


# ------------------------------------------------------------------------------ stacks


@dataclass(frozen=True)
class Stack:
    """One synthesized stack: its folder, backend, region and dependencies."""

    name: str
    directory: Path
    backend_type: str
    backend: Mapping[str, Any]
    region: str
    dependencies: tuple[str, ...]


@dataclass(frozen=True)
class Deployment:
    """The stacks of one synthesized app (one environment suffix), in deploy order."""

    outdir: Path
    suffix: str
    regions: tuple[str, ...]
    stacks: tuple[Stack, ...]

    @classmethod
    def load(cls, outdir: Path = OUTDIR) -> Deployment:
        """Read ``manifest.json`` and every stack's JSON; order the stacks with ``tools.terraform``."""
        manifest_path = outdir / "manifest.json"
        if not manifest_path.exists():
            raise TerraformError(f"{outdir} holds no synthesized app: run `make synth` first")
        manifest = json.loads(manifest_path.read_text())
        bodies = {
            name: json.loads((outdir / entry["synthesizedStackPath"]).read_text())
            for name, entry in manifest["stacks"].items()
        }
        suffixes = {_default_tags(body).get("Environment") for body in bodies.values()}
        if len(suffixes) != 1 or None in suffixes:
            raise TerraformError(f"{outdir}: stacks disagree on the Environment tag ({suffixes})")
        regions = _regions_in_order(outdir, {_provider_region(b) for n, b in bodies.items() if _regional(n)})
        stacks = []
        for name in terraform.stacks_in_order(outdir, regions=regions):
            body = bodies[name]
            ((backend_type, backend),) = body["terraform"]["backend"].items()
            stacks.append(
                Stack(
                    name=name,
                    directory=outdir / manifest["stacks"][name]["workingDirectory"],
                    backend_type=backend_type,
                    backend=backend,
                    region=_provider_region(body),
                    dependencies=tuple(manifest["stacks"][name].get("dependencies", [])),
                )
            )
        return cls(outdir=outdir, suffix=suffixes.pop(), regions=tuple(regions), stacks=tuple(stacks))

    def stack(self, name: str) -> Stack:
        """The stack called ``name``."""
        return next(stack for stack in self.stacks if stack.name == name)


def _regional(stack: str) -> bool:
    return stack != BOOTSTRAP and not stack.endswith("-global")


def _regions_in_order(outdir: Path, regions: set[str]) -> list[str]:
    """Primary first: the configured order (primary, secondary, witness) when it names these regions.

    Else the first order the dependencies allow.
    """
    config = load_config()
    configured = [*config.regions, config.witness_region]
    candidates = [order for order in (configured, list(config.regions)) if set(order) == regions]
    candidates += [list(order) for order in itertools.permutations(sorted(regions))]
    for order in candidates:
        try:
            terraform.stacks_in_order(outdir, regions=order)
        except TerraformError:
            continue
        return order
    raise TerraformError(f"{outdir}: no order of the regions {sorted(regions)} satisfies the stacks' dependencies")


def _default_provider(body: Mapping[str, Any]) -> Mapping[str, Any]:
    providers = body.get("provider", {}).get("aws", [])
    return next((p for p in providers if "alias" not in p), providers[0] if providers else {})


def _provider_region(body: Mapping[str, Any]) -> str:
    return str(_default_provider(body).get("region", ""))


def _default_tags(body: Mapping[str, Any]) -> dict[str, str]:
    tags = _default_provider(body).get("default_tags", [{}])
    return dict(tags[0].get("tags", {})) if tags else {}


# ------------------------------------------------------------------------------ target


@dataclass(frozen=True)
class Target:
    """Where stacks go: the emulator at ``endpoint``, or AWS with the caller's credentials (``endpoint=None``).

    ``state_dir`` holds, for the emulator, the bootstrap stack's local state and the S3
    backend settings file; it must outlive one command when the emulator is kept running.
    """

    endpoint: str | None
    state_dir: Path

    @classmethod
    def aws(cls) -> Target:
        """AWS, with whatever credentials and region the environment holds."""
        return cls(endpoint=None, state_dir=REPO_ROOT / ".state")

    @classmethod
    def local(cls, endpoint: str, state_dir: Path) -> Target:
        """The emulator at ``endpoint``."""
        return cls(endpoint=endpoint, state_dir=state_dir)

    @property
    def name(self) -> str:
        """``emulator`` or ``aws``, for reports."""
        return "aws" if self.endpoint is None else "emulator"

    def env(self, stack: Stack) -> dict[str, str]:
        """Environment of terraform for ``stack``."""
        if self.endpoint is None:
            return terraform.terraform_env()
        env = terraform.terraform_env(emulator.client_env(self.endpoint, stack.region or "us-east-1"))
        env["TF_DATA_DIR"] = str(stack.directory / EMULATOR_DATA_DIR)
        return env

    def backend_config(self, stack: Stack, suffix: str) -> list[str]:
        """``-backend-config`` entries for ``terraform init`` of ``stack``."""
        if self.endpoint is None:
            return []
        if stack.backend_type == "local":
            return [f"path={self.bootstrap_state(stack, suffix)}"]
        if stack.backend_type != "s3":
            raise TerraformError(f"{stack.name}: backend {stack.backend_type} cannot be sent to the emulator")
        config_file = self.state_dir / "backend.s3.tfbackend"
        config_file.parent.mkdir(parents=True, exist_ok=True)
        text = s3_backend_config(self.endpoint)
        if not config_file.exists() or config_file.read_text() != text:
            config_file.write_text(text)
        return [str(config_file)]

    def bootstrap_state(self, stack: Stack, suffix: str) -> Path:
        """Where the emulator's copy of a local-state stack keeps its state."""
        return self.state_dir / f"{stack.name}-{suffix}.tfstate"


def s3_backend_config(endpoint: str) -> str:
    """S3 backend settings that send state and locks to the emulator (Terraform >= 1.6 syntax)."""
    services = ("s3", "dynamodb", "sts", "iam")
    endpoints = "\n".join(f'  {service:<8} = "{endpoint}"' for service in services)
    return (
        f"endpoints = {{\n{endpoints}\n}}\n"
        "use_path_style              = true\n"
        "skip_credentials_validation = true\n"
        "skip_region_validation      = true\n"
        "skip_metadata_api_check     = true\n"
        # With true, the backend (and the provider) can't learn the account id: keep the ARNs whole.
        "skip_requesting_account_id  = false\n"
    )


# --------------------------------------------------------------------------- reports


@dataclass
class StackRun:
    """What one terraform command did to one stack."""

    stack: str
    action: str
    changes: dict[str, int]
    seconds: float


@dataclass
class Report:
    """A deploy or destroy: per stack changes and times, and the outputs users need."""

    suffix: str
    target: str
    runs: list[StackRun] = field(default_factory=list)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Wall-clock time of the whole command (stacks of one layer run side by side).
    elapsed: float = 0.0

    @property
    def seconds(self) -> float:
        """Wall-clock time of the whole command."""
        return self.elapsed

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "suffix": self.suffix,
            "target": self.target,
            "seconds": round(self.elapsed, 1),
            "stacks": [
                {"stack": r.stack, "action": r.action, **r.changes, "seconds": round(r.seconds, 1)} for r in self.runs
            ],
            "outputs": self.outputs,
        }


# ------------------------------------------------------------------------ operations


def reports_dir(deployment: Deployment, target: Target) -> Path:
    """``reports/deploy/<target>-<suffix>`` next to the synthesized app: terraform's logs and the figures."""
    return deployment.outdir.resolve().parent / "reports" / "deploy" / f"{target.name}-{deployment.suffix}"


def _log_dir(deployment: Deployment, target: Target, action: str) -> Path:
    path = reports_dir(deployment, target) / action
    path.mkdir(parents=True, exist_ok=True)
    return path


#: terraform init installs the provider into each stack's data folder: never two at once.
_INIT_LOCK = threading.Lock()


def init_stack(
    deployment: Deployment, target: Target, stack: Stack, timeout: int = STACK_TIMEOUT_S, log: Path | None = None
) -> dict[str, str]:
    """``terraform init`` of one stack for ``target`` (one init at a time); return the environment to use with it."""
    env = target.env(stack)
    with _INIT_LOCK:
        terraform.init(stack.directory, env, target.backend_config(stack, deployment.suffix), timeout, log)
    return env


def layer_index(stack: str) -> int:
    """Position of a stack's layer in the deploy order (bootstrap first)."""
    return -1 if stack == BOOTSTRAP else LAYER_ORDER.index(stack.partition("-")[0])


def schedule(deployment: Deployment, reverse: bool = False) -> Callable[[set[str]], list[Stack]]:
    """Which stacks may start, given the finished ones: layer by layer, and within a layer after its dependencies.

    Deploying, a stack starts once every stack of an earlier layer and every stack it
    depends on has been applied; destroying (``reverse``), once every stack of a later
    layer and every stack that depends on it has been destroyed. Stacks of one layer in
    different regions run side by side.
    """
    names = {stack.name for stack in deployment.stacks}
    needs: dict[str, set[str]] = {}
    for stack in deployment.stacks:
        if reverse:
            after = {s.name for s in deployment.stacks if stack.name in s.dependencies}
            after |= {s.name for s in deployment.stacks if layer_index(s.name) > layer_index(stack.name)}
        else:
            after = {dep for dep in stack.dependencies if dep in names}
            after |= {s.name for s in deployment.stacks if layer_index(s.name) < layer_index(stack.name)}
        needs[stack.name] = after
    order = list(reversed(deployment.stacks)) if reverse else list(deployment.stacks)

    def ready(done: set[str]) -> list[Stack]:
        return [stack for stack in order if stack.name not in done and needs[stack.name] <= done]

    return ready


def _run_all(
    deployment: Deployment,
    ready: Callable[[set[str]], list[Stack]],
    work: Callable[[Stack], str | None],
    progress: Progress,
    parallel: int,
) -> None:
    """Run ``work`` on every stack as ``ready`` allows, ``parallel`` at a time; stop starting on the first error.

    ``work`` returns the progress line of the stack. The first error is raised once the
    stacks already running have finished (terraform is never killed half-way but by its timeout).
    """
    total = len(deployment.stacks)
    done: set[str] = set()
    running: dict[Future[str | None], Stack] = {}
    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        while True:
            if not errors:
                started = {s.name for s in running.values()}
                for stack in ready(done):
                    if len(running) >= parallel:
                        break
                    if stack.name not in started:
                        running[pool.submit(work, stack)] = stack
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                stack = running.pop(future)
                error = future.exception()
                if error is not None:
                    errors.append(error)
                    continue
                done.add(stack.name)
                line = future.result()
                if line:
                    progress(f"[{len(done)}/{total}] {stack.name} … {line}")
    if errors:
        raise errors[0]
    if len(done) != total:
        missing = sorted({s.name for s in deployment.stacks} - done)
        raise TerraformError(f"stacks never became ready (a dependency cycle?): {', '.join(missing)}")


def deploy(
    deployment: Deployment,
    target: Target,
    progress: Progress = _print,
    timeout: int = STACK_TIMEOUT_S,
    parallel: int = 2,
) -> Report:
    """Init and apply every stack in layer order (a layer's regions side by side); collect the user-facing outputs."""
    report = Report(deployment.suffix, target.name)
    logs = _log_dir(deployment, target, "apply")
    lock = threading.Lock()

    def apply(stack: Stack) -> str:
        started = time.monotonic()
        env = init_stack(deployment, target, stack, timeout, log=logs / f"{stack.name}.init.log")
        changes = _unlocking_own_lock(target, stack, env, progress, terraform.apply, timeout, logs)
        outputs = terraform.outputs(stack.directory, env, timeout)
        seconds = time.monotonic() - started
        with lock:
            report.runs.append(StackRun(stack.name, "apply", changes, seconds))
            report.outputs[stack.name] = {
                name: output["value"]
                for name, output in outputs.items()
                if not CROSS_STACK_OUTPUT.match(name) and not output.get("sensitive")
            }
        touched = changes["add"] + changes["change"]
        return f"applied {touched} resources in {seconds:.0f} s"

    started = time.monotonic()
    _run_all(deployment, schedule(deployment), apply, progress, parallel)
    report.elapsed = time.monotonic() - started
    _in_deploy_order(report, deployment)
    return report


def destroy(
    deployment: Deployment,
    target: Target,
    progress: Progress = _print,
    timeout: int = STACK_TIMEOUT_S,
    parallel: int = 2,
) -> Report:
    """Destroy every stack in reverse layer order (a layer's regions side by side)."""
    report = Report(deployment.suffix, target.name)
    logs = _log_dir(deployment, target, "destroy")
    lock = threading.Lock()

    def destroy_one(stack: Stack) -> str:
        started = time.monotonic()
        local_state = stack.backend_type == "local" and target.endpoint is not None
        if local_state and not target.bootstrap_state(stack, deployment.suffix).exists():
            return "no state, nothing to destroy"
        env = init_stack(deployment, target, stack, timeout, log=logs / f"{stack.name}.init.log")
        changes = _unlocking_own_lock(target, stack, env, progress, terraform.destroy, timeout, logs)
        seconds = time.monotonic() - started
        with lock:
            report.runs.append(StackRun(stack.name, "destroy", changes, seconds))
        return f"destroyed {changes['remove']} resources in {seconds:.0f} s"

    started = time.monotonic()
    _run_all(deployment, schedule(deployment, reverse=True), destroy_one, progress, parallel)
    report.elapsed = time.monotonic() - started
    _in_deploy_order(report, deployment)
    return report


def _unlocking_own_lock(
    target: Target,
    stack: Stack,
    env: Mapping[str, str],
    progress: Progress,
    command: Callable[..., dict[str, int]],
    timeout: int,
    logs: Path,
) -> dict[str, int]:
    """``command`` (:func:`terraform.apply` or ``destroy``); on the emulator, again after releasing its own lock.

    Its output goes to ``logs``. terraform's lock request sometimes reaches the emulator twice, so
    the command fails on its own lock and leaves it behind (:func:`tools.terraform.own_lock`). Only
    a lock created after the command started is released (no one else uses the emulator's state),
    and only once.
    """

    def run() -> dict[str, int]:
        return command(stack.directory, env, timeout, log=logs / f"{stack.name}.log")

    started = datetime.datetime.now(datetime.UTC)
    try:
        return run()
    except TerraformError as error:
        lock_id = terraform.own_lock(str(error), started) if target.endpoint is not None else None
        if lock_id is None:
            raise
    progress(f"{stack.name}: terraform failed on the lock it had just taken ({lock_id}): released, once more")
    terraform.force_unlock(stack.directory, env, lock_id)
    return run()


def _in_deploy_order(report: Report, deployment: Deployment) -> None:
    position = {stack.name: index for index, stack in enumerate(deployment.stacks)}
    report.runs.sort(key=lambda run: position[run.stack])


def format_outputs(report: Report) -> str:
    """The outputs a user needs, one ``stack  name = value`` line each."""
    lines = []
    for stack, outputs in report.outputs.items():
        for name, value in sorted(outputs.items()):
            shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            lines.append(f"  {stack:<26} {name} = {shown}")
    return "\n".join(lines) if lines else "  (no outputs)"


# ------------------------------------------------------------------------ leftovers

#: A destroyed KMS key waits out its deletion window in one of these states, in AWS as in the emulator.
PENDING_KEY_STATES = frozenset({"PendingDeletion", "PendingReplicaDeletion"})


def suffix_pattern(suffix: str) -> re.Pattern[str]:
    """Matches a name that carries ``suffix`` as a whole token (``x-dev``, ``dev.example.com``, not ``x-dev2``)."""
    return re.compile(rf"(^|[-./:_]){re.escape(suffix)}($|[-./:_])")


def leftovers(deployment: Deployment, endpoint: str) -> list[str]:
    """Resources of this deployment (by name or ``Environment`` tag) the emulator still holds.

    KMS keys pending deletion are fine: AWS keeps them for the deletion window too.
    """
    import boto3

    names = suffix_pattern(deployment.suffix)
    tag_filter = [{"Name": "tag:Environment", "Values": [deployment.suffix]}]
    found: list[str] = []

    def client(service: str, region: str) -> Any:
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=endpoint,
            aws_access_key_id=emulator.CLIENT_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=emulator.CLIENT_ENV["AWS_SECRET_ACCESS_KEY"],
        )

    def by_name(kind: str, items: Iterable[str]) -> None:
        found.extend(f"{kind} {item}" for item in items if names.search(item))

    # Global services, asked once.
    iam = client("iam", "us-east-1")
    by_name("iam role", (r["RoleName"] for p in iam.get_paginator("list_roles").paginate() for r in p["Roles"]))
    by_name(
        "iam policy",
        (r["PolicyName"] for p in iam.get_paginator("list_policies").paginate(Scope="Local") for r in p["Policies"]),
    )
    by_name("s3 bucket", (b["Name"] for b in client("s3", "us-east-1").list_buckets()["Buckets"]))
    route53 = client("route53", "us-east-1")
    by_name("hosted zone", (z["Name"] for z in route53.list_hosted_zones()["HostedZones"]))
    for check in route53.list_health_checks()["HealthChecks"]:
        tags = route53.list_tags_for_resource(ResourceType="healthcheck", ResourceId=check["Id"])
        if {"Key": "Environment", "Value": deployment.suffix} in tags["ResourceTagSet"]["Tags"]:
            found.append(f"health check {check['Id']}")

    for region in deployment.regions:
        where = f"({region})"
        by_name(f"dynamodb table {where}", client("dynamodb", region).list_tables()["TableNames"])
        by_name(
            f"sqs queue {where}",
            (url.rsplit("/", 1)[-1] for url in client("sqs", region).list_queues().get("QueueUrls", [])),
        )
        by_name(f"sns topic {where}", (t["TopicArn"] for t in client("sns", region).list_topics()["Topics"]))
        lam = client("lambda", region)
        by_name(f"lambda function {where}", (f["FunctionName"] for f in lam.list_functions()["Functions"]))
        by_name(f"lambda layer {where}", (layer["LayerName"] for layer in lam.list_layers()["Layers"]))
        by_name(
            f"log group {where}", (g["logGroupName"] for g in client("logs", region).describe_log_groups()["logGroups"])
        )
        cloudwatch = client("cloudwatch", region)
        alarms = cloudwatch.describe_alarms()
        by_name(f"alarm {where}", (a["AlarmName"] for a in alarms["MetricAlarms"] + alarms["CompositeAlarms"]))
        by_name(f"dashboard {where}", (d["DashboardName"] for d in cloudwatch.list_dashboards()["DashboardEntries"]))
        by_name(f"event rule {where}", (r["Name"] for r in client("events", region).list_rules()["Rules"]))
        apigateway = client("apigateway", region)
        by_name(f"rest api {where}", (a["name"] for a in apigateway.get_rest_apis()["items"]))
        by_name(f"api domain {where}", (d["domainName"] for d in apigateway.get_domain_names()["items"]))
        by_name(
            f"certificate {where}",
            (c["DomainName"] for c in client("acm", region).list_certificates()["CertificateSummaryList"]),
        )
        by_name(
            f"web acl {where}", (a["Name"] for a in client("wafv2", region).list_web_acls(Scope="REGIONAL")["WebACLs"])
        )
        kms = client("kms", region)
        by_name(f"kms alias {where}", (a["AliasName"] for a in kms.list_aliases()["Aliases"]))
        for key in kms.list_keys()["Keys"]:
            metadata = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
            if metadata["KeyManager"] != "CUSTOMER" or metadata["KeyState"] in {
                "PendingDeletion",
                "PendingReplicaDeletion",
            }:
                continue
            tags = kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]
            if {"TagKey": "Environment", "TagValue": deployment.suffix} in tags or names.search(
                metadata.get("Description", "")
            ):
                found.append(f"kms key {where} {key['KeyId']} ({metadata['KeyState']})")
        ec2 = client("ec2", region)
        for kind, call, key in (
            ("vpc", ec2.describe_vpcs, "Vpcs"),
            ("subnet", ec2.describe_subnets, "Subnets"),
            ("security group", ec2.describe_security_groups, "SecurityGroups"),
            ("vpc endpoint", ec2.describe_vpc_endpoints, "VpcEndpoints"),
            ("flow log", ec2.describe_flow_logs, "FlowLogs"),
        ):
            for item in call(Filters=tag_filter)[key]:
                if str(item.get("State", "")).lower() in {"deleted", "deleting"}:
                    continue  # AWS lists deleted VPC endpoints for a while too
                ident = next((v for k, v in item.items() if k.endswith("Id") and isinstance(v, str)), "?")
                found.append(f"{kind} {where} {ident}")
    return found


# ----------------------------------------------------------------------- plan review

#: resource_changes[].change.actions -> the reviewer's word for it.
ACTIONS = {
    ("create",): "create",
    ("update",): "update",
    ("delete", "create"): "replace",
    ("create", "delete"): "replace",
    ("delete",): "destroy",
    ("no-op",): "no-op",
    ("read",): "read",
}
COUNTED = ("create", "update", "replace", "destroy")


@dataclass(frozen=True)
class Change:
    """One planned change of one resource, as a reviewer needs it."""

    stack: str
    address: str
    resource_type: str
    action: str
    reason: str | None
    #: Attributes that force a replacement (``replace_paths``), or that an update changes.
    attributes: tuple[str, ...]


def _path(path: Sequence[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _changed_attributes(before: Any, after: Any, unknown: Any) -> tuple[str, ...]:
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    unknown = unknown if isinstance(unknown, dict) else {}
    keys = set(before) | set(after) | set(unknown)
    return tuple(sorted(k for k in keys if before.get(k) != after.get(k) or unknown.get(k)))


def plan_changes(stack: str, plan: Mapping[str, Any]) -> list[Change]:
    """Every managed resource change of one ``terraform show -json`` plan (data source reads left out)."""
    changes = []
    for rc in plan.get("resource_changes", []):
        if rc.get("mode") != "managed":
            continue
        change = rc["change"]
        action = ACTIONS.get(tuple(change["actions"]), "+".join(change["actions"]))
        if action == "replace":
            attributes = tuple(_path(p) for p in change.get("replace_paths") or [])
        elif action == "update":
            attributes = _changed_attributes(change.get("before"), change.get("after"), change.get("after_unknown"))
        else:
            attributes = ()
        changes.append(Change(stack, rc["address"], rc["type"], action, rc.get("action_reason"), attributes))
    return changes


def summarize(plans: Mapping[str, Mapping[str, Any]], suffix: str, target: str, notes: Mapping[str, str]) -> str:
    """The reviewers' Markdown: counts per stack, then every replacement and destroy with what forces it."""
    lines = [
        f"# Plan review: `{suffix}` against {target}",
        "",
        "| stack | create | update | replace | destroy |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    by_stack = {stack: plan_changes(stack, plan) for stack, plan in plans.items()}
    for stack in list(plans) + [s for s in notes if s not in plans]:
        if stack in notes and stack not in plans:
            lines.append(f"| {stack} | n/a | n/a | n/a | n/a |")
            continue
        counts = {action: sum(1 for c in by_stack[stack] if c.action == action) for action in COUNTED}
        lines.append(f"| {stack} | " + " | ".join(str(counts[a]) for a in COUNTED) + " |")
    if notes:
        lines += ["", "## Not planned", ""]
        lines += [f"- `{stack}`: {note}" for stack, note in notes.items()]
    risky = [c for changes in by_stack.values() for c in changes if c.action in {"replace", "destroy"}]
    lines += ["", "## Replacements and destroys", ""]
    if not risky:
        lines.append("None: nothing is replaced or destroyed.")
    for change in risky:
        forced = ", ".join(f"`{a}`" for a in change.attributes) or "(no attribute reported)"
        reason = f" ({change.reason})" if change.reason else ""
        what = f"forced by {forced}" if change.action == "replace" else "removed"
        lines.append(f"- **{change.action}** `{change.stack}`: `{change.address}`: {what}{reason}")
    updates = [c for changes in by_stack.values() for c in changes if c.action == "update"]
    if updates:
        lines += ["", "## Updates in place", ""]
        lines += [f"- `{c.stack}`: `{c.address}`: {', '.join(f'`{a}`' for a in c.attributes)}" for c in updates]
    return "\n".join(lines) + "\n"


@dataclass
class PlanReview:
    """The result of :func:`plan_review`: parsed plans, skipped stacks and the summary's path."""

    plans: dict[str, dict[str, Any]]
    notes: dict[str, str]
    summary: Path

    def changes(self) -> list[Change]:
        """Every planned managed-resource change, stack by stack."""
        return [c for stack, plan in self.plans.items() for c in plan_changes(stack, plan)]


def plan_review(
    deployment: Deployment,
    target: Target,
    reports: Path | None = None,
    progress: Progress = _print,
    timeout: int = STACK_TIMEOUT_S,
    parallel: int = 2,
    only: Iterable[str] | None = None,
) -> PlanReview:
    """Plan every stack (or the ``only`` ones) in layer order: ``<stack>.tfplan``, ``<stack>.json``, ``summary.md``.

    ``reports`` defaults to ``reports/plan`` next to the synthesized app. A stack whose
    dependency holds no state yet cannot be planned (its remote state has no outputs): it
    is listed as not planned, with the reason. Stacks of one layer are planned side by side.
    """
    reports = reports or deployment.outdir.resolve().parent / "reports" / "plan"
    if reports.exists():
        shutil.rmtree(reports)
    reports.mkdir(parents=True)
    wanted = {stack.name for stack in deployment.stacks} if only is None else set(only)
    plans: dict[str, dict[str, Any]] = {}
    notes: dict[str, str] = {}
    empty: set[str] = set()
    lock = threading.Lock()

    def plan_one(stack: Stack) -> str | None:
        if stack.name not in wanted:
            return None
        with lock:
            missing = [dep for dep in stack.dependencies if dep in empty or dep in notes]
        if missing:
            with lock:
                notes[stack.name] = f"depends on {', '.join(missing)}, which is not deployed"
            return f"not planned: {notes[stack.name]}"
        started = time.monotonic()
        env = init_stack(deployment, target, stack, timeout)
        if not _has_state(stack, env, timeout):
            with lock:
                empty.add(stack.name)
        plan_file = reports / f"{stack.name}.tfplan"
        terraform.plan(stack.directory, env, plan_file, timeout, log=reports / f"{stack.name}.log")
        plan = terraform.show_json(stack.directory, env, plan_file, timeout)
        (reports / f"{stack.name}.json").write_text(json.dumps(plan, indent=1) + "\n")
        with lock:
            plans[stack.name] = plan
        counts = [c.action for c in plan_changes(stack.name, plan)]
        shown = ", ".join(f"{counts.count(a)} to {a}" for a in COUNTED if counts.count(a)) or "no changes"
        return f"{shown} ({time.monotonic() - started:.0f} s)"

    _run_all(deployment, schedule(deployment), plan_one, progress, parallel)
    ordered = {stack.name: plans[stack.name] for stack in deployment.stacks if stack.name in plans}
    ordered_notes = {stack.name: notes[stack.name] for stack in deployment.stacks if stack.name in notes}
    summary = reports / "summary.md"
    summary.write_text(summarize(ordered, deployment.suffix, target.name, ordered_notes))
    return PlanReview(ordered, ordered_notes, summary)


def _has_state(stack: Stack, env: Mapping[str, str], timeout: int) -> bool:
    try:
        return bool(terraform.state_addresses(stack.directory, env, timeout))
    except TerraformError as error:
        if "No state file was found" in str(error):
            return False
        raise


# ---------------------------------------------------------------------- command line


def _emulator_state_dir(outdir: Path) -> Path:
    return outdir.resolve().parent / ".state" / "emulator"


def _fresh_state(state_dir: Path, deployment: Deployment) -> None:
    """A new emulator holds nothing: forget local state that described an earlier one."""
    for stack in deployment.stacks:
        if stack.backend_type == "local":
            (state_dir / f"{stack.name}-{deployment.suffix}.tfstate").unlink(missing_ok=True)
            (state_dir / f"{stack.name}-{deployment.suffix}.tfstate.backup").unlink(missing_ok=True)


def _save(report: Report, deployment: Deployment, target: Target, name: str) -> Path:
    path = reports_dir(deployment, target) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return path


def _check_clean(deployment: Deployment, endpoint: str) -> None:
    left = leftovers(deployment, endpoint)
    if left:
        raise TerraformError("the emulator still holds resources of this deployment:\n  " + "\n  ".join(left))
    _print(f"checked: the emulator holds none of the resources of `{deployment.suffix}`")


#: The scenario ``make deploy-local`` drills the deployment with: steady state, the primary dies, failback.
DEPLOYED_SCENARIO = "failback_after_recovery"


def drill_deployed(deployment: Deployment, target: Target, endpoint: str, log: Path) -> bool:
    """Drill what was just applied (:data:`DEPLOYED_SCENARIO`), each function with its role; print what happened.

    False when the scenario breaks an acceptance rule or a function's role refused one of its calls.
    """
    from tools.drill import deployed, scenarios, synth

    topology = synth.load(deployment.outdir)
    scenario = next(s for s in scenarios.SCENARIOS if s.name == DEPLOYED_SCENARIO)
    _print(f"\ndrill on the deployment: {scenario.title}")
    started = time.perf_counter()
    decisions = emulator.decisions_path(log)
    iam_table = reports_dir(deployment, target) / "iam.md"
    outcome = deployed.drill(endpoint, topology, [scenario], decisions, iam_table)
    ((figures,), coverage, refused) = outcome.runs, outcome.coverage, outcome.refused
    problems = scenarios.verdict(figures, scenario, topology)
    _print(
        f"{figures['acknowledged']} payments acknowledged, {figures['lost']} lost, "
        f"{figures['charged_twice']} charged twice, recovery {figures['rto_s']} s "
        f"({time.perf_counter() - started:.0f} s)\n"
        + deployed.story(figures, topology.primary)
        + f"\nIAM: {sum(len(e.used) for e in coverage)} grants used, {len(refused)} calls refused ({iam_table})"
    )
    for problem in problems:
        _print(f"drill: {problem}")
    for decision in refused:
        _print(f"drill: refused {decision['action']} on {decision['resource']} to {decision['principal']}")
    return not problems and not refused


def deploy_local(outdir: Path, keep: bool, parallel: int = 2, drill: bool = True) -> int:
    """``make deploy-local``: see the module docstring."""
    deployment = Deployment.load(outdir)
    state_dir = _emulator_state_dir(outdir)
    record = emulator.remembered()
    if record is None:
        server = emulator.Emulator(emulator.STATE_DIR / "emulator.log").start()
        emulator.remember(server)
        _fresh_state(state_dir, deployment)
        endpoint, log = server.endpoint, server.log_path
        _print(f"emulator: {endpoint} (pid {server.pid}, log {log})")
    else:
        endpoint, log = f"http://{emulator.HOST}:{record['port']}", Path(str(record["log"]))
        _print(f"emulator: {endpoint} (already running, pid {record['pid']})")
    target = Target.local(endpoint, state_dir)
    ok = False
    try:
        _print(f"deploying `{deployment.suffix}`: {len(deployment.stacks)} stacks in order")
        applied = deploy(deployment, target, parallel=parallel)
        saved = _save(applied, deployment, target, "apply")
        _print(f"applied in {applied.seconds:.0f} s ({saved})\n\noutputs:\n{format_outputs(applied)}")
        if drill and not drill_deployed(deployment, target, endpoint, log):
            return 1
        if keep:
            _print(
                f"\nthe emulator keeps running: export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=testing "
                "AWS_SECRET_ACCESS_KEY=testing AWS_REGION=" + deployment.regions[0] + "\n"
                "then e.g. `aws dynamodb list-tables`; `make destroy-local` destroys it all and stops the emulator"
            )
        else:
            _print("\ndestroying (KEEP=1 keeps the deployment and the emulator running)")
            destroyed = destroy(deployment, target, parallel=parallel)
            _print(f"destroyed in {destroyed.seconds:.0f} s ({_save(destroyed, deployment, target, 'destroy')})")
            _check_clean(deployment, endpoint)
        ok = True
    except TerraformError as error:
        _print(f"error: {error}\n--- emulator log (end) ---\n{_tail(log)}")
        return 1
    finally:
        if not keep:
            emulator.forget()
        elif not ok:
            _print(f"the emulator keeps running for a look around: {endpoint}")
    return 0


def destroy_local(outdir: Path, keep: bool, parallel: int = 2) -> int:
    """``make destroy-local``: destroy in reverse order, check nothing is left, stop the emulator (unless keep)."""
    record = emulator.remembered()
    if record is None:
        _print("no local emulator is running: nothing to destroy")
        return 0
    deployment = Deployment.load(outdir)
    endpoint = f"http://{emulator.HOST}:{record['port']}"
    target = Target.local(endpoint, _emulator_state_dir(outdir))
    try:
        destroyed = destroy(deployment, target, parallel=parallel)
        _print(f"destroyed in {destroyed.seconds:.0f} s ({_save(destroyed, deployment, target, 'destroy')})")
        _check_clean(deployment, endpoint)
    except TerraformError as error:
        _print(f"error: {error}\n--- emulator log (end) ---\n{_tail(Path(str(record['log'])))}")
        return 1
    finally:
        if not keep:
            emulator.forget()
            _print("emulator stopped")
    return 0


def plan_command(outdir: Path, target_name: str) -> int:
    """``make plan``: against the running emulator, or AWS with the caller's credentials."""
    deployment = Deployment.load(outdir)
    if target_name == "aws":
        target = Target.aws()
    else:
        record = emulator.remembered()
        if record is None:
            _print("no local emulator is running: `make deploy-local KEEP=1` first, or `make plan TARGET=aws`")
            return 1
        target = Target.local(f"http://{emulator.HOST}:{record['port']}", _emulator_state_dir(outdir))
    try:
        review = plan_review(deployment, target)
    except TerraformError as error:
        _print(f"error: {error}")
        return 1
    _print(f"\n{review.summary.read_text()}\nwritten: {review.summary}")
    return 0


def _tail(log: Path, lines: int = 40) -> str:
    return emulator.log_excerpt(log, lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``deploy-local``, ``destroy-local`` or ``plan``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["deploy-local", "destroy-local", "plan"])
    parser.add_argument("--outdir", type=Path, default=OUTDIR)
    parser.add_argument("--keep", action="store_true", help="keep the emulator (and a deployment) running")
    parser.add_argument("--target", choices=["emulator", "aws"], default="emulator", help="plan only")
    parser.add_argument("--no-drill", action="store_true", help="deploy-local: apply (and destroy) without the drill")
    parser.add_argument(
        "--parallel", type=int, default=2, help="stacks of one layer applied side by side (deploy, destroy)"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "deploy-local":
            return deploy_local(args.outdir, args.keep, args.parallel, drill=not args.no_drill)
        if args.command == "destroy-local":
            return destroy_local(args.outdir, args.keep, args.parallel)
        return plan_command(args.outdir, args.target)
    except (TerraformError, emulator.EmulatorError) as error:
        _print(f"error: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
