"""Card number (PAN) detection: a card token is fine, anything that looks like a card number is not.

A PAN is 13 to 19 digits, possibly grouped with spaces or dashes (up to three between two
digits), that passes the Luhn check. Text is NFKC-normalised first so full-width digits
count too. A digit run
longer than 19 digits is treated as a possible PAN as well: checking every window of it
would be slow and a payment request never needs such a number.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any

MIN_PAN_DIGITS = 13
MAX_PAN_DIGITS = 19
#: Digits, possibly separated by up to three spaces/dashes ("4111 1111", "4111-1111", "4111 - 1111").
_DIGIT_RUN = re.compile(r"[0-9](?:[ -]{0,3}[0-9])*")


def luhn_valid(digits: str) -> bool:
    """Whether a string of ASCII digits passes the Luhn (mod 10) check."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def contains_pan(text: str) -> bool:
    """Whether ``text`` holds something that looks like a card number."""
    normalized = unicodedata.normalize("NFKC", text)
    for match in _DIGIT_RUN.finditer(normalized):
        run = match.group()
        if len(run) < MIN_PAN_DIGITS:
            continue
        digits = run.replace(" ", "").replace("-", "")
        if len(digits) > MAX_PAN_DIGITS:
            return True
        if len(digits) >= MIN_PAN_DIGITS and luhn_valid(digits):
            return True
    return False


def _walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every (path, text) of a parsed JSON document: keys, strings and numbers."""
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            yield child, str(key)
            yield from _walk(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    elif value is not None and not isinstance(value, bool):
        yield path, str(value)


def find_pan_field(document: Any) -> str | None:
    """The path of the first key or value of a parsed JSON document that looks like a card number."""
    for path, text in _walk(document, ""):
        if contains_pan(text):
            return path or "body"
    return None
