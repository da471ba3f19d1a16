"""clients/python: key on every request, retries per the contract, same Idempotency-Key, Retry-After honoured.

A scripted HTTP server on 127.0.0.1 plays the API; the client's sleep is recorded, not slept.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

CLIENT_DIR = Path(__file__).resolve().parents[3] / "clients" / "python"
if str(CLIENT_DIR) not in sys.path:
    sys.path.insert(0, str(CLIENT_DIR))

from payments_client import PaymentsClient, PaymentsError  # noqa: E402
from payments_client.client import error_of, retry_after_seconds  # noqa: E402

API_KEY = "pdr_test_0123456789abcdef." + "s" * 43
BODY = {"amount": "10.50", "currency": "USD", "merchant_id": "acme", "card_token": "tok_visa_4242"}


class Api:
    """Answers scripted ``(status, headers, body)`` in order (the last one repeats); records every request."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        self.requests: list[dict[str, Any]] = []


@pytest.fixture
def api() -> Iterator[tuple[Api, str]]:
    state = Api()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            state.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers.items()),
                    "body": json.loads(self.rfile.read(length)) if length else None,
                }
            )
            index = min(len(state.requests), len(state.script)) - 1
            status, headers, body = state.script[index]
            payload = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass  # quiet: the test reads state.requests

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def client_for(url: str, waits: list[float], **kwargs: Any) -> PaymentsClient:
    return PaymentsClient(url, API_KEY, sleep=waits.append, jitter=lambda: 1.0, **kwargs)


ACCEPTED = (202, {}, {"payment_id": "0b6a2c43-1111-4111-8111-111111111111", "status": "PENDING"})


def test_every_retryable_answer_is_retried_with_the_same_key_body_and_credential(api: tuple[Api, str]) -> None:
    state, url = api
    state.script = [
        (503, {"Retry-After": "5"}, {"error": "region_fenced", "message": "retry"}),
        (421, {"Retry-After": "2"}, {"error": "region_not_active", "message": "standby"}),
        (429, {"Retry-After": "1"}, {"error": "throttled", "message": "slow down"}),
        (409, {"Retry-After": "1"}, {"error": "request_in_progress", "message": "wait"}),
        ACCEPTED,
    ]
    waits: list[float] = []
    answer = client_for(url, waits).create_payment(**BODY, idempotency_key="order-1001")
    assert answer["status"] == "PENDING"
    assert waits == [5.0, 2.0, 1.0, 1.0], "Retry-After honoured"
    assert len(state.requests) == 5
    for request in state.requests:
        assert (request["method"], request["path"]) == ("POST", "/payments")
        assert request["headers"]["Authorization"] == f"Bearer {API_KEY}"
        assert request["headers"]["Idempotency-Key"] == "order-1001"
        assert request["body"] == BODY


def test_without_a_key_one_is_made_and_kept_across_retries(api: tuple[Api, str]) -> None:
    state, url = api
    state.script = [(503, {}, {"error": "temporarily_unavailable", "message": "retry"}), ACCEPTED]
    waits: list[float] = []
    client_for(url, waits).create_payment(**BODY)
    keys = {r["headers"]["Idempotency-Key"] for r in state.requests}
    assert len(state.requests) == 2
    assert len(keys) == 1
    assert waits == [0.5], "no Retry-After: exponential backoff"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "invalid_amount"),
        (401, "missing_credentials"),
        (403, "access_denied"),
        (404, "not_found"),
        (422, "idempotency_key_reused"),
        (500, "internal"),
    ],
)
def test_other_answers_are_final_and_name_their_code(api: tuple[Api, str], status: int, code: str) -> None:
    state, url = api
    state.script = [(status, {}, {"error": code, "message": "no"})]
    waits: list[float] = []
    with pytest.raises(PaymentsError) as raised:
        client_for(url, waits).create_payment(**BODY)
    assert (raised.value.status, raised.value.code, raised.value.attempts) == (status, code, 1)
    assert len(state.requests) == 1
    assert waits == []


def test_it_gives_up_after_max_attempts_with_the_last_answer(api: tuple[Api, str]) -> None:
    state, url = api
    state.script = [(503, {"Retry-After": "120"}, {"error": "region_fenced", "message": "retry"})]
    waits: list[float] = []
    with pytest.raises(PaymentsError) as raised:
        client_for(url, waits, max_attempts=3, max_wait=30).create_payment(**BODY)
    assert (raised.value.status, raised.value.code, raised.value.attempts) == (503, "region_fenced", 3)
    assert len(state.requests) == 3
    assert waits == [30, 30], "a long Retry-After is capped at max_wait"


def test_connection_failures_are_retried(api: tuple[Api, str]) -> None:
    waits: list[float] = []
    client = client_for("http://127.0.0.1:9", waits, max_attempts=3, timeout=2)
    with pytest.raises(PaymentsError) as raised:
        client.create_payment(**BODY)
    assert (raised.value.status, raised.value.code, raised.value.attempts) == (None, "connection_failed", 3)
    assert waits == [0.5, 1.0]


def test_get_payment_sends_the_key_and_quotes_the_id(api: tuple[Api, str]) -> None:
    state, url = api
    state.script = [(200, {}, {"payment_id": "abc", "status": "PROCESSED"})]
    assert client_for(url, []).get_payment("a/b")["status"] == "PROCESSED"
    [request] = state.requests
    assert (request["method"], request["path"]) == ("GET", "/payments/a%2Fb")
    assert request["headers"]["Authorization"] == f"Bearer {API_KEY}"


def test_the_key_never_appears_in_repr_or_errors(api: tuple[Api, str]) -> None:
    state, url = api
    state.script = [(403, {}, {"error": "access_denied", "message": "the API key is not valid for this API"})]
    client = client_for(url, [])
    assert API_KEY not in repr(client)
    with pytest.raises(PaymentsError) as raised:
        client.create_payment(**BODY)
    assert API_KEY not in str(raised.value)
    assert API_KEY not in repr(raised.value)


@pytest.mark.parametrize("url", ["http://api.example.com", "ftp://127.0.0.1", "file:///etc/passwd"])
def test_only_https_or_local_http(url: str) -> None:
    with pytest.raises(ValueError, match="https"):
        PaymentsClient(url, API_KEY)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_both_error_shapes_are_read() -> None:
    assert error_of(b'{"error":"access_denied","message":"no"}') == ("access_denied", "no")
    assert error_of(b'{"error":{"code":"region_not_active","message":"standby"}}') == ("region_not_active", "standby")
    assert error_of(b"<html>") == ("unreadable_error", "the error answer was not JSON")
