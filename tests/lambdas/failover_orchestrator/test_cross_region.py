"""A client retry across a failover creates exactly one payment.

moto has no global tables, so each region has its own tables of the same name and
``replicate`` copies items between them the way global-table replication would. The
tests choose when replication happens: after the first attempt (the normal case, ~1 s in
AWS) or not at all before the retry (the race that only the deterministic payment id and
the conditional write protect against).
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from tests.lambdas.conftest import (
    CONTROL,
    IDEMPOTENCY,
    PRIMARY,
    SECONDARY,
    TRANSACTIONS,
    FakeContext,
    api_event,
    load_handler,
    replicate,
)
from tests.lambdas.failover_orchestrator.conftest import World, alarm_message, sns_event


@pytest.fixture
def regions(world: World) -> dict[str, ModuleType]:
    return {region: load_handler("payment_validation", region) for region in (PRIMARY, SECONDARY)}


def post(module: ModuleType, key: str = "client-key-1") -> tuple[int, dict[str, Any], dict[str, str]]:
    response = module.handler(api_event(key=key), FakeContext())
    return response["statusCode"], json.loads(response["body"]), response["headers"]


def fail_over_primary(world: World) -> None:
    orchestrator = load_handler("failover_orchestrator", SECONDARY)
    assert orchestrator.handler(sns_event(alarm_message(PRIMARY)), FakeContext())["status"] == "failed_over"


def payment_ids(world: World) -> set[str]:
    return {
        item["payment_id"]["S"] for region in (PRIMARY, SECONDARY) for item in world.aws.items(TRANSACTIONS, region)
    }


def test_fenced_region_refuses_and_healthy_region_accepts(regions: dict[str, ModuleType], world: World) -> None:
    fail_over_primary(world)
    status, body, headers = post(regions[PRIMARY], key="new-key")
    assert (status, body["error"], "Retry-After" in headers) == (503, "region_fenced", True)
    assert world.aws.items(TRANSACTIONS, PRIMARY) == []
    status, body, _ = post(regions[SECONDARY], key="new-key")
    assert (status, body["status"]) == (202, "PENDING")


def test_retry_after_failover_replays_the_first_answer(regions: dict[str, ModuleType], world: World) -> None:
    status, first, _ = post(regions[PRIMARY])
    assert status == 202
    for table in (TRANSACTIONS, IDEMPOTENCY, CONTROL):
        replicate(world.aws, table, PRIMARY, SECONDARY)
    fail_over_primary(world)
    # Within the fence cache's few seconds the primary would still replay its own answer;
    # once the cached lookup expires (cleared here) it refuses.
    assert post(regions[PRIMARY])[:2] == (202, first)
    regions[PRIMARY].FENCES.clear()
    assert post(regions[PRIMARY])[0] == 503
    status, retried, _ = post(regions[SECONDARY])
    assert (status, retried) == (202, first)
    assert payment_ids(world) == {first["payment_id"]}
    assert world.aws.queue_depth(SECONDARY) == 0, "the idempotency record replays without re-enqueueing"


def test_retry_racing_replication_still_makes_one_payment(regions: dict[str, ModuleType], world: World) -> None:
    status, first, _ = post(regions[PRIMARY])
    assert status == 202
    fail_over_primary(world)
    # Nothing replicated yet: the secondary has no idempotency record and no payment.
    status, retried, _ = post(regions[SECONDARY])
    assert (status, retried["payment_id"]) == (202, first["payment_id"])
    # Replication converges both regions on the one payment id.
    replicate(world.aws, TRANSACTIONS, SECONDARY, PRIMARY)
    replicate(world.aws, TRANSACTIONS, PRIMARY, SECONDARY)
    assert payment_ids(world) == {first["payment_id"]}
    assert len(world.aws.items(TRANSACTIONS, PRIMARY)) == len(world.aws.items(TRANSACTIONS, SECONDARY)) == 1


def test_retry_finding_the_replicated_payment_without_its_idempotency_record(
    regions: dict[str, ModuleType], world: World
) -> None:
    status, first, _ = post(regions[PRIMARY])
    replicate(world.aws, TRANSACTIONS, PRIMARY, SECONDARY)
    fail_over_primary(world)
    status, retried, _ = post(regions[SECONDARY])
    assert (status, retried) == (202, first)
    # Still PENDING: queued again in the healthy region, whose consumer was enabled by the failover.
    [message] = world.aws.messages(SECONDARY)
    assert json.loads(message["Body"]) == {"payment_id": first["payment_id"]}
    assert payment_ids(world) == {first["payment_id"]}


def test_failover_turns_the_fenced_regions_health_check_red(world: World) -> None:
    """The orchestrator moves DNS only through /health: Route 53's check of the fenced region fails."""
    health = {region: load_handler("health", region) for region in (PRIMARY, SECONDARY)}
    assert {r: h.handler({}, FakeContext())["statusCode"] for r, h in health.items()} == {PRIMARY: 200, SECONDARY: 200}
    fail_over_primary(world)
    answers = {region: handler.handler({}, FakeContext()) for region, handler in health.items()}
    assert answers[PRIMARY]["statusCode"] == 503
    assert json.loads(answers[PRIMARY]["body"])["status"] == "fenced"
    assert answers[SECONDARY]["statusCode"] == 200
