"""main.py as a user runs it: bad config exits non-zero with one message and writes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from layers.config import REPO_ROOT


def run_main(outdir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "CDKTF_OUTDIR": str(outdir), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", **env}
    return subprocess.run(
        [sys.executable, "main.py"], cwd=REPO_ROOT, env=environ, capture_output=True, text=True, timeout=300
    )


def test_bad_config_exits_nonzero_with_one_clear_error_and_no_output(tmp_path: Path) -> None:
    outdir = tmp_path / "cdktf.out"
    done = run_main(outdir, ENVIRONMENT_SUFFIX="Bad_Suffix")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: invalid config ENVIRONMENT_SUFFIX='Bad_Suffix': use lowercase letters, digits and '-', "
        "starting and ending with a letter or digit"
    ]
    assert not outdir.exists()
    assert list(tmp_path.iterdir()) == []


def test_bad_config_leaves_an_earlier_synth_untouched(tmp_path: Path) -> None:
    outdir = tmp_path / "cdktf.out"
    outdir.mkdir()
    (outdir / "manifest.json").write_text("{}")
    done = run_main(outdir, SECONDARY_REGION="us-east-1")
    assert done.returncode == 2
    assert "SECONDARY_REGION" in done.stderr
    assert (outdir / "manifest.json").read_text() == "{}"


def test_a_witness_region_equal_to_a_serving_region_exits_2_with_one_line(tmp_path: Path) -> None:
    outdir = tmp_path / "cdktf.out"
    done = run_main(outdir, WITNESS_REGION="us-east-2")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: invalid config WITNESS_REGION='us-east-2': must differ from the primary and the secondary region "
        "(the witness is the third copy of the lease)"
    ]
    assert not outdir.exists()
