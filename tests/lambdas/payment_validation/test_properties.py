"""Property: whatever the body and headers, validation answers 2xx/4xx (421 only when not the active region),
writes nothing for a rejected request, and never logs a card number."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import unicodedata
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import event as label
from hypothesis import strategies as st
from payments_common.pan import luhn_valid

from tests.lambdas.conftest import (
    IDEMPOTENCY,
    PRIMARY,
    TRANSACTIONS,
    VALID_BODY,
    Aws,
    FakeContext,
    api_event,
    load_handler,
)

# ---------------------------------------------------------------- strategies


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    """A Luhn-valid 13-19 digit number, maybe grouped with spaces or dashes."""
    length = draw(st.integers(13, 19))
    body = draw(st.text("0123456789", min_size=length - 1, max_size=length - 1))
    assume(len(set(body)) >= 4)  # see card_numbers_in
    check = next(d for d in "0123456789" if luhn_valid(body + d))
    digits = body + check
    separator = draw(st.sampled_from(["", " ", "-", " - "]))
    groups = [digits[i : i + 4] for i in range(0, len(digits), 4)]
    return separator.join(groups)


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
    st.text(max_size=40),
    card_numbers(),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)

field_values = {
    "amount": st.one_of(
        st.sampled_from(["10.50", "0.01", "1000", "0", "-1", "1.234", "1e3", "10.5", " 1", ""]),
        st.integers(-5, 10**13),
        st.decimals(min_value=Decimal("0.001"), max_value=Decimal("1e12"), allow_nan=False, places=3).map(str),
        json_values,
    ),
    "currency": st.one_of(st.sampled_from(["USD", "EUR", "JPY", "KWD", "usd", "XXX", ""]), json_values),
    "merchant_id": st.one_of(st.sampled_from(["merchant-1", "m_2", "bad id"]), st.text(max_size=70), json_values),
    "card_token": st.one_of(
        st.sampled_from(["tok_visa_4242", "tok_decline_1"]),
        card_numbers(),
        card_numbers().map(lambda pan: f"tok_{pan}"),
        st.text(max_size=70),
        json_values,
    ),
}


@st.composite
def payment_bodies(draw: st.DrawFn, valid_weight: int = 2) -> dict[str, Any]:
    """Near-valid payment bodies: each field valid, mutated or missing; sometimes an extra field."""
    body: dict[str, Any] = {}
    for name, strategy in field_values.items():
        choice = draw(st.sampled_from(["valid"] * valid_weight + ["mutated", "missing"]))
        if choice == "valid":
            body[name] = VALID_BODY[name]
        elif choice == "mutated":
            body[name] = draw(strategy)
    if draw(st.sampled_from([False] * valid_weight + [True])):
        body[draw(st.text(max_size=10))] = draw(json_values)
    return body


@st.composite
def plausible_events(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly valid requests over a small pool of keys: accepted, replayed, reused (422)."""
    key = draw(st.sampled_from(["key-0001", "key-0002", "key-0003"]))
    body = draw(payment_bodies(valid_weight=20))
    if draw(st.booleans()):
        body["amount"] = draw(st.sampled_from(["10.50", "10.5", "20.00", 10, "99.99"]))
    return api_event(body, key=key)


def encode(value: Any) -> str:
    return json.dumps(value, default=str)


bodies = st.one_of(
    st.none(),
    st.text(max_size=200),
    payment_bodies().map(encode),
    json_values.map(encode),
    st.builds(
        lambda pan, pad: encode({**VALID_BODY, "note": pan, "pad": "x" * pad}), card_numbers(), st.integers(0, 17000)
    ),
    st.builds(lambda body: encode(body)[:-1], payment_bodies()),  # truncated JSON
)

key_names = st.sampled_from(["Idempotency-Key", "idempotency-key", "IDEMPOTENCY-KEY", "Idempotency_Key", "X-Other"])
key_values = st.one_of(
    st.sampled_from(["key-0001", "key-0002", "a", "has space", ""]),
    st.text(max_size=300),
    card_numbers(),
    st.integers(),
    st.none(),
)


