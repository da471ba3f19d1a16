"""Failover orchestrator against moto in two regions: alarms, heartbeats, manual actions."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests.lambdas.conftest import PRIMARY, SECONDARY, FakeContext, inject_errors, load_handler
from tests.lambdas.failover_orchestrator.conftest import (
    INITIAL_CONCURRENCY,
    SCHEDULED,
    World,
    ago,
    alarm_message,
    put_heartbeat,
    sns_event,
)


@pytest.fixture
def orchestrator(world: World) -> ModuleType:
    """The orchestrator as deployed in the secondary region (the one that must act alone)."""
    return load_handler("failover_orchestrator", SECONDARY)


def run(module: ModuleType, event: Any) -> dict[str, Any]:
    return module.handler(event, FakeContext(function_name="failover-orchestrator-test"))


def failover_records(world: World, region: str = SECONDARY) -> dict[str, dict[str, Any]]:
    return {key: item for key, item in world.control(region).items() if key.startswith("failover#")}


def test_alarm_fences_the_failing_region_and_prepares_the_other(orchestrator: ModuleType, world: World) -> None:
    result = run(orchestrator, sns_event(alarm_message(PRIMARY)))
    assert result["status"] == "failed_over"
    assert (result["region"], result["healthy_region"]) == (PRIMARY, SECONDARY)

    [(key, record)] = failover_records(world).items()
    assert (
        key == f"failover#{PRIMARY}#alarm:payments-region-cannot-take-payments-{PRIMARY}-test#2024-05-01T12:00:00.000Z"
    )
    assert record["status"] == {"S": "completed"}
    assert world.fenced(PRIMARY, seen_from=SECONDARY)
    assert world.fenced(PRIMARY, seen_from=PRIMARY), "written into the failing region's replica directly"
    assert not world.fenced(SECONDARY, seen_from=SECONDARY)
    assert world.mapping_states(SECONDARY) == ["Enabled"]
    assert world.concurrency(SECONDARY) == 50
    assert world.concurrency(PRIMARY) == INITIAL_CONCURRENCY
    [alert] = world.alerts(SECONDARY)
    assert PRIMARY in alert["subject"]
    assert "fenced" in alert["subject"]
    assert "failback" in alert["message"]


def test_same_notification_twice_changes_nothing(orchestrator: ModuleType, world: World) -> None:
    event = sns_event(alarm_message(PRIMARY))
    run(orchestrator, event)
    world.alerts(SECONDARY)
    before = world.control(SECONDARY)
    again = run(orchestrator, event)
    assert again["status"] == "duplicate"
    assert world.control(SECONDARY) == before
    assert world.alerts(SECONDARY) == []


def test_older_notification_after_a_newer_one_changes_nothing(orchestrator: ModuleType, world: World) -> None:
    run(orchestrator, sns_event(alarm_message(PRIMARY, at="2024-05-01T12:10:00.000+0000")))
    world.alerts(SECONDARY)
    before = world.control(SECONDARY)
    late = run(orchestrator, sns_event(alarm_message(PRIMARY, at="2024-05-01T12:00:00.000+0000")))
    assert late["status"] == "stale"
    assert world.control(SECONDARY) == before
    assert world.alerts(SECONDARY) == []


def test_late_alarm_after_a_failback_does_not_fence_again(orchestrator: ModuleType, world: World) -> None:
    first = sns_event(alarm_message(PRIMARY, at="2024-05-01T12:00:00.000+0000"))
    run(orchestrator, first)
    assert run(orchestrator, {"action": "failback", "region": PRIMARY})["status"] == "failed_back"
    assert run(orchestrator, first)["status"] == "duplicate"
    older = run(orchestrator, sns_event(alarm_message(PRIMARY, at="2024-05-01T11:59:00.000+0000")))
    assert older["status"] == "stale"
    assert not world.fenced(PRIMARY, seen_from=SECONDARY)


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
def test_recovery_notifications_never_unfence(orchestrator: ModuleType, world: World, state: str) -> None:
    run(orchestrator, sns_event(alarm_message(PRIMARY)))
    result = run(orchestrator, sns_event(alarm_message(PRIMARY, state=state, at="2024-05-01T13:00:00.000+0000")))
    assert result["status"] == "ignored"
    assert world.fenced(PRIMARY, seen_from=SECONDARY)


def test_other_alarms_are_ignored(orchestrator: ModuleType, world: World) -> None:
    result = run(orchestrator, sns_event(alarm_message(PRIMARY, name="payments-lambda-errors-test")))
    assert result["status"] == "ignored"
    assert world.control(SECONDARY) == {}


def test_failback_only_when_asked(orchestrator: ModuleType, world: World) -> None:
    run(orchestrator, sns_event(alarm_message(PRIMARY)))
    world.alerts(SECONDARY)
    result = run(orchestrator, {"action": "failback", "region": PRIMARY, "reason": "primary recovered"})
    assert result["status"] == "failed_back"
    assert not world.fenced(PRIMARY, seen_from=SECONDARY)
    assert not world.fenced(PRIMARY, seen_from=PRIMARY)
    kinds = sorted(record["kind"]["S"] for record in failover_records(world).values())
    assert kinds == ["failback", "failover"]
    [alert] = world.alerts(SECONDARY)
    assert "failback" in alert["subject"]


def test_failback_of_an_unfenced_region_is_a_noop(orchestrator: ModuleType, world: World) -> None:
    assert run(orchestrator, {"action": "failback", "region": PRIMARY})["status"] == "noop"
    assert world.control(SECONDARY) == {}


def test_manual_failover(orchestrator: ModuleType, world: World) -> None:
    result = run(orchestrator, {"action": "failover", "region": PRIMARY, "reason": "game day"})
    assert result["status"] == "failed_over"
    assert world.fenced(PRIMARY, seen_from=SECONDARY)
    assert world.mapping_states(SECONDARY) == ["Enabled"]


@pytest.mark.parametrize("action", ["failover", "failback"])
def test_dry_run_changes_nothing(orchestrator: ModuleType, world: World, action: str) -> None:
    if action == "failback":
        run(orchestrator, sns_event(alarm_message(PRIMARY)))
        world.alerts(SECONDARY)
    before = {region: world.control(region) for region in (PRIMARY, SECONDARY)}
    states = {region: world.mapping_states(region) for region in (PRIMARY, SECONDARY)}
    concurrency = {region: world.concurrency(region) for region in (PRIMARY, SECONDARY)}
    result = run(orchestrator, {"action": action, "region": PRIMARY, "dry_run": True})
    assert result["status"] == "dry_run"
    assert result["actions"], "a dry run reports what it would do"
    assert {region: world.control(region) for region in (PRIMARY, SECONDARY)} == before
    assert {region: world.mapping_states(region) for region in (PRIMARY, SECONDARY)} == states
    assert {region: world.concurrency(region) for region in (PRIMARY, SECONDARY)} == concurrency
    assert world.alerts(SECONDARY) == []


def test_dry_run_failover_reports_the_preparation(orchestrator: ModuleType, world: World) -> None:
    actions = run(orchestrator, {"action": "failover", "region": PRIMARY, "dry_run": True})["actions"]
    assert any(action.startswith(f"fence {PRIMARY}") for action in actions)
    assert any("enable event source mapping" in action for action in actions)
    assert any("raise reserved concurrency" in action for action in actions)


def test_never_fences_both_regions(orchestrator: ModuleType, world: World) -> None:
    world.aws.put_fence(SECONDARY)
    result = run(orchestrator, sns_event(alarm_message(PRIMARY)))
    assert result["status"] == "refused"
    assert not world.fenced(PRIMARY, seen_from=SECONDARY)
    [record] = failover_records(world).values()
    assert record["status"] == {"S": "refused"}
    [alert] = world.alerts(SECONDARY)
    assert "REFUSED" in alert["subject"]
    assert run(orchestrator, sns_event(alarm_message(PRIMARY)))["status"] == "duplicate"
    assert world.alerts(SECONDARY) == []


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
def test_malformed_events_are_rejected_without_raising(orchestrator: ModuleType, world: World, event: Any) -> None:
    result = run(orchestrator, event)
    assert result["status"] == "rejected"
    assert result["reason"]
    assert world.control(SECONDARY) == {}
    assert world.alerts(SECONDARY) == []


def test_crash_between_record_and_fence_is_completed_by_redelivery(
    orchestrator: ModuleType, world: World, no_sleep: list[float]
) -> None:
    event = sns_event(alarm_message(PRIMARY))
    _, remove = inject_errors("dynamodb", "TransactWriteItems", failures=None, code="InternalServerError")
    try:
        with pytest.raises(Exception, match="InternalServerError"):
            run(orchestrator, event)
    finally:
        remove()
    [record] = failover_records(world).values()
    assert record["status"] == {"S": "recorded"}
    assert not world.fenced(PRIMARY, seen_from=SECONDARY)

    assert run(orchestrator, event)["status"] == "failed_over"
    assert world.fenced(PRIMARY, seen_from=SECONDARY)
    [record] = failover_records(world).values()
    assert record["status"] == {"S": "completed"}


def test_crash_after_fence_publishes_on_redelivery(
    orchestrator: ModuleType, world: World, no_sleep: list[float]
) -> None:
    event = sns_event(alarm_message(PRIMARY))
    _, remove = inject_errors("sns", "Publish", failures=None, code="InternalFailure")
    try:
        with pytest.raises(Exception, match="InternalFailure"):
            run(orchestrator, event)
    finally:
        remove()
    assert world.fenced(PRIMARY, seen_from=SECONDARY)
    assert world.alerts(SECONDARY) == []
    assert run(orchestrator, event)["status"] == "failed_over"
    assert len(world.alerts(SECONDARY)) == 1


def test_unreachable_peer_replica_does_not_block_the_failover(
    orchestrator: ModuleType, world: World, no_sleep: list[float]
) -> None:
    _, remove = inject_errors("dynamodb", "PutItem", failures=None, code="InternalServerError", region=PRIMARY)
    try:
        result = run(orchestrator, sns_event(alarm_message(PRIMARY)))
    finally:
        remove()
    assert result["status"] == "failed_over"
    assert any("could not reach" in action for action in result["actions"])
    assert world.fenced(PRIMARY, seen_from=SECONDARY)
    assert not world.fenced(PRIMARY, seen_from=PRIMARY)


# ---------------------------------------------------------------- heartbeats


def test_schedule_writes_own_heartbeat_and_leaves_a_fresh_peer_alone(orchestrator: ModuleType, world: World) -> None:
    put_heartbeat(world.aws, PRIMARY, ago(30))
    result = run(orchestrator, SCHEDULED)
    assert (result["status"], result["active_region"]) == ("heartbeat", PRIMARY)
    assert "failover" not in result
    assert f"heartbeat#{SECONDARY}" in world.control(SECONDARY)
    assert not world.fenced(PRIMARY, seen_from=SECONDARY)


def test_stale_primary_heartbeat_fails_over_once(orchestrator: ModuleType, world: World) -> None:
    put_heartbeat(world.aws, PRIMARY, ago(600))
    result = run(orchestrator, SCHEDULED)
    assert result["failover"]["status"] == "failed_over"
    assert result["failover"]["event"].startswith(f"failover#{PRIMARY}#heartbeat#")
    assert world.fenced(PRIMARY, seen_from=SECONDARY)
    assert len(world.alerts(SECONDARY)) == 1
    again = run(orchestrator, SCHEDULED)
    assert again["active_region"] == SECONDARY
    assert "failover" not in again
    assert world.alerts(SECONDARY) == []


def test_peer_that_never_wrote_a_heartbeat_is_not_failed(orchestrator: ModuleType, world: World) -> None:
    result = run(orchestrator, SCHEDULED)
    assert "warning" in result
    assert not world.fenced(PRIMARY, seen_from=SECONDARY)


def test_primary_does_not_fence_a_stale_standby(world: World) -> None:
    primary = load_handler("failover_orchestrator", PRIMARY)
    put_heartbeat(world.aws, SECONDARY, ago(600))
    result = run(primary, SCHEDULED)
    assert result["active_region"] == PRIMARY
    assert "failover" not in result
    assert not world.fenced(SECONDARY, seen_from=PRIMARY)


def test_fenced_primary_refuses_to_fence_the_stale_active_secondary(world: World) -> None:
    primary = load_handler("failover_orchestrator", PRIMARY)
    world.aws.put_fence(PRIMARY)
    put_heartbeat(world.aws, SECONDARY, ago(600))
    result = run(primary, SCHEDULED)
    assert result["active_region"] == SECONDARY
    assert result["failover"]["status"] == "refused"
    assert not world.fenced(SECONDARY, seen_from=PRIMARY)
