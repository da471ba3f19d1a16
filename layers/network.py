"""Network layer (``network-<region>``): the private VPC the payment Lambdas run in.

Identical in every region (a loop in ``main.py``). Bill of materials:

- a VPC from ``config.vpc_cidrs[region]`` with a private subnet in each availability zone of
  ``config.availability_zone_ids[region]`` (zone IDs, pinned: an impaired zone never reshuffles the
  subnets), one route table per subnet and **no** internet gateway, NAT or public subnet;
- a gateway endpoint for DynamoDB on those route tables and interface endpoints (private DNS) for
  every other AWS API the functions call (:data:`INTERFACE_ENDPOINT_SERVICES`);
- the Lambda security group (egress: HTTPS to the VPC and to the DynamoDB prefix list, nothing
  else) and the endpoint security group (ingress: HTTPS from the Lambda security group only);
- the VPC's default security group emptied, so nothing can fall back on it;
- VPC flow logs (all traffic) to a log group encrypted with this layer's own key.

The endpoints for DynamoDB, SQS, SNS and KMS carry a data-perimeter policy: from this VPC, only
resources of this account are reachable, so a compromised function cannot copy payments to a
table, queue or topic of another account.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from cdktf import TerraformOutput
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.default_security_group import DefaultSecurityGroup
from cdktf_cdktf_provider_aws.flow_log import FlowLog
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.route_table import RouteTable
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation
from cdktf_cdktf_provider_aws.security_group import SecurityGroup, SecurityGroupTimeouts
from cdktf_cdktf_provider_aws.subnet import Subnet, SubnetTimeouts
from cdktf_cdktf_provider_aws.vpc import Vpc
from cdktf_cdktf_provider_aws.vpc_endpoint import VpcEndpoint
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from layers.base import BackendSettings, LayerStack
from layers.config import Config

#: Interface endpoints (private DNS on): every API the Lambda code calls except DynamoDB, which
#: has a gateway endpoint. sqs: validation enqueues; sns: orchestrator summaries; kms: direct key
#: use; logs/monitoring: CloudWatch APIs (the orchestrator reads alarms); sts: SDK identity;
#: lambda: the orchestrator adjusts functions; xray: tracing SDK calls.
INTERFACE_ENDPOINT_SERVICES: tuple[str, ...] = ("sqs", "sns", "kms", "logs", "monitoring", "sts", "lambda", "xray")
#: Endpoints whose policy admits only resources of this account (data perimeter).
SAME_ACCOUNT_ENDPOINTS = frozenset({"dynamodb", "sqs", "sns", "kms"})
HTTPS = 443
#: Lambda's Hyperplane ENIs keep the subnets and the Lambda security group busy for 20 to 40
#: minutes after the functions are deleted; the provider's defaults (20 and 15 min) give up first.
ENI_RELEASE_TIMEOUT = "45m"
#: Commercial partition: every region in ``layers.config.REGION_CODES`` belongs to it.
PARTITION = "aws"


def policy_document(*statements: dict[str, Any]) -> str:
    """An IAM/KMS policy document as JSON (cdktf tokens inside resolve at synth)."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def service_trust_policy(service: str, account_id: str) -> str:
    """A role's trust policy: only ``service`` (``s3.amazonaws.com``) acting for this account assumes it."""
    return policy_document(
        {
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        }
    )


def private_subnet_cidrs(vpc_cidr: str, count: int) -> list[str]:
    """The first ``count`` quarters of the VPC: /18s of a /16, /22s of a /20."""
    quarters = list(ipaddress.ip_network(vpc_cidr).subnets(prefixlen_diff=2))
    if not 1 <= count <= len(quarters):
        raise ValueError(f"{vpc_cidr} holds {len(quarters)} subnets, {count} requested")
    return [str(net) for net in quarters[:count]]


def service_name(region: str, service: str) -> str:
    """``com.amazonaws.<region>.<service>``: the endpoint service of an AWS API."""
    return f"com.amazonaws.{region}.{service}"


