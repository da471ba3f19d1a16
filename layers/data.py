"""Data layer (``data-<region>``): multi-region KMS key and DynamoDB global tables."""

from __future__ import annotations

from constructs import Construct

from layers.base import BackendSettings, LayerStack
from layers.config import Config
from layers.network import NetworkStack


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
        super().__init__(scope, layer="data", region=region, config=config, backend=backend)
        self.network = network
        self.primary = primary
        self.add_dependency(network)
        if primary is not None:
            self.add_dependency(primary)
