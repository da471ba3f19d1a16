"""Each project policy passes its good fixture and fails its bad one, on every resource it covers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.policies.conftest import FIXTURES, FixtureScan
from tools.scan import POLICIES, ProjectCheck, ScanError, load_project_checks

POLICY_FILES = sorted(path.stem for path in POLICIES.glob("*.py") if not path.name.startswith("_"))


def covered(scan: FixtureScan, checks: list[ProjectCheck], stack: str) -> list[str]:
    """``type.name`` of every fixture entity the policy's checks cover."""
    return sorted(e.key for e in scan.view.entities if e.stack == stack and any(c.covers(e) for c in checks))


def policy_checks(project_checks: list[ProjectCheck], policy: str) -> list[ProjectCheck]:
    return [check for check in project_checks if check.file == f"{policy}.py"]


def test_there_is_one_policy_per_promised_rule(project_checks: list[ProjectCheck]) -> None:
    ids_per_file = {policy: {c.id for c in policy_checks(project_checks, policy)} for policy in POLICY_FILES}
    assert all(len(ids) == 1 for ids in ids_per_file.values()), ids_per_file
    assert len({next(iter(ids)) for ids in ids_per_file.values()}) == len(POLICY_FILES)
    assert len(POLICY_FILES) >= 13


@pytest.mark.parametrize("policy", POLICY_FILES)
def test_every_policy_has_a_good_and_a_bad_fixture(policy: str) -> None:
    for kind in ("good", "bad"):
        assert (FIXTURES / policy / kind / "main.tf.json").is_file(), f"add fixtures/{policy}/{kind}/main.tf.json"


@pytest.mark.parametrize("policy", POLICY_FILES)
def test_good_fixture_passes_on_every_resource_it_covers(
    policy: str, fixture_scan: FixtureScan, project_checks: list[ProjectCheck]
) -> None:
    checks = policy_checks(project_checks, policy)
    stack = f"{policy}--good"
    entities = covered(fixture_scan, checks, stack)
    assert entities, f"fixtures/{policy}/good holds nothing the policy covers"
    results = fixture_scan.results(stack, {c.id for c in checks})
    failing = {
        key: sorted(f.details)
        for f in fixture_scan.findings
        for key in [f.address.split(":", 1)[1]]
        if f.stack == stack and f.check_id in {c.id for c in checks} and f.result == "FAILED"
    }
    assert not failing, failing
    assert {key: results.get(key) for key in entities} == {key: {"PASSED"} for key in entities}


@pytest.mark.parametrize("policy", POLICY_FILES)
def test_bad_fixture_fails_on_every_resource_it_covers(
    policy: str, fixture_scan: FixtureScan, project_checks: list[ProjectCheck]
) -> None:
    checks = policy_checks(project_checks, policy)
    stack = f"{policy}--bad"
    entities = covered(fixture_scan, checks, stack)
    assert entities, f"fixtures/{policy}/bad holds nothing the policy covers"
    results = fixture_scan.results(stack, {c.id for c in checks})
    assert {key: results.get(key) for key in entities} == {key: {"FAILED"} for key in entities}
    for finding in fixture_scan.findings:
        if finding.stack == stack and finding.check_id in {c.id for c in checks}:
            assert finding.details, f"{finding.address}: a failure must say what is wrong"


def test_a_policy_without_a_reason_is_refused(tmp_path: Path) -> None:
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "unexplained.py").write_text(
        "from policies._shared import ProjectResourceCheck\n"
        "class Unexplained(ProjectResourceCheck):\n"
        "    def problems(self, conf, entity_type):\n"
        "        return []\n"
        "check = Unexplained(id='CKV_PDR_99', name='unexplained', why='', resources=('aws_sqs_queue',))\n"
    )
    with pytest.raises(ScanError, match="a name and a why"):
        load_project_checks(tmp_path)
