"""The drill's scenarios (every one of issue #14), the limits each is judged against, and the runner.

Each scenario in :data:`SCENARIOS` is a test in ``make test`` and a line of ``make drill``;
:func:`run_all` runs them in parallel processes. :func:`worst_case_rto_s` is the README's worst
case for a region that is down, computed from the synthesized config: the later of the DNS move
(the HTTPS check's interval x failure threshold, plus the resolver TTL) and the standby's
promotion (probe interval + lease + margin + probe interval).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from tools.drill.drill import Drill, Event, Scenario
from tools.drill.route53 import ALIAS_TARGET_TTL_S
from tools.drill.synth import Topology
from tools.drill.world import UNREACHABLE, Crash, Fault


def dns_worst_case_s(topology: Topology) -> float:
    """Detection by the primary's HTTPS health check, then one resolver TTL."""
    check = next(c for c in topology.health_checks.values() if c.type == "HTTPS" and c.region == topology.primary)
    return float((check.request_interval_s or 30) * (check.failure_threshold or 3) + ALIAS_TARGET_TTL_S)


def promotion_worst_case_s(topology: Topology) -> float:
    """Region down -> standby active, after the last renewal (``layers/config.py``, same formula).

    Probe interval (the standby sees the last renewal) + lease + safety margin + probe interval
    (the probe that acts), read from the secondary orchestrator's environment and schedule.
    """
    region = topology.secondary
    spec = next(s for s in topology.functions.values() if s.region == region and "LEASE_SECONDS" in s.environment)
    interval = next(s.every_s for s in topology.schedules if s.region == region and s.function == spec.key)
    lease, margin = int(spec.environment["LEASE_SECONDS"]), int(spec.environment["LEASE_SAFETY_MARGIN_SECONDS"])
    return float(interval + lease + margin + interval)


def worst_case_rto_s(topology: Topology) -> float:
    """The README's worst case for a region that is down: DNS has moved and the standby has promoted."""
    return max(dns_worst_case_s(topology), promotion_worst_case_s(topology))


def _fail(region: str) -> Any:
    def action(drill: Drill) -> None:
        drill.world.fail(drill.region(region))

    return action


def _recover(region: str) -> Any:
    def action(drill: Drill) -> None:
        drill.world.recover(drill.region(region))

    return action


def _api_answers(region: str, status: int | None) -> Any:
    """The region's API answers ``status`` on every route (its Lambda fails); None: normal again."""

    def action(drill: Drill) -> None:
        drill.apis[drill.region(region)].forced_status = status

    return action


def _replication(stalled: bool) -> Any:
    """Stall (or resume) replication in both directions; everything else keeps working."""

    def action(drill: Drill) -> None:
        primary, secondary = drill.topology.regions
        drill.world.replicator.stall(primary, secondary, stalled)
        drill.world.replicator.stall(secondary, primary, stalled)

    return action


def _partition(partitioned: bool) -> Any:
    """No traffic between the regions: replication and every cross-region call fail."""

    def action(drill: Drill) -> None:
        drill.world.partitioned = partitioned

    return action


def _operator(action_name: str, region: str, run_in: str) -> Any:
    """An operator invokes the orchestrator in ``run_in`` with a manual action on ``region``."""

    def action(drill: Drill) -> None:
        event = {"action": action_name, "region": drill.region(region), "dry_run": False, "reason": "drill"}
        drill.invoke_async(drill.region(run_in), "failover_orchestrator", event)

    return action


def _throttle(*regions: str, on: bool = True) -> Any:
    """DynamoDB throttles every other write in ``regions`` (reads work); ``on=False`` ends it."""
    writes = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})

    def action(drill: Drill) -> None:
        names = {drill.region(r) for r in regions}
        drill.world.faults[:] = [f for f in drill.world.faults if f.region not in names]
        if on:
            drill.world.faults += [Fault(name, "dynamodb", operations=writes, rate=0.5) for name in sorted(names)]

    return action


#: The functions in the VPC that call SQS (validation enqueues, processing parks); the orchestrator is outside it.
IN_VPC_SQS_CALLERS = frozenset({"payment_validation", "payment_processing"})


def _sqs_endpoints(broken: bool) -> Any:
    """The SQS interface endpoint of both VPCs refuses connections (``broken=False``: fixed).

    Only callers inside the VPC (:data:`IN_VPC_SQS_CALLERS`) use it: the orchestrator and Lambda's
    own SQS poller reach SQS without it.
    """

    def action(drill: Drill) -> None:
        drill.world.faults[:] = [f for f in drill.world.faults if f.service != "sqs"]
        if broken:
            drill.world.faults += [
                Fault(region, "sqs", code=UNREACHABLE, functions=IN_VPC_SQS_CALLERS)
                for region in drill.topology.regions
            ]

    return action


def _together(*actions: Any) -> Any:
    """Several actions at the same moment, in order."""

    def action(drill: Drill) -> None:
        for each in actions:
            each(drill)

    return action


