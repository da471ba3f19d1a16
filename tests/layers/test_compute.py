"""Compute layer, as synthesized in both regions: functions, queues, alert topic, least-privilege IAM."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from layers.compute import FUNCTIONS, VISIBILITY_TIMEOUT_FACTOR, WRITERS
from layers.config import ConfigError, load_config, read_context
from layers.edge import HEALTH_PATH, regional_host
from tests.synthesized import Synthesized
from tools.package import content_digest, function_sources

CONFIG = load_config(environ={})
REGIONS = CONFIG.regions
SUFFIX = CONFIG.environment_suffix
KEYS = [spec.key for spec in FUNCTIONS]
IN_VPC = {spec.key for spec in FUNCTIONS if spec.in_vpc}
ASYNC = {spec.key for spec in FUNCTIONS if spec.asynchronous}
REF = re.compile(r"\$\{([^}]+)\}")
DLQ_RETENTION = 14 * 24 * 3600

#: Every synth-level test runs once per region: the stacks are identical by design.
per_region = pytest.mark.parametrize("region", REGIONS)


def stack_of(region: str) -> str:
    return f"compute-{region}"


def by_id(synth: Synthesized, region: str, type_: str) -> dict[str, dict[str, Any]]:
    return synth.stacks[stack_of(region)].get("resource", {}).get(type_, {})


def functions(synth: Synthesized, region: str) -> dict[str, dict[str, Any]]:
    """Function bodies keyed by their folder (``payment_validation``), found by function name."""
    names = {f"{key.replace('_', '-')}-{SUFFIX}": key for key in KEYS}
    found = {names[body["function_name"]]: body for body in by_id(synth, region, "aws_lambda_function").values()}
    assert set(found) == set(KEYS)
    return found


# ------------------------------------------------------------------ reference resolution


def resolve(synth: Synthesized, stack: str, expression: str) -> tuple[str, str, dict[str, Any], str]:
    """``${...}`` of one stack -> (stack, resource type, body, attribute), following cross-stack outputs."""
    match = REF.fullmatch(expression)
    assert match, f"{expression!r} is not a single reference"
    parts = match.group(1).split(".")
    if parts[:2] == ["data", "terraform_remote_state"]:
        remote = synth.stacks[stack]["data"]["terraform_remote_state"][parts[2]]
        source = Path(remote["config"]["key"]).name.removesuffix(".tfstate")
        return resolve(synth, source, synth.stacks[source]["output"][parts[4]]["value"])
    if parts[0] == "data":
        return stack, f"data.{parts[1]}", synth.stacks[stack]["data"][parts[1]][parts[2]], parts[3]
    return stack, parts[0], synth.stacks[stack]["resource"][parts[0]][parts[1]], parts[2]


def symbol(synth: Synthesized, stack: str, value: str) -> tuple[str, ...]:
    """What a policy resource points at, independent of logical ids: ``("table", name, region)``, ..."""
    if value == "*":
        return ("*",)
    table_ref, _, index = value.partition("/index/")
    if index and REF.fullmatch(table_ref):
        return ("index", *symbol(synth, stack, table_ref)[1:], index)
    if REF.fullmatch(value) is None:
        # An ARN built from names: the partition and account data sources are the only references.
        text = value.replace("${data.aws_partition.partition.partition}", "aws")
        text = text.replace("${data.aws_caller_identity.account.account_id}", "ACCOUNT")
        return ("arn", REF.sub(lambda match: key_id(synth, stack, match.group(0)), text))
    source, type_, body, attribute = resolve(synth, stack, value)
    region = source.split("-", 1)[1]
    if type_ == "aws_dynamodb_table":
        return ("table", body["name"], region)
    if type_ == "aws_dynamodb_table_replica":
        return ("table", symbol(synth, source, body["global_table_arn"])[1], region)
    if type_ in {"aws_kms_key", "aws_kms_replica_key"}:
        return ("key", region)
    if type_ in {"aws_sqs_queue", "aws_sns_topic"}:
        return (type_.removeprefix("aws_"), body["name"], attribute)
    return (type_, body.get("name", ""), attribute)


def key_id(synth: Synthesized, stack: str, expression: str) -> str:
    """``KEY_ID`` for a reference to this region's data key id (the multi-region key's id), else fail."""
    _, type_, _, attribute = resolve(synth, stack, expression)
    assert (type_, attribute) in {("aws_kms_key", "key_id"), ("aws_kms_replica_key", "key_id")}, expression
    return "KEY_ID"


def log_streams(synth: Synthesized, stack: str, value: str) -> tuple[str, ...]:
    """``<log group arn>:*`` -> ("log-streams", group name)."""
    assert value.endswith(":*"), f"{value}: log streams are <group arn>:*"
    _, type_, body, _ = resolve(synth, stack, value.removesuffix(":*"))
    assert type_ == "aws_cloudwatch_log_group"
    return ("log-streams", body["name"])


def policy_statements(synth: Synthesized, stack: str, expression: str) -> list[dict[str, Any]]:
    _, type_, body, attribute = resolve(synth, stack, expression)
    assert (type_, attribute) == ("data.aws_iam_policy_document", "json")
    return body["statement"]


def grants(synth: Synthesized, stack: str, statements: list[dict[str, Any]]) -> set[tuple[str, tuple[str, ...]]]:
    """Every (action, resource symbol) an Allow statement grants."""
    granted = set()
    for item in statements:
        assert item["effect"] == "Allow"
        for resource in item["resources"]:
            group = resource.startswith("${aws_cloudwatch_log_group.")
            target = log_streams(synth, stack, resource) if group else symbol(synth, stack, resource)
            granted |= {(action, target) for action in item["actions"]}
    return granted


def role_policies(synth: Synthesized, region: str) -> dict[str, list[dict[str, Any]]]:
    """Statements of each function's role, keyed by function folder."""
    stack = stack_of(region)
    roles = by_id(synth, region, "aws_iam_role")
    policies: dict[str, list[dict[str, Any]]] = {}
    for key, body in functions(synth, region).items():
        role_id = REF.fullmatch(body["role"]).group(1).split(".")[1]
        attached = [
            p
            for p in by_id(synth, region, "aws_iam_role_policy").values()
            if p["role"] == f"${{aws_iam_role.{role_id}.id}}"
        ]
        assert len(attached) == 1, f"{key}: one inline policy per role"
        assert roles[role_id]["name"] == f"{key.replace('_', '-')}-{region_code(region)}-{SUFFIX}"
        policies[key] = policy_statements(synth, stack, attached[0]["policy"])
    return policies


