"""Global-table replication between the regions' tables: lag, stall, partition, last writer wins.

moto has no global tables, so each region has its own table of the same name. Every write the
code makes is captured by :mod:`.world` (with the item's new image and the write time) and
handed to :meth:`Replicator.record`; :meth:`Replicator.deliver` applies due changes to the other
regions, in write order, unless the link is stalled or the target is down. A change only lands
when it is newer than the target's own last write of that item: last writer wins per item, as
DynamoDB global tables resolve concurrent writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Typical global-table replication latency (AWS documents "usually under a second").
DEFAULT_LAG_S = 1.0

#: apply(table, region, key, image or None for a delete)
Apply = Callable[[str, str, dict[str, Any], dict[str, Any] | None], None]


@dataclass
class Change:
    """One item write on its way from ``source`` to ``target``."""

    table: str
    source: str
    target: str
    key: dict[str, Any]
    image: dict[str, Any] | None
    written_at: float
    due_at: float

    @property
    def item_id(self) -> str:
        """A stable identity of the item (its key)."""
        return json.dumps(self.key, sort_keys=True)


class Replicator:
    """Replication links between every pair of regions of each table."""

    def __init__(self, apply: Apply, lag_s: float = DEFAULT_LAG_S) -> None:
        self._apply = apply
        self.lag_s = lag_s
        self.pending: list[Change] = []
        self.stalled: set[tuple[str, str]] = set()
        #: (region, table, item id) -> time of the write that region holds.
        self.last_write: dict[tuple[str, str, str], float] = {}
        self.applied = 0
        self.dropped_older = 0

    def stall(self, source: str, target: str, stalled: bool = True) -> None:
        """Stop (or resume) the link ``source -> target``; changes queue up meanwhile."""
        (self.stalled.add if stalled else self.stalled.discard)((source, target))

    def record(
        self, table: str, source: str, targets: tuple[str, ...], key: dict[str, Any], image: Any, at: float
    ) -> None:
        """A local write in ``source``: remember its time and queue it for the other regions."""
        item_id = json.dumps(key, sort_keys=True)
        self.last_write[(source, table, item_id)] = at
        for target in targets:
            if target != source:
                self.pending.append(Change(table, source, target, key, image, at, at + self.lag_s))

    def deliver(self, now: float, down: frozenset[str] | set[str] = frozenset()) -> int:
        """Apply every change that is due and whose regions are both up; returns how many landed.

        A change written in a region before it went down stays in that region's outbound stream
        and leaves when the region is back.
        """
        landed = 0
        keep: list[Change] = []
        blocked: set[tuple[str, str]] = set()
        for change in sorted(self.pending, key=lambda c: c.written_at):
            link = (change.source, change.target)
            if change.due_at > now or link in self.stalled or set(link) & down or link in blocked:
                keep.append(change)
                blocked.add(link)  # in order: nothing overtakes a waiting change on its link
                continue
            slot = (change.target, change.table, change.item_id)
            if self.last_write.get(slot, float("-inf")) <= change.written_at:
                self._apply(change.table, change.target, change.key, change.image)
                self.last_write[slot] = change.written_at
                landed += 1
            else:
                self.dropped_older += 1
        self.pending = keep
        self.applied += landed
        return landed

    def backlog(self, target: str, table: str | None = None) -> list[Change]:
        """Changes not yet applied in ``target`` (of one table, when given)."""
        return [c for c in self.pending if c.target == target and (table is None or c.table == table)]

    def lag_seconds(self, target: str, now: float) -> float:
        """Age of the oldest change not yet applied in ``target`` (0 when caught up)."""
        backlog = self.backlog(target)
        return max((now - c.written_at for c in backlog), default=0.0)
