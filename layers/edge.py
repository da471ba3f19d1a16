"""Edge layer: the hosted zone (``edge-global``) and per-region APIs, health checks and failover records."""

from __future__ import annotations

from constructs import Construct

from layers.base import BackendSettings, LayerStack
from layers.compute import ComputeStack
from layers.config import Config


class EdgeGlobalStack(LayerStack):
    """What is global at the edge: the Route 53 hosted zone of this deployment."""

    def __init__(self, scope: Construct, *, config: Config, backend: BackendSettings) -> None:
        super().__init__(scope, layer="edge", region=None, config=config, backend=backend)


class EdgeStack(LayerStack):
    """API, custom domain, health check and failover record of one region."""

    def __init__(
        self,
        scope: Construct,
        *,
        region: str,
        config: Config,
        backend: BackendSettings,
        compute: ComputeStack,
        zone: EdgeGlobalStack,
    ) -> None:
        super().__init__(scope, layer="edge", region=region, config=config, backend=backend)
        self.compute = compute
        self.zone = zone
        self.add_dependency(compute)
        self.add_dependency(zone)
