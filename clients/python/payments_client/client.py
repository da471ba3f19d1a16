"""The client contract across a failover, as code.

- Every request carries ``Authorization: Bearer <API key>``; the same key works in both regions.
- ``create_payment`` sends one ``Idempotency-Key`` (given, or a fresh UUID) and reuses it, with
  the same body, on every retry: a retry that lands in the other region finds the first attempt.
- 409 (same key in progress), 421 (region not active), 429 (throttled) and 503 (fenced or
  transient) are retried, waiting ``Retry-After`` seconds when the answer has it (capped at
  ``max_wait``), else an exponential backoff with jitter; so are connection errors and timeouts,
  where the request may or may not have arrived. Any other answer is final.
- Each attempt opens a new connection, so a DNS change (TTL 60 s) is followed from the next
  attempt on; keep the resolver's cache at 60 s or less (a JVM with ``networkaddress.cache.ttl=-1``
  caches forever).
"""

from __future__ import annotations

import email.utils
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

#: Answers the client retries (the API's contract; README "Client contract").
RETRY_STATUSES = frozenset({409, 421, 429, 503})
USER_AGENT = "payments-client-python/1"


class PaymentsError(Exception):
    """A final error answer (or the last one when retries ran out). Never holds the API key."""

    def __init__(self, status: int | None, code: str, message: str, attempts: int) -> None:
        self.status, self.code, self.message, self.attempts = status, code, message, attempts
        super().__init__(f"{status} {code}: {message} (after {attempts} attempt(s))")


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_of(body: bytes) -> tuple[str, str]:
    """(code, message) of an error body: ``{"error": code, "message"}`` or ``{"error": {"code", "message"}}``."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "unreadable_error", "the error answer was not JSON"
    if not isinstance(document, dict):
        return "unreadable_error", "the error answer was not a JSON object"
    error = document.get("error")
    if isinstance(error, dict):
        return str(error.get("code", "unknown")), str(error.get("message", ""))
    return str(error or "unknown"), str(document.get("message", ""))


class PaymentsClient:
    """Calls the payments API with an API key, retrying as the contract says."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        max_attempts: int = 8,
        max_wait: float = 30.0,
        base_backoff: float = 0.5,
        timeout: float = 10.0,
        retry_statuses: frozenset[int] = RETRY_STATUSES,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if not api_key or any(c.isspace() for c in api_key):
            raise ValueError("api_key must be the key tools.merchants printed (no spaces)")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        parsed = urllib.parse.urlsplit(base_url)
        local = parsed.hostname in ("127.0.0.1", "localhost", "::1")
        if parsed.scheme != "https" and not (parsed.scheme == "http" and local):
            raise ValueError("base_url must be https:// (http:// only for localhost)")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.max_attempts, self.max_wait, self.base_backoff = max_attempts, max_wait, base_backoff
        self.timeout, self.retry_statuses = timeout, retry_statuses
        self._sleep, self._jitter = sleep, jitter

    def __repr__(self) -> str:
        return f"PaymentsClient({self.base_url!r}, api_key=<hidden>)"

    def create_payment(
        self,
        *,
        amount: str,
        currency: str,
        merchant_id: str,
        card_token: str,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """``POST /payments``: ``{"payment_id", "status"}``.

        Pass your own ``idempotency_key`` (an order id) to stay safe across your own restarts too.
        """
        body = {"amount": amount, "currency": currency, "merchant_id": merchant_id, "card_token": card_token}
        key = idempotency_key or str(uuid.uuid4())
        return self._call("POST", "/payments", body=body, headers={"Idempotency-Key": key})

    def get_payment(self, payment_id: str) -> dict[str, Any]:
        """``GET /payments/{id}`` (404 for an unknown id or another merchant's payment)."""
        return self._call("GET", f"/payments/{urllib.parse.quote(payment_id, safe='')}")

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped at ``max_wait``."""
        return min(self.max_wait, self.base_backoff * 2 ** (attempt - 1)) * (0.5 + self._jitter() / 2)

    def _call(
        self, method: str, path: str, *, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        all_headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            **({"Content-Type": "application/json"} if data is not None else {}),
            **(headers or {}),
        }
        last: PaymentsError | None = None
        for attempt in range(1, self.max_attempts + 1):
            url = self.base_url + path  # scheme checked in __init__: https, or http to localhost
            request = urllib.request.Request(url, data=data, headers=all_headers, method=method)  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as answer:
                code, message = error_of(answer.read())
                last = PaymentsError(answer.code, code, message, attempt)
                if answer.code not in self.retry_statuses:
                    raise last from None
                wait = retry_after_seconds(answer.headers.get("Retry-After"))
            except (urllib.error.URLError, TimeoutError, ConnectionError) as failure:
                reason = getattr(failure, "reason", failure)
                last = PaymentsError(None, "connection_failed", str(reason), attempt)
                wait = None
            if attempt < self.max_attempts:
                self._sleep(min(self.max_wait, wait) if wait is not None else self._backoff(attempt))
        assert last is not None
        raise last
