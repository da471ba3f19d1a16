"""Probe checks (canary.py) against moto's two regions: replication lag, stalls, own health, metrics."""

from __future__ import annotations

import json
from typing import Any

import pytest
from failover_orchestrator import canary

from tests.lambdas.conftest import CONTROL, PRIMARY, SECONDARY, Aws, FakeContext, load_handler
from tests.lambdas.failover_orchestrator.conftest import SCHEDULED, World


class FakeClock:
    """A clock that moves only when the canary sleeps; ``replicate_after`` sleeps copy the item over."""

    def __init__(self, aws: Aws, replicate_after: int | None) -> None:
        self.aws, self.now, self.sleeps, self.replicate_after = aws, 1000.0, 0, replicate_after

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1
        if self.sleeps == self.replicate_after:
            key = {"pk": {"S": canary.canary_key(PRIMARY)}}
            item = self.aws.dynamodb[PRIMARY].get_item(TableName=CONTROL, Key=key)["Item"]
            self.aws.dynamodb[SECONDARY].put_item(TableName=CONTROL, Item=item)


def run(aws: Aws, clock: FakeClock, peer: Any = None) -> canary.CanaryResult:
    return canary.replication_canary(
        aws.dynamodb[PRIMARY],
        peer or aws.dynamodb[SECONDARY],
        table=CONTROL,
        region=PRIMARY,
        peer_region=SECONDARY,
        clock=clock.monotonic,
        sleep=clock.sleep,
    )


def test_lag_is_the_time_until_the_token_shows_in_the_peer_replica(aws: Aws) -> None:
    clock = FakeClock(aws, replicate_after=4)
    result = run(aws, clock)
    assert result.seen
    assert result.lag_ms == pytest.approx(4 * canary.CANARY_POLL_INTERVAL_S * 1000)
    item = aws.dynamodb[PRIMARY].get_item(TableName=CONTROL, Key={"pk": {"S": f"canary#{PRIMARY}"}})["Item"]
    assert int(item["expires_at"]["N"]) > float(item["written_at"]["N"])


def test_an_old_token_in_the_peer_does_not_count_as_replicated(aws: Aws) -> None:
    # The previous probe's item is in the peer already: only this run's token may end the wait.
    aws.dynamodb[SECONDARY].put_item(
        TableName=CONTROL, Item={"pk": {"S": f"canary#{PRIMARY}"}, "token": {"S": "previous-probe"}}
    )
    result = run(aws, FakeClock(aws, replicate_after=None))
    assert not result.seen
    assert result.lag_ms == canary.CANARY_TIMEOUT_S * 1000


def test_a_stalled_replication_reports_the_timeout_which_breaches_the_budget(aws: Aws) -> None:
    result = run(aws, FakeClock(aws, replicate_after=None))
    assert not result.seen
    assert result.lag_ms == canary.CANARY_TIMEOUT_S * 1000 > 1000


def test_an_unreachable_peer_reports_the_timeout_and_why(aws: Aws) -> None:
    class Down:
        def get_item(self, **_: Any) -> dict[str, Any]:
            raise ConnectionError("peer region is down")

    result = run(aws, FakeClock(aws, replicate_after=None), peer=Down())
    assert (result.seen, result.lag_ms) == (False, canary.CANARY_TIMEOUT_S * 1000)
    assert result.error == "peer read: ConnectionError"


class Response:
    def __init__(self, status: int) -> None:
        self.status = status

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *_: Any) -> None:
        return None


def test_own_health_is_200_from_the_regional_url_only() -> None:
    seen: list[str] = []

    def opener(request: Any, timeout: float) -> Response:
        seen.append(request.full_url)
        assert timeout == canary.HEALTH_TIMEOUT_S
        return Response(200)

    assert canary.region_healthy("https://api-us-east-2.dev.example.com/health", opener=opener)
    assert seen == ["https://api-us-east-2.dev.example.com/health"]
    assert not canary.region_healthy("http://api-us-east-2.dev.example.com/health", opener=opener)
    assert len(seen) == 1, "never a plain-HTTP or file: URL"


def test_own_health_fails_on_an_error_status_or_no_answer_every_attempt() -> None:
    calls: list[str] = []
    pauses: list[float] = []

    def fenced(request: Any, timeout: float) -> Response:
        calls.append(request.full_url)
        raise OSError("HTTP Error 503: Service Unavailable")

    url = "https://api-us-east-2.dev.example.com/health"
    assert not canary.region_healthy(url, opener=fenced, sleep=pauses.append)
    assert len(calls) == canary.HEALTH_ATTEMPTS
    assert pauses == [canary.HEALTH_RETRY_S] * (canary.HEALTH_ATTEMPTS - 1)
    assert not canary.region_healthy(url, opener=lambda request, timeout: Response(204), sleep=pauses.append)


def test_own_health_is_healthy_when_a_retry_answers_200() -> None:
    answers = iter([OSError("connection reset"), Response(200)])

    def flaky(request: Any, timeout: float) -> Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    pauses: list[float] = []
    assert canary.region_healthy("https://api-us-east-2.dev.example.com/health", opener=flaky, sleep=pauses.append)
    assert pauses == [canary.HEALTH_RETRY_S]


def test_probe_publishes_lag_and_health_as_emf_metrics(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    from aws_lambda_powertools import Logger, Metrics

    metrics = Metrics(namespace="PaymentsTest", service="failover-orchestrator")
    clock = FakeClock(aws, replicate_after=2)
    summary = canary.probe(
        aws.dynamodb[PRIMARY],
        {SECONDARY: aws.dynamodb[SECONDARY]},
        table=CONTROL,
        region=PRIMARY,
        health_url=None,
        metrics=metrics,
        logger=Logger(service="test"),
        clock=clock.monotonic,
        sleep=clock.sleep,
    )
    assert summary == {"replication_lag_ms": pytest.approx(200.0), "replication_seen": True}
    [line] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert line[canary.LAG_METRIC] == [pytest.approx(200.0)]
    [definition] = line["_aws"]["CloudWatchMetrics"]
    assert definition["Namespace"] == "PaymentsTest"
    assert {"Name": canary.LAG_METRIC, "Unit": "Milliseconds"} in definition["Metrics"]
    assert canary.HEALTH_METRIC not in line, "no health URL, no health metric"


def test_the_schedule_probe_runs_the_canary_and_reports_it(world: World) -> None:
    """The hook in the handler: every probe writes this region's canary and says what it saw."""
    orchestrator = load_handler("failover_orchestrator", SECONDARY)
    result = orchestrator.handler(SCHEDULED, FakeContext(function_name="failover-orchestrator-test"))
    assert result["status"] == "standby", "the secondary watches the primary's lease"
    # moto does not replicate between regions: the canary never shows in the peer, so it reports the timeout.
    assert result["checks"] == {"replication_lag_ms": canary.CANARY_TIMEOUT_S * 1000, "replication_seen": False}
    written = world.aws.dynamodb[SECONDARY].get_item(TableName=CONTROL, Key={"pk": {"S": f"canary#{SECONDARY}"}})
    assert "token" in written["Item"]
