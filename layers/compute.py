"""Compute layer (``compute-<region>``): payment Lambdas, queues and their IAM."""

from __future__ import annotations

from constructs import Construct

from layers.base import BackendSettings, LayerStack
from layers.config import Config
from layers.data import DataStack
from layers.network import NetworkStack


class ComputeStack(LayerStack):
    """Functions and queues of one region."""

    def __init__(
        self,
        scope: Construct,
        *,
        region: str,
        config: Config,
        backend: BackendSettings,
        network: NetworkStack,
        data: DataStack,
    ) -> None:
        super().__init__(scope, layer="compute", region=region, config=config, backend=backend)
        self.network = network
        self.data = data
        self.add_dependency(network)
        self.add_dependency(data)
