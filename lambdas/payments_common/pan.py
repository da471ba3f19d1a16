"""Card number (PAN) detection and masking: a card token is fine, anything that looks like a card number is not.

Text is normalised first: NFKC (full-width, circled, superscript digits) and then every other
Unicode decimal digit (Arabic-Indic, Devanagari, ...) becomes its ASCII digit. A *digit run* is
then a sequence of digits separated only by characters that are neither letters nor digits:
``4111 1111 1111 1111``, ``4111_1111_1111_1111``, ``4111.1111/1111-1111`` are all one run, while
a letter ends it. A run holds a card number when any 13 to 19 consecutive digits of it, starting
with a digit other than 0 (no card number starts with 0), pass the Luhn check. Every window is
checked in linear time, so a long run hides nothing and a long run of zeros
(``10.00000000000000000000``) is not mistaken for one.

:func:`mask` is what may be echoed: every digit of a run of :data:`MASK_MIN_DIGITS` or more
digits becomes ``*``, so no response, log line or metric dimension can carry a card number.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any

MIN_PAN_DIGITS = 13
MAX_PAN_DIGITS = 19
#: Echoed text never holds this many digits in one run (PCI DSS shows at most the first 6 and last 4).
MASK_MIN_DIGITS = 12
#: Digits joined by any characters that are neither letters nor digits (``_`` counts as a separator).
_DIGIT_RUN = re.compile(r"[0-9](?:[\W_]*[0-9])*")
_NOT_DIGIT = re.compile(r"[^0-9]")
#: Luhn value of a digit in a doubled position.
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def normalize(text: str) -> str:
    """NFKC, then every Unicode decimal digit as its ASCII digit."""
    text = unicodedata.normalize("NFKC", text)
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in text)


def luhn_valid(digits: str) -> bool:
    """Whether a string of ASCII digits passes the Luhn (mod 10) check."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        total += _DOUBLED[value] if index % 2 == 1 else value
    return total % 10 == 0


def digits_hold_pan(digits: str) -> bool:
    """Whether any 13-19 consecutive digits of ``digits`` (ASCII) not starting with 0 pass Luhn.

    Prefix sums by index parity make each window O(1): in a window ending at ``end`` the digits
    with the parity of ``end`` count as they are, the others doubled.
    """
    size = len(digits)
    if size < MIN_PAN_DIGITS:
        return False
    values = [ord(char) - 48 for char in digits]
    plain = ([0] * (size + 1), [0] * (size + 1))  # plain[p][k]: sum of values[i], i < k, i % 2 == p
    doubled = ([0] * (size + 1), [0] * (size + 1))
    for index, value in enumerate(values):
        for parity in (0, 1):
            own = parity == index % 2
            plain[parity][index + 1] = plain[parity][index] + (value if own else 0)
            doubled[parity][index + 1] = doubled[parity][index] + (_DOUBLED[value] if own else 0)
    for start in range(size - MIN_PAN_DIGITS + 1):
        if values[start] == 0:
            continue
        for length in range(MIN_PAN_DIGITS, min(MAX_PAN_DIGITS, size - start) + 1):
            end = start + length  # exclusive
            same, other = (end - 1) % 2, end % 2
            total = plain[same][end] - plain[same][start] + doubled[other][end] - doubled[other][start]
            if total % 10 == 0:
                return True
    return False


def digit_runs(text: str) -> Iterator[str]:
    """The digits (ASCII, separators removed) of every digit run of ``text``, after normalising."""
    for match in _DIGIT_RUN.finditer(normalize(text)):
        yield _NOT_DIGIT.sub("", match.group())


def contains_pan(text: str) -> bool:
    """Whether ``text`` holds something that looks like a card number."""
    return any(digits_hold_pan(run) for run in digit_runs(text))


def mask(text: str) -> str:
    """``text`` normalised, with every digit of each run of :data:`MASK_MIN_DIGITS`+ digits as ``*``."""

    def hide(match: re.Match[str]) -> str:
        run = match.group()
        if len(_NOT_DIGIT.sub("", run)) < MASK_MIN_DIGITS:
            return run
        return re.sub(r"[0-9]", "*", run)

    return _DIGIT_RUN.sub(hide, normalize(text))


#: A JSON key longer than this, or not printable, is named ``?`` in a field path.
MAX_KEY_IN_PATH = 64


def _key_label(key: str) -> str:
    """A key as a path segment: masked, or ``?`` when too long or not printable."""
    return mask(key) if 0 < len(key) <= MAX_KEY_IN_PATH and key.isprintable() else "?"


def walk(document: Any) -> Iterator[tuple[str, Any]]:
    """Every (path, leaf) of a parsed JSON document, keys included (as ``str``), depth first.

    Iterative, so a deeply nested document cannot exhaust the stack. Keys in paths are masked one by one.
    """
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            children = []
            for key, item in value.items():
                child = f"{path}.{_key_label(key)}" if path else _key_label(key)
                yield child, str(key)
                children.append((child, item))
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend(reversed([(f"{path}[{index}]", item) for index, item in enumerate(value)]))
        else:
            yield path, value


def find_pan_field(document: Any) -> str | None:
    """The path of the first key or value of a parsed JSON document that looks like a card number."""
    for path, leaf in walk(document):
        if leaf is None or isinstance(leaf, bool):
            continue
        if contains_pan(str(leaf)):
            return path or "body"
    return None
