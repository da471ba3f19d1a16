"""CKV_PDR_6: nothing is retained or protected against destroy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from _shared import ProjectResourceCheck, blocks, is_true, value

#: Attributes that, anywhere in a resource (nested blocks too), block or skip its deletion when set.
PROTECTING_ATTRIBUTES: dict[str, str] = {
    "deletion_protection_enabled": "deletion protection makes `terraform destroy` fail",
    "enable_deletion_protection": "deletion protection makes `terraform destroy` fail",
    "deletion_protection": "deletion protection makes `terraform destroy` fail",
    "skip_destroy": "the resource is left behind (retained) on destroy",
    "retain_on_delete": "the resource is left behind (retained) on destroy",
    "object_lock_enabled": "object lock keeps objects, and so the bucket, past a destroy",
}
#: Values of those attributes that mean "protected" (Cognito uses ACTIVE, some services ENABLED).
PROTECTING_VALUES = (True, "ACTIVE", "ENABLED")
#: (type, attribute) that must be literally true for a destroy to succeed or leave nothing behind.
MUST_BE_TRUE: dict[tuple[str, str], str] = {
    ("aws_s3_bucket", "force_destroy"): "a bucket with objects (or versions) cannot be destroyed without it",
    ("aws_db_instance", "skip_final_snapshot"): "a final snapshot is retained after destroy",
    ("aws_rds_cluster", "skip_final_snapshot"): "a final snapshot is retained after destroy",
    ("aws_docdb_cluster", "skip_final_snapshot"): "a final snapshot is retained after destroy",
    ("aws_neptune_cluster", "skip_final_snapshot"): "a final snapshot is retained after destroy",
    ("aws_redshift_cluster", "skip_final_snapshot"): "a final snapshot is retained after destroy",
}
#: Resource types whose whole purpose is to retain data past a destroy.
RETAINING_TYPES: dict[str, str] = {
    "aws_s3_bucket_object_lock_configuration": "object lock retains objects past a destroy",
    "aws_backup_vault_lock_configuration": "a vault lock retains recovery points past a destroy",
    "aws_glacier_vault_lock": "a vault lock retains archives past a destroy",
}
#: Secrets Manager keeps a deleted secret (and its name) for this many days unless it is 0.
SECRET_RECOVERY = ("aws_secretsmanager_secret", "recovery_window_in_days")


def protecting(conf: Any, path: str = "") -> Iterator[str]:
    """Every protecting attribute set anywhere in ``conf``, as ``path=value: why``."""
    if isinstance(conf, list):
        for item in conf:
            yield from protecting(item, path)
        return
    if not isinstance(conf, dict):
        return
    for key, raw in conf.items():
        if key in ("//", "tags", "tags_all") or key.startswith("__"):
            continue
        where = f"{path}.{key}" if path else key
        if key in PROTECTING_ATTRIBUTES:
            setting = value(conf, key)
            if setting in PROTECTING_VALUES:
                yield f"{where}={setting!r}: {PROTECTING_ATTRIBUTES[key]}"
        elif isinstance(raw, list) and any(isinstance(item, dict | list) for item in raw):
            yield from protecting(raw, where)


class Destroyable(ProjectResourceCheck):
    """No deletion protection, ``prevent_destroy``, retain-on-delete, final snapshot or missing ``force_destroy``."""

    def __init__(self) -> None:
        super().__init__(
            id="CKV_PDR_6",
            name="Nothing is retained or protected against destroy",
            why=(
                "Every environment (a suffix) must come and go with `terraform destroy`: a protected or "
                "retained resource blocks the next deploy with the same names and keeps data nobody owns."
            ),
            resources=("aws_*",),
        )

    def problems(self, conf: dict[str, Any], entity_type: str) -> Iterator[str]:
        """Each setting that blocks or survives a destroy."""
        for lifecycle in blocks(conf, "lifecycle"):
            if is_true(value(lifecycle, "prevent_destroy")):
                yield "lifecycle.prevent_destroy=true: `terraform destroy` refuses to run"
        yield from protecting(conf)
        for (rtype, attribute), why in MUST_BE_TRUE.items():
            if entity_type == rtype and not is_true(value(conf, attribute)):
                yield f"{attribute} is not true: {why}"
        if entity_type in RETAINING_TYPES:
            yield RETAINING_TYPES[entity_type]
        if entity_type == SECRET_RECOVERY[0] and value(conf, SECRET_RECOVERY[1]) != 0:
            yield f"{SECRET_RECOVERY[1]} is not 0: the deleted secret and its name are kept for days"


check = Destroyable()
