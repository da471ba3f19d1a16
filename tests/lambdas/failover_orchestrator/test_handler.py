"""Failover orchestrator in two regions: every lease transition of docs/design.md.

Each region has its own moto tables; nothing replicates unless a test calls the
:class:`~tests.lambdas.conftest.Replicator`, so lag and partitions are explicit.
"""

from __future__ import annotations

import json
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest

from tests.lambdas.conftest import (
    CONTROL,
    PRIMARY,
    SECONDARY,
    TRANSACTIONS,
    WITNESS,
    WITNESS_TABLE,
    FakeContext,
    Replicator,
    inject_errors,
    load_handler,
)
from tests.lambdas.failover_orchestrator.conftest import (
    INITIAL_CONCURRENCY,
    SCHEDULED,
    Clock,
    World,
    alarm_message,
    instant_canary,
    sns_event,
)

LEASE, MARGIN = 130, 40


@pytest.fixture
def regions(world: World, monkeypatch: pytest.MonkeyPatch) -> dict[str, ModuleType]:
    modules = {region: load_handler("failover_orchestrator", region) for region in (PRIMARY, SECONDARY)}
    for module in modules.values():
        instant_canary(monkeypatch, module)
    return modules


def tick(module: ModuleType, clock: Clock) -> dict[str, Any]:
    return module.route(SCHEDULED, clock.now)


def lease(world: World, region: str) -> dict[str, Any]:
    item = world.aws.lease(region)
    assert item is not None
    return {name: next(iter(value.values())) for name, value in item.items()}


def records(world: World, region: str) -> dict[str, dict[str, Any]]:
    return {key: item for key, item in world.control(region).items() if key.startswith("failover#")}


def unreachable(region: str) -> Any:
    """Every DynamoDB call into ``region`` fails (a partition, seen from the other side)."""
    return inject_errors("dynamodb", "*", failures=None, code="InternalServerError", region=region)


def healthy_pair(regions: dict[str, ModuleType], replicator: Replicator, clock: Clock) -> None:
    """One probe in each region, replicated: both have seen the other's heartbeat."""
    tick(regions[SECONDARY], clock)
    tick(regions[PRIMARY], clock)
    replicator.both_ways(CONTROL)
    tick(regions[SECONDARY], clock)
    tick(regions[PRIMARY], clock)


# ---------------------------------------------------------------- bootstrap and renewal


def test_only_the_primary_creates_the_first_lease(regions: dict[str, ModuleType], world: World, clock: Clock) -> None:
    for region in (PRIMARY, SECONDARY):
        world.aws.dynamodb[region].delete_item(TableName=CONTROL, Key={"pk": {"S": "lease"}})
    world.aws.dynamodb[WITNESS].delete_item(TableName=WITNESS_TABLE, Key={"pk": {"S": "lease"}})
    assert tick(regions[SECONDARY], clock)["status"] == "no_lease"
    assert world.aws.lease(SECONDARY) is None
    assert world.aws.lease(WITNESS) is None
    assert tick(regions[PRIMARY], clock)["status"] == "bootstrapped"
    assert world.holder(PRIMARY) == world.holder(SECONDARY) == world.holder(WITNESS) == (1, PRIMARY)


def test_bootstrap_needs_a_majority_and_the_witness_alone_makes_one(
    regions: dict[str, ModuleType], world: World, clock: Clock, no_sleep: list[float]
) -> None:
    for region in (PRIMARY, SECONDARY):
        world.aws.dynamodb[region].delete_item(TableName=CONTROL, Key={"pk": {"S": "lease"}})
    world.aws.dynamodb[WITNESS].delete_item(TableName=WITNESS_TABLE, Key={"pk": {"S": "lease"}})
    _, peer = unreachable(SECONDARY)
    _, witness = unreachable(WITNESS)
    try:
        assert tick(regions[PRIMARY], clock)["status"] == "no_lease", "no copy but its own: no first lease"
        assert world.aws.lease(PRIMARY) is None
        witness()
        result = tick(regions[PRIMARY], clock)
    finally:
        peer()
    assert (result["status"], result["copies"]) == ("bootstrapped", ["witness", PRIMARY])
    assert world.holder(PRIMARY) == world.holder(WITNESS) == (1, PRIMARY)


