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


STEADY_STATE = Scenario(
    name="steady_state",
    title="Steady state: both regions up, clients on the primary",
    duration_s=120,
    rate_per_s=1.0,
)

PRIMARY_DIES = Scenario(
    name="primary_dies",
    title="The primary region dies (API, Lambda, DynamoDB unreachable), comes back after 5 minutes",
    duration_s=420,
    events=(
        Event(60, "primary region down", _fail("primary")),
        Event(360, "primary region back", _recover("primary")),
    ),
    rate_per_s=0.5,
    fault_region="primary",
    fault_at=60,
    rto_covered=True,
)

#: Scenarios that pass on today's code (each is a test and a line of ``make drill``).
SCENARIOS: tuple[Scenario, ...] = (STEADY_STATE, PRIMARY_DIES)


def verdict(figures: dict[str, Any], scenario: Scenario, topology: Topology) -> list[str]:
    """What a scenario's figures break of the acceptance rules (empty: it passes)."""
    problems = [
        f"{name} = {figures[name]}, must be 0"
        for name in ("lost", "charged_twice", "reverted", "two_active_s")
        if figures[name]
    ]
    if scenario.rto_covered:
        limit = worst_case_rto_s(topology)
        if figures["rto_s"] is None:
            problems.append("no success in the other region after the fault (no RTO)")
        elif figures["rto_s"] > limit:
            problems.append(f"rto_s = {figures['rto_s']} above the worst case {limit} s")
    return problems
