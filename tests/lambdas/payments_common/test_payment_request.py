"""Request checks of POST /payments, without AWS: header, size, JSON, card numbers, fields."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from payments_common.pan import contains_pan
from payments_common.payment_request import MAX_BODY_BYTES, RequestError, parse, payment_id

from tests.lambdas.conftest import VALID_BODY, api_event


def rejected(event: dict[str, Any]) -> RequestError:
    with pytest.raises(RequestError) as caught:
        parse(event)
    assert caught.value.status == 400
    return caught.value


def body(**changes: Any) -> dict[str, Any]:
    result = dict(VALID_BODY)
    for name, value in changes.items():
        if value is ...:
            result.pop(name)
        else:
            result[name] = value
    return result


def test_valid_request_is_canonicalised() -> None:
    parsed = parse(api_event(body(amount="10.5")))
    assert parsed.idempotency_key == "key-0001"
    assert parsed.payment.canonical() == {
        "amount": "10.50",
        "currency": "USD",
        "merchant_id": "merchant-1",
        "card_token": "tok_visa_4242",
    }


@pytest.mark.parametrize(
    ("amount", "currency", "canonical"),
    [
        ("10.50", "USD", "10.50"),
        (10, "USD", "10.00"),
        (10.5, "EUR", "10.50"),
        ("1000", "JPY", "1000"),
        (1000, "JPY", "1000"),
        ("1.234", "KWD", "1.234"),
        ("0.01", "GBP", "0.01"),
        ("007.50", "USD", "7.50"),
    ],
)
def test_amounts_within_minor_units(amount: Any, currency: str, canonical: str) -> None:
    parsed = parse(api_event(body(amount=amount, currency=currency)))
    assert parsed.payment.canonical_amount() == canonical


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [
        ("10.501", "USD", "amount_precision"),
        ("1.5", "JPY", "amount_precision"),
        ("1.2345", "KWD", "amount_precision"),
        ("0", "USD", "amount_not_positive"),
        ("0.00", "USD", "amount_not_positive"),
        (-5, "USD", "amount_not_positive"),
        ("-5", "USD", "amount_format"),
        ("1e3", "USD", "amount_format"),
        (" 10", "USD", "amount_format"),
        ("10.50\n", "USD", "amount_format"),  # `$` would accept a trailing newline; the API model refuses it
        ("ten", "USD", "amount_format"),
        ("", "USD", "amount_format"),
        (True, "USD", "amount_type"),
        (None, "USD", "amount_type"),
        ([10], "USD", "amount_type"),
        ({"value": 10}, "USD", "amount_type"),
        ("1000000000000", "USD", "amount_too_large"),
    ],
)
def test_bad_amounts_name_the_field(amount: Any, currency: str, code: str) -> None:
    error = rejected(api_event(body(amount=amount, currency=currency)))
    assert (error.field, error.code) == ("amount", code)


@pytest.mark.parametrize("currency", ["XXX", "usd", "US", "", 840, None])
def test_unknown_currency_is_rejected(currency: Any) -> None:
    error = rejected(api_event(body(currency=currency)))
    assert error.field == "currency"


@pytest.mark.parametrize("field", ["amount", "currency", "merchant_id", "card_token"])
def test_missing_field_is_named(field: str) -> None:
    error = rejected(api_event(body(**{field: ...})))
    assert (error.field, error.code) == (field, "missing_field")


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("merchant_id", 42, "invalid_type"),
        ("merchant_id", "has space", "invalid_format"),
        ("merchant_id", "x" * 65, "invalid_format"),
        ("card_token", "visa_4242", "invalid_format"),
        ("card_token", ["tok_abcd"], "invalid_type"),
    ],
)
def test_wrong_types_and_formats(field: str, value: Any, code: str) -> None:
    error = rejected(api_event(body(**{field: value})))
    assert (error.field, error.code) == (field, code)


def test_unknown_field_is_refused() -> None:
    error = rejected(api_event(body(ammount="10.00")))
    assert (error.field, error.code) == ("ammount", "unknown_field")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", "malformed_json"),
        ('{"amount": NaN}', "malformed_json"),
        ('{"amount": "1", "amount": "1000"}', "duplicate_field"),
        ("[1, 2]", "invalid_body"),
        ('"just a string"', "invalid_body"),
        ("[" * 5000 + "]" * 5000, "malformed_json"),
    ],
)
def test_body_that_is_not_a_json_object(text: str, code: str) -> None:
    error = rejected(api_event(text))
    assert (error.field, error.code) == ("body", code)


def test_missing_and_oversize_bodies() -> None:
    event = api_event()
    event["body"] = None
    assert rejected(event).code == "missing_body"
    padded = json.dumps({**VALID_BODY, "pad": "x" * MAX_BODY_BYTES})
    assert rejected(api_event(padded)).code == "body_too_large"
    assert rejected(api_event(padded, base64_body=True)).code == "body_too_large"


def test_multibyte_body_is_measured_in_bytes() -> None:
    text = json.dumps({**VALID_BODY, "merchant_id": "é" * (MAX_BODY_BYTES // 2)}, ensure_ascii=False)
    assert len(text) <= MAX_BODY_BYTES < len(text.encode())
    assert rejected(api_event(text)).code == "body_too_large"


def test_base64_body_is_decoded() -> None:
    parsed = parse(api_event(base64_body=True))
    assert parsed.payment.currency == "USD"
    event = api_event()
    event.update(body="***", isBase64Encoded=True)
    assert rejected(event).code == "invalid_body"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (body(card_token="4111111111111111"), "card_token"),
        (body(card_token="tok_4111111111111111"), "card_token"),
        (body(merchant_id="4111-1111-1111-1111"), "merchant_id"),
        (body(note="card 4111 1111 1111 1111"), "note"),
        (body(amount=4111111111111111), "amount"),
    ],
)
def test_card_numbers_are_rejected_wherever_they_are(payload: dict[str, Any], field: str) -> None:
    error = rejected(api_event(payload))
    assert (error.code, error.field) == ("card_number_detected", field)
    assert "4111" not in error.message


def test_card_number_in_malformed_json_or_escaped() -> None:
    assert rejected(api_event('{"card": 4111111111111111')).code == "card_number_detected"
    escaped = '{"amount": "1", "currency": "USD", "merchant_id": "m", "card_token": "\\u0034111111111111111"}'
    assert rejected(api_event(escaped)).code == "card_number_detected"


@pytest.mark.parametrize("name", ["idempotency-key", "IDEMPOTENCY-KEY", "Idempotency-key"])
def test_header_lookup_ignores_case(name: str) -> None:
    event = api_event(key=None, headers={name: "abc-123"})
    assert parse(event).idempotency_key == "abc-123"


def test_key_only_in_multi_value_headers() -> None:
    event = api_event(key=None, multi={"idempotency-key": ["abc-123"]})
    event["headers"] = None
    assert parse(event).idempotency_key == "abc-123"


@pytest.mark.parametrize(
    ("headers", "multi", "code"),
    [
        ({}, {}, "missing_idempotency_key"),
        ({"Idempotency-Key": "a"}, {"idempotency-key": ["a", "b"]}, "invalid_idempotency_key"),
        ({"Idempotency-Key": "has space"}, {}, "invalid_idempotency_key"),
        ({"Idempotency-Key": "k" * 256}, {}, "invalid_idempotency_key"),
        ({"Idempotency-Key": ""}, {}, "invalid_idempotency_key"),
        ({"Idempotency-Key": 5}, {}, "invalid_idempotency_key"),
        ({"Idempotency-Key": "4111111111111111"}, {}, "card_number_detected"),
    ],
)
def test_bad_idempotency_keys(headers: dict[str, Any], multi: dict[str, Any], code: str) -> None:
    event = api_event(key=None, headers=headers, multi=multi)
    error = rejected(event)
    assert (error.field, error.code) == ("Idempotency-Key", code)


def test_event_that_is_not_a_dict() -> None:
    with pytest.raises(RequestError):
        parse(["not", "an", "event"])


def test_payment_id_is_deterministic_per_merchant_and_key() -> None:
    first = parse(api_event(key="k-1"))
    again = parse(api_event(body(amount="99.00"), key="k-1"))
    assert first.payment_id == again.payment_id == payment_id("merchant-1", "k-1")
    assert payment_id("merchant-2", "k-1") != first.payment_id
    assert payment_id("merchant-1", "k-2") != first.payment_id


def test_equivalent_bodies_hash_alike_and_different_ones_do_not() -> None:
    a = parse(api_event(body(amount="10.5")))
    b = parse(api_event(json.dumps(body(amount="AMOUNT")).replace('"AMOUNT"', "10.50")))
    c = parse(api_event(body(amount="10.51")))
    assert a.request_hash == b.request_hash != c.request_hash


# --- attacks of issue #15: card numbers whatever the separators and wherever they are -------------

_LONG_RUN = re.compile(r"[0-9](?:[\W_]*[0-9])*")


def assert_no_long_digit_run(text: str) -> None:
    """No run of 12 or more digits (any separators) in ``text``: nothing echoed can hold a card number."""
    for run in _LONG_RUN.findall(text):
        assert len(re.sub(r"[^0-9]", "", run)) < 12, text


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (body(merchant_id="4111_1111_1111_1111"), "merchant_id"),
        (body(card_token="tok_4111_1111_1111_1111"), "card_token"),
        (body(card_token="tok_x_4111_1111_1111_1111_y"), "card_token"),
        (body(merchant_id="4111-1111_1111-1111"), "merchant_id"),
        (body(merchant_id="٤١١١١١١١١١١١١١١١"), "merchant_id"),  # Arabic-Indic digits
    ],
)
def test_card_numbers_grouped_with_any_separator_are_rejected(payload: dict[str, Any], field: str) -> None:
    error = rejected(api_event(payload))
    assert (error.code, error.field) == ("card_number_detected", field)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"4111111111111111": 1}', "****************"),
        ('{"meta": {"4111 1111 1111 1111": "x"}}', "meta.**** **** **** ****"),
        ('{"items": [{"a": 1}, {"4111_1111_1111_1111": true}]}', "items[1].****_****_****_****"),
        ('{"\\u0034111111111111111": 1}', "****************"),
        ('{"x": [[{"\\u0034111\\u002d1111\\u002d1111\\u002d1111": null}]]}', "x[0][0].****-****-****-****"),
    ],
)
def test_card_number_as_a_key_is_rejected_with_the_path_masked(text: str, field: str) -> None:
    document = {**VALID_BODY, **json.loads(text)}
    error = rejected(api_event(json.dumps(document, ensure_ascii=False)))
    assert (error.code, error.field) == ("card_number_detected", field)
    assert_no_long_digit_run(error.field + error.message)


def test_unknown_key_with_a_long_digit_run_is_masked() -> None:
    error = rejected(api_event(body(**{"note_411111111111": "x"})))
    assert (error.code, error.field) == ("unknown_field", "note_************")


@pytest.mark.parametrize(
    ("where", "code", "field"),
    [
        ('"amount": 1E+1000000000000000000', "number_out_of_range", "amount"),
        ('"amount": 1E-1000000000000000000', "amount_precision", "amount"),  # Decimal holds it
        ('"amount": 1E+999999999', "amount_too_large", "amount"),
        ('"amount": "10.50", "extra": 1E+1000000000000000000', "number_out_of_range", "extra"),
        ('"amount": "10.50", "extra": {"deep": [1, 1e+1000000000000000000]}', "number_out_of_range", "extra.deep[1]"),
    ],
)
def test_huge_exponent_anywhere_is_a_400_naming_the_field(where: str, code: str, field: str) -> None:
    text = '{"currency": "USD", "merchant_id": "m", "card_token": "tok_abcd", ' + where + "}"
    error = rejected(api_event(text))
    assert (error.code, error.field) == (code, field)


@pytest.mark.parametrize("amount", ["10.00000000000000000000", "1.00000000000000000001"])
def test_long_decimals_are_too_many_decimals_not_a_card_number(amount: str) -> None:
    error = rejected(api_event(body(amount=amount)))
    assert (error.code, error.field) == ("amount_precision", "amount")


def test_long_decimals_as_a_json_number_are_too_many_decimals() -> None:
    text = json.dumps(body(amount="AMOUNT")).replace('"AMOUNT"', "10.00000000000000000000")
    assert (rejected(api_event(text)).code, rejected(api_event(text)).field) == ("amount_precision", "amount")


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"Idempotency-Key": "k-1", "X-Card": "4111 1111 1111 1111"}, "X-Card"),
        ({"Idempotency-Key": "k-1", "X-4111111111111111": "1"}, "X-****************"),
        ({"Idempotency-Key": "4111_1111_1111_1111"}, "Idempotency-Key"),
    ],
)
def test_card_number_in_any_header_is_rejected(headers: dict[str, str], field: str) -> None:
    error = rejected(api_event(key=None, headers=headers))
    assert (error.code, error.field) == ("card_number_detected", field)


def test_card_number_in_a_multi_value_header_is_rejected() -> None:
    event = api_event(multi={"X-Note": ["fine", "4111-1111-1111-1111"]})
    assert (rejected(event).code, rejected(event).field) == ("card_number_detected", "X-Note")


def test_transport_headers_are_not_read_as_card_numbers() -> None:
    # Two client IPs read as one 16-digit run, which passes Luhn: API Gateway sets this header.
    forwarded = "4.111.111.11, 111.111.1"
    assert contains_pan(forwarded)
    event = api_event(headers={"X-Forwarded-For": forwarded, "X-Amzn-Trace-Id": "Root=1-41111111-111111111111"})
    assert parse(event).payment.currency == "USD"


@pytest.mark.parametrize(
    "event",
    [
        {"headers": ["Idempotency-Key", "k"], "body": "{}"},
        {"headers": {"Idempotency-Key": "k"}, "multiValueHeaders": {"X": "not-a-list"}, "body": 5},
        {"headers": {5: "k", None: "x"}, "body": "{}"},
        {"headers": {"Idempotency-Key": "k"}, "body": "{}", "isBase64Encoded": "yes"},
    ],
)
def test_odd_event_shapes_are_400s(event: dict[str, Any]) -> None:
    rejected(event)


@pytest.mark.parametrize(
    ("query", "multi", "field"),
    [
        ({"card": "4111 1111 1111 1111"}, None, "query.card"),
        ({"4111111111111111": ""}, None, "query.****************"),
        (None, {"note": ["ok", "4111_1111_1111_1111"]}, "query.note"),
    ],
)
def test_card_number_in_the_query_string_is_rejected(query: Any, multi: Any, field: str) -> None:
    event = api_event()
    event.update(queryStringParameters=query, multiValueQueryStringParameters=multi)
    error = rejected(event)
    assert (error.code, error.field) == ("card_number_detected", field)


def test_a_uuid_idempotency_key_is_never_read_as_a_card_number() -> None:
    # Its dashes join 32 hex digits into runs; this one holds 4111111111111111 across them.
    key = "41111111-1111-1111-1111-00000000abcd"
    assert contains_pan(key)
    assert parse(api_event(key=key)).idempotency_key == key
    assert parse(api_event(key=key.upper())).idempotency_key == key.upper()
    # The same digits not written as a UUID are refused.
    error = rejected(api_event(key="4111111111111111-00000000abcd"))
    assert (error.code, error.field) == ("card_number_detected", "Idempotency-Key")