def region_code(region: str) -> str:
    from layers.config import REGION_CODES

    return REGION_CODES[region]


# ------------------------------------------------------------------ functions


@per_region
def test_one_function_per_folder_named_without_region(synth: Synthesized, region: str) -> None:
    bodies = functions(synth, region)
    for body in bodies.values():
        assert region not in body["function_name"]
        assert (body["runtime"], body["handler"], body["architectures"]) == (
            "python3.11",
            "handler.handler",
            ["x86_64"],
        )


@per_region
def test_every_function_has_reserved_concurrency_tracing_and_encrypted_environment(
    synth: Synthesized, region: str
) -> None:
    for key, body in functions(synth, region).items():
        assert body["reserved_concurrent_executions"] >= 1, key
        assert body["reserved_concurrent_executions"] == CONFIG.lambda_reserved_concurrency, key
        assert body["tracing_config"] == {"mode": "Active"}, key
        assert symbol(synth, stack_of(region), body["kms_key_arn"]) == ("key", region), key
        assert body["memory_size"] == CONFIG.lambda_memory_mb


@per_region
def test_in_vpc_functions_use_the_private_subnets_and_the_lambda_security_group(
    synth: Synthesized, region: str
) -> None:
    network = f"network-{region}"
    all_subnets = set(synth.stacks[network]["resource"]["aws_subnet"])
    for key, body in functions(synth, region).items():
        if key not in IN_VPC:
            # The orchestrator must reach Route 53 and both regions' APIs: outside the VPC by design.
            assert "vpc_config" not in body, key
            continue
        subnets = [resolve(synth, stack_of(region), ref) for ref in body["vpc_config"]["subnet_ids"]]
        assert {s[0] for s in subnets} == {network}
        assert {s[1] for s in subnets} == {"aws_subnet"}
        assert len(subnets) >= 2, f"{key}: at least two AZs"
        subnet_ids = {s[2]["//"]["metadata"]["uniqueId"] for s in subnets}
        assert subnet_ids == all_subnets, f"{key}: every private subnet of the network layer"
        for subnet in subnets:
            assert subnet[2].get("map_public_ip_on_launch") in (None, False)
        [group] = [resolve(synth, stack_of(region), ref) for ref in body["vpc_config"]["security_group_ids"]]
        assert (group[0], group[1]) == (network, "aws_security_group")
        assert "lambda" in group[2]["name"].lower()
        # On destroy the function moves to the VPC's rule-less default SG, so the Lambda SG is freed sooner.
        assert body["replace_security_groups_on_destroy"] is True, key
        [replacement] = [resolve(synth, stack_of(region), ref) for ref in body["replacement_security_group_ids"]]
        assert (replacement[0], replacement[1]) == (network, "aws_default_security_group"), key


