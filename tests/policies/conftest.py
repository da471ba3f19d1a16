"""One checkov run over every policy fixture (plus the trap fixtures), shared by the policy tests."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tools.scan import (
    CheckovRun,
    Finding,
    ProjectCheck,
    View,
    build_view,
    findings_of,
    load_project_checks,
    load_resource_types,
    run_checkov,
)

FIXTURES = Path(__file__).parent / "fixtures"
#: Fixtures that are not one policy's good/bad pair: inputs of the trap tests.
TRAPS = FIXTURES / "_traps"
#: A stack copied into the view untransformed, to show what checkov sees without the view.
RAW_STACK = "raw--tags_environment_region--good"
MALFORMED_STACK = "raw--malformed"


@dataclass
class FixtureScan:
    """The view of every fixture, checkov's run over it, and its findings."""

    view: View
    run: CheckovRun
    findings: list[Finding]

    def results(self, stack: str, check_ids: set[str]) -> dict[str, set[str]]:
        """``type.name -> {results}`` of the given checks in one fixture stack."""
        found: dict[str, set[str]] = {}
        for finding in self.findings:
            if finding.stack == stack and finding.check_id in check_ids:
                found.setdefault(finding.address.split(":", 1)[1], set()).add(finding.result)
        return found


def fixture_stacks() -> dict[str, Path]:
    """``<policy>--good|bad`` and ``_traps--<name>`` -> fixture file (the malformed one excluded)."""
    stacks = {
        f"{path.parent.parent.name}--{path.parent.name}": path
        for path in sorted(FIXTURES.glob("*/*/main.tf.json"))
        if path.parent.parent != TRAPS
    }
    for path in sorted(TRAPS.glob("*/main.tf.json")):
        if path.parent.name != "malformed":
            stacks[f"_traps--{path.parent.name}"] = path
    return stacks


@pytest.fixture(scope="session")
def project_checks() -> list[ProjectCheck]:
    return load_project_checks()


@pytest.fixture(scope="session")
def fixture_scan(tmp_path_factory: pytest.TempPathFactory) -> FixtureScan:
    tmp = tmp_path_factory.mktemp("policy-fixtures")
    view = build_view(fixture_stacks(), tmp / "view", load_resource_types())
    # Untransformed inputs in the same run: a raw stack (no merged tags, no scan facts) and a
    # malformed file, which checkov reports as a parsing error instead of failing.
    for stack, source in (
        (RAW_STACK, FIXTURES / "tags_environment_region" / "good" / "main.tf.json"),
        (MALFORMED_STACK, TRAPS / "malformed" / "main.tf.json"),
    ):
        target = view.root / stack / "cdk.tf.json"
        target.parent.mkdir(parents=True)
        shutil.copy(source, target)
        if stack == RAW_STACK:
            view.files[stack] = target
    run = run_checkov(view.root, tmp / "checkov")
    return FixtureScan(view, run, findings_of(run, view))
