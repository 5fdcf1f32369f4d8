"""Create mode told what the SQLite file forgot: `--cast` to every type `convert` converts
exactly, `--enum`, citext, `--cast-declared`, `--source-timezone` (issue 8, "Done when").

The values of a cast column go through existing mode's converter: they convert exactly or
the run refuses, naming table, column, row and value; `plan` lists the same problems.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from collections.abc import Callable
from decimal import Decimal

import psycopg
import pytest

from tests.migration.conftest import query, run_cli, tables_in

pytestmark = pytest.mark.db

U1 = uuid.UUID("0b6e1c1e-7d43-4b7a-9a55-1f0f5a0c0001")
SCHEMA = """
CREATE TABLE t (
    id INTEGER PRIMARY KEY, u CHAR(32), j TEXT, jb TEXT, tz DATETIME, tm time, ttz TEXT,
    iv bigint, ivt TEXT, ip char(39), net TEXT, r REAL, c TEXT, ci TEXT COLLATE NOCASE,
    st VARCHAR(9), d decimal
);
"""
INSERT = "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
GOOD = [
    (
        1,
        U1.hex,
        '{"b": 1, "a": [1.50]}',
        "null",
        "2024-01-02 03:04:05.123456",
        "12:30:00",
        "12:30:00+02:00",
        90_061_000_001,
        "P1Y2M3DT4H5M6.5S",
        "192.168.0.1",
        "10.0.0.0/8",
        0.5,
        "ab",
        "Ann@Example.org",
        "draft",
        7.1,
    ),
    (
        2,
        str(U1),
        "[]",
        '{"k": null}',
        "2024-06-30T23:00:00+02:00",
        "00:00",
        None,
        -1,
        "-01:02:03",
        "::1",
        "2001:db8::/32",
        None,
        "xyz",
        None,
        "published",
        10,
    ),
    (3,) + (None,) * 15,
]
CASTS = [
    "--cast",
    "t.u=uuid",
    "t.j=json",
    "t.jb=jsonb",
    "t.tz=timestamptz",
    "t.tm=time",
    "t.ttz=timetz",
    "t.iv=interval",
    "t.ivt=interval",
    "t.ip=inet",
    "t.net=cidr",
    "t.r=real",
    "t.c=char(3)",
    "t.ci=citext",
    "t.st=status",
    "t.d=numeric(8,2)",
    "--enum",
    "status=draft,published",
]
TYPES = {
    "id": "bigint",
    "u": "uuid",
    "j": "json",
    "jb": "jsonb",
    "tz": "timestamp with time zone",
    "tm": "time without time zone",
    "ttz": "time with time zone",
    "iv": "interval",
    "ivt": "interval",
    "ip": "inet",
    "net": "cidr",
    "r": "real",
    "c": "character(3)",
    "ci": "citext",
    "st": "status",
    "d": "numeric(8,2)",
}


def types_of(url: str, table: str) -> dict[str, str]:
    rows = query(
        url,
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        (table,),
    )
    return {str(a): str(b) for a, b in rows}


def enum_types(url: str) -> list[tuple[object, ...]]:
    return query(
        url,
        "SELECT t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_type t "
        "JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname ORDER BY 1",
    )


def with_citext(url: str) -> str:
    """What the database owner does first (the tool never creates an extension)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS citext")
    return url


