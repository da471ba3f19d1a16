"""IAM for the IAM rules: where identity policies live, how to read their statements, and the allow-lists.

Identity policies appear as JSON strings (``aws_iam_policy.policy``,
``aws_iam_role_policy.policy``, ``aws_iam_role.inline_policy[].policy``, user and group
policies) and as ``data.aws_iam_policy_document`` statement blocks. A string that is one
whole reference (``${data.aws_iam_policy_document.x.json}``) is judged where it is
defined; ``${...}`` tokens *inside* JSON are plain strings. Resource-based policies (key,
bucket, queue, topic policies) are not identity policies and are not judged here.

The two allow-lists are the one place to widen the rules, each entry with its reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from _shared import blocks, is_reference, load_json_document, strings, value

#: Actions that may use ``Resource: "*"`` because IAM offers no narrower resource for them
#: (Service Authorization Reference: no resource types), or because AWS requires ``*``.
WILDCARD_RESOURCE_ACTIONS: dict[str, str] = {
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions for sending traces",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions for telemetry",
    "xray:GetSamplingRules": "X-Ray has no resource-level permissions for sampling",
    "xray:GetSamplingTargets": "X-Ray has no resource-level permissions for sampling",
    "xray:GetSamplingStatisticSummaries": "X-Ray has no resource-level permissions for sampling",
    "cloudwatch:PutMetricData": "no resource types; narrow it with a cloudwatch:namespace condition",
    "cloudwatch:GetMetricData": "no resource types",
    "cloudwatch:GetMetricStatistics": "no resource types",
    "cloudwatch:ListMetrics": "no resource types",
    "ec2:CreateNetworkInterface": (
        "Lambda creates a VPC function's ENIs itself and validates this permission on '*' when the "
        "function is created (AWS documents the VPC execution permissions with Resource '*')"
    ),
    "ec2:DeleteNetworkInterface": "Lambda deletes the ENIs it created; their ids are unknown at deploy time",
    "ec2:DescribeNetworkInterfaces": "Describe* calls have no resource types",
    "ec2:AssignPrivateIpAddresses": "Lambda manages the addresses of ENIs whose ids are unknown at deploy time",
    "ec2:UnassignPrivateIpAddresses": "Lambda manages the addresses of ENIs whose ids are unknown at deploy time",
    "ec2:DescribeSubnets": "Describe* calls have no resource types",
    "ec2:DescribeSecurityGroups": "Describe* calls have no resource types",
    "ec2:DescribeVpcs": "Describe* calls have no resource types",
    "logs:DescribeLogGroups": "a list call over the account; it has no narrower resource",
    "sqs:ListQueues": "a list call over the account; it has no narrower resource",
    "sns:ListTopics": "a list call over the account; it has no narrower resource",
    "dynamodb:ListTables": "a list call over the account; it has no narrower resource",
    "lambda:ListFunctions": "a list call over the account; it has no narrower resource",
    "lambda:ListEventSourceMappings": "a list call over the account; it has no narrower resource",
    "kms:ListAliases": "a list call over the account; it has no narrower resource",
    "route53:ListHostedZones": "a list call over the account; it has no narrower resource",
    "tag:GetResources": "no resource types",
    "sts:GetCallerIdentity": "needs no permission at all and has no resource",
}

#: AWS-managed policies that may be attached because their statements keep both IAM rules.
#: Any other managed policy is invisible to the scan (and most use Resource "*" broadly).
ALLOWED_AWS_MANAGED_POLICIES: dict[str, str] = {
    "AWSXRayDaemonWriteAccess": "only X-Ray Put*/sampling actions, which have no narrower resource",
}

#: Resource types whose ``policy`` attribute is an identity policy.
POLICY_ATTRIBUTE_TYPES = ("aws_iam_policy", "aws_iam_role_policy", "aws_iam_user_policy", "aws_iam_group_policy")
#: Every place an identity policy statement can be written.
IDENTITY_POLICY_RESOURCES = (*POLICY_ATTRIBUTE_TYPES, "aws_iam_role")
POLICY_DOCUMENT_DATA = ("aws_iam_policy_document",)

AWS_MANAGED_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::aws:policy/(?:.*/)?(?P<name>[^/]+)$")


@dataclass(frozen=True)
class Statement:
    """One statement, normalised: lists of actions and resources, lowercase effect."""

    where: str
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]


def _as_tuple(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, list | tuple):
        return tuple(str(item) for item in raw)
    return (str(raw),)


def _json_statements(where: str, text: Any) -> Iterator[Statement | str]:
    if is_reference(text):
        return
    document, problem = load_json_document(text)
    if problem:
        yield f"{where} {problem}"
        return
    raw = document.get("Statement", []) if isinstance(document, dict) else None
    if raw is None:
        yield f"{where} is not an IAM policy document"
        return
    for index, statement in enumerate(raw if isinstance(raw, list) else [raw]):
        if not isinstance(statement, dict):
            yield f"{where} statement {index} is not an object"
            continue
        yield Statement(
            where=f"{where} statement {statement.get('Sid') or index}",
            effect=str(statement.get("Effect", "")).lower(),
            actions=_as_tuple(statement.get("Action")),
            not_actions=_as_tuple(statement.get("NotAction")),
            resources=_as_tuple(statement.get("Resource")),
            not_resources=_as_tuple(statement.get("NotResource")),
        )


def statements(conf: dict[str, Any], entity_type: str) -> Iterator[Statement | str]:
    """Every identity-policy statement of a resource or data source; a string for one the scan cannot read."""
    if entity_type in POLICY_ATTRIBUTE_TYPES:
        yield from _json_statements("policy", value(conf, "policy"))
    elif entity_type == "aws_iam_role":
        for block in blocks(conf, "inline_policy"):
            yield from _json_statements(f"inline_policy {value(block, 'name')!r}", value(block, "policy"))
    elif entity_type == "aws_iam_policy_document":
        for attribute in ("source_policy_documents", "override_policy_documents"):
            for index, text in enumerate(strings(conf, attribute)):
                yield from _json_statements(f"{attribute}[{index}]", text)
        for index, block in enumerate(blocks(conf, "statement")):
            yield Statement(
                where=f"statement {value(block, 'sid') or index}",
                effect=str(value(block, "effect", "Allow")).lower(),
                actions=tuple(map(str, strings(block, "actions"))),
                not_actions=tuple(map(str, strings(block, "not_actions"))),
                resources=tuple(map(str, strings(block, "resources"))),
                not_resources=tuple(map(str, strings(block, "not_resources"))),
            )


def is_wildcard_action(action: str) -> bool:
    """``*`` or ``service:*``: every action (of a service)."""
    return action == "*" or action.endswith(":*")


def is_wildcard_resource(resource: str) -> bool:
    """``*``, or an ARN whose resource part is ``*`` (``arn:aws:s3:::*``, ``arn:aws:logs:*:*:*``)."""
    if resource == "*":
        return True
    parts = resource.split(":", 5)
    return len(parts) == 6 and parts[0] == "arn" and parts[5] == "*"


_ALLOWED = {action.lower() for action in WILDCARD_RESOURCE_ACTIONS}


def allows_wildcard_resource(action: str) -> bool:
    """Whether an action is on the allow-list (case-insensitive, exact: ``xray:Put*`` must be listed as such)."""
    return action.lower() in _ALLOWED


def aws_managed_policy(arn: Any) -> str | None:
    """The name of an AWS-managed policy ARN, or None."""
    if not isinstance(arn, str):
        return None
    match = AWS_MANAGED_ARN_RE.match(arn)
    return match.group("name") if match else None
