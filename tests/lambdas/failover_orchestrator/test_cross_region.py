"""Two regions and the witness end to end in process: the failures of issue #13, replication explicit.

moto has no global tables: each region has its own tables of the same name and the
:class:`~tests.lambdas.conftest.Replicator` copies items between them, last writer wins, only
when a test says so. Lag, a stall and a partition are therefore visible in every test.

The witness is a third region's plain table. Every direct call an orchestrator makes into the
other region's replica or into the witness goes through a :class:`Net` link that a test can cut
per direction, so a partition, a dead region, a dead witness and a witness only one side reaches
are each a set of cut links. Each region may run on its own skewed clock.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from tests.lambdas.conftest import (
    CONTROL,
    IDEMPOTENCY,
    PRIMARY,
    SECONDARY,
    TRANSACTIONS,
    WITNESS,
    FakeContext,
    Replicator,
    api_event,
    inject_errors,
    load_handler,
)
from tests.lambdas.failover_orchestrator.conftest import SCHEDULED, Clock, World, instant_canary

LEASE, MARGIN, INTERVAL = 130, 40, 60
REGIONS = (PRIMARY, SECONDARY)
#: Region down, worst case after the last counted renewal (docs/design.md, "Timings"): 290 s.
WORST_PROMOTION = INTERVAL + LEASE + MARGIN + INTERVAL
#: No region active, at most (docs/design.md, "None active, at most"), sampled every 10 s.
NONE_ACTIVE_BOUND = MARGIN + 2 * INTERVAL
SAMPLE = 10


class Net:
    """The direct links between the regions and the witness: ``(caller, target)`` pairs that are cut."""

    def __init__(self) -> None:
        self.cut: set[tuple[str, str]] = set()

    def partition(self, a: str, b: str) -> None:
        """Neither side reaches the other (and replication between them is stalled: tests do not call it)."""
        self.cut |= {(a, b), (b, a)}

    def down(self, target: str) -> None:
        """Nobody reaches ``target`` (a region, or ``WITNESS``)."""
        self.cut |= {(caller, target) for caller in (*REGIONS, WITNESS) if caller != target}

    def heal(self) -> None:
        self.cut.clear()


class Link:
    """A DynamoDB client as seen from ``caller``: every call fails while the link to ``target`` is cut."""

    def __init__(self, client: Any, net: Net, caller: str, target: str) -> None:
        self._client, self._net, self._caller, self._target = client, net, caller, target

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if (self._caller, self._target) in self._net.cut:
                raise EndpointConnectionError(endpoint_url=f"https://dynamodb.{self._target}.amazonaws.com")
            return attribute(*args, **kwargs)

        return call


class Pair:
    """Every function in both regions, each region on its own (possibly skewed) view of one clock."""

    def __init__(self, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
        self.clock = clock
        self.net = Net()
        self.skew = dict.fromkeys(REGIONS, 0.0)
        self.fn = {
            name: {region: load_handler(name, region) for region in REGIONS}
            for name in ("payment_validation", "payment_processing", "health", "failover_orchestrator")
        }
        for copies in self.fn.values():
            for region, module in copies.items():
                monkeypatch.setattr(module, "utc_now", lambda region=region: self.now(region))
        for region, module in self.fn["failover_orchestrator"].items():
            peer = SECONDARY if region == PRIMARY else PRIMARY
            monkeypatch.setattr(module, "PEER_DYNAMODB", Link(module.PEER_DYNAMODB, self.net, region, peer))
            monkeypatch.setattr(module, "WITNESS_DYNAMODB", Link(module.WITNESS_DYNAMODB, self.net, region, WITNESS))
            instant_canary(monkeypatch, module)

    def now(self, region: str) -> datetime:
        """``region``'s clock: the test's clock plus that region's skew."""
        return self.clock.now + timedelta(seconds=self.skew[region])

    def post(self, region: str, key: str = "client-key-1") -> tuple[int, dict[str, Any]]:
        module = self.fn["payment_validation"][region]
        module.LEASES.clear()
        response = module.handler(api_event(key=key), FakeContext())
        return response["statusCode"], json.loads(response["body"])

    def tick(self, region: str) -> dict[str, Any]:
        return self.fn["failover_orchestrator"][region].route(SCHEDULED, self.now(region))

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
        found = set()
        for region in REGIONS:
            cache = self.fn["payment_validation"][region].LEASES
            cache.clear()
            if cache.is_active(int(self.now(region).timestamp() * 1000)):
                found.add(region)
        return found

    def run(self, seconds: int, ticking: tuple[str, ...]) -> list[tuple[int, set[str]]]:
        """Advance ``seconds``; every probe interval the ``ticking`` regions probe; who is active every 10 s."""
        timeline = []
        for second in range(0, seconds, SAMPLE):
            if second % INTERVAL == 0:
                for region in ticking:
                    self.tick(region)
            timeline.append((second, self.active()))
            self.clock.advance(SAMPLE)
        return timeline

    def dns(self) -> str:
        """Where Route 53 sends clients: the primary unless its check fails and the secondary's passes."""
        if self.health(PRIMARY) == 200 or self.health(SECONDARY) != 200:
            return PRIMARY
        return SECONDARY