def test_every_cast_type_converts_exactly_and_verifies(
    make_db: Callable[..., str], target: str
) -> None:
    src = make_db(SCHEMA, rows={INSERT: GOOD})
    res = run_cli("run", "--source", src, "--target", with_citext(target), "--verify", *CASTS)
    assert res.code == 0, res.text
    assert types_of(target, "t") == TYPES
    assert enum_types(target) == [("status", ["draft", "published"])]
    got = query(target, "SELECT * FROM t ORDER BY id")
    utc = dt.UTC
    assert got[0][1:] == (
        U1,
        {"b": 1, "a": [1.50]},
        None,  # psycopg reads a jsonb null as None: checked as JSON below
        dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=utc),
        dt.time(12, 30),
        dt.time(12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.timedelta(days=1, hours=1, minutes=1, seconds=1, microseconds=1),
        dt.timedelta(days=428, hours=4, minutes=5, seconds=6, microseconds=500000),
        ipaddress.ip_address("192.168.0.1"),
        ipaddress.ip_network("10.0.0.0/8"),
        0.5,
        "ab ",
        "Ann@Example.org",
        "draft",
        Decimal("7.10"),
    )
    assert query(target, "SELECT j::text, jsonb_typeof(jb) FROM t WHERE id = 1") == [
        ('{"b": 1, "a": [1.50]}', "null")
    ]
    assert got[1][4] == dt.datetime(2024, 6, 30, 21, 0, tzinfo=utc)
    assert got[1][7:9] == (dt.timedelta(microseconds=-1), -dt.timedelta(hours=1, seconds=123))
    assert got[1][15] == Decimal("10.00")
    assert got[2][1:] == (None,) * 15
    # the app's queries work: citext equality, enum comparison, uuid and inet operators
    assert query(target, "SELECT id FROM t WHERE ci = 'ann@EXAMPLE.org'") == [(1,)]
    assert query(target, "SELECT id FROM t WHERE st = 'published'::status") == [(2,)]
    assert query(target, "SELECT id FROM t WHERE u = %s ORDER BY id", (U1,)) == [(1,), (2,)]
    assert query(target, "SELECT id FROM t WHERE ip << '192.168.0.0/16'::inet") == [(1,)]


@pytest.mark.parametrize(
    ("column", "cast", "value", "reason"),
    [
        ("u", "uuid", "not-a-uuid", "is not a UUID"),
        ("u", "uuid", U1.hex[:31], "is not a UUID"),
        ("j", "json", "{bad", "is not valid JSON"),
        ("jb", "jsonb", "NaN", "is not valid JSON"),
        ("tz", "timestamptz", "yesterday", "is not an ISO 8601 timestamp"),
        ("tm", "time", "25:00", "is not a valid time of day"),
        ("ttz", "timetz", "12:00", "is not a time of day"),
        ("iv", "interval", 1.5, "is not a duration"),
        ("ip", "inet", "300.1.1.1", "is not an IP address"),
        ("net", "cidr", "10.0.0.1/8", "is not an IP network"),
        ("r", "real", 0.1, "would be rounded to fit real"),
        ("c", "char(3)", "abcd", "is longer than character(3)"),
        ("st", "status", "Draft", "is not a label of enum status (draft, published)"),
        ("d", "numeric(8,2)", 1.005, "has more than 2 decimal places"),
    ],
)
def test_a_value_that_does_not_convert_refuses_naming_table_column_row_and_value(
    make_db: Callable[..., str], target: str, column: str, cast: str, value: object, reason: str
) -> None:
    src = make_db(SCHEMA, rows={f"INSERT INTO t (id, {column}) VALUES (7, ?)": [(value,)]})
    args = ["--cast", f"t.{column}={cast}", "--enum", "status=draft,published"]
    if cast != "status":
        args = args[:2]
    planned = run_cli("plan", "--source", src, *args)
    res = run_cli("run", "--source", src, "--target", target, *args)
    assert (planned.code, res.code) == (1, 1), res.text
    problems = [e for e in res.events if e["event"] == "problem"]
    assert [(p["table"], p["rowid"], p["column"]) for p in problems] == [("t", "7", column)]
    assert reason in str(problems[0]["reason"])
    assert [e["message"] for e in planned.events if e["event"] == "problem"] == [
        p["message"] for p in problems
    ]
    assert tables_in(target) == []
    assert enum_types(target) == []


def test_a_failed_run_leaves_no_enum_type_or_table_behind(
    make_db: Callable[..., str], target: str
) -> None:
    src = make_db(
        "CREATE TABLE p (id INTEGER PRIMARY KEY, st TEXT, note TEXT);"
        "INSERT INTO p VALUES (1, 'a', 'ok'), (2, 'b', 'x' || char(0) || 'y');"
    )
    res = run_cli("run", "--source", src, "--target", target, "--cast", "p.st=s", "--enum", "s=a,b")
    assert res.code == 1, res.text  # COPY refuses the NUL of row 2, after CREATE TYPE and TABLE
    assert "NUL" in res.messages("problem")[0]
    assert (tables_in(target), enum_types(target)) == ([], [])


