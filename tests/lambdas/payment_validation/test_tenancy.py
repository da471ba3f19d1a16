"""Tenant binding: the authenticated merchant owns the payment, its id and its idempotency record."""

from __future__ import annotations

import json
from types import ModuleType

import pytest

from tests.lambdas.conftest import (
    IDEMPOTENCY,
    PRIMARY,
    TRANSACTIONS,
    VALID_BODY,
    Aws,
    FakeContext,
    api_event,
    authorizer_context,
    decode,
    load_handler,
)


@pytest.fixture
def validation(aws: Aws) -> ModuleType:
    return load_handler("payment_validation", PRIMARY)


def body_of(merchant: str, amount: str = "10.50") -> dict[str, str]:
    return {**VALID_BODY, "merchant_id": merchant, "amount": amount}


def test_two_merchants_with_the_same_idempotency_key_get_two_independent_payments(
    validation: ModuleType, aws: Aws, context: FakeContext
) -> None:
    a = validation.handler(api_event(body_of("merchant-a"), key="shared-key", merchant="merchant-a"), context)
    b = validation.handler(api_event(body_of("merchant-b", "99.00"), key="shared-key", merchant="merchant-b"), context)
    assert (a["statusCode"], b["statusCode"]) == (202, 202)
    ids = {decode(a)["payment_id"], decode(b)["payment_id"]}
    assert len(ids) == 2
    owners = {aws.item(TRANSACTIONS, {"payment_id": pid})["merchant_id"]["S"] for pid in ids}
    assert owners == {"merchant-a", "merchant-b"}
    assert len(aws.items(IDEMPOTENCY)) == 2
    # Each merchant's retry replays its own answer.
    again = validation.handler(
        api_event(body_of("merchant-b", "99.00"), key="shared-key", merchant="merchant-b"), context
    )
    assert decode(again)["payment_id"] == decode(b)["payment_id"]


def test_a_body_naming_another_merchant_is_403_and_writes_nothing(
    validation: ModuleType, aws: Aws, context: FakeContext
) -> None:
    response = validation.handler(api_event(body_of("merchant-b"), merchant="merchant-a"), context)
    assert response["statusCode"] == 403
    body = decode(response)
    assert (body["error"], body["field"]) == ("merchant_mismatch", "merchant_id")
    assert "merchant-b" not in response["body"]
    assert aws.items(TRANSACTIONS) == []
    assert aws.items(IDEMPOTENCY) == []


@pytest.mark.parametrize("context_value", [{}, {"authorizer": {}}, {"authorizer": {"merchant_id": "bad id"}}])
def test_without_an_authenticated_merchant_the_request_is_401_and_writes_nothing(
    validation: ModuleType, aws: Aws, context: FakeContext, context_value: dict
) -> None:
    event = api_event(merchant=None)
    event["requestContext"].update(context_value)
    response = validation.handler(event, context)
    assert (response["statusCode"], decode(response)["error"]) == (401, "unauthenticated")
    assert aws.items(TRANSACTIONS) == []


def test_merchant_a_cannot_read_merchant_bs_payment(validation: ModuleType, aws: Aws, context: FakeContext) -> None:
    created = validation.handler(api_event(body_of("merchant-b"), merchant="merchant-b"), context)
    payment_id = decode(created)["payment_id"]
    status = load_handler("payment_status", PRIMARY)

    def get(merchant: str) -> dict:
        event = {"pathParameters": {"id": payment_id}, "headers": {}, "requestContext": authorizer_context(merchant)}
        return status.handler(event, context)

    assert get("merchant-b")["statusCode"] == 200
    refused = get("merchant-a")
    assert refused["statusCode"] == 404
    assert json.loads(refused["body"])["error"] == "not_found"
    assert payment_id not in refused["body"]
