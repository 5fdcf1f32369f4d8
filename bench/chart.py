"""Draw the benchmark's chart from the JSON that `bench/run.py --json` writes.

    python bench/chart.py docs/benchmark/run.json --out docs/benchmark/run.png

Three panels: wall time per loader and peak RSS per loader on the first dataset (the pets
table), and the tool's peak RSS (and wall time) against the number of rows. Loaders that did
not run (skipped, failed) are left out and named under the chart; an extrapolated wall time
is marked `*` as in the report.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")  # files only: no display on a server or in CI
import matplotlib.pyplot as plt

TOOL = "migration run"
FIGSIZE_IN = (13.0, 4.2)  # three panels side by side, readable at docs width
DPI = 110
HEADROOM = 1.3  # y axes of the scale panel reach 30 % above the largest value: lines stay visible


@dataclass
class Bar:
    """One loader on one dataset, as charted."""

    tool: str
    wall_s: float
    peak_rss_mb: float
    extrapolated: bool


def bars(payload: dict[str, Any], dataset: str) -> tuple[list[Bar], list[str]]:
    """The measured loaders of `dataset` in report order, and the ones that were not."""
    out, missing = [], []
    for r in payload["results"]:
        if r["dataset"] != dataset:
            continue
        if r["status"] != "ok" or r.get("full_wall_s") is None:
            missing.append(f"{r['tool']}: {r['status']}")
            continue
        out.append(Bar(r["tool"], r["full_wall_s"], r["peak_rss_mb"], r["rows"] < r["total_rows"]))
    return out, missing


def scale(payload: dict[str, Any]) -> list[tuple[int, float, float]]:
    """(rows, peak RSS MB, wall s) of the tool's scale runs that completed."""
    return [
        (r["total_rows"], r["peak_rss_mb"], r["wall_s"])
        for r in payload.get("scale", [])
        if r["status"] == "ok" and r.get("peak_rss_mb") is not None
    ]


def draw(payload: dict[str, Any], out: Path) -> Path:
    """Write the PNG; returns its path."""
    dataset = payload["results"][0]["dataset"]
    measured, missing = bars(payload, dataset)
    if not measured:
        raise SystemExit(f"{dataset}: no loader completed; nothing to chart")
    fig, (ax_time, ax_rss, ax_scale) = plt.subplots(1, 3, figsize=FIGSIZE_IN, dpi=DPI)
    names = [b.tool + ("*" if b.extrapolated else "") for b in measured]
    colors = ["tab:orange" if b.tool.startswith(TOOL) else "tab:gray" for b in measured]
    ax_time.barh(names, [b.wall_s for b in measured], color=colors)
    ax_time.set_title(f"wall time, {dataset} (s)")
    ax_time.invert_yaxis()
    ax_rss.barh(names, [b.peak_rss_mb for b in measured], color=colors)
    ax_rss.set_title(f"peak RSS, {dataset} (MB)")
    ax_rss.invert_yaxis()
    ax_rss.set_yticklabels([])
    for ax, values, fmt in (
        (ax_time, [b.wall_s for b in measured], "{:.2f}"),
        (ax_rss, [b.peak_rss_mb for b in measured], "{:.0f}"),
    ):
        for y, v in enumerate(values):
            ax.annotate(
                fmt.format(v),
                (v, y),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        ax.margins(x=0.18)
    points = scale(payload)
    if points:
        rows = [p[0] for p in points]
        ax_scale.plot(rows, [p[1] for p in points], "o-", color="tab:orange", label="peak RSS (MB)")
        ax_scale.set_xscale("log")
        ax_scale.set_ylim(0, HEADROOM * max(p[1] for p in points))
        ax_scale.set_xlabel("rows in the pets table")
        ax_scale.set_ylabel("peak RSS (MB)")
        twin = ax_scale.twinx()
        twin.plot(rows, [p[2] for p in points], "s--", color="tab:blue", label="wall time (s)")
        twin.set_ylabel("wall time (s)")
        twin.set_ylim(0, HEADROOM * max(p[2] for p in points))
        ax_scale.set_title(f"{TOOL}: RSS and time against rows")
        handles = ax_scale.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        ax_scale.legend(handles=handles, loc="lower right", fontsize=8)
    else:
        ax_scale.set_axis_off()
        ax_scale.text(0.5, 0.5, "no scale runs in this JSON", ha="center", va="center")
    notes = ["* extrapolated from a subset"] if any(b.extrapolated for b in measured) else []
    notes += [f"not charted: {m}" for m in missing]
    if notes:
        fig.text(0.01, 0.01, "; ".join(notes), fontsize=8)
    fig.tight_layout(rect=(0, 0.05 if notes else 0, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, metadata={"Software": None})  # no version stamp: same data, same file
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/chart.py", description=__doc__.split("\n")[0])
    parser.add_argument("json", type=Path, help="a file written by bench/run.py --json")
    parser.add_argument("--out", type=Path, help="PNG to write (default: beside the JSON)")
    args = parser.parse_args(argv)
    payload = json.loads(args.json.read_text())
    path = draw(payload, args.out or args.json.with_suffix(".png"))
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
