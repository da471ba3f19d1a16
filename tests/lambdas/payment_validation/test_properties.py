"""Property: whatever the body, headers and event shape, validation answers 2xx/4xx (421 only when
not the active region), writes nothing for a rejected request, counts every rejection by code, and
never lets a card number (any separators, Unicode digits) reach a response or a log line."""

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


#: Zero of digit scripts a client may type: ASCII, full-width, Arabic-Indic, Devanagari.
DIGIT_ZEROS = (0x30, 0xFF10, 0x0660, 0x0966)


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    """A Luhn-valid 13-19 digit number, maybe grouped with any separator, maybe in another script."""
    length = draw(st.integers(13, 19))
    body = draw(st.text("0123456789", min_size=length - 1, max_size=length - 1))
    assume(len(set(body)) >= 4)  # see card_numbers_in
    assume(body[0] != "0")  # no card number starts with 0
    check = next(d for d in "0123456789" if luhn_valid(body + d))
    digits = body + check
    separator = draw(st.sampled_from(["", " ", "-", " - ", "_", ".", "/", "\u00a0", "    ", "*"]))
    groups = [digits[i : i + 4] for i in range(0, len(digits), 4)]
    zero = draw(st.sampled_from(DIGIT_ZEROS))
    return separator.join(groups).translate({ord(str(d)): chr(zero + d) for d in range(10)})


#: JSON numbers Python's ``Decimal`` cannot hold, or only just.
huge_numbers = st.builds(
    lambda mantissa, sign, exponent: f"{mantissa}E{sign}{exponent}",
    st.sampled_from(["1", "9.99", "4111111111111111"]),
    st.sampled_from(["+", "-", ""]),
    st.sampled_from(["1000000000000000000", "999999999999999999", "99999999", "400"]),
)


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
    st.text(max_size=40),
    card_numbers(),
)
json_keys = st.one_of(st.text(max_size=12), card_numbers())
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(json_keys, children, max_size=4)),
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


_HUGE_MARKER = "HUGE-NUMBER"


def encode(value: Any, huge: str | None = None, ascii_only: bool = True) -> str:
    """JSON text; ``huge`` replaces every string equal to the marker (so it can sit anywhere)."""
    text = json.dumps(value, default=str, ensure_ascii=ascii_only)
    return text.replace(f'"{_HUGE_MARKER}"', huge) if huge else text


@st.composite
def bodies_with_huge_numbers(draw: st.DrawFn) -> str:
    """A payment body with an out-of-range JSON number as one field's value, or deeper."""
    body = draw(payment_bodies(valid_weight=6))
    where = draw(st.sampled_from(["amount", "currency", "extra", "nested"]))
    if where == "nested":
        body["extra"] = {"a": [1, _HUGE_MARKER]}
    else:
        body[where] = _HUGE_MARKER
    return encode(body, huge=draw(huge_numbers))


bodies = st.one_of(
    st.none(),
    st.text(max_size=200),
    payment_bodies().map(encode),
    json_values.map(encode),
    st.builds(
        lambda pan, pad: encode({**VALID_BODY, "note": pan, "pad": "x" * pad}), card_numbers(), st.integers(0, 17000)
    ),
    st.builds(lambda body: encode(body)[:-1], payment_bodies()),  # truncated JSON
    st.builds(lambda body: encode(body, ascii_only=False), payment_bodies()),  # keys and values as typed
    bodies_with_huge_numbers(),
    st.builds(lambda pan: encode({**VALID_BODY, "meta": [{pan: 1}]}), card_numbers()),
)

key_names = st.one_of(
    st.sampled_from(["Idempotency-Key", "idempotency-key", "IDEMPOTENCY-KEY", "Idempotency_Key", "X-Other"]),
    st.text(max_size=20),
    card_numbers(),
)
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
        "queryStringParameters": draw(
            st.one_of(st.none(), st.dictionaries(st.text(max_size=8), key_values, max_size=2))
        ),
        "body": body,
        "isBase64Encoded": as_base64,
    }
    return event


@st.composite
def odd_events(draw: st.DrawFn) -> Any:
    """Events of any shape: not a dict, or a dict whose parts have the wrong types."""
    part = st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.text(max_size=5), max_size=3))
    if draw(st.booleans()):
        return draw(part)
    event = draw(arbitrary_events())
    for name in draw(st.lists(st.sampled_from(sorted(event)), max_size=3)):
        event[name] = draw(st.one_of(part, st.dictionaries(st.text(max_size=5), part, max_size=3)))
    return event


api_events = st.one_of(arbitrary_events(), plausible_events(), odd_events())

# ---------------------------------------------------------------- property

#: Digits joined by anything that is neither a letter nor a digit (the issue's definition).
_RUN = re.compile(r"[0-9](?:[\W_]*[0-9])*")
_EMF_TIMESTAMP = re.compile(r'"Timestamp":\s*[0-9]+')
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def ascii_digits(text: str) -> str:
    """NFKC, then every Unicode decimal digit as ASCII (written here, not taken from the code under test)."""
    normalized = unicodedata.normalize("NFKC", text)
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in normalized)


