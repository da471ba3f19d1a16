"""Data layer, in every region: multi-region key, global tables and their replicas, contract.

The properties that decide whether a regional failure loses data are plain functions returning a
list of problems (:func:`table_problems`, :func:`replica_problems`, :func:`key_problems`): the
tests run them on the real synth (expect none) and on mutated copies (expect the problem named).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cdktf import App, TerraformOutput, TerraformStack

from layers.base import BackendSettings, stack_name
from layers.config import load_config
from layers.data import DataStack, TableRef
from layers.network import NetworkStack
from tests.layers.test_network import expr, of_type, only, ref, resolve
from tests.synthesized import Synthesized

CONFIG = load_config(environ={})
REGIONS = CONFIG.regions
PRIMARY = CONFIG.primary_region
REPLICA_REGIONS = [r for r in REGIONS if not CONFIG.is_primary(r)]
SUFFIX = CONFIG.environment_suffix

#: docs/design.md, "DynamoDB tables": name base, hash key, TTL attribute, GSIs (name, hash, range).
DESIGN: dict[str, dict[str, Any]] = {
    "transactions": {
        "name": "payments-transactions",
        "hash_key": "payment_id",
        "ttl": "expires_at",
        "indexes": {
            "merchant-created-index": ("merchant_id", "created_at"),
            "pending-index": ("pending_shard", "created_at"),
        },
    },
    "idempotency": {"name": "payments-idempotency", "hash_key": "id", "ttl": "expiration", "indexes": {}},
    "control": {"name": "payments-control", "hash_key": "pk", "ttl": "expires_at", "indexes": {}},
    "merchants": {"name": "payments-merchants", "hash_key": "key_id", "ttl": "expires_at", "indexes": {}},
}
ROOT = "arn:aws:iam::${data.aws_caller_identity.account.account_id}:root"


def data(region: str) -> str:
    return stack_name("data", region)


def key_of(app: Synthesized, region: str) -> str:
    """Expression of the ARN of the one data key in ``region``'s stack (the primary key or its replica)."""
    keys = [
        f"{r.type}.{r.name}.arn"
        for t in ("aws_kms_key", "aws_kms_replica_key")
        for r in app.resources(t, stack=data(region))
    ]
    assert len(keys) == 1, keys
    return keys[0]


# --- problem finders ---------------------------------------------------------------------------


def table_problems(app: Synthesized) -> list[str]:
    """Every table of the primary's stack: on demand, PITR, streams, this region's CMK, destroyable, replicas kept."""
    stack = data(PRIMARY)
    key = key_of(app, PRIMARY)
    problems = []
    for name, body in of_type(app, stack, "aws_dynamodb_table").items():
        where = f"{stack}:aws_dynamodb_table.{name}"
        if body.get("billing_mode") != "PAY_PER_REQUEST":
            problems.append(f"{where}: billing_mode {body.get('billing_mode')!r}, not PAY_PER_REQUEST")
        if body.get("point_in_time_recovery", {}).get("enabled") is not True:
            problems.append(f"{where}: point-in-time recovery off")
        if body.get("stream_enabled") is not True or body.get("stream_view_type") != "NEW_AND_OLD_IMAGES":
            problems.append(f"{where}: stream is not NEW_AND_OLD_IMAGES")
        sse = body.get("server_side_encryption", {})
        if sse.get("enabled") is not True or resolve(app, stack, sse.get("kms_key_arn")) != (stack, key):
            problems.append(f"{where}: not encrypted with this region's data key")
        if body.get("deletion_protection_enabled") is not False:
            problems.append(f"{where}: deletion protection must be explicitly off")
        if body.get("replica"):
            problems.append(f"{where}: replica blocks; replicas are aws_dynamodb_table_replica of the other stacks")
        if "replica" not in body.get("lifecycle", {}).get("ignore_changes", []):
            problems.append(f"{where}: a plan would remove the other regions' replicas (ignore_changes replica)")
        if not body.get("ttl", {}).get("enabled"):
            problems.append(f"{where}: TTL off")
    return problems


