"""The real handlers of both regions, side by side in one process, each as Lambda runs it.

Each function of each region is imported separately (a cold start: ``payments_common`` and the
function's package are imported afresh) with exactly the environment the synthesized compute
stack gives it, plus what Lambda itself sets, and with the region's simulated ``time`` and
``datetime`` in place of the real modules (see :mod:`.clock`). Its boto3 clients are created at
import, as in Lambda, and so belong to that region. Every invocation runs under the same
environment again (Powertools reads some variables per call), with stdout (logs, EMF metrics)
going to a :class:`LogSink`.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tools.drill.clock import ClockView, SimClock
from tools.drill.synth import FunctionSpec, Topology
from tools.drill.world import World

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
SHARED_PACKAGE = "payments_common"
#: Credentials Lambda would give the function's role: fake, so nothing can reach a real account.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "drill", "AWS_SECRET_ACCESS_KEY": "drill", "AWS_SESSION_TOKEN": "drill"}


#: Functions whose third-party imports this process has already loaded (with the real clock).
_WARMED: set[str] = set()


class LogSink(io.TextIOBase):
    """Where the functions' stdout goes: lines counted per level, the last few kept."""

    def __init__(self, keep: int = 200) -> None:
        self.lines = 0
        self.error_lines = 0
        self.tail: list[str] = []
        self._keep = keep

    def write(self, text: str) -> int:
        """Count lines; keep the last ``keep``."""
        for line in text.splitlines():
            self.lines += 1
            if '"level":"ERROR"' in line.replace(" ", ""):
                self.error_lines += 1
            self.tail.append(line)
        del self.tail[: -self._keep]
        return len(text)


@dataclass
class FakeContext:
    """The Lambda context object."""

    function_name: str
    invoked_function_arn: str
    timeout_s: int
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        """The whole timeout is left: simulated time does not pass during a call."""
        return self.timeout_s * 1000


@dataclass
class Stats:
    """Invocation counters of one function in one region."""

    invocations: int = 0
    errors: int = 0


#: What the function's process gets besides its own variables: its role's credentials (and, against an
#: emulator, ``AWS_ENDPOINT_URL``). The default: :data:`FAKE_CREDENTIALS`.
Environ = Callable[[FunctionSpec], dict[str, str]]


def lambda_environment(spec: FunctionSpec, extra: Environ | None = None) -> dict[str, str]:
    """What the function's process sees: its variables plus what Lambda sets (credentials: ``extra``)."""
    return {
        **spec.environment,
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_s),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        **(FAKE_CREDENTIALS if extra is None else extra(spec)),
    }


@contextlib.contextmanager
def exact_environ(environ: dict[str, str]) -> Iterator[None]:
    """``os.environ`` is exactly ``environ`` inside the block."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _purge(packages: set[str]) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in packages:
            del sys.modules[name]


class Runtime:
    """Every function of every region, loaded and invocable."""

    def __init__(
        self,
        topology: Topology,
        world: World,
        clock: SimClock,
        skews: dict[str, float] | None = None,
        environ: Environ | None = None,
    ):
        self.topology, self.world, self.clock = topology, world, clock
        self.environ = environ
        self.views = {region: clock.view((skews or {}).get(region, 0.0)) for region in topology.regions}
        self.modules: dict[tuple[str, str], ModuleType] = {}
        self.stats: dict[tuple[str, str], Stats] = {}
        self.logs = LogSink()
        #: metric(region, namespace, name, dimensions, value): where ``AWS/Lambda`` datapoints go.
        self.metric: Callable[[str, str, str, dict[str, str], float], None] | None = None
        self._packages = {SHARED_PACKAGE} | {spec.key for spec in topology.functions.values()}

    def load(self) -> None:
        """Import every function of both regions (cold starts)."""
        if str(LAMBDAS) not in sys.path:
            sys.path.insert(0, str(LAMBDAS))
        # A first import with the real clock loads the third-party modules once per process, so none
        # of them keeps a region's simulated time module; only Lambda code is re-imported per region.
        for spec in {s.key: s for s in self.topology.functions.values()}.values():
            if spec.key not in _WARMED:
                self._import(spec, None)
                _WARMED.add(spec.key)
        for (region, key), spec in sorted(self.topology.functions.items()):
            self.modules[(region, key)] = self._import(spec, self.views[region])
            self.stats[(region, key)] = Stats()

    def _import(self, spec: FunctionSpec, view: ClockView | None) -> ModuleType:
        module_name = f"{spec.key}.{spec.handler.rsplit('.', 1)[0]}"
        saved = {name: sys.modules[name] for name in ("time", "datetime")}
        _purge(self._packages)
        try:
            with exact_environ(lambda_environment(spec, self.environ)), contextlib.redirect_stdout(self.logs):
                if view is not None:
                    sys.modules["time"], sys.modules["datetime"] = view.time_module, view.datetime_module
                try:
                    return importlib.import_module(module_name)
                finally:
                    sys.modules.update(saved)
        finally:
            _purge(self._packages)

    def invoke(self, region: str, key: str, event: Any) -> Any:
        """Run one invocation; an exception is counted as a Lambda error and re-raised."""
        spec = self.topology.function(region, key)
        module = self.modules[(region, key)]
        entry = getattr(module, spec.handler.rsplit(".", 1)[1])
        context = FakeContext(spec.name, spec.arn, spec.timeout_s)
        stats = self.stats[(region, key)]
        stats.invocations += 1
        previous = self.world.caller, self.world.function
        self.world.caller, self.world.function = region, key
        failed = False
        try:
            with exact_environ(lambda_environment(spec, self.environ)), contextlib.redirect_stdout(self.logs):
                return entry(event, context)
        except BaseException:  # an error or a crash (FunctionCrashed): both are a Lambda error
            stats.errors += 1
            failed = True
            raise
        finally:
            self.world.caller, self.world.function = previous
            if self.metric is not None:
                dims = {"FunctionName": spec.name}
                self.metric(region, "AWS/Lambda", "Invocations", dims, 1.0)
                self.metric(region, "AWS/Lambda", "Errors", dims, 1.0 if failed else 0.0)

    def functions(self, region: str) -> list[str]:
        """The function keys deployed in ``region``."""
        return sorted(key for r, key in self.modules if r == region)
