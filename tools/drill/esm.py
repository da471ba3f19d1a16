"""The SQS event source mapping, as Lambda runs it, driven by the synthesized mapping and queue.

Each poll receives up to ``batch_size`` messages (no long polling: simulated time does not pass
during a call), invokes the function, and deletes what succeeded: with
``ReportBatchItemFailures`` every record but the reported ones; without it, all or nothing. A
failed record stays in the queue and comes back after the queue's visibility timeout; moto moves
it to the DLQ after ``maxReceiveCount`` receives (its clock is the drill's). A disabled mapping
(the orchestrator can enable it) or a region that is down polls nothing. At most
``maximum_concurrency`` batches run per second of simulated time. As in Lambda, the poller reads
and deletes with the function's role (:meth:`World.poller`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from tools.drill.runtime import Runtime
from tools.drill.synth import QueueSpec
from tools.drill.world import Mapping, World


@dataclass
class PollStats:
    """What the mapping did."""

    batches: int = 0
    records: int = 0
    failed_records: int = 0
    failed_batches: int = 0


class EventSourceMapping:
    """One SQS -> Lambda mapping."""

    def __init__(self, mapping: Mapping, queue: QueueSpec, world: World, runtime: Runtime) -> None:
        self.mapping, self.queue, self.world, self.runtime = mapping, queue, world, runtime
        self.stats = PollStats()
        self.arn = f"arn:aws:sqs:{queue.region}:{queue.url.rsplit('/', 2)[-2]}:{queue.name}"

    @property
    def region(self) -> str:
        """The mapping's region."""
        return self.mapping.spec.region

    def poll(self) -> int:
        """Run up to ``maximum_concurrency`` batches; returns the records handed to the function."""
        if not self.mapping.enabled or self.region in self.world.down:
            return 0
        handed = 0
        for _ in range(self.mapping.spec.maximum_concurrency or 1):
            visible, _in_flight = self._backend_counts(polling=True)
            if not visible:  # what long polling would see; saves a request per idle second
                break
            with self.world.internal():
                messages = (
                    self.world.poller(self.region, self.mapping.spec.function)
                    .receive_message(
                        QueueUrl=self.queue.url,
                        MaxNumberOfMessages=min(self.mapping.spec.batch_size, 10),
                        WaitTimeSeconds=0,
                        AttributeNames=["All"],
                        MessageAttributeNames=["All"],
                    )
                    .get("Messages", [])
                )
            if not messages:
                break
            handed += len(messages)
            self._run(messages)
        return handed

    def _run(self, messages: list[dict[str, Any]]) -> None:
        self.stats.batches += 1
        self.stats.records += len(messages)
        event = {"Records": [self._record(message) for message in messages]}
        try:
            answer = self.runtime.invoke(self.region, self.mapping.spec.function, event)
        except Exception:
            self.stats.failed_batches += 1
            return  # every message comes back after the visibility timeout
        failed: set[str] = set()
        if self.mapping.spec.report_batch_item_failures and isinstance(answer, dict):
            failed = {item["itemIdentifier"] for item in answer.get("batchItemFailures") or []}
        self.stats.failed_records += len(failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            with self.world.internal():
                self.world.poller(self.region, self.mapping.spec.function).delete_message_batch(
                    QueueUrl=self.queue.url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn,
            "awsRegion": self.region,
        }

    def _backend_counts(self, polling: bool = False) -> tuple[int, int]:
        """(visible, in flight) messages of the queue (``polling``: asked as the poller, with the function's role)."""
        return self.world.queue_counts(self.region, self.queue.name, self.mapping.spec.function if polling else None)

    def depth(self) -> int:
        """Visible plus in-flight messages of the queue."""
        return sum(self._backend_counts())