def _crash_on_lease_write(region: str) -> Any:
    """The orchestrator in ``region`` dies right after its next write of the lease (one shot)."""

    def action(drill: Drill) -> None:
        drill.world.crashes.append(Crash(drill.region(region), "failover_orchestrator", "lease"))

    return action


STEADY_STATE = Scenario(
    name="steady_state",
    title="Steady state: both regions up, clients on the primary",
    duration_s=120,
    rate_per_s=1.0,
)

#: When the five-minute faults start and end (simulated seconds).
FAULT_AT, FAULT_ENDS = 60, 360


def _five_minute_fault(name: str, title: str, start: tuple[str, Any], end: tuple[str, Any], **extra: Any) -> Scenario:
    """A fault from :data:`FAULT_AT` to :data:`FAULT_ENDS`, then a minute of normal traffic."""
    return Scenario(
        name=name,
        title=title,
        duration_s=FAULT_ENDS + 60,
        events=(Event(FAULT_AT, *start), Event(FAULT_ENDS, *end)),
        rate_per_s=0.5,
        **extra,
    )


#: The failed region, for RTO and RPO, judged against the worst case for a region that is down.
_PRIMARY_FAULT = {"fault_region": "primary", "fault_at": FAULT_AT, "rto_covered": True}

PRIMARY_DIES = _five_minute_fault(
    "primary_dies",
    "The primary region dies (API, Lambda, DynamoDB unreachable), comes back after 5 minutes",
    ("primary region down", _fail("primary")),
    ("primary region back", _recover("primary")),
    **_PRIMARY_FAULT,
)

API_FAILS = _five_minute_fault(
    "api_fails",
    "The primary's Lambda fails (API answers 502, /health too) while its data plane lives, 5 minutes",
    ("primary API answers 502", _api_answers("primary", 502)),
    ("primary API back", _api_answers("primary", None)),
    **_PRIMARY_FAULT,
)

REPLICATION_STALL = _five_minute_fault(
    "replication_stall",
    "Replication stalls for 5 minutes in both directions, then recovers",
    ("replication stalls", _replication(stalled=True)),
    ("replication resumes", _replication(stalled=False)),
)

PARTITION = _five_minute_fault(
    "partition",
    "A partition between the regions for 5 minutes (replication and cross-region calls fail)",
    ("partition", _partition(partitioned=True)),
    ("partition heals", _partition(partitioned=False)),
)

FAILBACK_AFTER_RECOVERY = Scenario(
    name="failback_after_recovery",
    title="The primary dies, comes back after 4 minutes, an operator fails back a minute later",
    duration_s=540,
    events=(
        Event(FAULT_AT, "primary region down", _fail("primary")),
        Event(300, "primary region back", _recover("primary")),
        Event(360, "operator fails back the primary", _operator("failback", "primary", run_in="secondary")),
    ),
    rate_per_s=0.5,
    **_PRIMARY_FAULT,
)

DYNAMODB_THROTTLING = _five_minute_fault(
    "dynamodb_throttling",
    "DynamoDB in the primary throttles every other write for 5 minutes (its alarm hands the lease over)",
    ("primary DynamoDB throttles writes", _throttle("primary")),
    ("primary DynamoDB normal", _throttle("primary", on=False)),
)

ORCHESTRATOR_CRASH = _five_minute_fault(
    "orchestrator_crash",
    "The primary dies; the secondary's orchestrator crashes right after taking the lease in its replica",
    (
        "primary region down; secondary orchestrator will crash",
        _together(_fail("primary"), _crash_on_lease_write("secondary")),
    ),
    ("primary region back", _recover("primary")),
    **_PRIMARY_FAULT,
)


def _composites(state: str | None) -> Any:
    """Both regions' composite alarms held in ``state`` at the same second (None: released)."""

    def action(drill: Drill) -> None:
        for region in drill.topology.regions:
            names = [n for (r, n), spec in drill.topology.alarms.items() if r == region and spec.rule]
            for name in names:
                drill.cloudwatch.hold(region, name, state)

    return action


ALARMS_BOTH_REGIONS = _five_minute_fault(
    "alarms_both_regions",
    "Both regions' composite alarms go to ALARM in the same second and stay there for 5 minutes",
    ("both composite alarms ALARM", _composites("ALARM")),
    ("both composite alarms released", _composites(None)),
)

FAILBACK_DEAD_PRIMARY = Scenario(
    name="failback_dead_primary",
    title="The primary dies; an operator fails back while it is still dead (refused); it returns later",
    duration_s=600,
    events=(
        Event(FAULT_AT, "primary region down", _fail("primary")),
        Event(420, "operator fails back the dead primary", _operator("failback", "primary", run_in="secondary")),
        Event(480, "primary region back", _recover("primary")),
    ),
    rate_per_s=0.5,
    **_PRIMARY_FAULT,
)