def replica_problems(app: Synthesized) -> list[str]:
    """Every table of the primary has, in every other region, one replica with PITR and that region's key."""
    primary_tables = {
        ref("aws_dynamodb_table", name, "arn") for name in of_type(app, data(PRIMARY), "aws_dynamodb_table")
    }
    problems = []
    for region in REPLICA_REGIONS:
        stack = data(region)
        replicas: dict[str, list[str]] = {arn: [] for arn in primary_tables}
        key = key_of(app, region)
        for name, body in of_type(app, stack, "aws_dynamodb_table_replica").items():
            where = f"{stack}:aws_dynamodb_table_replica.{name}"
            origin = resolve(app, stack, body.get("global_table_arn"))
            if origin[0] != data(PRIMARY) or origin[1] not in replicas:
                problems.append(f"{where}: global_table_arn {origin} is no table of {data(PRIMARY)}")
            else:
                replicas[origin[1]].append(name)
            if body.get("point_in_time_recovery") is not True:
                problems.append(f"{where}: point-in-time recovery off")
            if resolve(app, stack, body.get("kms_key_arn")) != (stack, key):
                problems.append(f"{where}: kms_key_arn {body.get('kms_key_arn')!r} is not {region}'s replica key")
            if body.get("deletion_protection_enabled") is not False:
                problems.append(f"{where}: deletion protection must be explicitly off")
        for table, names in replicas.items():
            if len(names) != 1:
                problems.append(f"{stack}: {len(names)} replicas of {table}, want 1")
    return problems


def key_problems(app: Synthesized) -> list[str]:
    """One data key per region: multi-region primary with rotation, replicas of it elsewhere, short deletion window."""
    problems = []
    primary_keys = of_type(app, data(PRIMARY), "aws_kms_key")
    if len(primary_keys) != 1:
        return [f"{data(PRIMARY)}: {len(primary_keys)} aws_kms_key, want 1"]
    (name, key), primary_arn = next(iter(primary_keys.items())), key_of(app, PRIMARY)
    if key.get("multi_region") is not True:
        problems.append(f"{data(PRIMARY)}: aws_kms_key.{name} is not multi-region")
    if key.get("enable_key_rotation") is not True:
        problems.append(f"{data(PRIMARY)}: aws_kms_key.{name} has no rotation")
    for region in REGIONS:
        stack = data(region)
        bodies = [r.body for t in ("aws_kms_key", "aws_kms_replica_key") for r in app.resources(t, stack=stack)]
        if any(b.get("deletion_window_in_days") != 7 for b in bodies):
            problems.append(f"{stack}: key deletion window is not 7 days")
        if region == PRIMARY:
            continue
        replicas = of_type(app, stack, "aws_kms_replica_key")
        if of_type(app, stack, "aws_kms_key") or len(replicas) != 1:
            problems.append(f"{stack}: want exactly one aws_kms_replica_key and no aws_kms_key")
            continue
        _, replica = only(replicas)
        if resolve(app, stack, replica.get("primary_key_arn")) != (data(PRIMARY), primary_arn):
            problems.append(f"{stack}: the replica key does not replicate {data(PRIMARY)}'s key")
    return problems


# --- keys ----------------------------------------------------------------------------------------


