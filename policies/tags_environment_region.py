"""CKV_PDR_1: every taggable resource carries Environment and Region, and Region is where its provider creates it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from _shared import NOT_A_SCAN_VIEW, ProjectResourceCheck, resource_types, scan_facts, tags


class TagsEnvironmentRegion(ProjectResourceCheck):
    """Tags ``Environment`` and ``Region`` as deployed (provider default tags merged with the resource's)."""

    def __init__(self) -> None:
        super().__init__(
            id="CKV_PDR_1",
            name="Every taggable resource is tagged Environment and Region, Region being its provider's region",
            why=(
                "During a regional incident responders filter cost, alarms and inventory by Region and "
                "Environment; a resource tagged with the wrong region is missed or, worse, acted on."
            ),
            resources=sorted(resource_types().taggable),
        )

    def problems(self, conf: dict[str, Any], entity_type: str) -> Iterator[str]:
        """Missing tags, or a Region tag that is not the provider's region."""
        facts = scan_facts(conf)
        if facts is None:
            yield NOT_A_SCAN_VIEW
            return
        deployed = tags(conf)
        if not isinstance(deployed, dict):
            yield f"tags are an expression the scan cannot read: {deployed!r}"
            return
        environment = deployed.get("Environment")
        if not environment:
            yield "no Environment tag (set it in the provider's default_tags)"
        elif facts.get("environment") and environment != facts["environment"]:
            yield f"Environment tag {environment!r} differs from the deployment's {facts['environment']!r}"
        region = deployed.get("Region")
        if not region:
            yield "no Region tag (set it in the provider's default_tags)"
        elif region != facts.get("region"):
            yield (
                f"Region tag {region!r} but its provider {facts.get('provider')} creates it in {facts.get('region')!r}"
            )


check = TagsEnvironmentRegion()
