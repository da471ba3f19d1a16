"""Witness layer (``witness-<witnessRegion>``): the third copy of the active-region lease.

One stack in a third region (neither primary nor secondary): a plain DynamoDB table (not a
global table, nothing replicates it) that holds only the ``lease`` item, and a KMS key of that
region that encrypts it. Both regions' failover orchestrators read and write it directly; a lease
write counts when it succeeded on two of three copies (own replica, peer replica, witness), so
a region that still reaches the witness stays active while the other region is down or cut off
(docs/design.md, "One active region: the lease protocol").

It depends on nothing; the compute stacks read its table and key ARNs through cdktf cross-stack
references, so it deploys before them (layer order: data, witness, compute) and is destroyed
after them.
"""

from __future__ import annotations

from cdktf import TerraformOutput
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.dynamodb_table import (
    DynamodbTable,
    DynamodbTableAttribute,
    DynamodbTablePointInTimeRecovery,
    DynamodbTableServerSideEncryption,
)
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from constructs import Construct

from layers.base import BackendSettings, LayerStack
from layers.config import Config
from layers.data import KEY_DELETION_WINDOW_DAYS, TableRef, table_key_statements
from layers.network import policy_document

#: Base name of the witness table (``payments-lease-witness-<suffix>``); its only key is ``pk``.
WITNESS_TABLE_BASE = "payments-lease-witness"
WITNESS_HASH_KEY = "pk"


def witness_key_policy(account_id: str) -> str:
    """Key policy of the witness key: the account root delegates to IAM; DynamoDB may describe it.

    The orchestrators' roles get only the actions they need on this key (compute layer).
    """
    return policy_document(*table_key_statements(account_id))


class WitnessStack(LayerStack):
    """The lease witness table and its key, in ``config.witness_region``."""

    def __init__(self, scope: Construct, *, config: Config, backend: BackendSettings) -> None:
        super().__init__(scope, layer="witness", region=config.witness_region, config=config, backend=backend)
        self.account_id = DataAwsCallerIdentity(self, "account").account_id
        self.key = KmsKey(
            self,
            "witness-key",
            description=f"Payments lease witness ({config.environment_suffix}): the third copy of the lease",
            enable_key_rotation=True,
            deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
            policy=witness_key_policy(self.account_id),
        )
        self.key_arn: str = self.key.arn
        self.key_alias_name: str = f"alias/{self.name(WITNESS_TABLE_BASE)}"
        KmsAlias(self, "witness-key-alias", name=self.key_alias_name, target_key_id=self.key.key_id)
        name = self.name(WITNESS_TABLE_BASE)
        table = DynamodbTable(
            self,
            "witness-table",
            name=name,
            billing_mode="PAY_PER_REQUEST",
            hash_key=WITNESS_HASH_KEY,
            attribute=[DynamodbTableAttribute(name=WITNESS_HASH_KEY, type="S")],
            point_in_time_recovery=DynamodbTablePointInTimeRecovery(enabled=True),
            server_side_encryption=DynamodbTableServerSideEncryption(enabled=True, kms_key_arn=self.key.arn),
            deletion_protection_enabled=False,
        )
        #: No stream: nothing consumes or replicates the witness.
        self.table = TableRef(name=name, arn=table.arn, stream_arn="")
        TerraformOutput(self, "witness_table_name", value=name, description="lease witness table name")
        TerraformOutput(self, "witness_table_arn", value=table.arn, description="lease witness table ARN")
        TerraformOutput(self, "witness_key_arn", value=self.key_arn, description="lease witness key")
