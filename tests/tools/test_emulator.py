"""The local AWS emulator: launcher (start, reset, stop) and each extension of moto, over HTTP like terraform."""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tools.emulator import (
    ACCOUNT_ID,
    CLOCK_PATH,
    REPLICA_NOT_FOUND,
    Emulator,
    EmulatorError,
    client_env,
    log_excerpt,
)

PRIMARY, SECONDARY = "us-east-1", "us-east-2"
Client = Callable[[str, str], Any]


@pytest.fixture
def aws(emulator: Emulator) -> Iterator[Client]:
    """boto3 clients of the emulator; every test starts from an empty emulator.

    The emulator's log is printed at teardown: pytest shows it with a failing test only.
    """
    emulator.reset()

    def client(service: str, region: str = PRIMARY) -> Any:
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=emulator.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    yield client
    print(f"--- emulator log (failed requests) ---\n{emulator.log_tail()}")


# ------------------------------------------------------------------------------ launcher


def test_emulator_answers_on_a_free_local_port_and_stops_by_pid(tmp_path: Path) -> None:
    server = Emulator(tmp_path / "e.log").start()
    pid, endpoint = server.pid, server.endpoint
    assert endpoint.startswith("http://127.0.0.1:")
    assert pid is not None
    os.kill(pid, 0)  # running
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "with extensions on " + endpoint in (tmp_path / "e.log").read_text()


def test_a_port_in_use_fails_the_start_with_the_servers_log(emulator: Emulator, tmp_path: Path) -> None:
    assert emulator.port is not None
    with pytest.raises(EmulatorError, match="Address already in use"):
        Emulator(tmp_path / "e.log", port=emulator.port).start()


def test_reset_forgets_every_resource(emulator: Emulator, aws: Client) -> None:
    aws("sqs").create_queue(QueueName="before-reset")
    emulator.reset()
    assert "QueueUrls" not in aws("sqs").list_queues()


def test_client_env_points_at_the_emulator_and_drops_real_credentials() -> None:
    env = client_env(
        "http://127.0.0.1:1234",
        SECONDARY,
        {"AWS_PROFILE": "prod", "AWS_SESSION_TOKEN": "t", "AWS_ENDPOINT_URL_S3": "https://x", "PATH": "/bin"},
    )
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1234"
    assert env["AWS_REGION"] == SECONDARY
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert {"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"}.isdisjoint(env)
    assert env["PATH"] == "/bin"


def test_log_excerpt_leaves_out_successful_requests(tmp_path: Path) -> None:
    log = tmp_path / "e.log"
    log.write_text(
        '127.0.0.1 - - [x] "POST / HTTP/1.1" 200 -\n'
        '127.0.0.1 - - [x] "POST / HTTP/1.1" 500 -\n'
        "Traceback (most recent call last):\n"
    )
    assert log_excerpt(log) == '127.0.0.1 - - [x] "POST / HTTP/1.1" 500 -\nTraceback (most recent call last):'


# ---------------------------------------------------------------------- DynamoDB replicas


