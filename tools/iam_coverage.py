"""Least privilege, proven both ways: every (action, resource) a role grants is used, or excused.

The emulator (:mod:`tools.emulator_iam`) checks each call against the caller's role, so a call its
role does not allow fails. This module does the other direction: it reads what each role grants
(its policy documents), what its callers were allowed to do (the emulator's decisions), and lists
every granted (action, resource) that no call used. A grant nobody used fails, unless
:data:`NOT_CALLABLE` names it (by action, and where that is not enough by role and resource) with
the reason no drill can use it (AWS calls it on the role's behalf, or the drill cannot reach it).

``python -m tools.iam_coverage --decisions F --policies P --out reports/drill/iam.md`` writes the
table (role, granted, used, unused with reason) and exits 1 when a grant is unused and unexcused.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Excuse:
    """Why no drill can use a grant: ``action`` (glob), optionally only for ``role`` and ``resource`` (globs)."""

    action: str
    reason: str
    role: str = "*"
    resource: str = "*"

    def covers(self, grant: Grant) -> bool:
        """Whether this excuse names ``grant``."""
        return (
            fnmatch.fnmatchcase(grant.action, self.action)
            and fnmatch.fnmatchcase(grant.role, self.role)
            and fnmatch.fnmatchcase(grant.resource, self.resource)
        )


_ENIS = "Lambda itself manages the ENIs of an in-VPC function"
#: What a drill's one-at-a-time world cannot reach, for processing's park (see :data:`NOT_CALLABLE`).
_PARK = (
    "processing parks a message only when a batch reaches a region that lost the lease while the batch"
    " was on its way (Lambda runs the poller, the function and the orchestrator at once); the drill runs"
    " one invocation at a time and the orchestrator stops the consumer in the invocation that moves the"
    " lease, so no scenario reaches it (tests/lambdas/payment_processing covers the call)"
)

#: Grants no caller of a drill makes itself, with the reason.
NOT_CALLABLE: tuple[Excuse, ...] = (
    Excuse(
        "ec2:CreateNetworkInterface", "Lambda itself creates the ENIs of an in-VPC function, with the function's role"
    ),
    Excuse("ec2:DescribeNetworkInterfaces", _ENIS),
    Excuse("ec2:DescribeSubnets", "Lambda itself reads the subnets of an in-VPC function when it creates its ENIs"),
    Excuse("ec2:DeleteNetworkInterface", "Lambda itself deletes the ENIs of an in-VPC function"),
    Excuse("ec2:AssignPrivateIpAddresses", _ENIS),
    Excuse("ec2:UnassignPrivateIpAddresses", _ENIS),
    Excuse("logs:CreateLogStream", "the Lambda runtime writes the function's log stream, not the function code"),
    Excuse("logs:PutLogEvents", "the Lambda runtime writes the function's logs, not the function code"),
    Excuse("xray:PutTraceSegments", "the Lambda service's X-Ray daemon sends the segments, not the function code"),
    Excuse("xray:PutTelemetryRecords", "the Lambda service's X-Ray daemon sends telemetry, not the function code"),
    Excuse(
        "sqs:SendMessage",
        "Lambda itself sends an asynchronous event that failed every retry to the function's DLQ, with the"
        " function's role; the drill counts a failed invocation but does not replay Lambda's retries",
        resource="arn:*:sqs:*:*:*-async-dlq-*",
    ),
    Excuse("sqs:SendMessage", _PARK, role="payment-processing-*", resource="arn:*:sqs:*:*:*-processing-*"),
    Excuse(
        "kms:GenerateDataKey",
        f"the processing queue's key, for the park send only: {_PARK}",
        role="payment-processing-*",
    ),
)


@dataclass(frozen=True)
class Grant:
    """One (action, resource) pair of an ``Allow`` statement of a role's policy."""

    role: str
    action: str
    resource: str


