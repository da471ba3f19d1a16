"""Break one promise in a copy of the real synthesized stacks: the scan fails on exactly that rule and resource.

Every mutation lands in its own copy of one stack (``mut-<name>``); one checkov run scans the
originals and all copies. A mutation's new project-rule failures (copy minus original) must be
exactly the rule it breaks, on exactly the resources it touched. A mutation whose resource type
the synth lacks fails: the project promises that resource.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.synthesized import Synthesized
from tools.scan import Finding, build_view, find_stacks, findings_of, load_resource_types, run_checkov

Stacks = dict[str, dict[str, Any]]
#: (stack, resource type, resource name) -> body
Located = tuple[str, str, str]


class NothingToMutate(LookupError):
    """The synth holds no resource this mutation can break."""


def resources(stacks: Stacks, rtype: str, block: str = "resource") -> Iterator[tuple[str, str, dict[str, Any]]]:
    for stack in sorted(stacks):
        for name, body in sorted(stacks[stack].get(block, {}).get(rtype, {}).items()):
            if name != "//":
                yield stack, name, body


def first(stacks: Stacks, rtype: str, where: Callable[[dict[str, Any]], bool] = lambda body: True) -> Located:
    for stack, name, body in resources(stacks, rtype):
        if where(body):
            return stack, rtype, name
    raise NothingToMutate(f"the synth holds no {rtype} this mutation applies to")


def body_of(stacks: Stacks, located: Located) -> dict[str, Any]:
    stack, rtype, name = located
    return stacks[stack]["resource"][rtype][name]


def suffix_of(stacks: Stacks) -> str:
    return stacks["bootstrap"]["provider"]["aws"][0]["default_tags"][0]["tags"]["Environment"]


def literal_policy(body: dict[str, Any]) -> bool:
    policy = body.get("policy")
    return isinstance(policy, str) and policy.lstrip().startswith("{")


def iam_target(stacks: Stacks) -> tuple[Located, str]:
    """A policy resource with a JSON policy, else a policy document: (location, form)."""
    for rtype in ("aws_iam_role_policy", "aws_iam_policy"):
        try:
            return first(stacks, rtype, literal_policy), "json"
        except NothingToMutate:
            continue
    for stack, name, _ in resources(stacks, "aws_iam_policy_document", block="data"):
        return (stack, "aws_iam_policy_document", name), "document"
    raise NothingToMutate("the synth holds no IAM policy with statements")


def add_statement(stacks: Stacks, actions: list[str], resource: str) -> tuple[str, set[str]]:
    (stack, rtype, name), form = iam_target(stacks)
    if form == "json":
        body = body_of(stacks, (stack, rtype, name))
        document = json.loads(body["policy"])
        statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
        statements.append({"Sid": "Mutation", "Effect": "Allow", "Action": actions, "Resource": resource})
        document["Statement"] = statements
        body["policy"] = json.dumps(document)
        return stack, {f"{rtype}.{name}"}
    body = stacks[stack]["data"][rtype][name]
    body.setdefault("statement", []).append({"effect": "Allow", "actions": actions, "resources": [resource]})
    return stack, {f"data.{rtype}.{name}"}


def one(stacks: Stacks, located: Located, change: Callable[[dict[str, Any]], None]) -> tuple[str, set[str]]:
    change(body_of(stacks, located))
    return located[0], {f"{located[1]}.{located[2]}"}


def drop_default_region_tag(stacks: Stacks) -> tuple[str, set[str]]:
    taggable = load_resource_types().taggable
    stack = next(s for s in sorted(stacks) if any(t in taggable for t in stacks[s].get("resource", {})))
    for provider in stacks[stack]["provider"]["aws"]:
        for block in provider.get("default_tags", []):
            block["tags"].pop("Region", None)
    expected = {
        f"{rtype}.{name}"
        for rtype in stacks[stack]["resource"]
        if rtype in taggable
        for name, body in stacks[stack]["resource"][rtype].items()
        if name != "//" and "Region" not in (body.get("tags") or {})
    }
    return stack, expected


def api_record(body: dict[str, Any]) -> bool:
    return str(body.get("name", "")).split(".", 1)[0] == "api" and "health_check_id" in body


def named_with_suffix(stacks: Stacks) -> Callable[[dict[str, Any]], bool]:
    return lambda body: str(body.get("name", "")).endswith(f"-{suffix_of(stacks)}")


def queue_with_redrive(body: dict[str, Any]) -> bool:
    return "redrive_policy" in body and "-dlq" not in str(body.get("name", ""))


@dataclass(frozen=True)
class Mutation:
    """One broken promise: which rule must fail, and how to break it."""

    name: str
    rule: str
    apply: Callable[[Stacks], tuple[str, set[str]]]


MUTATIONS = (
    Mutation(
        "own-region-tag-wrong",
        "CKV_PDR_1",
        lambda s: one(
            s,
            first(s, "aws_dynamodb_table"),
            lambda b: b.__setitem__("tags", {**(b.get("tags") or {}), "Region": "eu-west-1"}),
        ),
    ),
    Mutation("default-region-tag-dropped", "CKV_PDR_1", drop_default_region_tag),
    Mutation(
        "name-without-suffix",
        "CKV_PDR_2",
        lambda s: one(
            s, first(s, "aws_dynamodb_table", named_with_suffix(s)), lambda b: b.update(name=b["name"] + "-x")
        ),
    ),
    Mutation(
        "reserved-concurrency-removed",
        "CKV_PDR_3",
        lambda s: one(s, first(s, "aws_lambda_function"), lambda b: b.pop("reserved_concurrent_executions", None)),
    ),
    Mutation(
        "table-provisioned",
        "CKV_PDR_4",
        lambda s: one(s, first(s, "aws_dynamodb_table"), lambda b: b.update(billing_mode="PROVISIONED")),
    ),
    Mutation(
        "replica-pitr-off",
        "CKV_PDR_4",
        lambda s: one(s, first(s, "aws_dynamodb_table_replica"), lambda b: b.update(point_in_time_recovery=False)),
    ),
    Mutation(
        "redrive-policy-removed",
        "CKV_PDR_5",
        lambda s: one(s, first(s, "aws_sqs_queue", queue_with_redrive), lambda b: b.pop("redrive_policy")),
    ),
    Mutation(
        "prevent-destroy",
        "CKV_PDR_6",
        lambda s: one(s, first(s, "aws_kms_key"), lambda b: b.setdefault("lifecycle", {}).update(prevent_destroy=True)),
    ),
    Mutation(
        "deletion-protection",
        "CKV_PDR_6",
        lambda s: one(s, first(s, "aws_dynamodb_table"), lambda b: b.update(deletion_protection_enabled=True)),
    ),
    Mutation(
        "domain-tls-1-0",
        "CKV_PDR_7",
        lambda s: one(s, first(s, "aws_api_gateway_domain_name"), lambda b: b.update(security_policy="TLS_1_0")),
    ),
    Mutation(
        "api-record-health-check-removed",
        "CKV_PDR_8",
        lambda s: one(s, first(s, "aws_route53_record", api_record), lambda b: b.pop("health_check_id")),
    ),
    Mutation(
        "alarm-actions-removed",
        "CKV_PDR_9",
        lambda s: one(s, first(s, "aws_cloudwatch_metric_alarm"), lambda b: b.update(alarm_actions=[])),
    ),
    Mutation(
        "key-rotation-off",
        "CKV_PDR_10",
        lambda s: one(s, first(s, "aws_kms_key"), lambda b: b.update(enable_key_rotation=False)),
    ),
    Mutation(
        "iam-service-wildcard-action",
        "CKV_PDR_11",
        lambda s: add_statement(s, ["s3:*"], "arn:aws:s3:::payments-mutation-only"),
    ),
    Mutation("iam-wildcard-resource", "CKV_PDR_12", lambda s: add_statement(s, ["dynamodb:GetItem"], "*")),
    Mutation(
        "aws-managed-policy-attached",
        "CKV_PDR_13",
        lambda s: one(
            s,
            first(s, "aws_iam_role"),
            lambda b: b.update(
                managed_policy_arns=["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]
            ),
        ),
    ),
)


@dataclass
class MutationScan:
    """Where each mutation went (or why it could not), and the findings of the one run."""

    applied: dict[str, tuple[str, set[str]]]  # mutation -> (original stack, expected type.name)
    impossible: dict[str, str]
    findings: list[Finding]

    def project_failures(self, stack: str) -> set[tuple[str, str]]:
        return {
            (f.check_id, f.address.split(":", 1)[1])
            for f in self.findings
            if f.stack == stack and f.result == "FAILED" and f.check_id.startswith("CKV_PDR_")
        }


def scan_mutations(outdir: Path, workdir: Path) -> MutationScan:
    originals = find_stacks(outdir)
    stacks = {name: json.loads(path.read_text()) for name, path in originals.items()}
    sources = dict(originals)
    applied: dict[str, tuple[str, set[str]]] = {}
    impossible: dict[str, str] = {}
    for mutation in MUTATIONS:
        mutated = copy.deepcopy(stacks)
        try:
            stack, expected = mutation.apply(mutated)
        except NothingToMutate as missing:
            impossible[mutation.name] = str(missing)
            continue
        path = workdir / "mutated" / f"mut-{mutation.name}" / "cdk.tf.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(mutated[stack], indent=2))
        sources[f"mut-{mutation.name}"] = path
        applied[mutation.name] = (stack, expected)
    view = build_view(sources, workdir / "view", load_resource_types())
    run = run_checkov(view.root, workdir / "checkov")
    return MutationScan(applied, impossible, findings_of(run, view))


@pytest.fixture(scope="module")
def mutation_scan(synth: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> MutationScan:
    return scan_mutations(synth.outdir, tmp_path_factory.mktemp("mutations"))


def test_every_project_rule_has_a_mutation() -> None:
    assert {m.rule for m in MUTATIONS} == {f"CKV_PDR_{n}" for n in range(1, 14)}


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_the_scan_fails_on_exactly_the_broken_rule_and_resource(
    mutation: Mutation, mutation_scan: MutationScan
) -> None:
    assert mutation.name not in mutation_scan.impossible, mutation_scan.impossible.get(mutation.name)
    original, expected = mutation_scan.applied[mutation.name]
    assert expected, "the mutation touched nothing"
    new = mutation_scan.project_failures(f"mut-{mutation.name}") - mutation_scan.project_failures(original)
    assert new == {(mutation.rule, key) for key in expected}
