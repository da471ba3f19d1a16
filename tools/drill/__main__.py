"""``make drill``: synthesize, run every scenario, print the table, write reports/drill.json and the timelines.

``--target deployed`` (``make drill TARGET=deployed``) runs them one after another against the
deployment ``make deploy-local KEEP=1`` left in the emulator, each function with its own role's
credentials, and writes the IAM coverage table to ``reports/drill/iam.md``.

Exit status 1 when a scenario breaks an acceptance rule (the verdict column says which and why),
or, against a deployment, when a role grants something no scenario used and nothing excuses.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

from tools.drill import scenarios, synth

REPO_ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    """Run the drill."""
    parser = argparse.ArgumentParser(prog="python -m tools.drill", description=__doc__)
    parser.add_argument("--synth", type=Path, help="an existing cdktf.out (default: synthesize into a temp dir)")
    parser.add_argument("--reports", type=Path, default=REPO_ROOT / "reports")
    parser.add_argument("--only", action="append", help="run only this scenario (repeatable)")
    parser.add_argument("--workers", type=int, help="scenarios run at once (default: one per core)")
    parser.add_argument(
        "--target",
        choices=["moto", "deployed"],
        default="moto",
        help="moto made from the synth, in this process (default), or the kept local deployment",
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="Dimension 'region' has already been added")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="drill-synth-") as scratch:
        outdir = args.synth
        if outdir is None:
            os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
            import main as app

            outdir = Path(scratch) / "cdktf.out"
            app.synth(outdir)
        topology = synth.load(outdir)
        synthesized = time.perf_counter()
        chosen = [s for s in scenarios.SCENARIOS if not args.only or s.name in args.only]
        unknown = sorted(set(args.only or ()) - {s.name for s in scenarios.SCENARIOS})
        if unknown:
            parser.error(
                f"unknown scenario {', '.join(unknown)}; known: {', '.join(s.name for s in scenarios.SCENARIOS)}"
            )
        if args.target == "deployed":
            runs, iam_problems = _deployed(topology, chosen, args.reports)
        else:
            runs, iam_problems = scenarios.run_all(outdir, chosen, args.workers), []
    results, failed = [], []
    for scenario, figures in zip(chosen, runs, strict=True):
        problems = scenarios.verdict(figures, scenario, topology)
        figures["verdict"] = [f"FAIL: {problem}" for problem in problems] if problems else ["pass"]
        if problems:
            failed.append(scenario.name)
        results.append(figures)
    from tools.drill.report import table, write_outputs

    print(table(results))
    for path in write_outputs(results, topology.regions, args.reports):
        print(f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    finished = time.perf_counter()
    print(
        f"synth {synthesized - started:.1f} s, scenarios {finished - synthesized:.1f} s on "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )
    for problem in iam_problems:
        print(problem, file=sys.stderr)
    return 1 if failed or iam_problems else 0


def _deployed(topology: synth.Topology, chosen: list[scenarios.Scenario], reports: Path) -> tuple[list, list[str]]:
    """The scenarios against the kept local deployment; the calls its roles refused and the grants nobody used."""
    from tools import emulator
    from tools.drill import deployed

    record = emulator.remembered()
    if record is None:
        raise SystemExit("no local emulator is running: `make deploy-local KEEP=1` first")
    endpoint = f"http://{emulator.HOST}:{record['port']}"
    iam = reports / "drill" / "iam.md"
    outcome = deployed.drill(endpoint, topology, chosen, emulator.decisions_path(Path(str(record["log"]))), iam)
    print(f"wrote {iam}")
    problems = [f"refused: {d['action']} on {d['resource']} to {d['principal']}" for d in outcome.refused]
    problems += [f"unused grant: {g.role} {g.action} on {g.resource}" for g in outcome.unused]
    return outcome.runs, problems


if __name__ == "__main__":
    sys.exit(main())
