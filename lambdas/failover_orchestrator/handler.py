"""Failover orchestrator: fence a region that cannot take payments, prepare the other, tell people.

Inputs (one function, deployed in both regions):

- SNS notifications of CloudWatch alarms: the composite ``...region-cannot-take-payments...``
  alarm in ``ALARM`` fails over away from the region in its ARN. ``OK`` never unfences.
- The EventBridge schedule (every minute): write this region's heartbeat, read the peer's;
  when the peer is the active region and its heartbeat is older than
  ``HEARTBEAT_STALE_SECONDS``, fail over away from it. This is how the secondary learns
  of a primary whose CloudWatch, SNS or Lambda is down.
- Manual ``{"action": "failover" | "failback", "region": ..., "dry_run": bool}``.

A failover is (1) recorded once under ``failover#<region>#<source>#<event time>``
(conditional put), (2) the fence goes up in one transaction that also checks the other
region is not fenced (never zero regions taking payments) and that no newer decision was
made (``changed_at`` only moves forward), (3) the healthy region is prepared, (4) a summary
is published, (5) the record is marked ``completed``. A re-delivery after a crash at any
step finds the record not completed and redoes the (idempotent) remaining steps; a
completed, refused or superseded record makes a re-delivery a no-op.

Malformed events are rejected with ``{"status": "rejected"}`` and never raise, so an
asynchronous invocation is not retried; AWS errors do raise, so Lambda retries them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from botocore.exceptions import ClientError
from payments_common import clients, config, observability
from payments_common.control import Fence, failover_key, fence_key, heartbeat_key, read_fence
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
TABLE = SETTINGS.control_table
logger = observability.logger()

#: Only this alarm moves traffic; every other alarm on the topic is ignored here.
COMPOSITE_ALARM_MARKER = "region-cannot-take-payments"
#: Failover records are kept about a year for audit, then expire (TTL).
RECORD_TTL = timedelta(days=400)
#: Heartbeats expire a day after they were written.
HEARTBEAT_TTL = timedelta(days=1)
FINAL_RECORD_STATUSES = frozenset({"completed", "refused", "superseded"})

DYNAMODB = clients.client("dynamodb")
#: The other region's replica, written directly so a fence takes effect there without waiting
#: for replication. Short timeouts: that region may be the one that is down.
PEER_DYNAMODB = {
    region: clients.client("dynamodb", region=region, max_attempts=2, connect_timeout=1.0, read_timeout=2.0)
    for region in SETTINGS.regions
    if region != SETTINGS.region
}
LAMBDA = {region: clients.client("lambda", region=region, max_attempts=3) for region in SETTINGS.regions}
SNS = clients.client("sns")
#: The probe's replication canary and own-health check (canary.py): where and how they report.
PROBE_CHECKS = {
    "health_url": os.environ.get("REGIONAL_HEALTH_URL"),
    "metrics": observability.metrics(SETTINGS.region),
    "logger": logger,
}


class MalformedEventError(ValueError):
    """The event is not one this function understands; rejected without a retry."""


@dataclass(frozen=True)
class FailoverEvent:
    """A reason to move traffic away from ``region``."""

    region: str
    #: ``alarm:<name>``, ``heartbeat`` or ``manual``.
    source: str
    #: When the failure was observed (alarm state-change time, heartbeat staleness, operator's clock).
    event_time: str
    reason: str
    dry_run: bool = False

    @property
    def key(self) -> str:
        """The control-table key of this event's record."""
        return failover_key(self.region, self.source, self.event_time)


# ---------------------------------------------------------------- control table


def fence_item(fence: Fence, event_key: str) -> dict[str, Any]:
    """A ``fence#<region>`` item."""
    item: dict[str, Any] = {
        "pk": {"S": fence_key(fence.region)},
        "fenced": {"BOOL": fence.fenced},
        "reason": {"S": fence.reason},
        "changed_at": {"S": fence.changed_at or ""},
        "changed_by": {"S": fence.changed_by},
        "event": {"S": event_key},
    }
    if fence.since:
        item["since"] = {"S": fence.since}
    return item


