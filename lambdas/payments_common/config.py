"""Settings from the environment variables the compute layer sets (docs/design.md).

Read once at import (``SETTINGS = config.load()``); a missing or bad variable raises
:class:`ConfigError` naming it, so a misconfigured function fails at init with a clear
message instead of misbehaving on the first payment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

#: Variables every function needs.
REQUIRED = (
    "AWS_REGION",
    "PRIMARY_REGION",
    "SECONDARY_REGION",
    "ENVIRONMENT_SUFFIX",
    "TRANSACTIONS_TABLE",
    "IDEMPOTENCY_TABLE",
    "CONTROL_TABLE",
)
#: Below two missed one-minute probes a slow scheduler would look like a dead region.
MIN_HEARTBEAT_STALE_SECONDS = 90
MAX_HEARTBEAT_STALE_SECONDS = 3600
DEFAULT_HEARTBEAT_STALE_SECONDS = 180
#: Lease protocol (docs/design.md); the infrastructure config enforces the cross-key rules.
DEFAULT_LEASE_SECONDS = 130
DEFAULT_LEASE_SAFETY_MARGIN_SECONDS = 40
DEFAULT_PENDING_SWEEP_AGE_SECONDS = 120
DEFAULT_PENDING_ALARM_AGE_SECONDS = 600


class ConfigError(RuntimeError):
    """An environment variable is missing or invalid; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Everything a function reads from its environment."""

    #: Region this copy of the function runs in (``AWS_REGION``, set by Lambda).
    region: str
    primary_region: str
    secondary_region: str
    environment_suffix: str
    transactions_table: str
    idempotency_table: str
    control_table: str
    #: Lambda's own function name; Powertools idempotency keys start with it.
    function_name: str
    processing_queue_url: str | None = None
    #: Merchant API keys (the authorizer's only table).
    merchants_table: str | None = None
    alert_topic_arn: str | None = None
    processing_function_name: str | None = None
    #: The lease witness (failover orchestrator only): a plain table in a third region.
    witness_table: str | None = None
    witness_region: str | None = None
    heartbeat_stale_seconds: int = DEFAULT_HEARTBEAT_STALE_SECONDS
    #: How long a renewal keeps the holder active (its own clock).
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    #: What the standby waits beyond the lease, by its own clock, before it promotes itself.
    lease_safety_margin_seconds: int = DEFAULT_LEASE_SAFETY_MARGIN_SECONDS
    #: The sweeper re-enqueues PENDING payments older than this.
    pending_sweep_age_seconds: int = DEFAULT_PENDING_SWEEP_AGE_SECONDS
    #: The sweeper counts PENDING payments older than this (the pending-payments alarm).
    pending_alarm_age_seconds: int = DEFAULT_PENDING_ALARM_AGE_SECONDS

    @property
    def regions(self) -> tuple[str, str]:
        """Primary first, then secondary."""
        return (self.primary_region, self.secondary_region)

    def other_region(self, region: str) -> str:
        """The other region of the pair."""
        return self.secondary_region if region == self.primary_region else self.primary_region

    @property
    def peer_region(self) -> str:
        """The region this function does not run in."""
        return self.other_region(self.region)

    def require(self, name: str) -> str:
        """An optional setting this function cannot work without (e.g. ``processing_queue_url``)."""
        value = getattr(self, name)
        if not value:
            raise ConfigError(f"{name.upper()} must be set for this function")
        return value


def _int(environ: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: must be a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r}: must be between {low} and {high}")
    return value


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse and check the environment; raise :class:`ConfigError` on the first problem."""
    environ = os.environ if environ is None else environ
    missing = [name for name in REQUIRED if not environ.get(name, "").strip()]
    if missing:
        raise ConfigError(f"missing environment variable(s): {', '.join(missing)}")
    values = {name: environ[name].strip() for name in REQUIRED}
    if values["PRIMARY_REGION"] == values["SECONDARY_REGION"]:
        raise ConfigError("SECONDARY_REGION must differ from PRIMARY_REGION")
    if values["AWS_REGION"] not in (values["PRIMARY_REGION"], values["SECONDARY_REGION"]):
        raise ConfigError(f"AWS_REGION={values['AWS_REGION']!r} is neither PRIMARY_REGION nor SECONDARY_REGION")
    witness_region = environ.get("WITNESS_REGION", "").strip() or None
    if witness_region in (values["PRIMARY_REGION"], values["SECONDARY_REGION"]):
        raise ConfigError(f"WITNESS_REGION={witness_region!r} must differ from PRIMARY_REGION and SECONDARY_REGION")
    stale = _int(environ, "HEARTBEAT_STALE_SECONDS", MIN_HEARTBEAT_STALE_SECONDS, MAX_HEARTBEAT_STALE_SECONDS)
    lease = _int(environ, "LEASE_SECONDS", 60, 900)
    margin = _int(environ, "LEASE_SAFETY_MARGIN_SECONDS", 10, 600)
    sweep_age = _int(environ, "PENDING_SWEEP_AGE_SECONDS", 60, 86400)
    alarm_age = _int(environ, "PENDING_ALARM_AGE_SECONDS", 60, 86400)
    return Settings(
        region=values["AWS_REGION"],
        primary_region=values["PRIMARY_REGION"],
        secondary_region=values["SECONDARY_REGION"],
        environment_suffix=values["ENVIRONMENT_SUFFIX"],
        transactions_table=values["TRANSACTIONS_TABLE"],
        idempotency_table=values["IDEMPOTENCY_TABLE"],
        control_table=values["CONTROL_TABLE"],
        function_name=environ.get("AWS_LAMBDA_FUNCTION_NAME", "").strip() or "local",
        processing_queue_url=environ.get("PROCESSING_QUEUE_URL", "").strip() or None,
        merchants_table=environ.get("MERCHANTS_TABLE", "").strip() or None,
        alert_topic_arn=environ.get("ALERT_TOPIC_ARN", "").strip() or None,
        processing_function_name=environ.get("PROCESSING_FUNCTION_NAME", "").strip() or None,
        witness_table=environ.get("WITNESS_TABLE", "").strip() or None,
        witness_region=witness_region,
        heartbeat_stale_seconds=stale if stale is not None else DEFAULT_HEARTBEAT_STALE_SECONDS,
        lease_seconds=lease if lease is not None else DEFAULT_LEASE_SECONDS,
        lease_safety_margin_seconds=margin if margin is not None else DEFAULT_LEASE_SAFETY_MARGIN_SECONDS,
        pending_sweep_age_seconds=sweep_age if sweep_age is not None else DEFAULT_PENDING_SWEEP_AGE_SECONDS,
        pending_alarm_age_seconds=alarm_age if alarm_age is not None else DEFAULT_PENDING_ALARM_AGE_SECONDS,
    )
