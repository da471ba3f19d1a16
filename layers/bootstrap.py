"""Bootstrap: the S3 state bucket and DynamoDB lock table every other stack uses, and their replicas.

This one stack keeps local state (it creates the remote state). Deploy it once per
suffix, before anything else: ``make bootstrap``.

The state bucket replicates (S3 replication, every version and delete marker) into a bucket in
the secondary region, encrypted with a key of that region, next to a lock table of its own: while
the primary region is down an operator can still plan and apply with ``-backend-config`` pointing
at them (README, "Remote state", break-glass).
"""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.dynamodb_table import (
    DynamodbTable,
    DynamodbTableAttribute,
    DynamodbTablePointInTimeRecovery,
    DynamodbTableServerSideEncryption,
)
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_replication_configuration import (
    S3BucketReplicationConfigurationA,
    S3BucketReplicationConfigurationRule,
    S3BucketReplicationConfigurationRuleDeleteMarkerReplication,
    S3BucketReplicationConfigurationRuleDestination,
    S3BucketReplicationConfigurationRuleDestinationEncryptionConfiguration,
    S3BucketReplicationConfigurationRuleFilter,
    S3BucketReplicationConfigurationRuleSourceSelectionCriteria,
    S3BucketReplicationConfigurationRuleSourceSelectionCriteriaSseKmsEncryptedObjects,
)
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import (
    S3BucketVersioningA,
    S3BucketVersioningVersioningConfiguration,
)
from constructs import Construct

from layers.base import BackendSettings, LayerStack
from layers.config import BOOTSTRAP, Config
from layers.network import PARTITION, policy_document, service_trust_policy


