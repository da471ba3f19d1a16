"""Keys in the merchants table and REQUEST authorizer events."""

from __future__ import annotations

from typing import Any

from payments_common import credentials

from tests.lambdas.conftest import ACCOUNT, MERCHANTS, PRIMARY, SUFFIX, Aws

API_ID = "a1b2c3d4e5"


def issue_key(aws: Aws, merchant: str, region: str = PRIMARY, suffix: str = SUFFIX) -> credentials.ApiKey:
    """A new active key for ``merchant``, written into ``region``'s merchants table as tools/merchants.py does."""
    key = credentials.new_key(suffix)
    aws.dynamodb[region].put_item(TableName=MERCHANTS, Item=credentials.key_item(merchant, key, "2026-01-01T00:00:00Z"))
    return key


def revoke_key(aws: Aws, key: credentials.ApiKey, region: str = PRIMARY) -> None:
    """Mark ``key`` revoked in ``region``'s table."""
    aws.dynamodb[region].update_item(
        TableName=MERCHANTS,
        Key={"key_id": {"S": key.key_id}},
        UpdateExpression="SET #s = :r",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":r": {"S": credentials.REVOKED}},
    )


def method_arn(region: str = PRIMARY, method: str = "POST", path: str = "payments") -> str:
    return f"arn:aws:execute-api:{region}:{ACCOUNT}:{API_ID}/v1/{method}/{path}"


def authorizer_event(authorization: str | None, region: str = PRIMARY, **headers: str) -> dict[str, Any]:
    """A REST API REQUEST authorizer event for ``POST /payments``."""
    all_headers = {"Content-Type": "application/json", **headers}
    if authorization is not None:
        all_headers["Authorization"] = authorization
    return {
        "type": "REQUEST",
        "methodArn": method_arn(region),
        "resource": "/payments",
        "path": "/payments",
        "httpMethod": "POST",
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "requestContext": {"requestId": "req-1", "stage": "v1", "apiId": API_ID},
    }


def allowed(answer: dict[str, Any]) -> bool:
    """Whether the policy allows anything."""
    return any(s["Effect"] == "Allow" for s in answer["policyDocument"]["Statement"])
