"""The drill's scenarios, and the limits each is judged against.

Only scenarios that pass on today's code are listed in :data:`SCENARIOS` (each is a test in
``make test`` and a line of ``make drill``); the others of issue #14 wait for the active-region
lease (#13) and the authorizer (#12). :func:`worst_case_rto_s` is the README's worst case for a
region that is down, computed from the synthesized config: the HTTPS check's interval x failure
threshold, plus the resolver TTL.
"""

from __future__ import annotations

from typing import Any

from tools.drill.drill import Drill, Event, Scenario
from tools.drill.route53 import ALIAS_TARGET_TTL_S
from tools.drill.synth import Topology


def worst_case_rto_s(topology: Topology) -> float:
    """Detection by the primary's HTTPS health check, then one resolver TTL."""
    check = next(c for c in topology.health_checks.values() if c.type == "HTTPS" and c.region == topology.primary)
    return float((check.request_interval_s or 30) * (check.failure_threshold or 3) + ALIAS_TARGET_TTL_S)


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

#: Scenarios that pass on today's code (each is a test and a line of ``make drill``).
SCENARIOS: tuple[Scenario, ...] = (
    STEADY_STATE,
    PRIMARY_DIES,
    API_FAILS,
    REPLICATION_STALL,
    PARTITION,
    FAILBACK_AFTER_RECOVERY,
)


def verdict(figures: dict[str, Any], scenario: Scenario, topology: Topology) -> list[str]:
    """What a scenario's figures break of the acceptance rules (empty: it passes)."""
    problems = [
        f"{name} = {figures[name]}, must be 0"
        for name in ("lost", "charged_twice", "reverted", "two_active_s")
        if figures[name]
    ]
    if figures.get("gave_up"):
        problems.append(f"gave_up = {figures['gave_up']}: clients hit the attempt bound, must be 0")
    if scenario.rto_covered:
        limit = worst_case_rto_s(topology)
        if figures["rto_s"] is None:
            problems.append("no success in the other region after the fault (no RTO)")
        elif figures["rto_s"] > limit:
            problems.append(f"rto_s = {figures['rto_s']} above the worst case {limit} s")
    return problems
