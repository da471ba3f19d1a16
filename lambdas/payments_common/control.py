"""The control table (``pk`` string key): the active-region lease and what the orchestrators observe.

The protocol is in docs/design.md ("One active region: the lease protocol"). Items:

- ``lease``: ``epoch`` (only grows), ``holder`` (the active region), ``valid_until`` (epoch ms on
  the holder's clock), ``seq`` (+1 per renewal), ``began_at``, ``reason``, ``renewed_at``,
  optional ``revoked_by`` (a standby that could not reach the holder asked it to stop).
- ``heartbeat#<region>``: ``at``, ``seq`` (+1 per probe).
- ``watch#<observer>``: when the observer (by its own clock) last saw the lease's
  ``(epoch, seq)`` and the peer's heartbeat ``seq`` change.
- ``health#<region>``: ``healthy`` (the region's composite alarm), ``changed_at``, ``reason``.
- ``failover#<region>#<source>#<event time>``: one audit record per handover or promotion.

Every function takes the DynamoDB client (and table) of the copy it reads or writes: the lease
lives in three copies (this region's replica, the peer's replica, the witness table in a third
region) and the orchestrator writes them directly, in the order the protocol requires; a write
counts when it succeeded on two of the three.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

LEASE_KEY = "lease"

#: Region states (docs/design.md, "States of a region").
ACTIVE, STANDBY, LAPSED, UNHEALTHY, UNKNOWN = "active", "standby", "lease_expired", "unhealthy", "unavailable"


def heartbeat_key(region: str) -> str:
    """``heartbeat#<region>``."""
    return f"heartbeat#{region}"


def watch_key(region: str) -> str:
    """``watch#<observer region>``."""
    return f"watch#{region}"


def health_key(region: str) -> str:
    """``health#<region>``."""
    return f"health#{region}"


