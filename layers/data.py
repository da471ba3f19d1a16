"""Data layer (``data-<region>``): multi-region KMS key and DynamoDB global tables.

The primary region's stack owns the data: the multi-region key and the four tables
(:data:`TABLES`). The secondary region's stack holds copies that the primary's stack never
touches: a replica of the key and a replica of every table (``aws_dynamodb_table_replica``),
each replica encrypted with the replica key and with its own point-in-time recovery. The
secondary reads the primary's key and table ARNs through cdktf cross-stack references, so it
deploys after ``data-<primary>`` and is destroyed before it.

Replication is DynamoDB's own (global tables version 2019.11.21): nothing here writes to
two tables in one transaction, so nothing slows it down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdktf import TerraformOutput, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_dynamodb_table import DataAwsDynamodbTable
from cdktf_cdktf_provider_aws.dynamodb_table import (
    DynamodbTable,
    DynamodbTableAttribute,
    DynamodbTableGlobalSecondaryIndex,
    DynamodbTablePointInTimeRecovery,
    DynamodbTableServerSideEncryption,
    DynamodbTableTtl,
)
from cdktf_cdktf_provider_aws.dynamodb_table_replica import DynamodbTableReplicaA
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.kms_replica_key import KmsReplicaKey
from constructs import Construct

from layers.base import BackendSettings, LayerStack
from layers.config import Config
from layers.network import PARTITION, NetworkStack, policy_document

#: Days a deleted key waits before it is gone: the shortest AWS allows, so the stack is destroyable.
KEY_DELETION_WINDOW_DAYS = 7


@dataclass(frozen=True)
class TableRef:
    """One table as seen from one region: its name and this region's ARNs (strings or tokens)."""

    name: str
    arn: str
    stream_arn: str


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index with string keys, projecting every attribute."""

    name: str
    hash_key: str
    range_key: str


@dataclass(frozen=True)
class TableSpec:
    """Key schema of one table (all key attributes are strings) and its TTL attribute."""

    key: str
    base_name: str
    hash_key: str
    ttl_attribute: str
    indexes: tuple[IndexSpec, ...] = ()

    @property
    def key_attributes(self) -> list[str]:
        """Every attribute a key or index uses, each once, in order."""
        names = [self.hash_key] + [k for index in self.indexes for k in (index.hash_key, index.range_key)]
        return list(dict.fromkeys(names))


#: "List a merchant's payments by time": query merchant_id, sort by created_at (ISO-8601 UTC).
MERCHANT_INDEX = IndexSpec("merchant-created-index", hash_key="merchant_id", range_key="created_at")
#: "PENDING payments, oldest first" for the failover orchestrator's sweeper: sparse (payment_validation
#: sets ``pending_shard`` p0..p7, processing removes it when the payment is final).
PENDING_INDEX = IndexSpec("pending-index", hash_key="pending_shard", range_key="created_at")

#: The tables of docs/design.md, keyed as in ``DataStack.tables``.
TABLES: tuple[TableSpec, ...] = (
    # "Get a payment by id": GetItem on payment_id.
    TableSpec("transactions", "payments-transactions", "payment_id", "expires_at", (MERCHANT_INDEX, PENDING_INDEX)),
    # Powertools idempotency persistence layer: its default key and expiry attributes.
    TableSpec("idempotency", "payments-idempotency", "id", "expiration"),
    # The active-region lease, heartbeats, observations, health marks, failover records (pk = "lease", ...).
    TableSpec("control", "payments-control", "pk", "expires_at"),
    # Merchant API keys by key id (GetItem by the authorizer; written by tools/merchants.py).
    TableSpec("merchants", "payments-merchants", "key_id", "expires_at"),
)


def table_key_statements(account_id: str) -> list[dict[str, Any]]:
    """The statements every table key starts with: the root delegates to IAM; DynamoDB may describe it."""
    return [
        {
            "Sid": "AccountRootManagesKeyAndDelegatesToIam",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{PARTITION}:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            # DynamoDB checks the key's state and policy for tables and replicas encrypted with it.
            "Sid": "DynamoDBDescribesKey",
            "Effect": "Allow",
            "Principal": {"Service": "dynamodb.amazonaws.com"},
            "Action": ["kms:Describe*", "kms:Get*", "kms:List*"],
            "Resource": "*",
            # Only on behalf of this account's tables (the confused-deputy guard).
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        },
    ]


def data_key_policy(account_id: str, region: str, suffix: str) -> str:
    """Key policy of the data key in ``region`` (the primary key and its replica get one each).

    The account root delegates to IAM: the compute layer's roles get only the actions they need on
    this key. Services that act on their own (not through a caller's IAM role) are named, each
    limited to this account and to resources whose names end with ``-<suffix>``.
    """
    statements: list[dict[str, Any]] = [
        *table_key_statements(account_id),
        {
            # Lambda log groups (compute, observability) are encrypted with this key.
            "Sid": "CloudWatchLogsEncryptsThisDeploymentsLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": [
                        f"arn:{PARTITION}:logs:{region}:{account_id}:log-group:*-{suffix}",
                        # The edge's API Gateway execution log group: AWS fixes its name (no suffix).
                        f"arn:{PARTITION}:logs:{region}:{account_id}:log-group:API-Gateway-Execution-Logs_*/v1",
                    ]
                }
            },
        },
        {
            # Alarms publish to the alert topics, which are encrypted with this key.
            "Sid": "CloudWatchAlarmsPublishToEncryptedTopics",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account_id},
                "ArnLike": {"aws:SourceArn": f"arn:{PARTITION}:cloudwatch:{region}:{account_id}:alarm:*-{suffix}"},
            },
        },
    ]
    return policy_document(*statements)


class DataStack(LayerStack):
    """Data of one region. The primary's stack owns the tables; the secondary's holds the replicas."""

    def __init__(
        self,
        scope: Construct,
        *,
        region: str,
        config: Config,
        backend: BackendSettings,
        network: NetworkStack,
        primary: DataStack | None,
    ) -> None:
        if config.is_primary(region) != (primary is None):
            raise ValueError(f"data-{region}: the primary region's stack takes no primary, every other needs one")
        super().__init__(scope, layer="data", region=region, config=config, backend=backend)
        self.network = network
        self.primary = primary
        self.add_dependency(network)
        if primary is not None:
            self.add_dependency(primary)

        self.account_id = DataAwsCallerIdentity(self, "account").account_id
        policy = data_key_policy(self.account_id, region, config.environment_suffix)
        description = f"Payments data ({config.environment_suffix}): DynamoDB tables, queues, topics, logs"
        self.key_alias_name: str = f"alias/{self.name('payments')}"
        self.key: KmsKey | KmsReplicaKey
        if primary is None:
            self.key = KmsKey(
                self,
                "data-key",
                description=description,
                multi_region=True,
                enable_key_rotation=True,
                deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
                policy=policy,
            )
            self.tables: dict[str, TableRef] = {spec.key: self._table(spec) for spec in TABLES}
        else:
            # Rotation is a property of the multi-region key and applies to its replicas.
            self.key = KmsReplicaKey(
                self,
                "data-key",
                description=description,
                primary_key_arn=primary.key_arn,
                deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
                policy=policy,
            )
            self.tables = {spec.key: self._replica(spec, primary.tables[spec.key]) for spec in TABLES}
        self.key_arn: str = self.key.arn
        KmsAlias(self, "data-key-alias", name=self.key_alias_name, target_key_id=self.key.key_id)

        TerraformOutput(self, "key_arn", value=self.key_arn, description=f"data key in {region}")
        TerraformOutput(self, "key_alias_name", value=self.key_alias_name, description="data key alias")
        for key, ref in self.tables.items():
            TerraformOutput(self, f"{key}_table_name", value=ref.name, description=f"{key} table name")
            TerraformOutput(self, f"{key}_table_arn", value=ref.arn, description=f"{key} table ARN in {region}")
            TerraformOutput(self, f"{key}_stream_arn", value=ref.stream_arn, description=f"{key} stream in {region}")

    def _table(self, spec: TableSpec) -> TableRef:
        """The table in the primary region: on demand, PITR, streams, encrypted with the data key."""
        table = DynamodbTable(
            self,
            f"{spec.key}-table",
            name=self.name(spec.base_name),
            billing_mode="PAY_PER_REQUEST",
            hash_key=spec.hash_key,
            attribute=[DynamodbTableAttribute(name=name, type="S") for name in spec.key_attributes],
            global_secondary_index=[
                DynamodbTableGlobalSecondaryIndex(
                    name=index.name, hash_key=index.hash_key, range_key=index.range_key, projection_type="ALL"
                )
                for index in spec.indexes
            ]
            or None,
            ttl=DynamodbTableTtl(attribute_name=spec.ttl_attribute, enabled=True),
            point_in_time_recovery=DynamodbTablePointInTimeRecovery(enabled=True),
            server_side_encryption=DynamodbTableServerSideEncryption(enabled=True, kms_key_arn=self.key.arn),
            # Global tables replicate through the stream; consumers get both images.
            stream_enabled=True,
            stream_view_type="NEW_AND_OLD_IMAGES",
            deletion_protection_enabled=False,
            # Replicas are aws_dynamodb_table_replica resources of the other regions' stacks: without
            # this, a plan of this stack would remove them.
            lifecycle=TerraformResourceLifecycle(ignore_changes=["replica"]),
        )
        return TableRef(name=self.name(spec.base_name), arn=table.arn, stream_arn=table.stream_arn)

    def _replica(self, spec: TableSpec, primary: TableRef) -> TableRef:
        """The table's replica in this region: the replica key, its own PITR, its own stream."""
        replica = DynamodbTableReplicaA(
            self,
            f"{spec.key}-replica",
            global_table_arn=primary.arn,
            kms_key_arn=self.key.arn,
            point_in_time_recovery=True,
            deletion_protection_enabled=False,
        )
        # The replica resource has no stream attribute: read the replica table in this region.
        # depends_on makes Terraform read it only once the replica exists.
        table = DataAwsDynamodbTable(self, f"{spec.key}-replica-table", name=primary.name, depends_on=[replica])
        return TableRef(name=primary.name, arn=replica.arn, stream_arn=table.stream_arn)
