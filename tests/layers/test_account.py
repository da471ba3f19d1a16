"""Account layer (opt-in): API Gateway's account-wide CloudWatch Logs role, owned by one deployment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from layers.config import load_config
from tests.conftest import synthesize
from tests.synthesized import Synthesized

CONFIG = load_config(environ={})
REGIONS = CONFIG.regions


@pytest.fixture(scope="module")
def owner(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The app of the one deployment that owns the account setting."""
    return synthesize(tmp_path_factory.mktemp("account-owner") / "cdktf.out", manage_api_gateway_account="true")


def test_per_suffix_stacks_never_touch_the_account_setting(synth: Synthesized) -> None:
    """By default no stack sets it: parallel suffixes cannot fight over it, nor destroy it."""
    assert list(synth.resources("aws_api_gateway_account")) == []
    assert not [name for name in synth.stacks if name.startswith("account-")]


@pytest.mark.parametrize("region", REGIONS)
def test_the_owner_sets_it_once_per_region_and_resets_it_on_destroy(owner: Synthesized, region: str) -> None:
    [setting] = list(owner.resources("aws_api_gateway_account", stack=f"account-{region}"))
    assert setting.body["reset_on_delete"] is True
    assert len(list(owner.resources("aws_api_gateway_account"))) == len(REGIONS)
    # The edge stack deploys after it (its stage logs through the role) and destroys before it.
    assert f"account-{region}" in owner.manifest["stacks"][f"edge-{region}"]["dependencies"]


@pytest.mark.parametrize("region", REGIONS)
def test_api_gateway_logging_role_is_least_privilege(owner: Synthesized, region: str) -> None:
    stack = f"account-{region}"
    [setting] = list(owner.resources("aws_api_gateway_account", stack=stack))
    [role] = list(owner.resources("aws_iam_role", stack=stack))
    assert setting.body["cloudwatch_role_arn"] == f"${{aws_iam_role.{role.name}.arn}}"
    assert not list(owner.resources("aws_iam_role_policy_attachment", stack=stack))
    trust = json.loads(role.body["assume_role_policy"])["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "apigateway.amazonaws.com"}]
    [policy] = list(owner.resources("aws_iam_role_policy", stack=stack))
    for statement in json.loads(policy.body["policy"])["Statement"]:
        if statement["Resource"] == "*":
            assert statement["Action"] == "logs:DescribeLogGroups"
            continue
        assert all(action.startswith("logs:") and "*" not in action for action in statement["Action"])
        assert all(f":logs:{region}:" in resource for resource in statement["Resource"])


def test_the_flag_is_a_boolean() -> None:
    from layers.config import ConfigError

    assert load_config(environ={"MANAGE_API_GATEWAY_ACCOUNT": "true"}).manage_api_gateway_account is True
    with pytest.raises(ConfigError, match="true or false"):
        load_config(environ={"MANAGE_API_GATEWAY_ACCOUNT": "maybe"})


def test_deploy_order_puts_the_account_stacks_first(owner: Synthesized) -> None:
    from tools.terraform import stacks_in_order

    order = stacks_in_order(Path(owner.outdir))
    assert order[1:3] == [f"account-{region}" for region in REGIONS]