def test_an_existing_enum_with_the_same_labels_is_used_and_other_labels_refuse(
    make_db: Callable[..., str], target: str
) -> None:
    src = make_db(
        "CREATE TABLE p (id INTEGER PRIMARY KEY, st TEXT); INSERT INTO p VALUES (1, 'b');"
    )
    query(target, "CREATE TYPE s AS ENUM ('a', 'b'); CREATE TYPE other AS ENUM ('x')")
    refused = run_cli(
        "run", "--source", src, "--target", target, "--cast", "p.st=s", "--enum", "s=a,b,c"
    )
    assert refused.code == 2
    assert refused.messages("failed") == [
        (
            "--enum s: the target already has a type public.s (enum with labels a, b), not the "
            "given labels a, b, c; nothing was changed (give the same labels, or another name)"
        )
    ]
    assert run_cli("plan", "--source", src, "--target", target, "--cast", "p.st=s", "--enum",
                   "s=a,b,c").messages("failed") == refused.messages("failed")  # fmt: skip
    ok = run_cli("run", "--source", src, "--target", target, "--cast", "p.st=s", "--enum", "s=a,b")
    assert ok.code == 0, ok.text
    assert "type s: exists in the target with the same labels, used" in ok.messages("decision")
    record = query(target, "SELECT summary->'created_types' FROM petstore_migration.runs")
    assert record == [([],)]
    assert enum_types(target) == [("other", ["x"]), ("s", ["a", "b"])]


def test_replace_reruns_into_the_type_the_migration_created(
    make_db: Callable[..., str], target: str
) -> None:
    src = make_db(
        "CREATE TABLE p (id INTEGER PRIMARY KEY, st TEXT); INSERT INTO p VALUES (1, 'b');"
    )
    args = ("--source", src, "--target", target, "--cast", "p.st=s", "--enum", "s=a,b")
    args += ("--verify", "--schema", "create")
    first = run_cli("run", *args)
    assert first.code == 0, first.text
    record = query(target, "SELECT summary->'created_types' FROM petstore_migration.runs")
    assert record == [(["s"],)]
    query(target, "DROP SCHEMA petstore_migration CASCADE")  # migrate again, on purpose
    assert run_cli("run", *args).code == 2  # p holds rows
    again = run_cli("run", *args, "--replace")
    assert again.code == 0, again.text
    assert query(target, "SELECT st::text FROM p") == [("b",)]
    assert enum_types(target) == [("s", ["a", "b"])]
    replaced = "table p: existed in the target and was replaced (--replace)"
    assert replaced in again.messages("reported")
    assert "type s: exists in the target with the same labels, used" in again.messages("decision")
    query(target, "DROP SCHEMA petstore_migration CASCADE")
    other = run_cli("run", *args[:-5], "--enum", "s=a,b,c", "--schema", "create", "--replace")
    assert other.code == 2
    assert other.messages("failed")[0].startswith("--enum s: the target already has a type")
    assert query(target, "SELECT st::text FROM p") == [("b",)]  # nothing was changed
    assert enum_types(target) == [("s", ["a", "b"])]


def test_a_missing_citext_refuses_naming_the_fix(make_db: Callable[..., str], target: str) -> None:
    src = make_db("CREATE TABLE a (id INTEGER PRIMARY KEY, e TEXT); INSERT INTO a VALUES (1, 'x');")
    res = run_cli("run", "--source", src, "--target", target, "--cast", "a.e=citext")
    assert res.code == 2
    assert "CREATE EXTENSION citext" in res.messages("failed")[0]
    assert tables_in(target) == []
    assert query(target, "SELECT count(*) FROM pg_extension WHERE extname = 'citext'") == [(0,)]
    planned = run_cli("plan", "--source", src, "--target", target, "--cast", "a.e=citext")
    assert planned.messages("failed") == res.messages("failed")
    without_target = run_cli("plan", "--source", src, "--cast", "a.e=citext")
    assert without_target.code == 0, without_target.text


DJANGO = """
CREATE TABLE "u" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "joined" datetime NOT NULL,
  "last" datetime NULL, "at" DATETIME NULL, "ref" char(32) NOT NULL, "code" char(3) NULL);
INSERT INTO u VALUES (1, '2024-03-31 01:30:00', NULL, '2024-01-15 12:00:00', ?, 'abc');
"""


