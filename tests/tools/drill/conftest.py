"""Shared fixtures for the drill tests: the topology of the default synth, a wired drill."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.synthesized import Synthesized
from tools.drill import synth as drill_synth
from tools.drill.drill import Drill, Scenario
from tools.drill.synth import Topology


@pytest.fixture(scope="session")
def topology(synth: Synthesized) -> Topology:
    """What the default synth says, resolved."""
    return drill_synth.load(synth.outdir)


@pytest.fixture(scope="module")
def wired(topology: Topology) -> Iterator[Drill]:
    """Both regions wired on moto (real handlers loaded), no scenario running: for component tests."""
    drill = Drill(topology, Scenario(name="components", title="component tests", duration_s=0))
    with drill.session():
        yield drill


def pytest_configure(config: pytest.Config) -> None:
    """Powertools metrics state is per process: both regions' copies of a function share it."""
    config.addinivalue_line("filterwarnings", "ignore:Dimension 'region' has already been added")
