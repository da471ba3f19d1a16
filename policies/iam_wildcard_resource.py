"""CKV_PDR_12: ``Resource: "*"`` only for actions that have no narrower resource (the allow-list in ``_iam.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from _iam import (
    IDENTITY_POLICY_RESOURCES,
    POLICY_DOCUMENT_DATA,
    Statement,
    allows_wildcard_resource,
    is_wildcard_resource,
    statements,
)
from _shared import ProjectDataCheck, ProjectResourceCheck

ID = "CKV_PDR_12"
NAME = "IAM identity policies use Resource '*' only for actions that have no narrower resource"
WHY = (
    "Resource '*' lets a function touch the other environment's and the other region's tables, queues "
    "and keys; only actions IAM cannot scope (X-Ray, PutMetricData, Lambda's ENI calls) may use it."
)


def problems(conf: dict[str, Any], entity_type: str) -> Iterator[str]:
    """Allow statements on a wildcard resource (or NotResource) with an action outside the allow-list."""
    for statement in statements(conf, entity_type):
        if isinstance(statement, str):
            yield statement
            continue
        if not isinstance(statement, Statement) or statement.effect != "allow":
            continue
        if statement.not_resources:
            yield f"{statement.where} allows NotResource {list(statement.not_resources)}: every other resource"
        if any(is_wildcard_resource(resource) for resource in statement.resources):
            actions = statement.actions or statement.not_actions
            narrow = [action for action in actions if not allows_wildcard_resource(action)]
            if narrow:
                yield (
                    f"{statement.where} uses a wildcard resource for {narrow}, which have narrower "
                    "resources (or add them, with the reason, to WILDCARD_RESOURCE_ACTIONS in policies/_iam.py)"
                )


class IamWildcardResource(ProjectResourceCheck):
    """The rule over policy resources and roles' inline policies."""

    def __init__(self) -> None:
        super().__init__(id=ID, name=NAME, why=WHY, resources=IDENTITY_POLICY_RESOURCES)

    def problems(self, conf: dict[str, Any], entity_type: str) -> Iterator[str]:
        """See :func:`problems`."""
        return problems(conf, entity_type)


class IamWildcardResourceDocument(ProjectDataCheck):
    """The same rule over ``data.aws_iam_policy_document``."""

    def __init__(self) -> None:
        super().__init__(id=ID, name=NAME, why=WHY, data=POLICY_DOCUMENT_DATA)

    def problems(self, conf: dict[str, Any], entity_type: str) -> Iterator[str]:
        """See :func:`problems`."""
        return problems(conf, entity_type)


checks = (IamWildcardResource(), IamWildcardResourceDocument())