def test_cast_declared_applies_to_every_column_so_declared_and_a_column_cast_wins(
    make_db: Callable[..., str], target: str
) -> None:
    src = make_db(DJANGO.replace("?", f"'{U1.hex}'"))
    res = run_cli(
        "run",
        "--source",
        src,
        "--target",
        target,
        "--verify",
        "--cast-declared",
        "datetime=timestamptz",
        "char(32)=uuid",
        "--cast",
        "u.at=timestamp",
    )
    assert res.code == 0, res.text
    assert types_of(target, "u") == {
        "id": "bigint",
        "joined": "timestamp with time zone",
        "last": "timestamp with time zone",
        "at": "timestamp without time zone",
        "ref": "uuid",
        "code": "character varying(3)",
    }


def test_source_timezone_reads_naive_datetimes_in_create_mode(
    make_db: Callable[..., str], target: str
) -> None:
    src = make_db(DJANGO.replace("?", f"'{U1.hex}'"))
    args = ["--source", src, "--cast-declared", "datetime=timestamptz"]
    berlin = [*args, "--source-timezone", "Europe/Berlin", "--verify"]
    res = run_cli("run", "--target", target, *berlin)
    assert res.code == 0, res.text
    assert query(target, "SELECT joined, at FROM u") == [
        (
            dt.datetime(2024, 3, 31, 0, 30, tzinfo=dt.UTC),
            dt.datetime(2024, 1, 15, 11, 0, tzinfo=dt.UTC),
        )
    ]
    assert run_cli("verify", "--target", target, *berlin[:-1]).code == 0
    tokyo = run_cli("verify", "--target", target, *args, "--source-timezone", "Asia/Tokyo")
    assert tokyo.code == 1  # read in another zone: other instants
    # the record keeps the create-mode options: verify and a rerun without them match the run
    record = query(target, "SELECT summary->'schema_options' FROM petstore_migration.runs")
    assert record == [
        (
            {
                "casts": [],
                "cast_declared": ["datetime=timestamptz"],
                "enums": [],
                "source_timezone": "Europe/Berlin",
            },
        )
    ]
    assert run_cli("verify", "--target", target, "--source", src).code == 0
    rerun = run_cli("run", "--target", target, "--source", src)
    assert rerun.code == 0, rerun.text
    assert rerun.messages("done") == ["already migrated and verified: nothing to do"]


def test_a_naive_time_the_source_zone_skips_is_refused(
    make_db: Callable[..., str], target: str
) -> None:
    src = make_db(DJANGO.replace("?", f"'{U1.hex}'").replace("01:30:00", "02:30:00"))
    res = run_cli(
        "run", "--source", src, "--target", target, "--cast", "u.joined=timestamptz",
        "--source-timezone", "Europe/Berlin",
    )  # fmt: skip
    assert res.code == 1
    problems = [e for e in res.events if e["event"] == "problem"]
    assert [(p["table"], p["column"]) for p in problems] == [("u", "joined")]
    assert "does not name one instant in Europe/Berlin" in str(problems[0]["reason"])


