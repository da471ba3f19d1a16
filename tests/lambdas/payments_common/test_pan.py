"""Card-number detection: Luhn, grouping, lengths, full-width digits, where in a document."""

from __future__ import annotations

import pytest
from payments_common.pan import contains_pan, find_pan_field, luhn_valid

# Well-known test card numbers (Visa, Mastercard, Amex 15 digits, Discover, 13-digit Visa, 19-digit).
TEST_PANS = [
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "4222222222222",
    "6304000000000000018",
]


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
        "378282246310005",
        "tok_4111111111111111",
        "".join(chr(0xFF10 + int(d)) for d in "4111111111111111"),  # full-width digits normalise to ASCII
        "4111 1111-1111 1111",
        "4111 - 1111 - 1111 - 1111",
        "4111  1111  1111  1111",
        "1" * 25,  # a run too long to be anything but suspicious
    ],
)
def test_detects_card_numbers(text: str) -> None:
    assert contains_pan(text)


@pytest.mark.parametrize(
    "text",
    [
        "tok_visa_4242",
        "4111111111111112",  # fails Luhn
        "411111111111",  # 12 digits: too short
        "2024-05-01T12:00:00.123Z",
        "10.50",
        "+1 555-123-4567",
        "4111    1111 1111 1111",  # four spaces split the run into short pieces
    ],
)
def test_ignores_what_is_not_a_card_number(text: str) -> None:
    assert not contains_pan(text)


def test_find_pan_field_names_the_path() -> None:
    document = {"amount": "1", "meta": {"notes": ["ok", "pay with 4111 1111 1111 1111"]}}
    assert find_pan_field(document) == "meta.notes[1]"


def test_find_pan_field_checks_keys_and_numbers() -> None:
    assert find_pan_field({"4111111111111111": 1}) == "4111111111111111"
    assert find_pan_field({"amount": 4111111111111111}) == "amount"
    assert find_pan_field({"amount": "10.00", "card_token": "tok_abcd"}) is None
