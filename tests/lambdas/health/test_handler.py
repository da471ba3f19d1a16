"""GET /health: the answer of each region in each lease state (docs/design.md), read on every call."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from tests.lambdas.conftest import CONTROL, PRIMARY, SECONDARY, Aws, FakeContext, load_handler


def check(module: ModuleType, context: FakeContext) -> tuple[int, dict]:
    response = module.handler({"resource": "/health", "httpMethod": "GET"}, context)
    assert response["headers"]["Cache-Control"] == "no-store"
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture(autouse=True)
def orchestrators_running(aws: Aws) -> None:
    """Both regions' orchestrators wrote a heartbeat just now (their own replicas)."""
    for region in (PRIMARY, SECONDARY):
        put_own_heartbeat(aws, region, 0)


def put_own_heartbeat(aws: Aws, region: str, age_seconds: float) -> None:
    moment = datetime.now(UTC) - timedelta(seconds=age_seconds)
    at = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    aws.dynamodb[region].put_item(
        TableName=CONTROL, Item={"pk": {"S": f"heartbeat#{region}"}, "at": {"S": at}, "seq": {"N": "1"}}
    )


def mark_unhealthy(aws: Aws, region: str) -> None:
    for target in (PRIMARY, SECONDARY):
        aws.dynamodb[target].put_item(
            TableName=CONTROL, Item={"pk": {"S": f"health#{region}"}, "healthy": {"BOOL": False}}
        )


@pytest.mark.parametrize(
    ("lease", "unhealthy", "expected"),
    [
        # The primary active: both checks healthy, Route 53 answers the primary.
        ({"holder": PRIMARY}, None, {PRIMARY: (200, "active"), SECONDARY: (200, "standby")}),
        # The secondary active: the primary's check fails, so Route 53 answers the secondary.
        ({"holder": SECONDARY, "epoch": 2}, None, {PRIMARY: (503, "standby"), SECONDARY: (200, "active")}),
        # The primary's lease ran out (self-demoted): only the promotable secondary is healthy.
        ({"holder": PRIMARY, "valid_for": -1.0}, None, {PRIMARY: (503, "lease_expired"), SECONDARY: (200, "standby")}),
        # An unhealthy standby is not promotable: it must not attract the failover.
        ({"holder": PRIMARY}, SECONDARY, {PRIMARY: (200, "active"), SECONDARY: (503, "unhealthy")}),
        # An active region stays healthy while its alarm asks for a handover (its API alarms move DNS).
        ({"holder": PRIMARY}, PRIMARY, {PRIMARY: (200, "active"), SECONDARY: (200, "standby")}),
    ],
    ids=["primary-active", "secondary-active", "primary-lapsed", "standby-unhealthy", "active-unhealthy"],
)
def test_each_state_gives_the_documented_answer(
    aws: Aws, context: FakeContext, lease: dict[str, Any], unhealthy: str | None, expected: dict
) -> None:
    aws.put_lease(**lease)
    if unhealthy:
        mark_unhealthy(aws, unhealthy)
    answers = {}
    for region in (PRIMARY, SECONDARY):
        status, body = check(load_handler("health", region), context)
        assert body["region"] == region
        answers[region] = (status, body["status"])
    assert answers == expected


def test_a_standby_whose_orchestrator_stopped_is_not_promotable(aws: Aws, context: FakeContext) -> None:
    secondary = load_handler("health", SECONDARY)
    assert check(secondary, context)[1]["status"] == "standby"
    put_own_heartbeat(aws, SECONDARY, 181)
    assert check(secondary, context)[0] == 503
    assert check(secondary, context)[1]["status"] == "unhealthy"
    aws.dynamodb[SECONDARY].delete_item(TableName=CONTROL, Key={"pk": {"S": f"heartbeat#{SECONDARY}"}})
    assert check(secondary, context)[0] == 503


def test_state_changes_are_seen_at_once(aws: Aws, context: FakeContext) -> None:
    health = load_handler("health", PRIMARY)
    assert check(health, context)[0] == 200
    aws.put_lease(SECONDARY, epoch=2)
    assert check(health, context)[0] == 503
    aws.put_lease(PRIMARY, epoch=3)
    status, body = check(health, context)
    assert (status, body["epoch"], body["active_region"]) == (200, 3, PRIMARY)


def test_unreachable_dynamodb_is_unhealthy(aws: Aws, context: FakeContext) -> None:
    aws.dynamodb[PRIMARY].delete_table(TableName=CONTROL)
    status, body = check(load_handler("health", PRIMARY), context)
    assert (status, body["status"]) == (503, "unavailable")


def test_no_lease_yet_is_unhealthy_everywhere(aws: Aws, context: FakeContext) -> None:
    for region in (PRIMARY, SECONDARY):
        aws.dynamodb[region].delete_item(TableName=CONTROL, Key={"pk": {"S": "lease"}})
        assert check(load_handler("health", region), context)[0] == 503


def test_each_region_judges_its_own_replica(aws: Aws, context: FakeContext) -> None:
    """A promotion the old holder has not seen yet (partition): each region answers from its own replica."""
    aws.put_lease(PRIMARY, valid_for=-1.0, into=PRIMARY)
    aws.put_lease(SECONDARY, epoch=2, into=SECONDARY)
    assert check(load_handler("health", SECONDARY), context)[1]["status"] == "active"
    assert check(load_handler("health", PRIMARY), context)[1]["status"] == "lease_expired"
