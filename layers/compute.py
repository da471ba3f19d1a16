"""Compute layer (``compute-<region>``): payment Lambdas, their queues, alert topic and IAM.

Identical in every region (a loop in ``main.py``). Bill of materials:

- the Powertools layer (``build/powertools-layer``, built by ``make layer``) as a layer version;
- the processing queue and its DLQ, and the async-invocation DLQ of the functions; all three
  KMS-encrypted with the data key and TLS-only;
- the region's alert topic (KMS, TLS-only); alarms of the edge and observability layers publish to it;
- per function (:data:`FUNCTIONS`): a zip of its own folder plus ``payments_common`` (staged by
  ``tools/package.py``, zipped by cdktf), a log group (KMS, retention), a role whose inline
  policy grants only the actions it uses on only the resources it uses, and the function itself
  (reserved concurrency, X-Ray, KMS-encrypted environment, private subnets; the async DLQ for the
  asynchronously invoked orchestrator only);
- the SQS event source mapping of the processing function (partial batch failures).

Function names carry no region (``payment-validation-<suffix>`` in both regions: Powertools
idempotency keys start with the function name, see docs/design.md); role names do, IAM being global.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf import AssetType, TerraformAsset, TerraformOutput, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_iam_policy_document import (
    DataAwsIamPolicyDocument,
    DataAwsIamPolicyDocumentStatement,
    DataAwsIamPolicyDocumentStatementCondition,
    DataAwsIamPolicyDocumentStatementPrincipals,
)
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.lambda_event_source_mapping import (
    LambdaEventSourceMapping,
    LambdaEventSourceMappingScalingConfig,
)
from cdktf_cdktf_provider_aws.lambda_function import (
    LambdaFunction,
    LambdaFunctionDeadLetterConfig,
    LambdaFunctionEnvironment,
    LambdaFunctionTracingConfig,
    LambdaFunctionVpcConfig,
)
from cdktf_cdktf_provider_aws.lambda_layer_version import LambdaLayerVersion
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_policy import SnsTopicPolicy
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from cdktf_cdktf_provider_aws.sqs_queue_policy import SqsQueuePolicy
from cdktf_cdktf_provider_aws.sqs_queue_redrive_allow_policy import SqsQueueRedriveAllowPolicy
from constructs import Construct

from layers.base import BackendSettings, LayerStack
from layers.config import Config
from layers.data import PENDING_INDEX, DataStack
from layers.network import NetworkStack
from layers.witness import WitnessStack
from tools.package import built_layer, stage_function

RUNTIME = "python3.11"
ARCHITECTURE = "x86_64"
#: Every function exposes ``handler(event, context)`` in ``handler.py`` at the zip's root.
HANDLER = "handler.handler"
#: The orchestrator talks to several APIs in two regions, one of which may be failing: its calls
#: time out and retry, so it gets more time than an API function.
ORCHESTRATOR_TIMEOUT_S = 60
#: SQS recommends a visibility timeout of at least 6x the function timeout (plus the batching
#: window), so a batch retried by Lambda's poller is not redelivered while still being processed.
VISIBILITY_TIMEOUT_FACTOR = 6
#: The processing queue keeps a message 4 days; its DLQ 14 days, the SQS maximum. A message keeps
#: its first enqueue time when it moves to the DLQ, so the DLQ must keep messages longer.
QUEUE_RETENTION_S = 4 * 24 * 3600
DLQ_RETENTION_S = 14 * 24 * 3600
#: How long SQS reuses a data key before calling KMS again (the default, stated explicitly).
KMS_DATA_KEY_REUSE_S = 300
#: SQS event source mappings accept a maximum concurrency from 2 to 1000.
MIN_ESM_CONCURRENCY, MAX_ESM_CONCURRENCY = 2, 1000
POWERTOOLS_LOG_LEVEL = "INFO"
#: The open route of every regional API (layers/edge.py, ``HEALTH_PATH``; edge imports this module).
HEALTH_PATH = "/health"
#: Functions that write to the encrypted tables or queues (and so need kms:GenerateDataKey).
WRITERS = frozenset({"payment_validation", "payment_processing", "failover_orchestrator"})


@dataclass(frozen=True)
class FunctionSpec:
    """One function: its folder under ``lambdas/`` (also its key in ``ComputeStack.functions``)."""

    key: str
    description: str
    #: In the private subnets with the Lambda security group; False only for the orchestrator.
    in_vpc: bool = True
    #: Invoked asynchronously (SNS, EventBridge): gets the async DLQ and the grants to write to it.
    asynchronous: bool = False

    @property
    def base_name(self) -> str:
        """``payment_validation`` -> ``payment-validation``."""
        return self.key.replace("_", "-")


FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("payment_validation", "POST /payments: validate, record PENDING, enqueue"),
    FunctionSpec("payment_processing", "SQS: PENDING -> PROCESSED/DECLINED, once per payment"),
    FunctionSpec("payment_status", "GET /payments/{id}"),
    FunctionSpec("health", "GET /health: the region's lease state and DynamoDB reachability"),
    # Outside the VPC on purpose: it calls DynamoDB and Lambda of the OTHER region too (the lease in
    # the peer replica, the peer's event source mappings) even while that region fails, and the
    # interface endpoints of this VPC reach only this region's services. It handles no payment
    # data: it reads and writes the control table, sweeps PENDING payment ids and publishes summaries.
    FunctionSpec(
        "failover_orchestrator",
        "Renews, watches and hands over the active-region lease",
        in_vpc=False,
        asynchronous=True,
    ),
    FunctionSpec("authorizer", "API Gateway REQUEST authorizer: merchant API key -> merchant id"),
)


def statement(
    sid: str,
    actions: list[str],
    resources: list[str] | None,
    *,
    effect: str = "Allow",
    principals: list[tuple[str, list[str]]] | None = None,
    conditions: list[tuple[str, str, list[str]]] | None = None,
) -> DataAwsIamPolicyDocumentStatement:
    """One policy statement; ``principals`` as ``(type, identifiers)``, ``conditions`` as ``(test, key, values)``."""
    return DataAwsIamPolicyDocumentStatement(
        sid=sid,
        effect=effect,
        actions=actions,
        resources=resources,
        principals=[DataAwsIamPolicyDocumentStatementPrincipals(type=t, identifiers=ids) for t, ids in principals]
        if principals
        else None,
        condition=[
            DataAwsIamPolicyDocumentStatementCondition(test=test, variable=key, values=values)
            for test, key, values in conditions
        ]
        if conditions
        else None,
    )


def deny_insecure_transport(actions: list[str], resources: list[str]) -> DataAwsIamPolicyDocumentStatement:
    """Refuse every request that does not use TLS, whoever makes it."""
    return statement(
        "DenyInsecureTransport",
        actions,
        resources,
        effect="Deny",
        principals=[("*", ["*"])],
        conditions=[("Bool", "aws:SecureTransport", ["false"])],
    )


class ComputeStack(LayerStack):
    """Functions, queues, alert topic and IAM of one region."""

    def __init__(
        self,
        scope: Construct,
        *,
        region: str,
        config: Config,
        backend: BackendSettings,
        network: NetworkStack,
        data: DataStack,
        witness: WitnessStack,
    ) -> None:
        super().__init__(scope, layer="compute", region=region, config=config, backend=backend)
        self.network = network
        self.data = data
        self.witness = witness
        self.add_dependency(network)
        self.add_dependency(data)
        self.add_dependency(witness)

        self.partition: str = DataAwsPartition(self, "partition").partition
        self.account_id: str = DataAwsCallerIdentity(self, "account").account_id
        self.key_arn: str = data.key_arn
        #: CloudWatch namespace of the functions' Powertools metrics; per suffix, so two deployments
        #: in one account never mix their numbers.
        self.metrics_namespace = f"PaymentsDR/{config.environment_suffix}"

        self.powertools_layer = self._powertools_layer()
        self.processing_dlq = self._queue("processing-dlq", "payments-processing-dlq", DLQ_RETENTION_S)
        self.processing_queue = self._queue(
            "processing-queue",
            "payments-processing",
            QUEUE_RETENTION_S,
            visibility_timeout=VISIBILITY_TIMEOUT_FACTOR * config.processing_timeout_seconds
            + config.sqs_max_batching_window_seconds,
            redrive_policy=json.dumps(
                {"deadLetterTargetArn": self.processing_dlq.arn, "maxReceiveCount": config.sqs_max_receive_count}
            ),
        )
        # Only the processing queue may use its DLQ (a separate resource: the queue already refers to the DLQ).
        SqsQueueRedriveAllowPolicy(
            self,
            "processing-dlq-redrive-allow",
            queue_url=self.processing_dlq.url,
            redrive_allow_policy=json.dumps(
                {"redrivePermission": "byQueue", "sourceQueueArns": [self.processing_queue.arn]}
            ),
        )
        # Where Lambda puts asynchronous invocations (the orchestrator's) that failed every retry.
        self.async_dlq = self._queue(
            "async-dlq",
            "payments-async-dlq",
            DLQ_RETENTION_S,
            redrive_allow_policy=json.dumps({"redrivePermission": "denyAll"}),
        )
        #: Every async-invocation DLQ by logical key (observability alarms on each).
        self.async_dlqs: dict[str, SqsQueue] = {"async_dlq": self.async_dlq}
        self.alert_topic = self._alert_topic()

        self.roles: dict[str, IamRole] = {}
        self.log_groups: dict[str, CloudwatchLogGroup] = {}
        self.role_policies: dict[str, IamRolePolicy] = {}
        self.functions: dict[str, LambdaFunction] = {spec.key: self._function(spec) for spec in FUNCTIONS}
        self.processing_event_source_mapping = self._processing_event_source_mapping()
        self._outputs()

    # ------------------------------------------------------------------ names and ARNs

    def function_name(self, key: str) -> str:
        """A function's name: the same in every region (``payment-validation-<suffix>``)."""
        return self.name(key.replace("_", "-"))

    def function_arn(self, key: str, region: str) -> str:
        """ARN of function ``key`` in ``region``, built from its name (the other region's stack is not read)."""
        return f"arn:{self.partition}:lambda:{region}:{self.account_id}:function:{self.function_name(key)}"

    # ------------------------------------------------------------------ building blocks

    def _powertools_layer(self) -> LambdaLayerVersion:
        """The layer built by ``make layer``; the synth stops with that advice when it is missing."""
        layer = built_layer()
        asset = TerraformAsset(
            self, "powertools-layer-asset", path=str(layer.path), type=AssetType.ARCHIVE, asset_hash=layer.digest
        )
        return LambdaLayerVersion(
            self,
            "powertools-layer",
            layer_name=self.name("payments-powertools"),
            description="aws-lambda-powertools and pydantic, pinned by constraints.txt",
            filename=asset.path,
            source_code_hash=asset.asset_hash,
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
        )

    def _queue(
        self,
        id_: str,
        base_name: str,
        retention: int,
        *,
        visibility_timeout: int | None = None,
        redrive_policy: str | None = None,
        redrive_allow_policy: str | None = None,
    ) -> SqsQueue:
        """A standard queue encrypted with the data key, with a policy that refuses non-TLS requests."""
        queue = SqsQueue(
            self,
            id_,
            name=self.name(base_name),
            kms_master_key_id=self.key_arn,
            kms_data_key_reuse_period_seconds=KMS_DATA_KEY_REUSE_S,
            message_retention_seconds=retention,
            visibility_timeout_seconds=visibility_timeout,
            receive_wait_time_seconds=20,
            redrive_policy=redrive_policy,
            redrive_allow_policy=redrive_allow_policy,
        )
        policy = DataAwsIamPolicyDocument(
            self, f"{id_}-policy-document", statement=[deny_insecure_transport(["sqs:*"], [queue.arn])]
        )
        SqsQueuePolicy(self, f"{id_}-policy", queue_url=queue.url, policy=policy.json)
        return queue

    def _alert_topic(self) -> SnsTopic:
        """The region's alert topic: CloudWatch alarms of this deployment publish to it (no EventBridge rule does)."""
        topic = SnsTopic(self, "alert-topic", name=self.name("payments-alerts"), kms_master_key_id=self.key_arn)
        account = [("StringEquals", "aws:SourceAccount", [self.account_id])]
        region_arn = f"{self.partition}:%s:{self.region}:{self.account_id}"
        suffix = self.config.environment_suffix
        policy = DataAwsIamPolicyDocument(
            self,
            "alert-topic-policy-document",
            statement=[
                statement(
                    "AccountOwnerManagesTopic",
                    [
                        "sns:GetTopicAttributes",
                        "sns:SetTopicAttributes",
                        "sns:AddPermission",
                        "sns:RemovePermission",
                        "sns:DeleteTopic",
                        "sns:Subscribe",
                        "sns:ListSubscriptionsByTopic",
                        "sns:Publish",
                    ],
                    [topic.arn],
                    principals=[("AWS", [f"arn:{self.partition}:iam::{self.account_id}:root"])],
                ),
                statement(
                    "CloudWatchAlarmsPublish",
                    ["sns:Publish"],
                    [topic.arn],
                    principals=[("Service", ["cloudwatch.amazonaws.com"])],
                    conditions=[
                        *account,
                        ("ArnLike", "aws:SourceArn", [f"arn:{region_arn % 'cloudwatch'}:alarm:*-{suffix}"]),
                    ],
                ),
                deny_insecure_transport(["sns:*"], [topic.arn]),
            ],
        )
        SnsTopicPolicy(self, "alert-topic-policy", arn=topic.arn, policy=policy.json)
        return topic

    def _environment(self, spec: FunctionSpec) -> dict[str, str]:
        """Environment variables of docs/design.md, "Lambda environment contract"."""
        tables = self.data.tables
        variables = {
            "TRANSACTIONS_TABLE": tables["transactions"].name,
            "IDEMPOTENCY_TABLE": tables["idempotency"].name,
            "CONTROL_TABLE": tables["control"].name,
            "PRIMARY_REGION": self.config.primary_region,
            "SECONDARY_REGION": self.config.secondary_region,
            "ENVIRONMENT_SUFFIX": self.config.environment_suffix,
            "POWERTOOLS_SERVICE_NAME": spec.base_name,
            "POWERTOOLS_METRICS_NAMESPACE": self.metrics_namespace,
            "POWERTOOLS_LOG_LEVEL": POWERTOOLS_LOG_LEVEL,
            # Never log whole events: request bodies could hold what a client wrongly sent as a card number.
            "POWERTOOLS_LOGGER_LOG_EVENT": "false",
        }
        if spec.key in ("payment_validation", "payment_processing", "failover_orchestrator"):
            # Validation enqueues; processing parks messages while standby; the sweeper re-enqueues.
            variables["PROCESSING_QUEUE_URL"] = self.processing_queue.url
        if spec.key == "authorizer":
            variables["MERCHANTS_TABLE"] = tables["merchants"].name
        if spec.key == "health":
            # A standby whose orchestrator stopped writing heartbeats cannot promote itself: unhealthy.
            variables["HEARTBEAT_STALE_SECONDS"] = str(self.config.heartbeat_stale_seconds)
        if spec.key == "failover_orchestrator":
            variables["ALERT_TOPIC_ARN"] = self.alert_topic.arn
            variables["PROCESSING_FUNCTION_NAME"] = self.function_name("payment_processing")
            variables["HEARTBEAT_STALE_SECONDS"] = str(self.config.heartbeat_stale_seconds)
            # The probe's own-health check asks the URL the Route 53 checker asks (edge layer).
            variables["REGIONAL_HEALTH_URL"] = f"https://{self.config.regional_host(self.region)}{HEALTH_PATH}"
            # Asked only when its own fails: the lease moves for a failing region, not a failing vantage point.
            peer = next(r for r in self.config.regions if r != self.region)
            variables["PEER_HEALTH_URL"] = f"https://{self.config.regional_host(peer)}{HEALTH_PATH}"
            variables["LEASE_SECONDS"] = str(self.config.lease_seconds)
            variables["LEASE_SAFETY_MARGIN_SECONDS"] = str(self.config.lease_safety_margin_seconds)
            # The lease's third copy (docs/design.md, lease protocol).
            variables["WITNESS_TABLE"] = self.witness.table.name
            variables["WITNESS_REGION"] = self.config.witness_region
            variables["PENDING_SWEEP_AGE_SECONDS"] = str(self.config.pending_sweep_age_seconds)
            variables["PENDING_ALARM_AGE_SECONDS"] = str(self.config.pending_alarm_age_seconds)
        return variables

    def _timeout(self, spec: FunctionSpec) -> int:
        if spec.key == "payment_processing":
            return self.config.processing_timeout_seconds
        if spec.key == "failover_orchestrator":
            return ORCHESTRATOR_TIMEOUT_S
        return self.config.lambda_timeout_seconds

    def _permissions(
        self, spec: FunctionSpec, log_group: CloudwatchLogGroup
    ) -> list[DataAwsIamPolicyDocumentStatement]:
        """Exactly what ``spec``'s code calls, on exactly the resources it calls it on."""
        tables = {key: ref.arn for key, ref in self.data.tables.items()}
        common = [
            # CreateLogStream acts on the log group, PutLogEvents on its streams: "<group arn>:*" covers both.
            statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group.arn}:*"]),
            # Decrypt: environment variables, the encrypted queues and tables; GenerateDataKey only for
            # functions that write: to the encrypted tables and queues, or (Lambda, with this role) to
            # the async DLQ. Readers (status, health) decrypt only.
            statement(
                "UseDataKey",
                ["kms:Decrypt", "kms:GenerateDataKey"] if spec.key in WRITERS else ["kms:Decrypt"],
                [self.key_arn],
            ),
            # X-Ray has no resource-level permissions: "*" is the only resource these actions accept.
            statement("WriteTraces", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]),
        ]
        if spec.asynchronous:
            common.insert(1, statement("SendFailedAsyncInvocationsToDlq", ["sqs:SendMessage"], [self.async_dlq.arn]))
        if spec.in_vpc:
            # Lambda manages the function's ENIs with this role. DescribeNetworkInterfaces and
            # DescribeSubnets accept only "*"; for the others EC2 has no resource that exists before
            # the ENI does, and Lambda checks these permissions against "*" when the function is created
            # (the AWSLambdaVPCAccessExecutionRole set, minus its logs:CreateLogGroup).
            common.append(
                statement(
                    "ManageVpcNetworkInterfaces",
                    [
                        "ec2:CreateNetworkInterface",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeSubnets",
                        "ec2:DeleteNetworkInterface",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    ["*"],
                )
            )
        queue = self.processing_queue.arn
        own: dict[str, list[DataAwsIamPolicyDocumentStatement]] = {
            "payment_validation": [
                # Powertools: conditional put (the existing record comes back with the refusal, so no
                # GetItem), the result (update), and a delete when the first attempt failed.
                statement(
                    "IdempotencyRecords",
                    ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                    [tables["idempotency"]],
                ),
                # A conditional put; an existing payment comes back with the refusal (ALL_OLD), no GetItem.
                statement("RecordPendingPayments", ["dynamodb:PutItem"], [tables["transactions"]]),
                statement("ReadLease", ["dynamodb:GetItem"], [tables["control"]]),
                statement("EnqueuePayments", ["sqs:SendMessage"], [queue]),
            ],
            "payment_processing": [
                statement("SettlePayments", ["dynamodb:GetItem", "dynamodb:UpdateItem"], [tables["transactions"]]),
                # The outcome is written in a transaction that checks the lease (ConditionCheckItem).
                statement("CheckLease", ["dynamodb:GetItem", "dynamodb:ConditionCheckItem"], [tables["control"]]),
                # A standby parks a delivered message (sends it again, delayed) instead of failing it.
                statement("ParkMessagesWhileStandby", ["sqs:SendMessage"], [queue]),
                # What Lambda's poller calls with this role (the AWSLambdaSQSQueueExecutionRole set); nothing
                # changes a message's visibility (`make drill TARGET=deployed` finds no use for it).
                statement(
                    "ConsumeProcessingQueue",
                    ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                    [queue],
                ),
            ],
            "payment_status": [statement("ReadPayments", ["dynamodb:GetItem"], [tables["transactions"]])],
            "health": [statement("ReadControlTable", ["dynamodb:GetItem"], [tables["control"]])],
            "failover_orchestrator": self._orchestrator_permissions(tables["control"], tables["transactions"]),
            # Reads keys from this region's replica only; keys are written by operators (tools/merchants.py).
            "authorizer": [statement("ReadMerchantKeys", ["dynamodb:GetItem"], [tables["merchants"]])],
        }
        return own[spec.key] + common

    def _orchestrator_permissions(
        self, control_table: str, transactions_table: str
    ) -> list[DataAwsIamPolicyDocumentStatement]:
        """Renew, watch and hand over the lease in both replicas, sweep PENDING payments, toggle consumers."""
        processing = [self.function_arn("payment_processing", region) for region in self.config.regions]
        mappings = [
            f"arn:{self.partition}:lambda:{region}:{self.account_id}:event-source-mapping:*"
            for region in self.config.regions
        ]
        control_name = self.data.tables["control"].name
        peer_control = [
            f"arn:{self.partition}:dynamodb:{region}:{self.account_id}:table/{control_name}"
            for region in self.config.regions
            if region != self.region
        ]
        peer_keys = [
            f"arn:{self.partition}:kms:{region}:{self.account_id}:key/{self.data.key.key_id}"
            for region in self.config.regions
            if region != self.region
        ]
        lease_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
        return [
            statement("LeaseHeartbeatsAndRecords", lease_actions, [control_table]),
            # The lease is renewed and handed over directly in the other region's replica (the protocol's
            # write order), and read there to check replication before a failback; the replication
            # canary reads its own write back there (GetItem).
            statement("LeaseInPeerReplica", lease_actions, peer_control),
            # That replica is encrypted with the peer region's replica of the data key (a multi-region
            # key: the same key id in every region). DynamoDB decrypts the table key in the caller's
            # context (Decrypt) and generates it itself when the table is created: no GenerateDataKey.
            statement("UsePeerReplicaKey", ["kms:Decrypt"], peer_keys),
            # The witness copy of the lease (a plain table in the witness region): read, conditional
            # put (bootstrap, promotion, handover, catch-up) and update (renewal, revocation).
            statement("LeaseInWitness", lease_actions, [self.witness.table.arn]),
            # The witness table is encrypted with the witness region's own key (Decrypt, as above).
            statement("UseWitnessKey", ["kms:Decrypt"], [self.witness.key_arn]),
            # The sweeper reads the sparse index of PENDING payments and re-enqueues them.
            statement("FindPendingPayments", ["dynamodb:Query"], [f"{transactions_table}/index/{PENDING_INDEX.name}"]),
            statement("ReenqueuePendingPayments", ["sqs:SendMessage"], [self.processing_queue.arn]),
            statement("PublishSummaries", ["sns:Publish"], [self.alert_topic.arn]),
            # ListEventSourceMappings has no resource type: "*" is the only resource it accepts.
            statement("FindProcessingEventSourceMappings", ["lambda:ListEventSourceMappings"], ["*"]),
            # Mapping UUIDs are unknown here (the other region's especially): any mapping, but only
            # one whose function is a processing function (enabled when active, disabled when not).
            statement(
                "ToggleProcessingEventSourceMappings",
                ["lambda:UpdateEventSourceMapping"],
                mappings,
                conditions=[("ArnLike", "lambda:FunctionArn", processing)],
            ),
        ]

    def _function(self, spec: FunctionSpec) -> LambdaFunction:
        """Log group, role, policy and function of ``spec``."""
        name = self.function_name(spec.key)
        log_group = CloudwatchLogGroup(
            self,
            f"{spec.key}-log-group",
            name=f"/aws/lambda/{name}",
            kms_key_id=self.key_arn,
            retention_in_days=self.config.log_retention_days,
        )
        assume = DataAwsIamPolicyDocument(
            self,
            f"{spec.key}-assume-role-document",
            statement=[
                statement(
                    "LambdaAssumesRole",
                    ["sts:AssumeRole"],
                    None,
                    principals=[("Service", ["lambda.amazonaws.com"])],
                    conditions=[("StringEquals", "aws:SourceAccount", [self.account_id])],
                )
            ],
        )
        role = IamRole(
            self,
            f"{spec.key}-role",
            name=self.regional_name(spec.base_name),
            description=f"{name} in {self.region}",
            assume_role_policy=assume.json,
        )
        document = DataAwsIamPolicyDocument(
            self, f"{spec.key}-policy-document", statement=self._permissions(spec, log_group)
        )
        policy = IamRolePolicy(
            self, f"{spec.key}-policy", name=self.regional_name(spec.base_name), role=role.id, policy=document.json
        )
        staged = stage_function(spec.key)
        asset = TerraformAsset(
            self, f"{spec.key}-code", path=str(staged.path), type=AssetType.ARCHIVE, asset_hash=staged.digest
        )
        function = LambdaFunction(
            self,
            f"{spec.key}-function",
            function_name=name,
            description=spec.description,
            role=role.arn,
            runtime=RUNTIME,
            handler=HANDLER,
            architectures=[ARCHITECTURE],
            filename=asset.path,
            source_code_hash=asset.asset_hash,
            layers=[self.powertools_layer.arn],
            memory_size=self.config.lambda_memory_mb,
            timeout=self._timeout(spec),
            reserved_concurrent_executions=self.config.lambda_reserved_concurrency,
            kms_key_arn=self.key_arn,
            environment=LambdaFunctionEnvironment(variables=self._environment(spec)),
            tracing_config=LambdaFunctionTracingConfig(mode="Active"),
            # Only asynchronously invoked functions have failed invocations to keep; API Gateway and
            # the SQS mapping invoke the others synchronously (the processing queue has its own DLQ).
            dead_letter_config=LambdaFunctionDeadLetterConfig(target_arn=self.async_dlq.arn)
            if spec.asynchronous
            else None,
            vpc_config=LambdaFunctionVpcConfig(
                subnet_ids=self.network.private_subnet_ids,
                security_group_ids=[self.network.lambda_security_group_id],
            )
            if spec.in_vpc
            else None,
            # On destroy, move the function onto the VPC's rule-less default SG first: its leftover ENIs
            # then no longer hold the Lambda SG, which network-<region> can delete sooner.
            replace_security_groups_on_destroy=True if spec.in_vpc else None,
            replacement_security_group_ids=[self.network.default_security_group_id] if spec.in_vpc else None,
            # The log group exists before Lambda could create one outside Terraform; the policy before
            # Lambda checks the role's ENI and DLQ permissions at creation.
            depends_on=[log_group, policy],
        )
        self.roles[spec.key] = role
        self.log_groups[spec.key] = log_group
        self.role_policies[spec.key] = policy
        return function

    def _processing_event_source_mapping(self) -> LambdaEventSourceMapping:
        """Processing queue -> processing function; failed messages of a batch are retried alone."""
        reserved = self.config.lambda_reserved_concurrency
        # At most the function's reserved concurrency, so the poller never invokes into throttling
        # (throttled batches count as receives and push healthy messages to the DLQ). SQS accepts
        # no value below 2: with a reserved concurrency of 1 the reservation alone bounds it.
        scaling = (
            LambdaEventSourceMappingScalingConfig(maximum_concurrency=min(reserved, MAX_ESM_CONCURRENCY))
            if reserved >= MIN_ESM_CONCURRENCY
            else None
        )
        return LambdaEventSourceMapping(
            self,
            "processing-event-source-mapping",
            event_source_arn=self.processing_queue.arn,
            function_name=self.functions["payment_processing"].arn,
            batch_size=self.config.sqs_batch_size,
            maximum_batching_window_in_seconds=self.config.sqs_max_batching_window_seconds,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=scaling,
            # Created enabled only where the first lease holder runs; from then on the failover
            # orchestrator enables it in the active region and disables it elsewhere, and an apply
            # must not undo that (docs/design.md, lease protocol).
            enabled=self.config.is_primary(self.region),
            lifecycle=TerraformResourceLifecycle(ignore_changes=["enabled"]),
            depends_on=[self.role_policies["payment_processing"]],
        )

    def _outputs(self) -> None:
        for key, function in self.functions.items():
            TerraformOutput(self, f"{key}_function_name", value=function.function_name, description=f"{key} name")
            TerraformOutput(self, f"{key}_function_arn", value=function.arn, description=f"{key} ARN")
        TerraformOutput(self, "processing_queue_url", value=self.processing_queue.url, description="processing queue")
        TerraformOutput(self, "processing_dlq_url", value=self.processing_dlq.url, description="processing DLQ")
        TerraformOutput(self, "async_dlq_url", value=self.async_dlq.url, description="failed async invocations")
        TerraformOutput(self, "alert_topic_arn", value=self.alert_topic.arn, description="alert topic")
        TerraformOutput(self, "powertools_layer_arn", value=self.powertools_layer.arn, description="Powertools layer")