def test_one_multi_region_key_replicated_to_every_region(synth: Synthesized) -> None:
    assert key_problems(synth) == []


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        ("single-region", "not multi-region"),
        ("no-rotation", "no rotation"),
        ("long-window", "deletion window"),
        ("own-key", "exactly one aws_kms_replica_key"),
    ],
)
def test_a_weaker_key_is_caught(synth: Synthesized, mutation: str, expected: str) -> None:
    mutated = copy.deepcopy(synth)
    primary = mutated.stacks[data(PRIMARY)]["resource"]["aws_kms_key"]["data-key"]
    if mutation == "single-region":
        primary["multi_region"] = False
    elif mutation == "no-rotation":
        del primary["enable_key_rotation"]
    elif mutation == "long-window":
        primary["deletion_window_in_days"] = 30
    else:
        mutated.stacks[data(REPLICA_REGIONS[0])]["resource"]["aws_kms_key"] = {"other": {"enable_key_rotation": True}}
    problems = key_problems(mutated)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("region", REGIONS)
def test_key_policy_names_only_the_account_root_and_scoped_services(synth: Synthesized, region: str) -> None:
    (key,) = [r.body for t in ("aws_kms_key", "aws_kms_replica_key") for r in synth.resources(t, stack=data(region))]
    statements = json.loads(key["policy"])["Statement"]
    principals = [s["Principal"] for s in statements]
    assert {"AWS": ROOT} in principals
    for statement in statements:
        assert statement["Effect"] == "Allow"
        principal = statement["Principal"]
        assert principal != "*"
        assert principal.get("AWS") in (None, ROOT), principal
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if principal == {"AWS": ROOT}:
            continue
        service = principal["Service"]
        assert "kms:*" not in actions, service
        assert not any(a.startswith(("kms:Create", "kms:Put", "kms:Schedule", "kms:Delete")) for a in actions), service
        if service == "dynamodb.amazonaws.com":
            assert all(a.startswith(("kms:Describe", "kms:Get", "kms:List")) for a in actions), actions
            # Only for this account's tables: no other account's table can make DynamoDB read this key.
            assert statement["Condition"] == {
                "StringEquals": {"aws:SourceAccount": "${data.aws_caller_identity.account.account_id}"}
            }
            continue
        # Every service that may encrypt or decrypt is held to this region, account and deployment.
        condition = json.dumps(statement["Condition"])
        assert f":{region}:" in condition, (service, condition)
        assert "${data.aws_caller_identity.account.account_id}" in condition, service
        assert f"*-{SUFFIX}" in condition, service
        if service.startswith("logs."):
            assert service == f"logs.{region}.amazonaws.com"


@pytest.mark.parametrize("region", REGIONS)
def test_alias_names_this_regions_key(synth: Synthesized, region: str) -> None:
    _, alias = only(of_type(synth, data(region), "aws_kms_alias"))
    assert alias["name"] == f"alias/payments-{SUFFIX}"
    assert expr(alias["target_key_id"]) == key_of(synth, region).removesuffix(".arn") + ".key_id"


# --- tables --------------------------------------------------------------------------------------


def test_tables_follow_the_design(synth: Synthesized) -> None:
    tables = {body["name"]: body for body in of_type(synth, data(PRIMARY), "aws_dynamodb_table").values()}
    assert set(tables) == {f"{spec['name']}-{SUFFIX}" for spec in DESIGN.values()}
    for spec in DESIGN.values():
        table = tables[f"{spec['name']}-{SUFFIX}"]
        assert table["hash_key"] == spec["hash_key"]
        assert "range_key" not in table
        assert table["ttl"] == {"attribute_name": spec["ttl"], "enabled": True}
        indexes = {i["name"]: i for i in table.get("global_secondary_index", [])}
        assert {n: (i["hash_key"], i["range_key"]) for n, i in indexes.items()} == spec["indexes"]
        assert all(i["projection_type"] == "ALL" for i in indexes.values())
        keys = {spec["hash_key"]} | {k for pair in spec["indexes"].values() for k in pair}
        assert {(a["name"], a["type"]) for a in table["attribute"]} == {(k, "S") for k in keys}


