"""Global-table replication: lag, stall, a region that is down, last writer wins."""

from __future__ import annotations

from typing import Any

from tools.drill.replication import Replicator

A, B = "us-east-1", "us-east-2"
KEY = {"pk": {"S": "item"}}


def replicator() -> tuple[Replicator, list[tuple[str, str, Any]]]:
    applied: list[tuple[str, str, Any]] = []
    return Replicator(lambda table, region, key, image: applied.append((table, region, image)), lag_s=1.0), applied


def image(value: str) -> dict[str, Any]:
    return {**KEY, "v": {"S": value}}


def test_a_write_lands_in_the_other_region_after_the_lag() -> None:
    rep, applied = replicator()
    rep.record("t", A, (A, B), KEY, image("1"), at=100.0)
    assert rep.deliver(100.5) == 0
    assert rep.lag_seconds(B, 100.5) == 0.5
    assert rep.deliver(101.0) == 1
    assert applied == [("t", B, image("1"))]
    assert rep.lag_seconds(B, 101.0) == 0.0


def test_a_stalled_link_holds_changes_in_order_until_it_resumes() -> None:
    rep, applied = replicator()
    rep.stall(A, B)
    rep.record("t", A, (A, B), KEY, image("1"), at=100.0)
    rep.record("t", A, (A, B), KEY, image("2"), at=101.0)
    assert rep.deliver(400.0) == 0
    rep.stall(A, B, stalled=False)
    assert rep.deliver(400.0) == 2
    assert [i["v"]["S"] for _, _, i in applied] == ["1", "2"]


def test_a_region_that_is_down_neither_sends_nor_receives() -> None:
    rep, _applied = replicator()
    rep.record("t", A, (A, B), KEY, image("1"), at=100.0)
    assert rep.deliver(200.0, down={A}) == 0
    assert rep.deliver(200.0, down={B}) == 0
    assert rep.deliver(200.0) == 1


def test_last_writer_wins_an_older_change_never_overwrites_a_newer_local_write() -> None:
    rep, applied = replicator()
    rep.stall(A, B)
    rep.record("t", A, (A, B), KEY, image("old-in-A"), at=100.0)
    rep.record("t", B, (A, B), KEY, image("new-in-B"), at=105.0)
    rep.stall(A, B, stalled=False)
    rep.deliver(200.0)
    assert applied == [("t", A, image("new-in-B"))]
    assert rep.dropped_older == 1
