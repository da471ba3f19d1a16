"""Read a synthesized ``cdktf.out``: stacks, resources, providers, manifest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Resource:
    """One resource of one stack, as synthesized."""

    stack: str
    type: str
    name: str
    body: dict[str, Any]

    @property
    def address(self) -> str:
        """``stack:type.name``, for failure messages."""
        return f"{self.stack}:{self.type}.{self.name}"


class Synthesized:
    """A synthesized app: ``stacks[name]`` is the parsed ``cdk.tf.json`` of a stack."""

    def __init__(self, outdir: Path) -> None:
        self.outdir = outdir
        self.manifest: dict[str, Any] = json.loads((outdir / "manifest.json").read_text())
        self.stacks: dict[str, dict[str, Any]] = {
            name: json.loads((outdir / stack["synthesizedStackPath"]).read_text())
            for name, stack in self.manifest["stacks"].items()
        }

    def stack_path(self, name: str) -> Path:
        """Path of a stack's ``cdk.tf.json``."""
        return self.outdir / self.manifest["stacks"][name]["synthesizedStackPath"]

    def resources(self, type_: str | None = None, stack: str | None = None) -> Iterator[Resource]:
        """Every resource (of one type, in one stack, when given)."""
        for stack_name, body in self.stacks.items():
            if stack is not None and stack_name != stack:
                continue
            for rtype, items in body.get("resource", {}).items():
                if type_ is not None and rtype != type_:
                    continue
                for name, rbody in items.items():
                    yield Resource(stack_name, rtype, name, rbody)

    def providers(self, stack: str) -> list[dict[str, Any]]:
        """The aws provider blocks of a stack."""
        return self.stacks[stack].get("provider", {}).get("aws", [])

    def provider_region(self, stack: str, resource: Resource) -> str:
        """Region of the provider that creates ``resource``."""
        alias = resource.body.get("provider", "aws").removeprefix("aws.")
        for provider in self.providers(stack):
            if provider.get("alias", "aws") == alias:
                return provider["region"]
        raise KeyError(f"{resource.address}: no provider {alias}")
