"""GET /payments/{id}: 200 with a masked token, 404, 400, 503 when DynamoDB fails."""

from __future__ import annotations

import json
import re
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.lambdas.conftest import (
    PRIMARY,
    TRANSACTIONS,
    VALID_BODY,
    Aws,
    FakeContext,
    api_event,
    authorizer_context,
    load_handler,
)


@pytest.fixture
def status_fn(aws: Aws) -> ModuleType:
    return load_handler("payment_status", PRIMARY)


def get(
    module: ModuleType, context: FakeContext, params: Any, merchant: str | None = VALID_BODY["merchant_id"]
) -> tuple[int, dict[str, Any]]:
    event = {
        "resource": "/payments/{id}",
        "httpMethod": "GET",
        "pathParameters": params,
        "headers": {},
        "requestContext": authorizer_context(merchant),
    }
    response = module.handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def test_known_payment_with_masked_token(status_fn: ModuleType, aws: Aws, context: FakeContext) -> None:
    created = load_handler("payment_validation", PRIMARY).handler(api_event(), context)
    payment_id = json.loads(created["body"])["payment_id"]
    status, body = get(status_fn, context, {"id": payment_id})
    assert status == 200
    assert body["payment_id"] == payment_id
    assert (body["status"], body["amount"], body["currency"], body["version"]) == ("PENDING", "10.50", "USD", 1)
    token = VALID_BODY["card_token"]
    assert body["card_token"] == "*" * (len(token) - 4) + token[-4:]
    assert token not in json.dumps(body)
    assert "request_hash" not in body


def test_unknown_payment_is_404(status_fn: ModuleType, aws: Aws, context: FakeContext) -> None:
    status, body = get(status_fn, context, {"id": "00000000-0000-4000-8000-000000000000"})
    assert (status, body["error"]) == (404, "not_found")


def test_another_merchants_payment_is_404_exactly_like_an_unknown_id(
    status_fn: ModuleType, aws: Aws, context: FakeContext
) -> None:
    created = load_handler("payment_validation", PRIMARY).handler(api_event(), context)
    payment_id = json.loads(created["body"])["payment_id"]
    assert get(status_fn, context, {"id": payment_id})[0] == 200
    other = get(status_fn, context, {"id": payment_id}, merchant="merchant-2")
    unknown = get(status_fn, context, {"id": "00000000-0000-4000-8000-000000000000"}, merchant="merchant-2")
    assert other == unknown
    assert other[0] == 404


def test_without_an_authenticated_merchant_nothing_is_read(
    status_fn: ModuleType, aws: Aws, context: FakeContext
) -> None:
    aws.dynamodb[PRIMARY].delete_table(TableName=TRANSACTIONS)  # a read would answer 503
    status, body = get(status_fn, context, {"id": "00000000-0000-4000-8000-000000000000"}, merchant=None)
    assert (status, body["error"]) == (401, "unauthenticated")


@pytest.mark.parametrize(
    "params",
    [
        {"id": "not-a-uuid"},
        {"id": "00000000-0000-4000-8000-00000000000G"},
        {"id": "ABCDEF00-0000-4000-8000-000000000000"},
        {"id": 5},
        {},
        None,
    ],
)
def test_malformed_id_is_400(status_fn: ModuleType, aws: Aws, context: FakeContext, params: Any) -> None:
    status, body = get(status_fn, context, params)
    assert (status, body["field"]) == (400, "id")


def test_dynamodb_failure_is_503(status_fn: ModuleType, aws: Aws, context: FakeContext) -> None:
    aws.dynamodb[PRIMARY].delete_table(TableName=TRANSACTIONS)
    status, body = get(status_fn, context, {"id": "00000000-0000-4000-8000-000000000000"})
    assert (status, body["error"]) == (503, "temporarily_unavailable")


@pytest.mark.parametrize(("token", "masked"), [("tok_abcdefgh", "********efgh"), ("abc", "abc")])
def test_mask_token(status_fn: ModuleType, token: str, masked: str) -> None:
    assert status_fn.mask_token(token) == masked


_ID_TEXT = st.one_of(
    st.text(max_size=40),
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.sampled_from(["4111 1111 1111 1111", "4111_1111_1111_1111", "41111111-1111-1111-1111-111111111111"]),
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=5), max_size=2),
)
_PATH_PARAMETERS = st.one_of(
    st.none(),
    st.text(max_size=10),
    st.dictionaries(st.sampled_from(["id", "payment_id", "other"]), _ID_TEXT, max_size=2),
)
_EVENTS = st.one_of(
    st.builds(
        lambda params: {
            "httpMethod": "GET",
            "pathParameters": params,
            "headers": {},
            "requestContext": authorizer_context("merchant-a"),
        },
        _PATH_PARAMETERS,
    ),
    st.one_of(st.none(), st.integers(), st.text(max_size=10), st.lists(st.integers(), max_size=2)),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=_EVENTS)
def test_any_path_input_is_a_4xx_that_echoes_nothing(
    status_fn: ModuleType, logs: list[str], capsys: pytest.CaptureFixture[str], event: Any
) -> None:
    logs.clear()
    response = status_fn.handler(event, FakeContext())
    body = json.loads(response["body"])
    if isinstance(event, dict):  # an authenticated request: the path input decides
        assert response["statusCode"] in {400, 404}, response["body"]
        assert body["field"] == "id"
    else:  # not an API Gateway event at all: no authenticated merchant
        assert (response["statusCode"], body["error"]) == (401, "unauthenticated"), response["body"]
    out = capsys.readouterr().out
    # The function's own lines (botocore's DEBUG lines of the lookup are the test's log level, not Lambda's).
    own = [line for line in logs if not line.startswith("botocore")]
    params = event.get("pathParameters") if isinstance(event, dict) else None
    value = params.get("id", params.get("payment_id")) if isinstance(params, dict) else None
    if isinstance(value, str) and re.search(r"[0-9]", value):
        assert value not in response["body"]
        assert not any(value in line for line in own)
    codes = [json.loads(line)["code"] for line in out.splitlines() if '"PaymentRejected"' in line]
    assert codes == ([] if response["statusCode"] == 404 else [body["error"]])
