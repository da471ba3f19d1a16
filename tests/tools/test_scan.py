"""tools/scan.py: the scan view, suppressions, the guards of the verdict, the reports, the command line."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tools.scan import (
    RESOURCE_TYPES_FILE,
    SCAN_KEY,
    CheckovRun,
    ProjectCheck,
    ScanError,
    Suppression,
    View,
    build_view,
    entity_lines,
    evaluate,
    find_stacks,
    generate_resource_types,
    load_project_checks,
    load_resource_types,
    load_suppressions,
    main,
    render_junit,
    render_sarif,
    render_text,
)

REGION_TAGS = {"Environment": "dev", "Region": "us-east-1", "Project": "p"}
PROVIDER_VERSION = load_resource_types().provider_version


def stack_body(resources: dict[str, Any], *, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """A stack as cdktf writes it: required provider, a default provider and an aliased one."""
    body: dict[str, Any] = {
        "terraform": {"required_providers": {"aws": {"source": "aws", "version": PROVIDER_VERSION}}},
        "provider": {
            "aws": [
                {"region": "us-east-1", "default_tags": [{"tags": REGION_TAGS}]},
                {
                    "alias": "peer",
                    "region": "us-east-2",
                    "default_tags": [{"tags": {**REGION_TAGS, "Region": "us-east-2"}}],
                },
            ]
        },
        "resource": resources,
    }
    if data:
        body["data"] = data
    return body


def write_outdir(root: Path, stacks: dict[str, dict[str, Any]]) -> Path:
    for name, body in stacks.items():
        path = root / "stacks" / name / "cdk.tf.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(body, indent=2))
    return root


def view_of(tmp_path: Path, stacks: dict[str, dict[str, Any]]) -> View:
    outdir = write_outdir(tmp_path / "out", stacks)
    return build_view(find_stacks(outdir), tmp_path / "view", load_resource_types())


def viewed(view: View, stack: str) -> dict[str, Any]:
    return json.loads(view.files[stack].read_text())


# --- the view -------------------------------------------------------------------------------------------


def test_view_merges_provider_default_tags_under_the_resources_own_tags(tmp_path: Path) -> None:
    view = view_of(
        tmp_path,
        {
            "app": stack_body(
                {
                    "aws_sqs_queue": {
                        "bare": {"name": "a-dev"},
                        "own": {"name": "b-dev", "tags": {"Region": "x", "Team": "t"}},
                    }
                }
            )
        },
    )
    queues = viewed(view, "app")["resource"]["aws_sqs_queue"]
    assert queues["bare"]["tags"] == REGION_TAGS
    assert queues["own"]["tags"] == {**REGION_TAGS, "Region": "x", "Team": "t"}


def test_view_takes_region_and_tags_from_the_provider_that_creates_the_resource(tmp_path: Path) -> None:
    view = view_of(
        tmp_path, {"app": stack_body({"aws_sqs_queue": {"peer": {"name": "a-dev", "provider": "aws.peer"}}})}
    )
    queue = viewed(view, "app")["resource"]["aws_sqs_queue"]["peer"]
    assert queue["tags"]["Region"] == "us-east-2"
    assert queue["//"][SCAN_KEY]["region"] == "us-east-2"
    assert queue["//"][SCAN_KEY]["provider"] == "aws.peer"
    assert queue["//"][SCAN_KEY]["environment"] == "dev"


def test_view_does_not_tag_resource_types_that_take_no_tags(tmp_path: Path) -> None:
    types = load_resource_types()
    assert "aws_iam_role_policy" not in types.taggable
    assert "aws_sqs_queue" in types.taggable
    view = view_of(
        tmp_path, {"app": stack_body({"aws_iam_role_policy": {"p": {"name": "p-dev", "role": "r", "policy": "{}"}}})}
    )
    policy = viewed(view, "app")["resource"]["aws_iam_role_policy"]["p"]
    assert "tags" not in policy
    assert policy["//"][SCAN_KEY]["taggable"] is False


def test_view_records_which_queues_of_the_stack_redrive_to_a_queue(tmp_path: Path) -> None:
    redrive = json.dumps({"deadLetterTargetArn": "${aws_sqs_queue.dlq.arn}", "maxReceiveCount": 5})
    view = view_of(
        tmp_path,
        {
            "app": stack_body(
                {
                    "aws_sqs_queue": {
                        "work": {"name": "w-dev", "redrive_policy": redrive},
                        "dlq": {"name": "d-dev"},
                        "side": {"name": "s-dev"},
                    },
                    "aws_sqs_queue_redrive_policy": {
                        "side-redrive": {"queue_url": "${aws_sqs_queue.side.id}", "redrive_policy": redrive}
                    },
                }
            )
        },
    )
    queues = viewed(view, "app")["resource"]["aws_sqs_queue"]
    assert queues["dlq"]["//"][SCAN_KEY]["dead_letter_for"] == [
        "aws_sqs_queue.work",
        "aws_sqs_queue_redrive_policy.side-redrive",
    ]
    assert queues["side"]["//"][SCAN_KEY]["redrive_policy_from"] == ["aws_sqs_queue_redrive_policy.side-redrive"]
    assert "dead_letter_for" not in queues["work"]["//"][SCAN_KEY]


def test_view_refuses_a_resource_type_the_generated_list_does_not_know(tmp_path: Path) -> None:
    with pytest.raises(ScanError, match=r"aws_brand_new_thing.*resource-types"):
        view_of(tmp_path, {"app": stack_body({"aws_brand_new_thing": {"x": {}}})})


def test_view_refuses_a_resource_whose_provider_the_stack_lacks(tmp_path: Path) -> None:
    with pytest.raises(ScanError, match=r"uses provider aws\.elsewhere"):
        view_of(tmp_path, {"app": stack_body({"aws_sqs_queue": {"q": {"name": "q-dev", "provider": "aws.elsewhere"}}})})


def test_find_stacks_requires_every_stack_of_the_manifest(tmp_path: Path) -> None:
    outdir = write_outdir(tmp_path, {"app": stack_body({})})
    manifest = {"stacks": {"gone": {"synthesizedStackPath": "stacks/gone/cdk.tf.json"}}}
    (outdir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ScanError, match="manifest stack gone"):
        find_stacks(outdir)


def test_find_stacks_refuses_an_empty_synth(tmp_path: Path) -> None:
    with pytest.raises(ScanError, match="no stack"):
        find_stacks(tmp_path)


def test_resource_types_file_is_what_the_pinned_provider_schema_says() -> None:
    # needs terraform and the provider (offline with a mirror), like `make validate`
    assert generate_resource_types(PROVIDER_VERSION) == RESOURCE_TYPES_FILE.read_text()


# --- suppressions ------------------------------------------------------------------------------------------


def suppressions_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suppressions.toml"
    path.write_text(text)
    return path


REASON = "The state bucket's own access log would need a second bucket per suffix."


def test_a_suppression_with_check_resource_and_reason_loads(tmp_path: Path) -> None:
    path = suppressions_file(
        tmp_path,
        f'[[suppression]]\ncheck = "CKV_AWS_18"\nresource = "network-*:aws_vpc.vpc"\nreason = """{REASON}"""\n',
    )
    assert load_suppressions(path) == [Suppression("CKV_AWS_18", "network-*:aws_vpc.vpc", REASON)]


def test_the_committed_suppressions_file_is_valid() -> None:
    assert isinstance(load_suppressions(), list)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('check = "CKV_AWS_18"\nresource = "bootstrap:aws_s3_bucket.b"\n', "needs a reason"),
        ('check = "CKV_AWS_18"\nresource = "bootstrap:aws_s3_bucket.b"\nreason = "todo"\n', "needs a reason"),
        ('check = "CKV_AWS_18"\nresource = "bootstrap:aws_s3_bucket.b"\nreason = "   "\n', "needs a reason"),
        (f'check = "18"\nresource = "bootstrap:aws_s3_bucket.b"\nreason = "{REASON}"\n', "is not a check id"),
        (f'check = "CKV_AWS_18"\nresource = "aws_s3_bucket.b"\nreason = "{REASON}"\n', "is not <stack>:<type>.<name>"),
        (f'check = "CKV_AWS_18"\nresource = "b:aws_s3_bucket.b"\nreason = "{REASON}"\nexpires = 1\n', "unknown keys"),
    ],
)
def test_an_invalid_suppression_fails_the_scan(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(ScanError, match=message):
        load_suppressions(suppressions_file(tmp_path, f"[[suppression]]\n{entry}"))


def test_the_same_suppression_twice_fails(tmp_path: Path) -> None:
    entry = f'[[suppression]]\ncheck = "CKV_AWS_18"\nresource = "b:aws_s3_bucket.b"\nreason = "{REASON}"\n'
    with pytest.raises(ScanError, match="suppressed twice"):
        load_suppressions(suppressions_file(tmp_path, entry * 2))


def test_a_missing_suppressions_file_fails(tmp_path: Path) -> None:
    with pytest.raises(ScanError, match="is missing"):
        load_suppressions(tmp_path / "nope.toml")


# --- the verdict, from a fabricated checkov report ----------------------------------------------------------


def record(view: View, stack: str, key: str, check_id: str, result: str, resource: str | None = None) -> dict[str, Any]:
    """A checkov JSON record of ``check_id`` on ``stack:key``, at the lines checkov's parser gives it."""
    start = next(line for (s, line), entity in entity_lines(view).items() if s == stack and entity.key == key)
    return {
        "check_id": check_id,
        "check_name": f"name of {check_id}",
        "check_result": {"result": result},
        "file_path": f"/{stack}/cdk.tf.json",
        "file_line_range": [start, start + 3],
        "resource": resource or key,
        "details": ["what is wrong"] if result == "FAILED" else [],
    }