def _skewed(name: str, sign: int) -> Scenario:
    word = "ahead" if sign > 0 else "behind"
    return _five_minute_fault(
        name,
        f"Clocks 5 minutes apart (primary {word}, secondary the other way); the primary dies for 5 minutes",
        ("primary region down", _fail("primary")),
        ("primary region back", _recover("primary")),
        skews={"primary": sign * 300.0, "secondary": -sign * 300.0},
        **_PRIMARY_FAULT,
    )


CLOCK_SKEW_PLUS = _skewed("clock_skew_plus_5min", +1)
CLOCK_SKEW_MINUS = _skewed("clock_skew_minus_5min", -1)

RETRY_STORM = Scenario(
    name="retry_storm",
    title="A retry storm as the primary dies: 20 clients, 4 payments/s around the fault; back after 3 minutes",
    duration_s=360,
    events=(
        Event(FAULT_AT, "primary region down", _fail("primary")),
        Event(240, "primary region back", _recover("primary")),
    ),
    rate_per_s=0.5,
    clients=20,
    bursts=((FAULT_AT - 10, FAULT_AT + 50, 4.0),),
    **_PRIMARY_FAULT,
)

BAD_INPUT_DURING_FAILOVER = _five_minute_fault(
    "bad_input_during_failover",
    "The primary dies for 5 minutes while a quarter of the requests are bad input (card numbers, bad JSON, ...)",
    ("primary region down", _fail("primary")),
    ("primary region back", _recover("primary")),
    bad_input_every=4,
    **_PRIMARY_FAULT,
)

SQS_ENDPOINTS_FAIL = Scenario(
    name="sqs_endpoints_fail",
    title=(
        "A bad change breaks the SQS endpoint of both VPCs for 6 minutes (payments are written but not"
        " enqueued); the primary dies in the middle of it and comes back 3 minutes later"
    ),
    duration_s=600,
    events=(
        Event(FAULT_AT, "SQS endpoints of both VPCs refuse connections", _sqs_endpoints(broken=True)),
        Event(300, "primary region down", _fail("primary")),
        Event(420, "SQS endpoints fixed", _sqs_endpoints(broken=False)),
        Event(480, "primary region back", _recover("primary")),
    ),
    rate_per_s=0.5,
    fault_region="primary",
    fault_at=300,
)

#: Every scenario of issue #14 (each is a test and a line of ``make drill``), and later ones.
SCENARIOS: tuple[Scenario, ...] = (
    STEADY_STATE,
    PRIMARY_DIES,
    API_FAILS,
    DYNAMODB_THROTTLING,
    REPLICATION_STALL,
    PARTITION,
    ORCHESTRATOR_CRASH,
    ALARMS_BOTH_REGIONS,
    FAILBACK_DEAD_PRIMARY,
    CLOCK_SKEW_PLUS,
    CLOCK_SKEW_MINUS,
    FAILBACK_AFTER_RECOVERY,
    RETRY_STORM,
    BAD_INPUT_DURING_FAILOVER,
    SQS_ENDPOINTS_FAIL,
)


def verdict(figures: dict[str, Any], scenario: Scenario, topology: Topology) -> list[str]:
    """What a scenario's figures break of the acceptance rules (empty: it passes)."""
    problems = [
        f"{name} = {figures[name]}, must be 0"
        for name in ("lost", "charged_twice", "reverted", "two_active_s")
        if figures[name]
    ]
    bad_answers = figures.get("bad_input_answers", {})
    for status in sorted(bad_answers):
        if not status.isdigit() or not 400 <= int(status) < 500:
            problems.append(f"bad input answered {status} ({bad_answers[status]}x), must be a final 4xx")
    if figures.get("gave_up"):
        problems.append(f"gave_up = {figures['gave_up']}: clients hit the attempt bound, must be 0")
    if scenario.rto_covered:
        limit = worst_case_rto_s(topology)
        if figures["rto_s"] is None:
            problems.append("no success in the other region after the fault (no RTO)")
        elif figures["rto_s"] > limit:
            problems.append(f"rto_s = {figures['rto_s']} above the worst case {limit} s")
    return problems


def _run_one(outdir: str, name: str) -> dict[str, Any]:
    """One scenario in a worker process (the topology is re-read there: cheap, and nothing is shared)."""
    import warnings

    from tools.drill import synth

    warnings.filterwarnings("ignore", message="Dimension 'region' has already been added")
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    scenario = next(s for s in SCENARIOS if s.name == name)
    return Drill(synth.load(Path(outdir)), scenario).run()


def run_all(outdir: Path, chosen: Sequence[Scenario], workers: int | None = None) -> list[dict[str, Any]]:
    """Run ``chosen`` (from :data:`SCENARIOS`), one process per scenario, ``workers`` at a time; in order.

    Each scenario is independent (its own moto, clock and handlers), so they spread over the
    cores; a worker is a fresh interpreter (``spawn``), never a fork of a process running jsii.
    """
    workers = workers or max(1, min(len(chosen), os.cpu_count() or 1))
    if workers == 1:
        return [_run_one(str(outdir), s.name) for s in chosen]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_run_one, [str(outdir)] * len(chosen), [s.name for s in chosen]))