@dataclass
class RoleCoverage:
    """A role's grants, split into used and unused (each unused one with its excuse, or none)."""

    role: str
    used: list[Grant] = field(default_factory=list)
    excused: list[tuple[Grant, str]] = field(default_factory=list)
    unused: list[Grant] = field(default_factory=list)

    @property
    def granted(self) -> int:
        """How many (action, resource) pairs the role grants."""
        return len(self.used) + len(self.excused) + len(self.unused)


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def grants(role: str, documents: Iterable[Mapping[str, object]]) -> list[Grant]:
    """The (action, resource) pairs the ``Allow`` statements of ``documents`` grant to ``role``."""
    found: list[Grant] = []
    for document in documents:
        statements = document.get("Statement", [])
        for statement in statements if isinstance(statements, list) else [statements]:
            if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
                continue
            for action in _as_list(statement.get("Action")):  # type: ignore[arg-type]
                for resource in _as_list(statement.get("Resource")):  # type: ignore[arg-type]
                    found.append(Grant(role, action, resource))
    return sorted(set(found), key=lambda g: (g.action, g.resource))


def role_of(principal: str) -> str:
    """The role name of an assumed-role ARN (``arn:aws:sts::<acct>:assumed-role/<role>/<session>``)."""
    if ":assumed-role/" in principal:
        return principal.split(":assumed-role/")[1].split("/")[0]
    return principal.rsplit("/", 1)[-1]


def _grant_used(grant: Grant, decision: Mapping[str, object]) -> bool:
    action, resource = str(decision["action"]), str(decision["resource"])
    same_action = fnmatch.fnmatchcase(action.lower(), grant.action.lower())
    return same_action and (grant.resource == "*" or fnmatch.fnmatchcase(resource, grant.resource))


def coverage(
    role_grants: Mapping[str, list[Grant]],
    decisions: Iterable[Mapping[str, object]],
    not_callable: Sequence[Excuse] = NOT_CALLABLE,
) -> list[RoleCoverage]:
    """Each role's grants, against the allowed decisions its callers got."""
    allowed: dict[str, list[Mapping[str, object]]] = {}
    for decision in decisions:
        if decision.get("allowed"):
            allowed.setdefault(role_of(str(decision["principal"])), []).append(decision)
    report = []
    for role in sorted(role_grants):
        entry = RoleCoverage(role)
        for grant in role_grants[role]:
            if any(_grant_used(grant, decision) for decision in allowed.get(role, [])):
                entry.used.append(grant)
                continue
            reason = next((excuse.reason for excuse in not_callable if excuse.covers(grant)), None)
            if reason:
                entry.excused.append((grant, reason))
            else:
                entry.unused.append(grant)
        report.append(entry)
    return report


def markdown(report: Sequence[RoleCoverage]) -> str:
    """The coverage table: role, granted, used, unused (with the reason, or UNUSED)."""
    lines = [
        "# IAM coverage of the drill",
        "",
        "Every (action, resource) each role grants, against the calls the drill's functions made with",
        "that role's credentials (the emulator checks each call against the resource it touches).",
        "",
        "| role | granted | used | unused, with the reason |",
        "| --- | ---: | ---: | --- |",
    ]
    for entry in report:
        unused = [f"**UNUSED** `{g.action}` on `{g.resource}`" for g in entry.unused]
        unused += [f"`{g.action}` on `{g.resource}`: {why}" for g, why in entry.excused]
        lines.append(f"| `{entry.role}` | {entry.granted} | {len(entry.used)} | {'<br>'.join(unused) or '-'} |")
    return "\n".join(lines) + "\n"


def read_decisions(path: Path) -> list[dict[str, object]]:
    """The emulator's decisions file (one JSON object a line); none when the file is not there."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """Write the table; exit 1 when a grant is unused and not excused, 2 on bad arguments."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=Path, required=True, help="the emulator's decisions file")
    parser.add_argument("--policies", type=Path, required=True, help='JSON: {"<role>": [<policy document>, ...]}')
    parser.add_argument("--out", type=Path, default=Path("reports/drill/iam.md"))
    args = parser.parse_args(argv)
    for path in (args.decisions, args.policies):
        if not path.is_file():
            print(f"iam_coverage: {path} does not exist", file=sys.stderr)
            return 2
    documents = json.loads(args.policies.read_text())
    report = coverage({role: grants(role, docs) for role, docs in documents.items()}, read_decisions(args.decisions))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(report))
    unused = [g for entry in report for g in entry.unused]
    for grant in unused:
        print(f"unused grant: {grant.role} {grant.action} on {grant.resource}", file=sys.stderr)
    return 1 if unused else 0


if __name__ == "__main__":
    sys.exit(main())
