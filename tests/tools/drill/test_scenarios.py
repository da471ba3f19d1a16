"""Every committed scenario meets the acceptance rules on today's code (lost, doubled, reverted, RTO)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.synthesized import Synthesized
from tools.drill.drill import Drill
from tools.drill.scenarios import (
    ALARMS_BOTH_REGIONS,
    API_FAILS,
    BAD_INPUT_DURING_FAILOVER,
    CLOCK_SKEW_MINUS,
    CLOCK_SKEW_PLUS,
    FAILBACK_AFTER_RECOVERY,
    FAILBACK_DEAD_PRIMARY,
    FAULT_AT,
    FAULT_ENDS,
    ORCHESTRATOR_CRASH,
    PARTITION,
    PRIMARY_DIES,
    RETRY_STORM,
    SCENARIOS,
    SQS_ENDPOINTS_FAIL,
    STEADY_STATE,
    Scenario,
    dns_worst_case_s,
    run_all,
    verdict,
    worst_case_rto_s,
)
from tools.drill.synth import Topology

_RESULTS: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module", autouse=True)
def _all_scenarios(synth: Synthesized) -> None:
    """Every scenario once, spread over the cores (each in its own process)."""
    for scenario, result in zip(SCENARIOS, run_all(synth.outdir, SCENARIOS), strict=True):
        _RESULTS[scenario.name] = result


def figures(topology: Topology, scenario: Scenario) -> dict[str, Any]:
    """A scenario's figures (run by the module fixture; a scenario run alone is computed here)."""
    if scenario.name not in _RESULTS:
        _RESULTS[scenario.name] = Drill(topology, scenario).run()
    return _RESULTS[scenario.name]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_meets_the_acceptance_rules(topology: Topology, scenario: Scenario) -> None:
    result = figures(topology, scenario)
    assert verdict(result, scenario, topology) == []
    assert result["attempted"] > 0
    assert result["final"] == result["acknowledged"]


def test_steady_state_acknowledges_every_payment_in_the_primary_only(topology: Topology) -> None:
    result = figures(topology, STEADY_STATE)
    assert result["acknowledged"] == result["attempted"]
    assert result["client_errors"] == {}
    assert {region for sample in result["timeline"] for region in sample["active"]} == {topology.primary}
    assert result["rto_s"] is None


def test_primary_dies_moves_clients_within_the_worst_case(topology: Topology) -> None:
    result = figures(topology, PRIMARY_DIES)
    assert 0 < result["rto_s"] <= worst_case_rto_s(topology)
    assert [move["region"] for move in result["dns_answers"]][:2] == [topology.primary, topology.secondary]
    assert result["client_errors"].get("connection", 0) > 0, "clients saw the dead region before DNS moved"


def test_a_lambda_failing_behind_the_api_is_answered_502_and_never_retried(topology: Topology) -> None:
    result = figures(topology, API_FAILS)
    assert result["client_errors"].get("502", 0) == result["refused"] > 0
    assert result["attempted"] == result["acknowledged"] + result["refused"]


def _active_seconds(result: dict[str, Any], region: str, start: float, end: float) -> list[float]:
    return [s["t"] for s in result["timeline"] if start <= s["t"] < end and region in s["active"]]


def test_a_partition_with_the_witness_keeps_the_primary_active_and_the_secondary_out(topology: Topology) -> None:
    """The primary renews on its own replica and the witness; the secondary sees the witness change."""
    result = figures(topology, PARTITION)
    during = [s for s in result["timeline"] if FAULT_AT <= s["t"] < FAULT_ENDS]
    assert {s["dns"] for s in during} == {topology.primary}
    assert not _active_seconds(result, topology.secondary, FAULT_AT, FAULT_ENDS + 60)
    assert result["none_active_s"] == 0
    assert _events(result, f"failover_orchestrator in {topology.primary}: renewed")


def test_api_failure_hands_the_lease_over_with_dns(topology: Topology) -> None:
    """The holder's own /health fails (as Route 53 sees it): the lease follows DNS at the next probe."""
    result = figures(topology, API_FAILS)
    assert _events(result, f"failover_orchestrator in {topology.primary}: handed_over")
    assert result["rto_s"] <= dns_worst_case_s(topology)


