"""The event vocabulary: the runbook's example lines match real output (event names and field
sets), every event the CLI emits is documented in docs/migration.md, and text mode names each
phase with its elapsed time."""

from __future__ import annotations

import io
import json
import re
import sqlite3
from pathlib import Path

import pytest

from migration import rehearse
from migration.log import Reporter
from tests.migration.conftest import REPO, query, run_cli

RUNBOOK = REPO / "docs" / "runbook.md"
MIGRATION_DOC = REPO / "docs" / "migration.md"
PHASES = ["schema", "load", "keys", "constraints", "views", "sequences", "analyze", "verify"]


def _section(path: Path, heading: str) -> str:
    text = path.read_text()
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else len(text)]


def _runbook_examples() -> list[dict[str, object]]:
    section = _section(RUNBOOK, "## 5. What the Job prints")
    blocks = re.findall(r"```json\n(.*?)```", section, re.DOTALL)
    return [json.loads(line) for block in blocks for line in block.splitlines() if line.strip()]


def _kind(event: dict[str, object]) -> tuple[object, object, object]:
    """An event's identity for comparison: name, phase, and ok for `verified`."""
    return event["event"], event.get("phase"), event.get("ok")


def _documented(path: Path, heading: str) -> set[str]:
    section = _section(path, heading)
    names: set[str] = set()
    for row in re.findall(r"^\| (`[^|]+`) \|", section, re.MULTILINE):
        names |= set(re.findall(r"`([a-z_]+)`", row))
    return names


@pytest.fixture
def pods(tmp_path):
    """Two pod files: the second holds the first's rows and one more pet."""
    first = rehearse.make_sample(tmp_path, 200)
    second = tmp_path / "petstore-1.db"
    second.write_bytes(first.read_bytes())
    with sqlite3.connect(second) as conn:
        conn.execute("INSERT INTO pets (id, name, species, price) VALUES (5001, 'Nemo', 'fish', 1)")
    return str(first), str(second)


@pytest.mark.db
def test_runbook_examples_match_real_output(pods, make_db, target, pg_server):
    ok = run_cli("run", "--source", pods[0], "--source", pods[1], "--target", target, "--verify")
    assert ok.code == 0, ok.text
    conflict_a = make_db(
        "CREATE TABLE pets (id INTEGER PRIMARY KEY, n TEXT); INSERT INTO pets VALUES (1, 'a');"
    )
    conflict_b = make_db(
        "CREATE TABLE pets (id INTEGER PRIMARY KEY, n TEXT); INSERT INTO pets VALUES (1, 'b');"
    )
    other = pg_server.url_for("postgres")  # refused before anything is written
    refused = run_cli("run", "--source", conflict_a, "--source", conflict_b, "--target", other)
    assert refused.code == 1, refused.text
    query(target, "UPDATE pets SET name = 'changed' WHERE id = 5")
    mismatch = run_cli("verify", "--source", pods[0], "--source", pods[1], "--target", target)
    assert mismatch.code == 1, mismatch.text

    real: dict[tuple[object, object, object], list[set[str]]] = {}
    for res in (ok, refused, mismatch):
        for e in res.events:
            real.setdefault(_kind(e), []).append(set(e))
    examples = _runbook_examples()
    assert len(examples) >= 15
    for example in examples:
        kind = _kind(example)
        assert kind in real, f"the runbook shows {kind}, which the CLI never emitted"
        assert set(example) in real[kind], (kind, sorted(example), real[kind])
    phases = [e["phase"] for e in ok.events if e["event"] == "phase"]
    assert phases == [*PHASES, "commit"]
    [bad] = [e for e in mismatch.events if e["event"] == "verified" and not e["ok"]]
    assert bad["differing_keys"] == ["5 (differs)"]
    assert bad["source_checksum"] != bad["target_checksum"]
    assert (bad["source_rows"], bad["expected_rows"], bad["target_rows"]) == (401, 201, 201)


