"""CKV_PDR_8: every Route 53 record of the API name is a failover record with a health check."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from _shared import ProjectResourceCheck, blocks, value

#: The client-facing API name is ``api.<zone>`` (docs/design.md: ``client_url``). Records whose first
#: label is exactly this are "used for the API"; ``api-<region>.<zone>`` (the regional names the
#: health checks probe) are not, and neither are ACM validation records (``_x.api.<zone>``).
API_LABEL = "api"
FAILOVER_TYPES = ("PRIMARY", "SECONDARY")


def is_api_record(name: Any) -> bool:
    """Whether a record name (``api``, ``api.<zone>`` or ``api.${...}``) is the API name."""
    return isinstance(name, str) and name.split(".", 1)[0].lower() == API_LABEL


class Route53ApiFailover(ProjectResourceCheck):
    """``failover_routing_policy``, ``set_identifier`` and ``health_check_id`` on every ``api.`` record."""

    def __init__(self) -> None:
        super().__init__(
            id="CKV_PDR_8",
            name="Every Route 53 record of the API name is a failover record with a health check",
            why=(
                "DNS failover is the data-plane path that moves clients off a failed region without any "
                "Lambda running; a simple record, or one without a health check, never fails over."
            ),
            resources=("aws_route53_record",),
        )

    def problems(self, conf: dict[str, Any], entity_type: str) -> Iterator[str]:
        """Only API records are judged; any other record passes."""
        name = value(conf, "name")
        if not is_api_record(name):
            return
        policies = blocks(conf, "failover_routing_policy")
        if not policies:
            yield f"record {name!r} has no failover_routing_policy"
        elif value(policies[0], "type") not in FAILOVER_TYPES:
            yield f"failover_routing_policy.type={value(policies[0], 'type')!r}, must be PRIMARY or SECONDARY"
        if not value(conf, "set_identifier"):
            yield f"record {name!r} has no set_identifier (failover records need one)"
        if not value(conf, "health_check_id"):
            yield f"record {name!r} has no health_check_id"


check = Route53ApiFailover()
