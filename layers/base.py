"""The shared base of every layer: names, tags, provider and remote state.

A stack is named ``<layer>-<region>`` (or ``<layer>-global``), so anyone can tell
from a name what a change can touch. Every stack gets one AWS provider per region
it writes to, each with ``default_tags`` carrying that provider's own region, and
an S3 backend whose key is unique per suffix and stack.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdktf import LocalBackend, S3Backend, TerraformStack
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from constructs import Construct

from layers.config import BOOTSTRAP, BUCKET_NAME_LIMIT, REGION_CODES, REPO_ROOT, Config, ConfigError

PROJECT = "payments-dr"
BACKEND_JSON = REPO_ROOT / "backend.tf.json"
#: ``STATE_BACKEND=replica`` synthesizes every stack (backends and cross-stack reads) against the
#: state replica in the secondary region: the break-glass while the primary region is down.
STATE_BACKEND_VARIABLE = "STATE_BACKEND"


def resource_name(base: str, suffix: str) -> str:
    """The one naming rule: ``<base>-<environment_suffix>``."""
    return f"{base}-{suffix}"


def stack_name(layer: str, region: str | None) -> str:
    """``<layer>-<region>``, ``<layer>-global`` for what is inherently global, or ``bootstrap``."""
    if layer == BOOTSTRAP:
        return BOOTSTRAP
    return f"{layer}-{region or 'global'}"


def layer_tags(config: Config, layer: str, region: str) -> dict[str, str]:
    """Tags every resource carries; ``Region`` is the region of the provider that creates it."""
    return {
        "Environment": config.environment_suffix,
        "Region": region,
        "Project": PROJECT,
        "Layer": layer,
        "ManagedBy": "cdktf",
    }


@dataclass(frozen=True)
class BackendSettings:
    """Remote state settings from ``backend.tf.json``; bucket and table get the suffix appended."""

    bucket: str
    region: str
    dynamodb_table: str
    encrypt: bool
    key_prefix: str
    #: Set on the break-glass settings (:meth:`replica`): the normal settings, which bootstrap keeps.
    primary: BackendSettings | None = None

    @classmethod
    def load(cls, path: Path = BACKEND_JSON) -> BackendSettings:
        """Read and check ``backend.tf.json``."""
        raw: dict[str, Any] = json.loads(path.read_text())
        missing = {"bucket", "region", "dynamodb_table", "encrypt", "key_prefix"} - raw.keys()
        if missing:
            raise ValueError(f"{path.name} is missing {', '.join(sorted(missing))}")
        if raw["encrypt"] is not True:
            raise ValueError(f"{path.name}: encrypt must be true, state holds secrets")
        return cls(**{k: raw[k] for k in ("bucket", "region", "dynamodb_table", "encrypt", "key_prefix")})

    def replica(self, region: str) -> BackendSettings:
        """Break-glass settings: the state replica and its lock table in ``region`` (the secondary)."""
        return dataclasses.replace(
            self,
            bucket=f"{self.bucket}-replica",
            dynamodb_table=f"{self.dynamodb_table}-replica",
            region=region,
            primary=self,
        )

    def bucket_name(self, suffix: str) -> str:
        """State bucket of one suffix."""
        return resource_name(self.bucket, suffix)

    def check_names(self, suffix: str) -> None:
        """Raise :class:`ConfigError` when a state bucket name of ``suffix`` breaks S3's rules."""
        for name in (self.bucket_name(suffix), self.replica_bucket_name(suffix)):
            if len(name) > BUCKET_NAME_LIMIT:
                raise ConfigError(
                    f"{BACKEND_JSON.name} bucket",
                    self.bucket,
                    f"the state bucket {name} is {len(name)} characters, S3 allows {BUCKET_NAME_LIMIT}",
                )

    def replica_table_name(self, suffix: str) -> str:
        """The lock table of the break-glass backend, in the secondary region."""
        return resource_name(f"{self.dynamodb_table}-replica", suffix)

    def replica_bucket_name(self, suffix: str) -> str:
        """The state bucket's replica in the secondary region (break-glass backend)."""
        return resource_name(f"{self.bucket}-replica", suffix)

    def table_name(self, suffix: str) -> str:
        """Lock table of one suffix."""
        return resource_name(self.dynamodb_table, suffix)

    def state_key(self, suffix: str, stack: str) -> str:
        """``<prefix>/<suffix>/<stack>.tfstate``: never shared by two suffixes or two stacks."""
        return f"{self.key_prefix}/{suffix}/{stack}.tfstate"


class LayerStack(TerraformStack):
    """A stack of one layer in one region, with provider, default tags and S3 backend."""

    def __init__(
        self,
        scope: Construct,
        *,
        layer: str,
        region: str | None,
        config: Config,
        backend: BackendSettings | None,
    ) -> None:
        self.layer = layer
        self.region = region or config.primary_region
        self.config = config
        self.stack_id = stack_name(layer, region)
        super().__init__(scope, self.stack_id)
        self.provider = self.add_provider(self.region, alias=None)
        if backend is None:
            # Only the bootstrap stack keeps local state: it creates the remote one.
            LocalBackend(self, path=f"../../../.state/{self.stack_id}-{config.environment_suffix}.tfstate")
        else:
            S3Backend(
                self,
                bucket=backend.bucket_name(config.environment_suffix),
                key=backend.state_key(config.environment_suffix, self.stack_id),
                region=backend.region,
                dynamodb_table=backend.table_name(config.environment_suffix),
                encrypt=backend.encrypt,
            )

    def add_provider(self, region: str, alias: str | None) -> AwsProvider:
        """An AWS provider for ``region`` whose default tags name that region."""
        return AwsProvider(
            self,
            f"aws-{alias}" if alias else "aws",
            region=region,
            alias=alias,
            default_tags=[AwsProviderDefaultTags(tags=layer_tags(self.config, self.layer, region))],
        )

    def name(self, base: str) -> str:
        """A resource name of this deployment: ``<base>-<suffix>``."""
        return resource_name(base, self.config.environment_suffix)

    def regional_name(self, base: str) -> str:
        """A name for global resources (IAM) that must differ per region: ``<base>-<regioncode>-<suffix>``."""
        return self.name(f"{base}-{REGION_CODES[self.region]}")