def fake_run(
    records: list[dict[str, Any]], *, returncode: int = 1, stderr: str = "", parsing_errors: list[str] | None = None
) -> CheckovRun:
    results: dict[str, Any] = {
        "passed_checks": [],
        "failed_checks": [],
        "skipped_checks": [],
        "parsing_errors": parsing_errors or [],
    }
    for item in records:
        results["passed_checks" if item["check_result"]["result"] == "PASSED" else "failed_checks"].append(item)
    report = {"check_type": "terraform_json", "results": results, "summary": {"checkov_version": "3.3.30"}}
    return CheckovRun(returncode, report, stderr, 1.0, Path("raw"))


QUEUE_CHECK = ProjectCheck("CKV_PDR_99", "queue rule", "why", "resource", ("aws_sqs_queue",), "rule.py")


@pytest.fixture
def two_stacks(tmp_path: Path) -> View:
    queue = {"aws_sqs_queue": {"q": {"name": "q-dev"}}}
    return view_of(tmp_path, {"app-us-east-1": stack_body(queue), "app-us-east-2": stack_body(queue)})


def test_python_check_entities_are_resolved_to_their_type_by_line(two_stacks: View) -> None:
    # checkov names a Python check's entity "resource.<name>" in Terraform JSON
    run = fake_run([record(two_stacks, "app-us-east-1", "aws_sqs_queue.q", "CKV_PDR_99", "FAILED", "resource.q")])
    verdict = evaluate(run, two_stacks, [], [])
    assert [f.address for f in verdict.failed] == ["app-us-east-1:aws_sqs_queue.q"]


