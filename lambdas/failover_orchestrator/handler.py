"""Failover orchestrator: keeps exactly one region active through the lease (docs/design.md).

One function, deployed in both regions, outside the VPC so it reaches both replicas directly:

- the EventBridge schedule (every ``probeIntervalMinutes``): write this region's heartbeat;
  if this region holds the lease, renew it (the peer's replica and the witness first, then its
  own once one of them accepted: two of three copies) and sweep PENDING payments; if the peer
  holds it, watch it in its own replica and in the witness by this region's clock and promote
  this region once neither changed for lease + margin (witness, peer, own: again two of three).
  The consumer of the region's processing queue is kept enabled only while the region is active.
- SNS notifications of a region's composite ``...region-cannot-take-payments...`` alarm: ALARM
  marks the region unhealthy and hands the lease away from it if it holds it; OK marks it healthy
  (it never moves the lease back).
- Manual ``{"action": "failover" | "failback", "region": ..., "dry_run": bool, "reason": ...}``:
  failover hands the lease away from ``region``; failback hands it to ``region``, refused unless
  that region is healthy, alive and replication has caught up.

Both regions fenced cannot happen: there is no fence, every epoch has exactly one holder, and a
handover needs a healthy, live target. Malformed events are rejected with ``{"status":
"rejected"}`` and never raise, so an asynchronous invocation is not retried; AWS errors raise.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from botocore.exceptions import ClientError
from payments_common import clients, config, control, observability
from payments_common.control import Lease, epoch_ms, failover_key, health_key, heartbeat_key, watch_key
from payments_common.models import AlarmStateChange, ManualAction
from payments_common.timeutil import iso, parse_iso, utc_now
from pydantic import ValidationError

if __package__:  # the tests import failover_orchestrator.handler; Lambda imports handler.py at the zip root
    from . import canary
else:
    import canary

SETTINGS = config.load()
PROCESSING_FUNCTION = SETTINGS.require("processing_function_name")
ALERT_TOPIC_ARN = SETTINGS.require("alert_topic_arn")
QUEUE_URL = SETTINGS.require("processing_queue_url")
TABLE = SETTINGS.control_table
REGION, PEER = SETTINGS.region, SETTINGS.peer_region
#: The third copy of the lease: a plain table in a third region (docs/design.md, lease protocol).
WITNESS_TABLE = SETTINGS.require("witness_table")
WITNESS_REGION = SETTINGS.require("witness_region")
WITNESS = "witness"
logger = observability.logger()
metrics = observability.metrics(REGION)

#: Only this alarm moves the lease; every other alarm on the topic is ignored here.
COMPOSITE_ALARM_MARKER = "region-cannot-take-payments"
#: Audit records are kept about a year, then expire (TTL).
RECORD_TTL = timedelta(days=400)
#: The sparse GSI of PENDING payments and its shards (payment_validation writes ``pending_shard``).
PENDING_INDEX = "pending-index"
PENDING_SHARDS = tuple(f"p{n}" for n in range(8))
#: At most this many payments re-enqueued per run: the next run continues.
SWEEP_LIMIT = 500

DYNAMODB = clients.client("dynamodb")
#: The other region's replica, written directly (renewals, handovers). Short timeouts: that
#: region may be the one that is down.
PEER_DYNAMODB = clients.client("dynamodb", region=PEER, max_attempts=2, connect_timeout=1.0, read_timeout=2.0)
#: The witness table in the third region, read and written directly; short timeouts too.
WITNESS_DYNAMODB = clients.client(
    "dynamodb", region=WITNESS_REGION, max_attempts=2, connect_timeout=1.0, read_timeout=2.0
)
LAMBDA = {region: clients.client("lambda", region=region, max_attempts=3) for region in SETTINGS.regions}
SNS = clients.client("sns")
SQS = clients.client("sqs")
#: The probe's replication canary and own-health check (canary.py): where and how they report.
#: The peer's ``/health``: asked only when this region's own fails (a failing vantage point moves nothing).
PEER_HEALTH_URL = os.environ.get("PEER_HEALTH_URL")
PROBE_CHECKS = {
    "health_url": os.environ.get("REGIONAL_HEALTH_URL"),
    "metrics": metrics,
    "logger": logger,
}


class MalformedEventError(ValueError):
    """The event is not one this function understands; rejected without a retry."""


@dataclass(frozen=True)
class Watch:
    """What this region last saw change, by its own clock (``watch#<region>``)."""

    lease_epoch: int = 0
    lease_seq: int = -1
    lease_seen_at: int = 0
    heartbeat_seq: int = -1
    heartbeat_seen_at: int = 0
    #: The witness's lease (epoch, seq) and when it last changed (-1: never read).
    witness_epoch: int = -1
    witness_seq: int = -1
    witness_seen_at: int = 0

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> Watch:
        """From a low-level item (or None: nothing seen yet); a field an older item lacks is unseen."""
        if not item:
            return cls()
        defaults = cls()
        return cls(
            **{
                name: int(item[name]["N"]) if name in item else getattr(defaults, name)
                for name in cls.__dataclass_fields__
            }
        )

    @property
    def last_change(self) -> int:
        """When the lease last changed in this replica or the witness (epoch ms, this clock)."""
        return max(self.lease_seen_at, self.witness_seen_at)

    def item(self) -> dict[str, Any]:
        """The ``watch#<region>`` item."""
        values = {name: {"N": str(getattr(self, name))} for name in self.__dataclass_fields__}
        return {"pk": {"S": watch_key(REGION)}, **values}


# ---------------------------------------------------------------- control table


def lease_until(now: datetime) -> int:
    """``valid_until`` of a lease renewed or granted at ``now``."""
    return epoch_ms(now) + SETTINGS.lease_seconds * 1000


def write_heartbeat(now: datetime) -> int:
    """``heartbeat#<region>``: +1 to ``seq``; returns the new sequence number."""
    answer = DYNAMODB.update_item(
        TableName=TABLE,
        Key={"pk": {"S": heartbeat_key(REGION)}},
        UpdateExpression="SET #at = :now ADD seq :one",
        ExpressionAttributeNames={"#at": "at"},
        ExpressionAttributeValues={":now": {"S": iso(now)}, ":one": {"N": "1"}},
        ReturnValues="UPDATED_NEW",
    )
    return int(answer["Attributes"]["seq"]["N"])


def heartbeat_seq(client: Any, region: str) -> int:
    """The heartbeat sequence number of ``region`` in the client's replica (-1: none)."""
    item = client.get_item(TableName=TABLE, Key={"pk": {"S": heartbeat_key(region)}}, ConsistentRead=True).get("Item")
    return int(item["seq"]["N"]) if item and "seq" in item else -1


def replica(region: str) -> Any:
    """The DynamoDB client of ``region``'s replica of the control table."""
    return DYNAMODB if region == REGION else PEER_DYNAMODB


def others() -> tuple[tuple[str, Any, str], ...]:
    """The two copies of the lease besides this region's own: (name, client, table), peer first."""
    return ((PEER, PEER_DYNAMODB, TABLE), (WITNESS, WITNESS_DYNAMODB, WITNESS_TABLE))


def read_witness() -> Lease | None:
    """The witness's lease, read directly (consistent); None when the witness cannot be read."""
    try:
        return control.read_lease(WITNESS_DYNAMODB, WITNESS_TABLE)
    except Exception as exc:  # the witness region may be down: it counts as unchanged
        metrics.add_metric(name="WitnessReadFailed", unit="Count", value=1)
        logger.warning("could not read the witness", extra={"witness": WITNESS_REGION, "error": type(exc).__name__})
        return None


def observe(lease: Lease, witness: Lease | None, now: datetime, write: bool = True) -> Watch:
    """Update ``watch#<region>``: when the lease (here and in the witness) and the peer's heartbeat last changed.

    By this region's clock. ``witness`` None (not read, or unreadable) leaves the witness part as it was.
    ``write=False`` (a dry run) computes the same answer and writes nothing.
    """
    previous = Watch.from_item(
        DYNAMODB.get_item(TableName=TABLE, Key={"pk": {"S": watch_key(REGION)}}, ConsistentRead=True).get("Item")
    )
    now_ms = epoch_ms(now)
    peer_seq = heartbeat_seq(DYNAMODB, PEER)
    lease_changed = (lease.epoch, lease.seq) != (previous.lease_epoch, previous.lease_seq)
    heartbeat_changed = peer_seq != previous.heartbeat_seq
    seen = (previous.witness_epoch, previous.witness_seq) if witness is None else (witness.epoch, witness.seq)
    witness_changed = seen != (previous.witness_epoch, previous.witness_seq)
    watch = Watch(
        lease_epoch=lease.epoch,
        lease_seq=lease.seq,
        lease_seen_at=now_ms if lease_changed else previous.lease_seen_at,
        heartbeat_seq=peer_seq,
        heartbeat_seen_at=now_ms if heartbeat_changed else previous.heartbeat_seen_at,
        witness_epoch=seen[0],
        witness_seq=seen[1],
        witness_seen_at=now_ms if witness_changed else previous.witness_seen_at,
    )
    if write and watch != previous:
        DYNAMODB.put_item(TableName=TABLE, Item=watch.item())
    return watch


def peer_alive(watch: Watch, now: datetime) -> bool:
    """Whether the peer's heartbeat changed within ``HEARTBEAT_STALE_SECONDS``, by this region's clock."""
    return (
        watch.heartbeat_seq >= 0 and epoch_ms(now) - watch.heartbeat_seen_at <= SETTINGS.heartbeat_stale_seconds * 1000
    )


def put_record(kind: str, region: str, source: str, event_time: str, fields: dict[str, str], now: datetime) -> str:
    """An audit record ``failover#...`` (same event, same key: a re-delivery overwrites it)."""
    key = failover_key(region, source, event_time)
    item: dict[str, Any] = {
        "pk": {"S": key},
        "kind": {"S": kind},
        "region": {"S": region},
        "source": {"S": source},
        "event_time": {"S": event_time},
        "recorded_at": {"S": iso(now)},
        "recorded_in": {"S": REGION},
        "expires_at": {"N": str(int((now + RECORD_TTL).timestamp()))},
        **{name: {"S": value} for name, value in fields.items()},
    }
    DYNAMODB.put_item(TableName=TABLE, Item=item)
    return key


def set_health(region: str, healthy: bool, reason: str, changed_at: str) -> list[str]:
    """``health#<region>`` in both replicas (the peer's directly, best effort); newer decisions win."""
    notes = []
    item = {
        "pk": {"S": health_key(region)},
        "healthy": {"BOOL": healthy},
        "reason": {"S": reason},
        "changed_at": {"S": changed_at},
    }
    for target, client in ((REGION, DYNAMODB), (PEER, PEER_DYNAMODB)):
        try:
            client.put_item(
                TableName=TABLE,
                Item=item,
                ConditionExpression="attribute_not_exists(changed_at) OR changed_at <= :t",
                ExpressionAttributeValues={":t": {"S": changed_at}},
            )
            notes.append(f"marked {region} {'healthy' if healthy else 'unhealthy'} in the {target} replica")
        except ClientError as exc:
            if not control.is_conditional_failure(exc) and target == REGION:
                raise
            notes.append(peer_write_failed(target, exc) if target == PEER else f"{target}: a newer health mark exists")
        except Exception as exc:  # the peer may be the region that is down: replication carries it
            if target == REGION:
                raise
            notes.append(peer_write_failed(target, exc))
    return notes


def peer_write_failed(region: str, exc: Exception) -> str:
    """Count and log a failed write into the peer's replica or the witness; returns the note for the summary."""
    if region == WITNESS:
        metrics.add_metric(name="WitnessWriteFailed", unit="Count", value=1)
        logger.warning(
            "could not write into the witness", extra={"witness": WITNESS_REGION, "error": type(exc).__name__}
        )
        return f"could not write into the witness in {WITNESS_REGION} ({type(exc).__name__})"
    metrics.add_metric(name="PeerWriteFailed", unit="Count", value=1)
    logger.warning("could not write into the peer replica", extra={"peer": region, "error": type(exc).__name__})
    return f"could not write into the {region} replica ({type(exc).__name__})"


def where(name: str) -> str:
    """``the witness`` or ``the <region> replica``, for notes."""
    return f"the witness ({WITNESS_REGION})" if name == WITNESS else f"the {name} replica"


# ---------------------------------------------------------------- queue consumer


def set_consumer(region: str, enabled: bool, dry_run: bool = False) -> list[str]:
    """Enable or disable ``region``'s processing SQS mapping (disabled messages stay on the queue)."""
    client = LAMBDA[region]
    notes: list[str] = []
    mappings = [
        mapping
        for page in client.get_paginator("list_event_source_mappings").paginate(FunctionName=PROCESSING_FUNCTION)
        for mapping in page.get("EventSourceMappings", [])
        if mapping.get("EventSourceArn", "").startswith("arn:aws:sqs:")
    ]
    if not mappings:
        notes.append(f"WARNING: {PROCESSING_FUNCTION} has no SQS event source mapping in {region}")
    wrong = ("Disabled", "Disabling") if enabled else ("Enabled", "Enabling", "Creating", "Updating")
    for mapping in mappings:
        if mapping.get("State") in wrong:
            if not dry_run:
                client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=enabled)
            verb = "enable" if enabled else "disable"
            notes.append(f"{verb}{'' if dry_run else 'd'} event source mapping {mapping['UUID']} in {region}")
    return notes


