"""``make bench``: synth speed and memory, check times, Lambda figures, recovery figures from the config, the DR drill.

Prints one table and writes it as JSON (``reports/bench.json``). Run outside the test suite:
benchmarks measure, tests check behaviour.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.procmem import measure  # noqa: E402
from benchmarks.sections import bench_lambda, bench_recovery  # noqa: E402

PY = str(REPO_ROOT / ".venv" / "bin" / "python")
Row = dict[str, Any]


def env(**extra: str) -> dict[str, str]:
    """Environment for measured commands: jsii banner silenced, no Python bytecode written twice."""
    return {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", **extra}


def median_run(cmd: list[str], runs: int, **extra: str) -> tuple[float, float]:
    """Median wall seconds and median peak RSS (MiB) of ``runs`` cold runs of ``cmd``."""
    results = [measure(cmd, REPO_ROOT, env(**extra)) for _ in range(runs)]
    return statistics.median(r.wall_s for r in results), statistics.median(r.peak_rss_mib for r in results)


def bench_synth(runs: int, outdir: Path) -> list[Row]:
    """Full synth vs the floor (same provider imports, one empty stack), and per-stack size."""
    floor_s, floor_mib = median_run([PY, "benchmarks/floor_app.py"], runs)
    synth_s, synth_mib = median_run([PY, "main.py"], runs, CDKTF_OUTDIR=str(outdir))
    rows: list[Row] = [
        {
            "section": "synth",
            "figure": "floor wall (median)",
            "value": round(floor_s, 2),
            "unit": "s",
            "origin": f"benchmarks/floor_app.py, {runs} cold runs",
        },
        {
            "section": "synth",
            "figure": "floor peak memory",
            "value": round(floor_mib),
            "unit": "MiB",
            "origin": "RSS of the process tree (python + node), sampled every 20 ms",
        },
        {
            "section": "synth",
            "figure": "full synth wall (median)",
            "value": round(synth_s, 2),
            "unit": "s",
            "origin": f"python main.py, {runs} cold runs",
            "target": "<= 1.5x floor, < 20 s",
        },
        {
            "section": "synth",
            "figure": "full synth peak memory",
            "value": round(synth_mib),
            "unit": "MiB",
            "origin": "RSS of the process tree",
            "target": "< 1536 MiB",
        },
        {
            "section": "synth",
            "figure": "synth / floor (wall)",
            "value": round(synth_s / floor_s, 2),
            "unit": "x",
            "target": "<= 1.5",
            "met": synth_s / floor_s <= 1.5,
        },
    ]
    manifest = json.loads((outdir / "manifest.json").read_text())
    for name, stack in manifest["stacks"].items():
        path = outdir / stack["synthesizedStackPath"]
        body = json.loads(path.read_text())
        count = sum(len(items) for items in body.get("resource", {}).values())
        rows.append(
            {
                "section": "stacks",
                "figure": name,
                "value": count,
                "unit": "resources",
                "size_kib": round(path.stat().st_size / 1024, 1),
            }
        )
    return rows


def timed(section: str, figure: str, cmd: list[str]) -> Row:
    """One timed command (wall seconds)."""
    run = measure(cmd, REPO_ROOT, env())
    return {"section": section, "figure": figure, "value": round(run.wall_s, 1), "unit": "s", "origin": " ".join(cmd)}


def bench_checks() -> list[Row]:
    """Time `make validate` (init + validate of every stack) and the checkov scan, once each."""
    return [
        timed("checks", "make validate", ["make", "-s", "validate"]),
        timed("checks", "make scan", ["make", "-s", "scan"]),
    ]


def bench_drill(outdir: Path) -> list[Row]:
    """Every DR drill scenario on the synthesized app (`make drill` without its synth)."""
    cmd = [PY, "-m", "tools.drill", "--synth", str(outdir), "--reports", str(outdir.parent / "drill-reports")]
    row = timed("drill", "DR drill, every scenario", cmd)
    return [{**row, "target": "<= 120 s", "met": row["value"] <= 120}]


SECTIONS: dict[str, Callable[[Path], list[Row]]] = {
    "lambda": bench_lambda,
    "recovery": bench_recovery,
    "drill": bench_drill,
}


def render(rows: list[Row]) -> str:
    """A Markdown table of every row."""
    lines = ["| section | figure | value | unit | target | origin |", "| --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        target = row.get("target", "")
        if "met" in row:
            target = f"{target} ({'met' if row['met'] else 'MISSED'})"
        extra = f", {row['size_kib']} KiB" if "size_kib" in row else ""
        lines.append(
            f"| {row['section']} | {row['figure']} | {row['value']}{extra} | {row['unit']} | {target} "
            f"| {row.get('origin', '')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="cold synth runs (median)")
    parser.add_argument("--only", nargs="*", default=None, help="sections: synth checks lambda recovery drill")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "bench.json")
    args = parser.parse_args(argv)
    outdir = REPO_ROOT / "build" / "bench" / "cdktf.out"
    sections = args.only or ["synth", "checks", "lambda", "recovery", "drill"]
    rows: list[Row] = []
    started = time.perf_counter()
    if "synth" in sections:
        rows += bench_synth(args.runs, outdir)
    elif not (outdir / "manifest.json").exists():
        measure([PY, "main.py"], REPO_ROOT, env(CDKTF_OUTDIR=str(outdir)))
    if "checks" in sections:
        rows += bench_checks()
    for name in ("lambda", "recovery", "drill"):
        if name in sections and name in SECTIONS:
            rows += SECTIONS[name](outdir)
    machine = {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "system": platform.platform(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    print(render(rows))
    print(f"\nmachine: {machine}; took {time.perf_counter() - started:.0f} s; JSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
