"""tools/preflight.py: each check against stubbed AWS answers (botocore Stubber), one line per failure."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from layers.base import BackendSettings
from layers.compute import FUNCTIONS
from layers.config import load_config
from tools import preflight

CONFIG = load_config(environ={})
BACKEND = BackendSettings.load()
ZONE = CONFIG.zone_name
SERVERS = ["ns-1.awsdns-01.org", "ns-2.awsdns-02.com"]


class Stubs:
    """One stubbed client per (service, region); every stubbed answer must be used."""

    def __init__(self) -> None:
        self.clients: dict[tuple[str, str], Any] = {}
        self.stubbers: dict[tuple[str, str], Stubber] = {}

    def __call__(self, service: str, region: str) -> Any:
        return self.client(service, region)

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self.clients:
            self.clients[key] = boto3.client(
                service, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing"
            )
            self.stubbers[key] = Stubber(self.clients[key])
            self.stubbers[key].activate()
        return self.clients[key]

    def add(self, service: str, region: str, method: str, response: dict[str, Any], params: Any = None) -> None:
        self.client(service, region)
        self.stubbers[(service, region)].add_response(method, response, params)

    def error(self, service: str, region: str, method: str, code: str, status: int = 400) -> None:
        self.client(service, region)
        self.stubbers[(service, region)].add_client_error(method, code, http_status_code=status)

    def assert_used(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


@pytest.fixture
def aws() -> Iterator[Stubs]:
    stubs = Stubs()
    yield stubs
    stubs.assert_used()


def concurrency(stubs: Stubs, region: str, unreserved: int, ours: int | None = None) -> None:
    stubs.add(
        "lambda", region, "get_account_settings", {"AccountLimit": {"UnreservedConcurrentExecutions": unreserved}}
    )
    for _ in FUNCTIONS:
        if ours is None:
            stubs.error("lambda", region, "get_function_concurrency", "ResourceNotFoundException", 404)
        else:
            stubs.add("lambda", region, "get_function_concurrency", {"ReservedConcurrentExecutions": ours})


def test_concurrency_that_leaves_the_unreserved_minimum_passes(aws: Stubs) -> None:
    needed = CONFIG.lambda_reserved_concurrency * len(FUNCTIONS)
    for region in CONFIG.regions:
        concurrency(aws, region, unreserved=needed + 100)
    assert preflight.check_concurrency(CONFIG, aws) == []


def test_concurrency_one_short_of_the_minimum_fails_with_the_quota_to_raise(aws: Stubs) -> None:
    needed = CONFIG.lambda_reserved_concurrency * len(FUNCTIONS)
    primary, secondary = CONFIG.regions
    concurrency(aws, primary, unreserved=needed + 100)
    concurrency(aws, secondary, unreserved=needed + 99)
    [failure] = preflight.check_concurrency(CONFIG, aws)
    assert failure.check == "lambda-concurrency"
    assert failure.problem.startswith(f"{secondary}:")
    assert "leaves 99 unreserved" in failure.problem
    assert "L-B99A9384" in failure.fix
    assert "\n" not in failure.line()


def test_concurrency_our_functions_already_reserve_counts_as_available(aws: Stubs) -> None:
    """A second run after a deploy: our own reservations are not someone else's."""
    reserved = CONFIG.lambda_reserved_concurrency
    for region in CONFIG.regions:
        concurrency(aws, region, unreserved=100, ours=reserved)
    assert preflight.check_concurrency(CONFIG, aws) == []


def test_a_free_or_own_state_bucket_passes_and_a_foreign_one_fails(aws: Stubs) -> None:
    aws.add("s3", BACKEND.region, "head_bucket", {}, {"Bucket": BACKEND.bucket_name(CONFIG.environment_suffix)})
    aws.error("s3", BACKEND.region, "head_bucket", "404", 404)
    assert preflight.check_state_buckets(CONFIG, BACKEND, aws) == []

    aws.error("s3", BACKEND.region, "head_bucket", "403", 403)
    aws.error("s3", BACKEND.region, "head_bucket", "404", 404)
    [failure] = preflight.check_state_buckets(CONFIG, BACKEND, aws)
    assert BACKEND.bucket_name(CONFIG.environment_suffix) in failure.problem
    assert "backend.tf.json" in failure.fix


