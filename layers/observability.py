"""Observability layer (``observability-<region>``): alerts, alarms, dashboards, failover."""

from __future__ import annotations

from constructs import Construct

from layers.base import BackendSettings, LayerStack
from layers.config import Config
from layers.edge import EdgeStack


class ObservabilityStack(LayerStack):
    """Alarms and alert topic of one region, and the failover orchestrator's wiring."""

    def __init__(
        self,
        scope: Construct,
        *,
        region: str,
        config: Config,
        backend: BackendSettings,
        edge: EdgeStack,
    ) -> None:
        super().__init__(scope, layer="observability", region=region, config=config, backend=backend)
        self.edge = edge
        self.add_dependency(edge)