@per_region
def test_every_function_has_its_own_encrypted_log_group_created_first(synth: Synthesized, region: str) -> None:
    groups = by_id(synth, region, "aws_cloudwatch_log_group")
    for key, body in functions(synth, region).items():
        [(group_id, group)] = [(i, g) for i, g in groups.items() if g["name"] == f"/aws/lambda/{body['function_name']}"]
        assert symbol(synth, stack_of(region), group["kms_key_id"]) == ("key", region)
        assert group["retention_in_days"] == CONFIG.log_retention_days
        assert f"aws_cloudwatch_log_group.{group_id}" in body["depends_on"], key


@per_region
def test_only_asynchronously_invoked_functions_send_failed_invocations_to_a_dlq(
    synth: Synthesized, region: str
) -> None:
    for key, body in functions(synth, region).items():
        if key not in ASYNC:
            # API Gateway and the SQS mapping invoke synchronously: a DLQ there would never receive anything.
            assert "dead_letter_config" not in body, key
            continue
        target = symbol(synth, stack_of(region), body["dead_letter_config"]["target_arn"])
        assert target == ("sqs_queue", f"payments-async-dlq-{SUFFIX}", "arn"), key


@per_region
def test_every_function_uses_the_powertools_layer(synth: Synthesized, region: str) -> None:
    [(layer_id, layer)] = by_id(synth, region, "aws_lambda_layer_version").items()
    assert layer["compatible_runtimes"] == ["python3.11"]
    assert layer["layer_name"] == f"payments-powertools-{SUFFIX}"
    assert layer["source_code_hash"] in layer["filename"].split("/")
    assert (synth.stack_path(stack_of(region)).parent / layer["filename"]).is_file()
    for key, body in functions(synth, region).items():
        assert body["layers"] == [f"${{aws_lambda_layer_version.{layer_id}.arn}}"], key


@per_region
def test_source_code_hash_is_the_content_hash_of_the_zipped_code(synth: Synthesized, region: str) -> None:
    for key, body in functions(synth, region).items():
        archive = synth.stack_path(stack_of(region)).parent / body["filename"]
        assert archive.is_file(), key
        assert body["source_code_hash"] == archive.parent.name
        sources = function_sources(key)
        assert body["source_code_hash"] == content_digest(sources), f"{key}: hash of lambdas/{key} + payments_common"
        with zipfile.ZipFile(archive) as zipped:
            files = sorted(info.filename for info in zipped.infolist() if not info.is_dir())
        assert files == [relative for relative, _ in sources], f"{key}: the zip holds exactly the staged files"


