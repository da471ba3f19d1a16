"""terraform runner: mirror discovery, CLI config, deploy order, and `terraform validate` of every stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.synthesized import Synthesized
from tools.terraform import AWS_PROVIDER, TerraformError, cli_config_text, find_mirror, stacks_in_order


def test_explicit_mirror_is_used(tmp_path: Path) -> None:
    (tmp_path / AWS_PROVIDER).mkdir(parents=True)
    assert find_mirror({"TF_PLUGIN_MIRROR": str(tmp_path)}) == tmp_path


def test_explicit_mirror_without_aws_provider_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TerraformError, match=r"holds no registry\.terraform\.io/hashicorp/aws"):
        find_mirror({"TF_PLUGIN_MIRROR": str(tmp_path)})


def test_cli_config_limits_the_mirror_to_the_aws_provider(tmp_path: Path) -> None:
    text = cli_config_text(tmp_path)
    assert f'path    = "{tmp_path}"' in text
    assert f'include = ["{AWS_PROVIDER}"]' in text
    assert f'exclude = ["{AWS_PROVIDER}"]' in text


def test_without_mirror_the_registry_is_used() -> None:
    assert "filesystem_mirror" not in cli_config_text(None)


def write_manifest(outdir: Path, deps: dict[str, list[str]]) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    manifest = {"stacks": {name: {"dependencies": d} for name, d in deps.items()}}
    (outdir / "manifest.json").write_text(json.dumps(manifest))


def test_stacks_are_ordered_by_layer_then_primary_region(tmp_path: Path) -> None:
    write_manifest(
        tmp_path,
        {
            "compute-us-east-2": ["network-us-east-2"],
            "network-us-east-2": [],
            "network-us-east-1": [],
            "edge-global": [],
            "bootstrap": [],
        },
    )
    assert stacks_in_order(tmp_path, regions=["us-east-1", "us-east-2"]) == [
        "bootstrap",
        "network-us-east-1",
        "network-us-east-2",
        "compute-us-east-2",
        "edge-global",
    ]


def test_a_dependency_on_a_later_layer_is_refused(tmp_path: Path) -> None:
    write_manifest(tmp_path, {"network-us-east-1": ["compute-us-east-1"], "compute-us-east-1": []})
    with pytest.raises(TerraformError, match="network-us-east-1 depends on compute-us-east-1"):
        stacks_in_order(tmp_path, regions=["us-east-1", "us-east-2"])


def test_terraform_validate_passes_for_every_stack(synth: Synthesized, validated: dict[str, dict]) -> None:
    assert set(validated) == set(synth.stacks)
    for name, result in validated.items():
        assert result["valid"], f"{name}: {result['diagnostics']}"
        assert result["error_count"] == 0, name
