"""A target whose encoding cannot hold a source character (issue 11 point 1).

psycopg sends text in the session's client encoding and PostgreSQL stores it in the database's
encoding: a LATIN1 database, or a UTF8 database reached with `client_encoding=LATIN1`, cannot
take 'caf€' (U+20AC) or an emoji. `plan` and `run` name every such value (file, table, row,
column, the character as U+XXXX, the encoding lacking it) as a value problem, exit 1, and
nothing is written; names the encoding cannot hold are refused by name before anything is
written; representable data still migrates and verifies (the non-UTF-8 session uses the
canonical verification form)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator

import pytest

from migration import source
from tests.migration.conftest import (
    PgServer,
    Result,
    SecretURL,
    encoded_database,
    query,
    run_cli,
    tables_in,
)

pytestmark = pytest.mark.db

LISTED = 50  # plan.PROBLEMS_LISTED_PER_COLUMN

SCHEMA = """
CREATE TABLE notes (id INTEGER PRIMARY KEY, title VARCHAR(12), body TEXT);
CREATE TABLE tags (name TEXT PRIMARY KEY, label TEXT) WITHOUT ROWID;
"""
ROWS = """
INSERT INTO notes VALUES (1, 'café', 'ÿ is fine'), (2, 'caf€', 'ok'), (3, 'plain', 'x😀y€');
INSERT INTO tags VALUES ('a', 'ok'), ('b€', '€uro');
"""


@pytest.fixture(params=["latin1 database", "latin1 client"])
def narrow(request: pytest.FixtureRequest, pg_server: PgServer) -> Iterator[tuple[str, str]]:
    """A target lacking '€': a LATIN1 database, or a UTF8 one reached with client_encoding
    LATIN1; and what the report must name as lacking it."""
    if request.param == "latin1 database":
        with encoded_database(pg_server, "LATIN1") as url:
            yield url, "LATIN1, the target database's encoding"
    else:
        with encoded_database(pg_server, "UTF8") as url:
            yield SecretURL(url + "?client_encoding=LATIN1"), "client_encoding LATIN1"


def problems(res: Result) -> list[tuple[str, ...]]:
    return sorted(
        tuple(str(e[k]) for k in ("table", "rowid", "column", "value", "reason"))
        for e in res.events
        if e["event"] == "problem"
    )


def plan_and_run(*args: str) -> tuple[Result, Result]:
    return run_cli("plan", *args), run_cli("run", *args)


def test_plan_and_run_name_every_value_the_encoding_lacks(
    narrow: tuple[str, str], make_db: Callable[..., str]
) -> None:
    url, lacking = narrow
    pod = make_db(SCHEMA + ROWS, "pod0.db")
    plan, run = plan_and_run("--source", pod, "--target", url)
    listed = problems(plan)
    assert (plan.code, run.code) == (1, 1), (listed, run.text)
    assert problems(run) == listed
    assert [p[:4] for p in listed] == [
        ("notes", "2", "title", "'caf€'"),
        ("notes", "3", "body", "'x😀y€'"),
        ("tags", "'b€'", "label", "'€uro'"),
        ("tags", "'b€'", "name", "'b€'"),
    ]
    reasons = {(p[0], p[2]): p[4] for p in listed}
    assert reasons[("notes", "title")].startswith(
        f"character 4 of the text, '€' (U+20AC), has no equivalent in {lacking}"
    ), reasons
    assert "character 2 of the text, '😀' (U+1F600)" in reasons[("notes", "body")]
    assert "also U+20AC" in reasons[("notes", "body")]
    assert tables_in(url.split("?")[0]) == []
    [failed] = run.messages("failed")
    assert "4 value(s) in 4 column(s) do not fit" in failed, failed
    assert "UnicodeEncodeError" not in run.text
    assert "please report" not in run.text


def test_the_listing_is_capped_per_column_and_the_count_exact(
    narrow: tuple[str, str], make_db: Callable[..., str]
) -> None:
    url, _ = narrow
    pod = make_db(
        "CREATE TABLE prices (id INTEGER PRIMARY KEY, amount TEXT);"
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 70) "
        "INSERT INTO prices SELECT i, CASE WHEN i % 10 = 0 THEN i || ' EUR' ELSE i || ' €' END "
        "FROM n;",
        "pod0.db",
    )
    plan, run = plan_and_run("--source", pod, "--target", url)
    listed = problems(plan)
    assert (plan.code, run.code) == (1, 1), run.text
    assert problems(run) == listed
    assert len(listed) == LISTED
    [verdict] = [e for e in plan.events if e["event"] == "plan"]
    assert verdict["problems"] == 63  # 70 rows, 7 of them 'EUR'
    assert "63 value(s) in 1 column(s) do not fit" in run.messages("failed")[0]
    text = run_cli("plan", "--source", pod, "--target", url, "--log-format", "text")
    assert f": prices.amount: {63 - LISTED} more" in text.out, text.out


def test_a_large_streamed_text_is_named_with_the_character_and_where_it_is(
    narrow: tuple[str, str], make_db: Callable[..., str]
) -> None:
    """A TEXT larger than STREAM_BYTES is read in pieces (never whole) by the load; plan and
    run name it like a small one, with the character's position."""
    url, lacking = narrow
    size = source.STREAM_BYTES + 1000
    pod = make_db(
        "CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT);",
        "pod0.db",
        rows={
            "INSERT INTO docs VALUES (?, ?)": [
                (1, "é" * size),  # representable, large
                (2, "a" * size + "€" + "b"),
            ]
        },
    )
    plan, run = plan_and_run("--source", pod, "--target", url)
    listed = problems(plan)
    assert (plan.code, run.code) == (1, 1), run.text
    assert problems(run) == listed
    [(table, row, column, value, reason)] = listed
    assert (table, row, column) == ("docs", "2", "body")
    assert value == repr("a" * 56)[:57] + "..."
    assert reason.startswith(
        f"character {size + 1:,} of the text, '€' (U+20AC), has no equivalent in {lacking}"
    ), reason
    assert tables_in(url.split("?")[0]) == []