def _global_table(aws: Client, key_arn: str) -> None:
    aws("dynamodb").create_table(
        TableName="payments",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "merchant", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-merchant",
                "KeySchema": [{"AttributeName": "merchant", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn},
    )


def _replica_update(aws: Client, action: str, **fields: str) -> None:
    aws("dynamodb").update_table(TableName="payments", ReplicaUpdates=[{action: {"RegionName": SECONDARY, **fields}}])


def test_a_replica_becomes_active_as_a_table_in_its_region(aws: Client) -> None:
    replica_key = f"arn:aws:kms:{SECONDARY}:{ACCOUNT_ID}:key/mrk-replica"
    _global_table(aws, f"arn:aws:kms:{PRIMARY}:{ACCOUNT_ID}:key/mrk-primary")
    _replica_update(aws, "Create", KMSMasterKeyId=replica_key)

    main = aws("dynamodb").describe_table(TableName="payments")["Table"]
    assert main["Replicas"] == [{"RegionName": SECONDARY, "ReplicaStatus": "ACTIVE", "KMSMasterKeyId": replica_key}]
    replica = aws("dynamodb", SECONDARY).describe_table(TableName="payments")["Table"]
    assert replica["TableArn"] == f"arn:aws:dynamodb:{SECONDARY}:{ACCOUNT_ID}:table/payments"
    assert replica["KeySchema"] == main["KeySchema"]
    assert [i["IndexName"] for i in replica["GlobalSecondaryIndexes"]] == ["by-merchant"]
    assert replica["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert replica["LatestStreamArn"].startswith(replica["TableArn"] + "/stream/")
    assert replica["SSEDescription"]["KMSMasterKeyArn"] == replica_key
    assert [r["RegionName"] for r in replica["Replicas"]] == [PRIMARY]


def test_deleting_a_replica_removes_its_table(aws: Client) -> None:
    _global_table(aws, f"arn:aws:kms:{PRIMARY}:{ACCOUNT_ID}:key/k")
    _replica_update(aws, "Create")
    _replica_update(aws, "Delete")

    assert "Replicas" not in aws("dynamodb").describe_table(TableName="payments")["Table"]
    assert aws("dynamodb", SECONDARY).list_tables()["TableNames"] == []


def test_a_missing_replica_answers_as_dynamodb_does(aws: Client) -> None:
    _global_table(aws, f"arn:aws:kms:{PRIMARY}:{ACCOUNT_ID}:key/k")
    with pytest.raises(ClientError) as error:
        _replica_update(aws, "Delete")
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert error.value.response["Error"]["Message"] == REPLICA_NOT_FOUND


def test_a_second_replica_in_the_same_region_is_refused(aws: Client) -> None:
    _global_table(aws, f"arn:aws:kms:{PRIMARY}:{ACCOUNT_ID}:key/k")
    _replica_update(aws, "Create")
    with pytest.raises(ClientError, match="already exist"):
        _replica_update(aws, "Create")


# --------------------------------------------------------------------- composite alarms


def test_a_cancelled_transaction_leaves_every_item_as_it_was(aws: Client) -> None:
    """Transactions back up the items they name (not whole tables): a cancelled one still changes nothing."""
    dynamodb = aws("dynamodb")
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "kept"}, "v": {"S": "1"}})
    with pytest.raises(ClientError, match="TransactionCanceled"):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "new"}}}},
                {
                    "Update": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "kept"}},
                        "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"S": "2"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "absent"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    items = {i["pk"]["S"]: i.get("v", {}).get("S") for i in dynamodb.scan(TableName="t")["Items"]}
    assert items == {"kept": "1"}
    dynamodb.transact_write_items(TransactItems=[{"Put": {"TableName": "t", "Item": {"pk": {"S": "new"}}}}])
    assert len(dynamodb.scan(TableName="t")["Items"]) == 2


def test_composite_alarms_are_stored_described_tagged_and_deleted(aws: Client) -> None:
    cloudwatch = aws("cloudwatch")
    cloudwatch.put_composite_alarm(
        AlarmName="region-down",
        AlarmRule='ALARM("api-5xx") OR ALARM("health")',
        AlarmDescription="the region cannot take payments",
        AlarmActions=["arn:aws:sns:us-east-1:123456789012:alerts"],
        OKActions=["arn:aws:sns:us-east-1:123456789012:alerts"],
        Tags=[{"Key": "Environment", "Value": "dev"}],
    )

    (alarm,) = cloudwatch.describe_alarms(AlarmNames=["region-down"], AlarmTypes=["CompositeAlarm"])["CompositeAlarms"]
    assert alarm["AlarmRule"] == 'ALARM("api-5xx") OR ALARM("health")'
    assert alarm["AlarmDescription"] == "the region cannot take payments"
    assert alarm["OKActions"] == ["arn:aws:sns:us-east-1:123456789012:alerts"]
    assert alarm["ActionsEnabled"] is True
    tags = cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]
    assert tags == [{"Key": "Environment", "Value": "dev"}]
    cloudwatch.delete_alarms(AlarmNames=["region-down"])
    assert cloudwatch.describe_alarms(AlarmTypes=["CompositeAlarm"])["CompositeAlarms"] == []


