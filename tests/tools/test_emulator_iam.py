"""IAM enforcement against resource ARNs (tools/emulator_iam.py), over HTTP like the deployed functions.

Each test grants a role one action on one resource, switches enforcement on, and checks both
directions: the granted (action, resource) works, the same action on a sibling resource is refused.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tools.emulator import ACCOUNT_ID, Emulator
from tools.emulator_iam import DECISIONS_ENV, dynamodb_targets, lambda_targets

REGION = "us-east-1"
Client = Callable[..., Any]
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def clients_of(endpoint: str) -> Client:
    """boto3 clients of the emulator at ``endpoint``: its test credentials, or the ones given."""

    def client(service: str, **credentials: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=endpoint,
            aws_access_key_id=credentials.get("aws_access_key_id", "testing"),
            aws_secret_access_key=credentials.get("aws_secret_access_key", "testing"),
            aws_session_token=credentials.get("aws_session_token"),
        )

    return client


@pytest.fixture
def admin(emulator: Emulator) -> Iterator[Client]:
    """Clients with the emulator's test credentials (enforcement off while resources are made)."""
    emulator.enforce_iam(False)
    emulator.reset()
    client = clients_of(emulator.endpoint)
    yield client
    emulator.enforce_iam(False)
    print(f"--- emulator log (failed requests) ---\n{emulator.log_tail()}")


def role_clients(emulator: Emulator, admin: Client, statements: list[dict[str, Any]]) -> Client:
    """Clients of a role with exactly ``statements``, with enforcement switched on."""
    iam = admin("iam")
    name = f"probe-{len(statements)}-{abs(hash(json.dumps(statements, sort_keys=True))) % 10**8}"
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=name,
        PolicyName="inline",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    credentials = admin("sts").assume_role(RoleArn=arn, RoleSessionName="drill")["Credentials"]
    emulator.enforce_iam(True)

    def client(service: str) -> Any:
        return admin(
            service,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )

    return client


def allow(action: str | list[str], resource: str | list[str]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def denied(call: Callable[[], object]) -> bool:
    """Whether ``call`` is refused as AWS refuses an unauthorized call (the code AWS uses for the service)."""
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"] in {"AccessDenied", "AccessDeniedException"}


def table_arn(name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"


def make_table(admin: Client, name: str) -> None:
    admin("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "g", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


# ------------------------------------------------------------------------------ DynamoDB


def test_dynamodb_calls_are_checked_against_the_table_they_touch(emulator: Emulator, admin: Client) -> None:
    make_table(admin, "mine")
    make_table(admin, "theirs")
    role = role_clients(emulator, admin, [allow(["dynamodb:GetItem", "dynamodb:PutItem"], table_arn("mine"))])
    dynamodb = role("dynamodb")
    dynamodb.put_item(TableName="mine", Item={"pk": {"S": "a"}})
    assert dynamodb.get_item(TableName="mine", Key={"pk": {"S": "a"}})["Item"]["pk"]["S"] == "a"
    assert denied(lambda: dynamodb.put_item(TableName="theirs", Item={"pk": {"S": "a"}}))
    assert denied(lambda: dynamodb.get_item(TableName="theirs", Key={"pk": {"S": "a"}}))
    assert denied(lambda: dynamodb.delete_item(TableName="mine", Key={"pk": {"S": "a"}}))


def test_a_table_with_a_customer_managed_key_needs_decrypt_on_that_key(emulator: Emulator, admin: Client) -> None:
    key = admin("kms").create_key(Description="table key")["KeyMetadata"]["Arn"]
    for name, sse in (("own-key", {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key}), ("aws-key", None)):
        admin("dynamodb").create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            **({"SSESpecification": sse} if sse else {}),
        )
    read = [allow("dynamodb:GetItem", [table_arn("own-key"), table_arn("aws-key")])]
    without_key = role_clients(emulator, admin, read)("dynamodb")
    assert denied(lambda: without_key.get_item(TableName="own-key", Key={"pk": {"S": "a"}}))
    without_key.get_item(TableName="aws-key", Key={"pk": {"S": "a"}})  # DynamoDB's own key: no KMS grant needed

    emulator.enforce_iam(False)
    with_key = role_clients(emulator, admin, [*read, allow("kms:Decrypt", key)])("dynamodb")
    assert "Item" not in with_key.get_item(TableName="own-key", Key={"pk": {"S": "a"}})


def test_an_index_query_needs_the_index_arn(emulator: Emulator, admin: Client) -> None:
    make_table(admin, "mine")
    role = role_clients(emulator, admin, [allow("dynamodb:Query", table_arn("mine") + "/index/by-g")])
    dynamodb = role("dynamodb")
    query = {"KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": {"S": "x"}}}
    assert dynamodb.query(TableName="mine", IndexName="by-g", **query)["Count"] == 0
    assert denied(
        lambda: dynamodb.query(
            TableName="mine",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "x"}},
        )
    )


