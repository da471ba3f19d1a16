"""Witness layer: one plain table in the witness region, its own rotating key, the orchestrators' only extra copy.

:func:`witness_problems` returns what is wrong with the witness stack; the tests run it on the real
synth (expect none) and on mutated copies (expect the problem named).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from layers.base import stack_name
from layers.config import load_config
from tests.layers.test_network import expr, of_type, only
from tests.synthesized import Synthesized

CONFIG = load_config(environ={})
STACK = stack_name("witness", CONFIG.witness_region)
SUFFIX = CONFIG.environment_suffix


def witness_problems(app: Synthesized) -> list[str]:
    """The witness table and key of docs/design.md ("DynamoDB tables", lease protocol)."""
    problems = []
    key_name, key = only(of_type(app, STACK, "aws_kms_key"))
    if key.get("enable_key_rotation") is not True:
        problems.append("witness key: rotation off")
    if key.get("multi_region"):
        problems.append("witness key: must be a key of the witness region only, not multi-region")
    if not 7 <= key.get("deletion_window_in_days", 30) <= 7:
        problems.append("witness key: deletion window must be 7 days (destroyable)")
    _, table = only(of_type(app, STACK, "aws_dynamodb_table"))
    if table.get("name") != f"payments-lease-witness-{SUFFIX}":
        problems.append(f"witness table: name {table.get('name')!r}")
    if table.get("billing_mode") != "PAY_PER_REQUEST":
        problems.append("witness table: not PAY_PER_REQUEST")
    if (table.get("hash_key"), table.get("attribute")) != ("pk", [{"name": "pk", "type": "S"}]):
        problems.append("witness table: key must be pk (S) only")
    if table.get("point_in_time_recovery", {}).get("enabled") is not True:
        problems.append("witness table: point-in-time recovery off")
    sse = table.get("server_side_encryption", {})
    if sse.get("enabled") is not True or expr(sse.get("kms_key_arn", "${none}")) != f"aws_kms_key.{key_name}.arn":
        problems.append("witness table: not encrypted with the witness key")
    if table.get("deletion_protection_enabled") is not False:
        problems.append("witness table: deletion protection on (the stack must be destroyable)")
    if table.get("replica") or of_type(app, STACK, "aws_dynamodb_table_replica"):
        problems.append("witness table: must not be a global table")
    return problems


def test_the_witness_is_a_plain_encrypted_recoverable_destroyable_table(synth: Synthesized) -> None:
    assert witness_problems(synth) == []


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        ({"aws_kms_key": {"enable_key_rotation": False}}, "rotation off"),
        ({"aws_dynamodb_table": {"billing_mode": "PROVISIONED"}}, "not PAY_PER_REQUEST"),
        ({"aws_dynamodb_table": {"point_in_time_recovery": {"enabled": False}}}, "point-in-time recovery off"),
        ({"aws_dynamodb_table": {"server_side_encryption": {"enabled": True}}}, "not encrypted"),
        ({"aws_dynamodb_table": {"deletion_protection_enabled": True}}, "deletion protection on"),
        ({"aws_dynamodb_table": {"replica": [{"region_name": "us-east-1"}]}}, "global table"),
    ],
)
def test_a_weaker_witness_is_caught(synth: Synthesized, mutation: dict[str, dict[str, Any]], expected: str) -> None:
    mutated = copy.copy(synth)
    mutated.stacks = copy.deepcopy(synth.stacks)
    for type_, changes in mutation.items():
        only(mutated.stacks[STACK]["resource"][type_])[1].update(changes)
    assert any(expected in problem for problem in witness_problems(mutated)), witness_problems(mutated)


def test_the_witness_key_policy_names_only_the_account_root_and_dynamodb_for_this_account(
    synth: Synthesized,
) -> None:
    _, key = only(of_type(synth, STACK, "aws_kms_key"))
    statements = json.loads(key["policy"])["Statement"]
    principals = [statement["Principal"] for statement in statements]
    assert principals == [
        {"AWS": "arn:aws:iam::${data.aws_caller_identity.account.account_id}:root"},
        {"Service": "dynamodb.amazonaws.com"},
    ]
    assert statements[1]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "${data.aws_caller_identity.account.account_id}"}
    }
    _, alias = only(of_type(synth, STACK, "aws_kms_alias"))
    assert alias["name"] == f"alias/payments-lease-witness-{SUFFIX}"


def test_the_witness_outputs_its_table_and_key(synth: Synthesized) -> None:
    outputs = synth.stacks[STACK]["output"]
    assert outputs["witness_table_name"]["value"] == f"payments-lease-witness-{SUFFIX}"
    assert {"witness_table_arn", "witness_key_arn"} <= set(outputs)


def test_a_witness_region_override_moves_the_stack(tmp_path: Any) -> None:
    from tests.conftest import synthesize

    app = synthesize(tmp_path / "cdktf.out", witness_region="ca-central-1")
    assert "witness-ca-central-1" in app.stacks
    assert STACK not in app.stacks
    assert [p["region"] for p in app.providers("witness-ca-central-1")] == ["ca-central-1"]
    orchestrator = next(
        r.body
        for r in app.resources("aws_lambda_function", stack=f"compute-{CONFIG.primary_region}")
        if r.body["function_name"] == f"failover-orchestrator-{SUFFIX}"
    )
    assert orchestrator["environment"]["variables"]["WITNESS_REGION"] == "ca-central-1"
