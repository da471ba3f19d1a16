"""Observability layer, in every region: alarms, composite health, DNS coupling, orchestrator wiring, dashboard.

References in the synthesized JSON (``${...}``, also across stacks through remote state) are
resolved to the literal they name when the JSON holds one (an alarm's name, a function's name),
else to ``<stack:type.name.attribute>``; so a test compares what AWS would see, not how cdktf
spelled it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from layers.base import stack_name
from layers.config import ConfigError, load_config
from layers.observability import (
    COMPOSITE_ALARM_MARKER,
    DYNAMODB_OPERATIONS,
    ORCHESTRATOR_SERVICE,
    ROUTE53_METRICS_REGION,
)
from tests.conftest import synthesize
from tests.synthesized import Resource, Synthesized

CONFIG = load_config(environ={})
REGIONS = CONFIG.regions
SUFFIX = CONFIG.environment_suffix
#: docs/design.md "Stack attributes": ComputeStack.functions keys.
FUNCTIONS = {
    "payment_validation",
    "payment_processing",
    "payment_status",
    "health",
    "failover_orchestrator",
    "authorizer",
}
#: The seed's replication budget (issue 6): 1 second.
REPLICATION_BUDGET_MS = 1000

_REF = re.compile(r"\$\{([^{}]+)\}")
_REMOTE = re.compile(r"^data\.terraform_remote_state\.(?P<source>[\w-]+)\.outputs\.(?P<output>[\w-]+)$")
_RESOURCE = re.compile(r"^(?P<type>aws_\w+)\.(?P<name>[\w-]+)\.(?P<attribute>\w+)$")
_ALARM_IN_RULE = re.compile(r'ALARM\("([^"]+)"\)')


# --- reading the synth -------------------------------------------------------------------------


def resolve(app: Synthesized, stack: str, value: Any) -> Any:
    """``value`` with every reference replaced by the literal it names, or ``<stack:type.name.attr>``."""
    if isinstance(value, list):
        return [resolve(app, stack, item) for item in value]
    if isinstance(value, dict):
        return {key: resolve(app, stack, item) for key, item in value.items()}
    if not isinstance(value, str):
        return value
    return _REF.sub(lambda match: _resolve_expression(app, stack, match.group(1)), value)


def _resolve_expression(app: Synthesized, stack: str, expression: str) -> str:
    remote = _REMOTE.match(expression)
    if remote:
        config = app.stacks[stack]["data"]["terraform_remote_state"][remote["source"]]["config"]
        origin = config["key"].rsplit("/", 1)[1].removesuffix(".tfstate")
        return str(resolve(app, origin, app.stacks[origin]["output"][remote["output"]]["value"]))
    resource = _RESOURCE.match(expression)
    if resource:
        body = app.stacks[stack]["resource"][resource["type"]][resource["name"]]
        literal = body.get(resource["attribute"])
        if isinstance(literal, str):
            return str(resolve(app, stack, literal))
        return f"<{stack}:{expression}>"
    return "${" + expression + "}"


def observability(region: str) -> str:
    return stack_name("observability", region)


def alarms_of(app: Synthesized, region: str) -> list[Resource]:
    """Metric alarms of ``region``'s observability and edge stacks (the edge owns the DNS-steering ones)."""
    return [
        alarm
        for stack in (observability(region), stack_name("edge", region))
        for alarm in app.resources("aws_cloudwatch_metric_alarm", stack=stack)
    ]


def resolved(app: Synthesized, resource: Resource, attribute: str) -> Any:
    return resolve(app, resource.stack, resource.body.get(attribute))


def topic_of(app: Synthesized, region: str) -> str:
    """The resolved ARN of ``region``'s alert topic (compute layer)."""
    (topic,) = app.resources("aws_sns_topic", stack=stack_name("compute", region))
    return f"<{topic.stack}:aws_sns_topic.{topic.name}.arn>"


