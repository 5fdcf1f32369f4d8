"""`--source-timezone` needs the IANA database. The image's base (python:3.11-slim-bookworm)
installs Debian's tzdata today, but a base without it (or Debian 13, which moves the legacy
names such as US/Central to tzdata-legacy) must not break a named zone: the engine's own
requirements carry the `tzdata` package, which zoneinfo falls back to by itself."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys

import pytest

from tests.migration.conftest import REPO, query, run_subprocess

ZONES = ["Europe/Paris", "US/Central", "America/Argentina/Buenos_Aires"]
NO_SYSTEM_DB = {"PYTHONTZPATH": ""}  # zoneinfo.TZPATH empty: no /usr/share/zoneinfo


def _resolve(zone: str, block_tzdata: bool) -> subprocess.CompletedProcess[str]:
    code = (
        ("import sys; sys.modules['tzdata'] = None\n" if block_tzdata else "")
        + "from migration.convert import source_zone\n"
        + f"print(source_zone({zone!r}).utcoffset(__import__('datetime').datetime(2024, 7, 1)))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **NO_SYSTEM_DB},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _locked(lock: str, name: str) -> str:
    text = (REPO / lock).read_text()
    m = re.search(
        rf"^{name}==\S+( ;[^\\\n]*)? \\\n(    --hash=sha256:[0-9a-f]{{64}}.*\n)+", text, re.M
    )
    assert m, f"{name} not locked with hashes in {lock}"
    return m.group(0)


def test_the_image_requirements_carry_tzdata_for_every_platform():
    assert re.search(r"^tzdata==\S+$", (REPO / "migration/requirements.in").read_text(), re.M)
    entry = _locked("migration/requirements.txt", "tzdata")
    assert " ; " not in entry.splitlines()[0]  # no marker: installed on Linux too, not Windows only
    assert _locked("requirements-rehearse.txt", "tzdata").splitlines()[0].endswith("\\")


@pytest.mark.parametrize("zone", ZONES)
def test_a_named_zone_resolves_without_the_system_database(zone):
    found = _resolve(zone, block_tzdata=False)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() in {"2:00:00", "-1 day, 19:00:00", "-1 day, 21:00:00"}


def test_without_the_tzdata_package_it_would_not(tmp_path):
    found = _resolve("Europe/Paris", block_tzdata=True)
    assert found.returncode == 1
    assert "unknown time zone 'Europe/Paris'" in found.stderr


TARGET_TABLE = "CREATE TABLE events (id bigint PRIMARY KEY, at timestamptz)"


@pytest.mark.db
def test_run_reads_naive_datetimes_in_a_named_zone_without_the_system_database(make_db, target):
    src = make_db(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, at TEXT);"
        "INSERT INTO events VALUES (1, '2024-07-01 12:00:00'), (2, '2024-01-15 08:30:00');"
    )
    query(target, TARGET_TABLE)
    res = run_subprocess(
        "run", "--source", src, "--target", target, "--schema", "existing", "--verify",
        "--source-timezone", "Europe/Paris", "--log-format", "json",
        env=NO_SYSTEM_DB,
    )  # fmt: skip
    assert res.code == 0, res.text
    assert query(target, "SELECT id, at FROM events ORDER BY id") == [
        (1, dt.datetime(2024, 7, 1, 10, 0, tzinfo=dt.UTC)),
        (2, dt.datetime(2024, 1, 15, 7, 30, tzinfo=dt.UTC)),
    ]
