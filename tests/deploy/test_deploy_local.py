"""Every layer deployed for real to the local emulator: two suffixes side by side, plan review, destroy.

One emulator for the module; the fixture synthesizes two suffixes into their own folders
and deploys both at once (the slow part is the provider's waits, not the CPU). The tests
then run in file order on that deployment: applied, a second plan is quiet, a renamed
queue is reported as a replacement, nothing is shared, and both destroy to nothing.
Every terraform call has a timeout, and the emulator's log is printed with a failure.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import synthesize
from tests.synthesized import Synthesized
from tools import merchants
from tools.deploy import (
    Change,
    Deployment,
    Report,
    Target,
    deploy,
    destroy,
    drill_deployed,
    leftovers,
    plan_review,
    reports_dir,
)
from tools.drill import deployed as drill_deployed_module
from tools.drill import scenarios as drill_scenarios
from tools.drill import synth as drill_synth
from tools.emulator import CLIENT_ENV, Emulator, client_env, decisions_path
from tools.iam_coverage import read_decisions

#: Two suffixes deployed side by side into one emulator.
SUFFIXES = ("e2e-a", "e2e-b")
#: Any terraform call (init, apply, plan, destroy of one stack) that takes longer has hung.
TERRAFORM_TIMEOUT_S = 300
#: Values the emulator cannot round-trip, so a second plan shows them although nothing changed:
#: (resource type, attribute) -> why. Every other gap found so far is fixed in tools/emulator.py.
ROUND_TRIP_GAPS: dict[tuple[str, str], str] = {
    ("aws_s3_bucket_replication_configuration", "rule"): (
        "moto 5.2.5 does not read the state bucket's replication rule back as the provider wrote it, so the "
        "second plan updates it in place; not yet fixed in tools/emulator.py (a real bucket keeps it)"
    ),
}
# No account-wide singleton is shared: API Gateway's CloudWatch role lives in the opt-in account-<region>
# stacks (manageApiGatewayAccount), which neither suffix here deploys, so each suffix owns all it manages.
#: Attributes that scope an id which is unique only inside its parent (a Lambda permission's statement id).
PARENT_ATTRIBUTES = ("function_name", "rest_api_id", "zone_id", "queue_url", "bucket", "role", "security_group_id")

pytestmark = pytest.mark.timeout(1500)
REPO_ROOT = Path(__file__).resolve().parents[2]
#: The merchant whose keys the key-management test creates, rotates and revokes.
MERCHANT = "acme"


@dataclass
class Deployed:
    """One suffix as synthesized and deployed."""

    synth: Synthesized
    deployment: Deployment
    target: Target
    applied: Report


@pytest.fixture(autouse=True)
def emulator_log(emulator: Emulator) -> Iterator[None]:
    """Print the emulator's failed requests at teardown: pytest shows them with a failing test."""
    yield
    print(f"--- emulator log (failed requests) ---\n{emulator.log_tail(120)}")


@pytest.fixture(scope="module")
def deployed(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Deployed]:
    """Both suffixes synthesized and applied into one (empty) emulator."""
    emulator.reset()
    synths = {
        suffix: synthesize(tmp_path_factory.mktemp(suffix) / "cdktf.out", environment_suffix=suffix)
        for suffix in SUFFIXES
    }
    deployments = {suffix: Deployment.load(synth.outdir) for suffix, synth in synths.items()}
    targets = {
        suffix: Target.local(emulator.endpoint, synth.outdir.parent / ".state" / "emulator")
        for suffix, synth in synths.items()
    }

    def apply(suffix: str) -> Report:
        return deploy(
            deployments[suffix],
            targets[suffix],
            progress=lambda line: print(f"{suffix}: {line}"),
            timeout=TERRAFORM_TIMEOUT_S,
        )

    with ThreadPoolExecutor(max_workers=len(SUFFIXES)) as pool:
        reports = dict(zip(SUFFIXES, pool.map(apply, SUFFIXES), strict=True))
    return {s: Deployed(synths[s], deployments[s], targets[s], reports[s]) for s in SUFFIXES}


def client(emulator: Emulator, service: str, region: str = "us-east-1") -> Any:
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=emulator.endpoint,
        aws_access_key_id=CLIENT_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CLIENT_ENV["AWS_SECRET_ACCESS_KEY"],
    )


def test_every_stack_of_both_suffixes_applies_in_layer_order(deployed: dict[str, Deployed]) -> None:
    for suffix, item in deployed.items():
        stacks = [stack.name for stack in item.deployment.stacks]
        assert [run.stack for run in item.applied.runs] == stacks, suffix
        created = sum(run.changes["add"] for run in item.applied.runs)
        declared = sum(1 for _ in item.synth.resources())
        assert created >= declared, f"{suffix}: {created} resources created, {declared} declared"
        assert any(item.applied.outputs.values()), f"{suffix}: no stack has outputs"