def card_numbers_in(text: str) -> set[str]:
    """Card numbers (bare digits) in ``text``: digit runs of 13-19 digits that pass Luhn.

    Runs with fewer than four distinct digits are left out: ``0000000000000`` passes Luhn but
    also occurs in request ids, and the generated card numbers always have more variety.
    """
    found = set()
    for match in _RUN.finditer(ascii_digits(text)):
        digits = re.sub(r"[^0-9]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits) and len(set(digits)) >= 4:
            found.add(digits)
    return found


def event_text(event: Any) -> str:
    """Everything a client sent: headers, body, and the decoded body when it is base64."""
    text = json.dumps(event, default=str, ensure_ascii=False)
    if isinstance(event, dict) and isinstance(event.get("body"), str):
        # The body as the handler reads it: JSON escapes (\u0034) decoded.
        with contextlib.suppress(ValueError, RecursionError, ArithmeticError):
            text += "\n" + json.dumps(json.loads(event["body"], parse_float=str), ensure_ascii=False)
    body = event.get("body") if isinstance(event, dict) else None
    if isinstance(event, dict) and event.get("isBase64Encoded") and isinstance(body, str):
        with contextlib.suppress(ValueError):
            text += "\n" + base64.b64decode(body, validate=True).decode("utf-8", "replace")
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def log_digit_runs(text: str) -> list[str]:
    """Every digit run of the logs, separators removed."""
    return [re.sub(r"[^0-9]", "", run) for run in _RUN.findall(ascii_digits(text))]


def rejections(text: str) -> list[str]:
    """The ``code`` of every ``PaymentRejected`` EMF blob printed to stdout."""
    codes = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            blob = json.loads(line)
            if isinstance(blob, dict) and "PaymentRejected" in blob:
                codes.append(blob["code"])
    return codes


def counts(aws: Aws) -> tuple[int, int, int]:
    return len(aws.items(TRANSACTIONS)), len(aws.items(IDEMPOTENCY)), aws.queue_depth()


def check(
    validation: ModuleType, aws: Aws, logs: list[str], capsys: pytest.CaptureFixture[str], event: Any, fenced: bool
) -> None:
    before = counts(aws)
    logs.clear()
    response = validation.handler(event, FakeContext())
    status = response["statusCode"]
    label(f"status {status}")
    # 401: no authenticated merchant (an event without the authorizer), 403: the body names another merchant.
    allowed = {400, 401, 403, 421} if fenced else {202, 400, 401, 403, 409, 422}
    assert status in allowed, response["body"]
    body = json.loads(response["body"])
    assert "Traceback" not in response["body"]
    if status == 421:
        assert body["error"] == "region_not_active"
        assert int(response["headers"]["Retry-After"]) > 0
    elif status >= 400:
        assert {"error", "message"} <= set(body)
        assert status == 503 or body.get("field")
    # Nothing in the answer (payment ids aside) holds a card number, or a long digit run in the field.
    assert not card_numbers_in(_UUID.sub("", response["body"])), response["body"]
    assert all(len(run) < 12 for run in log_digit_runs(str(body.get("field", ""))))
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
    # The function's own lines and metrics (botocore's DEBUG lines are the test's log level, not
    # Lambda's) hold no Luhn-valid digit run at all, aside from what the service itself generates:
    # ids (UUIDs) and EMF timestamps (13-digit epoch milliseconds).
    own = "\n".join([line for line in logs if not line.startswith("botocore")] + [captured.out])
    assert not card_numbers_in(_EMF_TIMESTAMP.sub("", _UUID.sub("", own))), own
    counted = rejections(captured.out)
    if status in (400, 401, 403):
        assert counted == [body["error"]], "every rejection is counted once, by its code"
        assert body["error"] in validation.payment_request.ERROR_CODES
        assert not [line for line in logs if " ERROR " in line or '"level":"ERROR"' in line.replace(" ", "")]
    else:
        assert counted == []


PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


VALID = api_event()
WITH_CARD_NUMBER = api_event({**VALID_BODY, "card_token": "4111 1111 1111 1111"})
UNDERSCORED_IN_MERCHANT = api_event({**VALID_BODY, "merchant_id": "4111_1111_1111_1111"})
KEY_IS_A_CARD_NUMBER = api_event('{"amount":"1","x":[{"\\u0034111111111111111":1}]}')
HUGE_EXPONENT = api_event(
    '{"amount":1E+1000000000000000000,"currency":"USD","merchant_id":"m","card_token":"tok_abcd"}'
)


@PROPERTY
@given(event=api_events)
@example(event=VALID)
@example(event=WITH_CARD_NUMBER)
@example(event=UNDERSCORED_IN_MERCHANT)
@example(event=KEY_IS_A_CARD_NUMBER)
@example(event=HUGE_EXPONENT)
def test_any_request_is_answered_safely(
    aws: Aws, logs: list[str], capsys: pytest.CaptureFixture[str], no_sleep: list[float], event: Any
) -> None:
    check(load_handler("payment_validation", PRIMARY), aws, logs, capsys, event, fenced=False)


@PROPERTY
@given(event=api_events)
@example(event=VALID)
def test_any_request_in_a_standby_region_writes_nothing(
    aws: Aws, logs: list[str], capsys: pytest.CaptureFixture[str], no_sleep: list[float], event: Any
) -> None:
    aws.put_lease("us-east-2", epoch=2)
    check(load_handler("payment_validation", PRIMARY), aws, logs, capsys, event, fenced=True)
