"""CKV_PDR_5: every SQS queue that is not itself a dead-letter queue has a redrive policy to one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from _shared import NOT_A_SCAN_VIEW, ProjectResourceCheck, load_json_document, scan_facts, value

#: A queue named like this is a dead-letter queue even when the queue that uses it is in another stack.
DLQ_NAME_MARKER = "-dlq"


def is_dead_letter_queue(conf: dict[str, Any], facts: dict[str, Any]) -> bool:
    """A DLQ: another queue of the same stack redrives to it, it allows redrive to it, or it is named ``*-dlq*``.

    checkov sees one stack at a time, and so does the scan view: a DLQ used by a queue of
    another stack is recognised by its name only.
    """
    if facts.get("dead_letter_for") or "redrive_allow_policy" in conf or facts.get("redrive_allow_from"):
        return True
    name = value(conf, "name") or value(conf, "name_prefix") or ""
    return isinstance(name, str) and DLQ_NAME_MARKER in name


def redrive_problems(text: Any) -> Iterator[str]:
    """What is wrong with a ``redrive_policy`` JSON string."""
    document, problem = load_json_document(text)
    if problem:
        yield f"redrive_policy {problem}"
        return
    if not isinstance(document, dict) or not document.get("deadLetterTargetArn"):
        yield "redrive_policy has no deadLetterTargetArn"
        return
    count = document.get("maxReceiveCount")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        yield f"redrive_policy maxReceiveCount={count!r} must be a whole number >= 1"


class SqsRedrivePolicy(ProjectResourceCheck):
    """A queue keeps a message that keeps failing in its DLQ, not forever in flight."""

    def __init__(self) -> None:
        super().__init__(
            id="CKV_PDR_5",
            name="Every SQS queue that is not a dead-letter queue has a redrive policy to one",
            why=(
                "Without a dead-letter queue a payment that always fails is retried until its retention "
                "ends and then deleted: lost without a trace. The DLQ keeps it for inspection and replay."
            ),
            resources=("aws_sqs_queue",),
        )

    def problems(self, conf: dict[str, Any], entity_type: str) -> Iterator[str]:
        """No redrive policy (inline or via ``aws_sqs_queue_redrive_policy``), or an unusable one."""
        facts = scan_facts(conf)
        if facts is None:
            yield NOT_A_SCAN_VIEW
            return
        if is_dead_letter_queue(conf, facts):
            return
        if "redrive_policy" in conf:
            yield from redrive_problems(value(conf, "redrive_policy"))
        elif not facts.get("redrive_policy_from"):
            yield (
                "no redrive_policy (and no aws_sqs_queue_redrive_policy in this stack) while no queue "
                f"of this stack uses it as a dead-letter queue and its name has no {DLQ_NAME_MARKER!r}"
            )


check = SqsRedrivePolicy()
