"""What the synthesized stacks say, resolved to plain values: functions, tables, queues, edge, schedules.

Everything the drill plays comes from here, never from constants typed into the harness, so a
mismatch between code and infrastructure (a missing environment variable, a wrong key schema)
fails the drill. Functions are discovered generically: every ``aws_lambda_function`` of every
stack, so a new function shows up without harness changes.

Terraform references (``${aws_sqs_queue.processing-queue.url}``, cross-stack
``${data.terraform_remote_state...outputs...}``) are resolved here: configured attributes from
the resource body, computed ones (ARNs, URLs, ids) the way AWS builds them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT = "123456789012"
_REFERENCE = re.compile(r"\$\{([^{}]+)\}")


class UnresolvedReferenceError(LookupError):
    """A Terraform reference the drill cannot resolve (names the stack and the expression)."""


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function in one region, as deployed."""

    key: str  # folder under lambdas/ (``payment_validation``)
    region: str
    name: str
    handler: str
    timeout_s: int
    reserved_concurrency: int | None
    environment: dict[str, str]
    arn: str


@dataclass(frozen=True)
class TableSpec:
    """A global table: key schema, indexes, TTL, and the regions it has a replica in."""

    name: str
    hash_key: str
    attributes: dict[str, str]
    indexes: tuple[dict[str, Any], ...]
    ttl_attribute: str | None
    stream_view_type: str | None
    regions: tuple[str, ...]


@dataclass(frozen=True)
class QueueSpec:
    """An SQS queue: visibility, retention and redrive (DLQ name and ``maxReceiveCount``)."""

    name: str
    region: str
    visibility_timeout_s: int
    retention_s: int
    dlq_name: str | None = None
    max_receive_count: int | None = None

    @property
    def url(self) -> str:
        """The queue URL AWS gives it."""
        return f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT}/{self.name}"


@dataclass(frozen=True)
class MappingSpec:
    """An SQS event source mapping."""

    region: str
    queue: str
    function: str
    batch_size: int
    batching_window_s: int
    enabled: bool
    report_batch_item_failures: bool
    maximum_concurrency: int | None


@dataclass(frozen=True)
class RouteSpec:
    """One API method: path, function behind it, validation and authorization."""

    method: str
    path: str
    function: str
    authorization: str
    required_headers: tuple[str, ...]
    body_schema: dict[str, Any] | None
    authorizer_function: str | None = None
    identity_sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class HealthCheckSpec:
    """A Route 53 health check (HTTPS, CloudWatch metric or calculated)."""

    id: str
    type: str
    region: str
    fqdn: str | None = None
    resource_path: str | None = None
    request_interval_s: int | None = None
    failure_threshold: int | None = None
    alarm_name: str | None = None
    insufficient_data: str | None = None
    children: tuple[str, ...] = ()
    child_threshold: int | None = None


@dataclass(frozen=True)
class FailoverRecordSpec:
    """One record of the Route 53 failover pair."""

    name: str
    role: str  # PRIMARY | SECONDARY
    region: str
    health_check: str | None
    evaluate_target_health: bool


@dataclass(frozen=True)
class ApiSpec:
    """A region's REST API: routes, stage throttling, its regional host."""

    region: str
    routes: tuple[RouteSpec, ...]
    rate_limit: float
    burst_limit: int
    regional_host: str
    stage: str
    api_name: str


@dataclass(frozen=True)
class ScheduleSpec:
    """An EventBridge schedule that invokes a function."""

    region: str
    name: str
    every_s: int
    function: str


@dataclass(frozen=True)
class SubscriptionSpec:
    """A Lambda subscription to an SNS topic, with its message-body filter."""

    region: str
    topic: str
    function: str
    filter_policy: dict[str, Any] | None


@dataclass(frozen=True)
class AlarmSpec:
    """A CloudWatch metric alarm, or a composite (``rule`` set)."""

    region: str
    name: str
    actions: tuple[str, ...]
    namespace: str | None = None
    metric: str | None = None
    dimensions: dict[str, str] = field(default_factory=dict)
    statistic: str | None = None
    period_s: int | None = None
    evaluation_periods: int | None = None
    datapoints_to_alarm: int | None = None
    threshold: float | None = None
    comparison: str | None = None
    treat_missing: str | None = None
    rule: str | None = None


