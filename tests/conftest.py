"""Shared fixtures: synthesized apps (default config and the longest allowed suffix)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import main
from layers.config import MAX_SUFFIX_LENGTH
from tests.synthesized import Synthesized
from tools.emulator import Emulator

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

#: The longest suffix the config accepts.
LONGEST_SUFFIX = "x" * (MAX_SUFFIX_LENGTH - 2) + "-9"


def synthesize(outdir: Path, **environ: str) -> Synthesized:
    """Synthesize the app in-process with config overrides from ``environ``."""
    main.synth(outdir, environ={key.upper(): value for key, value in environ.items()})
    return Synthesized(outdir)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The app as the default config synthesizes it."""
    return synthesize(tmp_path_factory.mktemp("synth-default") / "cdktf.out")


@pytest.fixture(scope="session")
def synth_longest(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The app with the longest allowed environment suffix."""
    return synthesize(tmp_path_factory.mktemp("synth-longest") / "cdktf.out", environment_suffix=LONGEST_SUFFIX)


@pytest.fixture(scope="session")
def validated(synth: Synthesized) -> dict[str, dict]:
    """``terraform validate`` result of every stack of the default synth (run once)."""
    from tools.terraform import validate

    return validate(synth.outdir)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """A local emulator (moto server with the extensions) for one test module."""
    server = Emulator(tmp_path_factory.mktemp("emulator") / "emulator.log").start()
    try:
        yield server
    finally:
        server.stop()
