"""Bootstrap: the state bucket replicates into the secondary region, next to a lock table of its own."""

from __future__ import annotations

import json
from typing import Any

from layers.base import BackendSettings
from layers.config import BOOTSTRAP, load_config
from tests.synthesized import Synthesized

CONFIG = load_config(environ={})
BACKEND = BackendSettings.load()
SUFFIX = CONFIG.environment_suffix


def resources(synth: Synthesized, type_: str) -> dict[str, dict[str, Any]]:
    return {r.name: r.body for r in synth.resources(type_, stack=BOOTSTRAP)}


def test_the_replica_bucket_and_lock_table_live_in_the_secondary_region(synth: Synthesized) -> None:
    [replica_provider] = [p for p in synth.providers(BOOTSTRAP) if p.get("alias") == "replica"]
    assert replica_provider["region"] == CONFIG.secondary_region
    buckets = resources(synth, "aws_s3_bucket")
    replica = buckets["state-replica-bucket"]
    assert replica["bucket"] == BACKEND.replica_bucket_name(SUFFIX)
    assert replica["provider"] == "aws.replica"
    tables = resources(synth, "aws_dynamodb_table")
    assert tables["replica-lock-table"]["name"] == BACKEND.replica_table_name(SUFFIX)
    assert tables["replica-lock-table"]["provider"] == "aws.replica"
    assert tables["replica-lock-table"]["hash_key"] == "LockID"
    assert (
        tables["replica-lock-table"]["server_side_encryption"]["kms_key_arn"] == "${aws_kms_key.state-replica-key.arn}"
    )


def test_the_replica_bucket_is_versioned_encrypted_with_its_regions_key_private_and_tls_only(
    synth: Synthesized,
) -> None:
    def of_bucket(type_: str) -> dict[str, Any]:
        [body] = [
            b for b in resources(synth, type_).values() if b["bucket"] == "${aws_s3_bucket.state-replica-bucket.id}"
        ]
        return body

    assert of_bucket("aws_s3_bucket_versioning")["versioning_configuration"]["status"] == "Enabled"
    [rule] = of_bucket("aws_s3_bucket_server_side_encryption_configuration")["rule"]
    default = rule["apply_server_side_encryption_by_default"]
    assert (default["sse_algorithm"], default["kms_master_key_id"]) == (
        "aws:kms",
        "${aws_kms_key.state-replica-key.arn}",
    )
    assert resources(synth, "aws_kms_key")["state-replica-key"]["provider"] == "aws.replica"
    assert resources(synth, "aws_kms_key")["state-replica-key"]["enable_key_rotation"] is True
    block = of_bucket("aws_s3_bucket_public_access_block")
    assert all(block[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls"))
    assert "aws:SecureTransport" in of_bucket("aws_s3_bucket_policy")["policy"]


def test_every_state_version_and_delete_marker_replicates_reencrypted(synth: Synthesized) -> None:
    [replication] = resources(synth, "aws_s3_bucket_replication_configuration").values()
    assert replication["bucket"] == "${aws_s3_bucket.state-bucket.id}"
    [rule] = replication["rule"]
    assert rule["status"] == "Enabled"
    assert rule["filter"] == {"prefix": ""}
    assert rule["delete_marker_replication"] == {"status": "Enabled"}
    # State objects are SSE-KMS: without this S3 silently skips them.
    assert rule["source_selection_criteria"]["sse_kms_encrypted_objects"] == {"status": "Enabled"}
    destination = rule["destination"]
    assert destination["bucket"] == "${aws_s3_bucket.state-replica-bucket.arn}"
    assert destination["encryption_configuration"]["replica_kms_key_id"] == "${aws_kms_key.state-replica-key.arn}"
    versionings = {f"aws_s3_bucket_versioning.{name}" for name in resources(synth, "aws_s3_bucket_versioning")}
    assert len(versionings) == 2
    assert versionings <= set(replication["depends_on"]), "replication needs versioning on both sides first"


def test_the_replication_role_may_only_replicate_the_state(synth: Synthesized) -> None:
    [role] = resources(synth, "aws_iam_role").values()
    trust = json.loads(role["assume_role_policy"])["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "s3.amazonaws.com"}]
    [policy] = resources(synth, "aws_iam_role_policy").values()
    grants = {
        (action, resource)
        for statement in json.loads(policy["policy"])["Statement"]
        for action in statement["Action"]
        for resource in statement["Resource"]
    }
    source, target = "${aws_s3_bucket.state-bucket.arn}", "${aws_s3_bucket.state-replica-bucket.arn}"
    assert grants == {
        ("s3:GetReplicationConfiguration", source),
        ("s3:ListBucket", source),
        ("s3:GetObjectVersionForReplication", f"{source}/*"),
        ("s3:GetObjectVersionAcl", f"{source}/*"),
        ("s3:GetObjectVersionTagging", f"{source}/*"),
        ("s3:ReplicateObject", f"{target}/*"),
        ("s3:ReplicateDelete", f"{target}/*"),
        ("s3:ReplicateTags", f"{target}/*"),
        ("kms:Decrypt", "${aws_kms_key.state-key.arn}"),
        ("kms:Encrypt", "${aws_kms_key.state-replica-key.arn}"),
        ("kms:GenerateDataKey", "${aws_kms_key.state-replica-key.arn}"),
    }


def test_break_glass_synth_points_every_backend_and_cross_stack_read_at_the_replica(tmp_path) -> None:
    from tests.conftest import synthesize

    glass = synthesize(tmp_path / "cdktf.out", state_backend="replica")
    replica = BACKEND.replica(CONFIG.secondary_region)
    for name, stack in glass.stacks.items():
        if name == BOOTSTRAP:
            # Bootstrap still describes the normal bucket and its replica.
            buckets = {r.body["bucket"] for r in glass.resources("aws_s3_bucket", stack=BOOTSTRAP)}
            assert buckets == {BACKEND.bucket_name(SUFFIX), BACKEND.replica_bucket_name(SUFFIX)}
            continue
        [s3] = stack["terraform"]["backend"].values()
        assert (s3["bucket"], s3["region"], s3["dynamodb_table"]) == (
            BACKEND.replica_bucket_name(SUFFIX),
            CONFIG.secondary_region,
            BACKEND.replica_table_name(SUFFIX),
        )
        for remote in stack.get("data", {}).get("terraform_remote_state", {}).values():
            assert remote["config"]["bucket"] == replica.bucket_name(SUFFIX) == BACKEND.replica_bucket_name(SUFFIX)
            assert remote["config"]["region"] == CONFIG.secondary_region
