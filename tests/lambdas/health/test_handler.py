"""GET /health: region, fence and DynamoDB reachability, read on every call."""

from __future__ import annotations

import json
from types import ModuleType

import pytest

from tests.lambdas.conftest import CONTROL, PRIMARY, SECONDARY, Aws, FakeContext, load_handler


@pytest.fixture
def health(aws: Aws) -> ModuleType:
    return load_handler("health", PRIMARY)


def check(module: ModuleType, context: FakeContext) -> tuple[int, dict]:
    response = module.handler({"resource": "/health", "httpMethod": "GET"}, context)
    assert response["headers"]["Cache-Control"] == "no-store"
    return response["statusCode"], json.loads(response["body"])


def test_healthy_region(health: ModuleType, aws: Aws, context: FakeContext) -> None:
    assert check(health, context) == (200, {"status": "ok", "region": PRIMARY})


def test_fenced_region_is_unhealthy_at_once(health: ModuleType, aws: Aws, context: FakeContext) -> None:
    assert check(health, context)[0] == 200
    aws.put_fence(PRIMARY)
    status, body = check(health, context)
    assert (status, body["status"], body["region"]) == (503, "fenced", PRIMARY)
    aws.put_fence(PRIMARY, fenced=False)
    assert check(health, context)[0] == 200


def test_fence_of_the_other_region_does_not_matter(health: ModuleType, aws: Aws, context: FakeContext) -> None:
    aws.put_fence(SECONDARY)
    assert check(health, context)[0] == 200


def test_unreachable_dynamodb_is_unhealthy(health: ModuleType, aws: Aws, context: FakeContext) -> None:
    aws.dynamodb[PRIMARY].delete_table(TableName=CONTROL)
    status, body = check(health, context)
    assert (status, body["status"]) == (503, "unavailable")


def test_each_region_reports_itself(aws: Aws, context: FakeContext) -> None:
    secondary = load_handler("health", SECONDARY)
    aws.put_fence(PRIMARY, into=PRIMARY)
    assert check(secondary, context) == (200, {"status": "ok", "region": SECONDARY})
