"""Typed, validated configuration: the one place every setting comes from.

Defaults live in ``cdktf.json`` under ``context`` (the cdktf way); environment
variables override them. :func:`load_config` parses both once, at synth start,
and raises :class:`ConfigError` naming the key, the value and the rule that failed.
Every default is the secure choice: weakening one needs an explicit override.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CDKTF_JSON = REPO_ROOT / "cdktf.json"

#: Deploy order. A stack may depend only on stacks of its own or an earlier layer.
#: ``account`` (opt-in, ``manageApiGatewayAccount``) holds what AWS keeps once per account and region.
#: ``witness`` is one stack in ``witnessRegion`` (the lease's third copy); compute reads its table and key.
LAYER_ORDER: tuple[str, ...] = ("account", "network", "data", "witness", "compute", "edge", "observability")
#: The one stack with local state: it creates the state bucket and lock table.
BOOTSTRAP = "bootstrap"

# Longest suffix that keeps every generated name inside its AWS limit; the
# tightest is an IAM role name (64): "failover-orchestrator-use2-" + suffix.
MAX_SUFFIX_LENGTH = 16
SUFFIX_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
DOMAIN_RE = re.compile(r"^(?=.{4,200}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
#: ACM refuses a certificate whose first domain name (``api-<region>.<zone>``) is longer than this.
CERTIFICATE_DOMAIN_LIMIT = 64
#: A full DNS name; the longest the project writes is an ACM validation record,
#: ``_<32 hex>.api-<region>.<zone>.`` (34 characters more than the certificate's name).
DNS_NAME_LIMIT = 253
ACM_VALIDATION_PREFIX_LENGTH = 34
#: S3 bucket names (the state bucket and its replica, ``<bucket>-<suffix>[-replica]``).
BUCKET_NAME_LIMIT = 63
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,63}$")

#: AWS commercial regions that offer every service this project uses, with the
#: short code that names per-region copies of global resources (IAM roles).
REGION_CODES: Mapping[str, str] = {
    "us-east-1": "use1",
    "us-east-2": "use2",
    "us-west-1": "usw1",
    "us-west-2": "usw2",
    "ca-central-1": "cac1",
    "sa-east-1": "sae1",
    "eu-west-1": "euw1",
    "eu-west-2": "euw2",
    "eu-west-3": "euw3",
    "eu-central-1": "euc1",
    "eu-north-1": "eun1",
    "eu-south-1": "eus1",
    "ap-south-1": "aps1",
    "ap-northeast-1": "apne1",
    "ap-northeast-2": "apne2",
    "ap-northeast-3": "apne3",
    "ap-southeast-1": "apse1",
    "ap-southeast-2": "apse2",
}
KNOWN_REGIONS = frozenset(REGION_CODES)


class ConfigError(ValueError):
    """A config value broke a rule; the message names the key, the value and the rule."""

    def __init__(self, key: str, value: Any, rule: str) -> None:
        self.key, self.value, self.rule = key, value, rule
        super().__init__(f"invalid config {key}={value!r}: {rule}")


@dataclass(frozen=True)
class Config:
    """Everything a synth needs to know. Built only through :func:`load_config`."""

    #: Appended to every resource name (``name-<suffix>``) so deployments never collide.
    environment_suffix: str = "dev"
    #: Region that takes traffic while healthy.
    primary_region: str = "us-east-1"
    #: Region that takes traffic when the primary fails.
    secondary_region: str = "us-east-2"
    #: Third region holding the lease witness table (a third copy of the lease: majority of three).
    witness_region: str = "us-west-2"
    #: Parent domain; the hosted zone is ``<suffix>.<domain_name>``.
    domain_name: str = "payments.example.com"
    #: This deployment owns API Gateway's account-wide CloudWatch Logs role (``account-<region>``
    #: stacks). Exactly one deployment per account and region may; the others use the one it set.
    manage_api_gateway_account: bool = False
    #: Who is e-mailed by the alert topics.
    alert_emails: tuple[str, ...] = ("oncall@example.com",)
    #: One non-overlapping VPC CIDR per region.
    vpc_cidrs: Mapping[str, str] = field(
        default_factory=lambda: {"us-east-1": "10.10.0.0/16", "us-east-2": "10.20.0.0/16"}
    )
    #: Availability zone IDs (the same physical zones in every account) with a private subnet, 2 to 4
    #: per region. Pinned, so an impaired zone never reshuffles (and replaces) the subnets.
    availability_zone_ids: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {"us-east-1": ("use1-az1", "use1-az2"), "us-east-2": ("use2-az1", "use2-az2")}
    )
    #: Reserved concurrent executions for every function (>= 1, required by policy).
    lambda_reserved_concurrency: int = 10
    #: Memory of every function, MB (CPU scales with it).
    lambda_memory_mb: int = 512
    #: Timeout of the API functions (validation, status, health), seconds; below API Gateway's 29 s.
    lambda_timeout_seconds: int = 10
    #: Timeout of the processing function, seconds; the queue's visibility timeout is 6 times this.
    processing_timeout_seconds: int = 30
    #: Receives before a processing message moves to the DLQ.
    sqs_max_receive_count: int = 5
    #: Messages per processing invocation (more than 10 needs a batching window of at least 1 s).
    sqs_batch_size: int = 10
    #: Seconds the event source mapping may wait to fill a batch (0: invoke at once, lowest latency).
    sqs_max_batching_window_seconds: int = 0
    #: Age of the peer region's heartbeat after which the failover orchestrator counts it as failed.
    heartbeat_stale_seconds: int = 180
    #: Seconds one renewal keeps the active region's lease valid (docs/design.md, lease protocol).
    lease_seconds: int = 130
    #: Seconds the standby waits beyond the lease, by its own clock, before it promotes itself.
    lease_safety_margin_seconds: int = 40
    #: The active region's sweeper re-enqueues PENDING payments older than this (enqueue failed, no retry).
    pending_sweep_age_seconds: int = 120
    #: PENDING payments older than this count towards the pending-payments alarm.
    pending_alarm_age_seconds: int = 600
    #: Days CloudWatch log groups keep data.
    log_retention_days: int = 365
    #: Consecutive failed Route 53 checks before a region counts as down.
    health_check_failure_threshold: int = 3
    #: Period of the observability alarms, seconds (a multiple of 60: the AWS metrics used are per minute).
    alarm_period_seconds: int = 60
    #: Consecutive breaching periods before an observability alarm fires (detection = period x this).
    alarm_evaluation_periods: int = 3
    #: API Gateway p99 latency, ms, above which the (human-facing, not DNS-steering) p99 alarm breaches.
    api_p99_latency_threshold_ms: int = 5000
    #: Lambda ``Errors`` per period at or above which a function's error alarm breaches.
    lambda_errors_threshold: int = 1
    #: Lambda ``Throttles`` per period at or above which a function's throttle alarm breaches.
    lambda_throttles_threshold: int = 1
    #: DynamoDB throttle events / throttled requests per period at or above which a table alarm breaches.
    dynamodb_throttles_threshold: int = 1
    #: Age of the oldest message on a work queue, seconds, above which processing counts as stuck.
    queue_oldest_message_age_seconds: int = 300
    #: Age of the oldest message on a dead-letter queue, seconds, that escalates it (before SQS would drop it).
    dlq_oldest_message_age_seconds: int = 259200
    #: Minutes between two runs of the failover orchestrator's heartbeat / peer probe.
    probe_interval_minutes: int = 1
    #: Requests per second API Gateway lets through per region (every method) before answering 429.
    #: Keep it below what the functions' reserved concurrency can serve, so overload becomes
    #: retryable 429s at the edge instead of 5xx that count against the region's health.
    api_throttling_rate_limit: int = 50
    #: Requests API Gateway lets through at once above the steady rate (token bucket size).
    api_throttling_burst_limit: int = 20
    #: Requests one client IP may send in 5 minutes before the WAF blocks it.
    waf_rate_limit: int = 2000
    #: Average API latency, ms, above which a region counts as unhealthy for DNS failover.
    api_latency_threshold_ms: int = 2000
    #: Fraction of API requests answered 5xx above which a region counts as unhealthy for DNS failover.
    api_5xx_rate_threshold: float = 0.05
    #: Seconds API Gateway caches an authorizer answer per ``Authorization`` header (0: no cache). A
    #: revoked key keeps working at most this long plus replication in each region.
    authorizer_cache_ttl_seconds: int = 300

    @property
    def regions(self) -> tuple[str, str]:
        """Primary first, then secondary: the order stacks are built and deployed in."""
        return (self.primary_region, self.secondary_region)

    def is_primary(self, region: str) -> bool:
        """Whether ``region`` is the active (PRIMARY) side."""
        return region == self.primary_region

    @property
    def zone_name(self) -> str:
        """The deployment's hosted zone: ``<suffix>.<domainName>``."""
        return f"{self.environment_suffix}.{self.domain_name}"

    def regional_host(self, region: str) -> str:
        """A region's own API name, ``api-<region>.<zone>``: the first domain name of its certificate."""
        return f"api-{region}.{self.zone_name}"


