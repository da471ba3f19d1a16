"""Route 53 as the synthesized edge configures it: health checks, the failover pair, resolver TTL.

- HTTPS checks call ``GET <resource_path>`` on the region's API every ``request_interval``
  seconds; ``failure_threshold`` consecutive failures make it unhealthy, as many consecutive
  successes healthy again (one checker stands for Route 53's fleet).
- CloudWatch-metric checks follow their alarm (``ALARM`` = unhealthy; no data: the configured
  ``insufficient_data_health_status``, e.g. ``LastKnownStatus``).
- Calculated checks are healthy while at least ``child_health_threshold`` children are.
- The failover record answers the PRIMARY while its health check is healthy, else the SECONDARY
  while its check is healthy, else the PRIMARY (Route 53's answer when both are unhealthy).
- Resolvers cache the answer for the alias target's TTL: API Gateway regional domains are 60 s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tools.drill.apigw import ApiGateway, Unreachable
from tools.drill.clock import SimClock
from tools.drill.synth import HealthCheckSpec, Topology

#: Alias records to API Gateway regional domains answer with the target's TTL.
ALIAS_TARGET_TTL_S = 60
#: Route 53 publishes health check metrics in us-east-1 only.
METRICS_REGION = "us-east-1"


@dataclass
class CheckState:
    """One health check's status and its run of consecutive results."""

    spec: HealthCheckSpec
    healthy: bool = True
    streak: int = 0
    last_probe: float | None = None
    history: list[tuple[float, bool]] = field(default_factory=list)


class Route53:
    """Health checks and the failover record of the client hostname."""

    def __init__(
        self,
        topology: Topology,
        apis: dict[str, ApiGateway],
        clock: SimClock,
        alarm_state: Callable[[str, str], str | None],
        metric: Callable[[str, str, str, dict[str, str], float], None] | None = None,
    ) -> None:
        self.topology, self.apis, self.clock, self._alarm_state = topology, apis, clock, alarm_state
        self._metric = metric
        self.checks = {check_id: CheckState(spec) for check_id, spec in topology.health_checks.items()}
        self.records = sorted(topology.failover_records, key=lambda r: r.role != "PRIMARY")
        self.ttl_s = ALIAS_TARGET_TTL_S
        self.answers: list[tuple[float, str]] = []

    def tick(self) -> None:
        """Run the checks that are due and record the failover answer."""
        for state in self.checks.values():
            if state.spec.type == "HTTPS":
                self._probe(state)
            elif state.spec.type == "CLOUDWATCH_METRIC":
                alarm = self._alarm_state(state.spec.region, state.spec.alarm_name or "")
                if alarm in ("ALARM", "OK"):
                    self._set(state, alarm == "OK")
                elif state.spec.insufficient_data == "Unhealthy":
                    self._set(state, False)
                elif state.spec.insufficient_data == "Healthy":
                    self._set(state, True)
        for state in self.checks.values():
            if state.spec.type == "CALCULATED":
                healthy = sum(self.checks[child].healthy for child in state.spec.children if child in self.checks)
                self._set(state, healthy >= (state.spec.child_threshold or len(state.spec.children)))
        if self._metric is not None:  # Route 53 publishes its metrics in us-east-1 only
            for check_id, state in self.checks.items():
                dims = {"HealthCheckId": check_id}
                self._metric(METRICS_REGION, "AWS/Route53", "HealthCheckStatus", dims, 1.0 if state.healthy else 0.0)
        answer = self.resolve_now()
        if not self.answers or self.answers[-1][1] != answer:
            self.answers.append((self.clock.elapsed, answer))

    def _probe(self, state: CheckState) -> None:
        spec = state.spec
        interval = spec.request_interval_s or 30
        if state.last_probe is not None and self.clock.now - state.last_probe < interval:
            return
        state.last_probe = self.clock.now
        try:
            ok = 200 <= self.apis[spec.region].request("GET", spec.resource_path or "/").status < 400
        except Unreachable:
            ok = False
        if ok == state.healthy:
            state.streak = 0
            return
        state.streak += 1
        if state.streak >= (spec.failure_threshold or 3):
            self._set(state, ok)
            state.streak = 0

    def _set(self, state: CheckState, healthy: bool) -> None:
        if healthy != state.healthy:
            state.healthy = healthy
            state.history.append((self.clock.elapsed, healthy))

    def healthy(self, check_id: str | None) -> bool:
        """A check's status (a record without a check is always healthy)."""
        return check_id is None or self.checks[check_id].healthy

    def resolve_now(self) -> str:
        """The region the failover record answers right now."""
        for record in self.records:
            if self.healthy(record.health_check):
                return record.region
        return self.records[0].region


class Resolver:
    """One client's DNS cache: keeps an answer for the TTL."""

    def __init__(self, route53: Route53, clock: SimClock, expires_in_s: float = 0.0) -> None:
        self.route53, self.clock = route53, clock
        self._answer: str | None = None
        # Clients looked the name up at different moments: their caches expire at different times.
        self._expires = clock.now + expires_in_s

    def resolve(self) -> str:
        """The cached region, refreshed once the TTL has passed."""
        if self._answer is None:  # its first answer expires ``expires_in_s`` after the start
            self._answer = self.route53.resolve_now()
        elif self.clock.now >= self._expires:
            self._answer = self.route53.resolve_now()
            self._expires = self.clock.now + self.route53.ttl_s
        return self._answer
