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
LAYER_ORDER: tuple[str, ...] = ("network", "data", "compute", "edge", "observability")
#: The one stack with local state: it creates the state bucket and lock table.
BOOTSTRAP = "bootstrap"

# Longest suffix that keeps every generated name inside its AWS limit; the
# tightest is an IAM role name (64): "failover-orchestrator-use2-" + suffix.
MAX_SUFFIX_LENGTH = 16
SUFFIX_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
DOMAIN_RE = re.compile(r"^(?=.{4,200}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
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
    #: Parent domain; the hosted zone is ``<suffix>.<domain_name>``.
    domain_name: str = "payments.example.com"
    #: Who is e-mailed by the alert topics.
    alert_emails: tuple[str, ...] = ("oncall@example.com",)
    #: One non-overlapping VPC CIDR per region.
    vpc_cidrs: Mapping[str, str] = field(
        default_factory=lambda: {"us-east-1": "10.10.0.0/16", "us-east-2": "10.20.0.0/16"}
    )
    #: Reserved concurrent executions for every function (>= 1, required by policy).
    lambda_reserved_concurrency: int = 10
    #: Days CloudWatch log groups keep data.
    log_retention_days: int = 365
    #: Consecutive failed Route 53 checks before a region counts as down.
    health_check_failure_threshold: int = 3

    @property
    def regions(self) -> tuple[str, str]:
        """Primary first, then secondary: the order stacks are built and deployed in."""
        return (self.primary_region, self.secondary_region)

    def is_primary(self, region: str) -> bool:
        """Whether ``region`` is the active (PRIMARY) side."""
        return region == self.primary_region


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
    ("domainName", "DOMAIN_NAME", "domain_name"),
    ("alertEmails", "ALERT_EMAILS", "alert_emails"),
    ("vpcCidrs", "VPC_CIDRS", "vpc_cidrs"),
    ("lambdaReservedConcurrency", "LAMBDA_RESERVED_CONCURRENCY", "lambda_reserved_concurrency"),
    ("logRetentionDays", "LOG_RETENTION_DAYS", "log_retention_days"),
    ("healthCheckFailureThreshold", "HEALTH_CHECK_FAILURE_THRESHOLD", "health_check_failure_threshold"),
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
        elif attr in {"lambda_reserved_concurrency", "log_retention_days", "health_check_failure_threshold"}:
            values[attr] = _as_int(key, value)
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
    if not 1 <= config.lambda_reserved_concurrency <= 1000:
        raise ConfigError(
            key("lambda_reserved_concurrency"), config.lambda_reserved_concurrency, "must be between 1 and 1000"
        )
    if config.log_retention_days not in LOG_RETENTION_CHOICES:
        raise ConfigError(
            key("log_retention_days"),
            config.log_retention_days,
            f"must be one of the CloudWatch Logs values {LOG_RETENTION_CHOICES}",
        )
    if not 1 <= config.health_check_failure_threshold <= 10:
        raise ConfigError(
            key("health_check_failure_threshold"),
            config.health_check_failure_threshold,
            "Route 53 accepts 1 to 10",
        )


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