def test_a_glob_suppression_covers_every_stack_it_matches_and_only_its_check(two_stacks: View) -> None:
    records = [
        record(two_stacks, stack, "aws_sqs_queue.q", "CKV_AWS_27", "FAILED")
        for stack in ("app-us-east-1", "app-us-east-2")
    ]
    records.append(record(two_stacks, "app-us-east-1", "aws_sqs_queue.q", "CKV_AWS_99", "FAILED"))
    suppression = Suppression("CKV_AWS_27", "app-*:aws_sqs_queue.q", REASON)
    verdict = evaluate(fake_run(records), two_stacks, [], [suppression])
    assert [(f.check_id, f.address) for f, _ in verdict.suppressed] == [
        ("CKV_AWS_27", "app-us-east-1:aws_sqs_queue.q"),
        ("CKV_AWS_27", "app-us-east-2:aws_sqs_queue.q"),
    ]
    assert [(f.check_id, f.address) for f in verdict.failed] == [("CKV_AWS_99", "app-us-east-1:aws_sqs_queue.q")]
    assert not verdict.ok


def test_a_suppression_that_matches_no_failure_is_stale_and_fails_the_scan(two_stacks: View) -> None:
    records = [
        record(two_stacks, s, "aws_sqs_queue.q", "CKV_AWS_27", "PASSED") for s in ("app-us-east-1", "app-us-east-2")
    ]
    stale = Suppression("CKV_AWS_27", "app-us-east-1:aws_sqs_queue.q", REASON)
    verdict = evaluate(fake_run(records, returncode=0), two_stacks, [], [stale])
    assert verdict.stale == [stale]
    assert not verdict.failed
    assert not verdict.ok
    assert "STALE SUPPRESSIONS" in render_text(verdict, Path("reports"))


