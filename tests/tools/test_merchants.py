"""tools/merchants.py against moto, with the merchants table made from the synthesized data stack.

The keys it writes are checked by the real authorizer handler (loaded as in tests/lambdas).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.lambdas.conftest import FakeContext, function_env, import_fresh
from tests.synthesized import Synthesized
from tools import merchants

PRIMARY = "us-east-1"
SUFFIX = "test"  # the suffix of the Lambda test environment (tests/lambdas/conftest.py)
TABLE = f"payments-merchants-{SUFFIX}"


@pytest.fixture
def dynamodb(synth: Synthesized, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto with the merchants table as the primary's data stack defines it (renamed for SUFFIX)."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    [table] = [r.body for r in synth.resources("aws_dynamodb_table", stack=f"data-{PRIMARY}") if "merchants" in r.name]
    assert table["name"].startswith("payments-merchants-")
    with mock_aws():
        client = boto3.client("dynamodb", region_name=PRIMARY)
        client.create_table(
            TableName=TABLE,
            BillingMode=table["billing_mode"],
            KeySchema=[{"AttributeName": table["hash_key"], "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": a["name"], "AttributeType": a["type"]} for a in table["attribute"]],
        )
        client.update_time_to_live(
            TableName=TABLE,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": table["ttl"]["attribute_name"]},
        )
        yield client


def tool(client: Any, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = merchants.main(["--suffix", SUFFIX, *argv], out=out, client=client)
    return code, out.getvalue()


def created(client: Any, command: str, merchant: str) -> dict[str, Any]:
    code, out = tool(client, "--json", command, "--merchant", merchant)
    assert code == 0, out
    return json.loads(out)


def authorize(token: str) -> bool:
    """The authorizer's verdict on ``Authorization: Bearer <token>`` (a fresh import: no state)."""
    module = import_fresh("authorizer", function_env("authorizer", PRIMARY))
    event = {
        "methodArn": f"arn:aws:execute-api:{PRIMARY}:123456789012:abc123/v1/POST/payments",
        "headers": {"Authorization": f"Bearer {token}"},
    }
    answer = module.handler(event, FakeContext())
    return any(s["Effect"] == "Allow" for s in answer["policyDocument"]["Statement"])


def test_create_shows_the_key_once_stores_only_a_hash_and_the_authorizer_accepts_it(dynamodb: Any) -> None:
    code, out = tool(dynamodb, "create", "--merchant", "acme")
    assert code == 0
    token = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("API key"))
    assert token.startswith(f"pdr_{SUFFIX}_")
    assert "Authorization: Bearer" in out
    [item] = dynamodb.scan(TableName=TABLE)["Items"]
    secret = token.split(".", 1)[1]
    assert secret not in json.dumps(item)
    assert item["status"] == {"S": "ACTIVE"}
    assert item["merchant_id"] == {"S": "acme"}
    assert authorize(token)


def test_list_never_shows_a_secret_or_a_hash(dynamodb: Any) -> None:
    first = created(dynamodb, "create", "acme")
    created(dynamodb, "create", "globex")
    for argv in (["list"], ["list", "--merchant", "acme"], ["--json", "list"]):
        code, out = tool(dynamodb, *argv)
        assert code == 0
        assert first["key_id"] in out
        assert first["api_key"].split(".", 1)[1] not in out
        assert "secret_hash" not in out
        assert "salt" not in out
    code, out = tool(dynamodb, "--json", "list", "--merchant", "globex")
    assert [r["merchant_id"] for r in json.loads(out)] == ["globex"]


def test_rotate_keeps_the_old_key_valid_until_it_is_revoked(dynamodb: Any) -> None:
    old = created(dynamodb, "create", "acme")
    new = created(dynamodb, "rotate", "acme")
    assert new["still_valid"] == [old["key_id"]]
    assert authorize(old["api_key"])
    assert authorize(new["api_key"])
    code, out = tool(dynamodb, "revoke", "--key-id", old["key_id"])
    assert code == 0
    assert "revoked" in out
    assert not authorize(old["api_key"])
    assert authorize(new["api_key"])
    code, out = tool(dynamodb, "--json", "list", "--merchant", "acme")
    assert {r["key_id"]: r["status"] for r in json.loads(out)} == {old["key_id"]: "REVOKED", new["key_id"]: "ACTIVE"}


def test_operations_that_cannot_apply_fail_with_one_line_and_exit_1(
    dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    key = created(dynamodb, "create", "acme")
    capsys.readouterr()
    for argv in (
        ["create", "--merchant", "acme"],  # already has a key: rotate
        ["rotate", "--merchant", "nobody"],  # nothing to rotate: create
        ["revoke", "--key-id", "0" * 16],  # unknown
    ):
        assert tool(dynamodb, *argv)[0] == 1, argv
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, argv
    assert tool(dynamodb, "revoke", "--key-id", key["key_id"])[0] == 0
    assert tool(dynamodb, "revoke", "--key-id", key["key_id"])[0] == 1  # already revoked


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["create"],
        ["create", "--merchant", "bad id"],
        ["create", "--merchant", "x" * 65],
        ["rotate", "--merchant", "-dash-first"],
        ["revoke"],
        ["revoke", "--key-id", "XYZ"],
        ["list", "--surprise"],
        ["--target", "mars", "list"],
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert merchants.main(argv, client=object()) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("error: ")


def test_target_aws_refuses_an_emulator_endpoint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    assert merchants.main(["--target", "aws", "list"]) == 2
    assert "AWS_ENDPOINT_URL" in capsys.readouterr().err


def test_a_bad_suffix_is_a_config_error_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert merchants.main(["--suffix", "Not_OK", "list"], client=object()) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "environmentSuffix" in line or "ENVIRONMENT_SUFFIX" in line


def test_a_deployment_that_is_not_there_is_one_line_and_exit_1(
    dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    assert merchants.main(["--suffix", "elsewhere", "list"], out=out, client=dynamodb) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: no table payments-merchants-elsewhere in injected client: is `elsewhere` deployed there? "
        "(--suffix, --target)"
    ]
    assert out.getvalue() == ""