def test_transact_write_items_needs_each_items_own_action_on_its_table(emulator: Emulator, admin: Client) -> None:
    make_table(admin, "mine")
    make_table(admin, "control")
    admin("dynamodb").put_item(TableName="control", Item={"pk": {"S": "lease"}})
    role = role_clients(
        emulator,
        admin,
        [allow("dynamodb:PutItem", table_arn("mine")), allow("dynamodb:ConditionCheckItem", table_arn("control"))],
    )
    dynamodb = role("dynamodb")
    check = {
        "ConditionCheck": {
            "TableName": "control",
            "Key": {"pk": {"S": "lease"}},
            "ConditionExpression": "attribute_exists(pk)",
        }
    }
    dynamodb.transact_write_items(TransactItems=[check, {"Put": {"TableName": "mine", "Item": {"pk": {"S": "p"}}}}])
    # The same transaction with a put into the control table: PutItem on control is not granted.
    assert denied(
        lambda: dynamodb.transact_write_items(
            TransactItems=[check, {"Put": {"TableName": "control", "Item": {"pk": {"S": "x"}}}}]
        )
    )
    # TransactWriteItems itself is not an action a policy needs (AWS has no such IAM action).
    assert dynamodb_targets(FakeResponse({"TransactItems": [check]}), "TransactWriteItems") == [
        ("dynamodb:ConditionCheckItem", table_arn("control"))
    ]


def test_a_batch_is_checked_on_every_table_in_it(emulator: Emulator, admin: Client) -> None:
    make_table(admin, "mine")
    make_table(admin, "theirs")
    role = role_clients(emulator, admin, [allow("dynamodb:BatchWriteItem", table_arn("mine"))])
    dynamodb = role("dynamodb")
    put = {"PutRequest": {"Item": {"pk": {"S": "a"}}}}
    dynamodb.batch_write_item(RequestItems={"mine": [put]})
    assert denied(lambda: dynamodb.batch_write_item(RequestItems={"mine": [put], "theirs": [put]}))


# ------------------------------------------------------------------------------ SQS, SNS, KMS


def make_key(admin: Client) -> str:
    return admin("kms").create_key(Description="k")["KeyMetadata"]["Arn"]


def test_sending_to_an_encrypted_queue_needs_the_queue_and_its_key(emulator: Emulator, admin: Client) -> None:
    key = make_key(admin)
    sqs = admin("sqs")
    mine = sqs.create_queue(QueueName="mine", Attributes={"KmsMasterKeyId": key})["QueueUrl"]
    theirs = sqs.create_queue(QueueName="theirs")["QueueUrl"]
    mine_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:mine"
    granted = role_clients(
        emulator, admin, [allow("sqs:SendMessage", mine_arn), allow(["kms:GenerateDataKey", "kms:Decrypt"], key)]
    )("sqs")
    granted.send_message(QueueUrl=mine, MessageBody="{}")
    assert denied(lambda: granted.send_message(QueueUrl=theirs, MessageBody="{}"))
    assert denied(lambda: granted.receive_message(QueueUrl=mine))

    emulator.enforce_iam(False)
    keyless = role_clients(emulator, admin, [allow("sqs:SendMessage", mine_arn)])("sqs")
    assert denied(lambda: keyless.send_message(QueueUrl=mine, MessageBody="{}"))


