"""CKV_PDR_4: every DynamoDB table is on-demand with point-in-time recovery, on the table and every replica."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from _shared import ProjectResourceCheck, blocks, is_true, value


class DynamodbOnDemandPitr(ProjectResourceCheck):
    """``PAY_PER_REQUEST`` and point-in-time recovery on tables, their ``replica`` blocks and replica resources."""

    def __init__(self) -> None:
        super().__init__(
            id="CKV_PDR_4",
            name="Every DynamoDB table is PAY_PER_REQUEST with point-in-time recovery on the table and every replica",
            why=(
                "After a failover the standby region takes the full load at once: provisioned capacity "
                "would throttle payments. Point-in-time recovery is the only way back from a bad write "
                "that replication has already copied to every region."
            ),
            resources=("aws_dynamodb_table", "aws_dynamodb_table_replica"),
        )

    def problems(self, conf: dict[str, Any], entity_type: str) -> Iterator[str]:
        """Provisioned billing, or a table or replica without point-in-time recovery."""
        if entity_type == "aws_dynamodb_table_replica":
            if not is_true(value(conf, "point_in_time_recovery")):
                yield "point_in_time_recovery is not true on this replica"
            return
        billing = value(conf, "billing_mode", "PROVISIONED")
        if billing != "PAY_PER_REQUEST":
            yield f"billing_mode={billing!r}, must be PAY_PER_REQUEST"
        pitr = blocks(conf, "point_in_time_recovery")
        if not pitr or not is_true(value(pitr[0], "enabled")):
            yield "point_in_time_recovery.enabled is not true on the table"
        for replica in blocks(conf, "replica"):
            if not is_true(value(replica, "point_in_time_recovery")):
                yield f"replica in {value(replica, 'region_name')!r} has no point_in_time_recovery = true"


check = DynamodbOnDemandPitr()