def test_a_second_plan_right_after_apply_shows_no_changes(deployed: dict[str, Deployed], tmp_path: Path) -> None:
    item = deployed[SUFFIXES[0]]
    review = plan_review(item.deployment, item.target, reports=tmp_path / "plan", timeout=TERRAFORM_TIMEOUT_S)

    assert review.notes == {}, "every stack must be plannable once deployed"
    assert set(review.plans) == {stack.name for stack in item.deployment.stacks}
    unexpected = [change for change in review.changes() if change.action != "no-op" and not _known_gap(change)]
    assert not unexpected, "new diff after apply:\n" + review.summary.read_text()


def _known_gap(change: Change) -> bool:
    if change.action != "update":
        return False
    return all((change.resource_type, attribute) in ROUND_TRIP_GAPS for attribute in change.attributes)


def test_plan_review_reports_a_renamed_queue_as_a_replacement(deployed: dict[str, Deployed], tmp_path: Path) -> None:
    item = deployed[SUFFIXES[0]]
    changed = tmp_path / "cdktf.out"
    shutil.copytree(item.synth.outdir, changed, ignore=shutil.ignore_patterns(".terraform*", "*.tfplan"))
    stack = f"compute-{item.deployment.regions[0]}"
    body_path = changed / "stacks" / stack / "cdk.tf.json"
    body = json.loads(body_path.read_text())
    queues = body.get("resource", {}).get("aws_sqs_queue", {})
    assert queues, f"{stack} declares no SQS queue to rename"
    logical, queue = sorted(queues.items())[0]
    queue["name"] = queue["name"] + "-renamed"
    body_path.write_text(json.dumps(body))

    review = plan_review(
        Deployment.load(changed), item.target, reports=tmp_path / "plan", timeout=TERRAFORM_TIMEOUT_S, only={stack}
    )

    address = f"aws_sqs_queue.{logical}"
    (renamed,) = [c for c in review.changes() if c.address == address]
    assert renamed.action == "replace"
    assert "name" in renamed.attributes
    summary = review.summary.read_text()
    assert f"- **replace** `{stack}`: `{address}`: forced by `name`" in summary


def test_two_suffixes_share_no_state_and_no_resource(emulator: Emulator, deployed: dict[str, Deployed]) -> None:
    first, second = (deployed[s] for s in SUFFIXES)
    state_keys = [_state_locations(item) for item in (first, second)]
    assert state_keys[0].isdisjoint(state_keys[1])

    identities = [_resource_identities(emulator, item) for item in (first, second)]
    shared = {value: rtype for value, rtype in identities[0].items() if value in identities[1]}
    assert not shared, f"resources both suffixes manage: {shared}"


def _state_locations(item: Deployed) -> set[str]:
    locations = set()
    for stack in item.deployment.stacks:
        if stack.backend_type == "s3":
            locations.add(f"s3://{stack.backend['bucket']}/{stack.backend['key']}")
        else:
            locations.add(str(item.target.bootstrap_state(stack, item.deployment.suffix)))
    return locations


def _resource_identities(emulator: Emulator, item: Deployed) -> dict[str, str]:
    """The identity of every managed resource in the suffix's state files -> resource type.

    The ARN where there is one; else the type and id, scoped by the parent the id is unique in.
    """
    states = []
    s3 = client(emulator, "s3")
    for stack in item.deployment.stacks:
        if stack.backend_type == "s3":
            body = s3.get_object(Bucket=stack.backend["bucket"], Key=stack.backend["key"])["Body"].read()
            states.append(json.loads(body))
        else:
            states.append(json.loads(item.target.bootstrap_state(stack, item.deployment.suffix).read_text()))
    identities = {}
    for state in states:
        for resource in state["resources"]:
            if resource["mode"] != "managed":
                continue
            for instance in resource["instances"]:
                attributes = instance["attributes"]
                if attributes.get("arn"):
                    identity = str(attributes["arn"])
                else:
                    parents = [str(attributes[k]) for k in PARENT_ATTRIBUTES if attributes.get(k)]
                    identity = "/".join([resource["type"], *parents, str(attributes.get("id"))])
                identities[identity] = resource["type"]
    return identities


