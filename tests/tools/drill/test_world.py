"""moto built from the synth; faults, the Lambda control API and write capture around it."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from tools.drill.drill import Drill
from tools.drill.world import UNREACHABLE, Fault

NO_RETRY = Config(retries={"mode": "standard", "max_attempts": 1})


def test_tables_and_queues_are_created_as_synthesized(wired: Drill) -> None:
    with wired.world.internal():
        for region in wired.topology.regions:
            described = wired.world.client("dynamodb", region).describe_table(TableName="payments-transactions-dev")
            assert [i["IndexName"] for i in described["Table"]["GlobalSecondaryIndexes"]] == [
                "merchant-created-index",
                "pending-index",
            ]
            ttl = wired.world.client("dynamodb", region).describe_time_to_live(TableName="payments-idempotency-dev")
            assert ttl["TimeToLiveDescription"]["AttributeName"] == "expiration"
            queue = wired.topology.queues[(region, "payments-processing-dev")]
            attributes = wired.world.client("sqs", region).get_queue_attributes(
                QueueUrl=queue.url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"]
            )["Attributes"]
            assert attributes["VisibilityTimeout"] == str(queue.visibility_timeout_s)
            assert '"maxReceiveCount": 5' in attributes["RedrivePolicy"]


def test_the_lambda_control_api_answers_from_the_mapping_state(wired: Drill) -> None:
    region = wired.topology.secondary
    client = boto3.client("lambda", region_name=region, config=NO_RETRY)
    name = wired.topology.function(region, "payment_processing").name
    mappings = client.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
    assert [m["State"] for m in mappings] == ["Disabled"]  # a standby's mapping is deployed disabled (#13)
    client.update_event_source_mapping(UUID=mappings[0]["UUID"], Enabled=True)
    assert wired.world.lambda_control.mapping(region, "payment_processing")[0].enabled
    client.update_event_source_mapping(UUID=mappings[0]["UUID"], Enabled=False)
    assert client.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 10
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=50)
    assert wired.world.lambda_control.concurrency[(region, name)] == 50


def test_a_region_that_is_down_refuses_connections_and_faults_answer_aws_errors(wired: Drill) -> None:
    region = wired.topology.primary
    client = boto3.client("dynamodb", region_name=region, config=NO_RETRY)
    wired.world.fail(region)
    try:
        with pytest.raises(EndpointConnectionError):
            client.describe_table(TableName="payments-control-dev")
    finally:
        wired.world.recover(region)
    wired.world.faults.append(Fault(region, "dynamodb", operations=frozenset({"GetItem"})))
    try:
        with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
            client.get_item(TableName="payments-control-dev", Key={"pk": {"S": "x"}})
        client.describe_table(TableName="payments-control-dev")  # other operations are untouched
    finally:
        wired.world.faults.clear()


def test_a_fault_for_some_functions_leaves_the_other_callers_alone(wired: Drill) -> None:
    region = wired.topology.primary
    queue = wired.topology.queues[(region, "payments-processing-dev")].url
    client = boto3.client("sqs", region_name=region, config=NO_RETRY)
    wired.world.faults.append(Fault(region, "sqs", code=UNREACHABLE, functions=frozenset({"payment_validation"})))
    previous = wired.world.function
    try:
        wired.world.function = "payment_validation"
        with pytest.raises(EndpointConnectionError):
            client.send_message(QueueUrl=queue, MessageBody="{}")
        wired.world.function = "failover_orchestrator"  # outside the VPC: its calls connect
        client.send_message(QueueUrl=queue, MessageBody="{}")
    finally:
        wired.world.function = previous
        wired.world.faults.clear()
        with wired.world.internal():
            wired.world.client("sqs", region).purge_queue(QueueUrl=queue)


def test_a_write_is_captured_and_replicated_after_the_lag(wired: Drill) -> None:
    primary, secondary = wired.topology.regions
    item = {"pk": {"S": "drill-capture"}, "v": {"S": "1"}}
    boto3.client("dynamodb", region_name=primary).put_item(TableName="payments-control-dev", Item=item)
    peer = boto3.client("dynamodb", region_name=secondary)
    assert "Item" not in peer.get_item(TableName="payments-control-dev", Key={"pk": item["pk"]})
    wired.clock.advance(wired.world.replicator.lag_s)
    wired.world.replicate()
    assert peer.get_item(TableName="payments-control-dev", Key={"pk": item["pk"]})["Item"] == item


def test_https_from_a_function_is_answered_by_the_drill_and_never_leaves_the_process(wired: Drill) -> None:
    import urllib.error
    import urllib.request

    primary, secondary = wired.topology.regions
    host = wired.topology.apis[primary].regional_host
    # No lease yet in this wired drill: the real health handler answers 503 through the drill's API.
    with pytest.raises(urllib.error.HTTPError) as answered:
        urllib.request.urlopen(f"https://{host}/health", timeout=1)
    assert answered.value.code == 503
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen("https://example.com/health", timeout=1)
    wired.world.partitioned, wired.world.caller = True, secondary
    try:
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"https://{host}/health", timeout=1)
    finally:
        wired.world.partitioned, wired.world.caller = False, None


def test_a_crash_kills_the_function_right_after_its_lease_write_once(wired: Drill) -> None:
    from tools.drill.world import Crash, FunctionCrashed

    region = wired.topology.secondary
    client = boto3.client("dynamodb", region_name=region, config=NO_RETRY)
    item = {"pk": {"S": "lease"}, "epoch": {"N": "7"}, "holder": {"S": region}, "valid_until": {"N": "0"}}
    crash = Crash(region, "failover_orchestrator", "lease")
    wired.world.crashes.append(crash)
    wired.world.caller, wired.world.function = region, "failover_orchestrator"
    try:
        client.put_item(TableName="payments-control-dev", Item={"pk": {"S": "heartbeat#x"}})  # not the lease
        with pytest.raises(FunctionCrashed):
            client.put_item(TableName="payments-control-dev", Item=item)
        client.put_item(TableName="payments-control-dev", Item=item)  # one shot
    finally:
        wired.world.caller, wired.world.function = None, None
        wired.world.crashes.remove(crash)
    assert crash.fired_at is not None
    with wired.world.internal():
        stored = wired.world.client("dynamodb", region).get_item(
            TableName="payments-control-dev", Key={"pk": {"S": "lease"}}, ConsistentRead=True
        )
    assert stored["Item"]["epoch"] == {"N": "7"}, "the write itself happened before the crash"


def test_a_cancelled_transaction_leaves_every_item_as_it_was(wired: Drill) -> None:
    """The item-level rollback that replaces moto's whole-table copy: a Put applied before a failed check is undone."""
    region = wired.topology.primary
    client = boto3.client("dynamodb", region_name=region, config=NO_RETRY)
    table = "payments-control-dev"
    client.put_item(TableName=table, Item={"pk": {"S": "tx-a"}, "v": {"N": "1"}})
    with pytest.raises(ClientError, match="TransactionCanceledException"):
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "tx-new"}, "v": {"N": "9"}}}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "tx-a"}},
                        "UpdateExpression": "SET v = :nine",
                        "ExpressionAttributeValues": {":nine": {"N": "9"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": "tx-b"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    get = lambda pk: client.get_item(TableName=table, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")  # noqa: E731
    assert get("tx-new") is None
    assert get("tx-a") == {"pk": {"S": "tx-a"}, "v": {"N": "1"}}
    client.transact_write_items(
        TransactItems=[{"Put": {"TableName": table, "Item": {"pk": {"S": "tx-new"}, "v": {"N": "2"}}}}]
    )
    assert get("tx-new") == {"pk": {"S": "tx-new"}, "v": {"N": "2"}}


def test_a_request_to_an_emulator_endpoint_is_placed_by_its_signature() -> None:
    from botocore.awsrequest import AWSRequest

    from tools.drill.world import DrillSetupError, _service_region

    signed = AWSRequest(
        method="POST",
        url="http://127.0.0.1:4566/2015-03-31/event-source-mappings/abc",
        headers={
            "Authorization": "AWS4-HMAC-SHA256 Credential=ASIAX/20261201/us-east-2/lambda/aws4_request, "
            "SignedHeaders=host, Signature=00"
        },
    )
    assert _service_region(signed) == ("lambda", "us-east-2", "2015-03-31/event-source-mappings/abc")
    by_host = AWSRequest(method="POST", url="https://monitoring.us-west-2.amazonaws.com/")
    assert _service_region(by_host) == ("monitoring", "us-west-2", "")
    with pytest.raises(DrillSetupError, match=r"unsigned request to 127\.0\.0\.1:4566"):
        _service_region(AWSRequest(method="GET", url="http://127.0.0.1:4566/health"))