def matching(app: Synthesized, region: str, namespace: str, metric: str, **dimensions: str) -> Iterator[Resource]:
    """Alarms of ``region`` on ``namespace``/``metric`` whose resolved dimensions include ``dimensions``."""
    for alarm in alarms_of(app, region):
        body = alarm.body
        if body.get("namespace") == namespace and body.get("metric_name") == metric:
            actual = resolved(app, alarm, "dimensions") or {}
            if all(actual.get(key) == value for key, value in dimensions.items()):
                yield alarm


def one(alarms: Iterator[Resource], what: str) -> Resource:
    found = list(alarms)
    assert len(found) == 1, f"{what}: {[a.address for a in found]}"
    return found[0]


def assert_notifies(app: Synthesized, alarm: Resource, topic: str) -> None:
    """``ALARM`` and ``OK`` both notify ``topic``, and missing data is a deliberate choice."""
    assert resolved(app, alarm, "alarm_actions") == [topic], alarm.address
    assert resolved(app, alarm, "ok_actions") == [topic], alarm.address
    assert alarm.body.get("treat_missing_data") in {"notBreaching", "breaching", "ignore", "missing"}, alarm.address


def names_of(app: Synthesized, stack: str, type_: str, attribute: str) -> list[str]:
    return [resolved(app, r, attribute) for r in app.resources(type_, stack=stack)]


def composite(app: Synthesized, region: str) -> Resource:
    (alarm,) = app.resources("aws_cloudwatch_composite_alarm", stack=observability(region))
    return alarm


def composite_members(app: Synthesized, region: str) -> list[str]:
    return _ALARM_IN_RULE.findall(resolved(app, composite(app, region), "alarm_rule"))


def region_of(app: Synthesized, resource: Resource) -> str:
    return app.provider_region(resource.stack, resource)


# --- alarms ------------------------------------------------------------------------------------


@pytest.mark.parametrize("region", REGIONS)
def test_every_function_has_error_and_throttle_alarms_to_the_regions_topic(synth: Synthesized, region: str) -> None:
    compute = stack_name("compute", region)
    functions = names_of(synth, compute, "aws_lambda_function", "function_name")
    assert len(functions) == len(FUNCTIONS)
    for function in functions:
        for metric in ("Errors", "Throttles"):
            alarm = one(matching(synth, region, "AWS/Lambda", metric, FunctionName=function), f"{function} {metric}")
            assert_notifies(synth, alarm, topic_of(synth, region))
            assert region_of(synth, alarm) == region


@pytest.mark.parametrize("region", REGIONS)
def test_api_has_p99_latency_and_5xx_rate_alarms_to_the_regions_topic(synth: Synthesized, region: str) -> None:
    (api,) = synth.resources("aws_api_gateway_rest_api", stack=stack_name("edge", region))
    (stage,) = synth.resources("aws_api_gateway_stage", stack=stack_name("edge", region))
    dims = {"ApiName": api.body["name"], "Stage": resolved(synth, stage, "stage_name")}
    latency = [a for a in matching(synth, region, "AWS/ApiGateway", "Latency", **dims)]
    p99 = one((a for a in latency if a.body.get("extended_statistic") == "p99"), "p99 latency")
    rates = [
        one(
            (
                a
                for a in matching(synth, region, "AWS/ApiGateway", "5XXError", **dims, Resource=path, Method=method)
                if a.body["statistic"] == "Average"
            ),
            f"5xx rate of {method} {path}",
        )
        for method, path in (("POST", "/payments"), ("GET", "/payments/{id}"))
    ]
    for alarm in (p99, *rates):
        assert_notifies(synth, alarm, topic_of(synth, region))


