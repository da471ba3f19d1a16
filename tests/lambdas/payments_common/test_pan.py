"""Card-number detection: Luhn, any separators, every window, Unicode digits, masking, where in a document."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from payments_common.pan import (
    MASK_MIN_DIGITS,
    contains_pan,
    digits_hold_pan,
    find_pan_field,
    luhn_valid,
    mask,
    normalize,
)

# Well-known test card numbers (Visa, Mastercard, Amex 15 digits, Discover, 13-digit Visa, 19-digit).
TEST_PANS = [
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "4222222222222",
    "6304000000000000018",
]


def _digits_in(text: str, script_zero: int) -> str:
    return "".join(chr(script_zero + int(d)) for d in text)


@pytest.mark.parametrize("pan", TEST_PANS)
def test_luhn_accepts_test_card_numbers(pan: str) -> None:
    assert luhn_valid(pan)


@pytest.mark.parametrize("digits", ["4111111111111112", "1234567890123", "5555555555554445"])
def test_luhn_rejects_wrong_check_digit(digits: str) -> None:
    assert not luhn_valid(digits)


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",
        "card 4111 1111 1111 1111 please",
        "4111-1111-1111-1111",
        "4111_1111_1111_1111",
        "tok_4111_1111_1111_1111",
        "m-4111.1111/1111:1111",
        "4111    1111 1111 1111",
        "4111\t1111\n1111\u00a01111",
        "4111 - 1111 - 1111 - 1111",
        "378282246310005",
        "tok_4111111111111111",
        _digits_in("4111111111111111", 0xFF10),  # full-width (NFKC)
        _digits_in("4111111111111111", 0x0660),  # Arabic-Indic
        _digits_in("4111111111111111", 0x0966),  # Devanagari
        "\u2463111111111111111",  # circled four
        "9" * 7 + "4111111111111111" + "9" * 7,  # a card number inside a longer run
        "00000000000000000000004111111111111111",
    ],
)
def test_detects_card_numbers(text: str) -> None:
    assert contains_pan(text)


@pytest.mark.parametrize(
    "text",
    [
        "tok_visa_4242",
        "4111111111111114",  # fails Luhn, and so does every window of it
        "411111111111",  # 12 digits: too short
        "2024-05-01T12:00:00.123Z",
        "10.50",
        "10.00000000000000000000",  # zeros: no card number starts with 0
        "0" * 40,
        "999999999999.99",
        "+1 555-123-4567",
        "4111a1111b1111c1111",  # letters end a run
    ],
)
def test_ignores_what_is_not_a_card_number(text: str) -> None:
    assert not contains_pan(text)


def _brute_force(digits: str) -> bool:
    return any(
        digits[start] != "0" and luhn_valid(digits[start : start + length])
        for start in range(len(digits))
        for length in range(13, 20)
        if start + length <= len(digits)
    )


@settings(max_examples=400, deadline=None)
@given(digits=st.text("0123456789", max_size=48))
def test_every_window_is_checked(digits: str) -> None:
    assert digits_hold_pan(digits) == _brute_force(digits)


def test_normalize_turns_unicode_digits_into_ascii() -> None:
    assert normalize(_digits_in("0123456789", 0x0660)) == "0123456789"
    assert normalize("\uff14\u2463") == "44"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("4111111111111111", "****************"),
        ("meta.4111_1111_1111_1111", "meta.****_****_****_****"),
        ("a[0].4111111111111111", "a[*].****************"),  # one run: the index joins it
        (_digits_in("4111111111111111", 0x0660), "*" * 16),
        ("notes[12]", "notes[12]"),
        ("12345678901", "12345678901"),  # 11 digits may stay
    ],
)
def test_mask_hides_every_long_digit_run(text: str, masked: str) -> None:
    assert mask(text) == masked


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=80))
def test_masked_text_never_holds_a_long_digit_run(text: str) -> None:
    runs = re.findall(r"[0-9](?:[\W_]*[0-9])*", mask(text))
    assert all(len(re.sub(r"[^0-9]", "", run)) < MASK_MIN_DIGITS for run in runs)


def test_find_pan_field_names_the_path() -> None:
    document = {"amount": "1", "meta": {"notes": ["ok", "pay with 4111 1111 1111 1111"]}}
    assert find_pan_field(document) == "meta.notes[1]"


def test_find_pan_field_checks_keys_and_numbers_and_masks_keys() -> None:
    assert find_pan_field({"4111111111111111": 1}) == "****************"
    assert find_pan_field({"a": [{"b": {"4111-1111-1111-1111": 1}}]}) == "a[0].b.****-****-****-****"
    assert find_pan_field({"amount": 4111111111111111}) == "amount"
    assert find_pan_field({"amount": "10.00", "card_token": "tok_abcd"}) is None
    assert find_pan_field({"k" * 65 + "4111111111111111": 1}) == "?"


def test_find_pan_field_survives_deep_nesting() -> None:
    document: object = "4111111111111111"
    for _ in range(5000):
        document = [document]
    assert find_pan_field(document) == "[0]" * 5000