def test_tables_are_on_demand_recoverable_streamed_encrypted_and_destroyable(synth: Synthesized) -> None:
    assert len(of_type(synth, data(PRIMARY), "aws_dynamodb_table")) == len(DESIGN)
    assert table_problems(synth) == []


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        ("provisioned", "not PAY_PER_REQUEST"),
        ("no-pitr", "point-in-time recovery off"),
        ("keys-only-stream", "NEW_AND_OLD_IMAGES"),
        ("aws-owned-key", "not encrypted with this region's data key"),
        ("protected", "deletion protection"),
        ("replica-block", "replica blocks"),
        ("no-ignore", "ignore_changes replica"),
    ],
)
def test_a_weaker_table_is_caught(synth: Synthesized, mutation: str, expected: str) -> None:
    mutated = copy.deepcopy(synth)
    table = mutated.stacks[data(PRIMARY)]["resource"]["aws_dynamodb_table"]["idempotency-table"]
    if mutation == "provisioned":
        table["billing_mode"] = "PROVISIONED"
    elif mutation == "no-pitr":
        del table["point_in_time_recovery"]
    elif mutation == "keys-only-stream":
        table["stream_view_type"] = "KEYS_ONLY"
    elif mutation == "aws-owned-key":
        del table["server_side_encryption"]["kms_key_arn"]
    elif mutation == "protected":
        table["deletion_protection_enabled"] = True
    elif mutation == "replica-block":
        table["replica"] = [{"region_name": REPLICA_REGIONS[0]}]
    else:
        del table["lifecycle"]
    problems = table_problems(mutated)
    assert any(expected in p for p in problems), problems


# --- replicas ------------------------------------------------------------------------------------


def test_every_table_has_a_replica_with_pitr_and_the_replica_key(synth: Synthesized) -> None:
    assert REPLICA_REGIONS
    for region in REPLICA_REGIONS:
        assert len(of_type(synth, data(region), "aws_dynamodb_table_replica")) == len(DESIGN)
        assert of_type(synth, data(region), "aws_dynamodb_table") == {}
    assert replica_problems(synth) == []


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        ("pitr-removed", "point-in-time recovery off"),
        ("pitr-false", "point-in-time recovery off"),
        ("primary-key", "is not us-east-2's replica key"),
        ("default-key", "is not us-east-2's replica key"),
        ("replica-removed", "0 replicas of"),
        ("wrong-table", "is no table of"),
    ],
)
def test_a_replica_without_pitr_or_with_the_wrong_key_is_caught(
    synth: Synthesized, mutation: str, expected: str
) -> None:
    mutated = copy.deepcopy(synth)
    region = REPLICA_REGIONS[0]
    replicas = mutated.stacks[data(region)]["resource"]["aws_dynamodb_table_replica"]
    replica = replicas["transactions-replica"]
    if mutation == "pitr-removed":
        del replica["point_in_time_recovery"]
    elif mutation == "pitr-false":
        replica["point_in_time_recovery"] = False
    elif mutation == "primary-key":
        # The primary region's key, read across stacks exactly as the replica key reads it.
        replica["kms_key_arn"] = mutated.stacks[data(region)]["resource"]["aws_kms_replica_key"]["data-key"][
            "primary_key_arn"
        ]
    elif mutation == "default-key":
        del replica["kms_key_arn"]
    elif mutation == "replica-removed":
        del replicas["control-replica"]
    else:
        replica["global_table_arn"] = "arn:aws:dynamodb:us-east-1:111111111111:table/other"
    problems = replica_problems(mutated)
    assert any(expected.replace("us-east-2", region) in p for p in problems), problems


# --- outputs and contract -----------------------------------------------------------------------


