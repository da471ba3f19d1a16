"""The topology is read from the synth: functions (generically), tables, queues, edge, schedules."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.synthesized import Synthesized
from tools.drill import synth as drill_synth
from tools.drill.synth import Topology, UnresolvedReferenceError

REPO = Path(__file__).resolve().parents[3]


def test_every_function_of_both_regions_with_its_exact_environment(topology: Topology, synth: Synthesized) -> None:
    raw = {
        (synth.provider_region(r.stack, r), r.body["function_name"]): r for r in synth.resources("aws_lambda_function")
    }
    assert len(topology.functions) == len(raw)
    for region in topology.regions:
        keys = {key for r, key in topology.functions if r == region}
        assert keys >= {"payment_validation", "payment_processing", "payment_status", "health", "failover_orchestrator"}
    for (region, _key), spec in topology.functions.items():
        body = raw[(region, spec.name)].body
        variables = body["environment"]["variables"]
        assert set(spec.environment) == set(variables)
        assert not any("${" in value for value in spec.environment.values()), spec.environment
        literal = {k: v for k, v in variables.items() if "${" not in v}
        assert {k: spec.environment[k] for k in literal} == literal
        assert (spec.handler, spec.timeout_s, spec.reserved_concurrency) == (
            body["handler"],
            body["timeout"],
            body["reserved_concurrent_executions"],
        )


def test_references_resolve_to_the_regions_own_resources(topology: Topology) -> None:
    for region in topology.regions:
        validation = topology.function(region, "payment_validation")
        assert validation.environment["PROCESSING_QUEUE_URL"] == (
            f"https://sqs.{region}.amazonaws.com/123456789012/payments-processing-dev"
        )
        orchestrator = topology.function(region, "failover_orchestrator")
        assert orchestrator.environment["ALERT_TOPIC_ARN"] == topology.topics[(region, "payments-alerts-dev")]


def test_a_new_function_shows_up_without_harness_changes(synth: Synthesized, tmp_path: Path) -> None:
    copy = tmp_path / "cdktf.out"
    shutil.copytree(synth.outdir, copy)
    stack = copy / "stacks" / "compute-us-east-2" / "cdk.tf.json"
    body = json.loads(stack.read_text())
    functions = body["resource"]["aws_lambda_function"]
    authorizer = json.loads(json.dumps(functions["health-function"]))
    authorizer["function_name"] = "authorizer-dev"
    authorizer["filename"] = authorizer["filename"].replace("health-code", "authorizer-code")
    functions["authorizer-function"] = authorizer
    stack.write_text(json.dumps(body))
    spec = drill_synth.load(copy).function("us-east-2", "authorizer")
    assert (spec.name, spec.environment["CONTROL_TABLE"]) == ("authorizer-dev", "payments-control-dev")


def test_tables_have_the_synthesized_keys_indexes_ttl_and_replicas(topology: Topology) -> None:
    transactions = topology.tables["payments-transactions-dev"]
    assert transactions.hash_key == "payment_id"
    assert [(i["name"], i["hash_key"], i["range_key"]) for i in transactions.indexes] == [
        ("merchant-created-index", "merchant_id", "created_at"),
        ("pending-index", "pending_shard", "created_at"),
    ]
    assert {name: t.ttl_attribute for name, t in topology.tables.items()} == {
        "payments-transactions-dev": "expires_at",
        "payments-merchants-dev": "expires_at",
        "payments-idempotency-dev": "expiration",
        "payments-control-dev": "expires_at",
        "payments-lease-witness-dev": None,
    }
    witness = "payments-lease-witness-dev"
    assert topology.tables[witness].regions == ("us-west-2",), "a plain table in the witness region"
    assert all(set(t.regions) == set(topology.regions) for n, t in topology.tables.items() if n != witness)


def test_queues_and_mappings_follow_the_config(topology: Topology) -> None:
    context = json.loads((REPO / "cdktf.json").read_text())["context"]
    for region in topology.regions:
        queue = topology.queues[(region, "payments-processing-dev")]
        assert (queue.dlq_name, queue.max_receive_count) == (
            "payments-processing-dlq-dev",
            context["sqsMaxReceiveCount"],
        )
        assert queue.visibility_timeout_s >= 6 * context["processingTimeoutSeconds"]
    assert {
        (m.region, m.function, m.batch_size, m.enabled, m.report_batch_item_failures) for m in topology.mappings
    } == {  # a standby's mapping is deployed disabled; the orchestrator enables it (#13)
        (region, "payment_processing", context["sqsBatchSize"], region == topology.primary, True)
        for region in topology.regions
    }


def test_api_routes_use_the_request_schema_file_and_the_stage_throttling(topology: Topology) -> None:
    context = json.loads((REPO / "cdktf.json").read_text())["context"]
    schema = json.loads((REPO / "layers" / "schemas" / "payment_request.json").read_text())
    for region, api in topology.apis.items():
        routes = {(r.method, r.path): r for r in api.routes}
        assert {key: r.function for key, r in routes.items()} == {
            ("POST", "/payments"): "payment_validation",
            ("GET", "/payments/{id}"): "payment_status",
            ("GET", "/health"): "health",
        }
        create = routes[("POST", "/payments")]
        assert create.required_headers == ("Idempotency-Key",)
        assert create.body_schema == schema
        assert (api.rate_limit, api.burst_limit) == (
            context["apiThrottlingRateLimit"],
            context["apiThrottlingBurstLimit"],
        )
        assert api.regional_host == f"api-{region}.dev.payments.example.com"


def test_route53_checks_failover_pair_schedules_and_subscriptions(topology: Topology) -> None:
    context = json.loads((REPO / "cdktf.json").read_text())["context"]
    https = [c for c in topology.health_checks.values() if c.type == "HTTPS"]
    assert {(c.region, c.resource_path, c.failure_threshold) for c in https} == {
        (region, "/health", context["healthCheckFailureThreshold"]) for region in topology.regions
    }
    assert sorted((r.role, r.region) for r in topology.failover_records) == [
        ("PRIMARY", topology.primary),
        ("SECONDARY", topology.secondary),
    ]
    for record in topology.failover_records:
        assert topology.health_checks[record.health_check].type == "CALCULATED"
    assert {(s.region, s.every_s, s.function) for s in topology.schedules} == {
        (region, context["probeIntervalMinutes"] * 60, "failover_orchestrator") for region in topology.regions
    }
    assert {(s.region, s.function, tuple(s.filter_policy["AlarmName"])) for s in topology.subscriptions} == {
        (region, "failover_orchestrator", (f"{region}-region-cannot-take-payments-dev",)) for region in topology.regions
    }


def test_an_unresolvable_reference_fails_loudly(synth: Synthesized) -> None:
    stacks = drill_synth.Stacks(synth.outdir)
    with pytest.raises(UnresolvedReferenceError, match=r"no resource aws_sqs_queue\.missing"):
        stacks.resolve("compute-us-east-1", "${aws_sqs_queue.missing.url}")
