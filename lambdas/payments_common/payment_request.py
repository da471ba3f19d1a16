"""Turn an API Gateway (REST v1, proxy) event into a checked payment request, or a 400.

Pure functions, no AWS: the validation handler calls :func:`parse` first, so nothing
is read or written for a request that is rejected here. Error messages name the field
and the rule, never the value, and the field itself is masked (:func:`payments_common.pan.mask`).
Nothing a client sends can make :func:`parse` raise anything but :class:`RequestError`: a
rejection is always a 4xx, never a 5xx that would count toward the alarms that move traffic.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from payments_common.models import PaymentRequest
from payments_common.pan import contains_pan, find_pan_field, mask, walk

#: Largest accepted body, in bytes (after base64 decoding).
MAX_BODY_BYTES = 16 * 1024
IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}\Z")
#: Namespace of payment ids: uuid5(namespace, merchant_id + "\n" + idempotency key).
PAYMENT_ID_NAMESPACE = uuid.UUID("6f1d3c52-6a43-5b8e-9c51-8a2f0d7e4b19")
_FIELD_ORDER = ("amount", "currency", "merchant_id", "card_token")
#: Headers set by API Gateway, CloudFront or the SigV4 / API-key scheme, not by the merchant's
#: request data: IP lists and trace ids would read as digit runs, credentials are the authorizer's.
TRANSPORT_HEADERS = frozenset(
    {
        "authorization",
        "host",
        "via",
        "content-length",
        "x-forwarded-for",
        "x-forwarded-port",
        "x-forwarded-proto",
        "x-amzn-trace-id",
        "x-amz-cf-id",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-content-sha256",
    }
)
#: Every error code :func:`parse` answers: a fixed set, so a metric dimension by code stays bounded.
ERROR_CODES = frozenset(
    {
        "invalid_request",
        "missing_idempotency_key",
        "invalid_idempotency_key",
        "card_number_detected",
        "missing_body",
        "invalid_body",
        "body_too_large",
        "malformed_json",
        "duplicate_field",
        "number_out_of_range",
        "missing_field",
        "unknown_field",
        "invalid_type",
        "invalid_format",
        "invalid_value",
        "amount_type",
        "amount_format",
        "amount_not_positive",
        "amount_too_large",
        "amount_precision",
        "currency_unsupported",
        # The merchant binding (payments_common/tenancy.py): 401 without an authenticated merchant,
        # 403 when the body names another merchant.
        "unauthenticated",
        "merchant_mismatch",
    }
)
#: Longest field path an answer names; a longer one is answered as ``body``.
MAX_FIELD_CHARS = 128
_PAN_MESSAGE = "send a card token, never a card number"


class RequestError(Exception):
    """The request is wrong; the client must change it. Becomes a 4xx JSON answer.

    ``field`` is masked here, once for every error: whatever path a client's keys make, no
    card number can come back in the answer or reach a log line.
    """

    def __init__(self, code: str, message: str, field: str, status: int = 400) -> None:
        field = mask(field)
        if len(field) > MAX_FIELD_CHARS:  # a path that deep names nothing a client can act on
            field = "body"
        super().__init__(f"{field}: {message}")
        self.code, self.message, self.field, self.status = code, message, field, status
        #: Type of the unexpected exception behind an ``invalid_request`` (logged; never its message).
        self.cause: str | None = None


@dataclass(frozen=True)
class ParsedRequest:
    """A request that passed every check."""

    idempotency_key: str
    payment: PaymentRequest

    @property
    def payment_id(self) -> str:
        """Deterministic id: the same merchant and key give the same payment, in any region."""
        return payment_id(self.payment.merchant_id, self.idempotency_key)

    @property
    def request_hash(self) -> str:
        """SHA-256 of the canonical request, stored with the payment to spot a reused key."""
        return request_hash(self.payment.canonical())

    def idempotency_data(self) -> dict[str, Any]:
        """What Powertools idempotency hashes: the key, and the request for payload validation."""
        return {"idempotency_key": self.idempotency_key, "request": self.payment.canonical()}


def payment_id(merchant_id: str, idempotency_key: str) -> str:
    """``uuid5`` of merchant id and idempotency key."""
    return str(uuid.uuid5(PAYMENT_ID_NAMESPACE, f"{merchant_id}\n{idempotency_key}"))


def request_hash(canonical: dict[str, str]) -> str:
    """SHA-256 hex of the canonical request's sorted JSON."""
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _header_values(event: dict[str, Any], name: str) -> list[Any]:
    """Every value of header ``name`` (any case) in ``headers`` and ``multiValueHeaders``."""
    wanted = name.lower()
    values: list[Any] = []
    headers = event.get("headers")
    if isinstance(headers, dict):
        values.extend(v for k, v in headers.items() if isinstance(k, str) and k.lower() == wanted)
    multi = event.get("multiValueHeaders")
    if isinstance(multi, dict):
        for key, items in multi.items():
            if isinstance(key, str) and key.lower() == wanted:
                values.extend(items if isinstance(items, list) else [items])
    return values


