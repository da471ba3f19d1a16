"""REQUEST authorizer: valid, revoked, unknown, malformed, missing, another environment's key; nothing secret logged."""

from __future__ import annotations

from types import ModuleType

import pytest
from payments_common import credentials

from tests.lambdas.authorizer.conftest import (
    API_ID,
    allowed,
    authorizer_event,
    issue_key,
    method_arn,
    revoke_key,
)
from tests.lambdas.conftest import ACCOUNT, MERCHANTS, PRIMARY, Aws, FakeContext, inject_errors, load_handler


@pytest.fixture
def authorizer(aws: Aws) -> ModuleType:
    return load_handler("authorizer", PRIMARY)


def test_a_valid_key_allows_every_payment_route_with_the_merchant_in_the_context(
    authorizer: ModuleType, aws: Aws
) -> None:
    key = issue_key(aws, "merchant-a")
    answer = authorizer.handler(authorizer_event(f"Bearer {key.token}"), FakeContext())
    assert answer["principalId"] == "merchant-a"
    assert answer["context"] == {"merchant_id": "merchant-a", "key_id": key.key_id}
    [statement] = answer["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    base = f"arn:aws:execute-api:{PRIMARY}:{ACCOUNT}:{API_ID}/v1"
    # The answer is cached per header for every route: it must cover both payment routes, nothing else.
    assert sorted(statement["Resource"]) == [f"{base}/GET/payments/*", f"{base}/POST/payments"]


def test_the_scheme_is_case_insensitive_and_the_header_name_too(authorizer: ModuleType, aws: Aws) -> None:
    key = issue_key(aws, "merchant-a")
    event = authorizer_event(None)
    event["headers"]["authorization"] = f"bearer {key.token}"
    assert allowed(authorizer.handler(event, FakeContext()))


def test_a_revoked_key_is_denied(authorizer: ModuleType, aws: Aws) -> None:
    key = issue_key(aws, "merchant-a")
    revoke_key(aws, key)
    assert not allowed(authorizer.handler(authorizer_event(f"Bearer {key.token}"), FakeContext()))


def test_an_unknown_key_and_a_wrong_secret_are_denied(authorizer: ModuleType, aws: Aws) -> None:
    key = issue_key(aws, "merchant-a")
    unknown = credentials.new_key(key.suffix)
    forged = credentials.ApiKey(key.suffix, key.key_id, credentials.new_key(key.suffix).secret)
    for candidate in (unknown, forged):
        assert not allowed(authorizer.handler(authorizer_event(f"Bearer {candidate.token}"), FakeContext()))


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "pdr_test_0123456789abcdef.x",
        "Bearer pdr_test_0123456789ABCDEF." + "a" * 43,
        "Bearer pdr_test_0123456789abcdef." + "a" * 42,
        "Bearer pdr_test_0123456789abcdef." + "a" * 44,
        "Bearer pdr_test_0123456789abcdef:" + "a" * 43,
        "Bearer " + "x" * 5000,
    ],
)
def test_missing_or_malformed_credentials_are_denied_without_reading_the_table(
    authorizer: ModuleType, aws: Aws, authorization: str | None
) -> None:
    attempts, remove = inject_errors("dynamodb", "GetItem", None, code="InternalServerError")
    try:
        assert not allowed(authorizer.handler(authorizer_event(authorization), FakeContext()))
    finally:
        remove()
    assert attempts == [0]


def test_another_environments_key_is_denied_before_any_read(authorizer: ModuleType, aws: Aws) -> None:
    # The same key id and secret, written for this environment, presented with another suffix.
    key = issue_key(aws, "merchant-a")
    other = credentials.ApiKey("prod", key.key_id, key.secret)
    attempts, remove = inject_errors("dynamodb", "GetItem", None, code="InternalServerError")
    try:
        assert not allowed(authorizer.handler(authorizer_event(f"Bearer {other.token}"), FakeContext()))
    finally:
        remove()
    assert attempts == [0]


def test_a_corrupt_record_authenticates_nobody(authorizer: ModuleType, aws: Aws) -> None:
    key = issue_key(aws, "merchant-a")
    aws.dynamodb[PRIMARY].update_item(
        TableName=MERCHANTS,
        Key={"key_id": {"S": key.key_id}},
        UpdateExpression="SET salt = :s",
        ExpressionAttributeValues={":s": {"S": "not-hex"}},
    )
    assert not allowed(authorizer.handler(authorizer_event(f"Bearer {key.token}"), FakeContext()))


def test_a_table_failure_raises_so_api_gateway_answers_503_and_caches_nothing(
    authorizer: ModuleType, aws: Aws, no_sleep: list[float], logs: list[str]
) -> None:
    key = issue_key(aws, "merchant-a")
    _, remove = inject_errors("dynamodb", "GetItem", None, code="InternalServerError")
    try:
        with pytest.raises(Exception, match="InternalServerError"):
            authorizer.handler(authorizer_event(f"Bearer {key.token}"), FakeContext())
    finally:
        remove()
    assert not any(key.secret in line for line in logs)


def test_nothing_secret_is_logged_for_any_decision(authorizer: ModuleType, aws: Aws, logs: list[str]) -> None:
    good = issue_key(aws, "merchant-a")
    revoked = issue_key(aws, "merchant-b")
    revoke_key(aws, revoked)
    tokens = [good.token, revoked.token, credentials.ApiKey("prod", good.key_id, good.secret).token, "garbage"]
    for token in tokens:
        authorizer.handler(authorizer_event(f"Bearer {token}"), FakeContext())
    text = "\n".join(logs)
    assert "credential accepted" in text
    assert "credential refused" in text
    for token in tokens:
        assert token not in text
    for secret in (good.secret, revoked.secret):
        assert secret not in text
    own = "\n".join(line for line in logs if line.startswith("{"))  # the function's JSON log lines
    assert "credential refused" in own
    assert "Bearer" not in own
    assert "secret_hash" not in own
    assert "salt" not in own


def test_a_policy_is_built_for_the_api_and_stage_of_the_call(authorizer: ModuleType, aws: Aws) -> None:
    key = issue_key(aws, "merchant-a")
    event = authorizer_event(f"Bearer {key.token}")
    event["methodArn"] = method_arn(method="GET", path="payments/0b6a2c43-1111-4111-8111-111111111111")
    [statement] = authorizer.handler(event, FakeContext())["policyDocument"]["Statement"]
    assert all(
        resource.startswith(f"arn:aws:execute-api:{PRIMARY}:{ACCOUNT}:{API_ID}/v1/")
        for resource in statement["Resource"]
    )


def test_an_event_without_method_arn_is_denied(authorizer: ModuleType) -> None:
    assert not allowed(authorizer.handler({"headers": {}}, FakeContext()))
    assert not allowed(authorizer.handler("nonsense", FakeContext()))


def test_a_valid_key_with_a_method_arn_that_is_not_execute_api_is_denied(authorizer: ModuleType, aws: Aws) -> None:
    key = issue_key(aws, "merchant-a")
    event = authorizer_event(f"Bearer {key.token}")
    event["methodArn"] = "arn:aws:lambda:us-east-1:123456789012:function:other"
    assert not allowed(authorizer.handler(event, FakeContext()))
