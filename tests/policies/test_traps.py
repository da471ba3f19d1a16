"""Each way a checkov scan can pass on nothing, caught: framework, malformed JSON, __init__.py, tags, stacks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.policies.conftest import FIXTURES, MALFORMED_STACK, RAW_STACK, TRAPS, FixtureScan
from tools.scan import (
    POLICIES,
    ScanError,
    build_view,
    checkov_command,
    evaluate,
    findings_of,
    load_project_checks,
    load_resource_types,
    run_checkov,
)

ONE_FIXTURE = {"tags--good": FIXTURES / "tags_environment_region" / "good" / "main.tf.json"}


def test_the_scan_uses_the_terraform_json_framework(tmp_path: Path) -> None:
    command = checkov_command(tmp_path / "view", tmp_path / "raw", POLICIES)
    assert command[command.index("--framework") + 1] == "terraform_json"
    assert command[command.index("--external-checks-dir") + 1] == str(POLICIES)


def test_framework_terraform_skips_tf_json_and_the_scan_refuses_the_empty_result(tmp_path: Path) -> None:
    view = build_view(ONE_FIXTURE, tmp_path / "view", load_resource_types())
    run = run_checkov(view.root, tmp_path / "checkov", framework="terraform")
    assert run.returncode == 0  # checkov itself is happy: it scanned nothing
    verdict = evaluate(run, view, load_project_checks(), [])
    assert not verdict.findings
    assert not verdict.ok
    assert any("zero resources" in problem for problem in verdict.problems), verdict.problems


def test_malformed_json_is_refused_before_checkov_runs(tmp_path: Path) -> None:
    with pytest.raises(ScanError, match="not valid JSON"):
        build_view({"broken": TRAPS / "malformed" / "main.tf.json"}, tmp_path / "view", load_resource_types())


def test_checkov_passes_a_malformed_file_with_exit_0_and_the_scan_fails_on_its_parsing_error(tmp_path: Path) -> None:
    view = build_view({}, tmp_path / "view", load_resource_types())
    target = view.root / "broken" / "cdk.tf.json"
    target.parent.mkdir(parents=True)
    shutil.copy(TRAPS / "malformed" / "main.tf.json", target)
    run = run_checkov(view.root, tmp_path / "checkov")
    assert run.returncode == 0
    assert run.report["results"]["parsing_errors"]
    verdict = evaluate(run, view, [], [])
    assert any("could not parse" in problem for problem in verdict.problems), verdict.problems


def test_a_parsing_error_fails_the_scan_even_among_good_results(fixture_scan: FixtureScan) -> None:
    parsing_errors = fixture_scan.run.report["results"]["parsing_errors"]
    assert [Path(p).parent.name for p in parsing_errors] == [MALFORMED_STACK]
    verdict = evaluate(fixture_scan.run, fixture_scan.view, [], [])
    assert any("could not parse 1 file" in problem for problem in verdict.problems)


def test_without_policies_init_py_no_project_check_runs_and_the_scan_says_so(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies, ignore=shutil.ignore_patterns("__pycache__"))
    (policies / "__init__.py").unlink()
    view = build_view(ONE_FIXTURE, tmp_path / "view", load_resource_types())
    run = run_checkov(view.root, tmp_path / "checkov", policies)
    findings = findings_of(run, view)
    assert findings, "the built-in checks still run"
    assert not [f for f in findings if f.check_id.startswith("CKV_PDR_")]
    verdict = evaluate(run, view, load_project_checks(policies), [])
    assert not verdict.ok
    assert any("__init__.py" in problem for problem in verdict.problems), verdict.problems


def test_default_tags_reach_the_tag_policy_only_through_the_view(fixture_scan: FixtureScan) -> None:
    in_view = fixture_scan.results("tags_environment_region--good", {"CKV_PDR_1"})
    raw = fixture_scan.results(RAW_STACK, {"CKV_PDR_1"})
    # the queue has no tags of its own: as deployed it carries the provider's default tags
    assert in_view["aws_sqs_queue.only-default-tags"] == {"PASSED"}
    assert raw["aws_sqs_queue.only-default-tags"] == {"FAILED"}
    details = [f.details for f in fixture_scan.findings if f.stack == RAW_STACK and f.check_id == "CKV_PDR_1"]
    assert all(any("not a scan view" in d for d in detail) for detail in details)


def test_checks_see_one_stack_at_a_time_so_a_dlq_used_from_another_stack_needs_its_dlq_name(
    fixture_scan: FixtureScan,
) -> None:
    source = fixture_scan.results("_traps--cross-stack-dlq-source", {"CKV_PDR_5"})
    target = fixture_scan.results("_traps--cross-stack-dlq-target", {"CKV_PDR_5"})
    assert source == {"aws_sqs_queue.work": {"PASSED"}}
    # the same pair in one stack passes (sqs_redrive_policy/good: work -> parking)
    assert target == {"aws_sqs_queue.parking": {"FAILED"}}
    same_stack = fixture_scan.results("sqs_redrive_policy--good", {"CKV_PDR_5"})
    assert same_stack["aws_sqs_queue.parking"] == {"PASSED"}
    assert same_stack["aws_sqs_queue.named-dlq-of-another-stack"] == {"PASSED"}


def test_a_stray_checkov_config_or_ckv_variable_cannot_skip_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # checkov honours CKV_SKIP_CHECK and .checkov.yaml in the working directory and HOME
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / ".checkov.yaml").write_text("skip-check:\n  - CKV_PDR_2\n")
    monkeypatch.chdir(stray)
    monkeypatch.setenv("HOME", str(stray))
    monkeypatch.setenv("CKV_SKIP_CHECK", "CKV_PDR_1")
    view = build_view(ONE_FIXTURE, tmp_path / "view", load_resource_types())
    ran = {f.check_id for f in findings_of(run_checkov(view.root, tmp_path / "checkov"), view)}
    assert {"CKV_PDR_1", "CKV_PDR_2"} <= ran
