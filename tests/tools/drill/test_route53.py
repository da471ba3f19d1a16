"""Route 53: the HTTPS check's interval and threshold, the calculated check, the failover pair, the TTL."""

from __future__ import annotations

from typing import Any

from tools.drill.apigw import Answer, Unreachable
from tools.drill.clock import SimClock
from tools.drill.route53 import Resolver, Route53
from tools.drill.synth import Topology


class HealthApi:
    """A region's API as the checker sees it: healthy, 503, or unreachable."""

    def __init__(self) -> None:
        self.state = "ok"
        self.probes = 0

    def request(self, method: str, path: str, *args: Any) -> Answer:
        self.probes += 1
        if self.state == "down":
            raise Unreachable("down")
        return Answer(200 if self.state == "ok" else 503)


def route53(
    topology: Topology, clock: SimClock, alarms: dict[tuple[str, str], str] | None = None
) -> tuple[Route53, dict]:
    apis = {region: HealthApi() for region in topology.regions}
    state = lambda region, name: (alarms or {}).get((region, name))  # noqa: E731
    return Route53(topology, apis, clock, state), apis  # type: ignore[arg-type]


def run(r53: Route53, clock: SimClock, seconds: int) -> None:
    for _ in range(seconds):
        r53.tick()
        clock.advance(1)


def test_dns_moves_after_failure_threshold_probes_at_the_check_interval(topology: Topology) -> None:
    clock = SimClock()
    r53, apis = route53(topology, clock)
    check = next(c for c in topology.health_checks.values() if c.type == "HTTPS" and c.region == topology.primary)
    run(r53, clock, 5)
    apis[topology.primary].state = "down"
    detection = check.request_interval_s * check.failure_threshold
    run(r53, clock, detection - check.request_interval_s + 1)
    assert r53.resolve_now() == topology.primary, "one probe short of the threshold"
    run(r53, clock, check.request_interval_s)
    assert r53.resolve_now() == topology.secondary
    assert [region for _, region in r53.answers] == [topology.primary, topology.secondary]
    apis[topology.primary].state = "ok"
    run(r53, clock, detection + 1)
    assert r53.resolve_now() == topology.primary, "healthy again after as many successes"


def test_a_503_from_health_counts_as_a_failure(topology: Topology) -> None:
    clock = SimClock()
    r53, apis = route53(topology, clock)
    apis[topology.primary].state = "fenced"
    run(r53, clock, 60)
    assert r53.resolve_now() == topology.secondary


def test_an_api_alarm_makes_the_calculated_check_unhealthy(topology: Topology) -> None:
    clock = SimClock()
    steering = next(
        c for c in topology.health_checks.values() if c.type == "CLOUDWATCH_METRIC" and c.region == topology.primary
    )
    r53, _ = route53(topology, clock, alarms={(topology.primary, steering.alarm_name): "ALARM"})
    r53.tick()
    assert r53.resolve_now() == topology.secondary
    unhealthy = {s.spec.region for s in r53.checks.values() if s.spec.type == "CALCULATED" and not s.healthy}
    assert unhealthy == {topology.primary}


def test_both_regions_unhealthy_answers_the_primary(topology: Topology) -> None:
    clock = SimClock()
    r53, apis = route53(topology, clock)
    for api in apis.values():
        api.state = "down"
    run(r53, clock, 60)
    assert r53.resolve_now() == topology.primary


def test_a_resolver_keeps_its_answer_for_the_ttl(topology: Topology) -> None:
    clock = SimClock()
    r53, apis = route53(topology, clock)
    resolver = Resolver(r53, clock, expires_in_s=r53.ttl_s)
    assert resolver.resolve() == topology.primary
    apis[topology.primary].state = "down"
    run(r53, clock, 45)
    assert r53.resolve_now() == topology.secondary
    assert resolver.resolve() == topology.primary, "cached"
    clock.advance(r53.ttl_s)
    assert resolver.resolve() == topology.secondary
