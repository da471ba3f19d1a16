"""CKV_PDR_11: no identity policy allows every action (``*`` or ``service:*``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from _iam import IDENTITY_POLICY_RESOURCES, POLICY_DOCUMENT_DATA, Statement, is_wildcard_action, statements
from _shared import ProjectDataCheck, ProjectResourceCheck

ID = "CKV_PDR_11"
NAME = "No IAM identity policy allows '*' or 'service:*' actions (or NotAction)"
WHY = (
    "A payment function that may call every action of a service can delete the tables and queues it "
    "only needs to read or write; least privilege limits what a bug or a stolen credential can do."
)


def problems(conf: dict[str, Any], entity_type: str) -> Iterator[str]:
    """Allow statements with a wildcard action or with NotAction."""
    for statement in statements(conf, entity_type):
        if isinstance(statement, str):
            yield statement
        elif isinstance(statement, Statement) and statement.effect == "allow":
            if statement.not_actions:
                yield f"{statement.where} allows NotAction {list(statement.not_actions)}: everything else"
            wild = [action for action in statement.actions if is_wildcard_action(action)]
            if wild:
                yield f"{statement.where} allows wildcard actions {wild}"


class IamNoWildcardAction(ProjectResourceCheck):
    """The rule over policy resources and roles' inline policies."""

    def __init__(self) -> None:
        super().__init__(id=ID, name=NAME, why=WHY, resources=IDENTITY_POLICY_RESOURCES)

    def problems(self, conf: dict[str, Any], entity_type: str) -> Iterator[str]:
        """See :func:`problems`."""
        return problems(conf, entity_type)


class IamNoWildcardActionDocument(ProjectDataCheck):
    """The same rule over ``data.aws_iam_policy_document``."""

    def __init__(self) -> None:
        super().__init__(id=ID, name=NAME, why=WHY, data=POLICY_DOCUMENT_DATA)

    def problems(self, conf: dict[str, Any], entity_type: str) -> Iterator[str]:
        """See :func:`problems`."""
        return problems(conf, entity_type)


checks = (IamNoWildcardAction(), IamNoWildcardActionDocument())