@pytest.mark.parametrize("verify", [False, True])
def test_representable_text_migrates_and_verifies(
    narrow: tuple[str, str], make_db: Callable[..., str], verify: bool
) -> None:
    """Text the encoding holds (é, ÿ, a large streamed value) is carried over exactly, and
    `--verify` and `verify` (the canonical form: the session is not UTF-8) agree."""
    url, _ = narrow
    big = "é" * (source.STREAM_BYTES + 10) + "ÿ"
    pod = make_db(
        SCHEMA
        + "INSERT INTO notes VALUES (1, 'café', 'Ünïcödé'), (2, NULL, 'x');"
        + "INSERT INTO tags VALUES ('ä', 'Ä'), ('b', NULL);",
        "pod0.db",
        rows={"INSERT INTO notes VALUES (?, ?, ?)": [(3, "big", big)]},
    )
    args = ["--source", pod, "--target", url] + (["--verify"] if verify else [])
    plan = run_cli("plan", "--source", pod, "--target", url)
    assert plan.code == 0, plan.text
    done = run_cli("run", *args)
    assert done.code == 0, done.text
    if verify:
        assert [e["ok"] for e in done.events if e["event"] == "verified"] == [True, True]
    rows = query(url, "SELECT id, title, body = %s, length(body) FROM notes ORDER BY id", (big,))
    assert rows == [(1, "café", False, 7), (2, None, False, 1), (3, "big", True, len(big))]
    assert query(url, "SELECT name, label FROM tags ORDER BY name") == [("b", None), ("ä", "Ä")]
    again = run_cli("verify", "--source", pod, "--target", url)
    assert again.code == 0, again.text


def test_a_name_the_encoding_lacks_is_refused_by_name(
    narrow: tuple[str, str], make_db: Callable[..., str]
) -> None:
    url, lacking = narrow
    pod = make_db(
        'CREATE TABLE "pr€ise" (id INTEGER PRIMARY KEY, "mon€y" TEXT, ok TEXT);'
        'CREATE TABLE fine (id INTEGER PRIMARY KEY, "☃" TEXT);'
        "INSERT INTO fine VALUES (1, 'a');",
        "pod0.db",
    )
    plan, run = plan_and_run("--source", pod, "--target", url)
    assert (plan.code, run.code) == (2, 2), run.text
    [message] = run.messages("failed")
    assert run.messages("failed") == plan.messages("failed")
    assert "table 'pr€ise'" in message, message
    assert "column 'pr€ise'.'mon€y'" in message, message
    assert "column 'fine'.'☃'" in message, message
    assert f"no equivalent in {lacking}" in message, message
    assert re.search(r"U\+20AC.*U\+2603", message), message
    assert "please report" not in message
    assert tables_in(url.split("?")[0]) == []


