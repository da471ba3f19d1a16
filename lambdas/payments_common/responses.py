"""API Gateway (REST, proxy integration) responses: JSON body, no caching, never a stack trace."""

from __future__ import annotations

import json
from typing import Any

#: Seconds a client should wait before retrying a 421 (region not active) or a 503 (transient failure).
RETRY_AFTER_SECONDS = 5

_BASE_HEADERS = {
    "Content-Type": "application/json",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A proxy-integration response with a JSON body."""
    return {
        "statusCode": status,
        "headers": {**_BASE_HEADERS, **(headers or {})},
        "body": json.dumps(body, separators=(",", ":"), sort_keys=True, default=str),
        "isBase64Encoded": False,
    }


def error(status: int, code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """``{"error": code, "message": ..., "field": ...}``; ``field`` names what was wrong."""
    body: dict[str, Any] = {"error": code, "message": message}
    if field is not None:
        body["field"] = field
    return json_response(status, body)


def unavailable(code: str, message: str, retry_after: int = RETRY_AFTER_SECONDS) -> dict[str, Any]:
    """503 with ``Retry-After``: the client may retry the same request (same idempotency key)."""
    response = error(503, code, message)
    response["headers"]["Retry-After"] = str(retry_after)
    return response


def not_active(region: str, retry_after: int = RETRY_AFTER_SECONDS) -> dict[str, Any]:
    """421 ``region_not_active`` + ``Retry-After``: this region is not the active one (docs/design.md).

    A 4xx on purpose: refusals of a standby must never count toward the 5xx alarms that steer DNS.
    Clients retry it with the same credential and the same ``Idempotency-Key``.
    """
    body = {
        "error": "region_not_active",
        "message": "this region is not the active region for payments, retry shortly",
        "region": region,
    }
    return json_response(421, body, headers={"Retry-After": str(retry_after)})