def failover_key(region: str, source: str, event_time: str) -> str:
    """``failover#<region>#<source>#<event time>``: the same event always maps to the same record."""
    return f"failover#{region}#{source}#{event_time}"


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since 1970 of an aware datetime."""
    return int(moment.timestamp() * 1000)


def is_conditional_failure(exc: ClientError) -> bool:
    """A failed condition (single write or transaction), as opposed to any other error."""
    return exc.response.get("Error", {}).get("Code") in (
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
    )


@dataclass(frozen=True)
class Lease:
    """The ``lease`` item; ``epoch`` 0 means there is none (nobody is active)."""

    epoch: int = 0
    holder: str = ""
    valid_until: int = 0
    seq: int = 0
    began_at: str = ""
    reason: str = ""
    revoked_by: str = ""

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> Lease:
        """From a low-level DynamoDB item (or ``None``)."""
        if not item:
            return cls()
        return cls(
            epoch=int(item["epoch"]["N"]),
            holder=item["holder"]["S"],
            valid_until=int(item["valid_until"]["N"]),
            seq=int(item.get("seq", {}).get("N", "0")),
            began_at=item.get("began_at", {}).get("S", ""),
            reason=item.get("reason", {}).get("S", ""),
            revoked_by=item.get("revoked_by", {}).get("S", ""),
        )

    def item(self, renewed_at: str) -> dict[str, Any]:
        """The full ``lease`` item (a new epoch replaces the old one, ``revoked_by`` included)."""
        item: dict[str, Any] = {
            "pk": {"S": LEASE_KEY},
            "epoch": {"N": str(self.epoch)},
            "holder": {"S": self.holder},
            "valid_until": {"N": str(self.valid_until)},
            "seq": {"N": str(self.seq)},
            "began_at": {"S": self.began_at},
            "reason": {"S": self.reason},
            "renewed_at": {"S": renewed_at},
        }
        if self.revoked_by:
            item["revoked_by"] = {"S": self.revoked_by}
        return item

    def active_for(self, region: str, now_ms: int) -> bool:
        """Whether ``region`` holds this lease and it is still valid by ``now_ms`` (the holder's clock)."""
        return self.holder == region and now_ms < self.valid_until and not self.revoked_by


def read_lease(client: Any, table: str) -> Lease:
    """A strongly consistent read of the ``lease`` in the client's region."""
    item = client.get_item(TableName=table, Key={"pk": {"S": LEASE_KEY}}, ConsistentRead=True).get("Item")
    return Lease.from_item(item)


def read_healthy(client: Any, table: str, region: str) -> bool:
    """``health#<region>``: False only when the region's composite alarm said so last."""
    item = client.get_item(TableName=table, Key={"pk": {"S": health_key(region)}}, ConsistentRead=True).get("Item")
    return not item or item.get("healthy", {}).get("BOOL", True) is not False


def region_state(lease: Lease, healthy: bool, region: str, now_ms: int) -> str:
    """The state of ``region`` as its own replica and clock see it (docs/design.md table)."""
    if lease.epoch == 0:
        return UNKNOWN
    if lease.active_for(region, now_ms):
        return ACTIVE
    if lease.holder == region:
        return LAPSED
    return STANDBY if healthy else UNHEALTHY


def lease_condition(epoch: int, holder: str) -> dict[str, Any]:
    """``ConditionCheck`` arguments: the lease still has ``epoch`` and ``holder`` (no value check)."""
    return {
        "ConditionExpression": "epoch = :epoch AND holder = :holder AND attribute_not_exists(revoked_by)",
        "ExpressionAttributeValues": {":epoch": {"N": str(epoch)}, ":holder": {"S": holder}},
    }


class LeaseCache:
    """The region's state, cached for a couple of seconds: one read per environment per TTL.

    The TTL is part of the safety margin (docs/design.md): a region stops accepting at most
    ``ttl_seconds`` after its lease ends. Errors propagate, callers fail closed.
    """

    def __init__(
        self,
        client: Any,
        table: str,
        region: str,
        ttl_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client, self._table, self._region, self._ttl, self._clock = client, table, region, ttl_seconds, clock
        self._entry: tuple[float, Lease] | None = None

    def lease(self) -> Lease:
        """The lease, from cache when fresh."""
        now = self._clock()
        if self._entry is not None and now - self._entry[0] < self._ttl:
            return self._entry[1]
        lease = read_lease(self._client, self._table)
        self._entry = (now, lease)
        return lease

    def is_active(self, now_ms: int) -> bool:
        """Whether this region may accept payments now."""
        return self.lease().active_for(self._region, now_ms)

    def clear(self) -> None:
        """Forget the cached lookup (tests)."""
        self._entry = None


# ---------------------------------------------------------------- orchestrator transitions


def create_first_lease(client: Any, table: str, lease: Lease, now_iso: str) -> bool:
    """Bootstrap: epoch 1 if no lease exists in this replica; False when one does."""
    try:
        client.put_item(TableName=table, Item=lease.item(now_iso), ConditionExpression="attribute_not_exists(pk)")
    except ClientError as exc:
        if not is_conditional_failure(exc):
            raise
        return False
    return True


def renew(client: Any, table: str, lease: Lease, valid_until: int, now_iso: str) -> bool:
    """Extend ``lease`` in one replica (same epoch and holder, not revoked); False when that changed."""
    try:
        client.update_item(
            TableName=table,
            Key={"pk": {"S": LEASE_KEY}},
            UpdateExpression="SET valid_until = :until, renewed_at = :now ADD seq :one",
            **_merge(
                lease_condition(lease.epoch, lease.holder),
                {":until": {"N": str(valid_until)}, ":now": {"S": now_iso}, ":one": {"N": "1"}},
            ),
        )
    except ClientError as exc:
        if not is_conditional_failure(exc):
            raise
        return False
    return True


def replace_lease(
    client: Any, table: str, new: Lease, *, expected_epoch: int, expected_seq: int | None, now_iso: str
) -> bool:
    """Write a new epoch into one replica if it still holds ``expected_epoch`` (and ``expected_seq``).

    ``expected_seq`` (promotion) makes a renewal that landed meanwhile win; ``None`` (handover,
    copying a newer epoch) only requires the replica not to be ahead.
    """
    if expected_seq is None:
        # Or the copy already has this very epoch and holder (an earlier attempt of the same move).
        condition = "attribute_not_exists(epoch) OR epoch <= :epoch OR (epoch = :new AND holder = :holder)"
        values: dict[str, Any] = {
            ":epoch": {"N": str(expected_epoch)},
            ":new": {"N": str(new.epoch)},
            ":holder": {"S": new.holder},
        }
    else:
        condition = "epoch = :epoch AND seq = :seq"
        values = {":epoch": {"N": str(expected_epoch)}, ":seq": {"N": str(expected_seq)}}
    try:
        client.put_item(
            TableName=table, Item=new.item(now_iso), ConditionExpression=condition, ExpressionAttributeValues=values
        )
    except ClientError as exc:
        if not is_conditional_failure(exc):
            raise
        return False
    return True


def claim(client: Any, table: str, new: Lease, *, seen: Lease, older_ok: bool, now_iso: str) -> bool:
    """Promotion: write ``new`` into one copy if it still holds what the claimant saw there.

    ``seen`` is the lease the claimant watched in that copy (epoch 0: none). The copy may also
    already hold ``new``'s epoch and holder (the claimant's own earlier, unfinished claim), or,
    with ``older_ok``, an epoch older than ``seen`` (it is behind: its holder is not the one being
    replaced). False when the copy changed: the holder renewed there.
    """
    clauses = ["(epoch = :new AND holder = :holder)"]
    values: dict[str, Any] = {":new": {"N": str(new.epoch)}, ":holder": {"S": new.holder}}
    if seen.epoch == 0:
        clauses.append("attribute_not_exists(pk)")
    else:
        clauses.append("(epoch = :seen AND seq = :seq)")
        values.update({":seen": {"N": str(seen.epoch)}, ":seq": {"N": str(seen.seq)}})
        if older_ok:
            clauses += ["attribute_not_exists(pk)", "epoch < :seen"]
    try:
        client.put_item(
            TableName=table,
            Item=new.item(now_iso),
            ConditionExpression=" OR ".join(clauses),
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if not is_conditional_failure(exc):
            raise
        return False
    return True


def catch_up(client: Any, table: str, lease: Lease, now_iso: str) -> bool:
    """Bring a copy that is behind (no lease, or an older epoch) up to ``lease``; False when it is not behind."""
    try:
        client.put_item(
            TableName=table,
            Item=lease.item(now_iso),
            ConditionExpression="attribute_not_exists(pk) OR epoch < :epoch",
            ExpressionAttributeValues={":epoch": {"N": str(lease.epoch)}},
        )
    except ClientError as exc:
        if not is_conditional_failure(exc):
            raise
        return False
    return True


def revoke(client: Any, table: str, lease: Lease, by: str) -> bool:
    """Mark ``lease`` revoked in one replica: its holder can no longer renew there, so it lapses."""
    try:
        client.update_item(
            TableName=table,
            Key={"pk": {"S": LEASE_KEY}},
            UpdateExpression="SET revoked_by = :by",
            ConditionExpression="epoch = :epoch",
            ExpressionAttributeValues={":by": {"S": by}, ":epoch": {"N": str(lease.epoch)}},
        )
    except ClientError as exc:
        if not is_conditional_failure(exc):
            raise
        return False
    return True


def _merge(condition: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    return {
        "ConditionExpression": condition["ConditionExpression"],
        "ExpressionAttributeValues": {**condition["ExpressionAttributeValues"], **values},
    }