def _items(event: dict[str, Any], *sources: str) -> list[tuple[str, Any]]:
    """(name, value) of every entry of the ``sources`` maps of ``event``, whatever their shape."""
    items: list[tuple[str, Any]] = []
    for source in sources:
        headers = event.get(source)
        if not isinstance(headers, dict):
            continue
        for name, value in headers.items():
            values = value if isinstance(value, list) else [value]
            items.extend((str(name), item) for item in values)
    return items


def _holds_pan(name: str, value: Any) -> bool:
    return contains_pan(name) or (value is not None and contains_pan(str(value)))


def _key_holds_pan(key: Any) -> bool:
    """Whether an Idempotency-Key value looks like a card number; a canonical UUID never does.

    0.7% of random UUIDs hold a Luhn-valid 13-19 digit window across their dashes; no card number
    is written 8-4-4-4-12, and the key is never stored (only hashed), logged or echoed. Refusing
    those UUIDs would refuse about one payment in 150 of clients that follow the advice to send one.
    """
    if isinstance(key, str) and len(key) == 36:
        with contextlib.suppress(ValueError):
            if str(uuid.UUID(key)) == key.lower():
                return False
    return key is not None and contains_pan(str(key))


def check_headers(event: dict[str, Any]) -> None:
    """Refuse a card number in any header's name or value (transport headers aside), or in the query string."""
    for name, value in _items(event, "headers", "multiValueHeaders"):
        if name.lower() == IDEMPOTENCY_HEADER.lower() and not contains_pan(name) and not _key_holds_pan(value):
            continue
        if name.lower() not in TRANSPORT_HEADERS and _holds_pan(name, value):
            label = name if 0 < len(name) <= 64 and name.isprintable() else "headers"
            raise RequestError("card_number_detected", "a header must never hold a card number", label)
    for name, value in _items(event, "queryStringParameters", "multiValueQueryStringParameters"):
        if _holds_pan(name, value):
            label = f"query.{name}" if 0 < len(name) <= 64 and name.isprintable() else "query"
            raise RequestError("card_number_detected", "the query string must never hold a card number", label)


def idempotency_key(event: dict[str, Any]) -> str:
    """The one ``Idempotency-Key`` value: 1-255 visible ASCII characters, not a card number."""
    values = _header_values(event, IDEMPOTENCY_HEADER)
    if not values:
        raise RequestError("missing_idempotency_key", "the Idempotency-Key header is required", IDEMPOTENCY_HEADER)
    if any(not isinstance(v, str) for v in values) or len(set(values)) != 1:
        raise RequestError("invalid_idempotency_key", "send exactly one Idempotency-Key value", IDEMPOTENCY_HEADER)
    key = values[0]
    if not _KEY_RE.match(key):
        raise RequestError(
            "invalid_idempotency_key", "must be 1 to 255 visible ASCII characters, e.g. a UUID", IDEMPOTENCY_HEADER
        )
    if _key_holds_pan(key):
        raise RequestError("card_number_detected", "must not contain a card number", IDEMPOTENCY_HEADER)
    return key


