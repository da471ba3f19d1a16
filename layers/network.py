"""Network layer (``network-<region>``): the private VPC the payment Lambdas run in."""

from __future__ import annotations

from cdktf_cdktf_provider_aws.vpc import Vpc
from constructs import Construct

from layers.base import BackendSettings, LayerStack
from layers.config import Config


class NetworkStack(LayerStack):
    """VPC of one region; later layers read its ids through cross-stack references."""

    def __init__(self, scope: Construct, *, region: str, config: Config, backend: BackendSettings) -> None:
        super().__init__(scope, layer="network", region=region, config=config, backend=backend)
        self.vpc = Vpc(
            self,
            "vpc",
            cidr_block=config.vpc_cidrs[region],
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": self.name("payments-vpc")},
        )
