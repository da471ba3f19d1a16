"""``GET /health``: 200 while this region can take payments, 503 when it is fenced or DynamoDB fails.

Route 53's HTTPS health check calls it, so it reads the control table on every call (no
cache) with short timeouts: a region whose DynamoDB is broken shows up as unhealthy.
"""

from __future__ import annotations

from typing import Any

from payments_common import clients, config, observability, responses
from payments_common.control import read_fence

SETTINGS = config.load()
logger = observability.logger()
#: Route 53 waits about 2 s for the answer: fail fast rather than time out.
DYNAMODB = clients.client("dynamodb", max_attempts=2, connect_timeout=1.0, read_timeout=1.0)


def check() -> tuple[int, dict[str, Any]]:
    """(status code, body) of the health answer."""
    try:
        fence = read_fence(DYNAMODB, SETTINGS.control_table, SETTINGS.region)
    except Exception:
        logger.exception("health check could not read the control table")
        return 503, {"status": "unavailable", "region": SETTINGS.region, "reason": "control table unreachable"}
    if fence.fenced:
        return 503, {"status": "fenced", "region": SETTINGS.region, "reason": fence.reason, "since": fence.since}
    return 200, {"status": "ok", "region": SETTINGS.region}


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (API Gateway REST proxy integration)."""
    status, body = check()
    return responses.json_response(status, body)
