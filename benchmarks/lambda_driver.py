"""Run inside a fresh interpreter: warm CPU time per request of one handler, AWS answered by stubs.

Every AWS call is answered in botocore's ``before-send`` hook with a canned HTTP response, so
request serialization and response parsing run as in Lambda, but no network or emulator cost
is counted. Prints one JSON line: ``{"cpu_s_per_request": ..., "requests": ...}``.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import time
import uuid
from contextlib import redirect_stdout
from typing import Any

from botocore.awsrequest import AWSResponse

PAYMENT_ITEM = {
    "payment_id": {"S": "00000000-0000-0000-0000-000000000000"},
    "status": {"S": "PENDING"},
    "version": {"N": "1"},
    "home_region": {"S": "us-east-1"},
    "created_at": {"S": "2026-01-01T00:00:00Z"},
    "merchant_id": {"S": "merchant-1"},
    "amount": {"S": "10.50"},
    "currency": {"S": "USD"},
    "card_token": {"S": "tok_visa_4242"},
}


#: The merchants-table record the authorizer reads, and the key that matches it (set in ``main``).
KEY_RECORD: dict[str, Any] = {}
API_KEY: list[str] = []


def lease_item() -> dict[str, Any]:
    """The control table's lease: us-east-1 (the bench's region) holds it for another minute."""
    valid_until = int(time.time() * 1000) + 60_000
    return {
        "pk": {"S": "lease"},
        "epoch": {"N": "1"},
        "holder": {"S": "us-east-1"},
        "valid_until": {"N": str(valid_until)},
        "seq": {"N": "1"},
    }


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Any:
        yield self.getvalue()


def answer(request: Any, **_: Any) -> AWSResponse:
    """A canned 200 answer for the operation in ``request``."""
    target = request.headers.get("X-Amz-Target", b"")
    target = target.decode() if isinstance(target, bytes) else target
    operation = target.rsplit(".", 1)[-1]
    body: dict[str, Any] = {}
    if operation == "GetItem":
        sent = json.loads(request.body)
        if "key_id" in sent["Key"]:
            body = {"Item": KEY_RECORD}
        elif sent["Key"].get("pk") == {"S": "lease"}:
            body = {"Item": lease_item()}
        else:
            body = (
                {"Item": {**PAYMENT_ITEM, "payment_id": sent["Key"]["payment_id"]}}
                if "payment_id" in sent["Key"]
                else {}
            )
    elif operation == "SendMessage":
        sent = json.loads(request.body)
        body = {
            "MessageId": str(uuid.uuid4()),
            "MD5OfMessageBody": hashlib.md5(sent["MessageBody"].encode()).hexdigest(),
        }
    raw = json.dumps(body).encode()
    return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(raw))


def validation_event(n: int) -> dict[str, Any]:
    """A distinct valid POST /payments request."""
    body = json.dumps(
        {"amount": "10.50", "currency": "USD", "merchant_id": "merchant-1", "card_token": "tok_visa_4242"}
    )
    return {
        "resource": "/payments",
        "path": "/payments",
        "httpMethod": "POST",
        "headers": {"Idempotency-Key": f"bench-{n}", "Content-Type": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "pathParameters": None,
        "requestContext": {
            "requestId": f"req-{n}",
            "stage": "v1",
            "authorizer": {"merchant_id": "merchant-1", "key_id": "0123456789abcdef", "principalId": "merchant-1"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def processing_event(n: int) -> dict[str, Any]:
    """An SQS event with one payment message."""
    message = json.dumps({"payment_id": str(uuid.uuid5(uuid.NAMESPACE_URL, str(n)))})
    return {
        "Records": [
            {
                "messageId": f"m-{n}",
                "receiptHandle": "r",
                "body": message,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(message.encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                "awsRegion": "us-east-1",
            }
        ]
    }


def authorizer_event(n: int) -> dict[str, Any]:
    """A REQUEST authorizer event with a valid key (API Gateway's cache missed)."""
    return {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/POST/payments",
        "resource": "/payments",
        "path": "/payments",
        "httpMethod": "POST",
        "headers": {"Authorization": f"Bearer {API_KEY[0]}", "Idempotency-Key": f"bench-{n}"},
        "requestContext": {"requestId": f"req-{n}", "stage": "v1", "apiId": "abc123"},
    }


class Context:
    """The fields of a Lambda context the handlers read."""

    function_name = "bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        """Plenty of time left."""
        return 30_000


def main() -> int:
    """``lambda_driver.py <function> <requests>``."""
    function, requests = sys.argv[1], int(sys.argv[2])
    from payments_common import clients

    clients.session().events.register("before-send", answer)
    from payments_common import credentials

    key = credentials.new_key("bench")
    KEY_RECORD.update(credentials.key_item("merchant-1", key, "2026-01-01T00:00:00Z"))
    API_KEY.append(key.token)
    import handler

    make = {
        "payment_validation": validation_event,
        "payment_processing": processing_event,
        "authorizer": authorizer_event,
    }[function]
    context = Context()
    sink = io.StringIO()
    with redirect_stdout(sink):
        for n in range(20):  # warm up
            handler.handler(make(10_000_000 + n), context)
        started = time.process_time()
        for n in range(requests):
            result = handler.handler(make(n), context)
        cpu = time.process_time() - started
    expected = 202 if function == "payment_validation" else None
    if expected and result.get("statusCode") != expected:
        raise SystemExit(f"unexpected answer: {result}")
    if function == "payment_processing" and result.get("batchItemFailures"):
        raise SystemExit(f"unexpected failures: {result}")
    if function == "authorizer" and result["policyDocument"]["Statement"][0]["Effect"] != "Allow":
        raise SystemExit(f"unexpected decision: {result}")
    print(json.dumps({"cpu_s_per_request": cpu / requests, "requests": requests}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
