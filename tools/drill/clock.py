"""Simulated time: ten minutes of failover run in seconds, and every clock the code reads agrees.

One :class:`SimClock` drives the drill; each region sees it through a :class:`ClockView` (with an
optional skew, for the clock-skew scenarios). A view provides stand-ins for the ``time`` and
``datetime`` modules: Lambda code is imported with them in place of the real modules (see
:mod:`.runtime`), so ``payments_common.timeutil``, ``time.monotonic`` defaults and the like all
read simulated time. :meth:`SimClock.installed` points Powertools idempotency's and moto's clocks
at the simulation too and turns botocore's retry sleeps into recorded delays.
"""

from __future__ import annotations

import datetime as _datetime
import time as _time
import types
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

#: The drill's epoch: a fixed instant, so runs are reproducible.
START = _datetime.datetime(2026, 1, 1, tzinfo=_datetime.UTC).timestamp()


class ClockView:
    """The simulated clock as one region sees it (``skew_s`` ahead of the drill's clock)."""

    def __init__(self, clock: SimClock, skew_s: float = 0.0) -> None:
        self.clock, self.skew_s = clock, skew_s
        self.time_module = self._time_module()
        self.datetime_module = self._datetime_module()

    def time(self) -> float:
        """Epoch seconds as this region reads them."""
        return self.clock.now + self.skew_s

    def monotonic(self) -> float:
        """Monotonic seconds (skew does not matter to a monotonic clock).

        Sleeps the code asked for count too, so a loop that polls until a monotonic deadline
        (the orchestrator's replication canary) ends within one simulated second.
        """
        return self.clock.now - START + self.clock.slept

    def _time_module(self) -> types.ModuleType:
        module = types.ModuleType("time")
        module.__dict__.update({name: getattr(_time, name) for name in dir(_time) if not name.startswith("__")})
        module.time = self.time
        module.time_ns = lambda: int(self.time() * 1e9)
        module.monotonic = self.monotonic
        module.monotonic_ns = lambda: int(self.monotonic() * 1e9)
        module.sleep = self.clock.record_sleep
        return module

    def _datetime_module(self) -> types.ModuleType:
        view = self

        class SimDatetime(_datetime.datetime):
            """``datetime`` whose ``now``/``utcnow`` read the simulated clock."""

            @classmethod
            def now(cls, tz: _datetime.tzinfo | None = None) -> _datetime.datetime:  # type: ignore[override]
                return _datetime.datetime.fromtimestamp(view.time(), tz)

            @classmethod
            def utcnow(cls) -> _datetime.datetime:  # type: ignore[override]
                return _datetime.datetime.fromtimestamp(view.time(), _datetime.UTC).replace(tzinfo=None)

            @classmethod
            def today(cls) -> _datetime.datetime:  # type: ignore[override]
                return cls.now()

        module = types.ModuleType("datetime")
        module.__dict__.update({name: getattr(_datetime, name) for name in dir(_datetime) if not name.startswith("__")})
        module.datetime = SimDatetime
        return module


class SimClock:
    """The drill's clock: advanced explicitly, never by the wall clock."""

    def __init__(self, start: float = START) -> None:
        self.now = start
        self.start = start
        #: Sleeps the code asked for (botocore retry backoff), in seconds; not slept.
        self.sleeps: list[float] = []
        #: Total of :attr:`sleeps` (what :meth:`ClockView.monotonic` adds).
        self.slept = 0.0
        self.base = ClockView(self)

    @property
    def elapsed(self) -> float:
        """Seconds since the drill started."""
        return self.now - self.start

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self.now += seconds

    def record_sleep(self, seconds: float) -> None:
        """A sleep the code asked for: recorded, not slept."""
        self.sleeps.append(float(seconds))
        self.slept += max(0.0, float(seconds))

    def view(self, skew_s: float = 0.0) -> ClockView:
        """A view of this clock ``skew_s`` ahead (negative: behind)."""
        return ClockView(self, skew_s) if skew_s else self.base

    def iso(self, at: float | None = None) -> str:
        """``2026-01-01T00:00:00.000Z`` for ``at`` (default: now)."""
        moment = _datetime.datetime.fromtimestamp(self.now if at is None else at, _datetime.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    @contextmanager
    def installed(self) -> Iterator[SimClock]:
        """Point Powertools idempotency, moto and botocore's retry sleeps at this clock."""
        import importlib
        import sys

        import botocore.endpoint
        import moto.core.utils

        for name in ("persistence.dynamodb", "persistence.datarecord", "base"):
            importlib.import_module(f"aws_lambda_powertools.utilities.idempotency.{name}")
        targets: list[tuple[Any, str, Any]] = [
            (moto.core.utils, "datetime", self.base.datetime_module),
            (botocore.endpoint, "time", types.SimpleNamespace(sleep=self.record_sleep, time=self.base.time)),
        ]
        # Powertools idempotency reads ``dt.datetime.now()`` for expiry and in-progress checks.
        targets += [
            (module, "dt", self.base.datetime_module)
            for name, module in list(sys.modules.items())
            if name.startswith("aws_lambda_powertools.utilities.idempotency")
            and getattr(module, "dt", None) is _datetime
        ]
        with ExitStack() as stack:
            for module, name, value in targets:
                stack.enter_context(mock.patch.object(module, name, value))
            yield self
