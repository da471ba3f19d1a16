"""CKV_PDR_13: no AWS-managed (or other unseen) policy is attached, apart from the reviewed allow-list."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from _iam import ALLOWED_AWS_MANAGED_POLICIES, aws_managed_policy
from _shared import ProjectResourceCheck, is_reference, strings, value

ATTACHMENT_TYPES = (
    "aws_iam_role_policy_attachment",
    "aws_iam_policy_attachment",
    "aws_iam_user_policy_attachment",
    "aws_iam_group_policy_attachment",
)


def arn_problems(attribute: str, arn: Any) -> Iterator[str]:
    """A policy ARN the scan cannot read, unless it is a reference (to a policy defined and checked here)."""
    if is_reference(arn):
        return
    name = aws_managed_policy(arn)
    if name is None:
        yield f"{attribute}={arn!r} is a policy outside this project: the scan cannot read its statements"
    elif name not in ALLOWED_AWS_MANAGED_POLICIES:
        yield (
            f"{attribute} attaches AWS-managed {name}, whose statements the IAM rules cannot see "
            "(most use Resource '*'): write the least-privilege statements instead"
        )


class IamNoAwsManagedPolicies(ProjectResourceCheck):
    """Attachments and ``managed_policy_arns`` name only policies defined in the project (or allow-listed)."""

    def __init__(self) -> None:
        super().__init__(
            id="CKV_PDR_13",
            name="No IAM role attaches an AWS-managed or external policy outside the reviewed allow-list",
            why=(
                "The IAM rules can only judge statements they can read; an attached managed policy "
                "(AWSLambdaBasicExecutionRole: logs on '*') would grant past them unseen."
            ),
            resources=(*ATTACHMENT_TYPES, "aws_iam_role"),
        )

    def problems(self, conf: dict[str, Any], entity_type: str) -> Iterator[str]:
        """Each attached policy ARN the scan cannot read."""
        if entity_type == "aws_iam_role":
            for index, arn in enumerate(strings(conf, "managed_policy_arns")):
                yield from arn_problems(f"managed_policy_arns[{index}]", arn)
            return
        yield from arn_problems("policy_arn", value(conf, "policy_arn"))


check = IamNoAwsManagedPolicies()
