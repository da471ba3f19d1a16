"""Observability layer (``observability-<region>``): alarms, composite health, dashboard, failover wiring.

Identical in every region (a loop in ``main.py``). Bill of materials, per region:

- e-mail subscriptions (``config.alert_emails``) on the region's alert topic; the topic itself
  lives in the compute layer, because the edge layer's DNS-steering alarms publish to it first;
- metric alarms, each notifying the topic on ``ALARM`` and on ``OK``: API p99 latency (the edge
  layer owns the per-payment-route 5xx-rate and average-latency alarms that steer DNS), Lambda ``Errors`` and
  ``Throttles`` of every function, DynamoDB throttles of every table and index, DynamoDB
  replication latency towards the other region (the 1-second budget), SQS dead-letter depth and
  oldest-message age, and Route 53 health check status (in us-east-1, where those metrics live);
- the composite alarm ``<region>-region-cannot-take-payments``: the signals that mean that
  payments fail here. The failover orchestrator acts on it, Route 53 does not (it cannot watch a
  composite alarm): DNS moves on the edge layer's calculated health check, which watches the same
  API alarms, so DNS failover needs no Lambda;
- the failover orchestrator's wiring: subscription to the composite alarm's notifications, the
  one-minute heartbeat / peer probe schedule, its asynchronous-invocation settings;
- a dashboard showing both regions side by side, deployed in both regions, with the requests
  rejected as bad input by error code (``PaymentRejected``): visible, never on the failover path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import TerraformOutput, TerraformProvider
from cdktf_cdktf_provider_aws.cloudwatch_composite_alarm import CloudwatchCompositeAlarm
from cdktf_cdktf_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import CloudwatchEventTarget, CloudwatchEventTargetRetryPolicy
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import (
    CloudwatchMetricAlarm,
    CloudwatchMetricAlarmMetricQuery,
    CloudwatchMetricAlarmMetricQueryMetric,
)
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.lambda_function_event_invoke_config import LambdaFunctionEventInvokeConfig
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_policy import SnsTopicPolicy
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct

from layers.base import BackendSettings, LayerStack
from layers.config import Config
from layers.data import TABLES
from layers.edge import PAYMENT_ROUTES, STAGE_NAME, EdgeStack
from layers.network import PARTITION, policy_document

#: The seed's replication budget: a write in one region is readable in the other within 1 s.
REPLICATION_BUDGET_MS = 1000
#: DynamoDB aggregates ``ReplicationLatency`` at five-minute granularity (only the request metrics
#: are per minute), so a shorter period would see gaps, not faster detection. The alarm takes the
#: period's Maximum and fires on ONE breaching period: a spike above the budget pages within about
#: 5 to 10 minutes instead of vanishing in an average over 15.
REPLICATION_PERIOD_SECONDS = 300
REPLICATION_EVALUATION_PERIODS = 1
#: The orchestrator's canary (lambdas/failover_orchestrator/canary.py) measures end to end every
#: probe, published per minute: two breaching minutes out of three page (one slow probe does not).
CANARY_PERIOD_SECONDS = 60
CANARY_EVALUATION_PERIODS, CANARY_DATAPOINTS_TO_ALARM = 3, 2
#: Metrics the orchestrator's probe publishes (canary.py), with the ``service`` dimension Powertools adds.
CANARY_LAG_METRIC = "ReplicationCanaryLagMs"
REGION_HEALTHY_METRIC = "RegionHealthy"
ORCHESTRATOR_SERVICE = "failover-orchestrator"
#: Route 53 publishes health check metrics only here.
ROUTE53_METRICS_REGION = "us-east-1"
#: DynamoDB reports ``ThrottledRequests`` per operation only (dimensions ``TableName`` +
#: ``Operation``); the table's alarm sums these ten, the most a metric math alarm may hold.
DYNAMODB_OPERATIONS: tuple[str, ...] = (
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
)
#: ``POWERTOOLS_SERVICE_NAME`` of the orchestrator (a metric dimension of what its sweeper publishes).
ORCHESTRATOR_SERVICE = "failover-orchestrator"
#: Marker the failover orchestrator looks for in an alarm name (lambdas/failover_orchestrator).
COMPOSITE_ALARM_MARKER = "region-cannot-take-payments"
#: Lambda retries a failed asynchronous invocation (SNS, schedule) this often, then sends it to the
#: on-failure queue; the orchestrator never raises on a malformed event, so only AWS errors retry.
ORCHESTRATOR_MAX_RETRY_ATTEMPTS = 2
#: An alarm notification older than this is not acted on (it goes to the on-failure queue, which
#: pages a human): by then the peer probe and the on-call have taken over.
ORCHESTRATOR_MAX_EVENT_AGE_SECONDS = 900
#: Grid width of a CloudWatch dashboard; every widget takes half.
DASHBOARD_COLUMNS, WIDGET_WIDTH, WIDGET_HEIGHT = 24, 12, 6

Dimensions = Mapping[str, str]


@dataclass(frozen=True)
class RegionView:
    """What the dashboard graphs for one region: plain names or tokens, by logical key."""

    region: str
    api_name: str
    stage_name: str
    functions: Mapping[str, str]
    tables: Mapping[str, str]
    #: (table key, index name) of every global secondary index.
    indexes: Sequence[tuple[str, str]]
    #: Work queues and dead-letter queues by logical key.
    queues: Mapping[str, str]
    dead_letter_queues: Mapping[str, str]
    #: Route 53 health check ids (``https``, ``region``).
    health_checks: Mapping[str, str]
    metrics_namespace: str
    #: The other region of the pair: the receiving region of this region's replication.
    peer_region: str


def _metric(namespace: str, name: str, dimensions: Dimensions, *, region: str, label: str, **options: Any) -> list[Any]:
    """One dashboard metric row: namespace, name, dimension pairs, then options (region, label)."""
    row: list[Any] = [namespace, name]
    for key, value in dimensions.items():
        row += [key, value]
    row.append({"region": region, "label": label, **options})
    return row


def _widget(title: str, metrics: list[list[Any] | dict[str, Any]], *, home: str, **properties: Any) -> dict[str, Any]:
    """A time-series metric widget; ``home`` is the console region it opens in."""
    return {
        "type": "metric",
        "width": WIDGET_WIDTH,
        "height": WIDGET_HEIGHT,
        "properties": {
            "title": title,
            "view": "timeSeries",
            "stacked": False,
            "region": home,
            "period": 60,
            "metrics": metrics,
            **properties,
        },
    }


def dashboard_widgets(views: Sequence[RegionView], home: str) -> list[dict[str, Any]]:
    """Every widget of the cross-region dashboard: each graphs every region in ``views``.

    Each metric carries the region it is read from (``region``) and a label starting with the
    region it describes; Route 53 metrics are read from us-east-1 for both regions' checks.
    """
    api, errors, throttles, duration, ddb, replication, depth, age, health, fence, canary, rejected, pending = (
        [] for _ in range(13)
    )
    for v in views:
        r = v.region
        api_dims = {"ApiName": v.api_name, "Stage": v.stage_name}
        api.append(_metric("AWS/ApiGateway", "Latency", api_dims, region=r, label=f"{r} p99 latency", stat="p99"))
        for route in PAYMENT_ROUTES:
            # The 5xx rate that steers DNS: the payment route's own, /health and 4xx left out.
            route_dims = {**api_dims, "Resource": route.path, "Method": route.method}
            label = f"{r} {route.method} {route.path} 5xx rate"
            api.append(
                _metric("AWS/ApiGateway", "5XXError", route_dims, region=r, label=label, stat="Average", yAxis="right")
            )
        # Bad input by error code: visible here, and on no alarm that fails over.
        rejected.append(
            {
                "expression": (
                    f'SEARCH(\'{{{v.metrics_namespace},code,region,service}} MetricName="PaymentRejected" '
                    f"region=\"{r}\"', 'Sum', 60)"
                ),
                "id": f"rejected_{r.replace('-', '_')}",
                "region": r,
                "label": f"{r} rejected",
            }
        )
        for key, name in v.functions.items():
            dims = {"FunctionName": name}
            errors.append(_metric("AWS/Lambda", "Errors", dims, region=r, label=f"{r} {key}", stat="Sum"))
            throttles.append(_metric("AWS/Lambda", "Throttles", dims, region=r, label=f"{r} {key}", stat="Sum"))
            duration.append(_metric("AWS/Lambda", "Duration", dims, region=r, label=f"{r} {key} p99", stat="p99"))
        for key, name in v.tables.items():
            for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
                ddb.append(
                    _metric(
                        "AWS/DynamoDB", metric, {"TableName": name}, region=r, label=f"{r} {key} {metric}", stat="Sum"
                    )
                )
            replication.append(
                _metric(
                    "AWS/DynamoDB",
                    "ReplicationLatency",
                    {"TableName": name, "ReceivingRegion": v.peer_region},
                    region=r,
                    label=f"{r} {key} -> {v.peer_region}",
                    stat="Maximum",
                    period=REPLICATION_PERIOD_SECONDS,
                )
            )
        for table_key, index in v.indexes:
            for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
                dims = {"TableName": v.tables[table_key], "GlobalSecondaryIndexName": index}
                ddb.append(
                    _metric(
                        "AWS/DynamoDB", metric, dims, region=r, label=f"{r} {table_key}/{index} {metric}", stat="Sum"
                    )
                )
        for key, name in {**v.queues, **v.dead_letter_queues}.items():
            dims = {"QueueName": name}
            depth.append(
                _metric(
                    "AWS/SQS", "ApproximateNumberOfMessagesVisible", dims, region=r, label=f"{r} {key}", stat="Maximum"
                )
            )
            age.append(
                _metric("AWS/SQS", "ApproximateAgeOfOldestMessage", dims, region=r, label=f"{r} {key}", stat="Maximum")
            )
        for key, check_id in v.health_checks.items():
            health.append(
                _metric(
                    "AWS/Route53",
                    "HealthCheckStatus",
                    {"HealthCheckId": check_id},
                    region=ROUTE53_METRICS_REGION,
                    label=f"{r} {key} health check",
                    stat="Minimum",
                )
            )
        probe_dims = {"service": ORCHESTRATOR_SERVICE, "region": r}
        canary.append(
            _metric(
                v.metrics_namespace,
                CANARY_LAG_METRIC,
                probe_dims,
                region=r,
                label=f"{r} -> {v.peer_region} canary lag",
                stat="Maximum",
            )
        )
        canary.append(
            _metric(
                v.metrics_namespace,
                REGION_HEALTHY_METRIC,
                probe_dims,
                region=r,
                label=f"{r} healthy, seen from itself",
                stat="Minimum",
                yAxis="right",
            )
        )
        # Lease state: the HTTPS check fails while the primary is not active (/health answers 503), and
        # the validation function counts every payment it refuses with 421 because it is not active.
        fence.append(
            _metric(
                "AWS/Route53",
                "HealthCheckStatus",
                {"HealthCheckId": v.health_checks["https"]},
                region=ROUTE53_METRICS_REGION,
                label=f"{r} serving (1) / standby, lapsed or down (0)",
                stat="Minimum",
            )
        )
        fence.append(
            {
                "expression": (
                    f'SEARCH(\'{{{v.metrics_namespace},region,service}} MetricName="PaymentRefusedNotActive" '
                    f"region=\"{r}\"', 'Sum', 60)"
                ),
                "id": f"fenced_{r.replace('-', '_')}",
                "region": r,
                "label": f"{r} payments refused: not the active region (421)",
                "yAxis": "right",
            }
        )
        # What the sweeper of the active region counts: PENDING payments older than the alarm age.
        for name, label in (("PendingPaymentsOverAge", "PENDING over age"), ("OldestPendingSeconds", "oldest (s)")):
            pending.append(
                _metric(
                    v.metrics_namespace,
                    name,
                    {"region": r, "service": ORCHESTRATOR_SERVICE},
                    region=r,
                    label=f"{r} {label}",
                    stat="Maximum",
                )
            )
    budget = {"horizontal": [{"label": "1 s replication budget", "value": REPLICATION_BUDGET_MS}]}
    return [
        _widget("API p99 latency (ms) and payment routes' 5xx rate", api, home=home),
        _widget("Requests rejected (400) by error code", rejected, home=home),
        _widget("Lambda errors", errors, home=home),
        _widget("Lambda throttles", throttles, home=home),
        _widget("Lambda duration p99 (ms)", duration, home=home),
        _widget("DynamoDB throttle events", ddb, home=home),
        _widget(
            "Replication canary lag (ms, end to end, every probe) and own health",
            canary,
            home=home,
            annotations=budget,
        ),
        _widget(
            "DynamoDB replication latency (ms, Maximum per 5 min)",
            replication,
            home=home,
            period=REPLICATION_PERIOD_SECONDS,
            annotations=budget,
        ),
        _widget("Queue depth (work queues and DLQs)", depth, home=home),
        _widget("Oldest message age (s)", age, home=home),
        _widget(
            "Route 53 health checks (1 healthy, 0 unhealthy)", health, home=home, yAxis={"left": {"min": 0, "max": 1}}
        ),
        _widget("Lease state: serving, refusals of a region that is not active", fence, home=home),
        _widget("PENDING payments (sweeper of the active region)", pending, home=home),
    ]


def dashboard_body(views: Sequence[RegionView], home: str, header: str) -> str:
    """The dashboard JSON: a text header, then the metric widgets two per row."""
    widgets: list[dict[str, Any]] = [
        {"type": "text", "x": 0, "y": 0, "width": DASHBOARD_COLUMNS, "height": 2, "properties": {"markdown": header}}
    ]
    for index, widget in enumerate(dashboard_widgets(views, home)):
        widgets.append({**widget, "x": (index % 2) * WIDGET_WIDTH, "y": 2 + (index // 2) * WIDGET_HEIGHT})
    return json.dumps({"start": "-PT3H", "periodOverride": "inherit", "widgets": widgets})


class ObservabilityStack(LayerStack):
    """Alarms, composite health, dashboard and the failover orchestrator's wiring of one region."""

    def __init__(
        self,
        scope: Construct,
        *,
        region: str,
        config: Config,
        backend: BackendSettings,
        edge: EdgeStack,
        peer: EdgeStack,
    ) -> None:
        super().__init__(scope, layer="observability", region=region, config=config, backend=backend)
        if peer.region == region:
            raise ValueError(f"observability-{region}: the peer edge stack must be the other region's")
        self.edge = edge
        self.peer = peer
        self.compute = edge.compute
        self.data = edge.compute.data
        self.add_dependency(edge)
        self.add_dependency(peer)
        self.topic_arn: str = self.compute.alert_topic.arn
        self.account_id = DataAwsCallerIdentity(self, "account").account_id
        self.alarms: dict[str, CloudwatchMetricAlarm] = {}

        self._email_subscriptions(self.topic_arn, provider=None, prefix="alert")
        self._api_alarms()
        self._lambda_alarms()
        self._dynamodb_alarms()
        self._queue_alarms()
        self._probe_alarms()
        self._pending_alarm()
        self.route53_topic_arn, route53_provider = self._route53_alarm_topic()
        self._route53_alarms(route53_provider)
        self.composite_alarm = self._composite_alarm()
        self._orchestrator_wiring()
        self.dashboard = self._dashboard()
        self._outputs()

    # --- helpers -------------------------------------------------------------------------------

    @property
    def period(self) -> int:
        """Period of every alarm but replication latency."""
        return self.config.alarm_period_seconds

    @property
    def evaluation_periods(self) -> int:
        """Breaching periods in a row before an alarm fires."""
        return self.config.alarm_evaluation_periods

    def _alarm(
        self,
        key: str,
        *,
        subject: str,
        description: str,
        treat_missing_data: str,
        threshold: float,
        comparison: str = "GreaterThanOrEqualToThreshold",
        namespace: str | None = None,
        metric_name: str | None = None,
        dimensions: Dimensions | None = None,
        statistic: str | None = None,
        extended_statistic: str | None = None,
        metric_query: list[CloudwatchMetricAlarmMetricQuery] | None = None,
        period: int | None = None,
        evaluation_periods: int | None = None,
        datapoints_to_alarm: int | None = None,
        topic_arn: str | None = None,
        provider: TerraformProvider | None = None,
        **extra: Any,
    ) -> CloudwatchMetricAlarm:
        """One metric alarm notifying ``topic_arn`` (default: this region's topic) on ALARM and on OK."""
        topic = topic_arn or self.topic_arn
        alarm = CloudwatchMetricAlarm(
            self,
            f"alarm-{key.replace('_', '-')}",
            alarm_name=self.name(f"{self.region}-{subject}"),
            alarm_description=description,
            comparison_operator=comparison,
            threshold=threshold,
            evaluation_periods=evaluation_periods or self.evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm or evaluation_periods or self.evaluation_periods,
            treat_missing_data=treat_missing_data,
            namespace=namespace,
            metric_name=metric_name,
            dimensions=dict(dimensions) if dimensions else None,
            statistic=statistic,
            extended_statistic=extended_statistic,
            metric_query=metric_query,
            period=None if metric_query else (period or self.period),
            alarm_actions=[topic],
            ok_actions=[topic],
            provider=provider,
            **extra,
        )
        self.alarms[key] = alarm
        return alarm

    def _email_subscriptions(self, topic_arn: str, *, provider: TerraformProvider | None, prefix: str) -> None:
        """One e-mail subscription per address; each recipient confirms it once."""
        for index, email in enumerate(self.config.alert_emails):
            SnsTopicSubscription(
                self,
                f"{prefix}-email-{index}",
                topic_arn=topic_arn,
                protocol="email",
                endpoint=email,
                provider=provider,
            )

    # --- alarms --------------------------------------------------------------------------------

    def _api_alarms(self) -> None:
        """API p99 latency of the stage; the edge layer's 5xx-rate and average-latency alarms steer DNS."""
        threshold = self.config.api_p99_latency_threshold_ms
        self._alarm(
            "api_p99_latency",
            subject="api-p99-latency",
            description=(
                f"p99 latency of {self.edge.api_name} stage {STAGE_NAME} above {threshold} ms for "
                f"{self.evaluation_periods} x {self.period} s in {self.region}: some merchants wait too long."
            ),
            # No requests (the standby region) is not slow; the HTTPS health check covers a dead API.
            treat_missing_data="notBreaching",
            threshold=threshold,
            comparison="GreaterThanThreshold",
            namespace="AWS/ApiGateway",
            metric_name="Latency",
            dimensions={"ApiName": self.edge.api_name, "Stage": STAGE_NAME},
            extended_statistic="p99",
            # With a handful of requests the p99 is one request: don't alarm on that.
            evaluate_low_sample_count_percentiles="ignore",
        )

    def _lambda_alarms(self) -> None:
        """``Errors`` and ``Throttles`` of every function."""
        for key, function in self.compute.functions.items():
            subject = key.replace("_", "-")
            for metric, threshold, meaning in (
                ("Errors", self.config.lambda_errors_threshold, "invocations failed (unhandled error or timeout)"),
                ("Throttles", self.config.lambda_throttles_threshold, "invocations throttled (concurrency exhausted)"),
            ):
                self._alarm(
                    f"{key}_{metric.lower()}",
                    subject=f"{subject}-{metric.lower()}",
                    description=(
                        f"{key}: at least {threshold} {meaning} per {self.period} s, "
                        f"{self.evaluation_periods} periods in a row, in {self.region}."
                    ),
                    # Lambda publishes nothing for a function that is not invoked: nothing failed.
                    treat_missing_data="notBreaching",
                    threshold=threshold,
                    namespace="AWS/Lambda",
                    metric_name=metric,
                    dimensions={"FunctionName": function.function_name},
                    statistic="Sum",
                )

    def _dynamodb_alarms(self) -> None:
        """Throttles of every table and index, and replication latency towards the other region."""
        threshold = self.config.dynamodb_throttles_threshold
        window = f"{self.evaluation_periods} x {self.period} s"
        for spec in TABLES:
            table = self.data.tables[spec.key].name
            subject = spec.key
            targets: list[tuple[str, str, dict[str, str]]] = [(spec.key, subject, {"TableName": table})]
            targets += [
                (
                    f"{spec.key}_{index.name}",
                    f"{subject}-{index.name}",
                    {"TableName": table, "GlobalSecondaryIndexName": index.name},
                )
                for index in spec.indexes
            ]
            for key, target_subject, dimensions in targets:
                for metric, kind in (("ReadThrottleEvents", "read"), ("WriteThrottleEvents", "write")):
                    self._alarm(
                        f"{key}_{kind}_throttles",
                        subject=f"{target_subject}-{kind}-throttles",
                        description=(
                            f"{' / '.join(dimensions.values())}: at least {threshold} {kind} throttle events per "
                            f"period for {window} in {self.region}."
                        ),
                        # DynamoDB publishes throttle events only when there are some.
                        treat_missing_data="notBreaching",
                        threshold=threshold,
                        namespace="AWS/DynamoDB",
                        metric_name=metric,
                        dimensions=dimensions,
                        statistic="Sum",
                    )
            queries = [
                CloudwatchMetricAlarmMetricQuery(
                    id=f"m{index}",
                    metric=CloudwatchMetricAlarmMetricQueryMetric(
                        namespace="AWS/DynamoDB",
                        metric_name="ThrottledRequests",
                        dimensions={"TableName": table, "Operation": operation},
                        period=self.period,
                        stat="Sum",
                    ),
                    return_data=False,
                )
                for index, operation in enumerate(DYNAMODB_OPERATIONS)
            ]
            queries.append(
                CloudwatchMetricAlarmMetricQuery(
                    id="throttled",
                    expression="SUM(FILL(METRICS(), 0))",
                    label=f"ThrottledRequests of {table}, every operation",
                    return_data=True,
                )
            )
            self._alarm(
                f"{spec.key}_throttled_requests",
                subject=f"{subject}-throttled-requests",
                description=(
                    f"{table}: at least {threshold} throttled requests (any operation) per period for {window} "
                    f"in {self.region}."
                ),
                # Published per operation only when requests were throttled.
                treat_missing_data="notBreaching",
                threshold=threshold,
                metric_query=queries,
            )
            self._alarm(
                f"{spec.key}_replication_latency",
                subject=f"{subject}-replication-latency",
                description=(
                    f"{table}: replication from {self.region} to {self.peer.region} above the "
                    f"{REPLICATION_BUDGET_MS} ms budget at least once in {REPLICATION_PERIOD_SECONDS} s (Maximum). "
                    "A failover now may lose the last writes' visibility in the other region."
                ),
                # No writes means nothing to replicate. A full stall shows up as a stale peer
                # heartbeat (heartbeats are replicated writes to the control table).
                treat_missing_data="notBreaching",
                threshold=REPLICATION_BUDGET_MS,
                comparison="GreaterThanThreshold",
                namespace="AWS/DynamoDB",
                metric_name="ReplicationLatency",
                dimensions={"TableName": table, "ReceivingRegion": self.peer.region},
                statistic="Maximum",
                period=REPLICATION_PERIOD_SECONDS,
                evaluation_periods=REPLICATION_EVALUATION_PERIODS,
            )

    def _probe_alarms(self) -> None:
        """The orchestrator probe's end-to-end replication canary and this region's own health.

        Both metrics are published in this region by this region's probe, so both alarms (and the
        topic they notify) keep working while the other region, us-east-1 included, is down.
        """
        dimensions = {"service": ORCHESTRATOR_SERVICE, "region": self.region}
        namespace = self.compute.metrics_namespace
        self._alarm(
            "replication_canary_lag",
            subject="replication-canary-lag",
            description=(
                f"A write to the control table in {self.region} took more than {REPLICATION_BUDGET_MS} ms to be "
                f"readable in {self.peer.region} ({CANARY_DATAPOINTS_TO_ALARM} of {CANARY_EVALUATION_PERIODS} "
                "probes, Maximum): the 1 s replication budget is broken end to end."
            ),
            # The probe publishes every minute; silence means the probe (and this watch) is broken.
            treat_missing_data="breaching",
            threshold=REPLICATION_BUDGET_MS,
            comparison="GreaterThanThreshold",
            namespace=namespace,
            metric_name=CANARY_LAG_METRIC,
            dimensions=dimensions,
            statistic="Maximum",
            period=CANARY_PERIOD_SECONDS,
            evaluation_periods=CANARY_EVALUATION_PERIODS,
            datapoints_to_alarm=CANARY_DATAPOINTS_TO_ALARM,
        )
        self._alarm(
            "region_healthy",
            subject="region-health",
            description=(
                f"The probe in {self.region} gets no 200 from https://{self.edge.regional_host}/health "
                f"({self.evaluation_periods} x {self.period} s): this region cannot serve, seen from itself. "
                f"Unlike the Route 53 alarms (metrics in us-east-1 only) this one lives in {self.region}."
            ),
            treat_missing_data="breaching",
            threshold=1,
            comparison="LessThanThreshold",
            namespace=namespace,
            metric_name=REGION_HEALTHY_METRIC,
            dimensions=dimensions,
            statistic="Minimum",
        )

    def _queues(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(work queues, dead-letter queues) of this region's compute layer, by logical key."""
        work = {"processing_queue": self.compute.processing_queue}
        dead = {"processing_dlq": self.compute.processing_dlq, **self.compute.async_dlqs}
        return work, dead

    def _queue_alarms(self) -> None:
        """Messages on every DLQ; age of the oldest message on every queue."""
        work, dead = self._queues()
        for key, queue in dead.items():
            self._alarm(
                f"{key}_messages_visible",
                subject=f"{key.replace('_', '-')}-messages",
                description=(
                    f"{key} in {self.region} holds messages: payments or failover events that failed every retry. "
                    "Inspect and redrive them (README, runbook)."
                ),
                # SQS publishes for queues with messages; silence means empty (or never used).
                treat_missing_data="notBreaching",
                threshold=0,
                comparison="GreaterThanThreshold",
                namespace="AWS/SQS",
                metric_name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": queue.name},
                statistic="Maximum",
            )
        for key, queue in {**work, **dead}.items():
            is_dlq = key in dead
            threshold = (
                self.config.dlq_oldest_message_age_seconds if is_dlq else self.config.queue_oldest_message_age_seconds
            )
            meaning = (
                "unhandled dead letters; SQS deletes them when their retention ends"
                if is_dlq
                else "processing is stuck or disabled"
            )
            self._alarm(
                f"{key}_oldest_message_age",
                subject=f"{key.replace('_', '-')}-oldest-message-age",
                description=f"{key} in {self.region}: oldest message older than {threshold} s ({meaning}).",
                # An empty queue publishes no age: nothing is waiting.
                treat_missing_data="notBreaching",
                threshold=threshold,
                comparison="GreaterThanThreshold",
                namespace="AWS/SQS",
                metric_name="ApproximateAgeOfOldestMessage",
                dimensions={"QueueName": queue.name},
                statistic="Maximum",
            )

    def _pending_alarm(self) -> None:
        """PENDING payments older than ``pendingAlarmAgeSeconds``: counted by the active region's sweeper."""
        self._alarm(
            "pending_payments_over_age",
            subject="pending-payments-over-age",
            description=(
                f"{self.region} holds PENDING payments older than {self.config.pending_alarm_age_seconds} s although "
                "the sweeper re-enqueues them: processing is failing or the queue consumer is stopped (lease protocol)."
            ),
            # Only the active region's sweeper publishes it: silence in the standby is normal.
            treat_missing_data="notBreaching",
            threshold=0,
            comparison="GreaterThanThreshold",
            namespace=self.compute.metrics_namespace,
            metric_name="PendingPaymentsOverAge",
            dimensions={"region": self.region, "service": ORCHESTRATOR_SERVICE},
            statistic="Maximum",
        )

    def _route53_alarm_topic(self) -> tuple[str, TerraformProvider | None]:
        """The us-east-1 topic the Route 53 alarms notify, and the provider to create them with.

        An alarm's SNS action must be in the alarm's region, and Route 53 metrics exist only in
        us-east-1. In us-east-1 that is this region's own topic; in the other region of a pair that
        includes us-east-1 it is that region's alert topic (the same people are subscribed); with
        neither region in us-east-1, this stack creates a small encrypted topic there.
        """
        if self.region == ROUTE53_METRICS_REGION:
            return self.topic_arn, None
        provider = self.add_provider(ROUTE53_METRICS_REGION, alias="route53metrics")
        if self.peer.region == ROUTE53_METRICS_REGION:
            return self.peer.compute.alert_topic.arn, provider
        suffix = self.config.environment_suffix
        alarm_arns = f"arn:{PARTITION}:cloudwatch:{ROUTE53_METRICS_REGION}:{self.account_id}:alarm:*-{suffix}"
        key = KmsKey(
            self,
            "route53-alerts-key",
            description=f"Route 53 alarm notifications of {self.region} ({self.config.environment_suffix})",
            enable_key_rotation=True,
            deletion_window_in_days=7,
            policy=policy_document(
                {
                    "Sid": "AccountRootManagesKeyAndDelegatesToIam",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{PARTITION}:iam::{self.account_id}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    # CloudWatch encrypts the notifications it publishes to the encrypted topic.
                    "Sid": "CloudWatchAlarmsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": self.account_id},
                        "ArnLike": {"aws:SourceArn": alarm_arns},
                    },
                },
            ),
            provider=provider,
        )
        topic = SnsTopic(
            self,
            "route53-alerts-topic",
            name=self.name(f"payments-route53-alerts-{self.region}"),
            kms_master_key_id=key.arn,
            provider=provider,
        )
        SnsTopicPolicy(
            self,
            "route53-alerts-topic-policy",
            arn=topic.arn,
            policy=policy_document(
                {
                    "Sid": "CloudWatchAlarmsOfThisDeploymentPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": topic.arn,
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": self.account_id},
                        "ArnLike": {"aws:SourceArn": alarm_arns},
                    },
                },
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sns:Publish",
                    "Resource": topic.arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ),
            provider=provider,
        )
        self._email_subscriptions(topic.arn, provider=provider, prefix="route53-alert")
        return topic.arn, provider

    def _route53_alarms(self, provider: TerraformProvider | None) -> None:
        """Status of this region's HTTPS and calculated health checks (metrics in us-east-1 only)."""
        checks = {"https": self.edge.https_health_check, "region": self.edge.region_health_check}
        meaning = {
            "https": f"Route 53 checkers cannot get 200 from https://{self.edge.regional_host}/health",
            "region": "the calculated check behind the failover record is unhealthy: DNS sends clients elsewhere",
        }
        for key, check in checks.items():
            self._alarm(
                f"health_check_{key}",
                subject=f"health-check-{key}",
                description=f"{self.region}: {meaning[key]} (alarm in {ROUTE53_METRICS_REGION}, like the metric).",
                # Route 53 publishes every minute for a live check: silence means the check is gone or
                # its metrics are lost, and we would be blind to the signal that moves DNS.
                treat_missing_data="breaching",
                threshold=1,
                comparison="LessThanThreshold",
                namespace="AWS/Route53",
                metric_name="HealthCheckStatus",
                dimensions={"HealthCheckId": check.id},
                statistic="Minimum",
                topic_arn=self.route53_topic_arn,
                provider=provider,
            )

    def composite_members(self) -> dict[str, CloudwatchMetricAlarm]:
        """The alarms that mean "this region cannot take payments", by key.

        API 5xx rate and average latency of each payment route (the same alarms Route 53 watches
        through the calculated health check; 4xx, such as rejected bad input, never counts),
        failures and throttles of the validation function, write throttles on the two tables every
        payment writes. p99 latency and the other functions inform people, they don't fail over.
        Never the HTTPS health check: ``/health`` answers 503 in a primary that does not hold the
        lease (by design, so DNS follows the lease), so it would mark a healthy standby primary
        unhealthy after every failover, and failback (refused for an unhealthy region) could
        never happen (found by the DR drill, ``failback_after_recovery``).
        """
        members: dict[str, CloudwatchMetricAlarm] = {
            f"edge_{key}": alarm for key, alarm in self.edge.api_alarms.items()
        }
        for key in (
            "payment_validation_errors",
            "payment_validation_throttles",
            "transactions_write_throttles",
            "idempotency_write_throttles",
        ):
            members[key] = self.alarms[key]
        return members

    def _composite_alarm(self) -> CloudwatchCompositeAlarm:
        """``<region>-region-cannot-take-payments``: any member in ALARM; the orchestrator acts on it."""
        members = self.composite_members()
        rule = " OR ".join(f'ALARM("{alarm.alarm_name}")' for alarm in members.values())
        self.composite_alarm_name = self.name(f"{self.region}-{COMPOSITE_ALARM_MARKER}")
        return CloudwatchCompositeAlarm(
            self,
            "composite-alarm",
            alarm_name=self.composite_alarm_name,
            alarm_description=(
                f"{self.region} cannot take payments: {', '.join(members)}. On ALARM the failover orchestrator "
                "marks this region unhealthy and hands the lease to the other; OK only marks it healthy again "
                "(failback is manual)."
            ),
            alarm_rule=rule,
            alarm_actions=[self.topic_arn],
            ok_actions=[self.topic_arn],
        )

    # --- failover orchestrator -----------------------------------------------------------------

    def _orchestrator_wiring(self) -> None:
        """Composite alarm notifications and the heartbeat / peer probe schedule invoke the orchestrator."""
        orchestrator = self.compute.functions["failover_orchestrator"]
        # SNS and EventBridge invoke asynchronously. Events that fail every retry or grow too old go
        # to the async DLQ through the function's dead-letter config (compute layer), which pages.
        LambdaFunctionEventInvokeConfig(
            self,
            "orchestrator-async-invoke",
            function_name=orchestrator.function_name,
            maximum_retry_attempts=ORCHESTRATOR_MAX_RETRY_ATTEMPTS,
            maximum_event_age_in_seconds=ORCHESTRATOR_MAX_EVENT_AGE_SECONDS,
        )
        from_topic = LambdaPermission(
            self,
            "orchestrator-invoke-from-alerts",
            action="lambda:InvokeFunction",
            function_name=orchestrator.function_name,
            principal="sns.amazonaws.com",
            source_arn=self.topic_arn,
        )
        self.orchestrator_subscription = SnsTopicSubscription(
            self,
            "orchestrator-subscription",
            topic_arn=self.topic_arn,
            protocol="lambda",
            endpoint=orchestrator.arn,
            # Only the composite alarm's notifications: not every other alarm, and not the summaries
            # the orchestrator itself publishes to this topic.
            filter_policy_scope="MessageBody",
            filter_policy=json.dumps({"AlarmName": [self.composite_alarm_name]}),
            depends_on=[from_topic],
        )
        minutes = self.config.probe_interval_minutes
        self.probe_rule = CloudwatchEventRule(
            self,
            "probe-schedule",
            name=self.name("failover-probe"),
            description=(
                f"Every {minutes} min: the failover orchestrator writes {self.region}'s heartbeat, renews the lease "
                f"when {self.region} is active, else promotes it once the lease was not renewed for "
                f"{self.config.lease_seconds + self.config.lease_safety_margin_seconds} s."
            ),
            schedule_expression=f"rate({minutes} minute{'s' if minutes > 1 else ''})",
        )
        from_schedule = LambdaPermission(
            self,
            "orchestrator-invoke-from-schedule",
            action="lambda:InvokeFunction",
            function_name=orchestrator.function_name,
            principal="events.amazonaws.com",
            source_arn=self.probe_rule.arn,
        )
        CloudwatchEventTarget(
            self,
            "probe-target",
            rule=self.probe_rule.name,
            target_id="failover-orchestrator",
            arn=orchestrator.arn,
            # A probe is worth nothing once the next one is due: no retries, no dead letters.
            retry_policy=CloudwatchEventTargetRetryPolicy(maximum_event_age_in_seconds=60, maximum_retry_attempts=0),
            depends_on=[from_schedule],
        )

    # --- dashboard and outputs -----------------------------------------------------------------

    def region_view(self, edge: EdgeStack) -> RegionView:
        """What the dashboard graphs for the region of ``edge``."""
        compute, data = edge.compute, edge.compute.data
        work = {"processing_queue": compute.processing_queue.name}
        dead = {"processing_dlq": compute.processing_dlq.name, **{k: q.name for k, q in compute.async_dlqs.items()}}
        return RegionView(
            region=edge.region,
            api_name=edge.api_name,
            stage_name=STAGE_NAME,
            functions={key: function.function_name for key, function in compute.functions.items()},
            tables={spec.key: data.tables[spec.key].name for spec in TABLES},
            indexes=[(spec.key, index.name) for spec in TABLES for index in spec.indexes],
            queues=work,
            dead_letter_queues=dead,
            health_checks={"https": edge.https_health_check.id, "region": edge.region_health_check.id},
            metrics_namespace=compute.metrics_namespace,
            peer_region=self.peer.region if edge is self.edge else self.region,
        )

    def _dashboard(self) -> CloudwatchDashboard:
        """The same cross-region dashboard in both regions, so one is there when the other is down."""
        by_region = {self.region: self.edge, self.peer.region: self.peer}
        views = [self.region_view(by_region[region]) for region in self.config.regions]
        primary, secondary = self.config.regions
        header = (
            f"# Payments DR ({self.config.environment_suffix}): {primary} primary, {secondary} secondary\n"
            f"Every graph shows both regions. This copy lives in **{self.region}**; the other copy is "
            f"`{self.name(f'payments-dr-{self.peer.region}')}` in {self.peer.region}."
        )
        # Dashboard names are global to the account: the region keeps the two copies apart.
        self.dashboard_name = self.name(f"payments-dr-{self.region}")
        return CloudwatchDashboard(
            self,
            "dashboard",
            dashboard_name=self.dashboard_name,
            dashboard_body=dashboard_body(views, home=self.region, header=header),
        )

    def _outputs(self) -> None:
        TerraformOutput(
            self, "alarm_names", value=[alarm.alarm_name for alarm in self.alarms.values()], description="metric alarms"
        )
        TerraformOutput(self, "composite_alarm_name", value=self.composite_alarm.alarm_name)
        TerraformOutput(self, "composite_alarm_arn", value=self.composite_alarm.arn)
        TerraformOutput(self, "alert_topic_arn", value=self.topic_arn)
        TerraformOutput(self, "route53_alarm_topic_arn", value=self.route53_topic_arn)
        TerraformOutput(self, "probe_rule_name", value=self.probe_rule.name)
        TerraformOutput(self, "dashboard_name", value=self.dashboard_name)
        TerraformOutput(
            self,
            "dashboard_url",
            value=(
                f"https://{self.region}.console.aws.amazon.com/cloudwatch/home?region={self.region}"
                f"#dashboards/dashboard/{self.dashboard_name}"
            ),
        )
