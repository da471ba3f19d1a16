"""Every committed scenario meets the acceptance rules on today's code (lost, doubled, reverted, RTO)."""

from __future__ import annotations

from typing import Any

import pytest

from tools.drill.drill import Drill
from tools.drill.scenarios import (
    API_FAILS,
    FAULT_AT,
    FAULT_ENDS,
    PARTITION,
    PRIMARY_DIES,
    SCENARIOS,
    STEADY_STATE,
    Scenario,
    verdict,
    worst_case_rto_s,
)
from tools.drill.synth import Topology

_RESULTS: dict[str, dict[str, Any]] = {}


def figures(topology: Topology, scenario: Scenario) -> dict[str, Any]:
    """Each scenario runs once per session."""
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


def test_a_partition_keeps_clients_on_the_primary_and_the_secondary_takes_nothing(topology: Topology) -> None:
    result = figures(topology, PARTITION)
    during = [s for s in result["timeline"] if FAULT_AT <= s["t"] < FAULT_ENDS]
    assert {s["dns"] for s in during} == {topology.primary}
    assert not any(topology.secondary in s["active"] for s in during)


def test_the_verdict_names_each_broken_rule(topology: Topology) -> None:
    broken = {"lost": 2, "charged_twice": 0, "reverted": 1, "two_active_s": 0, "rto_s": 500.0}
    assert verdict(broken, PRIMARY_DIES, topology) == [
        "lost = 2, must be 0",
        "reverted = 1, must be 0",
        f"rto_s = 500.0 above the worst case {worst_case_rto_s(topology)} s",
    ]