def body_text(event: dict[str, Any]) -> str:
    """The body as text, at most :data:`MAX_BODY_BYTES` bytes of UTF-8."""
    body = event.get("body")
    if body is None or body == "":
        raise RequestError("missing_body", "a JSON body is required", "body")
    if not isinstance(body, str):
        raise RequestError("invalid_body", "the body must be text", "body")
    raw: bytes
    if event.get("isBase64Encoded") is True:
        if len(body) > (MAX_BODY_BYTES // 3 + 1) * 4:
            raise RequestError("body_too_large", f"the body must be at most {MAX_BODY_BYTES} bytes", "body")
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError("invalid_body", "the body is not valid base64", "body") from None
    else:
        if len(body) > MAX_BODY_BYTES:
            raise RequestError("body_too_large", f"the body must be at most {MAX_BODY_BYTES} bytes", "body")
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:
            raise RequestError("invalid_body", "the body must be UTF-8 text", "body") from None
    if len(raw) > MAX_BODY_BYTES:
        raise RequestError("body_too_large", f"the body must be at most {MAX_BODY_BYTES} bytes", "body")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("invalid_body", "the body must be UTF-8 text", "body") from None


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


class OutOfRange(str):
    """A JSON number ``Decimal`` cannot hold (``1E+1000000000000000000``): kept as its text.

    The parser never fails on it, so the answer can name the field (and see a card number in it).
    """


def _decimal(text: str) -> Decimal | OutOfRange:
    """``parse_float``: the exact ``Decimal``, or :class:`OutOfRange` when the exponent is too big."""
    try:
        return Decimal(text)
    except (InvalidOperation, ValueError, ArithmeticError):
        return OutOfRange(text)


def parse_json(text: str) -> dict[str, Any]:
    """A JSON object, numbers as ``Decimal`` (exact), no NaN/Infinity, no duplicate keys, no card numbers."""
    try:
        document = json.loads(
            text, parse_float=_decimal, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates
        )
    except _DuplicateKeyError:
        if contains_pan(text):
            raise RequestError("card_number_detected", _PAN_MESSAGE, "body") from None
        raise RequestError("duplicate_field", "a field appears more than once", "body") from None
    except (ValueError, RecursionError):
        if contains_pan(text):
            raise RequestError("card_number_detected", _PAN_MESSAGE, "body") from None
        raise RequestError("malformed_json", "the body is not valid JSON", "body") from None
    pan_field = find_pan_field(document)
    if pan_field is None and contains_pan(text):
        pan_field = "body"
    if pan_field is not None:
        raise RequestError("card_number_detected", _PAN_MESSAGE, pan_field)
    for path, leaf in walk(document):
        if type(leaf) is OutOfRange:
            raise RequestError("number_out_of_range", "is a number too large or too precise to read", path or "body")
    if not isinstance(document, dict):
        raise RequestError("invalid_body", "the body must be a JSON object", "body")
    return document


_MESSAGES = {
    "missing": ("missing_field", "is required"),
    "extra_forbidden": ("unknown_field", "is not an accepted field"),
    "string_type": ("invalid_type", "must be a string"),
    "string_pattern_mismatch": ("invalid_format", "has an invalid format"),
}


def _first_error(error: ValidationError) -> RequestError:
    """The first problem, in field order, as a :class:`RequestError` without the input value."""
    details = error.errors(include_url=False, include_input=False, include_context=False)

    def order(detail: dict[str, Any]) -> int:
        field = str(detail["loc"][0]) if detail["loc"] else ""
        return _FIELD_ORDER.index(field) if field in _FIELD_ORDER else len(_FIELD_ORDER)

    detail = min(details, key=order)
    field = str(detail["loc"][0]) if detail["loc"] else "body"
    if field not in _FIELD_ORDER and not (0 < len(field) <= 64 and field.isprintable()):
        field = "body"  # an unknown field whose name is not worth echoing back
    code, message = _MESSAGES.get(detail["type"], (detail["type"], detail["msg"]))
    if code not in ERROR_CODES:  # a pydantic error type this module does not name: no free text
        code, message = "invalid_value", "has an invalid value"
    if field == "merchant_id" and code == "invalid_format":
        message = "must be 1-64 letters, digits, '_' or '-'"
    elif field == "card_token" and code == "invalid_format":
        message = "must be a card token such as tok_abc123 (never a card number)"
    return RequestError(code, message, field)


def payment(document: dict[str, Any]) -> PaymentRequest:
    """The body as a :class:`PaymentRequest`, with the currency's minor units enforced."""
    try:
        request = PaymentRequest.model_validate(document)
        exponent = request.amount.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > request.minor_units:
            raise RequestError(
                "amount_precision", f"{request.currency} allows at most {request.minor_units} decimal places", "amount"
            )
        request.canonical()
    except ValidationError as exc:
        raise _first_error(exc) from None
    except ArithmeticError:
        raise RequestError("number_out_of_range", "is a number too large or too precise to read", "amount") from None
    return request


def parse(event: Any) -> ParsedRequest:
    """Every check of ``POST /payments``, in order: headers, size, JSON, card numbers, fields.

    Only :class:`RequestError` leaves: anything else raised while reading client input (a bug
    this module did not foresee) is still the client's input, answered 400 ``invalid_request``.
    """
    try:
        if not isinstance(event, dict):
            raise RequestError("invalid_request", "not an API Gateway proxy event", "body")
        check_headers(event)
        key = idempotency_key(event)
        document = parse_json(body_text(event))
        return ParsedRequest(idempotency_key=key, payment=payment(document))
    except RequestError:
        raise
    except Exception as exc:  # client input only: its type is logged, never its message
        error = RequestError("invalid_request", "the request could not be read", "body")
        error.cause = type(exc).__name__
        raise error from None
