"""``GET /health``: what Route 53 needs to send clients to the active region (docs/design.md).

The answer depends on the region's state in its own replica, by its own clock: active -> 200;
standby -> 200 in the secondary (it can be promoted, so Route 53 may fail over to it) but 503 in
the primary (Route 53 answers the PRIMARY record whenever its check is healthy, so a primary
that is not active must look unhealthy); lapsed, unhealthy, no lease or control table
unreachable -> 503. It reads the control table on every call (no cache) with short timeouts.
"""

from __future__ import annotations

from typing import Any

from payments_common import clients, config, observability, responses
from payments_common.control import ACTIVE, STANDBY, UNKNOWN, epoch_ms, read_healthy, read_lease, region_state
from payments_common.timeutil import utc_now

SETTINGS = config.load()
logger = observability.logger()
#: Route 53 waits about 2 s for the answer: fail fast rather than time out.
DYNAMODB = clients.client("dynamodb", max_attempts=2, connect_timeout=1.0, read_timeout=1.0)


def check() -> tuple[int, dict[str, Any]]:
    """(status code, body) of the health answer."""
    region = SETTINGS.region
    try:
        lease = read_lease(DYNAMODB, SETTINGS.control_table)
        healthy = read_healthy(DYNAMODB, SETTINGS.control_table, region)
    except Exception:
        logger.exception("health check could not read the control table")
        return 503, {"status": UNKNOWN, "region": region, "reason": "control table unreachable"}
    state = region_state(lease, healthy, region, epoch_ms(utc_now()))
    body = {"status": state, "region": region, "epoch": lease.epoch, "active_region": lease.holder or None}
    if state == ACTIVE or (state == STANDBY and region == SETTINGS.secondary_region):
        return 200, body
    return 503, body


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (API Gateway REST proxy integration)."""
    status, body = check()
    return responses.json_response(status, body)