@per_region
def test_environment_follows_the_design_contract(synth: Synthesized, region: str) -> None:
    common = {
        "TRANSACTIONS_TABLE": f"payments-transactions-{SUFFIX}",
        "IDEMPOTENCY_TABLE": f"payments-idempotency-{SUFFIX}",
        "CONTROL_TABLE": f"payments-control-{SUFFIX}",
        "PRIMARY_REGION": CONFIG.primary_region,
        "SECONDARY_REGION": CONFIG.secondary_region,
        "ENVIRONMENT_SUFFIX": SUFFIX,
    }
    powertools = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
    stack = stack_of(region)
    for key, body in functions(synth, region).items():
        variables = body["environment"]["variables"]
        assert common.items() <= variables.items(), key
        assert powertools <= set(variables), key
        assert variables.get("POWERTOOLS_LOGGER_LOG_EVENT") == "false", f"{key}: events may hold card numbers"
        if key in ("payment_validation", "payment_processing", "failover_orchestrator"):
            assert symbol(synth, stack, variables["PROCESSING_QUEUE_URL"]) == (
                "sqs_queue",
                f"payments-processing-{SUFFIX}",
                "url",
            )
        else:
            assert "PROCESSING_QUEUE_URL" not in variables, key
        if key == "health":
            assert int(variables["HEARTBEAT_STALE_SECONDS"]) == CONFIG.heartbeat_stale_seconds
        if key == "failover_orchestrator":
            assert symbol(synth, stack, variables["ALERT_TOPIC_ARN"]) == (
                "sns_topic",
                f"payments-alerts-{SUFFIX}",
                "arn",
            )
            assert variables["PROCESSING_FUNCTION_NAME"] == f"payment-processing-{SUFFIX}"
            assert int(variables["HEARTBEAT_STALE_SECONDS"]) == CONFIG.heartbeat_stale_seconds
            # The same URL the Route 53 HTTPS health check requests (edge layer).
            assert variables["REGIONAL_HEALTH_URL"] == f"https://{regional_host(CONFIG, region)}{HEALTH_PATH}"
            peer = next(r for r in CONFIG.regions if r != region)
            assert variables["PEER_HEALTH_URL"] == f"https://{regional_host(CONFIG, peer)}{HEALTH_PATH}"
            assert int(variables["LEASE_SECONDS"]) == CONFIG.lease_seconds
            assert int(variables["LEASE_SAFETY_MARGIN_SECONDS"]) == CONFIG.lease_safety_margin_seconds
            assert int(variables["PENDING_SWEEP_AGE_SECONDS"]) == CONFIG.pending_sweep_age_seconds
            assert int(variables["PENDING_ALARM_AGE_SECONDS"]) == CONFIG.pending_alarm_age_seconds
            assert variables["WITNESS_TABLE"] == f"payments-lease-witness-{SUFFIX}"
            assert variables["WITNESS_REGION"] == CONFIG.witness_region
        else:
            assert "WITNESS_TABLE" not in variables, f"{key}: only the orchestrator reaches the witness"
        if key == "failover_orchestrator":
            assert "FAILOVER_PROCESSING_CONCURRENCY" not in variables, "capacity is provisioned, not raised"
        if key == "authorizer":
            assert variables["MERCHANTS_TABLE"] == f"payments-merchants-{SUFFIX}"
        else:
            assert "MERCHANTS_TABLE" not in variables, f"{key}: only the authorizer reads API keys"


# ------------------------------------------------------------------ queues and topic