@pytest.mark.parametrize("region", REGIONS)
def test_every_table_and_index_has_throttle_alarms(synth: Synthesized, region: str) -> None:
    primary_data = stack_name("data", CONFIG.primary_region)
    tables = list(synth.resources("aws_dynamodb_table", stack=primary_data))
    assert len(tables) == 4
    topic = topic_of(synth, region)
    for table in tables:
        name = table.body["name"]
        targets = [{"TableName": name}] + [
            {"TableName": name, "GlobalSecondaryIndexName": index["name"]}
            for index in table.body.get("global_secondary_index", [])
        ]
        for dims in targets:
            for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
                exact = (
                    a
                    for a in matching(synth, region, "AWS/DynamoDB", metric, **dims)
                    if set(resolved(synth, a, "dimensions")) == set(dims)
                )
                assert_notifies(synth, one(exact, f"{dims} {metric}"), topic)
        throttled = [
            alarm
            for alarm in alarms_of(synth, region)
            if {
                (q["metric"]["metric_name"], resolve(synth, alarm.stack, q["metric"]["dimensions"]["TableName"]))
                for q in alarm.body.get("metric_query", [])
                if "metric" in q
            }
            == {("ThrottledRequests", name)}
        ]
        assert len(throttled) == 1, f"{name}: ThrottledRequests alarm"
        operations = {
            q["metric"]["dimensions"]["Operation"] for q in throttled[0].body["metric_query"] if "metric" in q
        }
        assert operations == set(DYNAMODB_OPERATIONS)
        assert_notifies(synth, throttled[0], topic)
    assert {"PutItem", "GetItem", "UpdateItem", "TransactWriteItems"} <= set(DYNAMODB_OPERATIONS)


@pytest.mark.parametrize("region", REGIONS)
def test_replication_latency_towards_the_other_region_alarms_at_one_second(synth: Synthesized, region: str) -> None:
    other = next(r for r in REGIONS if r != region)
    tables = [t.body["name"] for t in synth.resources("aws_dynamodb_table", stack=stack_name("data", REGIONS[0]))]
    assert tables
    for table in tables:
        alarm = one(
            matching(synth, region, "AWS/DynamoDB", "ReplicationLatency", TableName=table, ReceivingRegion=other),
            f"{table} -> {other}",
        )
        assert alarm.body["threshold"] == REPLICATION_BUDGET_MS
        assert alarm.body["comparison_operator"] == "GreaterThanThreshold"
        # DynamoDB aggregates ReplicationLatency per 5 minutes: one period's Maximum catches a spike
        # above the budget within about 10 minutes; an Average over 3 periods hid it for 15 or more.
        assert (alarm.body["statistic"], alarm.body["period"]) == ("Maximum", 300)
        assert alarm.body["evaluation_periods"] == alarm.body["datapoints_to_alarm"] == 1
        assert alarm.body["period"] * alarm.body["evaluation_periods"] <= 600
        assert_notifies(synth, alarm, topic_of(synth, region))


def probe_alarms(synth: Synthesized, region: str, metric: str) -> Iterator[Resource]:
    """Alarms on a metric the orchestrator's probe publishes in ``region`` (Powertools dimensions)."""
    for alarm in matching(synth, region, f"PaymentsDR/{SUFFIX}", metric, service="failover-orchestrator"):
        if (resolved(synth, alarm, "dimensions") or {}).get("region") == region:
            yield alarm


@pytest.mark.parametrize("region", REGIONS)
def test_the_probe_canary_alarms_at_the_budget_within_minutes_on_this_regions_topic(
    synth: Synthesized, region: str
) -> None:
    alarm = one(probe_alarms(synth, region, "ReplicationCanaryLagMs"), "canary lag")
    assert (alarm.body["statistic"], alarm.body["period"], alarm.body["threshold"]) == (
        "Maximum",
        60,
        REPLICATION_BUDGET_MS,
    )
    assert alarm.body["comparison_operator"] == "GreaterThanThreshold"
    assert alarm.body["period"] * alarm.body["evaluation_periods"] <= 300
    # A silent canary is a broken watch, not a healthy replication.
    assert alarm.body["treat_missing_data"] == "breaching"
    assert_notifies(synth, alarm, topic_of(synth, region))