def test_existing_mode_names_the_values_the_apps_database_cannot_hold(
    pg_server: PgServer, make_db: Callable[..., str]
) -> None:
    with encoded_database(pg_server, "LATIN1") as url:
        query(url, "CREATE TABLE notes (id bigint PRIMARY KEY, title varchar(12), body text)")
        pod = make_db(SCHEMA.split("CREATE TABLE tags")[0] + ROWS.split("INSERT INTO tags")[0])
        args = ["--source", pod, "--target", url, "--schema", "existing"]
        plan, run = plan_and_run(*args)
        listed = problems(plan)
        assert (plan.code, run.code) == (1, 1), run.text
        assert problems(run) == listed
        assert [p[:3] for p in listed] == [("notes", "2", "title"), ("notes", "3", "body")]
        assert query(url, "SELECT count(*) FROM notes") == [(0,)]


def test_rows_stored_once_from_two_files_verify_in_a_latin1_database(
    pg_server: PgServer, make_db: Callable[..., str]
) -> None:
    """The expected checksum subtracts the duplicate rows stored once, summed by PostgreSQL:
    in a LATIN1 database they are hashed as their UTF-8 bytes, as the sources are."""
    with encoded_database(pg_server, "LATIN1") as url:
        rows = "INSERT INTO notes VALUES (1, 'café', 'Ünïcödé'), (2, 'ÿ', NULL);"
        pods = [
            make_db(SCHEMA.split("CREATE TABLE tags")[0] + rows, "pod0.db"),
            make_db(
                SCHEMA.split("CREATE TABLE tags")[0]
                + rows
                + "INSERT INTO notes VALUES (3, 'ä', 'ö');",
                "pod1.db",
            ),
        ]
        done = run_cli("run", "--source", pods[0], "--source", pods[1], "--target", url, "--verify")
        assert done.code == 0, done.text
        assert [e["ok"] for e in done.events if e["event"] == "verified"] == [True]
        assert query(url, "SELECT count(*) FROM notes") == [(3,)]
        again = run_cli("verify", "--source", pods[0], "--source", pods[1], "--target", url)
        assert again.code == 0, again.text


DOCS = """
CREATE TABLE docs (id INTEGER PRIMARY KEY, doc TEXT, tags TEXT);
INSERT INTO docs VALUES (1, '{"a": "é", "ÿ": [1, "ü"]}', '["é", null, "ÿ"]'), (2, '{}', '[]'),
                        (3, NULL, NULL);
"""
DOC_CASTS = ("--cast", "docs.doc=jsonb", "docs.tags=text[]")


@pytest.mark.parametrize("verify", [False, True])
def test_jsonb_and_text_arrays_are_sent_in_the_sessions_encoding(
    narrow: tuple[str, str], make_db: Callable[..., str], verify: bool
) -> None:
    """jsonb and arrays go in their binary formats, whose text PostgreSQL reads in the client
    encoding: sent as UTF-8 into a LATIN1 session, 'é' was stored as 'Ã©', silently."""
    url, _ = narrow
    pod = make_db(DOCS)
    args = ["--source", pod, "--target", url, *DOC_CASTS] + (["--verify"] if verify else [])
    done = run_cli("run", *args)
    assert done.code == 0, done.text
    assert query(
        url.split("?")[0], "SELECT doc ->> 'a', doc::text, tags FROM docs ORDER BY id"
    ) == [
        ("é", '{"a": "é", "ÿ": [1, "ü"]}', ["é", None, "ÿ"]),
        (None, "{}", []),
        (None, None, None),
    ]


def test_jsonb_and_array_values_the_encoding_lacks_are_named(
    narrow: tuple[str, str], make_db: Callable[..., str]
) -> None:
    url, lacking = narrow
    pod = make_db(DOCS + """INSERT INTO docs VALUES (4, '{"p": "5 €"}', '["ok", "x€"]');""")
    plan, run = plan_and_run("--source", pod, "--target", url, *DOC_CASTS)
    listed = problems(plan)
    assert (plan.code, run.code) == (1, 1), run.text
    assert problems(run) == listed
    # jsonb's JSON text goes with \u escapes: only the database's encoding must hold it
    jsonb = [("docs", "4", "doc")] if lacking.startswith("LATIN1, the target") else []
    assert [p[:3] for p in listed] == [*jsonb, ("docs", "4", "tags")]
    assert all(f"'€' (U+20AC), has no equivalent in {lacking}" in p[4] for p in listed), listed
    assert listed[-1][4].startswith("element 2: character 2 of the text"), listed
    assert tables_in(url.split("?")[0]) == []


