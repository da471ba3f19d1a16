#!/usr/bin/env python
"""Entry point: parse the config once, build every stack in layer order, synthesize.

``python main.py`` (or ``npx cdktf synth``) writes ``cdktf.out``. Bad config exits
non-zero with one message naming the key, the value and the rule, before anything
is written.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from cdktf import App

from layers.account import AccountStack
from layers.base import STATE_BACKEND_VARIABLE, BackendSettings, LayerStack
from layers.bootstrap import BootstrapStack
from layers.compute import ComputeStack
from layers.config import REPO_ROOT, Config, ConfigError, load_config
from layers.data import DataStack
from layers.edge import EdgeGlobalStack, EdgeStack
from layers.network import NetworkStack
from layers.observability import ObservabilityStack
from layers.witness import WitnessStack
from tools.package import PackagingError


def build(app: App, config: Config, backend: BackendSettings) -> dict[str, LayerStack]:
    """Every stack, layer by layer, each layer looping over the regions (primary first)."""
    stacks: dict[str, LayerStack] = {}

    def add(stack: LayerStack) -> LayerStack:
        stacks[stack.stack_id] = stack
        return stack

    common = {"config": config, "backend": backend}
    # Bootstrap always describes the normal buckets and tables, break-glass or not.
    add(BootstrapStack(app, config=config, backend=backend.primary or backend))
    # Opt-in: API Gateway's account-wide logging role, owned by one deployment per account (layers/account.py).
    account = {
        r: add(AccountStack(app, region=r, **common)) for r in config.regions if config.manage_api_gateway_account
    }
    network = {r: add(NetworkStack(app, region=r, **common)) for r in config.regions}
    data: dict[str, DataStack] = {}
    for region in config.regions:
        primary = None if config.is_primary(region) else data[config.primary_region]
        data[region] = add(DataStack(app, region=region, network=network[region], primary=primary, **common))
    # The lease's third copy, in the witness region: both regions' orchestrators write it directly.
    witness = add(WitnessStack(app, **common))
    compute = {
        r: add(ComputeStack(app, region=r, network=network[r], data=data[r], witness=witness, **common))
        for r in config.regions
    }
    zone = add(EdgeGlobalStack(app, **common))
    edge = {
        r: add(EdgeStack(app, region=r, compute=compute[r], zone=zone, account=account.get(r), **common))
        for r in config.regions
    }
    primary, secondary = config.regions
    peer = {primary: secondary, secondary: primary}
    for region in config.regions:
        # The peer's edge: both regions' health checks and API names go on every dashboard and alarm.
        add(ObservabilityStack(app, region=region, edge=edge[region], peer=edge[peer[region]], **common))
    return stacks


def synth(outdir: Path, environ: dict[str, str] | None = None) -> dict[str, LayerStack]:
    """Build into a temporary folder and move it into place only when the synth succeeded."""
    config = load_config(environ=environ)
    backend = BackendSettings.load()
    backend.check_names(config.environment_suffix)
    mode = (os.environ if environ is None else environ).get(STATE_BACKEND_VARIABLE, "")
    if mode == "replica":
        backend = backend.replica(config.secondary_region)
    elif mode:
        raise ConfigError(STATE_BACKEND_VARIABLE, mode, "must be empty or 'replica' (break-glass, README)")
    outdir = outdir.resolve()
    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".cdktf.out-", dir=outdir.parent))
    try:
        app = App(outdir=str(staging))
        stacks = build(app, config, backend)
        app.synth()
        if outdir.exists():
            shutil.rmtree(outdir)
        staging.rename(outdir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return stacks


def main() -> int:
    """Synthesize to ``$CDKTF_OUTDIR`` (set by the cdktf CLI) or ``cdktf.out``."""
    outdir = Path(os.environ.get("CDKTF_OUTDIR", REPO_ROOT / "cdktf.out"))
    try:
        synth(outdir)
    except (ConfigError, PackagingError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