def test_merchant_keys_are_managed_in_the_deployed_table_and_the_authorizer_accepts_them(
    emulator: Emulator, deployed: dict[str, Deployed], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m tools.merchants`` as the README runs it, against the table terraform created.

    The key it prints is checked by the real authorizer code with the environment the compute
    stack gave the primary's function (``MERCHANTS_TABLE`` and the rest), reading the emulator.
    """
    suffix = SUFFIXES[0]
    region = deployed[suffix].deployment.regions[0]
    env = client_env(emulator.endpoint, region)

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "tools.merchants", "--suffix", suffix, *argv]
        return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)

    created = cli("--json", "create", "--merchant", MERCHANT)
    assert created.returncode == 0, created.stderr
    first = json.loads(created.stdout)
    assert first["api_key"].startswith(f"pdr_{suffix}_{first['key_id']}.")
    assert f"payments-merchants-{suffix} in emulator {emulator.endpoint}" in created.stderr
    bad = cli("revoke", "--key-id", "not-hex")
    assert (bad.returncode, bad.stdout, len(bad.stderr.splitlines())) == (2, "", 1)
    assert bad.stderr.startswith("error: --key-id")

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    assert merchants.main(["--suffix", suffix, "--json", "rotate", "--merchant", MERCHANT], out=out) == 0
    second = json.loads(out.getvalue())
    assert second["still_valid"] == [first["key_id"]]
    assert merchants.main(["--suffix", suffix, "create", "--merchant", MERCHANT], out=io.StringIO()) == 1
    assert merchants.main(["--suffix", SUFFIXES[1], "revoke", "--key-id", first["key_id"]], out=io.StringIO()) == 1

    authorizer_env = _function_env(emulator, region, f"authorizer-{suffix}")
    assert authorizer_env["MERCHANTS_TABLE"] == f"payments-merchants-{suffix}"
    assert _authorized(first["api_key"], {**authorizer_env, **env})
    assert merchants.main(["--suffix", suffix, "revoke", "--key-id", first["key_id"]], out=io.StringIO()) == 0
    assert not _authorized(first["api_key"], {**authorizer_env, **env})
    assert _authorized(second["api_key"], {**authorizer_env, **env})

    listed = cli("--json", "list", "--merchant", MERCHANT)
    assert listed.returncode == 0, listed.stderr
    records = json.loads(listed.stdout)
    assert {r["key_id"]: r["status"] for r in records} == {first["key_id"]: "REVOKED", second["key_id"]: "ACTIVE"}
    assert all(set(r) <= set(merchants.LISTED) for r in records), "list shows only ids, status and dates"
    table = client(emulator, "dynamodb", region).scan(TableName=f"payments-merchants-{suffix}")["Items"]
    assert all(first["api_key"].split(".")[1] not in json.dumps(item) for item in table), "a secret was stored"


def _function_env(emulator: Emulator, region: str, name: str) -> dict[str, str]:
    """The environment variables the compute stack gave function ``name``, as deployed."""
    configuration = client(emulator, "lambda", region).get_function_configuration(FunctionName=name)
    return dict(configuration["Environment"]["Variables"]) | {"AWS_REGION": region, "AWS_LAMBDA_FUNCTION_NAME": name}


def _authorized(token: str, environ: dict[str, str]) -> bool:
    """The authorizer's verdict on ``Authorization: Bearer <token>`` after a cold start under ``environ``."""
    from tests.lambdas.conftest import FakeContext, import_fresh

    module = import_fresh("authorizer", environ)
    region = environ["AWS_REGION"]
    event = {
        "methodArn": f"arn:aws:execute-api:{region}:123456789012:abc123/v1/POST/payments",
        "headers": {"Authorization": f"Bearer {token}"},
    }
    answer = module.handler(event, FakeContext())
    return any(s["Effect"] == "Allow" for s in answer["policyDocument"]["Statement"])


def test_the_drill_runs_on_what_was_applied_each_function_with_its_own_role(
    emulator: Emulator, deployed: dict[str, Deployed], capsys: pytest.CaptureFixture[str]
) -> None:
    """``make deploy-local``'s drill: steady state, the primary dies, failback, on the deployed resources.

    Every function calls the emulator with its own deployed role's credentials and IAM enforcement
    on, checked against the resource each call touches; none of them is refused, and the payment
    story it prints is a payment first sent to the primary, accepted and processed in the secondary with the same key.
    """
    item = deployed[SUFFIXES[0]]
    assert drill_deployed(item.deployment, item.target, emulator.endpoint, emulator.log_path)
    printed = capsys.readouterr().out
    primary, secondary = item.deployment.regions[:2]
    story = rf"payment \S+ \(Idempotency-Key \S+\): sent to {primary} at \d+ s \(\w+\), accepted by {secondary}"
    assert re.search(story + rf" at \d+ s with the same key .*PROCESSED in {secondary}", printed), printed
    assert re.search(r"\d+ payments acknowledged, 0 lost, 0 charged twice", printed), printed
    assert re.search(r"IAM: [1-9]\d* grants used, 0 calls refused", printed), printed
    table = (reports_dir(item.deployment, item.target) / "iam.md").read_text()
    for role in (f"payment-validation-{short}-{SUFFIXES[0]}" for short in ("use1", "use2")):
        assert f"| `{role}` |" in table, table
    principals = {str(d["principal"]) for d in read_decisions(decisions_path(emulator.log_path))}
    assert any(":assumed-role/" in p for p in principals), "the functions did not call with their roles"


@pytest.mark.timeout(2700)  # 15 scenarios one after another: about 20 minutes on the 2-core machine
def test_every_scenario_on_the_deployment_uses_every_grant_or_excuses_it(
    emulator: Emulator, deployed: dict[str, Deployed]
) -> None:
    """``make drill TARGET=deployed``: every scenario, each function with its own role, IAM enforced.

    Least privilege both ways: no call of a function is refused, and every (action, resource) its
    role grants is used by some scenario or excused with its reason (tools/iam_coverage.py).
    """
    item = deployed[SUFFIXES[0]]
    topology = drill_synth.load(item.synth.outdir)
    iam_table = emulator.log_path.with_name("iam-all-scenarios.md")
    outcome = drill_deployed_module.drill(
        emulator.endpoint, topology, list(drill_scenarios.SCENARIOS), decisions_path(emulator.log_path), iam_table
    )
    for scenario, figures in zip(drill_scenarios.SCENARIOS, outcome.runs, strict=True):
        assert drill_scenarios.verdict(figures, scenario, topology) == [], scenario.name
    assert outcome.refused == []
    assert [(g.role, g.action, g.resource) for g in outcome.unused] == [], iam_table.read_text()
    roles = {entry.role for entry in outcome.coverage}
    assert len(roles) == 2 * 6  # every function's role in both regions
    assert sum(len(entry.used) for entry in outcome.coverage) > 0


def test_a_call_the_deployed_role_does_not_allow_fails_the_drill(
    emulator: Emulator, deployed: dict[str, Deployed]
) -> None:
    """Take the validation role's right to send to its queue away: exactly that call is refused, nothing lost."""
    item = deployed[SUFFIXES[0]]
    topology = drill_synth.load(item.synth.outdir)
    primary = item.deployment.regions[0]
    function = topology.function(primary, "payment_validation")
    iam = client(emulator, "iam")
    role = iam.get_role(RoleName=_role_name(emulator, primary, function.name))["Role"]["RoleName"]
    (policy_name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    original = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
    narrowed = json.loads(json.dumps(original))
    for statement in narrowed["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        statement["Action"] = [a for a in actions if a != "sqs:SendMessage"] or ["sqs:GetQueueAttributes"]
    iam.put_role_policy(RoleName=role, PolicyName=policy_name, PolicyDocument=json.dumps(narrowed))
    try:
        steady = next(s for s in drill_scenarios.SCENARIOS if s.name == "steady_state")
        steady = dataclasses.replace(steady, duration_s=20)
        decisions = decisions_path(emulator.log_path)
        outcome = drill_deployed_module.drill(
            emulator.endpoint, topology, [steady], decisions, emulator.log_path.with_suffix(".iam.md")
        )
    finally:
        iam.put_role_policy(RoleName=role, PolicyName=policy_name, PolicyDocument=json.dumps(original))
    ((figures,), refused) = outcome.runs, outcome.refused
    queue = f"arn:aws:sqs:{primary}:123456789012:payments-processing-{SUFFIXES[0]}"
    assert {(d["action"], d["resource"]) for d in refused} == {("sqs:SendMessage", queue)}
    assert all(role in str(d["principal"]) for d in refused)
    # Validation answers 503 (the client retries the same key); the orchestrator's sweep, with its own
    # role, queues the PENDING payment, so the refusal costs retries, never a payment.
    assert "503" in figures["client_errors"], figures["client_errors"]
    assert figures["lost"] == 0


def _role_name(emulator: Emulator, region: str, function: str) -> str:
    role_arn = client(emulator, "lambda", region).get_function_configuration(FunctionName=function)["Role"]
    return str(role_arn).rsplit("/", 1)[-1]


def test_both_suffixes_destroy_and_leave_nothing_behind(emulator: Emulator, deployed: dict[str, Deployed]) -> None:
    def tear_down(suffix: str) -> Report:
        item = deployed[suffix]
        return destroy(
            item.deployment, item.target, progress=lambda line: print(f"{suffix}: {line}"), timeout=TERRAFORM_TIMEOUT_S
        )

    with ThreadPoolExecutor(max_workers=len(SUFFIXES)) as pool:
        reports = dict(zip(SUFFIXES, pool.map(tear_down, SUFFIXES), strict=True))

    for suffix, item in deployed.items():
        destroyed = sum(run.changes["remove"] for run in reports[suffix].runs)
        assert destroyed >= sum(run.changes["add"] for run in item.applied.runs), suffix
        assert leftovers(item.deployment, emulator.endpoint) == [], suffix
