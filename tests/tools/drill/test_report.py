"""The drill's outputs: the table, reports/drill.json, an HTML timeline per scenario."""

from __future__ import annotations

import json
from pathlib import Path

from tools.drill.report import table, timeline_html, write_outputs

REGIONS = ("us-east-1", "us-east-2")


def result(name: str) -> dict:
    return {
        "scenario": name,
        "title": f"title of {name}",
        "attempted": 3,
        "acknowledged": 3,
        "final": 3,
        "lost": 0,
        "charged_twice": 0,
        "reverted": 0,
        "rto_s": 29.0,
        "rpo_count": 1,
        "two_active_s": 0,
        "none_active_s": 4,
        "client_errors": {"connection": 2},
        "verdict": ["pass"],
        "events": [{"t": 1.0, "what": "primary <down>"}],
        "dns_answers": [{"t": 0.0, "region": REGIONS[0]}, {"t": 2.0, "region": REGIONS[1]}],
        "timeline": [
            {
                "t": float(t),
                "dns": REGIONS[t > 1],
                "active": [REGIONS[t > 1]],
                "attempts": 1,
                "successes": t != 1,
                "lag_s": {REGIONS[0]: 0.0, REGIONS[1]: float(t)},
            }
            for t in range(3)
        ],
    }


def test_the_table_has_one_line_per_scenario_with_its_figures() -> None:
    lines = table([result("a"), result("b")]).splitlines()
    assert len(lines) == 4
    assert lines[2].startswith("| a | 3 | 3 | 3 | 0 | 0 | 0 | 29.0 | 1 | 0 | 4 | connection:2 | pass |")


def test_outputs_are_the_json_list_and_one_page_per_scenario(tmp_path: Path) -> None:
    written = write_outputs([result("a"), result("b")], REGIONS, tmp_path)
    assert written == [tmp_path / "drill.json", tmp_path / "drill" / "a.html", tmp_path / "drill" / "b.html"]
    document = json.loads((tmp_path / "drill.json").read_text())
    assert [s["scenario"] for s in document["scenarios"]] == ["a", "b"]
    assert "timeline" not in document["scenarios"][0]
    assert document["scenarios"][0]["lost"] == 0


def test_the_timeline_is_static_html_with_an_escaped_inline_svg() -> None:
    page = timeline_html(result("a"), REGIONS)
    assert page.count("<svg") == 1
    assert "primary &lt;down&gt;" in page
    assert "DNS answers us-east-2" in page
    assert "<script" not in page
