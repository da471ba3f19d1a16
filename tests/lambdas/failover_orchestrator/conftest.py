"""Two regions with a processing function, its queue consumer, an inbox on each alert topic and a clock."""

from __future__ import annotations

import io
import itertools
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.lambdas.conftest import (
    ACCOUNT,
    CONTROL,
    PRIMARY,
    PROCESSING_FUNCTION,
    REGIONS,
    SECONDARY,
    SUFFIX,
    Aws,
    topic_arn,
)

#: Reserved concurrency of the processing function (the orchestrator never changes it).
INITIAL_CONCURRENCY = 5


@dataclass
class World:
    """moto handles for the orchestrator tests."""

    aws: Aws
    lambdas: dict[str, Any]
    inboxes: dict[str, str]
    sqs: dict[str, Any]

    def mapping_states(self, region: str) -> list[str]:
        mappings = self.lambdas[region].list_event_source_mappings(FunctionName=PROCESSING_FUNCTION)
        return [m["State"] for m in mappings["EventSourceMappings"]]

    def concurrency(self, region: str) -> int | None:
        return (
            self.lambdas[region]
            .get_function_concurrency(FunctionName=PROCESSING_FUNCTION)
            .get("ReservedConcurrentExecutions")
        )

    def alerts(self, region: str) -> list[dict[str, str]]:
        """Subjects and messages published to ``region``'s alert topic (drains the inbox)."""
        received = []
        while True:
            batch = self.sqs[region].receive_message(QueueUrl=self.inboxes[region], MaxNumberOfMessages=10)
            if not batch.get("Messages"):
                return received
            for message in batch["Messages"]:
                envelope = json.loads(message["Body"])
                received.append({"subject": envelope.get("Subject", ""), "message": envelope["Message"]})
                self.sqs[region].delete_message(QueueUrl=self.inboxes[region], ReceiptHandle=message["ReceiptHandle"])

    def control(self, region: str) -> dict[str, dict[str, Any]]:
        """The control table of ``region`` by key."""
        return {item["pk"]["S"]: item for item in self.aws.items(CONTROL, region)}

    def holder(self, seen_from: str) -> tuple[int, str]:
        """(epoch, holder) of the lease in ``seen_from``'s replica (``WITNESS``: in the witness table)."""
        item = self.aws.lease(seen_from)
        assert item is not None, f"no lease in {seen_from}"
        return int(item["epoch"]["N"]), item["holder"]["S"]


@pytest.fixture
def world(aws: Aws) -> World:
    role = boto3.client("iam").create_role(RoleName="processing", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    lambdas, inboxes, sqs = {}, {}, {}
    for region in REGIONS:
        client = boto3.client("lambda", region_name=region)
        client.create_function(
            FunctionName=PROCESSING_FUNCTION,
            Runtime="python3.11",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": code.getvalue()},
        )
        client.put_function_concurrency(
            FunctionName=PROCESSING_FUNCTION, ReservedConcurrentExecutions=INITIAL_CONCURRENCY
        )
        sqs[region] = boto3.client("sqs", region_name=region)
        # A queue of its own: moto runs the mapped function when a mapped queue receives a message,
        # and the payment queue must stay a plain queue the tests can read.
        source = sqs[region].create_queue(QueueName=f"consumer-source-{SUFFIX}")["QueueUrl"]
        source_arn = sqs[region].get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        client.create_event_source_mapping(
            EventSourceArn=source_arn, FunctionName=PROCESSING_FUNCTION, Enabled=region == PRIMARY
        )
        lambdas[region] = client
        inbox = sqs[region].create_queue(QueueName=f"alert-inbox-{SUFFIX}")["QueueUrl"]
        inbox_arn = f"arn:aws:sqs:{region}:{ACCOUNT}:alert-inbox-{SUFFIX}"
        boto3.client("sns", region_name=region).subscribe(
            TopicArn=topic_arn(region), Protocol="sqs", Endpoint=inbox_arn
        )
        inboxes[region] = inbox
    return World(aws=aws, lambdas=lambdas, inboxes=inboxes, sqs=sqs)


def alarm_message(
    region: str = PRIMARY,
    state: str = "ALARM",
    at: str = "2024-05-01T12:00:00.000+0000",
    name: str | None = None,
) -> dict[str, Any]:
    name = name or f"payments-region-cannot-take-payments-{region}-{SUFFIX}"
    return {
        "AlarmName": name,
        "AlarmDescription": "region cannot take payments",
        "AWSAccountId": ACCOUNT,
        "NewStateValue": state,
        "NewStateReason": "child alarm in ALARM",
        "StateChangeTime": at,
        "Region": "US East",
        "AlarmArn": f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:{name}",
        "OldStateValue": "OK",
        "AlarmRule": "ALARM(a) OR ALARM(b)",
    }


def sns_event(message: dict[str, Any] | str, topic_region: str = SECONDARY) -> dict[str, Any]:
    """An SNS -> Lambda event carrying ``message`` (a dict is JSON-encoded, as CloudWatch does)."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic_arn(topic_region)}:sub",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                    "TopicArn": topic_arn(topic_region),
                    "Subject": "ALARM",
                    "Message": message if isinstance(message, str) else json.dumps(message),
                    "Timestamp": "2024-05-01T12:00:01.000Z",
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/cert.pem",
                    "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {},
                },
            }
        ]
    }


SCHEDULED = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": ACCOUNT,
    "time": "2024-05-01T12:00:00Z",
    "region": SECONDARY,
    "resources": [f"arn:aws:events:{SECONDARY}:{ACCOUNT}:rule/heartbeat"],
    "detail": {},
}


def ago(seconds: float) -> str:
    """An ISO timestamp ``seconds`` before now (control-table format)."""
    moment = datetime.now(UTC) - timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def put_heartbeat(aws: Aws, region: str, at: str) -> None:
    """``heartbeat#<region>`` in both regions' replicas."""
    for target in REGIONS:
        aws.dynamodb[target].put_item(
            TableName=CONTROL, Item={"pk": {"S": f"heartbeat#{region}"}, "at": {"S": at}, "expires_at": {"N": "0"}}
        )


class Clock:
    """One clock for every handler copy of a test: time moves only when the test says so."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = datetime.now(UTC)
        self._monkeypatch = monkeypatch

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        """Move time forward."""
        self.now += timedelta(seconds=seconds)
        return self.now

    def use(self, *modules: Any) -> None:
        """Make the handler modules read this clock (their ``utc_now``)."""
        for module in modules:
            self._monkeypatch.setattr(module, "utc_now", self)


def instant_canary(monkeypatch: pytest.MonkeyPatch, module: Any) -> None:
    """The probe's replication canary (real, against moto) on a clock that jumps a second per look.

    moto never replicates, so the canary would wait its full timeout in real time on every probe;
    canary.py's own tests cover the waiting.
    """
    ticks = itertools.count()
    monkeypatch.setitem(module.PROBE_CHECKS, "clock", lambda: float(next(ticks)))
    monkeypatch.setitem(module.PROBE_CHECKS, "sleep", lambda seconds: None)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A test clock, starting now."""
    return Clock(monkeypatch)