@dataclass
class Topology:
    """The whole deployment as the drill plays it."""

    primary: str
    secondary: str
    functions: dict[tuple[str, str], FunctionSpec]  # (region, key)
    tables: dict[str, TableSpec]  # by name
    queues: dict[tuple[str, str], QueueSpec]  # (region, name)
    topics: dict[tuple[str, str], str]  # (region, name) -> arn
    mappings: list[MappingSpec]
    apis: dict[str, ApiSpec]
    health_checks: dict[str, HealthCheckSpec]
    failover_records: list[FailoverRecordSpec]
    schedules: list[ScheduleSpec]
    subscriptions: list[SubscriptionSpec]
    alarms: dict[tuple[str, str], AlarmSpec]  # (region, name): alarm names repeat across regions

    @property
    def regions(self) -> tuple[str, str]:
        """Primary first."""
        return (self.primary, self.secondary)

    def function(self, region: str, key: str) -> FunctionSpec:
        """One function in one region."""
        return self.functions[(region, key)]

    def function_by_name(self, region: str, name_or_arn: str) -> FunctionSpec:
        """The function a name or (invoke) ARN designates, in ``region``."""
        for spec in self.functions.values():
            if spec.region == region and name_or_arn in (spec.name, spec.arn, invoke_arn(spec.arn)):
                return spec
        raise KeyError(f"no function {name_or_arn} in {region}")


def invoke_arn(function_arn: str) -> str:
    """The API Gateway integration URI of a function."""
    region = function_arn.split(":")[3]
    return f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations"


# ---------------------------------------------------------------- reading and resolving


