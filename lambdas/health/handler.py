"""``GET /health``: what Route 53 needs to send clients to the active region (docs/design.md).

The answer depends on the region's state in its own replica, by its own clock: active -> 200;
standby -> 200 in the secondary (it can be promoted, so Route 53 may fail over to it) but 503 in
the primary (Route 53 answers the PRIMARY record whenever its check is healthy, so a primary
that is not active must look unhealthy); lapsed, unhealthy, no lease or control table
unreachable -> 503. A standby whose own orchestrator has not written its heartbeat for
``HEARTBEAT_STALE_SECONDS`` cannot promote itself, so it is unhealthy too. It reads the control
table on every call (no cache) with short timeouts.
"""

from __future__ import annotations

from typing import Any

from payments_common import clients, config, observability, responses
from payments_common.control import (
    ACTIVE,
    STANDBY,
    UNHEALTHY,
    UNKNOWN,
    epoch_ms,
    heartbeat_key,
    read_healthy,
    read_lease,
    region_state,
)
from payments_common.timeutil import parse_iso, utc_now

SETTINGS = config.load()
logger = observability.logger()
#: Route 53 waits about 2 s for the answer: fail fast rather than time out.
DYNAMODB = clients.client("dynamodb", max_attempts=2, connect_timeout=1.0, read_timeout=1.0)


def orchestrator_alive(now: Any) -> bool:
    """Whether this region's orchestrator wrote its heartbeat recently (its own clock): it can promote."""
    item = DYNAMODB.get_item(
        TableName=SETTINGS.control_table, Key={"pk": {"S": heartbeat_key(SETTINGS.region)}}, ConsistentRead=True
    ).get("Item")
    if not item or "at" not in item:
        return False
    return (now - parse_iso(item["at"]["S"])).total_seconds() <= SETTINGS.heartbeat_stale_seconds


def check() -> tuple[int, dict[str, Any]]:
    """(status code, body) of the health answer."""
    region = SETTINGS.region
    now = utc_now()
    try:
        lease = read_lease(DYNAMODB, SETTINGS.control_table)
        healthy = read_healthy(DYNAMODB, SETTINGS.control_table, region)
        state = region_state(lease, healthy, region, epoch_ms(now))
        if state == STANDBY and not orchestrator_alive(now):
            state = UNHEALTHY
    except Exception:
        logger.exception("health check could not read the control table")
        return 503, {"status": UNKNOWN, "region": region, "reason": "control table unreachable"}
    body = {"status": state, "region": region, "epoch": lease.epoch, "active_region": lease.holder or None}
    if state == ACTIVE or (state == STANDBY and region == SETTINGS.secondary_region):
        return 200, body
    return 503, body


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (API Gateway REST proxy integration)."""
    status, body = check()
    return responses.json_response(status, body)