@pytest.mark.parametrize("region", REGIONS)
def test_outputs_hold_this_regions_names_arns_streams_and_key(synth: Synthesized, region: str) -> None:
    stack = data(region)
    outputs = synth.stacks[stack]["output"]
    assert expr(outputs["key_arn"]["value"]) == key_of(synth, region)
    assert outputs["key_alias_name"]["value"] == f"alias/payments-{SUFFIX}"
    for key, spec in DESIGN.items():
        assert outputs[f"{key}_table_name"]["value"] == f"{spec['name']}-{SUFFIX}"
        if CONFIG.is_primary(region):
            assert expr(outputs[f"{key}_table_arn"]["value"]) == ref("aws_dynamodb_table", f"{key}-table", "arn")
            assert expr(outputs[f"{key}_stream_arn"]["value"]) == ref(
                "aws_dynamodb_table", f"{key}-table", "stream_arn"
            )
        else:
            assert expr(outputs[f"{key}_table_arn"]["value"]) == ref(
                "aws_dynamodb_table_replica", f"{key}-replica", "arn"
            )
            # The replica's own stream, read in this region once the replica exists.
            source = f"{key}-replica-table"
            assert expr(outputs[f"{key}_stream_arn"]["value"]) == f"data.aws_dynamodb_table.{source}.stream_arn"
            reader = synth.stacks[stack]["data"]["aws_dynamodb_table"][source]
            assert reader["name"] == f"{spec['name']}-{SUFFIX}"
            assert reader["depends_on"] == [f"aws_dynamodb_table_replica.{key}-replica"]


class _Probe(TerraformStack):
    """A later layer in miniature: reads every contract attribute of a DataStack."""

    def __init__(self, app: App, stack: DataStack) -> None:
        super().__init__(app, f"probe-{stack.region}")
        self.add_dependency(stack)
        TerraformOutput(self, "key_arn", value=stack.key_arn)
        TerraformOutput(self, "key_alias_name", value=stack.key_alias_name)
        for key, table in stack.tables.items():
            TerraformOutput(self, f"{key}_name", value=table.name)
            TerraformOutput(self, f"{key}_arn", value=table.arn)
            TerraformOutput(self, f"{key}_stream_arn", value=table.stream_arn)


def test_contract_attributes_cross_stacks_to_this_regions_resources(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    backend = BackendSettings.load()
    stacks: dict[str, DataStack] = {}
    for region in REGIONS:
        net = NetworkStack(app, region=region, config=CONFIG, backend=backend)
        primary = None if CONFIG.is_primary(region) else stacks[PRIMARY]
        stacks[region] = DataStack(app, region=region, config=CONFIG, backend=backend, network=net, primary=primary)
        assert set(stacks[region].tables) == set(DESIGN)
        assert all(isinstance(t, TableRef) for t in stacks[region].tables.values())
        _Probe(app, stacks[region])
    app.synth()
    probe = Synthesized(tmp_path)
    for region in REGIONS:
        outputs = probe.stacks[f"probe-{region}"]["output"]

        def origin(name: str, region: str = region, outputs: dict = outputs) -> tuple[str, str]:
            return resolve(probe, f"probe-{region}", outputs[name]["value"])

        assert origin("key_arn") == (data(region), key_of(probe, region))
        assert origin("key_alias_name") == (f"probe-{region}", f"alias/payments-{SUFFIX}")
        for key, spec in DESIGN.items():
            assert origin(f"{key}_name")[1] == f"{spec['name']}-{SUFFIX}"
            table = resolve(probe, data(region), probe.stacks[data(region)]["output"][f"{key}_table_arn"]["value"])
            stream = resolve(probe, data(region), probe.stacks[data(region)]["output"][f"{key}_stream_arn"]["value"])
            assert origin(f"{key}_arn") == table, key
            assert origin(f"{key}_stream_arn") == stream, key
            assert table[0] == stream[0] == data(region), key


def test_the_primary_stack_takes_no_primary_and_the_secondary_needs_one(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    backend = BackendSettings.load()
    net = NetworkStack(app, region=CONFIG.secondary_region, config=CONFIG, backend=backend)
    with pytest.raises(ValueError, match="primary region's stack takes no primary"):
        DataStack(app, region=CONFIG.secondary_region, config=CONFIG, backend=backend, network=net, primary=None)
