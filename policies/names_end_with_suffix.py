"""CKV_PDR_2: every resource name (or name prefix) ends with the environment suffix."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from _shared import NOT_A_SCAN_VIEW, ProjectResourceCheck, scan_facts, tags, value

#: Attributes that hold a resource's own name (same list as tests/layers/test_names.py, plus prefixes).
NAME_ATTRIBUTES = (
    "name",
    "name_prefix",
    "function_name",
    "bucket",
    "bucket_prefix",
    "alarm_name",
    "dashboard_name",
    "layer_name",
)
#: (type, attribute) pairs that are DNS names: they follow the domain, not the suffix rule.
#: (ACM and API Gateway ``domain_name`` are DNS names too; they are not in NAME_ATTRIBUTES.)
DNS_NAMES = frozenset({("aws_route53_zone", "name"), ("aws_route53_record", "name")})
#: Names AWS restricts to letters and digits that are unique only inside their (suffixed) parent:
#: an API Gateway model name is scoped to its REST API. They must be alphanumeric instead.
SCOPED_ALPHANUMERIC_NAMES = frozenset({("aws_api_gateway_model", "name")})
#: Names AWS fixes, for resources AWS would otherwise create on its own (no retention, no key, left
#: behind by destroy): the stack creates them first. The one: API Gateway's execution log group of
#: a stage, ``API-Gateway-Execution-Logs_<rest api id>/<stage>``; the REST API's own name is suffixed.
AWS_FIXED_NAMES = {
    ("aws_cloudwatch_log_group", "name"): re.compile(
        r"^API-Gateway-Execution-Logs_\$\{aws_api_gateway_rest_api\.[\w-]+\.id\}/\w+$"
    )
}


def ends_with_token(text: str) -> bool:
    """``/aws/lambda/${aws_lambda_function.x.function_name}``: the referenced name is checked where it is defined."""
    return text.endswith("}") and "${" in text


class NamesEndWithSuffix(ProjectResourceCheck):
    """``<base>-<suffix>`` everywhere, so two deployments never collide and every name tells its environment."""

    def __init__(self) -> None:
        super().__init__(
            id="CKV_PDR_2",
            name="Every resource name and name prefix ends with the environment suffix",
            why=(
                "Two suffixes deploy side by side in one account; a name without the suffix collides "
                "with the other deployment, and a destroy of one could take the other's resource."
            ),
            resources=("aws_*",),
        )

    def problems(self, conf: dict[str, Any], entity_type: str) -> Iterator[str]:
        """Each name attribute (and the Name tag) that does not end with ``-<suffix>``."""
        facts = scan_facts(conf)
        if facts is None:
            yield NOT_A_SCAN_VIEW
            return
        suffix = facts.get("environment")
        if not suffix:
            yield "its provider has no Environment default tag, so the environment suffix is unknown"
            return
        named: list[tuple[str, Any]] = [
            (attribute, value(conf, attribute))
            for attribute in NAME_ATTRIBUTES
            if attribute in conf and (entity_type, attribute) not in DNS_NAMES
        ]
        deployed = tags(conf)
        if isinstance(deployed, dict) and "Name" in deployed:
            named.append(("tags.Name", deployed["Name"]))
        for attribute, name in named:
            if not isinstance(name, str) or ends_with_token(name):
                continue
            fixed = AWS_FIXED_NAMES.get((entity_type, attribute))
            if fixed is not None and fixed.match(name):
                continue
            if (entity_type, attribute) in SCOPED_ALPHANUMERIC_NAMES:
                if not name.isalnum():
                    yield f"{attribute}={name!r} must be letters and digits (scoped to its parent, no suffix)"
                continue
            endings = (f"-{suffix}", f"-{suffix}-") if attribute.endswith("_prefix") else (f"-{suffix}",)
            if not name.endswith(endings):
                yield f"{attribute}={name!r} does not end with -{suffix}"


check = NamesEndWithSuffix()
