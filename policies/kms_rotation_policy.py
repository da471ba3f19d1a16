"""CKV_PDR_10: every KMS key rotates and has an explicit key policy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from _shared import ProjectResourceCheck, is_true, value


class KmsRotationPolicy(ProjectResourceCheck):
    """``enable_key_rotation`` and ``policy`` on keys; ``policy`` on replica keys (rotation follows the primary)."""

    def __init__(self) -> None:
        super().__init__(
            id="CKV_PDR_10",
            name="Every KMS key has rotation enabled and a key policy; every replica key a key policy",
            why=(
                "Rotation limits what one leaked key version can decrypt; an explicit key policy states "
                "who may use the key instead of leaving it to the account default."
            ),
            resources=("aws_kms_key", "aws_kms_replica_key"),
        )

    def problems(self, conf: dict[str, Any], entity_type: str) -> Iterator[str]:
        """No rotation (primary keys) or no key policy."""
        if entity_type == "aws_kms_key" and not is_true(value(conf, "enable_key_rotation")):
            yield "enable_key_rotation is not true"
        if not value(conf, "policy"):
            yield "no key policy"


check = KmsRotationPolicy()
