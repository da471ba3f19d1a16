"""Simulated time: the views the handlers see, skew, and the library clocks it takes over."""

from __future__ import annotations

import datetime

import pytest

from tools.drill.clock import START, SimClock


def test_views_follow_the_clock_with_their_skew() -> None:
    clock = SimClock()
    ahead = clock.view(300)
    clock.advance(42)
    assert clock.base.time() == START + 42
    assert ahead.time() == START + 342
    assert ahead.monotonic() == clock.base.monotonic() == 42
    now = ahead.datetime_module.datetime.now(datetime.UTC)
    assert now == datetime.datetime.fromtimestamp(START + 342, datetime.UTC)
    assert ahead.time_module.time() == START + 342


def test_time_never_moves_backwards() -> None:
    with pytest.raises(ValueError, match="forward"):
        SimClock().advance(-1)


def test_installed_takes_over_powertools_idempotency_moto_and_botocore_sleeps() -> None:
    import botocore.endpoint
    import moto.core.utils
    from aws_lambda_powertools.utilities.idempotency.persistence import datarecord

    clock = SimClock()
    with clock.installed():
        clock.advance(10)
        assert moto.core.utils.unix_time() == pytest.approx(START + 10)
        assert datarecord.dt.datetime.now().timestamp() == pytest.approx(START + 10)
        botocore.endpoint.time.sleep(2.5)
    assert clock.sleeps == [2.5]
    assert datarecord.dt is datetime
