"""What `run --verify` costs against a plain `run` on the 1M-row pets table (issue 11 point 8:
at most 1.5x).

    python bench/verify_cost.py                 # 5 interleaved pairs, medians
    python bench/verify_cost.py --runs 3 --rows 100000
    python bench/verify_cost.py --baseline /path/to/other/checkout   # before/after, interleaved
    python bench/verify_cost.py --baseline-rev c6ed122   # that commit's tree (git archive)
    python bench/verify_cost.py --check          # exit 1 when run --verify exceeds 1.5x run
    python bench/verify_cost.py --schema existing   # into the app's own table (created first)

Both commands run as subprocesses (bench/measure.py: wall time from spawn to exit), each into
a fresh database of one embedded PostgreSQL after a CHECKPOINT (untimed: the previous run's
writes do not land in the next one), interleaved (run, run --verify, run, ...) so that the load
of a shared machine falls on both alike; the medians and their ratio are printed, with every
run's time.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import generate
import measure
import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from migration import embedded  # noqa: E402 - needs the path above

DATA = REPO / "bench" / "out" / "data"
TARGET_RATIO = 1.5  # issue 11 point 8
TIMEOUT_S = 600


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="pairs of runs (default 5)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--check", action="store_true", help=f"exit 1 above {TARGET_RATIO}x")
    parser.add_argument(
        "--schema",
        choices=("create", "existing"),
        default="create",
        help="existing: the app's pets table (generate.PG_DDL) is created first, untimed",
    )
    before = parser.add_mutually_exclusive_group()
    before.add_argument(
        "--baseline", type=Path, help="another checkout whose CLI runs interleaved (before/after)"
    )
    before.add_argument(
        "--baseline-rev", help="a git revision of this repository, exported to a temporary tree"
    )
    args = parser.parse_args(argv)
    dataset = generate.pets_dataset(DATA, args.rows, args.seed)
    work = Path(tempfile.mkdtemp(prefix="petstore-verify-cost-"))
    baseline = args.baseline.resolve() if args.baseline else None
    if args.baseline_rev:
        try:
            baseline = export_revision(args.baseline_rev, work / "baseline")
        except subprocess.CalledProcessError as exc:
            shutil.rmtree(work, ignore_errors=True)
            print(f"cannot export {args.baseline_rev}: {exc.stderr.decode(errors='replace')}")
            return 2
    trees = {"": REPO, **({"baseline ": baseline} if baseline else {})}
    server = embedded.start()  # its own directory: the server user must reach it
    times: dict[str, list[float]] = {
        f"{tree}{command}": [] for tree in trees for command in ("run", "run --verify")
    }
    try:
        for i in range(args.runs):
            for j, name in enumerate(times):
                db = f"cost_{i}_{j}"
                with psycopg.connect(server.url(), autocommit=True) as conn:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
                if args.schema == "existing":
                    with psycopg.connect(server.url(db), autocommit=True) as conn:
                        conn.execute(sql.SQL(generate.PG_DDL["pets"]))  # type: ignore[arg-type]
                with psycopg.connect(server.url(db), autocommit=True) as conn:
                    conn.execute("CHECKPOINT")  # the last run's writes flushed, untimed
                cmd = [sys.executable, "-m", "migration", "run", "--source", str(dataset.path)]
                cmd += ["--target", server.url(db), "--log-format", "json"]
                cmd += ["--verify"] if name.endswith("--verify") else []
                cmd += ["--schema", args.schema]
                tree = trees["baseline " if name.startswith("baseline ") else ""]
                sample = measure.run_measured(
                    cmd, log=work / f"{db}.log", timeout_s=TIMEOUT_S, cwd=tree
                )
                if sample.returncode != 0:
                    print(sample.log.read_text()[-2000:])  # before the finally removes it
                    print(f"{name} failed (exit {sample.returncode})")
                    return 2
                times[name].append(sample.wall_s)
                with psycopg.connect(server.url(), autocommit=True) as conn:
                    conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(db)))
    finally:
        server.stop(delete=True)
        shutil.rmtree(work, ignore_errors=True)
    for name, runs in times.items():
        print(f"{name:<22} runs {', '.join(f'{t:.2f}' for t in runs)} s")
    ratio = 0.0
    for tree, path in reversed(trees.items()):
        plain = statistics.median(times[f"{tree}run"])
        verified = statistics.median(times[f"{tree}run --verify"])
        ratio = verified / plain
        print(
            f"{label(path, args.baseline_rev)}: pets {args.rows:,} ({args.schema}): "
            f"run {plain:.2f} s, run --verify {verified:.2f} s "
            f"(medians of {args.runs}, interleaved): {ratio:.2f}x (target at most {TARGET_RATIO}x)"
        )
    return 1 if args.check and ratio > TARGET_RATIO else 0


def export_revision(rev: str, dest: Path) -> Path:
    """`git archive REV` of this repository unpacked into `dest` (the CLI runs from there)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", rev, "migration"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def label(path: Path, rev: str | None) -> str:
    return f"{rev} (before)" if rev and path.name == "baseline" else path.name


if __name__ == "__main__":
    sys.exit(main())