def hosted_zone(name: str, zone_id: str) -> dict[str, Any]:
    return {
        "HostedZones": [{"Id": zone_id, "Name": f"{name}.", "CallerReference": "x", "Config": {"PrivateZone": False}}],
        "IsTruncated": False,
        "MaxItems": "1",
    }


def zones(aws: Stubs, delegated_to: list[str] | None) -> None:
    aws.add("route53", "us-east-1", "list_hosted_zones_by_name", hosted_zone(ZONE, "/hostedzone/ZCHILD"))
    aws.add(
        "route53",
        "us-east-1",
        "get_hosted_zone",
        {
            "HostedZone": {"Id": "/hostedzone/ZCHILD", "Name": f"{ZONE}.", "CallerReference": "x"},
            "DelegationSet": {"NameServers": SERVERS},
        },
    )
    aws.add("route53", "us-east-1", "list_hosted_zones_by_name", hosted_zone(CONFIG.domain_name, "/hostedzone/ZPARENT"))
    records = [{"Name": f"{CONFIG.domain_name}.", "Type": "SOA", "TTL": 900, "ResourceRecords": [{"Value": "x"}]}]
    if delegated_to is not None:
        records = [
            {
                "Name": f"{ZONE}.",
                "Type": "NS",
                "TTL": 300,
                "ResourceRecords": [{"Value": f"{s}."} for s in delegated_to],
            }
        ]
    aws.add(
        "route53",
        "us-east-1",
        "list_resource_record_sets",
        {"ResourceRecordSets": records, "IsTruncated": False, "MaxItems": "1"},
    )


def test_a_delegated_zone_passes(aws: Stubs) -> None:
    zones(aws, delegated_to=list(reversed(SERVERS)))
    assert preflight.check_delegation(CONFIG, aws) == []


def test_a_missing_delegation_names_the_ns_record_to_add(aws: Stubs) -> None:
    zones(aws, delegated_to=None)
    [failure] = preflight.check_delegation(CONFIG, aws)
    assert failure.problem == f"{CONFIG.domain_name} does not delegate {ZONE}"
    assert all(server in failure.fix for server in SERVERS)


def test_a_delegation_to_other_name_servers_fails(aws: Stubs) -> None:
    zones(aws, delegated_to=["ns-9.awsdns-09.net"])
    [failure] = preflight.check_delegation(CONFIG, aws)
    assert "not to its zone" in failure.problem


def test_no_zone_yet_is_not_a_failure(aws: Stubs) -> None:
    aws.add(
        "route53", "us-east-1", "list_hosted_zones_by_name", {"HostedZones": [], "IsTruncated": False, "MaxItems": "1"}
    )
    assert preflight.check_delegation(CONFIG, aws) == []


def test_zone_ids_that_do_not_exist_are_named(aws: Stubs) -> None:
    primary, secondary = CONFIG.regions
    for region in CONFIG.regions:
        wanted = list(CONFIG.availability_zone_ids[region])
        present = wanted if region == primary else wanted[:1]
        aws.add(
            "ec2",
            region,
            "describe_availability_zones",
            {"AvailabilityZones": [{"ZoneId": zone, "State": "available"} for zone in present]},
            {"Filters": [{"Name": "zone-id", "Values": wanted}], "AllAvailabilityZones": True},
        )
    [failure] = preflight.check_zone_ids(CONFIG, aws)
    assert failure.problem.startswith(f"{secondary}: zone IDs {CONFIG.availability_zone_ids[secondary][1]}")


def test_api_gateway_without_a_logging_role_fails_unless_this_deployment_owns_it(aws: Stubs) -> None:
    primary, secondary = CONFIG.regions
    aws.add("apigateway", primary, "get_account", {"cloudwatchRoleArn": "arn:aws:iam::123456789012:role/x"})
    aws.add("apigateway", secondary, "get_account", {})
    [failure] = preflight.check_api_gateway_account(CONFIG, aws)
    assert failure.problem.startswith(secondary)
    assert "manageApiGatewayAccount=true" in failure.fix
    owner = load_config(environ={"MANAGE_API_GATEWAY_ACCOUNT": "true"})
    assert preflight.check_api_gateway_account(owner, aws) == []


def test_each_failure_is_one_line_with_the_fix() -> None:
    line = preflight.Failure("zone-ids", "us-east-2: zone IDs use2-az9 do not exist", "pick others").line()
    assert line == "FAIL zone-ids: us-east-2: zone IDs use2-az9 do not exist; fix: pick others"
