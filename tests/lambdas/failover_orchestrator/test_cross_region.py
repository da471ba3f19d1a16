"""Two regions end to end in process: the failures of issue #13, each with replication explicit.

moto has no global tables: each region has its own tables of the same name and the
:class:`~tests.lambdas.conftest.Replicator` copies items between them, last writer wins, only
when a test says so. Lag, a stall and a partition are therefore visible in every test.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.lambdas.conftest import (
    CONTROL,
    IDEMPOTENCY,
    PRIMARY,
    SECONDARY,
    TRANSACTIONS,
    FakeContext,
    Replicator,
    api_event,
    inject_errors,
    load_handler,
)
from tests.lambdas.failover_orchestrator.conftest import SCHEDULED, Clock, World

LEASE, MARGIN, INTERVAL = 130, 40, 60
REGIONS = (PRIMARY, SECONDARY)


class Pair:
    """Every function in both regions, on one clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.fn = {
            name: {region: load_handler(name, region) for region in REGIONS}
            for name in ("payment_validation", "payment_processing", "health", "failover_orchestrator")
        }
        clock.use(*(module for copies in self.fn.values() for module in copies.values()))

    def post(self, region: str, key: str = "client-key-1") -> tuple[int, dict[str, Any]]:
        module = self.fn["payment_validation"][region]
        module.LEASES.clear()
        response = module.handler(api_event(key=key), FakeContext())
        return response["statusCode"], json.loads(response["body"])

    def tick(self, region: str) -> dict[str, Any]:
        return self.fn["failover_orchestrator"][region].route(SCHEDULED, self.clock.now)

    def process(self, region: str, world: World) -> list[str]:
        """Run the region's processing function over what is on its queue (as its SQS mapping would)."""
        messages = world.aws.messages(region)
        records = [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{region}:123456789012:payments-processing-test",
                "awsRegion": region,
            }
            for message in messages
        ]
        if records:
            result = self.fn["payment_processing"][region].handler({"Records": records}, FakeContext())
            assert result["batchItemFailures"] == []
        return [json.loads(message["Body"])["payment_id"] for message in messages]

    def health(self, region: str) -> int:
        return self.fn["health"][region].handler({}, FakeContext())["statusCode"]

    def active(self) -> set[str]:
        """Regions whose data plane accepts payments now (each judged by its own replica and clock)."""
        now_ms = int(self.clock.now.timestamp() * 1000)
        found = set()
        for region in REGIONS:
            cache = self.fn["payment_validation"][region].LEASES
            cache.clear()
            if cache.is_active(now_ms):
                found.add(region)
        return found

    def dns(self) -> str:
        """Where Route 53 sends clients: the primary unless its check fails and the secondary's passes."""
        if self.health(PRIMARY) == 200 or self.health(SECONDARY) != 200:
            return PRIMARY
        return SECONDARY


@pytest.fixture
def pair(world: World, clock: Clock) -> Pair:
    return Pair(clock)


def status_of(world: World, region: str, payment_id: str) -> str:
    item = world.aws.item(TRANSACTIONS, {"payment_id": payment_id}, region)
    assert item is not None
    return item["status"]["S"]


def start(pair: Pair, replicator: Replicator) -> None:
    """Both orchestrators ran once and saw each other."""
    pair.tick(PRIMARY)
    pair.tick(SECONDARY)
    replicator.both_ways(CONTROL)
    pair.tick(PRIMARY)
    pair.tick(SECONDARY)
    replicator.both_ways(CONTROL)


def run_until_promoted(pair: Pair, replicator: Replicator | None = None) -> int:
    """Minute by minute: the primary is dead, the secondary probes; returns the seconds it took."""
    waited = 0
    while pair.tick(SECONDARY)["status"] != "promoted":
        pair.clock.advance(INTERVAL)
        waited += INTERVAL
        assert waited <= LEASE + MARGIN + 2 * INTERVAL, "promotion must fit lease + margin + two probes"
    return waited


