"""IAM coverage: every granted (action, resource) is used by some call, or excused with a reason."""

from __future__ import annotations

import json
from pathlib import Path

from tools.iam_coverage import Excuse, Grant, coverage, grants, main, markdown, read_decisions, role_of

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/payments-transactions-dev"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
            "Resource": [TABLE, f"{TABLE}/index/*"],
        },
        {"Effect": "Allow", "Action": "ec2:CreateNetworkInterface", "Resource": "*"},
        {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": TABLE},
    ],
}


def decision(action: str, resource: str, allowed: bool = True, role: str = "validation-use1-dev") -> dict[str, object]:
    principal = f"arn:aws:sts::123456789012:assumed-role/{role}/drill"
    return {"principal": principal, "action": action, "resource": resource, "allowed": allowed}


def test_grants_are_the_allow_statements_action_by_resource() -> None:
    found = grants("r", [POLICY])
    assert Grant("r", "dynamodb:GetItem", TABLE) in found
    assert Grant("r", "dynamodb:PutItem", f"{TABLE}/index/*") in found
    assert len(found) == 5  # 2 actions x 2 resources + the ENI action; the Deny grants nothing


def test_the_role_of_an_assumed_role_session() -> None:
    assert role_of("arn:aws:sts::123456789012:assumed-role/validation-use1-dev/drill") == "validation-use1-dev"


def test_a_grant_is_used_only_by_an_allowed_call_of_its_own_role_on_a_matching_resource() -> None:
    role_grants = {"validation-use1-dev": grants("validation-use1-dev", [POLICY])}
    calls = [
        decision("dynamodb:GetItem", TABLE),
        decision("dynamodb:PutItem", TABLE, allowed=False),  # refused: does not count as use
        decision("dynamodb:PutItem", TABLE, role="other-role"),  # another role's call
        decision("dynamodb:GetItem", f"{TABLE}/index/merchant-created-index"),
    ]
    [entry] = coverage(role_grants, calls)
    assert {(g.action, g.resource) for g in entry.used} == {
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:GetItem", f"{TABLE}/index/*"),
    }
    assert {(g.action, g.resource) for g in entry.unused} == {
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:PutItem", f"{TABLE}/index/*"),
    }
    assert [(g.action, why.split()[0]) for g, why in entry.excused] == [("ec2:CreateNetworkInterface", "Lambda")]


def test_the_table_names_every_unused_grant(tmp_path: Path) -> None:
    [entry] = coverage({"r": grants("r", [POLICY])}, [])
    table = markdown([entry])
    assert "| `r` | 5 | 0 |" in table
    assert "**UNUSED** `dynamodb:PutItem`" in table
    assert "Lambda itself creates the ENIs" in table


def test_the_command_fails_on_an_unused_grant_and_passes_when_all_are_used(tmp_path: Path) -> None:
    policies = tmp_path / "policies.json"
    policies.write_text(json.dumps({"validation-use1-dev": [POLICY]}))
    decisions = tmp_path / "decisions.jsonl"
    out = tmp_path / "iam.md"
    decisions.write_text(json.dumps(decision("dynamodb:GetItem", TABLE)) + "\n")
    assert main(["--decisions", str(decisions), "--policies", str(policies), "--out", str(out)]) == 1
    used = [decision(a, r) for a in ("dynamodb:GetItem", "dynamodb:PutItem") for r in (TABLE, f"{TABLE}/index/x")]
    decisions.write_text("".join(json.dumps(d) + "\n" for d in used))
    assert main(["--decisions", str(decisions), "--policies", str(policies), "--out", str(out)]) == 0
    assert "| `validation-use1-dev` | 5 | 4 |" in out.read_text()


def test_a_missing_input_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["--decisions", str(tmp_path / "nope"), "--policies", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_an_excuse_with_a_role_and_a_resource_covers_only_that_role_and_resource() -> None:
    queue = "arn:aws:sqs:us-east-1:123456789012:payments-processing-dev"
    dlq = "arn:aws:sqs:us-east-1:123456789012:payments-async-dlq-dev"
    send = {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": [queue, dlq]}
    role_grants = {
        role: grants(role, [{"Statement": [send]}])
        for role in ("payment-processing-use1-dev", "payment-validation-use1-dev")
    }
    excuses = (
        Excuse("sqs:SendMessage", "parks", role="payment-processing-*", resource="arn:*:sqs:*:*:*-processing-*"),
    )
    processing, validation = coverage(role_grants, [], excuses)
    assert [(g.resource, why) for g, why in processing.excused] == [(queue, "parks")]
    assert [g.resource for g in processing.unused] == [dlq]  # another resource: not excused
    assert {g.resource for g in validation.unused} == {queue, dlq}  # another role: not excused


def test_the_async_dlq_send_is_excused_for_any_role_and_only_on_the_async_dlq() -> None:
    dlq = "arn:aws:sqs:us-east-2:123456789012:payments-async-dlq-dev"
    other = "arn:aws:sqs:us-east-2:123456789012:payments-processing-dev"
    role = "failover-orchestrator-use2-dev"
    [entry] = coverage({role: [Grant(role, "sqs:SendMessage", dlq), Grant(role, "sqs:SendMessage", other)]}, [])
    assert [g.resource for g, _why in entry.excused] == [dlq]
    assert [g.resource for g in entry.unused] == [other]


def test_a_missing_decisions_file_reads_as_no_decisions(tmp_path: Path) -> None:
    assert read_decisions(tmp_path / "never-written.jsonl") == []