# context key -> (environment variable, parser)
def _as_str(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _as_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    if isinstance(value, list | tuple):
        return tuple(str(item).strip() for item in value)
    raise ConfigError("alertEmails", value, "must be a list or a comma-separated string")


def _as_mapping(key: str, value: Any) -> dict[str, str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(key, value, f"must be a JSON object of region to CIDR ({exc.msg})") from None
    if not isinstance(value, Mapping):
        raise ConfigError(key, value, "must be an object of region to CIDR")
    return {str(k): str(v) for k, v in value.items()}


def _as_zone_mapping(key: str, value: Any) -> dict[str, tuple[str, ...]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(key, value, f"must be a JSON object of region to zone ID list ({exc.msg})") from None
    if not isinstance(value, Mapping) or not all(isinstance(v, list | tuple) for v in value.values()):
        raise ConfigError(key, value, 'must be an object of region to zone ID list, e.g. {"us-east-1": ["use1-az1"]}')
    return {str(k): tuple(str(z).strip() for z in v) for k, v in value.items()}


def _as_fraction(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(key, value, "must be a number between 0 and 1")
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ConfigError(key, value, "must be a number between 0 and 1") from None
    if not 0 < number <= 1:
        raise ConfigError(key, number, "must be a fraction above 0 and at most 1 (0.05 is 5%)")
    return number


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no"}:
        return False
    raise ConfigError(key, value, "must be true or false")


def _as_int(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ConfigError(key, value, "must be a whole number")
    try:
        return int(str(value).strip())
    except ValueError:
        raise ConfigError(key, value, "must be a whole number") from None


#: context key, environment variable, dataclass field
KEYS: tuple[tuple[str, str, str], ...] = (
    ("environmentSuffix", "ENVIRONMENT_SUFFIX", "environment_suffix"),
    ("primaryRegion", "PRIMARY_REGION", "primary_region"),
    ("secondaryRegion", "SECONDARY_REGION", "secondary_region"),
    ("witnessRegion", "WITNESS_REGION", "witness_region"),
    ("domainName", "DOMAIN_NAME", "domain_name"),
    ("alertEmails", "ALERT_EMAILS", "alert_emails"),
    ("vpcCidrs", "VPC_CIDRS", "vpc_cidrs"),
    ("availabilityZoneIds", "AVAILABILITY_ZONE_IDS", "availability_zone_ids"),
    ("lambdaReservedConcurrency", "LAMBDA_RESERVED_CONCURRENCY", "lambda_reserved_concurrency"),
    ("lambdaMemoryMb", "LAMBDA_MEMORY_MB", "lambda_memory_mb"),
    ("lambdaTimeoutSeconds", "LAMBDA_TIMEOUT_SECONDS", "lambda_timeout_seconds"),
    ("processingTimeoutSeconds", "PROCESSING_TIMEOUT_SECONDS", "processing_timeout_seconds"),
    ("sqsMaxReceiveCount", "SQS_MAX_RECEIVE_COUNT", "sqs_max_receive_count"),
    ("sqsBatchSize", "SQS_BATCH_SIZE", "sqs_batch_size"),
    ("sqsMaxBatchingWindowSeconds", "SQS_MAX_BATCHING_WINDOW_SECONDS", "sqs_max_batching_window_seconds"),
    ("heartbeatStaleSeconds", "HEARTBEAT_STALE_SECONDS", "heartbeat_stale_seconds"),
    ("leaseSeconds", "LEASE_SECONDS", "lease_seconds"),
    ("leaseSafetyMarginSeconds", "LEASE_SAFETY_MARGIN_SECONDS", "lease_safety_margin_seconds"),
    ("pendingSweepAgeSeconds", "PENDING_SWEEP_AGE_SECONDS", "pending_sweep_age_seconds"),
    ("pendingAlarmAgeSeconds", "PENDING_ALARM_AGE_SECONDS", "pending_alarm_age_seconds"),
    ("logRetentionDays", "LOG_RETENTION_DAYS", "log_retention_days"),
    ("healthCheckFailureThreshold", "HEALTH_CHECK_FAILURE_THRESHOLD", "health_check_failure_threshold"),
    ("alarmPeriodSeconds", "ALARM_PERIOD_SECONDS", "alarm_period_seconds"),
    ("alarmEvaluationPeriods", "ALARM_EVALUATION_PERIODS", "alarm_evaluation_periods"),
    ("apiP99LatencyThresholdMs", "API_P99_LATENCY_THRESHOLD_MS", "api_p99_latency_threshold_ms"),
    ("lambdaErrorsThreshold", "LAMBDA_ERRORS_THRESHOLD", "lambda_errors_threshold"),
    ("lambdaThrottlesThreshold", "LAMBDA_THROTTLES_THRESHOLD", "lambda_throttles_threshold"),
    ("dynamodbThrottlesThreshold", "DYNAMODB_THROTTLES_THRESHOLD", "dynamodb_throttles_threshold"),
    ("queueOldestMessageAgeSeconds", "QUEUE_OLDEST_MESSAGE_AGE_SECONDS", "queue_oldest_message_age_seconds"),
    ("dlqOldestMessageAgeSeconds", "DLQ_OLDEST_MESSAGE_AGE_SECONDS", "dlq_oldest_message_age_seconds"),
    ("probeIntervalMinutes", "PROBE_INTERVAL_MINUTES", "probe_interval_minutes"),
    ("apiThrottlingRateLimit", "API_THROTTLING_RATE_LIMIT", "api_throttling_rate_limit"),
    ("apiThrottlingBurstLimit", "API_THROTTLING_BURST_LIMIT", "api_throttling_burst_limit"),
    ("wafRateLimit", "WAF_RATE_LIMIT", "waf_rate_limit"),
    ("apiLatencyThresholdMs", "API_LATENCY_THRESHOLD_MS", "api_latency_threshold_ms"),
    ("api5xxRateThreshold", "API_5XX_RATE_THRESHOLD", "api_5xx_rate_threshold"),
    ("manageApiGatewayAccount", "MANAGE_API_GATEWAY_ACCOUNT", "manage_api_gateway_account"),
    ("authorizerCacheTtlSeconds", "AUTHORIZER_CACHE_TTL_SECONDS", "authorizer_cache_ttl_seconds"),
)

#: Whole-number fields and the inclusive range AWS (or safety) allows, with the reason shown on error.
INT_RANGES: Mapping[str, tuple[int, int, str]] = {
    "lambda_memory_mb": (128, 10240, "Lambda accepts 128 to 10240 MB"),
    "lambda_timeout_seconds": (1, 28, "must stay below API Gateway's 29 s integration timeout"),
    # 6x this is the queue's visibility timeout, which SQS caps at 43200 s; Lambda caps at 900 s.
    "processing_timeout_seconds": (1, 900, "Lambda accepts 1 to 900 s"),
    "sqs_max_receive_count": (1, 1000, "SQS accepts 1 to 1000"),
    "sqs_batch_size": (1, 10000, "SQS event source mappings accept 1 to 10000"),
    "sqs_max_batching_window_seconds": (0, 300, "Lambda accepts 0 to 300 s"),
    # Below two missed one-minute heartbeats a slow scheduler would look like a dead region.
    "heartbeat_stale_seconds": (90, 3600, "below 90 s a late heartbeat looks like a failed region"),
    # CloudWatch caps period x evaluation periods at one day; an hour keeps detection meaningful.
    "alarm_period_seconds": (60, 3600, "CloudWatch alarm periods from 1 minute to 1 hour"),
    "alarm_evaluation_periods": (1, 10, "1 to 10 periods keeps detection within minutes"),
    "api_p99_latency_threshold_ms": (100, 29000, "between 100 ms and API Gateway's 29 s timeout"),
    "lambda_errors_threshold": (1, 1_000_000, "a count of errors per period, at least 1"),
    "lambda_throttles_threshold": (1, 1_000_000, "a count of throttles per period, at least 1"),
    "dynamodb_throttles_threshold": (1, 1_000_000, "a count of throttle events per period, at least 1"),
    "queue_oldest_message_age_seconds": (60, 86400, "between a minute and a day"),
    # SQS keeps a message at most 14 days: the escalation must come before it is dropped.
    "dlq_oldest_message_age_seconds": (3600, 1_123_200, "between an hour and 13 days, before SQS drops it"),
    "probe_interval_minutes": (1, 10, "EventBridge schedules from 1 to 10 minutes"),
    # The same ranges as lambdas/payments_common/config.py; the rules between keys are in _validate.
    "lease_seconds": (60, 900, "a lease from 1 to 15 minutes"),
    "lease_safety_margin_seconds": (10, 600, "a margin from 10 s to 10 minutes"),
    "pending_sweep_age_seconds": (60, 86400, "between a minute and a day"),
    "pending_alarm_age_seconds": (60, 86400, "between a minute and a day"),
    "api_throttling_rate_limit": (1, 10000, "API Gateway's default account limit is 10000 requests/s"),
    "api_throttling_burst_limit": (1, 5000, "API Gateway's default account burst is 5000"),
    "waf_rate_limit": (10, 2_000_000_000, "WAF rate-based rules accept 10 to 2000000000 per 5 minutes"),
    # Above API Gateway's 29 s integration timeout the alarm could never fire.
    "api_latency_threshold_ms": (100, 29000, "between 100 ms and API Gateway's 29 s timeout"),
    "authorizer_cache_ttl_seconds": (0, 3600, "API Gateway caches authorizer answers 0 (off) to 3600 s"),
}
INT_FIELDS = frozenset(
    {"lambda_reserved_concurrency", "log_retention_days", "health_check_failure_threshold", *INT_RANGES}
)

#: Retention values CloudWatch Logs accepts.
LOG_RETENTION_CHOICES = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


def read_context(path: Path = CDKTF_JSON, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``context`` of ``cdktf.json``, plus what the cdktf CLI passes in ``CDKTF_CONTEXT_JSON``."""
    environ = os.environ if environ is None else environ
    context: dict[str, Any] = dict(json.loads(path.read_text()).get("context", {}))
    cli_context = environ.get("CDKTF_CONTEXT_JSON")
    if cli_context:
        context.update({k: v for k, v in json.loads(cli_context).items() if k in {c for c, _, _ in KEYS}})
    return context


def load_config(context: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Merge context and environment, parse, validate; raise :class:`ConfigError` on the first bad value."""
    environ = os.environ if environ is None else environ
    context = read_context(environ=environ) if context is None else context
    raw: dict[str, tuple[str, Any]] = {}
    for ctx_key, env_key, attr in KEYS:
        if env_key in environ and environ[env_key] != "":
            raw[attr] = (env_key, environ[env_key])
        elif ctx_key in context:
            raw[attr] = (ctx_key, context[ctx_key])

    values: dict[str, Any] = {}
    for attr, (key, value) in raw.items():
        if attr == "alert_emails":
            values[attr] = _as_list(value)
        elif attr == "vpc_cidrs":
            values[attr] = _as_mapping(key, value)
        elif attr == "availability_zone_ids":
            values[attr] = _as_zone_mapping(key, value)
        elif attr in INT_FIELDS:
            values[attr] = _as_int(key, value)
        elif attr == "api_5xx_rate_threshold":
            values[attr] = _as_fraction(key, value)
        elif attr == "manage_api_gateway_account":
            values[attr] = _as_bool(key, value)
        else:
            values[attr] = _as_str(value).strip()
    config = Config(**values)
    _validate(config, {attr: key for attr, (key, _) in raw.items()})
    return config


def _validate(config: Config, source: Mapping[str, str]) -> None:
    """Check every rule; ``source`` maps a field to the key it was read from, for the message."""

    def key(attr: str) -> str:
        return source.get(attr, attr)

    suffix = config.environment_suffix
    if not SUFFIX_RE.match(suffix):
        raise ConfigError(
            key("environment_suffix"),
            suffix,
            "use lowercase letters, digits and '-', starting and ending with a letter or digit",
        )
    if len(suffix) > MAX_SUFFIX_LENGTH:
        raise ConfigError(
            key("environment_suffix"),
            suffix,
            f"at most {MAX_SUFFIX_LENGTH} characters, so every generated name stays inside its AWS limit",
        )
    for attr in ("primary_region", "secondary_region"):
        region = getattr(config, attr)
        if region not in KNOWN_REGIONS:
            raise ConfigError(key(attr), region, f"must be one of {', '.join(sorted(KNOWN_REGIONS))}")
    if config.primary_region == config.secondary_region:
        raise ConfigError(key("secondary_region"), config.secondary_region, "must differ from the primary region")
    if config.witness_region not in KNOWN_REGIONS:
        raise ConfigError(
            key("witness_region"), config.witness_region, f"must be one of {', '.join(sorted(KNOWN_REGIONS))}"
        )
    if config.witness_region in config.regions:
        raise ConfigError(
            key("witness_region"),
            config.witness_region,
            "must differ from the primary and the secondary region (the witness is the third copy of the lease)",
        )
    if not DOMAIN_RE.match(config.domain_name):
        raise ConfigError(
            key("domain_name"), config.domain_name, "must be a lowercase DNS name such as payments.example.com"
        )
    if not config.alert_emails:
        raise ConfigError(key("alert_emails"), list(config.alert_emails), "at least one e-mail address is required")
    for email in config.alert_emails:
        if not EMAIL_RE.match(email):
            raise ConfigError(key("alert_emails"), email, "must be an e-mail address such as oncall@example.com")
    _validate_cidrs(config, key("vpc_cidrs"))
    _validate_zones(config, key("availability_zone_ids"))
    if not 1 <= config.lambda_reserved_concurrency <= 1000:
        raise ConfigError(
            key("lambda_reserved_concurrency"), config.lambda_reserved_concurrency, "must be between 1 and 1000"
        )
    for attr, (low, high, reason) in INT_RANGES.items():
        value = getattr(config, attr)
        if not low <= value <= high:
            raise ConfigError(key(attr), value, f"must be between {low} and {high} ({reason})")
    if config.sqs_batch_size > 10 and config.sqs_max_batching_window_seconds < 1:
        raise ConfigError(
            key("sqs_batch_size"),
            config.sqs_batch_size,
            "more than 10 messages per batch needs sqsMaxBatchingWindowSeconds >= 1",
        )
    if config.log_retention_days not in LOG_RETENTION_CHOICES:
        raise ConfigError(
            key("log_retention_days"),
            config.log_retention_days,
            f"must be one of the CloudWatch Logs values {LOG_RETENTION_CHOICES}",
        )
    if config.alarm_period_seconds % 60:
        raise ConfigError(
            key("alarm_period_seconds"),
            config.alarm_period_seconds,
            "must be a multiple of 60 (the AWS metrics alarmed on are published per minute)",
        )
    if config.heartbeat_stale_seconds < 3 * 60 * config.probe_interval_minutes:
        raise ConfigError(
            key("heartbeat_stale_seconds"),
            config.heartbeat_stale_seconds,
            f"must be at least 3 probe intervals ({3 * 60 * config.probe_interval_minutes} s), "
            "so one late heartbeat never looks like a failed region",
        )
    _validate_lease(config, key)
    if not 1 <= config.health_check_failure_threshold <= 10:
        raise ConfigError(
            key("health_check_failure_threshold"),
            config.health_check_failure_threshold,
            "Route 53 accepts 1 to 10",
        )
    _validate_dns_names(config, key("domain_name"))


def _validate_dns_names(config: Config, key: str) -> None:
    """Names built from the domain: the certificate's first domain name and the longest record name."""
    for region in config.regions:
        host = config.regional_host(region)
        if len(host) > CERTIFICATE_DOMAIN_LIMIT:
            raise ConfigError(
                key,
                config.domain_name,
                f"the certificate name {host} is {len(host)} characters, ACM allows {CERTIFICATE_DOMAIN_LIMIT}: "
                f"shorten domainName (or environmentSuffix) by {len(host) - CERTIFICATE_DOMAIN_LIMIT}",
            )
        if len(host) + ACM_VALIDATION_PREFIX_LENGTH > DNS_NAME_LIMIT:
            raise ConfigError(key, config.domain_name, f"DNS names under it would exceed {DNS_NAME_LIMIT} characters")


def _validate_lease(config: Config, key: Any) -> None:
    """The lease rules of docs/design.md ("Timings")."""
    interval = 60 * config.probe_interval_minutes
    if config.lease_seconds < 2 * interval + 10:
        raise ConfigError(
            key("lease_seconds"),
            config.lease_seconds,
            f"must be at least two renewal intervals + 10 s ({2 * interval + 10} s), so one missed renewal never "
            "stops the active region",
        )
    longest = max(config.processing_timeout_seconds, config.lambda_timeout_seconds)
    if config.lease_safety_margin_seconds < longest + 10:
        raise ConfigError(
            key("lease_safety_margin_seconds"),
            config.lease_safety_margin_seconds,
            f"must be at least the longest function timeout + 10 s ({longest + 10} s): a request or payment attempt "
            "still running when the old lease ends must finish before the standby starts",
        )
    if config.pending_alarm_age_seconds < config.pending_sweep_age_seconds:
        raise ConfigError(
            key("pending_alarm_age_seconds"),
            config.pending_alarm_age_seconds,
            "must not be below pendingSweepAgeSeconds: alarm only on payments the sweeper already re-enqueued",
        )


def promotion_worst_case_seconds(config: Config) -> int:
    """Region down -> standby active, worst case after the last renewal (docs/design.md, "Timings")."""
    interval = 60 * config.probe_interval_minutes
    return interval + config.lease_seconds + config.lease_safety_margin_seconds + interval


def _validate_cidrs(config: Config, key: str) -> None:
    networks = []
    for region in config.regions:
        cidr = config.vpc_cidrs.get(region)
        if cidr is None:
            raise ConfigError(key, dict(config.vpc_cidrs), f"needs a CIDR for region {region}")
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError as exc:
            raise ConfigError(key, cidr, f"must be an IPv4 network such as 10.10.0.0/16 ({exc})") from None
        if network.version != 4 or not network.is_private or not 16 <= network.prefixlen <= 20:
            raise ConfigError(key, cidr, "must be a private IPv4 network from /16 to /20")
        networks.append(network)
    if networks[0].overlaps(networks[1]):
        raise ConfigError(key, dict(config.vpc_cidrs), "the regions' CIDRs must not overlap")


def _validate_zones(config: Config, key: str) -> None:
    for region in config.regions:
        zones = config.availability_zone_ids.get(region)
        if zones is None:
            raise ConfigError(key, dict(config.availability_zone_ids), f"needs zone IDs for region {region}")
        pattern = re.compile(rf"^{REGION_CODES[region]}-az[0-9]+$")
        bad = [zone for zone in zones if not pattern.match(zone)]
        if bad:
            raise ConfigError(key, bad, f"must be zone IDs of {region}, such as {REGION_CODES[region]}-az1")
        if len(set(zones)) != len(zones) or not 2 <= len(zones) <= 4:
            raise ConfigError(key, list(zones), f"{region} needs 2 to 4 distinct zone IDs")
