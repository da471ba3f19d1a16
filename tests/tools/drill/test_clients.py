"""Clients follow the client contract; the provider stand-in deduplicates like a real one."""

from __future__ import annotations

from tools.drill.apigw import Answer, Unreachable
from tools.drill.clients import Client, Payment, PaymentProvider
from tools.drill.clock import SimClock


class ScriptedApi:
    """Answers from a script; records the headers and body of every request."""

    def __init__(self, script: list[Answer | None]) -> None:
        self.script = script
        self.requests: list[tuple[dict[str, str], str]] = []

    def request(self, method: str, path: str, headers: dict[str, str], body: str) -> Answer:
        self.requests.append((headers, body))
        answer = self.script.pop(0)
        if answer is None:
            raise Unreachable("down")
        return answer


class FixedResolver:
    def resolve(self) -> str:
        return "us-east-1"


def client_with(script: list[Answer | None]) -> tuple[Client, ScriptedApi, SimClock, Payment]:
    clock = SimClock()
    api = ScriptedApi(script)
    client = Client("c", {"us-east-1": api}, FixedResolver(), clock)  # type: ignore[arg-type, dict-item]
    payment = Payment(0, "key-0", {"amount": "1.00"}, created_at=0.0, next_try=0.0)
    client.submit(payment)
    return client, api, clock, payment


def run(client: Client, clock: SimClock, seconds: int) -> None:
    for _ in range(seconds):
        client.tick()
        clock.advance(1)


def test_retries_honour_retry_after_with_the_same_key_and_body() -> None:
    accepted = Answer(202, {}, {"payment_id": "p-0", "status": "PENDING"})
    client, api, clock, payment = client_with(
        [Answer(503, {"Retry-After": "5"}), Answer(421, {"Retry-After": "3"}), accepted]
    )
    run(client, clock, 4)
    assert len(api.requests) == 1, "waits the 5 s Retry-After"
    run(client, clock, 10)
    assert [a.at for a in client.attempts] == [0.0, 5.0, 8.0]
    assert {headers["Idempotency-Key"] for headers, _ in api.requests} == {"key-0"}
    assert len({body for _, body in api.requests}) == 1
    assert (payment.acknowledged_at, payment.payment_id) == (8.0, "p-0")


def test_lost_connections_back_off_exponentially() -> None:
    client, _api, clock, _payment = client_with([None, None, None, Answer(202, {}, {"payment_id": "p"})])
    run(client, clock, 20)
    assert [a.at for a in client.attempts] == [0.0, 1.0, 3.0, 7.0]
    assert [a.status for a in client.attempts] == ["connection"] * 3 + ["202"]


def test_other_answers_are_final() -> None:
    client, api, clock, payment = client_with([Answer(422, {}, {})])
    run(client, clock, 30)
    assert (len(api.requests), payment.final_error, payment.open) == (1, "422", False)


def test_the_provider_charges_a_key_once_and_counts_a_payment_charged_under_two_keys() -> None:
    provider = PaymentProvider()
    first = provider.charge(1.0, "pay-1", "tok_a", "1.00", "us-east-1")
    assert provider.charge(2.0, "pay-1", "tok_a", "1.00", "us-east-2") is first
    assert (provider.deduplicated(), provider.charged_twice(), len(provider.charges)) == (1, 0, 1)
    provider.charge(3.0, "pay-1-other-id", "tok_a", "1.00", "us-east-2")
    assert provider.charged_twice() == 1