class NetworkStack(LayerStack):
    """VPC of one region; later layers read its ids through cross-stack references."""

    def __init__(self, scope: Construct, *, region: str, config: Config, backend: BackendSettings) -> None:
        super().__init__(scope, layer="network", region=region, config=config, backend=backend)
        self.account_id = DataAwsCallerIdentity(self, "account").account_id
        self.cidr = config.vpc_cidrs[region]
        self.vpc = Vpc(
            self,
            "vpc",
            cidr_block=self.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": self.name("payments-vpc")},
        )
        # Nothing may fall back on the default security group: it keeps no rule at all. Functions are
        # moved onto it before they are deleted (compute layer), so the Lambda SG is released sooner.
        self.default_security_group = DefaultSecurityGroup(self, "default-security-group", vpc_id=self.vpc.id)
        self._subnets()
        self._security_groups()
        self._endpoints()
        self._flow_logs()

        #: Contract (docs/design.md): plain tokens the compute layer reads across stacks.
        self.vpc_id: str = self.vpc.id
        self.private_subnet_ids: list[str] = [subnet.id for subnet in self.subnets]
        self.lambda_security_group_id: str = self.lambda_sg.id
        self.default_security_group_id: str = self.default_security_group.id
        TerraformOutput(self, "vpc_id", value=self.vpc_id, description="VPC id")
        TerraformOutput(self, "private_subnet_ids", value=self.private_subnet_ids, description="private subnets")
        TerraformOutput(
            self, "lambda_security_group_id", value=self.lambda_security_group_id, description="Lambda security group"
        )

    def _subnets(self) -> None:
        """Private subnets, one per zone ID, each with its own route table that has no route out."""
        zones = self.config.availability_zone_ids[self.region]
        self.subnets: list[Subnet] = []
        self.route_tables: list[RouteTable] = []
        for index, (zone, cidr) in enumerate(zip(zones, private_subnet_cidrs(self.cidr, len(zones)), strict=True)):
            subnet = Subnet(
                self,
                f"private-subnet-{index}",
                vpc_id=self.vpc.id,
                cidr_block=cidr,
                availability_zone_id=zone,
                map_public_ip_on_launch=False,
                tags={"Name": self.name(f"payments-private-{index}"), "Tier": "private"},
                timeouts=SubnetTimeouts(delete=ENI_RELEASE_TIMEOUT),
            )
            # route=[]: Terraform owns the routes, so a route added outside it (to an internet
            # gateway, say) shows up as drift and is removed on the next apply.
            table = RouteTable(
                self,
                f"private-routes-{index}",
                vpc_id=self.vpc.id,
                route=[],
                tags={"Name": self.name(f"payments-private-{index}")},
            )
            RouteTableAssociation(
                self, f"private-routes-{index}-association", subnet_id=subnet.id, route_table_id=table.id
            )
            self.subnets.append(subnet)
            self.route_tables.append(table)

    def _security_groups(self) -> None:
        """Lambda SG (HTTPS out to the VPC and DynamoDB) and endpoint SG (HTTPS in from Lambda)."""
        # A security group created by Terraform starts without AWS's allow-all egress rule.
        self.lambda_sg = SecurityGroup(
            self,
            "lambda-sg",
            name=self.name("payments-lambda"),
            description="Payment Lambdas: HTTPS to VPC endpoints and DynamoDB only",
            vpc_id=self.vpc.id,
            tags={"Name": self.name("payments-lambda")},
            timeouts=SecurityGroupTimeouts(delete=ENI_RELEASE_TIMEOUT),
        )
        self.endpoint_sg = SecurityGroup(
            self,
            "endpoint-sg",
            name=self.name("payments-vpc-endpoints"),
            description="Interface VPC endpoints: HTTPS from the payment Lambdas only",
            vpc_id=self.vpc.id,
            tags={"Name": self.name("payments-vpc-endpoints")},
        )
        VpcSecurityGroupIngressRule(
            self,
            "endpoint-sg-https-from-lambda",
            security_group_id=self.endpoint_sg.id,
            description="HTTPS from the payment Lambdas",
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            referenced_security_group_id=self.lambda_sg.id,
        )
        VpcSecurityGroupEgressRule(
            self,
            "lambda-sg-https-to-vpc",
            security_group_id=self.lambda_sg.id,
            description="HTTPS to the interface endpoints in this VPC",
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            cidr_ipv4=self.cidr,
        )

    def _endpoints(self) -> None:
        """DynamoDB gateway endpoint on every private route table; interface endpoints in every subnet."""
        self.dynamodb_endpoint = VpcEndpoint(
            self,
            "endpoint-dynamodb",
            vpc_id=self.vpc.id,
            service_name=service_name(self.region, "dynamodb"),
            vpc_endpoint_type="Gateway",
            route_table_ids=[table.id for table in self.route_tables],
            policy=self._endpoint_policy("dynamodb"),
            tags={"Name": self.name("payments-dynamodb")},
        )
        VpcSecurityGroupEgressRule(
            self,
            "lambda-sg-https-to-dynamodb",
            security_group_id=self.lambda_sg.id,
            description="HTTPS to DynamoDB through the gateway endpoint",
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            prefix_list_id=self.dynamodb_endpoint.prefix_list_id,
        )
        self.interface_endpoints: dict[str, VpcEndpoint] = {
            service: VpcEndpoint(
                self,
                f"endpoint-{service}",
                vpc_id=self.vpc.id,
                service_name=service_name(self.region, service),
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[subnet.id for subnet in self.subnets],
                security_group_ids=[self.endpoint_sg.id],
                policy=self._endpoint_policy(service),
                tags={"Name": self.name(f"payments-{service}")},
            )
            for service in INTERFACE_ENDPOINT_SERVICES
        }

    def _endpoint_policy(self, service: str) -> str | None:
        """Same-account-only policy for the data-carrying services; ``None`` keeps AWS's default."""
        if service not in SAME_ACCOUNT_ENDPOINTS:
            return None
        return policy_document(
            {
                "Sid": "OnlyThisAccountsResources",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "*",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceAccount": self.account_id}},
            }
        )

    def _flow_logs(self) -> None:
        """All traffic of the VPC to a KMS-encrypted log group, written by a least-privilege role."""
        log_group_name = self.name("/aws/vpc-flow-logs/payments")
        log_group_arn = f"arn:{PARTITION}:logs:{self.region}:{self.account_id}:log-group:{log_group_name}"
        root = f"arn:{PARTITION}:iam::{self.account_id}:root"
        # The data layer's key comes later in the deploy order, so flow logs have their own key.
        self.flow_log_key = KmsKey(
            self,
            "flow-log-key",
            description=f"VPC flow logs of {self.name('payments-vpc')} in {self.region}",
            enable_key_rotation=True,
            deletion_window_in_days=7,
            policy=policy_document(
                {
                    "Sid": "AccountRootManagesKey",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchLogsEncryptsTheFlowLogGroup",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{self.region}.amazonaws.com"},
                    "Action": [
                        "kms:Encrypt*",
                        "kms:Decrypt*",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:Describe*",
                    ],
                    "Resource": "*",
                    "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": log_group_arn}},
                },
            ),
        )
        KmsAlias(
            self,
            "flow-log-key-alias",
            name=f"alias/{self.name('payments-flow-logs')}",
            target_key_id=self.flow_log_key.key_id,
        )
        self.flow_log_group = CloudwatchLogGroup(
            self,
            "flow-log-group",
            name=log_group_name,
            retention_in_days=self.config.log_retention_days,
            kms_key_id=self.flow_log_key.arn,
        )
        role = IamRole(
            self,
            "flow-log-role",
            name=self.regional_name("vpc-flow-logs"),
            description=f"VPC flow logs of {self.name('payments-vpc')} write to {log_group_name}",
            assume_role_policy=policy_document(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": self.account_id},
                        "ArnLike": {
                            "aws:SourceArn": f"arn:{PARTITION}:ec2:{self.region}:{self.account_id}:vpc-flow-log/*"
                        },
                    },
                }
            ),
        )
        IamRolePolicy(
            self,
            "flow-log-role-policy",
            name=self.regional_name("vpc-flow-logs"),
            role=role.id,
            policy=policy_document(
                {
                    "Sid": "WriteTheFlowLogGroup",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    "Resource": [self.flow_log_group.arn, f"{self.flow_log_group.arn}:*"],
                },
                {
                    # The service checks the group exists; DescribeLogGroups has no per-group resource.
                    "Sid": "FindTheFlowLogGroup",
                    "Effect": "Allow",
                    "Action": "logs:DescribeLogGroups",
                    "Resource": f"arn:{PARTITION}:logs:{self.region}:{self.account_id}:log-group:*",
                },
            ),
        )
        FlowLog(
            self,
            "flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=self.flow_log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags={"Name": self.name("payments-vpc-flow-log")},
        )