def get_record(key: str) -> dict[str, Any] | None:
    """A failover record, strongly consistent."""
    return DYNAMODB.get_item(TableName=TABLE, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")


def put_record(key: str, kind: str, region: str, source: str, event_time: str, reason: str, now: datetime) -> bool:
    """Record an event once; False when the record already exists."""
    try:
        DYNAMODB.put_item(
            TableName=TABLE,
            Item={
                "pk": {"S": key},
                "kind": {"S": kind},
                "region": {"S": region},
                "source": {"S": source},
                "event_time": {"S": event_time},
                "reason": {"S": reason},
                "status": {"S": "recorded"},
                "recorded_at": {"S": iso(now)},
                "recorded_in": {"S": SETTINGS.region},
                "expires_at": {"N": str(int((now + RECORD_TTL).timestamp()))},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        return False
    return True


def set_record_status(key: str, status: str, actions: list[str], now: datetime) -> None:
    """Close a record: ``completed``, ``refused`` or ``superseded``, with what was done."""
    DYNAMODB.update_item(
        TableName=TABLE,
        Key={"pk": {"S": key}},
        UpdateExpression="SET #status = :status, finished_at = :now, actions = :actions",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={
            ":status": {"S": status},
            ":now": {"S": iso(now)},
            ":actions": {"L": [{"S": action} for action in actions]},
        },
    )


def write_fence(new: Fence, other_region: str | None, event_key: str) -> str:
    """Write a fence flag if no newer decision exists; ``written``, ``stale`` or ``refused``.

    With ``other_region`` (fencing), the same transaction checks that region is not fenced,
    so this function never leaves zero regions taking payments.
    """
    put: dict[str, Any] = {
        "TableName": TABLE,
        "Item": fence_item(new, event_key),
        "ConditionExpression": "attribute_not_exists(changed_at) OR changed_at <= :t",
        "ExpressionAttributeValues": {":t": {"S": new.changed_at or ""}},
    }
    items: list[dict[str, Any]] = []
    if other_region is not None:
        items.append(
            {
                "ConditionCheck": {
                    "TableName": TABLE,
                    "Key": {"pk": {"S": fence_key(other_region)}},
                    "ConditionExpression": "attribute_not_exists(fenced) OR fenced = :false",
                    "ExpressionAttributeValues": {":false": {"BOOL": False}},
                }
            }
        )
    items.append({"Put": put})
    try:
        DYNAMODB.transact_write_items(TransactItems=items)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
            raise
        reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
        if other_region is not None and reasons and reasons[0] == "ConditionalCheckFailed":
            return "refused"
        if reasons and reasons[-1] == "ConditionalCheckFailed":
            return "stale"
        raise
    return "written"


def mirror_fence(new: Fence, event_key: str) -> list[str]:
    """Best effort: write the fence into the other region's replica too (replication would, later)."""
    notes = []
    for region, client in PEER_DYNAMODB.items():
        try:
            client.put_item(
                TableName=TABLE,
                Item=fence_item(new, event_key),
                ConditionExpression="attribute_not_exists(changed_at) OR changed_at <= :t",
                ExpressionAttributeValues={":t": {"S": new.changed_at or ""}},
            )
            notes.append(f"wrote {fence_key(new.region)} into the {region} replica directly")
        except Exception as exc:  # the peer may be the region that is down: replication catches up
            logger.warning("could not write the fence into a peer replica", extra={"peer": region, "error": str(exc)})
            notes.append(f"could not reach the {region} replica ({type(exc).__name__}); replication will carry it")
    return notes


def read_heartbeat(region: str) -> str | None:
    """When ``region`` last wrote its heartbeat, or None."""
    item = DYNAMODB.get_item(TableName=TABLE, Key={"pk": {"S": heartbeat_key(region)}}, ConsistentRead=True).get("Item")
    return item.get("at", {}).get("S") if item else None


def write_heartbeat(now: datetime) -> None:
    """Write the heartbeat of this region: proof its control plane (scheduler, Lambda, DynamoDB) works."""
    DYNAMODB.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": heartbeat_key(SETTINGS.region)},
            "at": {"S": iso(now)},
            "expires_at": {"N": str(int((now + HEARTBEAT_TTL).timestamp()))},
        },
    )


def active_region() -> str | None:
    """The region taking payments: the primary unless fenced, else the secondary unless fenced."""
    for region in SETTINGS.regions:
        if not read_fence(DYNAMODB, TABLE, region).fenced:
            return region
    return None


# ---------------------------------------------------------------- healthy region


def prepare(region: str, dry_run: bool = False) -> list[str]:
    """Make ``region`` ready for full load: its queue consumer enabled, its concurrency raised."""
    client = LAMBDA[region]
    actions: list[str] = []
    mappings = [
        mapping
        for page in client.get_paginator("list_event_source_mappings").paginate(FunctionName=PROCESSING_FUNCTION)
        for mapping in page.get("EventSourceMappings", [])
        if mapping.get("EventSourceArn", "").startswith("arn:aws:sqs:")
    ]
    if not mappings:
        actions.append(f"WARNING: {PROCESSING_FUNCTION} has no SQS event source mapping in {region}")
    for mapping in mappings:
        if mapping.get("State") in ("Disabled", "Disabling"):
            if not dry_run:
                client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
            actions.append(f"enable{'' if dry_run else 'd'} event source mapping {mapping['UUID']} in {region}")
    target = SETTINGS.failover_processing_concurrency
    if target is not None:
        current = client.get_function_concurrency(FunctionName=PROCESSING_FUNCTION).get("ReservedConcurrentExecutions")
        if current is not None and current < target:
            if not dry_run:
                client.put_function_concurrency(FunctionName=PROCESSING_FUNCTION, ReservedConcurrentExecutions=target)
            verb = "raise" if dry_run else "raised"
            actions.append(f"{verb} reserved concurrency of {PROCESSING_FUNCTION} in {region}: {current} -> {target}")
    if not actions:
        actions.append(f"{region} already ready: queue consumer enabled")
    return actions


def publish(subject: str, lines: list[str]) -> None:
    """A human-readable summary to the alert topic."""
    SNS.publish(TopicArn=ALERT_TOPIC_ARN, Subject=subject[:100], Message="\n".join(lines))


# ---------------------------------------------------------------- decisions


def fail_over(event: FailoverEvent, now: datetime) -> dict[str, Any]:
    """Fence ``event.region`` and prepare the other region, once per event."""
    healthy = SETTINGS.other_region(event.region)
    result: dict[str, Any] = {"region": event.region, "healthy_region": healthy, "event": event.key}
    record = get_record(event.key)
    if record and record.get("status", {}).get("S") in FINAL_RECORD_STATUSES:
        return {**result, "status": "duplicate", "recorded_status": record["status"]["S"]}
    current = read_fence(DYNAMODB, TABLE, event.region)
    if current.changed_at and current.changed_at > event.event_time:
        if record and not event.dry_run:
            set_record_status(event.key, "superseded", [f"fence changed at {current.changed_at}"], now)
        return {**result, "status": "stale", "reason": f"a newer decision ({current.changed_at}) exists"}
    new = Fence(
        region=event.region,
        fenced=True,
        reason=event.reason,
        since=current.since if current.fenced and current.since else event.event_time,
        changed_at=event.event_time,
        changed_by=event.source,
    )
    if event.dry_run:
        if read_fence(DYNAMODB, TABLE, healthy).fenced:
            return {**result, "status": "dry_run", "actions": [f"refuse: {healthy} is fenced too"]}
        actions = [f"record {event.key}", f"fence {event.region}" + (" (already fenced)" if current.fenced else "")]
        actions += prepare(healthy, dry_run=True)
        actions.append(f"publish a summary to {ALERT_TOPIC_ARN}")
        return {**result, "status": "dry_run", "actions": actions}

    if record is None:
        put_record(event.key, "failover", event.region, event.source, event.event_time, event.reason, now)
    outcome = write_fence(new, healthy, event.key)
    if outcome == "refused":
        note = f"refused to fence {event.region}: {healthy} is fenced too, that would leave no region taking payments"
        set_record_status(event.key, "refused", [note], now)
        publish(
            f"[payments-{SETTINGS.environment_suffix}] FAILOVER REFUSED for {event.region}",
            [note, f"event: {event.key}", f"reason: {event.reason}", "A human must decide which region to fail back."],
        )
        logger.error("failover refused", extra=result)
        return {**result, "status": "refused", "reason": note}
    if outcome == "stale":
        set_record_status(event.key, "superseded", ["a newer fence decision was written concurrently"], now)
        return {**result, "status": "stale", "reason": "a newer decision was written concurrently"}

    actions = [f"fenced {event.region}" + (f" (fenced since {new.since})" if current.fenced else "")]
    actions += mirror_fence(new, event.key)
    actions += prepare(healthy)
    publish(
        f"[payments-{SETTINGS.environment_suffix}] failover: {event.region} fenced, {healthy} takes payments",
        [
            f"Region {event.region} can no longer take payments: {event.reason}.",
            f"Source: {event.source}; observed at {event.event_time}; handled in {SETTINGS.region} at {iso(now)}.",
            f"{event.region} now answers new payments with 503 + Retry-After and its /health fails,",
            f"so Route 53 and client retries move traffic to {healthy}.",
            "Actions:",
            *(f"  - {action}" for action in actions),
            "Failback is manual: invoke the orchestrator with "
            f'{{"action": "failback", "region": "{event.region}"}} once the region is healthy.',
        ],
    )
    set_record_status(event.key, "completed", actions, now)
    logger.warning("failed over", extra={**result, "actions": actions})
    return {**result, "status": "failed_over", "actions": actions}


def fail_back(region: str, reason: str, now: datetime, dry_run: bool) -> dict[str, Any]:
    """Unfence ``region`` (manual only) and make sure its queue consumer runs."""
    at = iso(now)
    key = failover_key(region, "failback", at)
    result: dict[str, Any] = {"region": region, "event": key}
    current = read_fence(DYNAMODB, TABLE, region)
    if not current.fenced:
        return {**result, "status": "noop", "reason": f"{region} is not fenced"}
    heartbeat = read_heartbeat(region)
    heartbeat_note = f"last heartbeat of {region}: {heartbeat or 'never'}"
    if dry_run:
        actions = [f"record {key}", f"unfence {region}", *prepare(region, dry_run=True), heartbeat_note]
        return {**result, "status": "dry_run", "actions": actions}
    put_record(key, "failback", region, "manual", at, reason or "manual failback", now)
    new = Fence(region=region, fenced=False, reason=reason or "manual failback", changed_at=at, changed_by="manual")
    if write_fence(new, None, key) == "stale":
        set_record_status(key, "superseded", ["a newer fence decision exists"], now)
        return {**result, "status": "stale", "reason": "a newer fence decision exists"}
    actions = [f"unfenced {region} (fenced since {current.since})"]
    actions += mirror_fence(new, key)
    actions += prepare(region)
    actions.append(heartbeat_note)
    publish(
        f"[payments-{SETTINGS.environment_suffix}] failback: {region} takes payments again",
        [f"Region {region} was unfenced by an operator: {reason or 'manual failback'}.", *actions],
    )
    set_record_status(key, "completed", actions, now)
    logger.warning("failed back", extra={**result, "actions": actions})
    return {**result, "status": "failed_back", "actions": actions}


def on_alarm(alarm: AlarmStateChange, now: datetime) -> dict[str, Any]:
    """A CloudWatch alarm notification."""
    if COMPOSITE_ALARM_MARKER not in alarm.AlarmName:
        return {"status": "ignored", "reason": f"{alarm.AlarmName} is not the {COMPOSITE_ALARM_MARKER} alarm"}
    if alarm.region not in SETTINGS.regions:
        return rejected(f"alarm region {alarm.region} is not one of {', '.join(SETTINGS.regions)}")
    if alarm.NewStateValue != "ALARM":
        return {"status": "ignored", "reason": f"{alarm.NewStateValue} never unfences: failback is manual"}
    event = FailoverEvent(
        region=alarm.region,
        source=f"alarm:{alarm.AlarmName}",
        event_time=iso(alarm.StateChangeTime),
        reason=f"{alarm.AlarmName} went to ALARM",
    )
    return fail_over(event, now)


def on_schedule(now: datetime) -> dict[str, Any]:
    """Write this region's heartbeat; fail over away from the active peer when its heartbeat is stale."""
    write_heartbeat(now)
    checks = canary.probe(DYNAMODB, PEER_DYNAMODB, table=TABLE, region=SETTINGS.region, **PROBE_CHECKS)
    peer = SETTINGS.peer_region
    active = active_region()
    peer_heartbeat = read_heartbeat(peer)
    result: dict[str, Any] = {
        "status": "heartbeat",
        "region": SETTINGS.region,
        "peer": peer,
        "active_region": active,
        "peer_heartbeat_at": peer_heartbeat,
        "checks": checks,
    }
    if active != peer:
        return result
    if peer_heartbeat is None:
        logger.warning("the active peer has never written a heartbeat", extra={"peer": peer})
        return {**result, "warning": f"{peer} has never written a heartbeat"}
    last = parse_iso(peer_heartbeat)
    age = (now - last).total_seconds()
    result["peer_age_seconds"] = int(age)
    if age <= SETTINGS.heartbeat_stale_seconds:
        return result
    event = FailoverEvent(
        region=peer,
        source="heartbeat",
        event_time=iso(last + timedelta(seconds=SETTINGS.heartbeat_stale_seconds)),
        reason=f"no heartbeat from {peer} since {peer_heartbeat} (limit {SETTINGS.heartbeat_stale_seconds} s)",
    )
    return {**result, "failover": fail_over(event, now)}


def on_manual(action: ManualAction, now: datetime) -> dict[str, Any]:
    """An operator's failover or failback."""
    if action.region not in SETTINGS.regions:
        return rejected(f"region must be one of {', '.join(SETTINGS.regions)}")
    if action.action == "failback":
        return fail_back(action.region, action.reason, now, action.dry_run)
    event = FailoverEvent(
        region=action.region,
        source="manual",
        event_time=iso(now),
        reason=action.reason or "manual failover",
        dry_run=action.dry_run,
    )
    return fail_over(event, now)


# ---------------------------------------------------------------- events


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


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (SNS, EventBridge schedule, or direct invocation)."""
    result = route(event, utc_now())
    logger.info("orchestrator finished", extra={"result_status": result.get("status")})
    return result
