"""Account layer (``account-<region>``, opt-in): settings AWS keeps once per account and region.

Today one: API Gateway's CloudWatch Logs role (``aws_api_gateway_account``), which every REST API of
the account and region logs through; the last apply wins. Per-suffix stacks must never set it: two
suffixes would fight over it, and a destroy would leave it pointing at a deleted role (other teams'
API logging with it). So exactly one deployment per account owns it, with
``manageApiGatewayAccount=true``; its destroy resets the setting (``reset_on_delete``), leaving
the account as it was. ``make preflight`` says when no deployment owns it yet.
"""

from __future__ import annotations

from cdktf import TerraformOutput
from cdktf_cdktf_provider_aws.api_gateway_account import ApiGatewayAccount
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from constructs import Construct

from layers.base import BackendSettings, LayerStack
from layers.config import Config
from layers.network import PARTITION, policy_document, service_trust_policy


class AccountStack(LayerStack):
    """API Gateway's account-wide CloudWatch Logs role of one region."""

    def __init__(self, scope: Construct, *, region: str, config: Config, backend: BackendSettings) -> None:
        super().__init__(scope, layer="account", region=region, config=config, backend=backend)
        account_id = DataAwsCallerIdentity(self, "account").account_id
        log_groups = f"arn:{PARTITION}:logs:{region}:{account_id}:log-group"
        role = IamRole(
            self,
            "api-gateway-logging-role",
            name=self.regional_name("apigw-cloudwatch"),
            description="API Gateway writes execution and access logs of every REST API in this region",
            assume_role_policy=service_trust_policy("apigateway.amazonaws.com", account_id),
        )
        # Every REST API of the account and region logs through this role: API Gateway's own log
        # group names, not only this project's.
        policy = IamRolePolicy(
            self,
            "api-gateway-logging-policy",
            name=self.regional_name("apigw-cloudwatch"),
            role=role.id,
            policy=policy_document(
                {
                    "Sid": "WriteApiGatewayLogGroups",
                    "Effect": "Allow",
                    "Action": [
                        "logs:CreateLogGroup",
                        "logs:CreateLogStream",
                        "logs:DescribeLogStreams",
                        "logs:PutLogEvents",
                        "logs:GetLogEvents",
                        "logs:FilterLogEvents",
                    ],
                    "Resource": [
                        f"{log_groups}:API-Gateway-Execution-Logs_*",
                        f"{log_groups}:API-Gateway-Execution-Logs_*:log-stream:*",
                        f"{log_groups}:/aws/apigateway/*",
                        f"{log_groups}:/aws/apigateway/*:log-stream:*",
                    ],
                },
                {"Sid": "FindLogGroups", "Effect": "Allow", "Action": "logs:DescribeLogGroups", "Resource": "*"},
            ),
        )
        self.api_gateway_account = ApiGatewayAccount(
            self,
            "api-gateway-account",
            cloudwatch_role_arn=role.arn,
            # Destroy puts the account back as it was, instead of pointing at a deleted role.
            reset_on_delete=True,
            depends_on=[policy],
        )
        TerraformOutput(self, "api_gateway_cloudwatch_role_arn", value=role.arn)
