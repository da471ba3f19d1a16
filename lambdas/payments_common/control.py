"""The control table (``pk`` string key): fence flags, heartbeats and failover events.

Items (docs/design.md):

- ``fence#<region>``: ``fenced`` (bool), ``reason``, ``since`` (when the fence went up),
  ``changed_at`` (time of the event behind the last change: alarm state-change time,
  heartbeat staleness time or operator's clock), ``changed_by``, ``event`` (failover record).
  ``changed_at`` only moves forward, so an older, late notification cannot undo a newer decision.
- ``heartbeat#<region>``: ``at`` (ISO time), ``expires_at`` (TTL, epoch seconds).
- ``failover#<region>#<source>#<event time>``: one record per failover (or failback) event.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def fence_key(region: str) -> str:
    """``fence#<region>``."""
    return f"fence#{region}"


def heartbeat_key(region: str) -> str:
    """``heartbeat#<region>``."""
    return f"heartbeat#{region}"


def failover_key(region: str, source: str, event_time: str) -> str:
    """``failover#<region>#<source>#<event time>``: the same event always maps to the same record."""
    return f"failover#{region}#{source}#{event_time}"


@dataclass(frozen=True)
class Fence:
    """A region's fence flag; a missing item means not fenced."""

    region: str
    fenced: bool = False
    reason: str = ""
    since: str | None = None
    changed_at: str | None = None
    changed_by: str = ""

    @classmethod
    def from_item(cls, region: str, item: dict[str, Any] | None) -> Fence:
        """From a low-level DynamoDB item (or ``None``)."""
        if not item:
            return cls(region)
        return cls(
            region=region,
            fenced=item.get("fenced", {}).get("BOOL", False) is True,
            reason=item.get("reason", {}).get("S", ""),
            since=item.get("since", {}).get("S"),
            changed_at=item.get("changed_at", {}).get("S"),
            changed_by=item.get("changed_by", {}).get("S", ""),
        )


def read_fence(client: Any, table: str, region: str) -> Fence:
    """A strongly consistent read of ``fence#<region>`` in the client's region."""
    response = client.get_item(TableName=table, Key={"pk": {"S": fence_key(region)}}, ConsistentRead=True)
    return Fence.from_item(region, response.get("Item"))


class FenceCache:
    """Fence lookups cached for a few seconds: one read per environment per TTL, not per request.

    A fence takes at most ``ttl_seconds`` (plus replication) to be honoured; the 503 it causes
    is retried by clients, so a few seconds of delay loses nothing.
    """

    def __init__(
        self,
        client: Any,
        table: str,
        ttl_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client, self._table, self._ttl, self._clock = client, table, ttl_seconds, clock
        self._entries: dict[str, tuple[float, Fence]] = {}

    def get(self, region: str) -> Fence:
        """The fence of ``region``, from cache when fresh; errors propagate (callers fail closed)."""
        now = self._clock()
        cached = self._entries.get(region)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        fence = read_fence(self._client, self._table, region)
        self._entries[region] = (now, fence)
        return fence

    def clear(self) -> None:
        """Forget every cached lookup (tests, or after this environment changed a fence)."""
        self._entries.clear()