def test_a_declared_timestamptz_column_honours_the_source_timezone(
    make_db: Callable[..., str], target: str
) -> None:
    src = make_db("CREATE TABLE e (id INTEGER PRIMARY KEY, at TIMESTAMPTZ);"
                  "INSERT INTO e VALUES (1, '2024-01-15 12:00:00');")  # fmt: skip
    res = run_cli("run", "--source", src, "--target", target, "--source-timezone", "Asia/Tokyo")
    assert res.code == 0, res.text
    assert query(target, "SELECT at FROM e") == [(dt.datetime(2024, 1, 15, 3, 0, tzinfo=dt.UTC),)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cast", "t.c"], "--cast 't.c': expected TABLE.COLUMN=TYPE"),
        (["--cast", "c=uuid"], "--cast 'c=uuid': expected TABLE.COLUMN=TYPE"),
        (["--cast", "t.c=point"], "--cast 't.c=point': unsupported type 'point'; use one of"),
        (["--cast", "t.c=char"], "--cast 't.c=char': char needs a length from 1 to"),
        (["--cast", "t.c=uuid(3)"], "--cast 't.c=uuid(3)': uuid takes no length"),
        (["--cast", "t.c=s"], "--cast 't.c=s': unsupported type 's'; use one of"),
        (["--enum", "s a=x"], "--enum 's a=x': expected --enum NAME=LABEL,LABEL,..."),
        (["--enum", "s="], "--enum 's=': expected --enum NAME=LABEL,LABEL,..."),
        (["--enum", "s=a,,b"], "--enum 's=a,,b': a label must have 1 to 63 bytes"),
        (["--enum", "s=a,a", "--cast", "t.c=s"], "--enum 's=a,a': a label is given twice"),
        (["--enum", "uuid=a"], "--enum 'uuid=a': 'uuid' cannot name a new type"),
        (["--enum", "s=a"], "--enum s: no --cast or --cast-declared uses it"),
        (["--cast-declared", "=uuid"], "--cast-declared '=uuid': expected --cast-declared"),
        (["--cast-declared", "text"], "--cast-declared 'text': expected --cast-declared"),
        (["--cast-declared", "blob=uuid"], "--cast-declared blob=uuid: no column of the sources"),
        (["--source-timezone", "Mars/Base"], "--source-timezone Mars/Base: unknown time zone"),
    ],
)
def test_bad_option_syntax_is_a_usage_error_naming_the_option_and_form(
    make_db: Callable[..., str], target: str, args: list[str], message: str
) -> None:
    src = make_db("CREATE TABLE t (id INTEGER PRIMARY KEY, c TEXT);")
    for command in (["plan"], ["run", "--target", target]):
        res = run_cli(*command, "--source", src, *args)
        assert res.code == 2, res.text
        assert res.messages("failed")[0].startswith(message), res.messages("failed")
    assert tables_in(target) == []


def test_a_foreign_key_between_a_cast_and_an_uncast_column_is_refused_up_front(
    make_db: Callable[..., str], target: str
) -> None:
    src = make_db(
        "CREATE TABLE a (id CHAR(32) PRIMARY KEY); CREATE TABLE b (id INTEGER PRIMARY KEY, "
        "a_id CHAR(32) REFERENCES a (id));"
    )
    res = run_cli("run", "--source", src, "--target", target, "--cast", "a.id=uuid")
    assert res.code == 2
    assert res.messages("failed") == [
        (
            "foreign key b(a_id) -> a(id): the columns would be varchar(32) and uuid, which "
            "PostgreSQL cannot compare in a foreign key; give both the same type (e.g. --cast "
            "b.a_id=uuid)"
        )
    ]
    ok = run_cli("run", "--source", src, "--target", target, "--cast", "a.id=uuid", "b.a_id=uuid")
    assert ok.code == 0, ok.text


def test_plan_suggests_the_casts_the_values_show_and_applies_none(
    make_db: Callable[..., str],
) -> None:
    src = make_db(
        "CREATE TABLE s (id INTEGER PRIMARY KEY, ref char(32), other char(32), ip char(39), "
        "opens time, at datetime, also datetime, price decimal, mail TEXT COLLATE NOCASE, "
        "empty char(32));"
        f"INSERT INTO s VALUES (1, '{U1.hex}', '{U1.hex}', '::1', '09:30:00', "
        "'2024-01-01 00:00:00', NULL, 7.1, 'a@b.c', NULL);"
        f"INSERT INTO s VALUES (2, '{U1.hex.upper()}', '{'z' * 32}', '10.0.0.1', "
        "NULL, NULL, NULL, 1, NULL, NULL);"
    )
    res = run_cli("plan", "--source", src, "--schema", "create")
    assert res.code == 0, res.text
    notes = [m for m in res.messages("note") if m.startswith("suggestion: ")]
    assert [m.split(": ")[1] for m in notes] == [
        "--cast s.ref=uuid",
        "--cast s.ip=inet",
        "--cast s.opens=time",
        "--cast s.price=numeric(P,S)",
        "--cast s.mail=citext",
        "--cast-declared datetime=timestamptz",
    ]
    assert "2 column(s) declared datetime" in notes[-1]
    types = {e["column"]: e["type"] for e in res.events if e["event"] == "column"}
    assert types == {
        "id": "bigint",
        "ref": "varchar(32)",
        "other": "varchar(32)",
        "ip": "varchar(39)",
        "opens": "text",
        "at": "timestamp",
        "also": "timestamp",
        "price": "numeric",
        "mail": "text",
        "empty": "varchar(32)",
    }
    cast = run_cli("plan", "--source", src, "--cast", "s.ref=uuid", "--cast-declared", "time=time")
    assert [m.split(": ")[1] for m in cast.messages("note") if m.startswith("suggestion: ")] == [
        "--cast s.ip=inet",
        "--cast s.price=numeric(P,S)",
        "--cast s.mail=citext",
        "--cast-declared datetime=timestamptz",
    ]