def test_an_orchestrator_crash_after_taking_the_lease_is_repaired(topology: Topology) -> None:
    result = figures(topology, ORCHESTRATOR_CRASH)
    assert _events(result, f"failover_orchestrator in {topology.secondary} crashed")
    assert result["rto_s"] <= worst_case_rto_s(topology)


def test_both_composites_at_once_leave_exactly_one_region_holding_the_lease(topology: Topology) -> None:
    result = figures(topology, ALARMS_BOTH_REGIONS)
    assert _events(result, "refused"), "the second handover is refused: both-fenced is impossible"
    during = [s for s in result["timeline"] if FAULT_AT + 60 <= s["t"] < FAULT_ENDS]
    assert sum(s["successes"] for s in during) > 0, "payments kept being acknowledged during both alarms"


def test_failback_to_a_dead_primary_is_refused_and_the_secondary_stays_active(topology: Topology) -> None:
    result = figures(topology, FAILBACK_DEAD_PRIMARY)
    assert _events(result, f"failover_orchestrator in {topology.secondary}: refused")
    assert not _events(result, "failed_back")
    assert _active_seconds(result, topology.secondary, 420, 480), "still taking payments after the refusal"


def test_failback_after_recovery_moves_the_lease_back(topology: Topology) -> None:
    result = figures(topology, FAILBACK_AFTER_RECOVERY)
    assert _events(result, f"failover_orchestrator in {topology.secondary}: failed_back")
    assert result["dns_answers"][-1]["region"] == topology.primary
    assert _active_seconds(result, topology.primary, 400, 540)
    assert not _active_seconds(result, topology.secondary, 400, 540)


@pytest.mark.parametrize("skewed", [CLOCK_SKEW_PLUS, CLOCK_SKEW_MINUS], ids=lambda s: s.name)
def test_clock_skew_changes_nothing(topology: Topology, skewed: Scenario) -> None:
    """Five minutes of skew either way: the same promotion time as without skew."""
    assert figures(topology, skewed)["rto_s"] == figures(topology, PRIMARY_DIES)["rto_s"]


def test_bad_input_during_a_failover_is_refused_and_changes_nothing(topology: Topology) -> None:
    result = figures(topology, BAD_INPUT_DURING_FAILOVER)
    assert result["bad_input"] > 0
    assert all(400 <= int(status) < 500 for status in result["bad_input_answers"]), result["bad_input_answers"]
    assert result["rto_s"] == figures(topology, PRIMARY_DIES)["rto_s"]


def test_a_retry_storm_is_throttled_not_lost(topology: Topology) -> None:
    result = figures(topology, RETRY_STORM)
    assert result["client_errors"].get("429", 0) > 0, "the storm reached the stage's throttle"
    assert result["acknowledged"] == result["attempted"]


def _events(result: dict[str, Any], text: str) -> list[dict[str, Any]]:
    return [e for e in result["events"] if text in e["what"]]


def test_payments_written_but_not_enqueued_are_swept_in_each_region_that_holds_the_lease(topology: Topology) -> None:
    """Both VPCs' SQS endpoints broken: validation answers 503 (its payment is written, PENDING); nothing is lost.

    Only the orchestrators (outside the VPC) can enqueue: the primary's sweeper re-enqueues its stale
    PENDING payments, and after the primary dies the secondary's re-enqueues the orphans it replicated.
    """
    result = figures(topology, SQS_ENDPOINTS_FAIL)
    assert result["client_errors"].get("503", 0) > 0
    assert result["swept"].get(topology.primary, 0) > 0
    assert result["swept"].get(topology.secondary, 0) > 0
    # Accepted by the secondary while its endpoint was still broken: only final payments are (a PENDING
    # one is enqueued again, which fails), so the sweeper had finished them before the client's retry.
    fixed_at = next(e["t"] for e in result["events"] if e["what"] == "SQS endpoints fixed")
    early = [p for p in result["across_regions"] if p["accepted_s"] < fixed_at]
    assert early
    assert all(p["finished_s"] <= p["accepted_s"] for p in early)


def test_the_verdict_names_each_broken_rule(topology: Topology) -> None:
    broken = {"lost": 2, "charged_twice": 0, "reverted": 1, "two_active_s": 0, "rto_s": 500.0}
    assert verdict(broken, PRIMARY_DIES, topology) == [
        "lost = 2, must be 0",
        "reverted = 1, must be 0",
        f"rto_s = 500.0 above the worst case {worst_case_rto_s(topology)} s",
    ]