def test_holder_renews_in_the_peer_then_in_its_own_replica(
    regions: dict[str, ModuleType], world: World, clock: Clock
) -> None:
    result = tick(regions[PRIMARY], clock)
    assert result["status"] == "renewed"
    expected = str(int(clock.now.timestamp() * 1000) + LEASE * 1000)
    for region in (PRIMARY, SECONDARY, WITNESS):
        assert (lease(world, region)["valid_until"], lease(world, region)["seq"]) == (expected, "1")
    assert world.mapping_states(PRIMARY) == ["Enabled"]


def replicas_written(module: ModuleType, function: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The regions of the replicas ``module.control.<function>`` writes, in call order (filled as it runs)."""
    order: list[str] = []
    original = getattr(module.control, function)

    def recording(client: Any, *args: Any, **kwargs: Any) -> bool:
        order.append(client.meta.region_name)
        return original(client, *args, **kwargs)

    monkeypatch.setattr(module.control, function, recording)
    return order


def test_renewal_writes_the_peer_replica_first(
    regions: dict[str, ModuleType], world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = replicas_written(regions[PRIMARY], "renew", monkeypatch)
    assert tick(regions[PRIMARY], clock)["status"] == "renewed"
    assert order == [SECONDARY, WITNESS, PRIMARY], "the other two copies first, its own replica last"


def emitted_metrics(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]


def test_holder_that_reaches_neither_the_peer_nor_the_witness_does_not_extend_its_own_lease(
    regions: dict[str, ModuleType],
    world: World,
    clock: Clock,
    no_sleep: list[float],
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = lease(world, PRIMARY)
    _, peer = unreachable(SECONDARY)
    _, witness = unreachable(WITNESS)
    try:
        capsys.readouterr()
        result = regions[PRIMARY].handler(SCHEDULED, FakeContext(function_name="failover-orchestrator-test"))
    finally:
        peer()
        witness()
    assert result["status"] == "renewal_failed"
    assert lease(world, PRIMARY) == before, "no majority: its own lease still ends when it would have"
    emitted = emitted_metrics(capsys)
    assert any(metric.get("PeerWriteFailed") == [1.0] for metric in emitted)
    assert any(metric.get("WitnessWriteFailed") == [1.0] for metric in emitted)


@pytest.mark.parametrize("cut", [SECONDARY, WITNESS])
def test_holder_renews_on_a_majority_when_one_other_copy_is_unreachable(
    regions: dict[str, ModuleType], world: World, clock: Clock, no_sleep: list[float], cut: str
) -> None:
    before = {region: lease(world, region) for region in (PRIMARY, SECONDARY, WITNESS)}
    _, remove = unreachable(cut)
    try:
        result = tick(regions[PRIMARY], clock)
    finally:
        remove()
    reached = SECONDARY if cut == WITNESS else "witness"
    assert (result["status"], result["copies"]) == ("renewed", [reached, PRIMARY])
    expected = str(int(clock.now.timestamp() * 1000) + LEASE * 1000)
    assert lease(world, PRIMARY)["valid_until"] == expected
    assert lease(world, SECONDARY if cut == WITNESS else WITNESS)["valid_until"] == expected
    assert lease(world, cut) == before[cut]


def test_a_witness_that_is_behind_is_brought_up_to_the_current_epoch(
    regions: dict[str, ModuleType], world: World, clock: Clock
) -> None:
    """A fresh witness table (an upgrade) or one that was down while the epoch moved."""
    world.aws.put_lease(SECONDARY, epoch=2, into=PRIMARY)
    world.aws.put_lease(SECONDARY, epoch=2, into=SECONDARY)
    world.aws.dynamodb[WITNESS].delete_item(TableName=WITNESS_TABLE, Key={"pk": {"S": "lease"}})
    result = tick(regions[SECONDARY], clock)
    assert result["status"] == "renewed"
    assert world.holder(WITNESS) == (2, SECONDARY)
    world.aws.put_lease(PRIMARY, epoch=1, into=WITNESS)
    assert tick(regions[SECONDARY], clock)["status"] == "renewed"
    assert world.holder(WITNESS) == (2, SECONDARY)


@pytest.mark.parametrize("newer_in", [SECONDARY, WITNESS])
def test_holder_finding_a_newer_epoch_in_the_peer_or_the_witness_steps_down_at_once(
    regions: dict[str, ModuleType], world: World, clock: Clock, newer_in: str
) -> None:
    world.aws.put_lease(SECONDARY, epoch=2, into=newer_in)
    result = tick(regions[PRIMARY], clock)
    assert result["status"] == "demoted"
    assert world.holder(PRIMARY) == (2, SECONDARY)
    assert world.mapping_states(PRIMARY) == ["Disabled"]


def test_revoked_holder_cannot_renew_and_lapses(regions: dict[str, ModuleType], world: World, clock: Clock) -> None:
    world.aws.put_lease(PRIMARY, valid_for=60, into=PRIMARY)
    world.aws.put_lease(PRIMARY, valid_for=60, into=SECONDARY, revoked_by=SECONDARY)
    world.aws.put_lease(PRIMARY, valid_for=60, into=WITNESS, revoked_by=SECONDARY)
    before = lease(world, PRIMARY)
    assert tick(regions[PRIMARY], clock)["status"] == "demoted"
    assert lease(world, PRIMARY) == before


def test_a_revocation_in_one_copy_only_leaves_a_majority(
    regions: dict[str, ModuleType], world: World, clock: Clock
) -> None:
    world.aws.put_lease(PRIMARY, valid_for=60, into=SECONDARY, revoked_by=SECONDARY)
    result = tick(regions[PRIMARY], clock)
    assert (result["status"], result["copies"]) == ("renewed", ["witness", PRIMARY])


# ---------------------------------------------------------------- watchdog and promotion


def test_standby_stops_its_consumer_and_waits_while_the_lease_moves(
    regions: dict[str, ModuleType], world: World, clock: Clock, replicator: Replicator
) -> None:
    world.lambdas[SECONDARY].update_event_source_mapping(
        UUID=world.lambdas[SECONDARY].list_event_source_mappings()["EventSourceMappings"][0]["UUID"], Enabled=True
    )
    for _ in range(6):
        tick(regions[PRIMARY], clock)
        assert tick(regions[SECONDARY], clock)["status"] == "standby"
        clock.advance(60)
    assert world.holder(SECONDARY) == (1, PRIMARY)
    assert world.mapping_states(SECONDARY) == ["Disabled"]


def test_standby_promotes_after_lease_plus_margin_by_its_own_clock(
    regions: dict[str, ModuleType], world: World, clock: Clock
) -> None:
    assert tick(regions[SECONDARY], clock)["status"] == "standby"  # first sight of (epoch 1, seq 0)
    clock.advance(LEASE + MARGIN)
    assert tick(regions[SECONDARY], clock)["status"] == "standby", "not one second early"
    clock.advance(1)
    result = tick(regions[SECONDARY], clock)
    assert result["status"] == "promoted"
    assert result["copies"] == ["witness", PRIMARY, SECONDARY]
    assert world.holder(SECONDARY) == world.holder(PRIMARY) == (2, SECONDARY), "written into the old replica too"
    assert world.holder(WITNESS) == (2, SECONDARY)
    assert world.mapping_states(SECONDARY) == ["Enabled"]
    [alert] = world.alerts(SECONDARY)
    assert "promotion" in alert["subject"]
    assert "failback" in alert["message"]
    [record] = records(world, SECONDARY).values()
    assert record["kind"] == {"S": "promotion"}


def test_a_holder_clock_far_in_the_future_cannot_hide_a_dead_holder(
    regions: dict[str, ModuleType], world: World, clock: Clock
) -> None:
    """valid_until is the holder's clock; the standby only trusts how long seq has not changed, by its own."""
    world.aws.put_lease(PRIMARY, valid_for=30 * 86400)
    tick(regions[SECONDARY], clock)
    clock.advance(LEASE + MARGIN + 1)
    assert tick(regions[SECONDARY], clock)["status"] == "promoted"


def test_a_renewal_landing_before_the_promotion_wins(
    regions: dict[str, ModuleType], world: World, clock: Clock
) -> None:
    tick(regions[SECONDARY], clock)
    clock.advance(LEASE + MARGIN + 1)
    original = regions[SECONDARY].control.claim

    def renewal_lands_first(client: Any, *args: Any, **kwargs: Any) -> bool:
        # The primary was only slow: it renews into the witness and this replica now, just
        # before the promotion's first write (the witness claim).
        tick(regions[PRIMARY], clock)
        return original(client, *args, **kwargs)

    regions[SECONDARY].control.claim = renewal_lands_first
    try:
        result = tick(regions[SECONDARY], clock)
    finally:
        regions[SECONDARY].control.claim = original
    assert result["status"] == "standby"
    assert world.holder(SECONDARY) == world.holder(PRIMARY) == world.holder(WITNESS) == (1, PRIMARY)


def test_an_unhealthy_standby_does_not_promote(regions: dict[str, ModuleType], world: World, clock: Clock) -> None:
    regions[SECONDARY].route(sns_event(alarm_message(SECONDARY)), clock.now)
    tick(regions[SECONDARY], clock)
    clock.advance(LEASE + MARGIN + 1)
    assert tick(regions[SECONDARY], clock)["status"] == "standby"
    assert world.holder(SECONDARY) == (1, PRIMARY)


# ---------------------------------------------------------------- handover


def test_composite_alarm_of_the_holder_hands_over_at_once(
    regions: dict[str, ModuleType], world: World, clock: Clock, replicator: Replicator
) -> None:
    healthy_pair(regions, replicator, clock)
    world.alerts(PRIMARY)
    result = regions[PRIMARY].route(sns_event(alarm_message(PRIMARY), topic_region=PRIMARY), clock.now)
    assert result["status"] == "handed_over"
    assert world.holder(PRIMARY) == world.holder(SECONDARY) == (2, SECONDARY)
    assert world.mapping_states(PRIMARY) == ["Disabled"]
    assert world.mapping_states(SECONDARY) == ["Enabled"]
    assert world.concurrency(SECONDARY) == INITIAL_CONCURRENCY, "capacity is provisioned, never changed at failover"
    [alert] = world.alerts(PRIMARY)
    assert "handover" in alert["subject"]


def test_the_old_holders_replica_is_written_first(
    regions: dict[str, ModuleType], world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = replicas_written(regions[SECONDARY], "replace_lease", monkeypatch)
    assert regions[SECONDARY].route({"action": "failover", "region": PRIMARY}, clock.now)["status"] == "handed_over"
    assert order == [PRIMARY, WITNESS, SECONDARY]
    assert world.holder(WITNESS) == (2, SECONDARY)


def test_an_unhealthy_holder_hands_over_on_a_later_probe_once_the_peer_can_take_it(
    regions: dict[str, ModuleType], world: World, clock: Clock, replicator: Replicator
) -> None:
    primary = regions[PRIMARY]
    first = primary.route(sns_event(alarm_message(PRIMARY), topic_region=PRIMARY), clock.now)
    assert first["status"] == "refused", "the secondary's heartbeat was never seen"
    assert len(world.alerts(PRIMARY)) == 1
    assert tick(primary, clock)["status"] == "renewed", "still the best region: it keeps the lease"
    assert world.alerts(PRIMARY) == [], "a refusal on a probe is not published again"
    tick(regions[SECONDARY], clock)
    replicator.both_ways(CONTROL)
    assert tick(primary, clock)["status"] == "handed_over"
    assert world.holder(PRIMARY) == world.holder(SECONDARY) == (2, SECONDARY)


def test_both_composite_alarms_inside_the_replication_window_leave_exactly_one_active(
    regions: dict[str, ModuleType], world: World, clock: Clock, replicator: Replicator
) -> None:
    healthy_pair(regions, replicator, clock)
    first = regions[PRIMARY].route(sns_event(alarm_message(PRIMARY), topic_region=PRIMARY), clock.now)
    second = regions[SECONDARY].route(sns_event(alarm_message(SECONDARY)), clock.now)
    assert first["status"] == "handed_over"
    assert second["status"] == "refused", "the lease must not move back to a region that is unhealthy too"
    replicator.both_ways(CONTROL)
    assert world.holder(PRIMARY) == world.holder(SECONDARY) == (2, SECONDARY)


def test_handover_to_a_peer_with_a_stale_heartbeat_is_refused(
    regions: dict[str, ModuleType], world: World, clock: Clock
) -> None:
    result = regions[PRIMARY].route({"action": "failover", "region": PRIMARY}, clock.now)
    assert result["status"] == "refused"
    assert "heartbeat" in result["reason"]
    assert world.holder(PRIMARY) == (1, PRIMARY)


def test_handover_from_an_unreachable_holder_revokes_and_waits(
    regions: dict[str, ModuleType], world: World, clock: Clock, no_sleep: list[float]
) -> None:
    tick(regions[SECONDARY], clock)
    _, remove = unreachable(PRIMARY)
    try:
        result = regions[SECONDARY].route({"action": "failover", "region": PRIMARY}, clock.now)
    finally:
        remove()
    assert result["status"] == "handover_pending"
    assert lease(world, SECONDARY)["revoked_by"] == lease(world, WITNESS)["revoked_by"] == SECONDARY
    assert world.holder(SECONDARY) == (1, PRIMARY), "no second active region while the primary may still run"
    assert tick(regions[PRIMARY], clock)["status"] == "demoted", "its renewal fails on the revoked copy"
    clock.advance(LEASE + MARGIN + 1)
    assert tick(regions[SECONDARY], clock)["status"] == "promoted"


def test_alarm_ok_marks_healthy_and_never_moves_the_lease(
    regions: dict[str, ModuleType], world: World, clock: Clock
) -> None:
    regions[SECONDARY].route({"action": "failover", "region": PRIMARY}, clock.now)
    result = regions[SECONDARY].route(
        sns_event(alarm_message(PRIMARY, state="OK", at="2024-05-01T13:00:00.000+0000")), clock.now
    )
    assert result["status"] == "marked_healthy"
    assert world.holder(SECONDARY) == (2, SECONDARY)
    assert world.control(SECONDARY)[f"health#{PRIMARY}"]["healthy"] == {"BOOL": True}


def test_late_older_alarm_does_not_overwrite_a_newer_health_mark(
    regions: dict[str, ModuleType], world: World, clock: Clock
) -> None:
    module = regions[SECONDARY]
    module.route(sns_event(alarm_message(SECONDARY, state="OK", at="2024-05-01T12:10:00.000+0000")), clock.now)
    module.route(sns_event(alarm_message(SECONDARY, at="2024-05-01T12:00:00.000+0000")), clock.now)
    assert world.control(SECONDARY)[f"health#{SECONDARY}"]["healthy"] == {"BOOL": True}


@pytest.mark.parametrize("action", ["failover", "failback"])
def test_dry_run_changes_nothing(
    regions: dict[str, ModuleType], world: World, clock: Clock, replicator: Replicator, action: str
) -> None:
    if action == "failback":
        world.aws.put_lease(SECONDARY, epoch=2)
    healthy_pair(regions, replicator, clock)
    replicator.both_ways(CONTROL)
    world.alerts(SECONDARY)
    before = {region: world.control(region) for region in (PRIMARY, SECONDARY)}
    states = {region: world.mapping_states(region) for region in (PRIMARY, SECONDARY)}
    result = regions[SECONDARY].route({"action": action, "region": PRIMARY, "dry_run": True}, clock.now)
    assert result["status"] == "dry_run", result
    assert result["actions"], "a dry run reports what it would do"
    assert {region: world.control(region) for region in (PRIMARY, SECONDARY)} == before
    assert {region: world.mapping_states(region) for region in (PRIMARY, SECONDARY)} == states
    assert world.alerts(SECONDARY) == []


def test_manual_failover_of_a_region_that_is_not_active_is_a_noop(
    regions: dict[str, ModuleType], world: World, clock: Clock
) -> None:
    result = regions[SECONDARY].route({"action": "failover", "region": SECONDARY}, clock.now)
    assert result["status"] == "noop"
    assert world.holder(SECONDARY) == (1, PRIMARY)


# ---------------------------------------------------------------- failback


def promoted_secondary(regions: dict[str, ModuleType], world: World, clock: Clock) -> None:
    tick(regions[SECONDARY], clock)
    clock.advance(LEASE + MARGIN + 1)
    assert tick(regions[SECONDARY], clock)["status"] == "promoted"
    world.alerts(SECONDARY)


def test_failback_of_a_dead_primary_is_refused_and_the_watchdog_keeps_watching(
    regions: dict[str, ModuleType], world: World, clock: Clock
) -> None:
    promoted_secondary(regions, world, clock)
    result = regions[SECONDARY].route({"action": "failback", "region": PRIMARY}, clock.now)
    assert result["status"] == "refused"
    assert world.holder(SECONDARY)[1] == SECONDARY


def test_failback_waits_for_replication_to_catch_up(
    regions: dict[str, ModuleType], world: World, clock: Clock, replicator: Replicator
) -> None:
    promoted_secondary(regions, world, clock)
    tick(regions[PRIMARY], clock)  # the primary is back: it heartbeats ...
    replicator.sync(CONTROL, PRIMARY, SECONDARY)
    tick(regions[SECONDARY], clock)
    tick(regions[SECONDARY], clock)  # ... but the secondary's latest heartbeat has not reached it
    result = regions[SECONDARY].route({"action": "failback", "region": PRIMARY}, clock.now)
    assert result["status"] == "refused"
    assert "replication" in result["reason"]
    replicator.both_ways(CONTROL)
    assert regions[SECONDARY].route({"action": "failback", "region": PRIMARY}, clock.now)["status"] == "failed_back"
    assert world.holder(PRIMARY) == world.holder(SECONDARY) == (3, PRIMARY)


def test_watchdog_survives_a_failback_to_a_primary_that_then_dies(
    regions: dict[str, ModuleType], world: World, clock: Clock, replicator: Replicator
) -> None:
    promoted_secondary(regions, world, clock)
    tick(regions[PRIMARY], clock)
    replicator.both_ways(CONTROL)
    tick(regions[SECONDARY], clock)
    replicator.both_ways(CONTROL)
    assert regions[SECONDARY].route({"action": "failback", "region": PRIMARY}, clock.now)["status"] == "failed_back"
    # The primary dies right after: no renewal ever reaches the secondary again.
    tick(regions[SECONDARY], clock)
    clock.advance(LEASE + MARGIN + 1)
    assert tick(regions[SECONDARY], clock)["status"] == "promoted"
    assert world.holder(SECONDARY) == (4, SECONDARY)


# ---------------------------------------------------------------- sweeper


def pending(world: World, region: str, payment_id: str, epoch: int, age_seconds: float, clock: Clock) -> None:
    moment = clock.now - timedelta(seconds=age_seconds)
    world.aws.dynamodb[region].put_item(
        TableName=TRANSACTIONS,
        Item={
            "payment_id": {"S": payment_id},
            "status": {"S": "PENDING"},
            "version": {"N": "1"},
            "accepted_epoch": {"N": str(epoch)},
            "pending_shard": {"S": "p3"},
            "created_at": {"S": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"},
        },
    )


def queued(world: World, region: str) -> list[str]:
    return sorted(json.loads(message["Body"])["payment_id"] for message in world.aws.messages(region))


def test_promotion_sweeps_payments_of_the_old_epoch_at_once(
    regions: dict[str, ModuleType], world: World, clock: Clock
) -> None:
    old = "11111111-1111-4111-8111-111111111111"
    pending(world, SECONDARY, old, epoch=1, age_seconds=5, clock=clock)  # replicated from the dead primary
    promoted_secondary(regions, world, clock)
    assert queued(world, SECONDARY) == [old]


def test_the_active_region_sweeps_stuck_payments_and_counts_old_ones(
    regions: dict[str, ModuleType], world: World, clock: Clock
) -> None:
    fresh, stuck, ancient = (f"{n}{n}{n}{n}{n}{n}{n}{n}-0000-4000-8000-000000000000" for n in (2, 3, 4))
    pending(world, PRIMARY, fresh, epoch=1, age_seconds=10, clock=clock)  # its own enqueue is in flight
    pending(world, PRIMARY, stuck, epoch=1, age_seconds=200, clock=clock)  # enqueue failed, no retry
    pending(world, PRIMARY, ancient, epoch=1, age_seconds=900, clock=clock)
    result = tick(regions[PRIMARY], clock)
    assert (result["swept"], result["pending_over_age"]) == (2, 1)
    assert result["orphaned"] == 0, "all of this epoch: stuck, not orphaned by a failover"
    assert result["oldest_pending_seconds"] >= 900
    assert queued(world, PRIMARY) == sorted([stuck, ancient])


def test_old_epoch_payments_that_arrive_after_the_promotion_are_swept_on_the_next_probe(
    regions: dict[str, ModuleType], world: World, clock: Clock
) -> None:
    promoted_secondary(regions, world, clock)
    assert queued(world, SECONDARY) == []
    late = "66666666-0000-4000-8000-000000000000"
    pending(world, SECONDARY, late, epoch=1, age_seconds=400, clock=clock)  # the dead primary's data returns
    clock.advance(60)
    result = tick(regions[SECONDARY], clock)
    assert (result["swept"], result["orphaned"]) == (1, 1), "counted as it becomes visible"
    assert queued(world, SECONDARY) == [late]


def test_the_standby_never_sweeps(regions: dict[str, ModuleType], world: World, clock: Clock) -> None:
    pending(world, SECONDARY, "55555555-0000-4000-8000-000000000000", epoch=1, age_seconds=900, clock=clock)
    assert "swept" not in tick(regions[SECONDARY], clock)
    assert queued(world, SECONDARY) == []


# ---------------------------------------------------------------- malformed events


@pytest.mark.parametrize(
    "event",
    [
        None,
        "failover",
        [],
        {},
        {"Records": "nope"},
        {"Records": []},
        {"Records": [{"EventSource": "aws:sqs", "body": "{}"}]},
        sns_event("not json"),
        sns_event({"AlarmName": "x-region-cannot-take-payments"}),
        sns_event(alarm_message(PRIMARY, at="yesterday")),
        sns_event(alarm_message("eu-west-1")),
        {"action": "explode", "region": PRIMARY},
        {"action": "failover"},
        {"action": "failover", "region": "eu-west-1"},
        {"action": "failover", "region": PRIMARY, "dry_run": "yes"},
        {"action": "failover", "region": PRIMARY, "extra": 1},
        {"detail-type": "Scheduled Event", "source": "somebody.else"},
    ],
)
def test_malformed_events_are_rejected_without_raising(
    regions: dict[str, ModuleType], world: World, clock: Clock, event: Any
) -> None:
    before = world.control(SECONDARY)
    result = regions[SECONDARY].route(event, clock.now)
    assert result["status"] == "rejected"
    assert result["reason"]
    assert world.control(SECONDARY) == before
    assert world.alerts(SECONDARY) == []


def test_other_alarms_are_ignored(regions: dict[str, ModuleType], world: World, clock: Clock) -> None:
    result = regions[SECONDARY].route(sns_event(alarm_message(PRIMARY, name="payments-lambda-errors-test")), clock.now)
    assert result["status"] == "ignored"
    assert world.holder(SECONDARY) == (1, PRIMARY)
