"""The benchmark's verdicts and chart, from results (no loader is run here): `--check` turns a
failed target into a non-zero exit, and the chart is drawn from the JSON `--json` writes."""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import chart  # noqa: E402 - bench/ is a directory of scripts, not a package
import run  # noqa: E402

RECORDED = Path(__file__).resolve().parents[2] / "docs" / "benchmark" / "run.json"


def _result(tool: str, wall: float, rss: float, rows: int = 1000, ok: bool = True) -> run.Result:
    return run.Result("pets 1k", tool, rows, 1000, "ok", wall, [wall], rss, check_ok=ok, check="ok")


def _bench(*results: run.Result, scale: list[run.Result] | None = None) -> run.Bench:
    bench = run.Bench(target=None, args=argparse.Namespace())  # type: ignore[arg-type]
    bench.results = list(results)
    bench.scale = scale or []
    return bench


def test_check_exits_non_zero_when_a_target_fails():
    fast = _bench(
        _result(run.FLOOR, 1.0, 3), _result(run.TOOL, 1.5, 50), _result(run.PGLOADER_NAME, 6, 300)
    )
    lines = run.targets(fast, "pets 1k")
    assert run.exit_code(lines, check=True) == 0, lines
    slow = _bench(
        _result(run.FLOOR, 1.0, 3), _result(run.TOOL, 2.5, 50), _result(run.PGLOADER_NAME, 6, 300)
    )
    lines = run.targets(slow, "pets 1k")
    assert any(x.startswith("FAIL  within 2x of the raw-COPY floor") for x in lines), lines
    assert run.exit_code(lines, check=True) == 1
    assert run.exit_code(lines, check=False) == 0  # without --check: a report, not a gate


def test_check_fails_when_the_tool_did_not_run_or_loaded_wrong_values():
    failed = run.Result("pets 1k", run.TOOL, 1000, 1000, "failed (exit 2)")
    assert run.exit_code(run.targets(_bench(failed), "pets 1k"), check=True) == 1
    wrong = _bench(_result(run.FLOOR, 1.0, 3), _result(run.TOOL, 1.5, 50, ok=False))
    assert run.exit_code(run.targets(wrong, "pets 1k"), check=True) == 1


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_chart_is_drawn_from_the_recorded_json(tmp_path):
    payload = json.loads(RECORDED.read_text())
    out = chart.draw(payload, tmp_path / "chart.png")
    assert _png_size(out) == (1430, 462)  # FIGSIZE_IN x DPI
    measured, _missing = chart.bars(payload, payload["results"][0]["dataset"])
    tools = [b.tool for b in measured]
    assert run.TOOL in tools
    assert tools == [
        r["tool"]
        for r in payload["results"]
        if r["dataset"] == payload["results"][0]["dataset"] and r["status"] == "ok"
    ]
    assert all(b.wall_s > 0 and b.peak_rss_mb > 0 for b in measured)
    assert len(chart.scale(payload)) == len([r for r in payload["scale"] if r["status"] == "ok"])


def test_docs_show_the_recorded_run_and_its_chart():
    doc = (BENCH.parent / "docs" / "benchmark.md").read_text()
    payload = json.loads(RECORDED.read_text())
    assert "![" in doc
    assert "benchmark/run.png" in doc
    assert (BENCH.parent / "docs" / "benchmark" / "run.png").is_file()
    for line in payload["report"]:
        if line.startswith(("pets ", "multi-table ")):
            assert line in doc, f"docs/benchmark.md does not show the recorded line: {line}"


def test_chart_refuses_a_json_where_nothing_completed(tmp_path):
    payload = {
        "results": [
            {
                "dataset": "pets 1k",
                "tool": run.TOOL,
                "status": "failed (exit 2)",
                "rows": 1,
                "total_rows": 1,
                "full_wall_s": None,
                "peak_rss_mb": None,
            }
        ],
        "scale": [],
    }
    with pytest.raises(SystemExit, match="no loader completed"):
        chart.draw(payload, tmp_path / "x.png")
