"""Clients that follow the client contract, and a payment-service-provider stand-in.

The contract (README, docs/design.md): a client retries 409, 421, 429 and 503, and a lost
connection, always with the same credential, body and ``Idempotency-Key``, after
``Retry-After`` when the answer has one (else exponential backoff), resolving the API's name
through its own DNS cache (60 s). Any other answer is final for that payment.

The provider stand-in records every charge request by its idempotency key and, like a real
provider, charges a key once: a repeated key is answered from the first charge. Each client
payment carries its own card token, so a payment charged under two different keys (two
payment ids for one client payment) is counted as charged twice.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tools.drill.apigw import Answer, ApiGateway, Unreachable
from tools.drill.clock import SimClock
from tools.drill.route53 import Resolver

#: Answers the contract says to retry.
RETRY_STATUSES = frozenset({409, 421, 429, 503})
MAX_BACKOFF_S = 30.0
#: Hard bound on one payment's attempts: a client that still gets a retryable answer after this
#: many gives up (``final_error`` ``gave_up``), so a drill never retries forever; the verdict fails it.
MAX_ATTEMPTS = 200
GAVE_UP = "gave_up"
CONNECTION_ERROR = "connection"


@dataclass
class Payment:
    """One payment a client wants made."""

    number: int
    key: str
    body: dict[str, Any]
    created_at: float
    next_try: float
    headers: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    payment_id: str | None = None
    final_error: str | None = None
    raw_body: str | None = None
    #: A bad request on purpose (bad-input scenarios): must get a final 4xx, never a 202 or a 5xx.
    bad: bool = False

    @property
    def open(self) -> bool:
        """Still being retried."""
        return self.acknowledged_at is None and self.final_error is None


@dataclass
class Attempt:
    """One HTTP attempt, for the figures and the timeline."""

    at: float
    payment: int
    region: str
    status: str


class Client:
    """One API client (a merchant's server) with its own DNS cache."""

    def __init__(self, name: str, apis: dict[str, ApiGateway], resolver: Resolver, clock: SimClock) -> None:
        self.name, self.apis, self.resolver, self.clock = name, apis, resolver, clock
        self.payments: list[Payment] = []
        self.attempts: list[Attempt] = []

    def submit(self, payment: Payment) -> None:
        """Start a payment now."""
        self.payments.append(payment)

    def tick(self) -> None:
        """Send every attempt that is due."""
        for payment in self.payments:
            if payment.open and payment.next_try <= self.clock.elapsed:
                self._attempt(payment)

    def _attempt(self, payment: Payment) -> None:
        region = self.resolver.resolve()
        payment.attempts += 1
        headers = {"Content-Type": "application/json", "Idempotency-Key": payment.key, **payment.headers}
        text = payment.raw_body if payment.raw_body is not None else json.dumps(payment.body)
        try:
            answer = self.apis[region].request("POST", "/payments", headers, text)
        except Unreachable:
            self.attempts.append(Attempt(self.clock.elapsed, payment.number, region, CONNECTION_ERROR))
            if payment.attempts >= MAX_ATTEMPTS:
                payment.final_error = GAVE_UP
                return
            payment.next_try = self.clock.elapsed + self._backoff(payment, None)
            return
        self.attempts.append(Attempt(self.clock.elapsed, payment.number, region, str(answer.status)))
        if 200 <= answer.status < 300:
            payment.acknowledged_at, payment.acknowledged_by = self.clock.elapsed, region
            payment.payment_id = (answer.body or {}).get("payment_id")
        elif answer.status in RETRY_STATUSES and payment.attempts >= MAX_ATTEMPTS:
            payment.final_error = GAVE_UP
        elif answer.status in RETRY_STATUSES:
            payment.next_try = self.clock.elapsed + self._backoff(payment, answer)
        else:
            payment.final_error = str(answer.status)

    @staticmethod
    def _backoff(payment: Payment, answer: Answer | None) -> float:
        retry_after = (answer.headers if answer else {}).get("Retry-After")
        if retry_after is not None and retry_after.strip().isdigit():
            return max(1.0, float(retry_after))
        return min(MAX_BACKOFF_S, float(2 ** min(payment.attempts - 1, 5)))


@dataclass
class Charge:
    """One charge request the provider received."""

    at: float
    key: str
    card_token: str
    amount: str
    region: str
    duplicate: bool


class PaymentProvider:
    """Charges once per idempotency key, like a real provider."""

    def __init__(self) -> None:
        self.requests: list[Charge] = []
        self._charged: dict[str, Charge] = {}

    def charge(self, at: float, key: str, card_token: str, amount: str, region: str) -> Charge:
        """A charge request; a repeated key returns the first charge."""
        first = self._charged.get(key)
        charge = Charge(at, key, card_token, amount, region, duplicate=first is not None)
        self.requests.append(charge)
        if first is None:
            self._charged[key] = charge
        return first or charge

    @property
    def charges(self) -> list[Charge]:
        """Charges actually made (one per key)."""
        return list(self._charged.values())

    def charged_twice(self) -> int:
        """Client payments (card tokens) charged more than once."""
        return sum(1 for count in Counter(c.card_token for c in self.charges).values() if count > 1)

    def deduplicated(self) -> int:
        """Charge requests the provider answered from an earlier charge (double processing it absorbed)."""
        return sum(1 for c in self.requests if c.duplicate)