def set_consumer_best_effort(region: str, enabled: bool) -> list[str]:
    """:func:`set_consumer` for the other region: its next probe does it if this fails."""
    try:
        return set_consumer(region, enabled)
    except Exception as exc:  # that region's own orchestrator converges it on its next probe
        logger.warning("could not change the peer's queue consumer", extra={"peer": region, "error": str(exc)})
        return [f"could not change the {region} queue consumer ({type(exc).__name__}); its next probe will"]


def publish(subject: str, lines: list[str]) -> None:
    """A human-readable summary to the alert topic."""
    SNS.publish(
        TopicArn=ALERT_TOPIC_ARN,
        Subject=f"[payments-{SETTINGS.environment_suffix}] {subject}"[:100],
        Message="\n".join(lines),
    )


# ---------------------------------------------------------------- sweeper


def sweep(lease: Lease, now: datetime) -> dict[str, Any]:
    """Re-enqueue PENDING payments with no live owner; count those older than the alarm age.

    ``orphaned`` counts PENDING payments accepted under an older epoch: after a promotion, those of
    the old region, including the ones that arrive late by replication once it is back (the RPO
    window of docs/design.md, counted as they become visible: ``PaymentsOrphanedByFailover``).
    """
    now_ms = epoch_ms(now)
    sweep_before = iso(now - timedelta(seconds=SETTINGS.pending_sweep_age_seconds))
    alarm_before = iso(now - timedelta(seconds=SETTINGS.pending_alarm_age_seconds))
    swept, over_age, orphans, oldest = 0, 0, 0, None
    paginator = DYNAMODB.get_paginator("query")
    for shard in PENDING_SHARDS:
        pages = paginator.paginate(
            TableName=SETTINGS.transactions_table,
            IndexName=PENDING_INDEX,
            KeyConditionExpression="pending_shard = :shard",
            ExpressionAttributeValues={":shard": {"S": shard}},
            ProjectionExpression="payment_id, created_at, accepted_epoch",
        )
        for item in (item for page in pages for item in page.get("Items", [])):
            created = item["created_at"]["S"]
            oldest = created if oldest is None or created < oldest else oldest
            over_age += created < alarm_before
            orphaned = int(item.get("accepted_epoch", {}).get("N", "0")) < lease.epoch
            orphans += orphaned
            if (orphaned or created < sweep_before) and swept < SWEEP_LIMIT:
                SQS.send_message(QueueUrl=QUEUE_URL, MessageBody=json.dumps({"payment_id": item["payment_id"]["S"]}))
                swept += 1
    oldest_seconds = 0 if oldest is None else max(0, (now_ms - epoch_ms(parse_iso(oldest))) // 1000)
    metrics.add_metric(name="PaymentsSwept", unit="Count", value=swept)
    metrics.add_metric(name="PaymentsOrphanedByFailover", unit="Count", value=orphans)
    metrics.add_metric(name="PendingPaymentsOverAge", unit="Count", value=over_age)
    metrics.add_metric(name="OldestPendingSeconds", unit="Seconds", value=oldest_seconds)
    if swept:
        logger.info("re-enqueued pending payments", extra={"swept": swept, "epoch": lease.epoch})
    return {
        "swept": swept,
        "orphaned": orphans,
        "pending_over_age": over_age,
        "oldest_pending_seconds": oldest_seconds,
    }


# ---------------------------------------------------------------- transitions


def bootstrap(now: datetime) -> dict[str, Any]:
    """Epoch 1, held by the primary (only the primary creates it: two creators could race).

    Into the peer's replica and the witness first, then this replica once one of them took it.
    """
    if SETTINGS.region != SETTINGS.primary_region:
        return {"status": "no_lease", "reason": f"waiting for {SETTINGS.primary_region} to create the first lease"}
    first = Lease(epoch=1, holder=REGION, valid_until=lease_until(now), began_at=iso(now), reason="bootstrap")
    created, notes = [], []
    for name, client, table in others():
        try:
            if not control.create_first_lease(client, table, first, iso(now)):
                return {"status": "no_lease", "reason": f"{where(name)} already has a lease: the next probe brings it"}
            created.append(name)
        except Exception as exc:  # unreachable: the other copy may still make the majority
            notes.append(peer_write_failed(name, exc))
    if not created:
        return {"status": "no_lease", "reason": "; ".join(notes)}
    control.create_first_lease(DYNAMODB, TABLE, first, iso(now))
    return {"status": "bootstrapped", "epoch": 1, "holder": REGION, "copies": [*created, REGION], "actions": notes}


def renew(lease: Lease, now: datetime) -> dict[str, Any]:
    """Extend this region's lease: the peer's replica and the witness first; this one once either accepted."""
    until = lease_until(now)
    extended = dataclasses.replace(lease, valid_until=until, seq=lease.seq + 1)
    counted: list[str] = []
    notes: list[str] = []
    newest, revoked = lease, False
    for name, client, table in others():
        try:
            if control.renew(client, table, lease, until, iso(now)):
                counted.append(name)
                continue
            there = control.read_lease(client, table)
            if there.epoch > newest.epoch:
                newest = there
            elif there.epoch < lease.epoch and control.catch_up(client, table, extended, iso(now)):
                counted.append(name)
                notes.append(f"brought {where(name)} up to epoch {lease.epoch}")
            else:
                revoked = True
                notes.append(f"{where(name)} refused the renewal: epoch {lease.epoch} is revoked there")
        except Exception as exc:  # unreachable copy: it does not count; the other one may
            notes.append(peer_write_failed(name, exc))
    if newest.epoch > lease.epoch:
        return step_down(lease, newest, now, notes)
    if not counted:
        # No majority: do not extend here, self-demote when valid_until passes.
        status = "demoted" if revoked else "renewal_failed"
        return {"status": status, "reason": "; ".join(notes), "valid_until": lease.valid_until}
    if not control.renew(DYNAMODB, TABLE, lease, until, iso(now)):
        return {"status": "demoted", "reason": "the lease changed in this replica (handover or revocation)"}
    return {
        "status": "renewed",
        "epoch": lease.epoch,
        "valid_until": until,
        "copies": [*counted, REGION],
        "notes": notes,
    }


def step_down(lease: Lease, newer: Lease, now: datetime, notes: list[str]) -> dict[str, Any]:
    """Another copy holds a newer epoch: copy it here (if it is the peer's), so this region stops at once."""
    if newer.holder != REGION:
        control.replace_lease(
            DYNAMODB, TABLE, newer, expected_epoch=newer.epoch - 1, expected_seq=None, now_iso=iso(now)
        )
    actions = notes + set_consumer(REGION, enabled=False)
    return {"status": "demoted", "reason": f"{newer.holder} holds epoch {newer.epoch}", "actions": actions}


def unfinished_promotion(lease: Lease, witness: Lease | None) -> bool:
    """Whether the witness holds this region's claim on the next epoch while this replica does not.

    That is a promotion that stopped after its first write (the function crashed or timed out).
    """
    return witness is not None and (witness.epoch, witness.holder) == (lease.epoch + 1, REGION)


def promote(lease: Lease, witness: Lease | None, now: datetime, why: str) -> dict[str, Any]:
    """Neither copy this region watches changed for lease + margin: claim epoch + 1 on a majority.

    The witness first (unchanged since watched), then the peer's replica (best effort, or the
    majority when the witness cannot be reached), then this replica, only once one of them took it.
    """
    new = Lease(epoch=lease.epoch + 1, holder=REGION, valid_until=lease_until(now), began_at=iso(now), reason=why)
    standby = {"status": "standby"}
    if witness is not None and witness.epoch >= new.epoch and (witness.epoch, witness.holder) != (new.epoch, REGION):
        if witness.holder != REGION:
            control.replace_lease(
                DYNAMODB, TABLE, witness, expected_epoch=witness.epoch - 1, expected_seq=None, now_iso=iso(now)
            )
        return {
            **standby,
            "reason": f"the witness holds epoch {witness.epoch} ({witness.holder}): this replica is behind",
        }
    actions: list[str] = []
    counted: list[str] = []
    if witness is None:
        actions.append(f"the witness ({WITNESS_REGION}) could not be read: it cannot make the majority")
    elif unfinished_promotion(lease, witness):
        counted.append(WITNESS)
        actions.append(f"the witness already held epoch {new.epoch} for {REGION}: finishing that promotion")
    else:
        try:
            if not control.claim(WITNESS_DYNAMODB, WITNESS_TABLE, new, seen=witness, older_ok=False, now_iso=iso(now)):
                return {**standby, "reason": "the holder renewed in the witness while promoting"}
            counted.append(WITNESS)
            actions.append(f"took epoch {new.epoch} in the witness ({WITNESS_REGION})")
        except Exception as exc:  # the peer's replica may still make the majority
            actions.append(peer_write_failed(WITNESS, exc))
    try:
        if control.claim(PEER_DYNAMODB, TABLE, new, seen=lease, older_ok=True, now_iso=iso(now)):
            counted.append(PEER)
            actions.append(f"wrote epoch {new.epoch} into the {PEER} replica")
        elif not counted:
            return {**standby, "reason": f"the holder renewed in the {PEER} replica while promoting"}
        else:
            actions.append(f"the {PEER} replica moved on: this replica decides")
    except Exception as exc:  # unreachable: the witness alone may make the majority with this replica
        actions.append(peer_write_failed(PEER, exc))
    if not counted:
        return {
            **standby,
            "reason": "no majority: neither the witness nor the peer's replica could be written",
            "actions": actions,
        }
    if not control.replace_lease(
        DYNAMODB, TABLE, new, expected_epoch=lease.epoch, expected_seq=lease.seq, now_iso=iso(now)
    ):
        return {
            **standby,
            "reason": "the lease changed while promoting: the holder renewed in time",
            "actions": actions,
        }
    actions.append(f"took epoch {new.epoch} in {REGION}")
    actions += set_consumer(REGION, enabled=True)
    swept = sweep(new, now)
    actions.append(f"re-enqueued {swept['swept']} pending payment(s)")
    key = put_record("promotion", lease.holder, "watchdog", iso(now), {"epoch": str(new.epoch), "reason": why}, now)
    publish(
        f"promotion: {REGION} is the active region (epoch {new.epoch})",
        [
            f"{REGION} promoted itself: {why}.",
            f"record: {key}",
            *(f"  - {a}" for a in actions),
            f'Failback is manual: {{"action": "failback", "region": "{lease.holder}"}} once it is healthy.',
        ],
    )
    logger.warning("promoted", extra={"epoch": new.epoch, "actions": actions})
    return {"status": "promoted", "epoch": new.epoch, "actions": actions, "copies": [*counted, REGION], **swept}


def handover(
    source: str, old: str, new: str, reason: str, now: datetime, dry_run: bool, *, failback: bool = False
) -> dict[str, Any]:
    """Move the lease from ``old`` to ``new`` now: the old holder's replica, then the witness, then the new holder's.

    The old holder's replica and one more copy make the majority; the old holder stops before the new one starts.
    """
    lease = control.read_lease(DYNAMODB, TABLE)
    result: dict[str, Any] = {"from": old, "to": new, "epoch": lease.epoch}
    if lease.holder != old:
        return {
            **result,
            "status": "noop",
            "reason": f"{old} does not hold the lease ({lease.holder or 'nobody'} does)",
        }
    refusal = handover_refusal(new, now, failback, dry_run)
    if refusal:
        if not dry_run:
            key = put_record("refused", old, source, iso(now), {"reason": refusal, "to": new}, now)
            publish(f"handover REFUSED: {old} keeps the lease", [refusal, f"record: {key}", f"asked: {reason}"])
        logger.error("handover refused", extra={**result, "reason": refusal})
        return {**result, "status": "refused", "reason": refusal}
    successor = Lease(epoch=lease.epoch + 1, holder=new, valid_until=lease_until(now), began_at=iso(now), reason=reason)
    if dry_run:
        actions = [
            f"write epoch {successor.epoch} (holder {new}) into the {old} replica, then the witness "
            f"({WITNESS_REGION}), then the {new} replica"
        ]
        actions += set_consumer(new, enabled=True, dry_run=True) if new == REGION else []
        return {**result, "status": "dry_run", "actions": [*actions, f"publish a summary to {ALERT_TOPIC_ARN}"]}
    old_client, new_client = replica(old), replica(new)
    try:
        stopped = control.replace_lease(
            old_client, TABLE, successor, expected_epoch=lease.epoch, expected_seq=None, now_iso=iso(now)
        )
    except Exception as exc:
        if old == REGION:
            raise
        # The old holder is unreachable: it cannot be stopped now. Revoke here and in the witness so
        # its renewals fail, and let the watchdog promote after lease + margin.
        note = peer_write_failed(old, exc)
        control.revoke(DYNAMODB, TABLE, lease, by=REGION)
        try:
            control.revoke(WITNESS_DYNAMODB, WITNESS_TABLE, lease, by=REGION)
        except Exception as witness_exc:  # without it the holder may go on renewing there: it stays the one active
            note += f"; {peer_write_failed(WITNESS, witness_exc)}"
        key = put_record("handover_pending", old, source, iso(now), {"reason": reason, "to": new}, now)
        publish(
            f"handover pending: {old} unreachable",
            [note, f"revoked epoch {lease.epoch} in {REGION}; {new} takes over after lease + margin", f"record: {key}"],
        )
        return {**result, "status": "handover_pending", "reason": note}
    if not stopped:
        return {**result, "status": "stale", "reason": f"the {old} replica already has a newer epoch"}
    actions = [f"wrote epoch {successor.epoch} into the {old} replica ({old} stopped)"]
    try:
        control.replace_lease(
            WITNESS_DYNAMODB, WITNESS_TABLE, successor, expected_epoch=lease.epoch, expected_seq=None, now_iso=iso(now)
        )
        actions.append(f"wrote epoch {successor.epoch} into the witness ({WITNESS_REGION})")
    except Exception as exc:  # the new holder's replica makes the majority with the old holder's
        actions.append(peer_write_failed(WITNESS, exc))
    try:
        control.replace_lease(
            new_client, TABLE, successor, expected_epoch=lease.epoch, expected_seq=None, now_iso=iso(now)
        )
        actions.append(f"wrote epoch {successor.epoch} into the {new} replica ({new} active)")
    except Exception as exc:  # replication carries it within seconds
        actions.append(peer_write_failed(new, exc))
    actions += (set_consumer if old == REGION else set_consumer_best_effort)(old, False)
    actions += (set_consumer if new == REGION else set_consumer_best_effort)(new, True)
    if new == REGION:
        actions.append(f"re-enqueued {sweep(successor, now)['swept']} pending payment(s)")
    key = put_record(
        "handover", old, source, iso(now), {"reason": reason, "to": new, "epoch": str(successor.epoch)}, now
    )
    publish(
        f"{'failback' if failback else 'handover'}: {new} is the active region (epoch {successor.epoch})",
        [
            f"{old} -> {new}: {reason}.",
            f"source: {source}; record: {key}",
            *(f"  - {a}" for a in actions),
            "Failback is manual: invoke the orchestrator with "
            f'{{"action": "failback", "region": "{old}"}} once {old} is healthy.',
        ],
    )
    logger.warning("handed over", extra={**result, "actions": actions})
    return {
        **result,
        "status": "failed_back" if failback else "handed_over",
        "epoch": successor.epoch,
        "actions": actions,
    }


def handover_refusal(target: str, now: datetime, failback: bool, dry_run: bool = False) -> str | None:
    """Why the lease must not move to ``target`` now, or None."""
    if not control.read_healthy(DYNAMODB, TABLE, target):
        return f"{target} is unhealthy (its composite alarm is in ALARM): moving the lease there would help nobody"
    if target == PEER:
        # Observed now, not as of the last probe: an operator's failback a minute after the peer
        # came back must not be refused only because no probe has run since (the DR drill found it).
        watch = observe(control.read_lease(DYNAMODB, TABLE), None, now, write=not dry_run)
        if not peer_alive(watch, now):
            return (
                f"{target}'s heartbeat has not changed for {SETTINGS.heartbeat_stale_seconds} s (by {REGION}'s clock)"
            )
    if failback:
        return replication_lag(now)
    return None


def replication_lag(now: datetime) -> str | None:
    """None when the peer's replica, read directly, has this region's latest heartbeat and lease epoch."""
    own_seq = heartbeat_seq(DYNAMODB, REGION)
    try:
        peer_seq = heartbeat_seq(PEER_DYNAMODB, REGION)
        peer_lease = control.read_lease(PEER_DYNAMODB, TABLE)
    except Exception as exc:
        return f"cannot read the {PEER} replica ({type(exc).__name__}): replication cannot be checked"
    own_epoch = control.read_lease(DYNAMODB, TABLE).epoch
    if peer_seq < own_seq or peer_lease.epoch != own_epoch:
        return (
            f"replication has not caught up: {PEER} holds heartbeat {peer_seq} of {REGION} (latest {own_seq}) "
            f"and epoch {peer_lease.epoch} (here {own_epoch})"
        )
    return None


# ---------------------------------------------------------------- events


def peer_answers_health() -> bool:
    """Whether the peer's ``/health`` answers 200, so it can take the lease.

    When this region's own ``/health`` fails and the peer's does too, the fault is more likely
    where we ask from (egress, DNS) than in this region: the lease stays.
    """
    return bool(PEER_HEALTH_URL) and canary.region_healthy(PEER_HEALTH_URL)


def on_schedule(now: datetime) -> dict[str, Any]:
    """Heartbeat; renew and sweep when active; watch, keep the consumer stopped and promote when standby."""
    write_heartbeat(now)
    checks = canary.probe(DYNAMODB, {PEER: PEER_DYNAMODB}, table=TABLE, region=REGION, **PROBE_CHECKS)
    lease = control.read_lease(DYNAMODB, TABLE)
    if lease.epoch == 0:
        return {**bootstrap(now), "checks": checks}
    witness = None if lease.holder == REGION else read_witness()
    watch = observe(lease, witness, now)
    base = {"region": REGION, "epoch": lease.epoch, "holder": lease.holder, "checks": checks}
    if lease.holder == REGION:
        unhealthy = not control.read_healthy(DYNAMODB, TABLE, REGION)
        # The active region's own /health failing means Route 53 is moving clients away from it
        # (its HTTPS check watches the same URL): the lease follows, or clients meet a standby.
        unreachable = checks.get("region_healthy") is False and peer_answers_health()
        # An unhealthy holder whose alarm-time handover was refused retries quietly every probe.
        if (
            (unhealthy or unreachable)
            and lease.active_for(REGION, epoch_ms(now))
            and handover_refusal(PEER, now, False) is None
        ):
            why = f"{REGION} is unhealthy" if unhealthy else f"{REGION}'s own /health failed: DNS is moving away"
            return {**base, **handover("unhealthy", REGION, PEER, why, now, dry_run=False)}
        result = renew(lease, now)
        if result["status"] == "renewed":
            result["actions"] = set_consumer(REGION, enabled=True)
            result.update(sweep(lease, now))
        return {**base, **result}
    actions = set_consumer(REGION, enabled=False)
    unchanged_ms = epoch_ms(now) - watch.last_change
    if unfinished_promotion(lease, witness):
        # The witness changed because of our own claim: judge the holder by this replica alone.
        unchanged_ms = epoch_ms(now) - watch.lease_seen_at
    limit_ms = (SETTINGS.lease_seconds + SETTINGS.lease_safety_margin_seconds) * 1000
    if unchanged_ms <= limit_ms:
        return {**base, "status": "standby", "lease_unchanged_seconds": unchanged_ms // 1000, "actions": actions}
    if not control.read_healthy(DYNAMODB, TABLE, REGION):
        return {**base, "status": "standby", "reason": f"{REGION} is unhealthy: it does not promote itself"}
    why = f"the lease of {lease.holder} (epoch {lease.epoch}) was not renewed for {unchanged_ms // 1000} s"
    return {**base, **promote(lease, witness, now, why)}


def on_alarm(alarm: AlarmStateChange, now: datetime) -> dict[str, Any]:
    """A composite alarm: ALARM marks the region unhealthy and moves the lease away from it; OK marks it healthy."""
    if COMPOSITE_ALARM_MARKER not in alarm.AlarmName:
        return {"status": "ignored", "reason": f"{alarm.AlarmName} is not the {COMPOSITE_ALARM_MARKER} alarm"}
    if alarm.region not in SETTINGS.regions:
        return rejected(f"alarm region {alarm.region} is not one of {', '.join(SETTINGS.regions)}")
    if alarm.NewStateValue == "INSUFFICIENT_DATA":
        return {"status": "ignored", "reason": "INSUFFICIENT_DATA changes nothing"}
    healthy = alarm.NewStateValue == "OK"
    notes = set_health(alarm.region, healthy, f"{alarm.AlarmName} is {alarm.NewStateValue}", iso(alarm.StateChangeTime))
    if healthy:
        return {"status": "marked_healthy", "region": alarm.region, "actions": notes}
    other = SETTINGS.other_region(alarm.region)
    moved = handover(f"alarm:{alarm.AlarmName}", alarm.region, other, f"{alarm.AlarmName} went to ALARM", now, False)
    return {**moved, "actions": notes + moved.get("actions", [])}


def on_manual(action: ManualAction, now: datetime) -> dict[str, Any]:
    """An operator's failover (move the lease away from ``region``) or failback (bring it to ``region``)."""
    if action.region not in SETTINGS.regions:
        return rejected(f"region must be one of {', '.join(SETTINGS.regions)}")
    other = SETTINGS.other_region(action.region)
    if action.action == "failback":
        reason = action.reason or f"manual failback to {action.region}"
        return handover("manual", other, action.region, reason, now, action.dry_run, failback=True)
    return handover("manual", action.region, other, action.reason or "manual failover", now, action.dry_run)


def rejected(reason: str) -> dict[str, Any]:
    """The answer to an event this function will not act on, and must not be retried."""
    logger.error("event rejected", extra={"reason": reason})
    return {"status": "rejected", "reason": reason}


def alarms_in(event: dict[str, Any]) -> list[AlarmStateChange]:
    """The alarm state changes of an SNS event; :class:`MalformedEventError` on anything else."""
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        raise MalformedEventError("Records must be a non-empty list")
    alarms = []
    for record in records:
        sns = record.get("Sns") if isinstance(record, dict) else None
        if not isinstance(record, dict) or record.get("EventSource") != "aws:sns" or not isinstance(sns, dict):
            raise MalformedEventError("every record must be an SNS notification")
        message = sns.get("Message")
        if not isinstance(message, str):
            raise MalformedEventError("the SNS message must be a string")
        try:
            alarms.append(parse(event=message, model=AlarmStateChange))
        except (ValidationError, ValueError) as exc:
            raise MalformedEventError(f"not a CloudWatch alarm notification ({type(exc).__name__})") from None
    return alarms


def route(event: Any, now: datetime) -> dict[str, Any]:
    """Dispatch on the event's shape; malformed events are rejected, never raised."""
    if not isinstance(event, dict):
        return rejected("the event must be a JSON object")
    try:
        if "Records" in event:
            results = [on_alarm(alarm, now) for alarm in alarms_in(event)]
            return results[0] if len(results) == 1 else {"status": "batch", "results": results}
        if event.get("detail-type") == "Scheduled Event" and event.get("source") == "aws.events":
            return on_schedule(now)
        if "action" in event:
            try:
                action = parse(event=event, model=ManualAction)
            except (ValidationError, ValueError) as exc:
                expected = "manual event must be {action, region, dry_run}"
                raise MalformedEventError(f"{expected} ({exc.__class__.__name__})") from None
            return on_manual(action, now)
    except MalformedEventError as exc:
        return rejected(str(exc))
    return rejected("unrecognised event: expected an SNS alarm, a scheduled event or a manual action")


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (SNS, EventBridge schedule, or direct invocation)."""
    result = route(event, utc_now())
    logger.info("orchestrator finished", extra={"result_status": result.get("status")})
    return result
