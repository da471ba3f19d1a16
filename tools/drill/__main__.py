"""``make drill``: synthesize, run every scenario, print the table, write reports/drill.json and the timelines.

Exit status 1 when a scenario breaks an acceptance rule (the verdict column says which and why).
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
        runs = scenarios.run_all(outdir, chosen, args.workers)
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
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