@st.composite
def arbitrary_events(draw: st.DrawFn) -> dict[str, Any]:
    """Anything in headers, multi-value headers and body, plain or base64."""
    headers = draw(st.dictionaries(key_names, key_values, max_size=3))
    multi = draw(st.one_of(st.none(), st.dictionaries(key_names, st.lists(key_values, max_size=3), max_size=2)))
    body = draw(bodies)
    as_base64 = body is not None and draw(st.booleans())
    if as_base64:
        raw = body.encode("utf-8", "surrogatepass")
        body = base64.b64encode(raw).decode() if draw(st.booleans()) else "%%%"
    event: dict[str, Any] = {
        "resource": "/payments",
        "httpMethod": "POST",
        "headers": draw(st.one_of(st.just(headers), st.none(), st.just("nope"))),
        "multiValueHeaders": multi,
        "body": body,
        "isBase64Encoded": as_base64,
    }
    return event


api_events = st.one_of(arbitrary_events(), plausible_events())

# ---------------------------------------------------------------- property

_RUN = re.compile(r"[0-9](?:[ -]{0,3}[0-9])*")


def card_numbers_in(text: str) -> set[str]:
    """Card numbers (bare digits) in ``text``: digit runs of 13-19 digits that pass Luhn.

    Runs with fewer than four distinct digits are left out: ``0000000000000`` passes Luhn but
    also occurs in request ids, and the generated card numbers always have more variety.
    """
    normalized = unicodedata.normalize("NFKC", text)
    found = set()
    for match in _RUN.finditer(normalized):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits) and len(set(digits)) >= 4:
            found.add(digits)
    return found


def event_text(event: dict[str, Any]) -> str:
    """Everything a client sent: headers, body, and the decoded body when it is base64."""
    text = json.dumps(event, default=str, ensure_ascii=False)
    body = event.get("body")
    if event.get("isBase64Encoded") and isinstance(body, str):
        with contextlib.suppress(ValueError):
            text += "\n" + base64.b64decode(body, validate=True).decode("utf-8", "replace")
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def log_digit_runs(text: str) -> list[str]:
    """Every digit run of the logs, separators removed."""
    return [re.sub(r"[ -]", "", run) for run in _RUN.findall(unicodedata.normalize("NFKC", text))]


def counts(aws: Aws) -> tuple[int, int, int]:
    return len(aws.items(TRANSACTIONS)), len(aws.items(IDEMPOTENCY)), aws.queue_depth()


def check(
    validation: ModuleType, aws: Aws, logs: list[str], capsys: pytest.CaptureFixture[str], event: dict, fenced: bool
) -> None:
    before = counts(aws)
    logs.clear()
    response = validation.handler(event, FakeContext())
    status = response["statusCode"]
    label(f"status {status}")
    allowed = {400, 421} if fenced else {202, 400, 409, 422}
    assert status in allowed, response["body"]
    body = json.loads(response["body"])
    assert "Traceback" not in response["body"]
    if status == 421:
        assert body["error"]["code"] == "region_not_active"
        assert int(response["headers"]["Retry-After"]) > 0
    elif status >= 400:
        assert {"error", "message"} <= set(body)
        assert status == 503 or body.get("field")
    if status == 503:
        assert int(response["headers"]["Retry-After"]) > 0
    if status != 202:
        assert counts(aws) == before, "a rejected request wrote something"
    pans = card_numbers_in(event_text(event))
    if pans and status == 202:
        raise AssertionError("a request holding a card number was accepted")
    captured = capsys.readouterr()
    runs = log_digit_runs("\n".join([*logs, captured.out, captured.err]))
    for pan in pans:
        assert not any(pan in run for run in runs), "a card number reached a log line"


PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


VALID = api_event()
WITH_CARD_NUMBER = api_event({**VALID_BODY, "card_token": "4111 1111 1111 1111"})


@PROPERTY
@given(event=api_events)
@example(event=VALID)
@example(event=WITH_CARD_NUMBER)
def test_any_request_is_answered_safely(
    aws: Aws, logs: list[str], capsys: pytest.CaptureFixture[str], no_sleep: list[float], event: dict
) -> None:
    check(load_handler("payment_validation", PRIMARY), aws, logs, capsys, event, fenced=False)


@PROPERTY
@given(event=api_events)
@example(event=VALID)
def test_any_request_in_a_standby_region_writes_nothing(
    aws: Aws, logs: list[str], capsys: pytest.CaptureFixture[str], no_sleep: list[float], event: dict
) -> None:
    aws.put_lease("us-east-2", epoch=2)
    check(load_handler("payment_validation", PRIMARY), aws, logs, capsys, event, fenced=True)