def test_a_clean_run_passes(two_stacks: View) -> None:
    records = [
        record(two_stacks, s, "aws_sqs_queue.q", c, "PASSED")
        for s in ("app-us-east-1", "app-us-east-2")
        for c in ("CKV_AWS_27", "CKV_PDR_99")
    ]
    verdict = evaluate(fake_run(records, returncode=0), two_stacks, [QUEUE_CHECK], [])
    assert verdict.ok, verdict.problems


def test_a_project_check_missing_on_a_resource_it_covers_fails_the_scan(two_stacks: View) -> None:
    records = [
        record(two_stacks, s, "aws_sqs_queue.q", "CKV_AWS_27", "PASSED") for s in ("app-us-east-1", "app-us-east-2")
    ]
    records.append(record(two_stacks, "app-us-east-1", "aws_sqs_queue.q", "CKV_PDR_99", "PASSED"))
    verdict = evaluate(fake_run(records, returncode=0), two_stacks, [QUEUE_CHECK], [])
    assert verdict.problems == [
        "CKV_PDR_99 did not report on 1 of 2 entities it covers (e.g. app-us-east-2:aws_sqs_queue.q): "
        "the check did not run or crashed on them"
    ]


def test_a_stack_with_resources_but_no_result_fails_the_scan(two_stacks: View) -> None:
    records = [record(two_stacks, "app-us-east-1", "aws_sqs_queue.q", "CKV_AWS_27", "PASSED")]
    verdict = evaluate(fake_run(records, returncode=0), two_stacks, [], [])
    assert any("reported nothing for stacks ['app-us-east-2']" in p for p in verdict.problems)


def test_no_builtin_check_fails_the_scan(two_stacks: View) -> None:
    records = [
        record(two_stacks, s, "aws_sqs_queue.q", "CKV_PDR_99", "PASSED") for s in ("app-us-east-1", "app-us-east-2")
    ]
    verdict = evaluate(fake_run(records, returncode=0), two_stacks, [QUEUE_CHECK], [])
    assert verdict.problems == ["no built-in checkov check ran"]


def test_a_checkov_crash_is_a_failure_of_the_check(two_stacks: View) -> None:
    records = [
        record(two_stacks, s, "aws_sqs_queue.q", "CKV_AWS_27", "PASSED") for s in ("app-us-east-1", "app-us-east-2")
    ]
    stderr = "ERROR Failed to run check CKV_AWS_5 on /app-us-east-1/cdk.tf.json:aws_sqs_queue.q\nTraceback..."
    verdict = evaluate(fake_run(records, returncode=0, stderr=stderr), two_stacks, [], [])
    assert [(f.check_id, f.address) for f in verdict.failed] == [("CKV_AWS_5", "app-us-east-1:aws_sqs_queue.q")]


def test_a_checkov_error_exit_fails_the_scan(two_stacks: View) -> None:
    records = [
        record(two_stacks, s, "aws_sqs_queue.q", "CKV_AWS_27", "PASSED") for s in ("app-us-east-1", "app-us-east-2")
    ]
    verdict = evaluate(fake_run(records, returncode=2), two_stacks, [], [])
    assert any("exited with 2" in p for p in verdict.problems)


def test_a_project_check_that_raises_fails_instead_of_vanishing() -> None:
    from policies._shared import ProjectResourceCheck

    class Raises(ProjectResourceCheck):
        def problems(self, conf: dict[str, Any], entity_type: str) -> list[str]:
            raise KeyError("surprise")

    check = Raises(id="CKV_PDR_98", name="raises", why="to prove a crash fails", resources=("aws_test_only",))
    assert check.verdict({}, "aws_test_only").name == "FAILED"
    assert check.details == ["CKV_PDR_98 could not read this resource: KeyError: 'surprise'"]


# --- reports --------------------------------------------------------------------------------------------------


