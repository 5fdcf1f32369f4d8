"""The example apps keep working after the migration (issue 8, "Proof").

For each app (examples/wiki: async SQLAlchemy + FastAPI; examples/library: Django 5.2) and each
mode, the app's own suite runs in a real process and every one of its checks must pass:
`sqlite` (baseline), `postgres` (the app's own schema on PostgreSQL, natively seeded), `create`
(seeded on SQLite, `run --verify --schema create`: the tool builds the schema) and `existing`
(seeded on SQLite, the app's migrations on PostgreSQL, then `run --verify --schema existing`).
After each migration, every object the app's ORM reads from PostgreSQL must equal its SQLite
read, Python type included.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from tests.examples import harness
from tests.examples.harness import APPS, MODES
from tests.migration.conftest import PgServer

pytestmark = [pytest.mark.examples, pytest.mark.db, pytest.mark.slow]
MIGRATED = ("create", "existing")

# Checks that fail today, by (app, mode): each reason names what breaks. Strict: a fix flips the
# test red, so this table shrinks with the work it tracks. Empty: create mode passes every check
# with the options docs/migration.md recommends (harness.App.create_args).
KNOWN: dict[tuple[str, str], dict[str, str]] = {}
# Whole-run outcomes that fail today: (test, app, mode) -> reason.
KNOWN_RUNS: dict[tuple[str, str, str], str] = {}


def _runs(test: str) -> list[Any]:
    out = []
    for app in APPS:
        for mode in MIGRATED:
            reason = KNOWN_RUNS.get((test, app, mode))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(app, mode, marks=marks, id=f"{app}-{mode}"))
    return out


def result(app: str, mode: str, pg: PgServer, results_dir: Path) -> dict[str, Any]:
    """The cached outcome of one app in one mode."""
    spec = APPS[app]
    work = results_dir / f"{app}-{mode}"
    return harness.cached(
        results_dir,
        spec,
        mode,
        lambda: harness.compute(spec, mode, work, pg.admin_url, pg.url_for),
    )


def _cases() -> list[Any]:
    cases = []
    for app, spec in APPS.items():
        for mode in MODES:
            for check in spec.checks():
                reason = KNOWN.get((app, mode), {}).get(check)
                marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                cases.append(
                    pytest.param(app, mode, check, marks=marks, id=f"{app}-{mode}-{check}")
                )
    return cases


@pytest.mark.parametrize(("app", "mode", "check"), _cases())
def test_app_check_passes(
    app: str, mode: str, check: str, pg_server: PgServer, results_dir: Path
) -> None:
    res = result(app, mode, pg_server, results_dir)
    if "migrate" in res and res["migrate"]["code"] != 0:
        pytest.fail(f"migration exited {res['migrate']['code']}:\n{res['migrate']['output']}")
    assert res["checks"].get(check) == "passed", res["checks"].get(check, "not collected")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("app", list(APPS))
def test_suite_ran_every_check(app: str, mode: str, pg_server: PgServer, results_dir: Path) -> None:
    """The suite really ran: every check of its source reported (no collection error)."""
    res = result(app, mode, pg_server, results_dir)
    assert sorted(res["checks"]) == sorted(APPS[app].checks())


@pytest.mark.parametrize(("app", "mode"), _runs("exits_0"))
def test_migration_exits_0(app: str, mode: str, pg_server: PgServer, results_dir: Path) -> None:
    res = result(app, mode, pg_server, results_dir)
    assert res["migrate"]["code"] == 0, res["migrate"]["output"]


@pytest.mark.parametrize(("app", "mode"), _runs("objects"))
def test_every_object_reads_as_on_sqlite(
    app: str, mode: str, pg_server: PgServer, results_dir: Path
) -> None:
    """Every attribute of every object, as the ORM hands it to the app, type included."""
    res = result(app, mode, pg_server, results_dir)
    assert res["diffs"] == []


def test_the_docs_show_the_create_mode_command_lines_the_harness_runs() -> None:
    """docs/migration.md's create-mode command line per app is exactly what is tested here."""
    text = (harness.REPO / "docs" / "migration.md").read_text(encoding="utf-8")
    block = text.split("### Telling create mode what the file forgot", 1)[1].split("```sh", 1)[1]
    shown: dict[str, list[str]] = {}
    for command in block.split("```", 1)[0].replace("\\\n", " ").splitlines():
        words = shlex.split(command, comments=True)
        if words[:3] == ["python", "-m", "migration"]:
            app = words[words.index("--source") + 1].removesuffix(".db")
            shown[app] = words[words.index("--verify") + 1 :]
    assert shown == {app: list(spec.create_args) for app, spec in APPS.items()}
    assert "CREATE EXTENSION IF NOT EXISTS citext" in block
    assert APPS["wiki"].extensions == ("citext",)
