"""``python -m tools.drill --target deployed``: what it needs, and what makes it fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.synthesized import Synthesized
from tools import emulator
from tools.drill import __main__ as cli
from tools.drill import deployed
from tools.drill.synth import Topology
from tools.iam_coverage import Grant, RoleCoverage


def test_the_deployed_target_without_a_kept_deployment_says_what_to_run(
    synth: Synthesized, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(emulator, "remembered", lambda: None)
    with pytest.raises(SystemExit, match="make deploy-local KEEP=1"):
        cli.main(["--synth", str(synth.outdir), "--target", "deployed", "--only", "steady_state"])


def test_a_refused_call_and_an_unused_grant_are_both_reported(
    topology: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = "payment-validation-use1-dev"
    refused = {"principal": f"arn:aws:sts::1:assumed-role/{role}/s", "action": "sqs:SendMessage", "resource": "q"}
    unused = RoleCoverage(role, unused=[Grant(role, "dynamodb:GetItem", "t")])
    seen: dict[str, object] = {}

    def drill(endpoint: str, *_args: object) -> deployed.Outcome:
        seen["endpoint"] = endpoint
        return deployed.Outcome(runs=[], coverage=[unused], refused=[refused], decisions=[refused])

    monkeypatch.setattr(emulator, "remembered", lambda: {"port": 4999, "log": str(tmp_path / "emulator.log")})
    monkeypatch.setattr(deployed, "drill", drill)
    runs, problems = cli._deployed(topology, [], tmp_path)
    assert seen["endpoint"] == f"http://{emulator.HOST}:4999"
    assert runs == []
    assert problems == [
        f"refused: sqs:SendMessage on q to arn:aws:sts::1:assumed-role/{role}/s",
        f"unused grant: {role} dynamodb:GetItem on t",
    ]
