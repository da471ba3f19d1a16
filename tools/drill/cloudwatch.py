"""CloudWatch as the drill plays it: datapoints, metric and composite alarms, alarm -> SNS -> Lambda.

Producers put datapoints (API Gateway answers, Lambda errors, DynamoDB throttling the drill
injects, Route 53 check status). At every period boundary each synthesized metric alarm is
evaluated over its last ``evaluation_periods`` complete periods (statistic, threshold,
comparison, ``datapoints_to_alarm``, missing data as ``treat_missing_data`` says); composites
follow their ``ALARM("...") OR ...`` rule. A state change notifies the alarm's topics, and each
Lambda subscription whose message-body filter matches gets the SNS event CloudWatch would send
(asynchronously: an error is recorded, not raised). Metric math and percentile alarms are for
people and are not evaluated. CloudWatch's own publishing delay (~1 min) is not modelled.
"""

from __future__ import annotations

import json
import re
import statistics
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tools.drill.clock import SimClock
from tools.drill.synth import ACCOUNT, AlarmSpec, Topology

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
_STATISTICS: dict[str, Callable[[list[float]], float]] = {
    "Sum": sum,
    "Average": statistics.fmean,
    "Minimum": min,
    "Maximum": max,
    "SampleCount": len,
}
_TERM = re.compile(r'(ALARM|OK)\("([^"]+)"\)')


@dataclass(frozen=True)
class Datapoint:
    """One value of one metric."""

    at: float
    region: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    value: float


#: notify(region, function key, SNS event)
Notify = Callable[[str, str, dict[str, Any]], None]


class CloudWatch:
    """Metrics and alarms of both regions."""

    def __init__(
        self, topology: Topology, clock: SimClock, notify: Notify, is_down: Callable[[str], bool] = lambda r: False
    ) -> None:
        self.topology, self.clock, self._notify, self._is_down = topology, clock, notify, is_down
        self.datapoints: list[Datapoint] = []
        self.states: dict[tuple[str, str], str] = {key: "INSUFFICIENT_DATA" for key in topology.alarms}
        self.changes: list[tuple[float, str, str, str]] = []
        self._evaluated_at: dict[tuple[str, str], float] = {}
        #: Alarms held in a state whatever their inputs say (a correlated fault the drill does not model).
        self.held: dict[tuple[str, str], str] = {}

    def put(self, region: str, namespace: str, metric: str, dimensions: dict[str, str], value: float) -> None:
        """One datapoint, now (lost when the region's CloudWatch is down)."""
        if self._is_down(region):
            return
        dims = tuple(sorted(dimensions.items()))
        self.datapoints.append(Datapoint(self.clock.elapsed, region, namespace, metric, dims, value))

    def state(self, region: str, name: str) -> str | None:
        """An alarm's state (None: no such alarm)."""
        return self.states.get((region, name))

    def hold(self, region: str, name: str, state: str | None) -> None:
        """Hold an alarm in ``state`` from now on (None: release it to its inputs again)."""
        if state is None:
            self.held.pop((region, name), None)
            return
        self.held[(region, name)] = state
        self._set(self.topology.alarms[(region, name)], state)

    def tick(self, down: set[str]) -> None:
        """Evaluate the alarms whose period ends now; CloudWatch in a region that is down does nothing."""
        now = self.clock.elapsed
        for spec in self.topology.alarms.values():
            if spec.rule is None and spec.region not in down and now > 0 and now % (spec.period_s or 60) == 0:
                self._set(spec, self._evaluate(spec, now))
        for spec in self.topology.alarms.values():
            if spec.rule is not None and spec.region not in down:
                self._set(spec, self._composite(spec))
        # Keep only what the longest alarm window can still read.
        horizon = max((s.period_s or 0) * (s.evaluation_periods or 0) for s in self.topology.alarms.values())
        if len(self.datapoints) > 10_000:
            self.datapoints = [d for d in self.datapoints if d.at >= now - horizon]

    def _evaluate(self, spec: AlarmSpec, now: float) -> str | None:
        period = spec.period_s or 60
        breaching = missing = 0
        wanted = spec.dimensions.items()
        for index in range(spec.evaluation_periods or 1):
            end = now - index * period
            values = [
                d.value
                for d in self.datapoints
                if end - period <= d.at < end
                and d.region == spec.region
                and d.namespace == spec.namespace
                and d.metric == spec.metric
                and set(wanted) <= set(d.dimensions)
            ]
            if not values:
                missing += 1
                if spec.treat_missing == "breaching":
                    breaching += 1
                continue
            value = _STATISTICS.get(spec.statistic or "Average", statistics.fmean)(values)
            if _COMPARISONS[spec.comparison or "GreaterThanThreshold"](value, spec.threshold or 0.0):
                breaching += 1
        if breaching >= (spec.datapoints_to_alarm or 1):
            return "ALARM"
        if missing == (spec.evaluation_periods or 1) and spec.treat_missing in ("missing", "ignore"):
            return None  # keeps its state
        return "OK"

    def _composite(self, spec: AlarmSpec) -> str:
        terms = _TERM.findall(spec.rule or "")
        hits = [self.states.get((spec.region, name)) == state for state, name in terms]
        joined = " AND " in (spec.rule or "")
        return "ALARM" if (all(hits) if joined else any(hits)) else "OK"

    def _set(self, spec: AlarmSpec, state: str | None) -> None:
        key = (spec.region, spec.name)
        state = self.held.get(key, state)
        old = self.states.get(key)
        if state is None or state == old:
            return
        self.states[key] = state
        self.changes.append((self.clock.elapsed, spec.region, spec.name, state))
        if state == "ALARM" or old == "ALARM":
            self._publish(spec, old or "INSUFFICIENT_DATA", state)

    def _publish(self, spec: AlarmSpec, old: str, new: str) -> None:
        message = {
            "AlarmName": spec.name,
            "AlarmDescription": "",
            "AWSAccountId": ACCOUNT,
            "NewStateValue": new,
            "NewStateReason": "drill",
            "StateChangeTime": self.clock.iso().replace("Z", "+0000"),
            "Region": spec.region,
            "AlarmArn": f"arn:aws:cloudwatch:{spec.region}:{ACCOUNT}:alarm:{spec.name}",
            "OldStateValue": old,
        }
        if spec.rule:
            message["AlarmRule"] = spec.rule
        for subscription in self.topology.subscriptions:
            if subscription.topic not in spec.actions:
                continue
            policy = subscription.filter_policy or {}
            if any(message.get(field) not in allowed for field, allowed in policy.items()):
                continue
            event = {
                "Records": [
                    {
                        "EventSource": "aws:sns",
                        "EventVersion": "1.0",
                        "EventSubscriptionArn": f"{subscription.topic}:{uuid.uuid4()}",
                        "Sns": {
                            "Type": "Notification",
                            "MessageId": str(uuid.uuid4()),
                            "TopicArn": subscription.topic,
                            "Subject": f'ALARM: "{spec.name}"' if new == "ALARM" else f'OK: "{spec.name}"',
                            "Message": json.dumps(message),
                            "Timestamp": self.clock.iso(),
                            "MessageAttributes": {},
                        },
                    }
                ]
            }
            self._notify(subscription.region, subscription.function, event)