class BootstrapStack(LayerStack):
    """State bucket (versioned, KMS-encrypted, private, TLS only), lock table, and both again in the secondary."""

    def __init__(self, scope: Construct, *, config: Config, backend: BackendSettings) -> None:
        super().__init__(scope, layer=BOOTSTRAP, region=None, config=config, backend=None)
        suffix = config.environment_suffix
        account = DataAwsCallerIdentity(self, "account")
        self.root = f"arn:{PARTITION}:iam::{account.account_id}:root"
        self.replica_region = config.secondary_region
        replica = self.add_provider(self.replica_region, alias="replica")
        self.versionings: list[S3BucketVersioningA] = []

        self.state_key = self._key("state-key", "terraform-state", provider=None)
        self.bucket = self._bucket("state-bucket", backend.bucket_name(suffix), self.state_key, provider=None)
        self.lock_table = self._lock_table("lock-table", backend.table_name(suffix), self.state_key, provider=None)

        self.replica_key = self._key("state-replica-key", "terraform-state-replica", provider=replica)
        self.replica_bucket = self._bucket(
            "state-replica-bucket", backend.replica_bucket_name(suffix), self.replica_key, provider=replica
        )
        self.replica_lock_table = self._lock_table(
            "replica-lock-table", backend.replica_table_name(suffix), self.replica_key, provider=replica
        )
        self._replication()

    # --- building blocks -------------------------------------------------------------------------

    def _key(self, id_: str, base: str, *, provider: AwsProvider | None) -> KmsKey:
        """A state key (rotated, destroyable) with its alias; the account root manages it."""
        key = KmsKey(
            self,
            id_,
            description=self.name(base),
            enable_key_rotation=True,
            deletion_window_in_days=7,
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "AccountRootManagesKey",
                            "Effect": "Allow",
                            "Principal": {"AWS": self.root},
                            "Action": "kms:*",
                            "Resource": "*",
                        }
                    ],
                }
            ),
            provider=provider,
        )
        KmsAlias(self, f"{id_}-alias", name=f"alias/{self.name(base)}", target_key_id=key.key_id, provider=provider)
        return key

    def _bucket(self, id_: str, name: str, key: KmsKey, *, provider: AwsProvider | None) -> S3Bucket:
        """A state bucket: versioned, KMS with ``key``, old versions kept 90 days, private, TLS only."""
        bucket = S3Bucket(self, id_, bucket=name, force_destroy=True, provider=provider)
        versioning = S3BucketVersioningA(
            self,
            f"{id_}-versioning",
            bucket=bucket.id,
            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"),
            provider=provider,
        )
        self.versionings.append(versioning)
        S3BucketServerSideEncryptionConfigurationA(
            self,
            f"{id_}-encryption",
            bucket=bucket.id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                        sse_algorithm="aws:kms", kms_master_key_id=key.arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
            provider=provider,
        )
        # Old state versions are kept 90 days (enough to roll back a bad apply), then expire.
        S3BucketLifecycleConfiguration(
            self,
            f"{id_}-lifecycle",
            bucket=bucket.id,
            rule=[
                S3BucketLifecycleConfigurationRule(
                    id="expire-old-state-versions",
                    status="Enabled",
                    filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                    noncurrent_version_expiration=[
                        S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(noncurrent_days=90)
                    ],
                    abort_incomplete_multipart_upload=[
                        S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(days_after_initiation=7)
                    ],
                )
            ],
            provider=provider,
        )
        S3BucketPublicAccessBlock(
            self,
            f"{id_}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            provider=provider,
        )
        S3BucketPolicy(
            self,
            f"{id_}-tls-only",
            bucket=bucket.id,
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [bucket.arn, f"{bucket.arn}/*"],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ],
                }
            ),
            provider=provider,
        )
        return bucket

    def _lock_table(self, id_: str, name: str, key: KmsKey, *, provider: AwsProvider | None) -> DynamodbTable:
        """A lock table (``LockID``), on demand, recoverable, encrypted with ``key``."""
        return DynamodbTable(
            self,
            id_,
            name=name,
            billing_mode="PAY_PER_REQUEST",
            hash_key="LockID",
            attribute=[DynamodbTableAttribute(name="LockID", type="S")],
            point_in_time_recovery=DynamodbTablePointInTimeRecovery(enabled=True),
            server_side_encryption=DynamodbTableServerSideEncryption(enabled=True, kms_key_arn=key.arn),
            deletion_protection_enabled=False,
            provider=provider,
        )

    def _replication(self) -> None:
        """Every state version and delete marker into the replica bucket, re-encrypted with the replica key."""
        source, target = self.bucket.arn, self.replica_bucket.arn
        role = IamRole(
            self,
            "state-replication-role",
            name=self.name("tfstate-replication"),
            description="S3 replicates the Terraform state into the secondary region",
            assume_role_policy=service_trust_policy("s3.amazonaws.com", self.root.split(":")[4]),
        )
        policy = IamRolePolicy(
            self,
            "state-replication-policy",
            name=self.name("tfstate-replication"),
            role=role.id,
            policy=policy_document(
                {
                    "Sid": "ReadSourceConfiguration",
                    "Effect": "Allow",
                    "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                    "Resource": [source],
                },
                {
                    "Sid": "ReadSourceVersions",
                    "Effect": "Allow",
                    "Action": [
                        "s3:GetObjectVersionForReplication",
                        "s3:GetObjectVersionAcl",
                        "s3:GetObjectVersionTagging",
                    ],
                    "Resource": [f"{source}/*"],
                },
                {
                    "Sid": "WriteReplicas",
                    "Effect": "Allow",
                    "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                    "Resource": [f"{target}/*"],
                },
                {
                    "Sid": "DecryptSource",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt"],
                    "Resource": [self.state_key.arn],
                },
                {
                    "Sid": "EncryptReplica",
                    "Effect": "Allow",
                    "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
                    "Resource": [self.replica_key.arn],
                },
            ),
        )
        S3BucketReplicationConfigurationA(
            self,
            "state-replication",
            bucket=self.bucket.id,
            role=role.arn,
            rule=[
                S3BucketReplicationConfigurationRule(
                    id="state-to-secondary",
                    status="Enabled",
                    filter=S3BucketReplicationConfigurationRuleFilter(prefix=""),
                    delete_marker_replication=S3BucketReplicationConfigurationRuleDeleteMarkerReplication(
                        status="Enabled"
                    ),
                    # The state objects are SSE-KMS: replicate them, re-encrypted with the replica key.
                    source_selection_criteria=S3BucketReplicationConfigurationRuleSourceSelectionCriteria(
                        sse_kms_encrypted_objects=S3BucketReplicationConfigurationRuleSourceSelectionCriteriaSseKmsEncryptedObjects(
                            status="Enabled"
                        )
                    ),
                    destination=S3BucketReplicationConfigurationRuleDestination(
                        bucket=target,
                        storage_class="STANDARD",
                        encryption_configuration=S3BucketReplicationConfigurationRuleDestinationEncryptionConfiguration(
                            replica_kms_key_id=self.replica_key.arn
                        ),
                    ),
                )
            ],
            # Replication needs versioning on both buckets, and the role's grants.
            depends_on=[policy, *self.versionings],
        )
