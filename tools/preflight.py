"""``make preflight``: what a first apply in a real account needs, checked with the operator's credentials.

Read-only calls only. Each failed check prints one line: what is wrong and the fix. Exit code 1
when any check fails, 0 otherwise.

- Lambda concurrency: in each region the account's unreserved concurrency (plus what this
  deployment's functions already reserve) must cover every function's reserved concurrency and
  leave Lambda's unreserved minimum of 100.
- State buckets: ``<bucket>-<suffix>`` and its replica are free (404) or already ours (200), not
  someone else's (403).
- Delegation: the parent zone ``<domainName>`` delegates ``<suffix>.<domainName>`` to the
  deployment's zone (once ``edge-global`` created it), else ACM validation hangs for 45 minutes.
- Availability zone IDs: every configured zone ID exists in its region for this account.
- API Gateway logging: the account setting has a CloudWatch role, unless this deployment owns it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from layers.base import BackendSettings
from layers.compute import FUNCTIONS
from layers.config import Config, load_config

#: Lambda refuses a reservation that leaves less unreserved concurrency than this in a region.
UNRESERVED_MINIMUM = 100
#: The Service Quotas code of "Concurrent executions" (Lambda).
CONCURRENCY_QUOTA_CODE = "L-B99A9384"

#: ``client(service, region)`` -> a boto3 client; injected so tests pass stubbed clients.
ClientFactory = Callable[[str, str], Any]


@dataclass(frozen=True)
class Failure:
    """One failed check: what is wrong and how to fix it, printed on one line."""

    check: str
    problem: str
    fix: str

    def line(self) -> str:
        """``FAIL <check>: <problem>; fix: <fix>``."""
        return f"FAIL {self.check}: {self.problem}; fix: {self.fix}"


def function_names(config: Config) -> list[str]:
    """Names of the deployment's functions (the same in both regions)."""
    return [f"{spec.base_name}-{config.environment_suffix}" for spec in FUNCTIONS]