def test_sqs_batch_operations_are_authorized_as_their_single_message_actions(emulator: Emulator, admin: Client) -> None:
    sqs = admin("sqs")
    url = sqs.create_queue(QueueName="work")["QueueUrl"]
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:work"
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "{}"} for i in range(2)])
    consumer = role_clients(emulator, admin, [allow(["sqs:ReceiveMessage", "sqs:DeleteMessage"], arn)])("sqs")
    received = consumer.receive_message(QueueUrl=url, MaxNumberOfMessages=2)["Messages"]
    entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)]
    assert consumer.delete_message_batch(QueueUrl=url, Entries=entries)["Successful"]
    assert denied(lambda: consumer.send_message_batch(QueueUrl=url, Entries=[{"Id": "1", "MessageBody": "{}"}]))


def test_publishing_needs_the_topic_and_the_key_of_an_encrypted_topic(emulator: Emulator, admin: Client) -> None:
    key = make_key(admin)
    sns = admin("sns")
    mine = sns.create_topic(Name="mine", Attributes={"KmsMasterKeyId": key})["TopicArn"]
    theirs = sns.create_topic(Name="theirs")["TopicArn"]
    granted = role_clients(
        emulator, admin, [allow("sns:Publish", mine), allow(["kms:GenerateDataKey", "kms:Decrypt"], key)]
    )("sns")
    granted.publish(TopicArn=mine, Message="m")
    assert denied(lambda: granted.publish(TopicArn=theirs, Message="m"))

    emulator.enforce_iam(False)
    keyless = role_clients(emulator, admin, [allow("sns:Publish", mine)])("sns")
    assert denied(lambda: keyless.publish(TopicArn=mine, Message="m"))


def test_kms_calls_are_checked_against_the_key_also_through_an_alias(emulator: Emulator, admin: Client) -> None:
    key, other = make_key(admin), make_key(admin)
    admin("kms").create_alias(AliasName="alias/mine", TargetKeyId=key)
    kms = role_clients(emulator, admin, [allow(["kms:GenerateDataKey", "kms:Decrypt"], key)])("kms")
    blob = kms.generate_data_key(KeyId="alias/mine", KeySpec="AES_256")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["KeyId"].endswith(key.split("/")[-1])
    assert denied(lambda: kms.generate_data_key(KeyId=other, KeySpec="AES_256"))


# ------------------------------------------------------------------------------ Lambda, CloudWatch


def zipped() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def test_lambda_calls_are_checked_against_the_function_and_the_mapping(emulator: Emulator, admin: Client) -> None:
    role_arn = admin("iam").create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    lam = admin("lambda")
    for name in ("mine", "theirs"):
        lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role_arn,
            Handler="handler.handler",
            Code={"ZipFile": zipped()},
        )
    queue = admin("sqs").create_queue(QueueName="work")["QueueUrl"]
    queue_arn = admin("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    uuid = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName="mine")["UUID"]
    prefix = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}"
    granted = role_clients(
        emulator,
        admin,
        [
            allow("lambda:GetFunctionConfiguration", f"{prefix}:function:mine"),
            allow("lambda:UpdateEventSourceMapping", f"{prefix}:event-source-mapping:{uuid}"),
            allow("lambda:ListEventSourceMappings", "*"),
        ],
    )("lambda")
    assert granted.get_function_configuration(FunctionName="mine")["FunctionName"] == "mine"
    assert denied(lambda: granted.get_function_configuration(FunctionName="theirs"))
    assert granted.list_event_source_mappings(FunctionName="mine")["EventSourceMappings"][0]["UUID"] == uuid
    assert granted.update_event_source_mapping(UUID=uuid, Enabled=False)["UUID"] == uuid
    assert denied(lambda: granted.put_function_concurrency(FunctionName="mine", ReservedConcurrentExecutions=1))
    # Invoke is authorized as lambda:InvokeFunction on the function.
    assert lambda_targets(FakeResponse({}, uri_match={"function_name": "mine"}), "Invoke") == [
        ("lambda:InvokeFunction", f"{prefix}:function:mine")
    ]