@pytest.fixture
def pair(world: World, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Pair:
    return Pair(clock, monkeypatch)


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


def none_active_longest(timeline: list[tuple[int, set[str]]]) -> int:
    """The longest stretch of samples with no region active, in seconds."""
    longest = run = 0
    for _, active in timeline:
        run = run + SAMPLE if not active else 0
        longest = max(longest, run)
    return longest


def promoted_and_stayed(timeline: list[tuple[int, set[str]]], region: str) -> int:
    """When ``region`` became active; asserts it stayed the only active region from then on."""
    started = min(second for second, active in timeline if active == {region})
    later = [(second, active) for second, active in timeline if second >= started]
    assert all(active == {region} for _, active in later), later
    return started


def never_two(timeline: list[tuple[int, set[str]]]) -> None:
    assert all(len(active) <= 1 for _, active in timeline), [entry for entry in timeline if len(entry[1]) > 1]


def test_the_primary_down_for_an_hour_the_secondary_promotes_in_time_and_stays_active(
    pair: Pair, world: World, replicator: Replicator
) -> None:
    """The main DR case: it renews own replica + witness while the dead region cannot be reached."""
    start(pair, replicator)
    pair.net.down(PRIMARY)
    timeline = pair.run(3600, ticking=(SECONDARY,))
    never_two(timeline)
    promoted_at = promoted_and_stayed(timeline, SECONDARY)
    assert promoted_at <= WORST_PROMOTION
    assert none_active_longest(timeline) <= NONE_ACTIVE_BOUND
    assert timeline[-1] == (3590, {SECONDARY}), "still active an hour later"
    assert world.holder(SECONDARY) == world.holder(WITNESS) == (2, SECONDARY)
    assert world.holder(PRIMARY) == (1, PRIMARY), "the dead region's replica was never reached"


def test_the_old_primary_returning_after_the_promotion_steps_down(
    pair: Pair, world: World, replicator: Replicator
) -> None:
    start(pair, replicator)
    pair.net.down(PRIMARY)
    pair.run(600, ticking=(SECONDARY,))
    pair.net.heal()
    # It comes back before replication brings it anything: the peer and the witness tell it.
    result = pair.tick(PRIMARY)
    assert (result["status"], result["reason"]) == ("demoted", f"{SECONDARY} holds epoch 2")
    assert world.holder(PRIMARY) == (2, SECONDARY)
    assert world.mapping_states(PRIMARY) == ["Disabled"]
    assert pair.active() == {SECONDARY}
    replicator.both_ways(CONTROL)
    timeline = pair.run(600, ticking=(PRIMARY, SECONDARY))
    assert all(active == {SECONDARY} for _, active in timeline), timeline


def test_a_30_minute_partition_with_the_witness_reachable_keeps_exactly_one_region_active(
    pair: Pair, world: World, replicator: Replicator
) -> None:
    """The holder renews own replica + witness; the standby sees the witness's seq move and never promotes."""
    start(pair, replicator)
    pair.net.partition(PRIMARY, SECONDARY)
    timeline = pair.run(1800, ticking=(PRIMARY, SECONDARY))
    assert all(active == {PRIMARY} for _, active in timeline), "exactly one active, none-active 0 s"
    assert world.holder(SECONDARY) == (1, PRIMARY)
    pair.net.heal()
    replicator.both_ways()
    timeline = pair.run(300, ticking=(PRIMARY, SECONDARY))
    assert all(active == {PRIMARY} for _, active in timeline)


def test_the_witness_down_changes_nothing(pair: Pair, world: World, replicator: Replicator) -> None:
    """Own replica + peer replica are a majority: renewals and watching go on as with two regions."""
    start(pair, replicator)
    pair.net.down(WITNESS)
    timeline = pair.run(1800, ticking=(PRIMARY, SECONDARY))
    assert all(active == {PRIMARY} for _, active in timeline)
    pair.net.heal()
    result = pair.tick(PRIMARY)
    assert (result["status"], result["copies"]) == ("renewed", [SECONDARY, "witness", PRIMARY])


def test_the_witness_down_and_a_partition_never_make_two_active_and_recover_when_a_link_returns(
    pair: Pair, world: World, replicator: Replicator
) -> None:
    """Two failures at once: only two of three copies exist per side, so no side has a majority.

    Stated limit (docs/design.md): the holder lapses after its lease and the standby cannot
    promote, so no region takes payments until one link returns.
    """
    start(pair, replicator)
    pair.net.down(WITNESS)
    pair.net.partition(PRIMARY, SECONDARY)
    timeline = pair.run(1800, ticking=(PRIMARY, SECONDARY))
    never_two(timeline)
    assert all(active == {PRIMARY} for second, active in timeline if second < LEASE)
    assert all(active == set() for second, active in timeline if second >= LEASE), "availability drops"
    assert world.holder(SECONDARY) == (1, PRIMARY), "the standby never claimed without a majority"
    pair.net.cut -= {(PRIMARY, SECONDARY), (SECONDARY, PRIMARY)}  # the regions see each other again
    timeline = pair.run(600, ticking=(PRIMARY, SECONDARY))
    never_two(timeline)
    assert all(active == {PRIMARY} for _, active in timeline), "the first renewal on a majority wins"


def test_a_partition_where_only_the_standby_reaches_the_witness_moves_the_lease_once(
    pair: Pair, world: World, replicator: Replicator
) -> None:
    """The holder is cut off from both other copies: it lapses, the standby promotes with the witness."""
    start(pair, replicator)
    pair.net.partition(PRIMARY, SECONDARY)
    pair.net.cut.add((PRIMARY, WITNESS))
    timeline = pair.run(1800, ticking=(PRIMARY, SECONDARY))
    never_two(timeline)
    assert max(second for second, active in timeline if active == {PRIMARY}) < LEASE
    assert promoted_and_stayed(timeline, SECONDARY) <= WORST_PROMOTION
    assert none_active_longest(timeline) <= NONE_ACTIVE_BOUND
    pair.net.heal()
    assert pair.tick(PRIMARY)["status"] == "demoted"
    replicator.both_ways()
    timeline = pair.run(300, ticking=(PRIMARY, SECONDARY))
    assert all(active == {SECONDARY} for _, active in timeline)


def test_a_partition_where_only_the_holder_reaches_the_witness_changes_nothing(
    pair: Pair, world: World, replicator: Replicator
) -> None:
    """The standby sees neither copy move but cannot write a majority: it never claims the lease."""
    start(pair, replicator)
    pair.net.partition(PRIMARY, SECONDARY)
    pair.net.cut.add((SECONDARY, WITNESS))
    timeline = pair.run(1800, ticking=(PRIMARY, SECONDARY))
    assert all(active == {PRIMARY} for _, active in timeline)
    assert world.holder(SECONDARY) == (1, PRIMARY)
    assert world.holder(WITNESS) == (1, PRIMARY)


@pytest.mark.parametrize("skewed", REGIONS)
@pytest.mark.parametrize("skew", [-300, 300])
def test_five_minutes_of_clock_skew_change_no_decision(
    pair: Pair, world: World, replicator: Replicator, skewed: str, skew: int
) -> None:
    """Elapsed time is measured on the reader's own clock: skew neither hides a dead holder nor fakes one."""
    pair.skew[skewed] = skew
    start(pair, replicator)
    timeline = pair.run(900, ticking=(PRIMARY, SECONDARY))
    assert all(active == {PRIMARY} for _, active in timeline), "a live holder is never overtaken"
    pair.net.down(PRIMARY)
    timeline = pair.run(1200, ticking=(SECONDARY,))
    never_two(timeline)
    assert promoted_and_stayed(timeline, SECONDARY) <= WORST_PROMOTION
    assert none_active_longest(timeline) <= NONE_ACTIVE_BOUND


def test_failback_with_the_witness_is_refused_until_the_primary_is_healthy_and_caught_up(
    pair: Pair, world: World, replicator: Replicator
) -> None:
    start(pair, replicator)
    pair.net.down(PRIMARY)
    pair.run(600, ticking=(SECONDARY,))
    orchestrator = pair.fn["failover_orchestrator"][SECONDARY]
    failback = {"action": "failback", "region": PRIMARY}
    assert orchestrator.route(failback, pair.clock.now)["status"] == "refused", "the primary is still down"
    pair.net.heal()
    pair.tick(PRIMARY)  # back: it steps down and heartbeats ...
    replicator.sync(CONTROL, PRIMARY, SECONDARY)
    pair.tick(SECONDARY)
    pair.tick(SECONDARY)  # ... but the secondary's latest heartbeat has not reached it
    refused = orchestrator.route(failback, pair.clock.now)
    assert refused["status"] == "refused"
    assert "replication" in refused["reason"]
    assert pair.active() == {SECONDARY}
    replicator.both_ways(CONTROL)
    assert orchestrator.route(failback, pair.clock.now)["status"] == "failed_back"
    assert pair.active() == {PRIMARY}
    assert world.holder(PRIMARY) == world.holder(SECONDARY) == world.holder(WITNESS) == (3, PRIMARY)
    timeline = pair.run(600, ticking=(PRIMARY, SECONDARY))
    assert all(active == {PRIMARY} for _, active in timeline)


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


def test_a_renewal_racing_the_promotion_between_its_writes_leaves_at_most_one_active_and_heals(
    pair: Pair, world: World, replicator: Replicator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rare race of docs/design.md ("None active, at most").

    The slow holder renews into the standby's replica right after the standby claimed the witness,
    before the standby writes its own replica.
    """
    start(pair, replicator)
    pair.tick(SECONDARY)
    pair.clock.advance(LEASE + MARGIN + 1)  # the primary was silent (slow, not dead) all that time
    secondary = pair.fn["failover_orchestrator"][SECONDARY]
    original = secondary.control.claim
    seen: list[set[str]] = []

    def holder_renews_first(client: Any, *args: Any, **kwargs: Any) -> bool:
        if client.meta.region_name == PRIMARY:  # the witness is claimed; the peer's replica is next
            seen.append(set(pair.active()))
            pair.tick(PRIMARY)  # this replica accepts its renewal, the witness has epoch 2: it steps down
            seen.append(set(pair.active()))
        return original(client, *args, **kwargs)

    monkeypatch.setattr(secondary.control, "claim", holder_renews_first)
    result = pair.tick(SECONDARY)
    monkeypatch.setattr(secondary.control, "claim", original)
    assert result["status"] == "standby", "its own replica moved on: it backs off"
    assert all(len(active) <= 1 for active in seen)
    assert pair.active() == set(), "both backed off"
    assert world.holder(PRIMARY) == world.holder(WITNESS) == (2, SECONDARY)
    # Replication brings the primary's step-down (epoch 2, holder secondary) within seconds ...
    replicator.both_ways(CONTROL)
    assert pair.active() == {SECONDARY}
    # ... and the secondary renews it on a majority from then on.
    timeline = pair.run(600, ticking=(PRIMARY, SECONDARY))
    assert all(active == {SECONDARY} for _, active in timeline)


def test_the_same_race_without_replication_heals_with_the_next_promotion(
    pair: Pair, world: World, replicator: Replicator, monkeypatch: pytest.MonkeyPatch
) -> None:
    start(pair, replicator)
    pair.tick(SECONDARY)
    pair.clock.advance(LEASE + MARGIN + 1)
    secondary = pair.fn["failover_orchestrator"][SECONDARY]
    original = secondary.control.claim

    def holder_renews_first(client: Any, *args: Any, **kwargs: Any) -> bool:
        if client.meta.region_name == PRIMARY:
            pair.tick(PRIMARY)
        return original(client, *args, **kwargs)

    monkeypatch.setattr(secondary.control, "claim", holder_renews_first)
    assert pair.tick(SECONDARY)["status"] == "standby"
    monkeypatch.setattr(secondary.control, "claim", original)
    assert pair.active() == set()
    pair.net.partition(PRIMARY, SECONDARY)  # and replication stalls
    timeline = pair.run(LEASE + MARGIN + 2 * INTERVAL + SAMPLE, ticking=(PRIMARY, SECONDARY))
    never_two(timeline)
    # Whichever region's next promotion reaches the witness first wins it (here the primary, which
    # probes first), and keeps it; the other sees the witness move and stays standby.
    first = next(active for _, active in timeline if active)
    assert first == {PRIMARY}
    assert promoted_and_stayed(timeline, PRIMARY) <= LEASE + MARGIN + 2 * INTERVAL
    assert world.holder(PRIMARY) == world.holder(WITNESS) == (3, PRIMARY)


class Crashed(BaseException):
    """The orchestrator's process died (killed, timed out): no ``except Exception`` catches it."""


def test_a_promotion_that_crashed_after_its_witness_write_is_finished_at_the_next_probe(
    pair: Pair, world: World, replicator: Replicator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the DR drill (orchestrator_crash): without this, the claim in the witness reset the
    standby's watch and promotion waited another lease + margin."""
    start(pair, replicator)
    pair.net.down(PRIMARY)
    secondary = pair.fn["failover_orchestrator"][SECONDARY]
    original = secondary.control.claim

    def crash_after_the_witness(client: Any, *args: Any, **kwargs: Any) -> bool:
        taken = original(client, *args, **kwargs)
        if client.meta.region_name == WITNESS:
            raise Crashed
        return taken

    monkeypatch.setattr(secondary.control, "claim", crash_after_the_witness)
    crashed = False
    for _probe in range(WORST_PROMOTION // INTERVAL + 1):
        try:
            assert pair.tick(SECONDARY)["status"] == "standby"
        except Crashed:
            crashed = True
            break
        pair.clock.advance(INTERVAL)
    assert crashed, "the promotion started within the worst case"
    monkeypatch.setattr(secondary.control, "claim", original)
    assert world.holder(WITNESS) == (2, SECONDARY)
    assert world.holder(SECONDARY) == (1, PRIMARY), "the crash came before this replica's write"
    assert pair.active() == set()
    pair.clock.advance(INTERVAL)
    assert pair.tick(SECONDARY)["status"] == "promoted"
    assert world.holder(SECONDARY) == world.holder(WITNESS) == (2, SECONDARY)
    assert pair.active() == {SECONDARY}