# ---------------------------------------------------------------------------- SQS


def test_redrive_allow_policy_is_returned_compact_and_removed_by_an_empty_value(aws: Client) -> None:
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName="dlq", Attributes={"RedriveAllowPolicy": '{"redrivePermission": "denyAll"}'})[
        "QueueUrl"
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["RedriveAllowPolicy"] == '{"redrivePermission":"denyAll"}'
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedriveAllowPolicy": ""})
    assert "RedriveAllowPolicy" not in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_setting_one_attribute_keeps_the_queue_policy(aws: Client) -> None:
    sqs = aws("sqs")
    policy = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "sqs:*"}]}
    )
    url = sqs.create_queue(QueueName="q", Attributes={"Policy": policy})["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "60"})
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["Policy"]) == json.loads(policy)
    assert attributes["VisibilityTimeout"] == "60"


def test_redrive_policy_is_returned_as_compact_json(aws: Client) -> None:
    sqs = aws("sqs")
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName="q", Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})}
    )["QueueUrl"]
    redrive = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
    assert redrive == f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":5}}'


# ---------------------------------------------------------------------------- KMS


def test_reading_a_replica_key_leaves_the_primary_a_primary(aws: Client) -> None:
    primary = aws("kms").create_key(MultiRegion=True, Description="payments")["KeyMetadata"]["KeyId"]
    aws("kms").replicate_key(
        KeyId=primary,
        ReplicaRegion=SECONDARY,
        Description="payments replica",
        Tags=[{"TagKey": "Region", "TagValue": SECONDARY}],
    )
    replica = aws("kms", SECONDARY).describe_key(KeyId=primary)["KeyMetadata"]
    after = aws("kms").describe_key(KeyId=primary)["KeyMetadata"]

    assert replica["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    assert after["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"
    assert replica["Description"] == "payments replica"
    assert after["Description"] == "payments"
    assert aws("kms", SECONDARY).list_resource_tags(KeyId=primary)["Tags"] == [
        {"TagKey": "Region", "TagValue": SECONDARY}
    ]


def test_deleting_a_replica_key_leaves_the_primary_enabled(aws: Client) -> None:
    primary = aws("kms").create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    aws("kms").replicate_key(KeyId=primary, ReplicaRegion=SECONDARY)
    aws("kms", SECONDARY).schedule_key_deletion(KeyId=primary, PendingWindowInDays=7)

    assert aws("kms", SECONDARY).describe_key(KeyId=primary)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    primary_metadata = aws("kms").describe_key(KeyId=primary)["KeyMetadata"]
    assert primary_metadata["KeyState"] == "Enabled"
    assert primary_metadata["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"


# ----------------------------------------------------------------------------- S3


def _bucket_with_policy(aws: Client, statement: dict[str, Any]) -> Any:
    s3 = aws("s3")
    s3.create_bucket(Bucket="state")
    s3.put_bucket_policy(Bucket="state", Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    return s3


def test_a_tls_only_bucket_policy_lets_requests_through(aws: Client) -> None:
    s3 = _bucket_with_policy(
        aws,
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::state", "arn:aws:s3:::state/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    )
    s3.put_object(Bucket="state", Key="k", Body=b"v")
    assert s3.get_object(Bucket="state", Key="k")["Body"].read() == b"v"


def test_a_bucket_policy_deny_without_condition_still_denies(aws: Client) -> None:
    s3 = _bucket_with_policy(
        aws, {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::state/*"}
    )
    with pytest.raises(ClientError, match="403"):
        s3.put_object(Bucket="state", Key="k", Body=b"v")


# --------------------------------------------------------------------------- Lambda


def _function(aws: Client, **extra: Any) -> Any:
    role = aws("iam").create_role(
        RoleName="fn",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    lam = aws("lambda")
    lam.create_function(
        FunctionName="fn",
        Runtime="python3.11",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": code.getvalue()},
        **extra,
    )
    return lam


def test_lambda_keeps_and_updates_its_dead_letter_config(aws: Client) -> None:
    first, second = (f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:{name}" for name in ("dlq-1", "dlq-2"))
    lam = _function(aws, DeadLetterConfig={"TargetArn": first})
    assert lam.get_function_configuration(FunctionName="fn")["DeadLetterConfig"] == {"TargetArn": first}
    lam.update_function_configuration(FunctionName="fn", DeadLetterConfig={"TargetArn": second})
    assert lam.get_function(FunctionName="fn")["Configuration"]["DeadLetterConfig"] == {"TargetArn": second}


def test_what_a_multi_region_key_encrypts_decrypts(aws: Client) -> None:
    kms = aws("kms")
    multi = kms.create_key(MultiRegion=True)["KeyMetadata"]["Arn"]
    single = kms.create_key()["KeyMetadata"]["Arn"]
    for key in (multi, single):
        blob = kms.encrypt(KeyId=key, Plaintext=b"environment")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"environment"
        assert kms.decrypt(CiphertextBlob=blob, KeyId=key)["KeyId"] == key
    blob = kms.encrypt(KeyId=multi, Plaintext=b"x")["CiphertextBlob"]
    with pytest.raises(ClientError, match="AccessDenied"):
        kms.decrypt(CiphertextBlob=blob, KeyId=single)


def test_a_queue_with_an_enabled_event_source_mapping_keeps_its_messages(aws: Client) -> None:
    lam = _function(aws)
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName="work")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="fn", BatchSize=1, Enabled=True)
    sqs.send_message(QueueUrl=url, MessageBody="payment")
    # moto would have received it for the mapping (and failed to run the function); the drill polls instead.
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url).get("Messages", [])] == ["payment"]
    assert lam.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Enabled"


def test_event_source_mappings_are_listed_by_function_name_or_arn(aws: Client) -> None:
    lam = _function(aws)
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName="work")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    function_arn = lam.get_function_configuration(FunctionName="fn")["FunctionArn"]
    created = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function_arn)["UUID"]
    for name in ("fn", function_arn):
        assert [m["UUID"] for m in lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]] == [
            created
        ]
    assert lam.list_event_source_mappings(FunctionName="other")["EventSourceMappings"] == []


# --------------------------------------------------------------------------- controls


def test_the_clock_control_moves_sqs_visibility_with_the_drills_clock(emulator: Emulator, aws: Client) -> None:
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName="clocked", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    start = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    try:
        emulator.set_clock(start)
        sqs.send_message(QueueUrl=url, MessageBody="m")
        assert len(sqs.receive_message(QueueUrl=url).get("Messages", [])) == 1
        emulator.set_clock(start + 59)
        assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
        emulator.set_clock(start + 61)
        again = sqs.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"])["Messages"]
        assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"
        sqs.delete_message(QueueUrl=url, ReceiptHandle=again[0]["ReceiptHandle"])
    finally:
        emulator.set_clock(None)
    sent = sqs.send_message(QueueUrl=url, MessageBody="now")["MessageId"]
    assert sent  # the wall clock again: a message sent now is visible now
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
    assert "now" in bodies


def test_the_clock_control_never_goes_back(emulator: Emulator, aws: Client) -> None:
    """A second drill run starts its clock again: the emulator shifts it past the first run's timestamps."""
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName="runs", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    start = 1_767_225_600.0
    try:
        emulator.set_clock(start + 500)
        sqs.send_message(QueueUrl=url, MessageBody="first run")
        assert len(sqs.receive_message(QueueUrl=url).get("Messages", [])) == 1
        sqs.purge_queue(QueueUrl=url)
        sqs.send_message(QueueUrl=url, MessageBody="in flight")
        assert len(sqs.receive_message(QueueUrl=url).get("Messages", [])) == 1
        emulator.set_clock(start)  # the next run: an hour past the last moment, not 500 s before it
        sqs.purge_queue(QueueUrl=url)  # within one minute of the last purge, it would be refused
        sqs.send_message(QueueUrl=url, MessageBody="second run")
        emulator.set_clock(start + 61)  # differences stay exact after the shift
        bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
        assert bodies == ["second run"]
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    finally:
        emulator.set_clock(None)


def test_the_clock_control_refuses_what_is_not_a_time(emulator: Emulator) -> None:
    with pytest.raises(EmulatorError, match="answered 400"):
        _post_clock(emulator.endpoint, b"tomorrow")


def _post_clock(endpoint: str, body: bytes) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{endpoint}{CLOCK_PATH}", data=body, method="POST")
    try:
        urllib.request.urlopen(request, timeout=5).close()
    except urllib.error.HTTPError as error:
        raise EmulatorError(f"{CLOCK_PATH} answered {error.code}") from error


# ------------------------------------------------------------------------- Route 53


def test_a_cloudwatch_metric_health_check_keeps_its_alarm_and_no_endpoint_settings(aws: Client) -> None:
    route53 = aws("route53")
    created = route53.create_health_check(
        CallerReference="alarm-check",
        HealthCheckConfig={
            "Type": "CLOUDWATCH_METRIC",
            "AlarmIdentifier": {"Region": PRIMARY, "Name": "api-5xx"},
            "InsufficientDataHealthStatus": "LastKnownStatus",
        },
    )["HealthCheck"]
    config = route53.get_health_check(HealthCheckId=created["Id"])["HealthCheck"]["HealthCheckConfig"]
    assert config["AlarmIdentifier"] == {"Region": PRIMARY, "Name": "api-5xx"}
    assert config["InsufficientDataHealthStatus"] == "LastKnownStatus"
    assert {"RequestInterval", "FailureThreshold", "Port", "IPAddress", "MeasureLatency"}.isdisjoint(config)

    route53.update_health_check(HealthCheckId=created["Id"], InsufficientDataHealthStatus="Unhealthy")
    config = route53.get_health_check(HealthCheckId=created["Id"])["HealthCheck"]["HealthCheckConfig"]
    assert config["InsufficientDataHealthStatus"] == "Unhealthy"


def test_an_https_health_check_keeps_its_endpoint_settings(aws: Client) -> None:
    route53 = aws("route53")
    created = route53.create_health_check(
        CallerReference="https-check",
        HealthCheckConfig={
            "Type": "HTTPS",
            "FullyQualifiedDomainName": "api.example.com",
            "ResourcePath": "/health",
            "RequestInterval": 10,
            "FailureThreshold": 3,
        },
    )["HealthCheck"]
    config = route53.get_health_check(HealthCheckId=created["Id"])["HealthCheck"]["HealthCheckConfig"]
    assert (config["RequestInterval"], config["FailureThreshold"]) == (10, 3)
    assert "AlarmIdentifier" not in config


# ------------------------------------------------------------------------------ EC2


def test_security_group_rules_to_a_prefix_list_or_a_group_keep_their_description(aws: Client) -> None:
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
    lambdas = ec2.create_security_group(GroupName="lambdas", Description="lambdas", VpcId=vpc)["GroupId"]
    endpoints = ec2.create_security_group(GroupName="endpoints", Description="endpoints", VpcId=vpc)["GroupId"]
    prefix_list = ec2.describe_prefix_lists()["PrefixLists"][0]["PrefixListId"]
    https = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443}
    egress = ec2.authorize_security_group_egress(
        GroupId=lambdas,
        IpPermissions=[{**https, "PrefixListIds": [{"PrefixListId": prefix_list, "Description": "to DynamoDB"}]}],
    )["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    ingress = ec2.authorize_security_group_ingress(
        GroupId=endpoints,
        IpPermissions=[{**https, "UserIdGroupPairs": [{"GroupId": lambdas, "Description": "from the Lambdas"}]}],
    )["SecurityGroupRules"][0]["SecurityGroupRuleId"]

    rules = ec2.describe_security_group_rules(SecurityGroupRuleIds=[egress, ingress])["SecurityGroupRules"]
    assert {rule["SecurityGroupRuleId"]: rule.get("Description") for rule in rules} == {
        egress: "to DynamoDB",
        ingress: "from the Lambdas",
    }
