"""CKV_PDR_9: every CloudWatch alarm notifies an SNS topic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from _shared import ProjectResourceCheck, strings, value


def is_sns_target(action: Any) -> bool:
    """An SNS topic ARN, or a reference to an ``aws_sns_topic`` (cross-stack outputs keep the type in their name)."""
    return isinstance(action, str) and (":sns:" in action or "aws_sns_topic" in action)


class AlarmSnsAction(ProjectResourceCheck):
    """``alarm_actions`` holds an SNS topic, and actions are enabled."""

    def __init__(self) -> None:
        super().__init__(
            id="CKV_PDR_9",
            name="Every CloudWatch metric or composite alarm has an SNS topic in alarm_actions",
            why="An alarm nobody hears is a dashboard: on-call and the failover orchestrator listen on SNS.",
            resources=("aws_cloudwatch_metric_alarm", "aws_cloudwatch_composite_alarm"),
        )

    def problems(self, conf: dict[str, Any], entity_type: str) -> Iterator[str]:
        """No SNS action, or actions switched off."""
        actions = strings(conf, "alarm_actions")
        if not any(is_sns_target(action) for action in actions):
            yield f"alarm_actions {actions!r} holds no SNS topic"
        if value(conf, "actions_enabled", True) is False:
            yield "actions_enabled=false: the alarm notifies nobody"


check = AlarmSnsAction()
