"""The drill's outputs: the table ``make drill`` prints, ``reports/drill.json``, an HTML timeline per scenario.

The timeline is a static page with inline SVG (no packages): per simulated second, which region
took new payments, the clients' success rate, each region's replication lag, and markers for
the scenario's events and the moments DNS moved.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

#: Columns of the printed table: (figure, header).
COLUMNS = (
    ("scenario", "scenario"),
    ("attempted", "attempted"),
    ("acknowledged", "acked"),
    ("final", "final"),
    ("lost", "lost"),
    ("charged_twice", "charged 2x"),
    ("reverted", "reverted"),
    ("rto_s", "RTO s"),
    ("rpo_count", "RPO"),
    ("two_active_s", "2 active s"),
    ("none_active_s", "0 active s"),
    ("client_errors", "client errors"),
    ("verdict", "verdict"),
)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return " ".join(f"{k}:{v}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value) or "pass"
    return str(value)


def table(results: list[dict[str, Any]]) -> str:
    """A Markdown table of the figures (also what ``make drill`` prints)."""
    rows = [[header for _, header in COLUMNS], ["---"] * len(COLUMNS)]
    rows += [[_cell(result.get(name)) for name, _ in COLUMNS] for result in results]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def write_json(results: list[dict[str, Any]], path: Path) -> None:
    """``{"scenarios": [...]}``: every figure, without the per-second timeline (that is in the HTML)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    plain = [{k: v for k, v in result.items() if k != "timeline"} for result in results]
    path.write_text(json.dumps({"scenarios": plain}, indent=2) + "\n")


def timeline_html(result: dict[str, Any], regions: tuple[str, str]) -> str:
    """One scenario's timeline as a static HTML page with an inline SVG."""
    samples = result["timeline"]
    width, left, row = 960, 110, 40
    span = max((s["t"] for s in samples), default=1.0) or 1.0
    x = lambda t: left + (width - left - 10) * t / span  # noqa: E731
    colours = {regions[0]: "#1f77b4", regions[1]: "#ff7f0e"}
    parts: list[str] = []
    # Row 1: which region took new payments (both = red).
    y1 = 20
    parts.append(f'<text x="4" y="{y1 + 14}">new payments</text>')
    for s in samples:
        if s["active"]:
            colour = "#d62728" if len(s["active"]) > 1 else colours.get(s["active"][0], "#888")
            parts.append(f'<rect x="{x(s["t"]):.1f}" y="{y1}" width="2" height="20" fill="{colour}"/>')
    # Row 2: DNS answer.
    y2 = y1 + row
    parts.append(f'<text x="4" y="{y2 + 14}">DNS answer</text>')
    for s in samples:
        parts.append(
            f'<rect x="{x(s["t"]):.1f}" y="{y2}" width="2" height="20" fill="{colours.get(s["dns"], "#888")}"/>'
        )
    # Row 3: client success rate (per 10 s).
    y3 = y2 + row
    parts.append(f'<text x="4" y="{y3 + 24}">success rate</text>')
    buckets: dict[int, list[int]] = {}
    for s in samples:
        bucket = buckets.setdefault(int(s["t"] // 10), [0, 0])
        bucket[0] += s["successes"]
        bucket[1] += s["attempts"]
    points = " ".join(
        f"{x(b * 10 + 5):.1f},{y3 + 40 - 40 * (ok / total):.1f}" for b, (ok, total) in sorted(buckets.items()) if total
    )
    parts.append(f'<polyline points="{points}" fill="none" stroke="#2ca02c" stroke-width="1.5"/>')
    # Row 4: replication lag per region (seconds, capped at 60 for the scale).
    y4 = y3 + row + 20
    parts.append(f'<text x="4" y="{y4 + 24}">replication lag</text>')
    for region in regions:
        lag_points = " ".join(
            f"{x(s['t']):.1f},{y4 + 40 - 40 * min(s['lag_s'].get(region, 0.0), 60.0) / 60.0:.1f}" for s in samples
        )
        parts.append(f'<polyline points="{lag_points}" fill="none" stroke="{colours[region]}" stroke-width="1"/>')
    height = y4 + 60
    # Markers: the scenario's events and DNS moves.
    for event in result["events"]:
        parts.append(
            f'<line x1="{x(event["t"]):.1f}" y1="10" x2="{x(event["t"]):.1f}" y2="{height}" stroke="#444" '
            f'stroke-dasharray="3,3"><title>{event["t"]:.0f} s: {html.escape(event["what"])}</title></line>'
        )
    for move in result["dns_answers"][1:]:
        parts.append(
            f'<line x1="{x(move["t"]):.1f}" y1="10" x2="{x(move["t"]):.1f}" y2="{height}" stroke="#9467bd">'
            f"<title>{move['t']} s: DNS answers {html.escape(move['region'])}</title></line>"
        )
    legend = ", ".join(f'<span style="color:{c}">&#9632; {html.escape(r)}</span>' for r, c in colours.items())
    figures = {k: v for k, v in result.items() if k not in ("timeline", "events", "dns_answers")}
    events = "".join(f"<li>{e['t']:.0f} s: {html.escape(e['what'])}</li>" for e in result["events"])
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>drill: {html.escape(result['scenario'])}</title></head>"
        "<body style='font-family:sans-serif'>"
        f"<h1>{html.escape(result['title'])}</h1><p>{legend}; red: both regions took new payments; "
        "dashed: scenario events; purple: DNS moved. x axis: simulated seconds "
        f"0-{span:.0f}.</p>"
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-size='12'>"
        + "".join(parts)
        + "</svg>"
        f"<h2>Events</h2><ul>{events}</ul>"
        f"<h2>Figures</h2><pre>{html.escape(json.dumps(figures, indent=2))}</pre></body></html>\n"
    )


def write_outputs(results: list[dict[str, Any]], regions: tuple[str, str], outdir: Path) -> list[Path]:
    """``drill.json`` and ``drill/<scenario>.html`` under ``outdir``; returns the paths written."""
    written = [outdir / "drill.json"]
    write_json(results, written[0])
    (outdir / "drill").mkdir(parents=True, exist_ok=True)
    for result in results:
        page = outdir / "drill" / f"{result['scenario']}.html"
        page.write_text(timeline_html(result, regions))
        written.append(page)
    return written