def test_reports_show_failures_and_suppressions_with_their_reason(two_stacks: View, tmp_path: Path) -> None:
    records = [
        record(two_stacks, s, "aws_sqs_queue.q", "CKV_AWS_27", "FAILED") for s in ("app-us-east-1", "app-us-east-2")
    ]
    suppression = Suppression("CKV_AWS_27", "app-us-east-2:aws_sqs_queue.q", REASON)
    verdict = evaluate(fake_run(records), two_stacks, [], [suppression])

    suites = {s.get("name"): s for s in ET.fromstring(render_junit(verdict)).iter("testsuite")}
    assert suites["app-us-east-1"].get("failures") == "1"
    assert suites["app-us-east-2"].get("skipped") == "1"
    assert suites["app-us-east-2"].find("testcase/skipped").get("message") == f"suppressed: {REASON}"

    results = json.loads(render_sarif(verdict, tmp_path / "reports"))["runs"][0]["results"]
    by_address = {r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]: r for r in results}
    assert "suppressions" not in by_address["app-us-east-1:aws_sqs_queue.q"]
    assert by_address["app-us-east-2:aws_sqs_queue.q"]["suppressions"][0]["justification"] == REASON

    text = render_text(verdict, tmp_path / "reports")
    assert "FAILED:" in text
    assert "app-us-east-1:aws_sqs_queue.q" in text
    assert f"CKV_AWS_27 app-us-east-2:aws_sqs_queue.q\n    reason: {REASON}" in text
    assert text.rstrip().endswith("verdict: FAILED")


# --- the command line, end to end (checkov runs) ---------------------------------------------------------------


COMPLIANT = stack_body(
    {
        "aws_sqs_queue": {
            "work": {
                "name": "work-dev",
                "redrive_policy": json.dumps({"deadLetterTargetArn": "${aws_sqs_queue.dlq.arn}", "maxReceiveCount": 5}),
            },
            "dlq": {"name": "work-dlq-dev"},
        }
    }
)


def test_scan_fails_on_a_finding_and_passes_once_it_is_suppressed_with_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outdir = write_outdir(tmp_path / "cdktf.out", {"app": COMPLIANT})
    reports = tmp_path / "reports"
    empty = suppressions_file(tmp_path, "")
    args = ["--outdir", str(outdir), "--reports", str(reports)]

    assert main([*args, "--suppressions", str(empty)]) == 1
    first = json.loads((reports / "scan.sarif").read_text())["runs"][0]["results"]
    failed = {(r["ruleId"], r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]) for r in first}
    assert failed, "the fixture must fail some built-in check"
    assert not [check for check, _ in failed if check.startswith("CKV_PDR_")], "the fixture keeps every project rule"
    for name in (
        "scan.txt",
        "scan.junit.xml",
        "scan.sarif",
        "checkov/results_json.json",
        "checkov/results_cli.txt",
        "checkov/results_junitxml.xml",
        "checkov/results_sarif.sarif",
        "scan-view/app/cdk.tf.json",
    ):
        assert (reports / name).is_file(), name
    assert "verdict: FAILED" in capsys.readouterr().out

    entries = "".join(
        f'[[suppression]]\ncheck = "{check}"\nresource = "{address}"\nreason = "{REASON}"\n'
        for check, address in sorted(failed)
    )
    suppressions = suppressions_file(tmp_path, entries)
    assert main([*args, "--suppressions", str(suppressions)]) == 0
    out = capsys.readouterr().out
    assert "verdict: PASSED" in out
    assert "SUPPRESSED" in out


def test_scan_refuses_a_suppression_without_reason_before_running_checkov(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outdir = write_outdir(tmp_path / "cdktf.out", {"app": COMPLIANT})
    suppressions = suppressions_file(
        tmp_path, '[[suppression]]\ncheck = "CKV_AWS_27"\nresource = "app:aws_sqs_queue.work"\n'
    )
    assert (
        main(["--outdir", str(outdir), "--reports", str(tmp_path / "reports"), "--suppressions", str(suppressions)])
        == 2
    )
    assert "needs a reason" in capsys.readouterr().err
    assert not (tmp_path / "reports" / "checkov").exists()


def test_scan_refuses_stacks_pinned_to_another_provider_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = stack_body({})
    body["terraform"]["required_providers"]["aws"]["version"] = "9.9.9"
    outdir = write_outdir(tmp_path / "cdktf.out", {"app": body})
    assert main(["--outdir", str(outdir), "--reports", str(tmp_path / "reports")]) == 2
    assert "resource-types" in capsys.readouterr().err


def test_every_policy_file_loads_as_a_project_check() -> None:
    checks = load_project_checks()
    assert {c.file for c in checks} == {
        p.name for p in (RESOURCE_TYPES_FILE.parent.parent).glob("*.py") if not p.name.startswith("_")
    }
