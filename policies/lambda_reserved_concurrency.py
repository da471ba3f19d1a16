"""CKV_PDR_3: every Lambda function reserves at least one concurrent execution."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from _shared import ProjectResourceCheck, value


class LambdaReservedConcurrency(ProjectResourceCheck):
    """``reserved_concurrent_executions >= 1`` (the default, -1, means unreserved)."""

    def __init__(self) -> None:
        super().__init__(
            id="CKV_PDR_3",
            name="Every Lambda function sets reserved_concurrent_executions >= 1",
            why=(
                "Reserved concurrency guarantees each payment function capacity when another function "
                "in the account spikes, and caps how hard a retry storm can hit DynamoDB."
            ),
            resources=("aws_lambda_function",),
        )

    def problems(self, conf: dict[str, Any], entity_type: str) -> Iterator[str]:
        """Missing, not a literal number, or below 1."""
        reserved = value(conf, "reserved_concurrent_executions")
        if reserved is None:
            yield "reserved_concurrent_executions is not set (unreserved)"
        elif isinstance(reserved, bool) or not isinstance(reserved, int):
            yield f"reserved_concurrent_executions={reserved!r} is not a literal whole number"
        elif reserved < 1:
            yield f"reserved_concurrent_executions={reserved} must be at least 1 (0 disables the function)"


check = LambdaReservedConcurrency()