@pytest.mark.db
def test_every_emitted_event_is_documented_and_the_runbook_uses_the_same_names(pods, target):
    documented = _documented(MIGRATION_DOC, "## Events")
    in_runbook = _documented(RUNBOOK, "## 5. What the Job prints")
    assert in_runbook <= documented, in_runbook - documented
    res = run_cli("run", "--source", pods[0], "--source", pods[1], "--target", target, "--verify")
    emitted = {str(e["event"]) for e in res.events}
    assert emitted <= documented, emitted - documented
    plan = run_cli("plan", "--source", pods[0])
    assert {str(e["event"]) for e in plan.events} <= documented


@pytest.mark.db
def test_done_carries_totals_and_start_carries_no_password(pods, target):
    res = run_cli("run", "--source", pods[0], "--source", pods[1], "--target", target)
    assert res.code == 0, res.text
    start, done = res.events[0], res.events[-1]
    assert start["event"] == "start"
    assert start["sources"] == list(pods)
    assert start["options"] == {
        "verify": False,
        "on_conflict": "refuse",
        "identifiers": "lower",
        "casts": [],
        "replace": False,
        "schema": "auto",
        "cast_declared": [],
        "enums": [],
        "skip": [],
        "map_columns": [],
        "ignore_columns": [],
        "keep": [],
        "source_timezone": "UTC",
        "source_immutable": False,
        "lock_timeout_s": 30.0,
    }
    password = target.split("@")[0].rsplit(":", 1)[1]
    assert password not in json.dumps(start)
    assert str(start["target"]).endswith(target.split("@")[1])
    assert done["event"] == "done"
    assert (done["tables"], done["rows"], done["views"]) == (2, 20 + 201, 1)
    assert isinstance(done["elapsed_s"], float)
    tables = {e["table"]: e for e in res.events if e["event"] == "table"}
    assert tables["pets"]["per_source"] == {"petstore-sample.db": 200, "petstore-1.db": 201}
    assert tables["pets"]["rows"] == 201


@pytest.mark.db
def test_text_mode_names_each_phase_and_counts_duplicates_once(pods, target):
    res = run_cli(
        "run",
        "--source",
        *pods[:1],
        "--source",
        pods[1],
        "--target",
        target,
        "--verify",
        "--log-format",
        "text",
    )
    assert res.code == 0, res.text
    for phase in [*PHASES, "commit"]:
        assert re.search(rf"^{phase}: .+ \(\d+\.\d\d s\)$", res.out, re.MULTILINE), phase
    assert re.search(
        r"^pets\s+201\s+201\s+[0-9a-f]{32} ok \(401 rows in the files, 200 duplicate rows stored "
        r"once\)$",
        res.out,
        re.MULTILINE,
    ), res.out
    assert "200 duplicate rows stored once" in res.out
    assert "1 duplicate rows" not in res.out


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_shows_rate_eta_and_elapsed():
    err = _Tty()
    log = Reporter("text", out=io.StringIO(), err=err)
    log.progress("pets", 0, 1000)
    log.progress("pets", 1000, 1000, final=True)
    line = err.getvalue().strip().split("\r")[-1]
    assert re.fullmatch(
        r"pets\s+\[#{30}\]\s+1,000/1,000 rows\s+[\d,]+ rows/s  ETA 0:00  elapsed 0:00", line
    ), line


def test_a_running_phase_is_named_on_the_terminal_then_replaced_by_its_line():
    out, err = io.StringIO(), _Tty()
    log = Reporter("text", out=out, err=err)
    with log.phase("keys", "UNIQUE constraints and indexes built"):
        assert err.getvalue() == "keys: UNIQUE constraints and indexes built ..."
    assert err.getvalue().endswith("\r\033[K")
    assert re.fullmatch(
        r"keys: UNIQUE constraints and indexes built \(0\.\d\d s\)\n", out.getvalue()
    )


@pytest.mark.db
def test_plan_names_the_target_it_checks_against_without_its_password(pods, target):
    """plan reads the target (its mode, encoding and tables): its start event says which one,
    as run's does; without a target, none."""
    checked = run_cli("plan", "--source", pods[0], "--target", target).events[0]
    password = target.split("@")[0].rsplit(":", 1)[1]
    assert password not in json.dumps(checked)
    assert str(checked["target"]).endswith(target.split("@")[1])
    assert f" -> {checked['target']}" in str(checked["message"])
    assert run_cli("plan", "--source", pods[0]).events[0]["target"] is None
