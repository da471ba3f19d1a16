"""Alarms evaluate the synthesized thresholds; a composite in ALARM notifies the orchestrator through SNS."""

from __future__ import annotations

import json
from typing import Any

from tools.drill.clock import SimClock
from tools.drill.cloudwatch import CloudWatch
from tools.drill.synth import Topology


def cloudwatch(topology: Topology) -> tuple[CloudWatch, SimClock, list[tuple[str, str, dict[str, Any]]]]:
    clock = SimClock()
    sent: list[tuple[str, str, dict[str, Any]]] = []
    return (
        CloudWatch(topology, clock, lambda region, function, event: sent.append((region, function, event))),
        clock,
        sent,
    )


def errors_alarm(topology: Topology) -> Any:
    return topology.alarms[(topology.primary, f"{topology.primary}-payment-validation-errors-dev")]


def run(cw: CloudWatch, clock: SimClock, seconds: int, every_second: Any = None) -> None:
    for _ in range(seconds):
        if every_second:
            every_second()
        clock.advance(1)
        cw.tick(set())


def test_lambda_errors_alarm_after_its_periods_and_the_composite_notifies_the_orchestrator(topology: Topology) -> None:
    cw, clock, sent = cloudwatch(topology)
    spec = errors_alarm(topology)
    composite = f"{topology.primary}-region-cannot-take-payments-dev"
    failing = lambda: cw.put(topology.primary, "AWS/Lambda", "Errors", spec.dimensions, 1.0)  # noqa: E731
    run(cw, clock, spec.period_s * (spec.datapoints_to_alarm - 1), failing)
    assert cw.state(spec.region, spec.name) == "OK"
    run(cw, clock, spec.period_s, failing)
    assert cw.state(spec.region, spec.name) == "ALARM"
    assert cw.state(topology.primary, composite) == "ALARM"
    assert cw.state(topology.secondary, f"{topology.secondary}-region-cannot-take-payments-dev") == "OK"
    assert [(region, function) for region, function, _ in sent] == [(topology.primary, "failover_orchestrator")]
    message = json.loads(sent[0][2]["Records"][0]["Sns"]["Message"])
    assert (message["AlarmName"], message["NewStateValue"]) == (composite, "ALARM")
    assert message["AlarmArn"].split(":")[3] == topology.primary


def test_below_the_threshold_an_errors_alarm_stays_ok_and_nothing_is_notified(topology: Topology) -> None:
    cw, clock, sent = cloudwatch(topology)
    spec = errors_alarm(topology)

    def healthy() -> None:
        cw.put(topology.primary, "AWS/Lambda", "Errors", spec.dimensions, 0.0)
        for check_id in topology.health_checks:  # Route 53 publishes every check's status in us-east-1
            cw.put("us-east-1", "AWS/Route53", "HealthCheckStatus", {"HealthCheckId": check_id}, 1.0)

    run(cw, clock, spec.period_s * spec.evaluation_periods * 2, healthy)
    assert cw.state(spec.region, spec.name) == "OK"
    assert sent == []


def test_a_region_that_is_down_publishes_nothing(topology: Topology) -> None:
    clock = SimClock()
    cw = CloudWatch(topology, clock, lambda *args: None, is_down=lambda region: region == topology.primary)
    cw.put(topology.primary, "AWS/Lambda", "Errors", {}, 1.0)
    cw.put(topology.secondary, "AWS/Lambda", "Errors", {}, 1.0)
    assert [d.region for d in cw.datapoints] == [topology.secondary]


def test_a_held_composite_stays_in_alarm_until_released(topology: Topology) -> None:
    cw, clock, sent = cloudwatch(topology)
    composite = f"{topology.primary}-region-cannot-take-payments-dev"
    run(cw, clock, 60)
    cw.hold(topology.primary, composite, "ALARM")
    assert cw.state(topology.primary, composite) == "ALARM"
    run(cw, clock, 120)  # its members are all OK: a held alarm ignores them
    assert cw.state(topology.primary, composite) == "ALARM"
    cw.hold(topology.primary, composite, None)
    run(cw, clock, 1)
    assert cw.state(topology.primary, composite) == "OK"
    states = [json.loads(e["Records"][0]["Sns"]["Message"])["NewStateValue"] for _r, _f, e in sent]
    assert states == ["ALARM", "OK"]
