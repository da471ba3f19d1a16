"""The SQS mapping runs the real processing handler: batches, partial failures, redrive to the DLQ."""

from __future__ import annotations

import json

from tools.drill.drill import Drill
from tools.drill.esm import EventSourceMapping


def mapping_of(wired: Drill, region: str) -> EventSourceMapping:
    return next(m for m in wired.mappings if m.region == region)


def test_a_poison_message_comes_back_after_the_visibility_timeout_then_reaches_the_dlq(wired: Drill) -> None:
    region = wired.topology.secondary
    mapping = mapping_of(wired, region)
    # A standby's orchestrator disables its mapping (#13); a poison message fails before any lease check.
    mapping.mapping.enabled = True
    queue = mapping.queue
    with wired.world.internal():
        sqs = wired.world.client("sqs", region)
        sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps({"payment_id": "not-a-payment"}))
    assert mapping.poll() == 1
    assert mapping.stats.failed_records == 1
    assert mapping.poll() == 0, "hidden for the visibility timeout"
    for _ in range(queue.max_receive_count - 1):
        wired.clock.advance(queue.visibility_timeout_s + 1)
        assert mapping.poll() == 1
    wired.clock.advance(queue.visibility_timeout_s + 1)
    assert mapping.poll() == 0, "moved to the DLQ after maxReceiveCount receives"
    dlq = wired.topology.queues[(region, queue.dlq_name)]
    with wired.world.internal():
        moved = sqs.receive_message(QueueUrl=dlq.url, WaitTimeSeconds=0)["Messages"]
    assert [json.loads(m["Body"]) for m in moved] == [{"payment_id": "not-a-payment"}]


def test_a_disabled_mapping_polls_nothing(wired: Drill) -> None:
    region = wired.topology.primary
    mapping = mapping_of(wired, region)
    with wired.world.internal():
        wired.world.client("sqs", region).send_message(QueueUrl=mapping.queue.url, MessageBody="{}")
    mapping.mapping.enabled = False
    try:
        assert mapping.poll() == 0
        assert mapping.depth() == 1
    finally:
        mapping.mapping.enabled = True
    assert mapping.poll() == 1
