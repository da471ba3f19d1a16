"""Merchant API keys: the one definition of their format, hash and record (stdlib only).

A key is ``pdr_<suffix>_<key id>.<secret>``: the environment suffix (so another environment's
key is refused before any read), a 16-hex-digit key id (the table key, safe to log) and a
256-bit random secret (base64url, 43 characters). Only an HMAC-SHA256 of the secret under a
per-key random salt is stored. A 256-bit random secret cannot be guessed or brute-forced from
its hash, so no slow KDF is needed; comparisons use :func:`hmac.compare_digest`.

Clients send it as ``Authorization: Bearer <key>``. ``tools/merchants.py`` writes the records
(``payments-merchants-<suffix>``, key ``key_id``), the authorizer reads them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

PREFIX = "pdr"
KEY_ID_HEX_DIGITS = 16
SECRET_BYTES = 32
SALT_BYTES = 16
ACTIVE, REVOKED = "ACTIVE", "REVOKED"
#: Merchant ids the API accepts (the same rule as a payment's ``merchant_id``).
MERCHANT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_KEY_RE = re.compile(
    rf"^{PREFIX}_(?P<suffix>[a-z0-9](?:[a-z0-9-]{{0,14}}[a-z0-9])?)_(?P<key_id>[0-9a-f]{{{KEY_ID_HEX_DIGITS}}})"
    r"\.(?P<secret>[A-Za-z0-9_-]{43})$"
)
#: Longest header value worth parsing: a key is under 100 characters.
MAX_HEADER_LENGTH = 256


@dataclass(frozen=True)
class ApiKey:
    """A parsed key. ``repr`` never shows the secret."""

    suffix: str
    key_id: str
    secret: str = field(repr=False)

    @property
    def token(self) -> str:
        """The key as the client sends it."""
        return f"{PREFIX}_{self.suffix}_{self.key_id}.{self.secret}"


@dataclass(frozen=True)
class Principal:
    """Who a valid key authenticates."""

    merchant_id: str
    key_id: str


def parse(token: Any) -> ApiKey | None:
    """The key in ``token``, or None when it is not a well-formed key."""
    if not isinstance(token, str) or len(token) > MAX_HEADER_LENGTH:
        return None
    match = _KEY_RE.fullmatch(token)
    if match is None:
        return None
    return ApiKey(match["suffix"], match["key_id"], match["secret"])


def bearer(header: Any) -> str | None:
    """The credential of an ``Authorization: Bearer <key>`` header value (scheme case-insensitive)."""
    if not isinstance(header, str) or len(header) > MAX_HEADER_LENGTH:
        return None
    scheme, _, credential = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()


def new_key(suffix: str) -> ApiKey:
    """A fresh key for environment ``suffix``."""
    return ApiKey(suffix, secrets.token_hex(KEY_ID_HEX_DIGITS // 2), secrets.token_urlsafe(SECRET_BYTES))


def secret_hash(key_id: str, secret: str, salt: str) -> str:
    """HMAC-SHA256 (hex) of ``<key id>.<secret>`` under the hex ``salt``."""
    return hmac.new(bytes.fromhex(salt), f"{key_id}.{secret}".encode(), hashlib.sha256).hexdigest()


def key_item(merchant_id: str, key: ApiKey, created_at: str, salt: str | None = None) -> dict[str, Any]:
    """The merchants-table record of a new key (low-level DynamoDB item): never the secret itself."""
    salt = salt or secrets.token_hex(SALT_BYTES)
    return {
        "key_id": {"S": key.key_id},
        "merchant_id": {"S": merchant_id},
        "status": {"S": ACTIVE},
        "salt": {"S": salt},
        "secret_hash": {"S": secret_hash(key.key_id, key.secret, salt)},
        "created_at": {"S": created_at},
    }


def authenticate(item: dict[str, Any] | None, key: ApiKey) -> Principal | None:
    """The principal ``key`` proves, given its record (None: unknown, revoked or wrong secret)."""
    if not item:
        return None
    value = {name: attribute.get("S") for name, attribute in item.items() if isinstance(attribute, dict)}
    salt, stored, merchant = value.get("salt"), value.get("secret_hash"), value.get("merchant_id")
    if value.get("status") != ACTIVE or not salt or not stored or not merchant or value.get("key_id") != key.key_id:
        return None
    try:
        computed = secret_hash(key.key_id, key.secret, salt)
    except ValueError:  # a salt that is not hex: a corrupt record authenticates nobody
        return None
    if not hmac.compare_digest(computed, stored):
        return None
    return Principal(merchant_id=merchant, key_id=key.key_id)