class Stacks:
    """The parsed ``cdk.tf.json`` of every stack, with reference resolution."""

    def __init__(self, outdir: Path) -> None:
        manifest = json.loads((outdir / "manifest.json").read_text())
        self.outdir = outdir
        self.body: dict[str, dict[str, Any]] = {
            name: json.loads((outdir / stack["synthesizedStackPath"]).read_text())
            for name, stack in manifest["stacks"].items()
        }
        #: state key -> stack name, for remote-state references.
        self._by_state_key = {f"/{name}.tfstate": name for name in self.body}

    def resources(self, rtype: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(stack, name, body) of every resource of a type."""
        return [
            (stack, name, item)
            for stack, body in self.body.items()
            for name, item in body.get("resource", {}).get(rtype, {}).items()
        ]

    def region(self, stack: str, body: dict[str, Any]) -> str:
        """Region of the provider that creates a resource."""
        alias = body.get("provider", "aws").removeprefix("aws.")
        for provider in self.body[stack].get("provider", {}).get("aws", []):
            if provider.get("alias", "aws") == alias:
                return provider["region"]
        raise UnresolvedReferenceError(f"{stack}: no aws provider {alias}")

    def resolve(self, stack: str, value: Any) -> Any:
        """``value`` with every reference replaced (recursively through lists and dicts)."""
        if isinstance(value, dict):
            return {key: self.resolve(stack, item) for key, item in value.items() if key != "//"}
        if isinstance(value, list):
            return [self.resolve(stack, item) for item in value]
        if not isinstance(value, str) or "${" not in value:
            return value
        whole = _REFERENCE.fullmatch(value)
        if whole:
            return self._expression(stack, whole.group(1))
        return _REFERENCE.sub(lambda match: str(self._expression(stack, match.group(1))), value)

    def _expression(self, stack: str, expression: str) -> Any:
        parts = expression.split(".")
        if parts[:2] == ["data", "terraform_remote_state"] and len(parts) == 5 and parts[3] == "outputs":
            config = self.body[stack]["data"]["terraform_remote_state"][parts[2]]["config"]
            other = next((name for key, name in self._by_state_key.items() if config["key"].endswith(key)), None)
            if other is None:
                raise UnresolvedReferenceError(f"{stack}: remote state {config['key']} is no stack of this app")
            output = self.body[other].get("output", {}).get(parts[4])
            if output is None:
                raise UnresolvedReferenceError(f"{other}: no output {parts[4]} (referenced from {stack})")
            return self.resolve(other, output["value"])
        if len(parts) == 3 and parts[0].startswith("aws_"):
            rtype, name, attribute = parts
            body = self.body[stack].get("resource", {}).get(rtype, {}).get(name)
            if body is None:
                raise UnresolvedReferenceError(f"{stack}: no resource {rtype}.{name}")
            computed = self._computed(stack, rtype, name, body, attribute)
            if computed is not None:
                return computed
            if attribute in body:
                return self.resolve(stack, body[attribute])
        raise UnresolvedReferenceError(f"{stack}: cannot resolve ${{{expression}}}")

    def _computed(self, stack: str, rtype: str, name: str, body: dict[str, Any], attribute: str) -> str | None:
        """Attributes AWS computes, built the way AWS builds them."""
        region = self.region(stack, body)
        resolved_name = lambda key: self.resolve(stack, body[key])  # noqa: E731
        if rtype == "aws_sqs_queue":
            queue = resolved_name("name")
            return {
                "url": f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{queue}",
                "arn": f"arn:aws:sqs:{region}:{ACCOUNT}:{queue}",
            }.get(attribute)
        if rtype == "aws_sns_topic" and attribute == "arn":
            return f"arn:aws:sns:{region}:{ACCOUNT}:{resolved_name('name')}"
        if rtype == "aws_lambda_function" and attribute in ("arn", "invoke_arn"):
            arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{resolved_name('function_name')}"
            return arn if attribute == "arn" else invoke_arn(arn)
        if rtype == "aws_dynamodb_table" and attribute == "arn":
            return f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{resolved_name('name')}"
        if attribute in ("id", "root_resource_id") and rtype.startswith(("aws_api_gateway_", "aws_route53_")):
            return f"{stack}/{rtype}.{name}" + ("/root" if attribute == "root_resource_id" else "")
        return None


# ---------------------------------------------------------------- the topology


def _functions(stacks: Stacks) -> dict[tuple[str, str], FunctionSpec]:
    functions = {}
    for stack, name, body in stacks.resources("aws_lambda_function"):
        region = stacks.region(stack, body)
        folder = Path(body["filename"]).parts[1].removesuffix("-code")
        function_name = stacks.resolve(stack, body["function_name"])
        environment = stacks.resolve(stack, body.get("environment", {}).get("variables", {}))
        functions[(region, folder)] = FunctionSpec(
            key=folder,
            region=region,
            name=function_name,
            handler=body["handler"],
            timeout_s=int(body.get("timeout", 3)),
            reserved_concurrency=body.get("reserved_concurrent_executions"),
            environment={key: str(value) for key, value in environment.items()},
            arn=stacks.resolve(stack, f"${{aws_lambda_function.{name}.arn}}"),
        )
    return functions


def _tables(stacks: Stacks) -> dict[str, TableSpec]:
    replicas: dict[str, list[str]] = {}
    for stack, _name, body in stacks.resources("aws_dynamodb_table_replica"):
        arn = stacks.resolve(stack, body["global_table_arn"])
        replicas.setdefault(arn, []).append(stacks.region(stack, body))
    tables = {}
    for stack, name, body in stacks.resources("aws_dynamodb_table"):
        region = stacks.region(stack, body)
        arn = stacks.resolve(stack, f"${{aws_dynamodb_table.{name}.arn}}")
        ttl = body.get("ttl") or {}
        table = TableSpec(
            name=body["name"],
            hash_key=body["hash_key"],
            attributes={a["name"]: a["type"] for a in body.get("attribute", [])},
            indexes=tuple(body.get("global_secondary_index", [])),
            ttl_attribute=ttl.get("attribute_name") if ttl.get("enabled") else None,
            stream_view_type=body.get("stream_view_type") if body.get("stream_enabled") else None,
            regions=(region, *replicas.get(arn, [])),
        )
        tables[table.name] = table
    return tables


def _queues(stacks: Stacks) -> dict[tuple[str, str], QueueSpec]:
    queues = {}
    for stack, _name, body in stacks.resources("aws_sqs_queue"):
        region = stacks.region(stack, body)
        redrive = json.loads(stacks.resolve(stack, body["redrive_policy"])) if "redrive_policy" in body else {}
        dlq = redrive.get("deadLetterTargetArn")
        queue = QueueSpec(
            name=body["name"],
            region=region,
            visibility_timeout_s=int(body.get("visibility_timeout_seconds", 30)),
            retention_s=int(body.get("message_retention_seconds", 345600)),
            dlq_name=dlq.rsplit(":", 1)[-1] if dlq else None,
            max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
        )
        queues[(region, queue.name)] = queue
    return queues


def _mappings(stacks: Stacks, functions: dict[tuple[str, str], FunctionSpec]) -> list[MappingSpec]:
    mappings = []
    for stack, _name, body in stacks.resources("aws_lambda_event_source_mapping"):
        region = stacks.region(stack, body)
        source = stacks.resolve(stack, body["event_source_arn"])
        target = stacks.resolve(stack, body["function_name"])
        function = next(f for f in functions.values() if f.region == region and target in (f.arn, f.name))
        mappings.append(
            MappingSpec(
                region=region,
                queue=source.rsplit(":", 1)[-1],
                function=function.key,
                batch_size=int(body.get("batch_size", 10)),
                batching_window_s=int(body.get("maximum_batching_window_in_seconds", 0)),
                enabled=bool(body.get("enabled", True)),
                report_batch_item_failures="ReportBatchItemFailures" in body.get("function_response_types", []),
                maximum_concurrency=(body.get("scaling_config") or {}).get("maximum_concurrency"),
            )
        )
    return mappings


def _paths(stacks: Stacks, stack: str) -> dict[str, str]:
    """API resource id -> full path (``/payments/{id}``)."""
    resources = stacks.body[stack].get("resource", {}).get("aws_api_gateway_resource", {})
    by_id = {
        stacks.resolve(stack, f"${{aws_api_gateway_resource.{name}.id}}"): body for name, body in resources.items()
    }
    paths: dict[str, str] = {}

    def path(resource_id: str) -> str:
        if resource_id not in by_id:  # the root resource
            return ""
        body = by_id[resource_id]
        return f"{path(stacks.resolve(stack, body['parent_id']))}/{body['path_part']}"

    for resource_id in by_id:
        paths[resource_id] = path(resource_id)
    return paths


def _apis(stacks: Stacks, topology_functions: dict[tuple[str, str], FunctionSpec]) -> dict[str, ApiSpec]:
    apis = {}
    for stack, body in stacks.body.items():
        resources = body.get("resource", {})
        if "aws_api_gateway_rest_api" not in resources:
            continue
        region = stacks.region(stack, next(iter(resources["aws_api_gateway_rest_api"].values())))
        paths = _paths(stacks, stack)
        integrations = {
            (stacks.resolve(stack, i["resource_id"]), stacks.resolve(stack, i["http_method"])): stacks.resolve(
                stack, i["uri"]
            )
            for i in resources.get("aws_api_gateway_integration", {}).values()
        }
        validators = {
            stacks.resolve(stack, f"${{aws_api_gateway_request_validator.{name}.id}}"): v
            for name, v in resources.get("aws_api_gateway_request_validator", {}).items()
        }
        models = {m["name"]: json.loads(m["schema"]) for m in resources.get("aws_api_gateway_model", {}).values()}
        authorizers = {
            stacks.resolve(stack, f"${{aws_api_gateway_authorizer.{name}.id}}"): a
            for name, a in resources.get("aws_api_gateway_authorizer", {}).items()
        }
        routes = []
        for method in resources.get("aws_api_gateway_method", {}).values():
            resource_id = stacks.resolve(stack, method["resource_id"])
            verb = method["http_method"]
            uri = integrations[(resource_id, verb)]
            validator = validators.get(stacks.resolve(stack, method.get("request_validator_id", "")), {})
            params = method.get("request_parameters") or {}
            required = tuple(
                name.removeprefix("method.request.header.")
                for name, needed in params.items()
                if needed and name.startswith("method.request.header.") and validator.get("validate_request_parameters")
            )
            schema = None
            if validator.get("validate_request_body") and method.get("request_models"):
                schema = models[stacks.resolve(stack, next(iter(method["request_models"].values())))]
            authorizer_function, sources = None, ()
            if method.get("authorizer_id"):
                authorizer = authorizers[stacks.resolve(stack, method["authorizer_id"])]
                authorizer_uri = stacks.resolve(stack, authorizer["authorizer_uri"])
                authorizer_function = topology_function_key(topology_functions, region, authorizer_uri)
                sources = tuple(s.strip() for s in authorizer.get("identity_source", "").split(",") if s.strip())
            routes.append(
                RouteSpec(
                    method=verb,
                    path=paths.get(resource_id, ""),
                    function=topology_function_key(topology_functions, region, uri),
                    authorization=method.get("authorization", "NONE"),
                    required_headers=required,
                    body_schema=schema,
                    authorizer_function=authorizer_function,
                    identity_sources=sources,
                )
            )
        settings = next(iter(resources.get("aws_api_gateway_method_settings", {}).values()), {}).get("settings", {})
        regional = next(
            (
                r["name"]
                for r in resources.get("aws_route53_record", {}).values()
                if "failover_routing_policy" not in r and "alias" in r
            ),
            "",
        )
        apis[region] = ApiSpec(
            region=region,
            routes=tuple(routes),
            rate_limit=float(settings.get("throttling_rate_limit", 10000)),
            burst_limit=int(settings.get("throttling_burst_limit", 5000)),
            regional_host=regional,
            stage=next(iter(resources.get("aws_api_gateway_stage", {}).values()), {}).get("stage_name", ""),
            api_name=next(iter(resources["aws_api_gateway_rest_api"].values()))["name"],
        )
    return apis


def topology_function_key(functions: dict[tuple[str, str], FunctionSpec], region: str, uri: str) -> str:
    """The function key behind an integration or authorizer URI."""
    for spec in functions.values():
        if spec.region == region and uri in (spec.arn, invoke_arn(spec.arn), spec.name):
            return spec.key
    raise UnresolvedReferenceError(f"{region}: no function behind {uri}")


def _route53(stacks: Stacks) -> tuple[dict[str, HealthCheckSpec], list[FailoverRecordSpec]]:
    checks = {}
    for stack, name, body in stacks.resources("aws_route53_health_check"):
        check_id = stacks.resolve(stack, f"${{aws_route53_health_check.{name}.id}}")
        region = stacks.region(stack, body)
        checks[check_id] = HealthCheckSpec(
            id=check_id,
            type=body["type"],
            region=region,
            fqdn=body.get("fqdn"),
            resource_path=body.get("resource_path"),
            request_interval_s=body.get("request_interval"),
            failure_threshold=body.get("failure_threshold"),
            alarm_name=stacks.resolve(stack, body.get("cloudwatch_alarm_name")),
            insufficient_data=body.get("insufficient_data_health_status"),
            children=tuple(stacks.resolve(stack, body.get("child_healthchecks", []))),
            child_threshold=body.get("child_health_threshold"),
        )
    records = []
    for stack, _name, body in stacks.resources("aws_route53_record"):
        if "failover_routing_policy" not in body:
            continue
        records.append(
            FailoverRecordSpec(
                name=body["name"],
                role=body["failover_routing_policy"]["type"],
                region=body["set_identifier"],
                health_check=stacks.resolve(stack, body["health_check_id"]) if "health_check_id" in body else None,
                evaluate_target_health=bool((body.get("alias") or {}).get("evaluate_target_health")),
            )
        )
    return checks, records


def _rate_seconds(expression: str) -> int:
    """``rate(1 minute)`` / ``rate(5 minutes)`` / ``rate(1 hour)`` in seconds."""
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if not match:
        raise UnresolvedReferenceError(f"unsupported schedule expression {expression}")
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return int(match.group(1)) * unit


def _schedules(stacks: Stacks, functions: dict[tuple[str, str], FunctionSpec]) -> list[ScheduleSpec]:
    schedules = []
    for stack, _name, target in stacks.resources("aws_cloudwatch_event_target"):
        rule_name = stacks.resolve(stack, target["rule"])
        rule = next(r for _s, _n, r in stacks.resources("aws_cloudwatch_event_rule") if r["name"] == rule_name)
        region = stacks.region(stack, target)
        schedules.append(
            ScheduleSpec(
                region=region,
                name=rule_name,
                every_s=_rate_seconds(rule["schedule_expression"]),
                function=topology_function_key(functions, region, stacks.resolve(stack, target["arn"])),
            )
        )
    return schedules


def _subscriptions(stacks: Stacks, functions: dict[tuple[str, str], FunctionSpec]) -> list[SubscriptionSpec]:
    subscriptions = []
    for stack, _name, body in stacks.resources("aws_sns_topic_subscription"):
        if body["protocol"] != "lambda":
            continue
        endpoint = stacks.resolve(stack, body["endpoint"])
        region = endpoint.split(":")[3]
        topic = stacks.resolve(stack, body["topic_arn"])
        subscriptions.append(
            SubscriptionSpec(
                region=topic.split(":")[3],
                topic=topic,
                function=topology_function_key(functions, region, endpoint),
                filter_policy=json.loads(body["filter_policy"]) if body.get("filter_policy") else None,
            )
        )
    return subscriptions


def _alarms(stacks: Stacks) -> dict[tuple[str, str], AlarmSpec]:
    alarms = {}
    for stack, _name, body in stacks.resources("aws_cloudwatch_metric_alarm"):
        if "metric_name" not in body:  # metric-math alarms are for people; the drill does not evaluate them
            continue
        spec = AlarmSpec(
            region=stacks.region(stack, body),
            name=stacks.resolve(stack, body["alarm_name"]),
            actions=tuple(stacks.resolve(stack, body.get("alarm_actions", []))),
            namespace=body["namespace"],
            metric=body["metric_name"],
            dimensions={k: str(v) for k, v in stacks.resolve(stack, body.get("dimensions", {})).items()},
            statistic=body.get("statistic") or body.get("extended_statistic"),
            period_s=int(body["period"]),
            evaluation_periods=int(body["evaluation_periods"]),
            datapoints_to_alarm=int(body.get("datapoints_to_alarm", body["evaluation_periods"])),
            threshold=float(body["threshold"]),
            comparison=body["comparison_operator"],
            treat_missing=body.get("treat_missing_data", "missing"),
        )
        alarms[(spec.region, spec.name)] = spec
    for stack, _name, body in stacks.resources("aws_cloudwatch_composite_alarm"):
        spec = AlarmSpec(
            region=stacks.region(stack, body),
            name=stacks.resolve(stack, body["alarm_name"]),
            actions=tuple(stacks.resolve(stack, body.get("alarm_actions", []))),
            rule=stacks.resolve(stack, body["alarm_rule"]),
        )
        alarms[(spec.region, spec.name)] = spec
    return alarms


def load(outdir: Path) -> Topology:
    """Read a synthesized ``cdktf.out`` into the drill's topology."""
    stacks = Stacks(outdir)
    functions = _functions(stacks)
    regions = sorted({spec.region for spec in functions.values()})
    sample = next(iter(functions.values())).environment
    primary, secondary = sample.get("PRIMARY_REGION", regions[0]), sample.get("SECONDARY_REGION", regions[-1])
    checks, records = _route53(stacks)
    used = {value for spec in functions.values() for value in spec.environment.values()}
    return Topology(
        primary=primary,
        secondary=secondary,
        functions=functions,
        # The tables the code is told about (not, e.g., the bootstrap's state-lock table).
        tables={name: table for name, table in _tables(stacks).items() if name in used},
        queues=_queues(stacks),
        topics={
            (stacks.region(stack, body), body["name"]): stacks.resolve(stack, f"${{aws_sns_topic.{name}.arn}}")
            for stack, name, body in stacks.resources("aws_sns_topic")
        },
        mappings=_mappings(stacks, functions),
        apis=_apis(stacks, functions),
        health_checks=checks,
        failover_records=records,
        schedules=_schedules(stacks, functions),
        subscriptions=_subscriptions(stacks, functions),
        alarms=_alarms(stacks),
    )