@pytest.mark.parametrize("region", REGIONS)
def test_each_region_alarms_on_its_own_health_in_its_own_region(synth: Synthesized, region: str) -> None:
    """Route 53 metrics exist only in us-east-1: the probe's own check gives us-east-2 an alarm of its own."""
    alarm = one(probe_alarms(synth, region, "RegionHealthy"), "own health")
    assert alarm.stack == observability(region)
    assert "provider" not in alarm.body, "created in the region itself, not through the us-east-1 provider"
    assert (alarm.body["statistic"], alarm.body["comparison_operator"], alarm.body["threshold"]) == (
        "Minimum",
        "LessThanThreshold",
        1,
    )
    assert alarm.body["treat_missing_data"] == "breaching"
    assert_notifies(synth, alarm, topic_of(synth, region))


@pytest.mark.parametrize("region", REGIONS)
def test_every_dlq_alarms_on_any_message_and_every_queue_on_message_age(synth: Synthesized, region: str) -> None:
    compute = stack_name("compute", region)
    queues = {
        f"<{q.stack}:aws_sqs_queue.{q.name}.arn>": q.body["name"]
        for q in synth.resources("aws_sqs_queue", stack=compute)
    }
    # A dead-letter queue: the target of a queue's redrive policy, or of a function's dead-letter config.
    dead = {
        json.loads(q.body["redrive_policy"])["deadLetterTargetArn"]
        for q in synth.resources("aws_sqs_queue", stack=compute)
        if q.body.get("redrive_policy")
    }
    dead |= {
        f.body["dead_letter_config"]["target_arn"]
        for f in synth.resources("aws_lambda_function", stack=compute)
        if "dead_letter_config" in f.body
    }
    dead_names = {queues[resolve(synth, compute, arn)] for arn in dead}
    assert len(dead_names) >= 2
    topic = topic_of(synth, region)
    for name in dead_names:
        alarm = one(
            matching(synth, region, "AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName=name), f"{name} depth"
        )
        assert alarm.body["threshold"] == 0
        assert alarm.body["comparison_operator"] == "GreaterThanThreshold"
        assert_notifies(synth, alarm, topic)
    for name in queues.values():
        alarm = one(matching(synth, region, "AWS/SQS", "ApproximateAgeOfOldestMessage", QueueName=name), f"{name} age")
        assert_notifies(synth, alarm, topic)


@pytest.mark.parametrize("region", REGIONS)
def test_pending_payments_over_age_alarm_on_what_the_orchestrators_sweeper_publishes(
    synth: Synthesized, region: str
) -> None:
    (orchestrator,) = [
        f
        for f in synth.resources("aws_lambda_function", stack=stack_name("compute", region))
        if f.body["function_name"].startswith("failover-orchestrator-")
    ]
    variables = orchestrator.body["environment"]["variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == ORCHESTRATOR_SERVICE
    namespace = variables["POWERTOOLS_METRICS_NAMESPACE"]
    found = matching(synth, region, namespace, "PendingPaymentsOverAge", service=ORCHESTRATOR_SERVICE)
    alarm = one(found, "pending payments")
    assert resolved(synth, alarm, "dimensions") == {"region": region, "service": ORCHESTRATOR_SERVICE}
    assert (alarm.body["threshold"], alarm.body["comparison_operator"]) == (0, "GreaterThanThreshold")
    assert_notifies(synth, alarm, topic_of(synth, region))


@pytest.mark.parametrize("region", REGIONS)
def test_health_check_alarms_live_in_us_east_1_and_notify_a_topic_there(synth: Synthesized, region: str) -> None:
    edge = stack_name("edge", region)
    checks = [
        c for c in synth.resources("aws_route53_health_check", stack=edge) if c.body["type"] != "CLOUDWATCH_METRIC"
    ]
    assert {c.body["type"] for c in checks} == {"HTTPS", "CALCULATED"}
    for check in checks:
        check_id = f"<{edge}:aws_route53_health_check.{check.name}.id>"
        alarm = one(matching(synth, region, "AWS/Route53", "HealthCheckStatus", HealthCheckId=check_id), check.name)
        assert alarm.stack == observability(region)
        assert region_of(synth, alarm) == ROUTE53_METRICS_REGION
        # With us-east-1 in the pair, its alert topic; an SNS action must be in the alarm's region.
        assert_notifies(synth, alarm, topic_of(synth, ROUTE53_METRICS_REGION))


# --- composite alarm and DNS ----------------------------------------------------------------


@pytest.mark.parametrize("region", REGIONS)
def test_composite_alarm_uses_only_existing_alarms_of_its_region(synth: Synthesized, region: str) -> None:
    alarm = composite(synth, region)
    assert COMPOSITE_ALARM_MARKER in alarm.body["alarm_name"]
    assert resolved(synth, alarm, "alarm_actions") == [topic_of(synth, region)]
    assert resolved(synth, alarm, "ok_actions") == [topic_of(synth, region)]
    existing = {
        resolved(synth, a, "alarm_name")
        for a in synth.resources("aws_cloudwatch_metric_alarm")
        if region_of(synth, a) == region
    }
    members = composite_members(synth, region)
    assert len(members) >= 4
    assert set(members) <= existing, set(members) - existing


@pytest.mark.parametrize("region", REGIONS)
def test_composite_never_watches_a_route53_check_that_follows_the_lease(synth: Synthesized, region: str) -> None:
    """A standby primary's ``/health`` is 503 by design: as a member it would block every failback."""
    members = set(composite_members(synth, region))
    route53 = {
        resolved(synth, a, "alarm_name")
        for a in synth.resources("aws_cloudwatch_metric_alarm")
        if a.body.get("namespace") == "AWS/Route53"
    }
    assert route53, "the Route 53 health-check alarms exist (for people)"
    assert not members & route53, members & route53


@pytest.mark.parametrize("region", REGIONS)
def test_composite_alarm_covers_validation_failures_and_write_throttles(synth: Synthesized, region: str) -> None:
    members = set(composite_members(synth, region))
    validation = resolved(
        synth,
        next(
            f
            for f in synth.resources("aws_lambda_function", stack=stack_name("compute", region))
            if f.name.startswith("payment_validation")
        ),
        "function_name",
    )
    for metric in ("Errors", "Throttles"):
        alarm = one(matching(synth, region, "AWS/Lambda", metric, FunctionName=validation), metric)
        assert resolved(synth, alarm, "alarm_name") in members
    transactions = f"payments-transactions-{CONFIG.environment_suffix}"
    writes = one(
        (
            a
            for a in matching(synth, region, "AWS/DynamoDB", "WriteThrottleEvents", TableName=transactions)
            if "GlobalSecondaryIndexName" not in a.body["dimensions"]
        ),
        "transactions write throttles",
    )
    assert resolved(synth, writes, "alarm_name") in members


@pytest.mark.parametrize("region", REGIONS)
def test_composite_counts_only_the_payment_routes_5xx_and_latency_from_the_api(synth: Synthesized, region: str) -> None:
    members = set(composite_members(synth, region))
    api_members = [a for a in alarms_of(synth, region) if a.body.get("namespace") == "AWS/ApiGateway"]
    api_members = [a for a in api_members if resolved(synth, a, "alarm_name") in members]
    found = {
        (a.body["metric_name"], a.body["dimensions"].get("Method"), a.body["dimensions"].get("Resource"))
        for a in api_members
    }
    assert found == {
        (metric, method, path)
        for metric in ("5XXError", "Latency")
        for method, path in (("POST", "/payments"), ("GET", "/payments/{id}"))
    }
    for alarm in api_members:
        assert alarm.body["statistic"] == "Average"
    # Rejections of bad input are counted for people, never for the failover path.
    assert not any(
        "PaymentRejected" in str(a.body)
        for a in alarms_of(synth, region)
        if resolved(synth, a, "alarm_name") in members
    )


def test_primary_failover_record_goes_unhealthy_on_the_alarms_the_composite_uses(synth: Synthesized) -> None:
    primary = CONFIG.primary_region
    edge = stack_name("edge", primary)
    (record,) = [
        r
        for r in synth.resources("aws_route53_record", stack=edge)
        if r.body.get("failover_routing_policy", {}).get("type") == "PRIMARY"
    ]
    checks = {
        f"<{edge}:aws_route53_health_check.{c.name}.id>": c
        for c in synth.resources("aws_route53_health_check", stack=edge)
    }
    calculated = checks[resolved(synth, record, "health_check_id")]
    assert calculated.body["type"] == "CALCULATED"
    children = [checks[child] for child in resolved(synth, calculated, "child_healthchecks")]
    # Healthy only while every child is: one alarm in ALARM moves DNS.
    assert calculated.body["child_health_threshold"] == len(children)
    alarm_names = {
        resolved(synth, c, "cloudwatch_alarm_name") for c in children if c.body["type"] == "CLOUDWATCH_METRIC"
    }
    assert alarm_names, "the record's health must depend on CloudWatch alarms, not only on /health"
    assert alarm_names <= set(composite_members(synth, primary))
    assert any(c.body["type"] == "HTTPS" for c in children)


# --- failover orchestrator ---------------------------------------------------------------------


@pytest.mark.parametrize("region", REGIONS)
def test_orchestrator_is_subscribed_to_its_regions_composite_alarm(synth: Synthesized, region: str) -> None:
    stack = observability(region)
    orchestrator = f"<{stack_name('compute', region)}:aws_lambda_function.failover_orchestrator-function.arn>"
    (subscription,) = [
        s for s in synth.resources("aws_sns_topic_subscription", stack=stack) if s.body["protocol"] == "lambda"
    ]
    assert resolved(synth, subscription, "endpoint") == orchestrator
    assert resolved(synth, subscription, "topic_arn") == topic_of(synth, region)
    policy = json.loads(subscription.body["filter_policy"])
    assert subscription.body["filter_policy_scope"] == "MessageBody"
    assert policy == {"AlarmName": [composite(synth, region).body["alarm_name"]]}
    (permission,) = [
        p for p in synth.resources("aws_lambda_permission", stack=stack) if p.body["principal"] == "sns.amazonaws.com"
    ]
    assert resolved(synth, permission, "source_arn") == topic_of(synth, region)
    (function,) = [
        f
        for f in synth.resources("aws_lambda_function", stack=stack_name("compute", region))
        if f.name.startswith("failover")
    ]
    assert resolved(synth, permission, "function_name") == function.body["function_name"]


@pytest.mark.parametrize("region", REGIONS)
def test_orchestrator_probes_every_interval(synth: Synthesized, region: str) -> None:
    stack = observability(region)
    (rule,) = synth.resources("aws_cloudwatch_event_rule", stack=stack)
    minutes = CONFIG.probe_interval_minutes
    assert rule.body["schedule_expression"] == f"rate({minutes} minute{'s' if minutes > 1 else ''})"
    (target,) = synth.resources("aws_cloudwatch_event_target", stack=stack)
    assert resolved(synth, target, "rule") == rule.body["name"]
    assert resolved(synth, target, "arn").endswith("failover_orchestrator-function.arn>")
    assert stack_name("compute", region) in resolved(synth, target, "arn")
    (permission,) = [
        p
        for p in synth.resources("aws_lambda_permission", stack=stack)
        if p.body["principal"] == "events.amazonaws.com"
    ]
    assert resolved(synth, permission, "source_arn") == f"<{stack}:aws_cloudwatch_event_rule.{rule.name}.arn>"
    (invoke,) = synth.resources("aws_lambda_function_event_invoke_config", stack=stack)
    assert 0 <= invoke.body["maximum_retry_attempts"] <= 2


# --- dashboard ---------------------------------------------------------------------------------


def metric_rows(widget: dict[str, Any]) -> list[dict[str, Any]]:
    """The options of every metric (or expression) of a metric widget."""
    return [row[-1] if isinstance(row, list) else row for row in widget["properties"]["metrics"]]


@pytest.mark.parametrize("region", REGIONS)
def test_dashboard_is_json_and_every_graph_shows_both_regions(synth: Synthesized, region: str) -> None:
    (dashboard,) = synth.resources("aws_cloudwatch_dashboard", stack=observability(region))
    assert region in dashboard.body["dashboard_name"]
    body = json.loads(dashboard.body["dashboard_body"])
    widgets = [w for w in body["widgets"] if w["type"] == "metric"]
    assert len(widgets) >= 8
    for widget in widgets:
        described = set()
        for options in metric_rows(widget):
            about = options["label"].split(" ", 1)[0]
            assert about in REGIONS, options
            described.add(about)
            # Read from the region it describes, except Route 53 metrics: they exist only in us-east-1.
            row_is_route53 = any(
                isinstance(row, list) and row[0] == "AWS/Route53" and row[-1] is options
                for row in widget["properties"]["metrics"]
            )
            assert options["region"] == (ROUTE53_METRICS_REGION if row_is_route53 else about), options
        assert described == set(REGIONS), widget["properties"]["title"]
    titles = " ".join(w["properties"]["title"].lower() for w in widgets)
    topics = ("latency", "5xx", "errors", "throttles", "duration", "replication", "queue", "health", "lease", "pending")
    for topic in topics:
        assert topic in titles


@pytest.mark.parametrize("region", REGIONS)
def test_dashboard_shows_rejections_by_code_and_the_routes_that_steer_dns(synth: Synthesized, region: str) -> None:
    (dashboard,) = synth.resources("aws_cloudwatch_dashboard", stack=observability(region))
    body = json.loads(dashboard.body["dashboard_body"])
    widgets = {w["properties"]["title"]: w for w in body["widgets"] if w["type"] == "metric"}
    (rejected,) = [w for title, w in widgets.items() if "rejected" in title.lower()]
    expressions = {row["region"]: row["expression"] for row in metric_rows(rejected)}
    assert set(expressions) == set(REGIONS)
    for where, expression in expressions.items():
        # Every code of the rejection metric, per region: a flood of bad input shows here.
        assert ",code,region,service}" in expression
        assert 'MetricName="PaymentRejected"' in expression
        assert f'region="{where}"' in expression
    (api,) = [w for title, w in widgets.items() if "5xx" in title]
    routes = {
        (row[row.index("Method") + 1], row[row.index("Resource") + 1])
        for row in api["properties"]["metrics"]
        if isinstance(row, list) and row[1] == "5XXError"
    }
    assert routes == {("POST", "/payments"), ("GET", "/payments/{id}")}


def test_both_dashboards_show_the_same_graphs(synth: Synthesized) -> None:
    def graphs(region: str) -> list[Any]:
        (dashboard,) = synth.resources("aws_cloudwatch_dashboard", stack=observability(region))
        widgets = json.loads(dashboard.body["dashboard_body"])["widgets"]
        return [resolve(synth, dashboard.stack, w["properties"]) for w in widgets if w["type"] == "metric"]

    first, second = (graphs(region) for region in REGIONS)
    for a, b in zip(first, second, strict=True):
        a.pop("region"), b.pop("region")
    assert first == second


@pytest.mark.parametrize("region", REGIONS)
def test_outputs_name_alarms_composite_topic_and_dashboard(synth: Synthesized, region: str) -> None:
    outputs = synth.stacks[observability(region)]["output"]
    for name in ("alarm_names", "composite_alarm_arn", "alert_topic_arn", "dashboard_name", "dashboard_url"):
        assert name in outputs


# --- a pair without us-east-1, and config ------------------------------------------------------


@pytest.fixture(scope="module")
def synth_eu(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The app in two regions that are not us-east-1, where Route 53 metrics live."""
    return synthesize(
        tmp_path_factory.mktemp("synth-eu") / "cdktf.out",
        primary_region="eu-west-1",
        secondary_region="eu-west-2",
        vpc_cidrs=json.dumps({"eu-west-1": "10.30.0.0/16", "eu-west-2": "10.40.0.0/16"}),
        availability_zone_ids=json.dumps(
            {"eu-west-1": ["euw1-az1", "euw1-az2"], "eu-west-2": ["euw2-az1", "euw2-az2"]}
        ),
    )


@pytest.mark.parametrize("region", ["eu-west-1", "eu-west-2"])
def test_without_us_east_1_health_check_alarms_get_an_encrypted_topic_there(synth_eu: Synthesized, region: str) -> None:
    stack = observability(region)
    (topic,) = synth_eu.resources("aws_sns_topic", stack=stack)
    assert region_of(synth_eu, topic) == ROUTE53_METRICS_REGION
    (key,) = synth_eu.resources("aws_kms_key", stack=stack)
    assert resolved(synth_eu, topic, "kms_master_key_id") == f"<{stack}:aws_kms_key.{key.name}.arn>"
    assert key.body["enable_key_rotation"] is True
    emails = [
        s
        for s in synth_eu.resources("aws_sns_topic_subscription", stack=stack)
        if s.body["protocol"] == "email"
        and resolved(synth_eu, s, "topic_arn") == f"<{stack}:aws_sns_topic.{topic.name}.arn>"
    ]
    assert len(emails) == len(CONFIG.alert_emails)
    route53 = [
        a
        for a in synth_eu.resources("aws_cloudwatch_metric_alarm", stack=stack)
        if a.body.get("namespace") == "AWS/Route53"
    ]
    assert len(route53) == 2
    for alarm in route53:
        assert region_of(synth_eu, alarm) == ROUTE53_METRICS_REGION
        assert_notifies(synth_eu, alarm, f"<{stack}:aws_sns_topic.{topic.name}.arn>")


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"ALARM_PERIOD_SECONDS": "90"}, "ALARM_PERIOD_SECONDS"),
        ({"ALARM_EVALUATION_PERIODS": "0"}, "ALARM_EVALUATION_PERIODS"),
        ({"PROBE_INTERVAL_MINUTES": "2", "HEARTBEAT_STALE_SECONDS": "300"}, "HEARTBEAT_STALE_SECONDS"),
        ({"DLQ_OLDEST_MESSAGE_AGE_SECONDS": "1209600"}, "DLQ_OLDEST_MESSAGE_AGE_SECONDS"),
    ],
)
def test_bad_alarm_settings_are_refused_naming_the_key(environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(environ=environ)
    assert error.value.key == key


def test_longest_probe_with_its_minimum_staleness_and_lease_is_accepted() -> None:
    config = load_config(
        environ={"PROBE_INTERVAL_MINUTES": "7", "HEARTBEAT_STALE_SECONDS": "1260", "LEASE_SECONDS": "850"}
    )
    assert config.heartbeat_stale_seconds >= 3 * 60 * config.probe_interval_minutes
    assert config.lease_seconds >= 2 * 60 * config.probe_interval_minutes + 10


@pytest.mark.parametrize("region", REGIONS)
def test_dashboard_graphs_each_regions_canary_lag_against_the_budget(synth: Synthesized, region: str) -> None:
    (dashboard,) = synth.resources("aws_cloudwatch_dashboard", stack=observability(region))
    widgets = [w for w in json.loads(dashboard.body["dashboard_body"])["widgets"] if w["type"] == "metric"]
    [canary] = [w for w in widgets if any("ReplicationCanaryLagMs" in row for row in w["properties"]["metrics"])]
    lag_rows = [row for row in canary["properties"]["metrics"] if "ReplicationCanaryLagMs" in row]
    assert {row[-1]["region"] for row in lag_rows} == set(REGIONS)
    assert all(row[-1]["stat"] == "Maximum" for row in lag_rows)
    [budget] = canary["properties"]["annotations"]["horizontal"]
    assert budget["value"] == REPLICATION_BUDGET_MS