def test_cloudwatch_actions_are_cloudwatch_ones_and_alarm_writes_name_the_alarm(
    emulator: Emulator, admin: Client
) -> None:
    alarm = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:mine"
    cloudwatch = role_clients(
        emulator, admin, [allow("cloudwatch:PutMetricData", "*"), allow("cloudwatch:PutMetricAlarm", alarm)]
    )("cloudwatch")
    cloudwatch.put_metric_data(Namespace="Drill", MetricData=[{"MetricName": "m", "Value": 1.0}])
    spec = {
        "Namespace": "Drill",
        "MetricName": "m",
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    cloudwatch.put_metric_alarm(AlarmName="mine", **spec)
    assert denied(lambda: cloudwatch.put_metric_alarm(AlarmName="theirs", **spec))
    assert denied(lambda: cloudwatch.describe_alarms())


def test_without_enforcement_nothing_is_checked(admin: Client) -> None:
    make_table(admin, "mine")
    admin("dynamodb").put_item(TableName="mine", Item={"pk": {"S": "a"}})
    assert admin("dynamodb").get_item(TableName="mine", Key={"pk": {"S": "a"}})["Item"]


class FakeResponse:
    """The parts of a moto response object the resolvers read."""

    region = REGION
    current_account = ACCOUNT_ID

    def __init__(self, params: dict[str, Any], uri_match: dict[str, str] | None = None) -> None:
        self.params = params
        self.uri_match = uri_match or {}

    def _get_param(self, name: str) -> Any:
        return self.params.get(name)


def test_every_decision_is_written_to_the_decisions_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decisions = tmp_path / "decisions.jsonl"
    monkeypatch.setenv(DECISIONS_ENV, str(decisions))
    with Emulator(tmp_path / "emulator.log") as own:
        own.reset()
        admin = clients_of(own.endpoint)
        make_table(admin, "mine")
        make_table(admin, "theirs")
        dynamodb = role_clients(own, admin, [allow("dynamodb:GetItem", table_arn("mine"))])("dynamodb")
        dynamodb.get_item(TableName="mine", Key={"pk": {"S": "a"}})
        assert denied(lambda: dynamodb.get_item(TableName="theirs", Key={"pk": {"S": "a"}}))
    lines = [json.loads(line) for line in decisions.read_text().splitlines()]
    assert [(d["action"], d["resource"].rsplit("/", 1)[-1], d["allowed"]) for d in lines] == [
        ("dynamodb:GetItem", "mine", True),
        ("dynamodb:GetItem", "theirs", False),
    ]
    assert all(":assumed-role/probe-" in d["principal"] for d in lines)


def test_an_iam_users_allowed_calls_are_not_kept_its_refusals_are(monkeypatch: pytest.MonkeyPatch) -> None:
    from tools import emulator_iam

    monkeypatch.delenv(DECISIONS_ENV, raising=False)
    monkeypatch.setattr(emulator_iam, "DECISIONS", [])
    user, role = "arn:aws:iam::123456789012:user/drill-harness-dev", "arn:aws:sts::1:assumed-role/r/s"
    emulator_iam.record(user, "sqs:PurgeQueue", "q", allowed=True)
    emulator_iam.record(user, "sqs:PurgeQueue", "q", allowed=False)
    emulator_iam.record(role, "sqs:SendMessage", "q", allowed=True)
    assert [(d["principal"], d["allowed"]) for d in emulator_iam.DECISIONS] == [(user, False), (role, True)]