def test_the_standby_refuses_with_421_and_the_active_region_accepts(pair: Pair, world: World) -> None:
    status, body = pair.post(SECONDARY, key="new-key")
    assert (status, body["error"]) == (421, "region_not_active")
    assert world.aws.items(TRANSACTIONS, SECONDARY) == []
    assert pair.post(PRIMARY, key="new-key")[0] == 202


def test_payment_stranded_by_a_dead_primary_is_processed_after_promotion(
    pair: Pair, world: World, replicator: Replicator
) -> None:
    """Issue: accepted and replicated, its queue message stranded in the dead primary, PENDING for ever."""
    start(pair, replicator)
    status, first = pair.post(PRIMARY)
    assert status == 202
    replicator.both_ways(TRANSACTIONS, IDEMPOTENCY)
    # The primary dies now: its queue and its processing are gone with it.
    assert pair.post(SECONDARY)[0] == 421, "the standby refuses until it is promoted"
    waited = run_until_promoted(pair)
    assert waited <= LEASE + MARGIN + 2 * INTERVAL
    assert pair.process(SECONDARY, world) == [first["payment_id"]]
    assert status_of(world, SECONDARY, first["payment_id"]) == "PROCESSED"
    status, retried = pair.post(SECONDARY)
    assert (status, retried["payment_id"]) == (202, first["payment_id"])


def test_a_payment_posted_in_both_regions_inside_the_replication_window_is_decided_once(
    pair: Pair, world: World, replicator: Replicator
) -> None:
    _, first = pair.post(PRIMARY)
    assert pair.post(SECONDARY)[0] == 421, "nothing replicated yet: without the lease both would accept"
    pair.process(PRIMARY, world)
    replicator.both_ways()
    assert status_of(world, PRIMARY, first["payment_id"]) == status_of(world, SECONDARY, first["payment_id"])
    assert world.aws.messages(SECONDARY) == []


def test_a_processed_payment_never_reverts_to_pending(pair: Pair, world: World, replicator: Replicator) -> None:
    """Issue: PROCESSED in one region, overwritten back to PENDING by the other's later write."""
    start(pair, replicator)
    _, first = pair.post(PRIMARY)
    pair.process(PRIMARY, world)
    replicator.both_ways()
    pair.clock.advance(1)
    orchestrator = pair.fn["failover_orchestrator"][SECONDARY]
    assert orchestrator.route({"action": "failover", "region": PRIMARY}, pair.clock.now)["status"] == "handed_over"
    # The client retries in the new active region: the final status stands, nothing is written.
    status, retried = pair.post(SECONDARY)
    assert (status, retried["payment_id"]) == (202, first["payment_id"])
    assert pair.process(SECONDARY, world) == []
    replicator.both_ways()
    for region in REGIONS:
        item = world.aws.item(TRANSACTIONS, {"payment_id": first["payment_id"]}, region)
        assert (item["status"], item["version"]) == ({"S": "PROCESSED"}, {"N": "2"})