def test_array_casts_take_json_array_text_exactly(make_db: Callable[..., str], target: str) -> None:
    src = make_db(
        "CREATE TABLE a (id INTEGER PRIMARY KEY, tags JSON, ns TEXT, us TEXT, ts TEXT);",
        rows={
            "INSERT INTO a VALUES (?, ?, ?, ?, ?)": [
                (1, '["x", null, "ü"]', "[1, -2]", f'["{U1.hex}"]', '["2024-01-02 03:04:05"]'),
                (2, "[]", "null", None, "[]"),
            ]
        },
    )
    casts = ["--cast", "a.tags=text[]", "a.ns=bigint[]", "a.us=uuid []", "a.ts=timestamptz[]"]
    berlin = ["--source-timezone", "Europe/Berlin"]
    res = run_cli("run", "--source", src, "--target", target, "--verify", *casts, *berlin)
    assert res.code == 0, res.text
    assert types_of(target, "a") == {
        "id": "bigint",
        "tags": "text[]",
        "ns": "bigint[]",
        "us": "uuid[]",
        "ts": "timestamp with time zone[]",
    }
    assert query(target, "SELECT tags, ns, us, ts FROM a ORDER BY id") == [
        (["x", None, "ü"], [1, -2], [U1], [dt.datetime(2024, 1, 2, 2, 4, 5, tzinfo=dt.UTC)]),
        ([], None, None, []),
    ]
    bad = make_db(
        "CREATE TABLE a (id INTEGER PRIMARY KEY, ns TEXT);"
        "INSERT INTO a VALUES (1, '[[1]]'), (2, '{\"k\": 1}'), (3, '[1.5]'), (4, '[1]');"
    )
    refused = run_cli("plan", "--source", bad, "--cast", "a.ns=bigint[]")
    assert refused.code == 1
    problems = [e for e in refused.events if e["event"] == "problem"]
    assert [(e["rowid"], e["column"]) for e in problems] == [("1", "ns"), ("2", "ns"), ("3", "ns")]
    assert "is not a one-dimensional JSON array for bigint[]" in str(problems[0]["reason"])
    unsupported = run_cli("plan", "--source", bad, "--cast", "a.ns=numeric[]")
    assert unsupported.code == 2
    assert unsupported.messages("failed")[0].startswith(
        "--cast 'a.ns=numeric[]': unsupported array type 'numeric[]'; use one of"
    )


def test_create_options_against_the_apps_existing_tables_are_refused(
    make_db: Callable[..., str], target: str
) -> None:
    src = make_db("CREATE TABLE t (id INTEGER PRIMARY KEY, c TEXT); INSERT INTO t VALUES (1, 'x');")
    query(target, "CREATE TABLE t (id bigint PRIMARY KEY, c text)")
    for command in ("plan", "run"):
        res = run_cli(command, "--source", src, "--target", target, "--cast", "t.c=uuid")
        assert res.code == 2
        assert res.messages("failed") == [
            (
                "--cast: create-mode options, but the tables exist in the target (--schema "
                "existing), where the target's column types decide; nothing was changed (leave "
                "them out, or load into an empty target with --schema create)"
            )
        ]
    assert query(target, "SELECT count(*) FROM t") == [(0,)]


def test_an_enum_named_like_a_table_is_refused_before_anything_is_written(
    make_db: Callable[..., str], target: str
) -> None:
    src = make_db("CREATE TABLE t (id INTEGER PRIMARY KEY, c TEXT); INSERT INTO t VALUES (1, 'a');")
    res = run_cli("run", "--source", src, "--target", target, "--cast", "t.c=t", "--enum", "t=a")
    assert res.code == 2
    assert res.messages("failed") == [
        (
            "--enum t: a table or view of the migration has that name, and PostgreSQL gives "
            "each one a type of its name; choose another type name"
        )
    ]
    assert (tables_in(target), enum_types(target)) == ([], [])
