"""tools/deploy.py without terraform: plan summary, deploy schedule, targets, suffix matching."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

from tools import terraform
from tools.deploy import (
    Deployment,
    Stack,
    Target,
    _unlocking_own_lock,
    plan_changes,
    s3_backend_config,
    schedule,
    suffix_pattern,
    summarize,
)
from tools.terraform import TerraformError


def change(address: str, actions: list[str], **extra: Any) -> dict[str, Any]:
    rtype = address.split(".")[0]
    body = {"actions": actions, "before": extra.pop("before", {}), "after": extra.pop("after", {})}
    body.update({k: extra.pop(k) for k in ("replace_paths", "after_unknown") if k in extra})
    return {"address": address, "mode": extra.pop("mode", "managed"), "type": rtype, "change": body, **extra}


PLAN = {
    "resource_changes": [
        change(
            "aws_sqs_queue.processing",
            ["delete", "create"],
            replace_paths=[["name"]],
            action_reason="replace_because_cannot_update",
        ),
        change("aws_sqs_queue_policy.processing", ["create", "delete"], replace_paths=[["queue_url"]]),
        change(
            "aws_lambda_function.validation",
            ["update"],
            before={"timeout": 10, "memory_size": 256},
            after={"timeout": 30, "memory_size": 256},
        ),
        change("aws_sns_topic.alerts", ["create"]),
        change("aws_kms_alias.old", ["delete"], action_reason="delete_because_no_resource_config"),
        change("aws_iam_role.health", ["no-op"]),
        change("data.aws_iam_policy_document.health", ["read"], mode="data"),
    ]
}


def test_plan_changes_name_the_action_and_what_forces_it() -> None:
    changes = {c.address: c for c in plan_changes("compute-us-east-1", PLAN)}
    assert "data.aws_iam_policy_document.health" not in changes
    assert changes["aws_sqs_queue.processing"].action == "replace"
    assert changes["aws_sqs_queue.processing"].attributes == ("name",)
    assert changes["aws_sqs_queue_policy.processing"].action == "replace"
    assert changes["aws_lambda_function.validation"].attributes == ("timeout",)
    assert changes["aws_kms_alias.old"].action == "destroy"
    assert changes["aws_iam_role.health"].action == "no-op"


def test_nested_replace_paths_are_written_as_attribute_paths() -> None:
    plan = {"resource_changes": [change("aws_x.y", ["delete", "create"], replace_paths=[["rule", 0, "name"]])]}
    assert plan_changes("s", plan)[0].attributes == ("rule[0].name",)


def test_summary_counts_each_action_per_stack_and_lists_replacements_and_destroys() -> None:
    summary = summarize(
        {"compute-us-east-1": PLAN, "edge-global": {"resource_changes": []}},
        "dev",
        "emulator",
        {"observability-us-east-1": "depends on edge-us-east-1, which is not deployed"},
    )
    assert "| compute-us-east-1 | 1 | 1 | 2 | 1 |" in summary
    assert "| edge-global | 0 | 0 | 0 | 0 |" in summary
    assert (
        "- **replace** `compute-us-east-1`: `aws_sqs_queue.processing`: forced by `name` "
        "(replace_because_cannot_update)" in summary
    )
    assert "- **destroy** `compute-us-east-1`: `aws_kms_alias.old`: removed (delete_because_no_resource_config)" in (
        summary
    )
    assert "`aws_lambda_function.validation`: `timeout`" in summary
    assert "- `observability-us-east-1`: depends on edge-us-east-1, which is not deployed" in summary


def test_a_quiet_plan_says_nothing_is_replaced() -> None:
    summary = summarize({"network-us-east-1": {"resource_changes": []}}, "dev", "aws", {})
    assert "None: nothing is replaced or destroyed." in summary
    assert "Updates in place" not in summary


def stack(name: str, *deps: str) -> Stack:
    return Stack(name, Path(name), "s3", {}, "us-east-1", deps)


DEPLOYMENT = Deployment(
    outdir=Path("cdktf.out"),
    suffix="dev",
    regions=("us-east-1", "us-east-2"),
    stacks=(
        stack("bootstrap"),
        stack("network-us-east-1"),
        stack("network-us-east-2"),
        stack("data-us-east-1", "network-us-east-1"),
        stack("data-us-east-2", "network-us-east-2", "data-us-east-1"),
        stack("edge-global"),
        stack("edge-us-east-1", "edge-global", "data-us-east-1"),
    ),
)


def waves(ready: Any) -> list[list[str]]:
    done: set[str] = set()
    result = []
    while len(done) < len(DEPLOYMENT.stacks):
        wave = [s.name for s in ready(done)]
        assert wave, f"nothing ready after {done}"
        result.append(wave)
        done |= set(wave)
    return result


def test_deploy_runs_a_layers_regions_side_by_side_after_the_earlier_layers() -> None:
    assert waves(schedule(DEPLOYMENT)) == [
        ["bootstrap"],
        ["network-us-east-1", "network-us-east-2"],
        ["data-us-east-1"],
        ["data-us-east-2"],
        ["edge-global"],
        ["edge-us-east-1"],
    ]


def test_destroy_runs_in_reverse_layer_order_after_the_dependents() -> None:
    assert waves(schedule(DEPLOYMENT, reverse=True)) == [
        ["edge-us-east-1"],
        ["edge-global"],
        ["data-us-east-2"],
        ["data-us-east-1"],
        ["network-us-east-2", "network-us-east-1"],
        ["bootstrap"],
    ]


def test_the_emulator_target_sends_state_and_locks_to_the_emulator(tmp_path: Path) -> None:
    target = Target.local("http://127.0.0.1:4566", tmp_path)
    (config_file,) = target.backend_config(stack("network-us-east-1"), "dev")
    text = Path(config_file).read_text()
    assert text == s3_backend_config("http://127.0.0.1:4566")
    for line in (
        's3       = "http://127.0.0.1:4566"',
        'dynamodb = "http://127.0.0.1:4566"',
        "use_path_style              = true",
    ):
        assert line in text
    assert "skip_requesting_account_id  = false" in text


def test_the_emulator_keeps_its_own_bootstrap_state_and_terraform_data(tmp_path: Path) -> None:
    target = Target.local("http://127.0.0.1:4566", tmp_path)
    bootstrap = Stack("bootstrap", tmp_path / "stacks" / "bootstrap", "local", {"path": "x"}, "us-east-1", ())
    assert target.backend_config(bootstrap, "dev") == [f"path={tmp_path / 'bootstrap-dev.tfstate'}"]
    env = target.env(bootstrap)
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert env["TF_DATA_DIR"] == str(tmp_path / "stacks" / "bootstrap" / ".terraform-emulator")


def test_the_aws_target_changes_nothing_at_init(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "payments-prod")
    target = Target.aws()
    assert target.backend_config(stack("network-us-east-1"), "dev") == []
    env = target.env(stack("network-us-east-1"))
    assert env["AWS_PROFILE"] == "payments-prod"
    assert "AWS_ENDPOINT_URL" not in env
    assert "TF_DATA_DIR" not in env


@pytest.mark.parametrize(
    ("name", "matches"),
    [
        ("payments-transactions-dev", True),
        ("dev.payments.example.com.", True),
        ("alias/payments-dev", True),
        ("/aws/lambda/health-dev", True),
        ("payments-transactions-dev2", False),
        ("payments-devx-transactions", False),
    ],
)
def test_a_suffix_matches_as_a_whole_token(name: str, matches: bool) -> None:
    assert bool(suffix_pattern("dev").search(name)) is matches


#: terraform's diagnostic when the lock request reached the emulator twice (seen after a drill).
OWN_LOCK_ERROR = (
    "terraform destroy -auto-approve -input=false in edge-us-east-1 failed:\nError acquiring the state lock: "
    "Error message: operation error DynamoDB: PutItem, https response error StatusCode: 400, RequestID: X9d, "
    "ConditionalCheckFailedException: The conditional request failed\nLock Info:\n"
    "  ID:        0f300f18-8abc-2afb-ff5f-59295bf3119c\n"
    "  Path:      payments-dr-tfstate-dev/payments-dr/dev/edge-us-east-1.tfstate\n"
    "  Operation: OperationTypeApply\n  Who:       root@vm\n  Version:   1.11.4\n"
    "  Created:   2026-12-01 20:13:16.31433927 +0000 UTC\n  Info:      \n"
)
LOCK_CREATED = datetime.datetime(2026, 12, 1, 20, 13, 16, 314339, tzinfo=datetime.UTC)


def test_a_lock_created_after_the_command_started_is_the_commands_own() -> None:
    before = LOCK_CREATED - datetime.timedelta(seconds=1)
    assert terraform.own_lock(OWN_LOCK_ERROR, before) == "0f300f18-8abc-2afb-ff5f-59295bf3119c"
    # Older than the command: someone else's lock, never released.
    assert terraform.own_lock(OWN_LOCK_ERROR, LOCK_CREATED + datetime.timedelta(seconds=1)) is None
    assert terraform.own_lock("terraform apply failed:\nError: creating SQS Queue", before) is None


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:1", None])
def test_only_the_emulator_target_releases_its_own_lock_and_runs_once_more(
    endpoint: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    released: list[str] = []
    monkeypatch.setattr(terraform, "force_unlock", lambda _dir, _env, lock_id: released.append(lock_id))
    monkeypatch.setattr(terraform, "own_lock", lambda error, started: "0f300f18-8abc-2afb-ff5f-59295bf3119c")
    attempts: list[int] = []

    def run(stack_dir: Path, env: dict[str, str], timeout: int, log: Path) -> dict[str, int]:
        attempts.append(1)
        if len(attempts) == 1:
            raise TerraformError(OWN_LOCK_ERROR)
        return {"add": 0, "change": 0, "import": 0, "remove": 3}

    target = Target(endpoint=endpoint, state_dir=tmp_path)
    stack = Stack("edge-us-east-1", tmp_path, "s3", {}, "us-east-1", ())
    lines: list[str] = []
    if endpoint is None:
        with pytest.raises(TerraformError, match="Error acquiring the state lock"):
            _unlocking_own_lock(target, stack, {}, lines.append, run, 1, tmp_path)
        assert (released, len(attempts)) == ([], 1)
        return
    assert _unlocking_own_lock(target, stack, {}, lines.append, run, 1, tmp_path)["remove"] == 3
    assert released == ["0f300f18-8abc-2afb-ff5f-59295bf3119c"]
    assert len(attempts) == 2
    assert "released, once more" in lines[0]