def check_concurrency(config: Config, client: ClientFactory) -> list[Failure]:
    """Each region can reserve every function's concurrency and keep 100 unreserved."""
    failures = []
    needed = config.lambda_reserved_concurrency * len(FUNCTIONS)
    for region in config.regions:
        lambda_ = client("lambda", region)
        unreserved = lambda_.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
        ours = 0
        for name in function_names(config):
            try:
                ours += lambda_.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions") or 0
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
        left = unreserved + ours - needed
        affordable = max(0, (unreserved + ours - UNRESERVED_MINIMUM) // len(FUNCTIONS))
        if left < UNRESERVED_MINIMUM:
            failures.append(
                Failure(
                    "lambda-concurrency",
                    f"{region}: {len(FUNCTIONS)} functions x {config.lambda_reserved_concurrency} reserved leaves "
                    f"{left} unreserved, Lambda needs {UNRESERVED_MINIMUM}",
                    f"request more 'Concurrent executions' ({CONCURRENCY_QUOTA_CODE}) in {region} through Service "
                    f"Quotas, or lower lambdaReservedConcurrency to {affordable}",
                )
            )
    return failures


def check_state_buckets(config: Config, backend: BackendSettings, client: ClientFactory) -> list[Failure]:
    """The state bucket and its replica are free or ours."""
    failures = []
    s3 = client("s3", backend.region)
    for name in (
        backend.bucket_name(config.environment_suffix),
        backend.replica_bucket_name(config.environment_suffix),
    ):
        try:
            s3.head_bucket(Bucket=name)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in {"404", "NoSuchBucket", "NotFound"}:
                continue
            if code in {"403", "AccessDenied", "Forbidden"}:
                failures.append(
                    Failure(
                        "state-bucket",
                        f"bucket {name} exists and belongs to another account (or denies you)",
                        "set another 'bucket' base name in backend.tf.json, unique to your organisation",
                    )
                )
                continue
            raise
    return failures


def _zone(route53: Any, name: str) -> dict[str, Any] | None:
    """The public hosted zone called ``name`` in this account, or None."""
    listed = route53.list_hosted_zones_by_name(DNSName=name, MaxItems="1")["HostedZones"]
    zone = listed[0] if listed else None
    if zone is None or zone["Name"].rstrip(".") != name or zone.get("Config", {}).get("PrivateZone"):
        return None
    return zone


def check_delegation(config: Config, client: ClientFactory) -> list[Failure]:
    """``<domainName>`` delegates ``<suffix>.<domainName>`` to this deployment's zone's name servers."""
    route53 = client("route53", "us-east-1")
    zone = _zone(route53, config.zone_name)
    if zone is None:
        # Not created yet: edge-global creates it; the delegation can only be checked afterwards.
        return []
    servers = sorted(route53.get_hosted_zone(Id=zone["Id"])["DelegationSet"]["NameServers"])
    parent = _zone(route53, config.domain_name)
    fix = f"add an NS record {config.zone_name} -> {', '.join(servers)} in the {config.domain_name} zone"
    if parent is None:
        return [
            Failure(
                "delegation",
                f"the parent zone {config.domain_name} is not in this account, its delegation cannot be read",
                fix + f" (wherever {config.domain_name} is hosted), then check `dig NS {config.zone_name}`",
            )
        ]
    records = route53.list_resource_record_sets(
        HostedZoneId=parent["Id"], StartRecordName=config.zone_name, StartRecordType="NS", MaxItems="1"
    )["ResourceRecordSets"]
    delegated = [
        sorted(value["Value"].rstrip(".") for value in record.get("ResourceRecords", []))
        for record in records
        if record["Name"].rstrip(".") == config.zone_name and record["Type"] == "NS"
    ]
    if not delegated:
        return [Failure("delegation", f"{config.domain_name} does not delegate {config.zone_name}", fix)]
    if delegated[0] != [server.rstrip(".") for server in servers]:
        return [
            Failure(
                "delegation",
                f"{config.domain_name} delegates {config.zone_name} to {', '.join(delegated[0])}, not to its zone",
                fix.replace("add", "replace it with", 1),
            )
        ]
    return []


def check_zone_ids(config: Config, client: ClientFactory) -> list[Failure]:
    """Every configured availability zone ID exists (and is available) in its region."""
    failures = []
    for region in config.regions:
        wanted = list(config.availability_zone_ids[region])
        zones = client("ec2", region).describe_availability_zones(
            Filters=[{"Name": "zone-id", "Values": wanted}], AllAvailabilityZones=True
        )["AvailabilityZones"]
        usable = {zone["ZoneId"] for zone in zones if zone.get("State") == "available"}
        missing = [zone for zone in wanted if zone not in usable]
        if missing:
            failures.append(
                Failure(
                    "zone-ids",
                    f"{region}: zone IDs {', '.join(missing)} do not exist or are not available in this account",
                    f"pick IDs from `aws ec2 describe-availability-zones --region {region}` for availabilityZoneIds",
                )
            )
    return failures


def check_api_gateway_account(config: Config, client: ClientFactory) -> list[Failure]:
    """API Gateway has a CloudWatch role in each region (stages with execution logging need one)."""
    if config.manage_api_gateway_account:
        return []
    failures = []
    for region in config.regions:
        if not client("apigateway", region).get_account().get("cloudwatchRoleArn"):
            failures.append(
                Failure(
                    "api-gateway-account",
                    f"{region}: API Gateway has no CloudWatch Logs role, the stages cannot log",
                    "deploy one deployment of this account with manageApiGatewayAccount=true (README, edge)",
                )
            )
    return failures


def run(config: Config, backend: BackendSettings, client: ClientFactory) -> list[Failure]:
    """Every check; the failures, in check order."""
    return [
        *check_concurrency(config, client),
        *check_state_buckets(config, backend, client),
        *check_delegation(config, client),
        *check_zone_ids(config, client),
        *check_api_gateway_account(config, client),
    ]


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the checks with the operator's credentials; print one line per failure."""
    import boto3

    config = load_config(environ=environ)
    backend = BackendSettings.load()
    session = boto3.session.Session()
    failures = run(config, backend, lambda service, region: session.client(service, region_name=region))
    for failure in failures:
        print(failure.line())
    if not failures:
        print(f"preflight: every check passed for {config.environment_suffix} in {', '.join(config.regions)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