def test_a_decision_not_yet_replicated_is_repeated_with_the_same_provider_key(
    pair: Pair, world: World, replicator: Replicator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The RPO case: the primary's PROCESSED had not replicated when the lease moved (docs/design.md, limits)."""
    start(pair, replicator)
    keys: dict[str, list[str]] = {region: [] for region in REGIONS}
    for region in REGIONS:
        module = pair.fn["payment_processing"][region]
        original = module.charge

        def recording(key: str, item: dict[str, Any], _region: str = region, _original: Any = original) -> Any:
            keys[_region].append(key)
            return _original(key, item)

        monkeypatch.setattr(module, "charge", recording)
    _, first = pair.post(PRIMARY)
    replicator.both_ways(TRANSACTIONS, IDEMPOTENCY)  # the PENDING payment replicated ...
    pair.process(PRIMARY, world)  # ... its PROCESSED update has not
    pair.clock.advance(1)
    orchestrator = pair.fn["failover_orchestrator"][SECONDARY]
    assert orchestrator.route({"action": "failover", "region": PRIMARY}, pair.clock.now)["status"] == "handed_over"
    assert pair.process(SECONDARY, world) == [first["payment_id"]], "the promotion sweep re-enqueued it"
    assert keys == {PRIMARY: [first["payment_id"]], SECONDARY: [first["payment_id"]]}, "one provider key: one charge"
    replicator.both_ways()
    statuses = {region: status_of(world, region, first["payment_id"]) for region in REGIONS}
    assert statuses == {PRIMARY: "PROCESSED", SECONDARY: "PROCESSED"}


def partitioned(pair: Pair, region: str) -> dict[str, Any]:
    """Run ``region``'s probe while it cannot reach the other region's DynamoDB (replication stalled too)."""
    _, remove = inject_errors(
        "dynamodb", "*", failures=None, code="InternalServerError", region=SECONDARY if region == PRIMARY else PRIMARY
    )
    try:
        return pair.tick(region)
    finally:
        remove()


def test_a_partition_never_makes_two_active_regions_and_never_none_for_long(
    pair: Pair, world: World, replicator: Replicator, no_sleep: list[float]
) -> None:
    """Both regions alive, neither reaches the other (direct writes fail, replication stalled).

    Safety wins: the holder stops when it cannot renew in the peer, the standby starts only after
    lease + margin, and a promoted region that cannot renew either stops again (without a witness
    region nobody can tell a partition from a dead peer: docs/design.md, limits).
    """
    start(pair, replicator)
    timeline: list[tuple[int, set[str]]] = []
    for second in range(0, 6 * INTERVAL, 10):
        if second % INTERVAL == 0:
            partitioned(pair, PRIMARY)
            partitioned(pair, SECONDARY)
        timeline.append((second, pair.active()))
        pair.clock.advance(10)
    assert all(len(active) <= 1 for _, active in timeline), timeline
    first_secondary = min(second for second, active in timeline if active == {SECONDARY})
    last_primary = max(second for second, active in timeline if active == {PRIMARY})
    assert last_primary < first_secondary, "the old holder stopped before the standby started"
    assert first_secondary - last_primary <= MARGIN + 2 * INTERVAL
    # The partition heals: one probe each and exactly one region is active; the old holder stays down.
    pair.tick(PRIMARY)
    pair.tick(SECONDARY)
    assert pair.active() == {SECONDARY}
    replicator.both_ways()
    assert pair.active() == {SECONDARY}


def test_dns_always_points_at_the_active_region(
    pair: Pair, world: World, replicator: Replicator, no_sleep: list[float]
) -> None:
    start(pair, replicator)
    assert (pair.active(), pair.dns()) == ({PRIMARY}, PRIMARY)
    # Manual failover (or the primary's alarm): the lease moves without waiting.
    orchestrator = pair.fn["failover_orchestrator"][SECONDARY]
    assert orchestrator.route({"action": "failover", "region": PRIMARY}, pair.clock.now)["status"] == "handed_over"
    assert (pair.active(), pair.dns()) == ({SECONDARY}, SECONDARY)
    # Failback once the primary is healthy and replication caught up.
    pair.tick(PRIMARY)
    pair.tick(SECONDARY)
    replicator.both_ways(CONTROL)
    assert orchestrator.route({"action": "failback", "region": PRIMARY}, pair.clock.now)["status"] == "failed_back"
    assert (pair.active(), pair.dns()) == ({PRIMARY}, PRIMARY)
    # Fail over again, then the secondary dies too (double failure): Route 53 sees both unhealthy
    # and answers the primary, which refuses with 421 until it promotes itself.
    pair.clock.advance(1)
    assert orchestrator.route({"action": "failover", "region": PRIMARY}, pair.clock.now)["status"] == "handed_over"
    assert partitioned(pair, PRIMARY)["status"] == "standby"
    pair.clock.advance(LEASE + 1)
    assert pair.health(PRIMARY) == 503
    assert pair.post(PRIMARY, key="during-double-failure")[0] == 421
    waited = 0
    while partitioned(pair, PRIMARY)["status"] != "promoted":
        pair.clock.advance(INTERVAL)
        waited += INTERVAL
        assert waited <= MARGIN + 2 * INTERVAL
    assert pair.health(PRIMARY) == 200
    assert PRIMARY in pair.active()