def test_the_apps_jsonb_and_text_arrays_are_stored_exactly_in_a_latin1_database(
    pg_server: PgServer, make_db: Callable[..., str]
) -> None:
    with encoded_database(pg_server, "LATIN1") as url:
        query(url, "CREATE TABLE docs (id bigint PRIMARY KEY, doc jsonb, tags text[])")
        pod = make_db(DOCS)
        done = run_cli("run", "--source", pod, "--target", url, "--verify")
        assert done.code == 0, done.text
        assert query(url, "SELECT doc::text, tags FROM docs WHERE id = 1") == [
            ('{"a": "é", "ÿ": [1, "ü"]}', ["é", None, "ÿ"])
        ]


def test_verify_compares_text_arrays_of_a_latin1_session_as_sent(
    narrow: tuple[str, str], make_db: Callable[..., str]
) -> None:
    """The canonical form renders an array with array_send, whose text elements come in the
    client encoding: `verify` (and the mismatch report) ask for UTF-8, as Python renders them."""
    url, _ = narrow
    pod = make_db(DOCS)
    assert run_cli("run", "--source", pod, "--target", url, *DOC_CASTS).code == 0
    again = run_cli("verify", "--source", pod, "--target", url)
    assert again.code == 0, again.text
    query(url.split("?")[0], "UPDATE docs SET tags = ARRAY['è'] WHERE id = 1")
    changed = run_cli("verify", "--source", pod, "--target", url)
    assert changed.code == 1, changed.text
    [verified] = [e for e in changed.events if e["event"] == "verified"]
    assert verified["differing_keys"] == ["1 (differs)"], verified


def test_a_definition_holding_a_character_the_encoding_lacks_is_refused_by_name(
    narrow: tuple[str, str], make_db: Callable[..., str]
) -> None:
    """A default, a CHECK and a view whose text holds '€' (a literal): the statement could not
    be sent. plan and run name each, before anything is written; --skip leaves them out."""
    url, lacking = narrow
    pod = make_db(
        "CREATE TABLE prices (id INTEGER PRIMARY KEY, unit TEXT DEFAULT '€', "
        "note TEXT CONSTRAINT no_euro CHECK (note <> '€'));"
        "CREATE VIEW euros AS SELECT id, unit || ' €' AS shown FROM prices;"
        "INSERT INTO prices VALUES (1, 'EUR', 'ok');",
        "pod0.db",
    )
    plan, run = plan_and_run("--source", pod, "--target", url)
    assert (plan.code, run.code) == (2, 2), run.text
    [message] = run.messages("failed")
    assert plan.messages("failed") == [message]
    assert message.startswith(f"3 definition(s) have a character with no equivalent in {lacking}")
    assert "default of prices.unit (--skip default:prices.unit): '€' (U+20AC)" in message
    assert "CHECK (note <> '€') on 'prices' (--skip check:prices.1): '€'" in message
    assert "view 'euros' (--skip view:euros): '€' (U+20AC)" in message, message
    assert tables_in(url.split("?")[0]) == []
    skips = ["--skip", "default:prices.unit", "--skip", "check:prices.1"]
    skips += ["--skip", "view:euros"]
    done = run_cli("run", "--source", pod, "--target", url, *skips)
    assert done.code == 0, done.text
    assert query(url.split("?")[0], "SELECT id, unit, note FROM prices") == [(1, "EUR", "ok")]


def test_a_sql_ascii_database_takes_text_as_utf8_large_or_small(
    pg_server: PgServer, make_db: Callable[..., str]
) -> None:
    """SQL_ASCII stores the bytes it is sent: psycopg sends text as UTF-8, and a large streamed
    TEXT went recoded into ASCII instead (UnicodeEncodeError); nothing is refused."""
    big = "é" * (source.STREAM_BYTES // 2 + 10) + "€"
    pod = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT);",
        rows={"INSERT INTO t VALUES (?, ?)": [(1, "café €😀"), (2, big)]},
    )
    with encoded_database(pg_server, "SQL_ASCII") as url:
        plan = run_cli("plan", "--source", pod, "--target", url)
        assert plan.code == 0, plan.text
        done = run_cli("run", "--source", pod, "--target", url)
        assert done.code == 0, done.text
        stored = query(url, "SELECT md5(body) FROM t ORDER BY id")  # bytes: SQL_ASCII
        assert [bytes(h).decode() for (h,) in stored] == [  # type: ignore[arg-type]
            hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
            for text in ("café €😀", big)
        ]
