"""Probe checks of the failover orchestrator: the replication canary and the region's own health.

Run once per probe (the one-minute schedule), after the heartbeat:

- **Replication canary.** Write ``canary#<this region>`` with a fresh token into this region's
  control table, then read it from the peer region's replica (strongly consistent, short
  timeouts) until the token arrives or :data:`CANARY_TIMEOUT_S` passes. The observed lag
  (write to first successful read, so an upper bound of the true lag by one read's round trip)
  is published as ``ReplicationCanaryLagMs``; a token that never arrives is published as the
  timeout, so the alarm at the 1 s budget fires on a stall as well as on slowness.
- **Own health.** ``GET`` this region's ``/health`` (``REGIONAL_HEALTH_URL``, the same URL the
  Route 53 checker uses), up to :data:`HEALTH_ATTEMPTS` times :data:`HEALTH_RETRY_S` apart (like
  Route 53's failure threshold, so one lost request is not a failure), and publish
  ``RegionHealthy`` 1 or 0. The holder of the lease hands it over when this fails: DNS is moving
  clients away from it at the same time (handler ``on_schedule``). Route 53's metrics exist only in
  us-east-1; this metric lives in the region itself, so the region alarms on its own topic even
  while us-east-1 is down.

Nothing here raises: a failed check is a metric (and a warning log), never a failed probe, so the
heartbeat and failover logic around it never depend on it.
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: Seconds the canary waits for its write to appear in the peer replica (3x the 1 s budget).
CANARY_TIMEOUT_S = 3.0
#: Seconds between two reads of the peer replica.
CANARY_POLL_INTERVAL_S = 0.1
#: Canary items expire a day after they were written (TTL).
CANARY_TTL_S = 24 * 3600
#: Seconds the own-health request may take; the Route 53 checker allows 4 s to connect, 2 s to answer.
HEALTH_TIMEOUT_S = 4.0
#: Attempts before the region counts unhealthy, and the pause between them (Route 53: 3 x 10 s).
HEALTH_ATTEMPTS = 3
HEALTH_RETRY_S = 5.0
#: Metric names (namespace and ``region``/``service`` dimensions from Powertools).
LAG_METRIC = "ReplicationCanaryLagMs"
HEALTH_METRIC = "RegionHealthy"


def canary_key(region: str) -> str:
    """The control-table key of ``region``'s canary item."""
    return f"canary#{region}"


@dataclass(frozen=True)
class CanaryResult:
    """What one canary run saw: the lag in ms (the timeout when ``seen`` is False)."""

    peer: str
    lag_ms: float
    seen: bool
    error: str | None = None


def replication_canary(
    local: Any,
    peer: Any,
    *,
    table: str,
    region: str,
    peer_region: str,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    timeout_s: float = CANARY_TIMEOUT_S,
) -> CanaryResult:
    """Write a token here, read it in ``peer_region``; the time until it shows there."""
    token = uuid.uuid4().hex
    key = {"pk": {"S": canary_key(region)}}
    written_at = wall_clock()
    try:
        local.put_item(
            TableName=table,
            Item={
                **key,
                "token": {"S": token},
                "written_at": {"N": f"{written_at:.3f}"},
                "expires_at": {"N": str(int(written_at) + CANARY_TTL_S)},
            },
        )
    except Exception as exc:  # this region's own table refused: no lag to measure, the timeout counts
        return CanaryResult(peer_region, timeout_s * 1000, seen=False, error=f"local write: {type(exc).__name__}")
    start = clock()
    error = None
    while True:
        try:
            item = peer.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
            if item and item.get("token", {}).get("S") == token:
                return CanaryResult(peer_region, (clock() - start) * 1000, seen=True)
        except Exception as exc:  # the peer may be the region that is down: its lag is the timeout
            error = f"peer read: {type(exc).__name__}"
        if clock() - start >= timeout_s:
            return CanaryResult(peer_region, timeout_s * 1000, seen=False, error=error)
        sleep(CANARY_POLL_INTERVAL_S)


def region_healthy(
    url: str,
    opener: Callable[..., Any] = urllib.request.urlopen,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = HEALTH_ATTEMPTS,
) -> bool:
    """Whether ``url`` (a region's ``/health``) answers 200 within :data:`HEALTH_TIMEOUT_S`, in ``attempts`` tries."""
    if not url.startswith("https://"):
        return False
    for attempt in range(attempts):
        if attempt:
            sleep(HEALTH_RETRY_S)
        if _answers_200(url, opener):
            return True
    return False


def _answers_200(url: str, opener: Callable[..., Any]) -> bool:
    try:
        request = urllib.request.Request(url, method="GET")  # noqa: S310 (https only, checked by the caller)
        with opener(request, timeout=HEALTH_TIMEOUT_S) as response:
            return response.status == 200
    except Exception:  # 503 (fenced, unavailable), DNS, TLS, timeout: all mean "not healthy"
        return False


def probe(
    local: Any,
    peers: Mapping[str, Any],
    *,
    table: str,
    region: str,
    health_url: str | None,
    metrics: Any,
    logger: Any,
    **canary_options: Any,
) -> dict[str, Any]:
    """Run both checks, publish their metrics (flushed here) and return a summary for the probe result."""
    summary: dict[str, Any] = {}
    for peer_region, peer in peers.items():
        result = replication_canary(local, peer, table=table, region=region, peer_region=peer_region, **canary_options)
        metrics.add_metric(name=LAG_METRIC, unit="Milliseconds", value=result.lag_ms)
        summary["replication_lag_ms"] = round(result.lag_ms, 1)
        summary["replication_seen"] = result.seen
        if not result.seen:
            logger.warning("canary not replicated in time", extra={"peer": peer_region, "error": result.error})
    if health_url:
        healthy = region_healthy(health_url, sleep=canary_options.get("sleep", time.sleep))
        metrics.add_metric(name=HEALTH_METRIC, unit="Count", value=1 if healthy else 0)
        summary["region_healthy"] = healthy
    metrics.flush_metrics()
    return summary