def queues(synth: Synthesized, region: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Queues keyed by name: (logical id, body)."""
    return {body["name"]: (i, body) for i, body in by_id(synth, region, "aws_sqs_queue").items()}


@per_region
def test_every_queue_is_encrypted_with_the_data_key(synth: Synthesized, region: str) -> None:
    found = queues(synth, region)
    assert set(found) == {f"payments-{base}-{SUFFIX}" for base in ("processing", "processing-dlq", "async-dlq")}
    for name, (_, body) in found.items():
        assert symbol(synth, stack_of(region), body["kms_master_key_id"]) == ("key", region), name
        assert 60 <= body["kms_data_key_reuse_period_seconds"] <= 86400, name
        assert body.get("sqs_managed_sse_enabled") in (None, False), name


@per_region
def test_processing_queue_redrives_to_its_dlq_after_max_receive_count(synth: Synthesized, region: str) -> None:
    found = queues(synth, region)
    _, queue = found[f"payments-processing-{SUFFIX}"]
    dlq_id, dlq = found[f"payments-processing-dlq-{SUFFIX}"]
    redrive = json.loads(queue["redrive_policy"])
    assert redrive == {
        "deadLetterTargetArn": f"${{aws_sqs_queue.{dlq_id}.arn}}",
        "maxReceiveCount": CONFIG.sqs_max_receive_count,
    }
    assert dlq["message_retention_seconds"] == DLQ_RETENTION
    assert queue["message_retention_seconds"] < dlq["message_retention_seconds"], "the DLQ keeps messages longer"
    [allow] = by_id(synth, region, "aws_sqs_queue_redrive_allow_policy").values()
    assert allow["queue_url"] == f"${{aws_sqs_queue.{dlq_id}.url}}"
    queue_id = found[f"payments-processing-{SUFFIX}"][0]
    assert json.loads(allow["redrive_allow_policy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [f"${{aws_sqs_queue.{queue_id}.arn}}"],
    }
    _, async_dlq = found[f"payments-async-dlq-{SUFFIX}"]
    assert async_dlq["message_retention_seconds"] == DLQ_RETENTION
    assert json.loads(async_dlq["redrive_allow_policy"]) == {"redrivePermission": "denyAll"}


@per_region
def test_visibility_timeout_is_at_least_six_times_the_processing_timeout(synth: Synthesized, region: str) -> None:
    processing = functions(synth, region)["payment_processing"]
    _, queue = queues(synth, region)[f"payments-processing-{SUFFIX}"]
    assert VISIBILITY_TIMEOUT_FACTOR >= 6
    assert queue["visibility_timeout_seconds"] >= 6 * processing["timeout"]


def assert_denies_insecure_transport(statements: list[dict[str, Any]], resource_ref: str) -> None:
    denies = [s for s in statements if s["effect"] == "Deny"]
    assert len(denies) == 1
    [deny] = denies
    assert deny["principals"] == [{"type": "*", "identifiers": ["*"]}]
    assert deny["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]
    assert deny["resources"] == [resource_ref]
    assert all(action.endswith(":*") for action in deny["actions"])


@per_region
def test_every_queue_policy_denies_non_tls_access(synth: Synthesized, region: str) -> None:
    policies = {body["queue_url"]: body for body in by_id(synth, region, "aws_sqs_queue_policy").values()}
    for name, (queue_id, _) in queues(synth, region).items():
        policy = policies.get(f"${{aws_sqs_queue.{queue_id}.url}}")
        assert policy is not None, f"{name} has no queue policy"
        statements = policy_statements(synth, stack_of(region), policy["policy"])
        assert_denies_insecure_transport(statements, f"${{aws_sqs_queue.{queue_id}.arn}}")


@per_region
def test_alert_topic_is_encrypted_and_only_this_accounts_alarms_and_rules_publish(
    synth: Synthesized, region: str
) -> None:
    [(topic_id, topic)] = by_id(synth, region, "aws_sns_topic").items()
    assert topic["name"] == f"payments-alerts-{SUFFIX}"
    assert symbol(synth, stack_of(region), topic["kms_master_key_id"]) == ("key", region)
    [policy] = by_id(synth, region, "aws_sns_topic_policy").values()
    assert policy["arn"] == f"${{aws_sns_topic.{topic_id}.arn}}"
    statements = policy_statements(synth, stack_of(region), policy["policy"])
    topic_arn = f"${{aws_sns_topic.{topic_id}.arn}}"
    assert_denies_insecure_transport(statements, topic_arn)
    allows = {s["principals"][0]["identifiers"][0]: s for s in statements if s["effect"] == "Allow"}
    root = "arn:${data.aws_partition.partition.partition}:iam::${data.aws_caller_identity.account.account_id}:root"
    # No EventBridge rule publishes to the topic (and the key policy would refuse it): no statement for it.
    assert set(allows) == {"cloudwatch.amazonaws.com", root}
    for service in ("cloudwatch.amazonaws.com",):
        assert allows[service]["actions"] == ["sns:Publish"]
        assert allows[service]["resources"] == [topic_arn]
        conditions = {c["variable"]: c for c in allows[service]["condition"]}
        assert conditions["aws:SourceAccount"]["values"] == ["${data.aws_caller_identity.account.account_id}"]
    assert all("*" not in action for action in allows[root]["actions"])


# ------------------------------------------------------------------ event source mapping


@per_region
def test_processing_reads_the_queue_and_reports_batch_item_failures(synth: Synthesized, region: str) -> None:
    [mapping] = by_id(synth, region, "aws_lambda_event_source_mapping").values()
    stack = stack_of(region)
    assert symbol(synth, stack, mapping["event_source_arn"]) == ("sqs_queue", f"payments-processing-{SUFFIX}", "arn")
    _, type_, function, _ = resolve(synth, stack, mapping["function_name"])
    assert (type_, function["function_name"]) == ("aws_lambda_function", f"payment-processing-{SUFFIX}")
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert mapping["batch_size"] == CONFIG.sqs_batch_size
    assert mapping["maximum_batching_window_in_seconds"] == CONFIG.sqs_max_batching_window_seconds
    maximum = mapping["scaling_config"]["maximum_concurrency"]
    assert 2 <= maximum <= function["reserved_concurrent_executions"]


@per_region
def test_queue_consumer_starts_only_where_the_first_lease_holder_runs_and_apply_leaves_it_alone(
    synth: Synthesized, region: str
) -> None:
    """The orchestrator enables it in the active region and disables it elsewhere (lease protocol)."""
    [mapping] = by_id(synth, region, "aws_lambda_event_source_mapping").values()
    assert mapping["enabled"] is (region == CONFIG.primary_region)
    assert mapping["lifecycle"]["ignore_changes"] == ["enabled"]


# ------------------------------------------------------------------ IAM


def expected_grants(region: str) -> dict[str, set[tuple[str, tuple[str, ...]]]]:
    """The least privilege of each function: (action, resource) pairs, nothing else."""

    def table(name: str) -> tuple[str, ...]:
        return ("table", f"payments-{name}-{SUFFIX}", region)

    def on(actions: list[str], target: tuple[str, ...]) -> set[tuple[str, tuple[str, ...]]]:
        return {(f"{action}", target) for action in actions}

    queue = ("sqs_queue", f"payments-processing-{SUFFIX}", "arn")
    topic = ("sns_topic", f"payments-alerts-{SUFFIX}", "arn")
    mappings = [f"arn:aws:lambda:{r}:ACCOUNT:event-source-mapping:*" for r in REGIONS]
    peer_control = [f"arn:aws:dynamodb:{r}:ACCOUNT:table/payments-control-{SUFFIX}" for r in REGIONS if r != region]
    # The peer replica of the multi-region data key: same key id, the peer's region.
    peer_keys = [f"arn:aws:kms:{r}:ACCOUNT:key/KEY_ID" for r in REGIONS if r != region]
    own = {
        # No GetItem on idempotency or transactions: a refused conditional put returns the existing item.
        "payment_validation": on(
            ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], table("idempotency")
        )
        | on(["dynamodb:PutItem"], table("transactions"))
        | on(["dynamodb:GetItem"], table("control"))
        | on(["sqs:SendMessage"], queue),
        "payment_processing": on(["dynamodb:GetItem", "dynamodb:UpdateItem"], table("transactions"))
        | on(["dynamodb:GetItem", "dynamodb:ConditionCheckItem"], table("control"))
        | on(
            [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:SendMessage",
            ],
            queue,
        ),
        "payment_status": on(["dynamodb:GetItem"], table("transactions")),
        "health": on(["dynamodb:GetItem"], table("control")),
        "failover_orchestrator": on(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], table("control"))
        # DynamoDB needs only Decrypt of the table key in the caller's context (no GenerateDataKey).
        | {("kms:Decrypt", ("arn", arn)) for arn in peer_keys}
        | {
            (a, ("arn", arn))
            for arn in peer_control
            for a in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
        }
        # The lease's third copy: exactly these three actions on the witness table, and its own key.
        | on(
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            ("table", f"payments-lease-witness-{SUFFIX}", CONFIG.witness_region),
        )
        | on(["kms:Decrypt"], ("key", CONFIG.witness_region))
        | on(["dynamodb:Query"], ("index", f"payments-transactions-{SUFFIX}", region, "pending-index"))
        | on(["sqs:SendMessage"], queue)
        | on(["sns:Publish"], topic)
        | on(["lambda:ListEventSourceMappings"], ("*",))
        | {("lambda:UpdateEventSourceMapping", ("arn", arn)) for arn in mappings},
        "authorizer": on(["dynamodb:GetItem"], table("merchants")),
    }
    eni = [
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    ]
    result = {}
    for key in KEYS:
        common = (
            on(
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                ("log-streams", f"/aws/lambda/{key.replace('_', '-')}-{SUFFIX}"),
            )
            | on(["kms:Decrypt"], ("key", region))
            | on(["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ("*",))
        )
        if key in WRITERS:
            common |= on(["kms:GenerateDataKey"], ("key", region))
        if key in ASYNC:
            common |= on(["sqs:SendMessage"], ("sqs_queue", f"payments-async-dlq-{SUFFIX}", "arn"))
        if key in IN_VPC:
            common |= on(eni, ("*",))
        result[key] = own[key] | common
    return result


#: Actions AWS accepts only with resource "*" (X-Ray, ENI management, listing mappings).
STAR_RESOURCE_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
    "lambda:ListEventSourceMappings",
}


@per_region
def test_each_role_grants_exactly_the_expected_actions_on_the_expected_resources(
    synth: Synthesized, region: str
) -> None:
    expected = expected_grants(region)
    for key, statements in role_policies(synth, region).items():
        actual = grants(synth, stack_of(region), statements)
        assert actual == expected[key], f"{key}: extra {actual - expected[key]}, missing {expected[key] - actual}"


@per_region
def test_orchestrator_may_change_only_the_processing_functions_event_source_mappings(
    synth: Synthesized, region: str
) -> None:
    statements = role_policies(synth, region)["failover_orchestrator"]
    [mapping] = [s for s in statements if "lambda:UpdateEventSourceMapping" in s["actions"]]
    processing = {f"arn:aws:lambda:{r}:ACCOUNT:function:payment-processing-{SUFFIX}" for r in REGIONS}
    [condition] = mapping["condition"]
    assert (condition["test"], condition["variable"]) == ("ArnLike", "lambda:FunctionArn")
    assert {symbol(synth, stack_of(region), value)[1] for value in condition["values"]} == processing


@per_region
def test_no_wildcard_action_and_star_resource_only_where_aws_offers_nothing_narrower(
    synth: Synthesized, region: str
) -> None:
    stack = stack_of(region)
    documents = synth.stacks[stack]["data"]["aws_iam_policy_document"]
    for doc_id, document in documents.items():
        for item in document["statement"]:
            assert "*" not in item["actions"], f"{doc_id}: '*' action"
            if item["effect"] == "Allow":
                assert not any("*" in action for action in item["actions"]), f"{doc_id}: wildcard action"
    for key, statements in role_policies(synth, region).items():
        for item in statements:
            if "*" in item["resources"]:
                assert item["resources"] == ["*"]
                assert set(item["actions"]) <= STAR_RESOURCE_ACTIONS, f"{key}: {item['actions']} on '*'"


@per_region
def test_roles_are_assumable_only_by_lambda_of_this_account_and_carry_no_managed_policy(
    synth: Synthesized, region: str
) -> None:
    stack = stack_of(region)
    assert "aws_iam_role_policy_attachment" not in synth.stacks[stack]["resource"]
    assert "aws_iam_policy" not in synth.stacks[stack]["resource"]
    for role_id, role in by_id(synth, region, "aws_iam_role").items():
        assert "managed_policy_arns" not in role, role_id
        [trust] = policy_statements(synth, stack, role["assume_role_policy"])
        assert trust["actions"] == ["sts:AssumeRole"]
        assert trust["principals"] == [{"type": "Service", "identifiers": ["lambda.amazonaws.com"]}]
        assert trust["condition"] == [
            {
                "test": "StringEquals",
                "variable": "aws:SourceAccount",
                "values": ["${data.aws_caller_identity.account.account_id}"],
            }
        ]


@per_region
def test_functions_are_created_after_their_role_policy(synth: Synthesized, region: str) -> None:
    policies = by_id(synth, region, "aws_iam_role_policy")
    for key, body in functions(synth, region).items():
        attached = [
            f"aws_iam_role_policy.{i}"
            for i, p in policies.items()
            if p["role"] in body["role"].replace(".arn}", ".id}")
        ]
        assert set(attached) <= set(body["depends_on"]), key
        assert attached, key


# ------------------------------------------------------------------ outputs, validity


@per_region
def test_outputs_expose_functions_queues_and_topic(synth: Synthesized, region: str) -> None:
    outputs = synth.stacks[stack_of(region)]["output"]
    for key in KEYS:
        assert f"{key}_function_name" in outputs
        assert f"{key}_function_arn" in outputs
    assert {"processing_queue_url", "processing_dlq_url", "async_dlq_url", "alert_topic_arn"} <= set(outputs)


@per_region
def test_terraform_validate_accepts_the_stack(validated: dict[str, dict], region: str) -> None:
    result = validated[stack_of(region)]
    assert result["valid"], result.get("diagnostics")


# ------------------------------------------------------------------ config rules of this layer


@pytest.mark.parametrize(
    ("env", "key", "rule"),
    [
        ({"LAMBDA_MEMORY_MB": "64"}, "LAMBDA_MEMORY_MB", "between 128 and 10240"),
        ({"LAMBDA_TIMEOUT_SECONDS": "29"}, "LAMBDA_TIMEOUT_SECONDS", "29 s"),
        ({"PROCESSING_TIMEOUT_SECONDS": "901"}, "PROCESSING_TIMEOUT_SECONDS", "between 1 and 900"),
        ({"SQS_MAX_RECEIVE_COUNT": "0"}, "SQS_MAX_RECEIVE_COUNT", "between 1 and 1000"),
        ({"SQS_BATCH_SIZE": "50"}, "SQS_BATCH_SIZE", "sqsMaxBatchingWindowSeconds >= 1"),
        ({"SQS_MAX_BATCHING_WINDOW_SECONDS": "301"}, "SQS_MAX_BATCHING_WINDOW_SECONDS", "between 0 and 300"),
        ({"HEARTBEAT_STALE_SECONDS": "30"}, "HEARTBEAT_STALE_SECONDS", "between 90 and 3600"),
    ],
)
def test_compute_settings_reject_values_aws_would_refuse(env: dict[str, str], key: str, rule: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(context=read_context(environ={}), environ=env)
    assert caught.value.key == key
    assert rule in caught.value.rule
