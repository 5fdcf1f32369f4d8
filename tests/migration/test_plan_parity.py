"""`plan` reports exactly what `run` does (issue 8; issue 11 point 1), in both schema modes.

A table of cases, each a set of SQLite files built from SQL strings (and, for `--schema
existing`, the schema the app's migrations create in the target first). Every case goes
through the real CLI in JSON mode as `plan` and as `run`, and both must agree: the same exit
code, the same problem records (source, table, column, row, value, reason: run's list equals
plan's, not just overlaps), and a refused `run` leaves the target exactly as it was. The
expected problem cells are part of each case, so agreement on nothing cannot pass.

To add a case: append a `Case` to CASES; `expect` maps a mode to the exit code and the
(table, column) cells the report must name."""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.migration.conftest import (
    PgServer,
    Result,
    SecretURL,
    encoded_database,
    query,
    run_cli,
)

pytestmark = pytest.mark.db

Cell = tuple[str, str]

SOURCE = """
CREATE TABLE owners (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name VARCHAR(10) NOT NULL);
CREATE TABLE pets (
    id INTEGER PRIMARY KEY, owner_id INTEGER REFERENCES owners (id), name TEXT NOT NULL,
    age INTEGER CHECK (age >= 0), born DATE, flag BOOLEAN
);
INSERT INTO owners VALUES (1, 'a@example.com', 'Ann');
INSERT INTO pets VALUES (1, 1, 'Rex', 3, '2020-01-02', 1);
"""

APP = """
CREATE TABLE owners (id bigint PRIMARY KEY, email text UNIQUE, name varchar(10) NOT NULL);
CREATE TABLE pets (
    id bigint PRIMARY KEY, owner_id bigint REFERENCES owners (id), name text NOT NULL,
    age integer CHECK (age >= 0), born date, flag boolean
);
"""

TYPED_SOURCE = """
CREATE TABLE events (
    id INTEGER PRIMARY KEY, u CHAR(32), j TEXT, s VARCHAR(9), at DATETIME, d BIGINT, ip TEXT
);
INSERT INTO events VALUES (1, '8f14e45fceea467fa9f21b5e6c7d8e9f', '{"a": 1}', 'draft',
                           '2024-01-02 03:04:05', 1000000, '10.0.0.1');
INSERT INTO events VALUES (2, 'not-a-uuid', '{bad json', 'gone', 'yesterday', 'forever',
                           '10.0.0.300');
"""

TYPED_APP = """
CREATE TYPE status AS ENUM ('draft', 'published');
CREATE TABLE events (
    id bigint PRIMARY KEY, u uuid, j jsonb, s status, at timestamptz, d interval, ip inet
);
"""

BAD_VALUES = """
INSERT INTO owners VALUES (2, 'b@example.com', X'00ff');
INSERT INTO pets VALUES (2, 1, 'Tom', 'ten', 'not a date', 2);
"""
ORPHAN = "INSERT INTO pets VALUES (2, 99, 'Ghost', 1, NULL, 0);"
NEGATIVE = (
    "PRAGMA ignore_check_constraints = ON; INSERT INTO pets VALUES (3, 1, 'Neg', -1, NULL, 0);"
)
SEED = "INSERT INTO owners VALUES (7, 'seed@example.com', 'Seed');"
ODD_VIEW = "CREATE VIEW odd AS SELECT id, sqlite_version() AS v FROM owners;"
TAGS = "CREATE TABLE tags (id INTEGER PRIMARY KEY, kind TEXT, name TEXT UNIQUE COLLATE NOCASE);"
TAGS_BY_KIND = (
    "CREATE TABLE tags (id INTEGER PRIMARY KEY, kind TEXT, name TEXT);"
    "CREATE UNIQUE INDEX tag_kind ON tags (kind, name COLLATE NOCASE);"
)
REX = "INSERT INTO tags VALUES (2, 'a', 'rex');"
APP_TAGS = "CREATE TABLE tags (id bigint PRIMARY KEY, kind text, name text UNIQUE);"
BREEDS = "CREATE TABLE breeds (name TEXT PRIMARY KEY, origin TEXT);"
CITEXT = "CREATE EXTENSION IF NOT EXISTS citext;"
TAG_ROWS = "INSERT INTO tags VALUES ('a', 'x'), ('a', 'y'), ('b', 'z');"

# '€' (U+20AC) and an emoji, which LATIN1 lacks; a pet's name larger than source.STREAM_BYTES
EURO = """
INSERT INTO owners VALUES (2, 'e@example.com', 'caf€');
INSERT INTO pets VALUES (2, 1, 'x😀', 1, NULL, 0), (3, 1, printf('%.*c', 5000000, 'a') || '€', 1,
                         NULL, 0), (4, 2, 'Ünïcödé', 2, NULL, 1);
"""

DOCS = """
CREATE TABLE docs (id INTEGER PRIMARY KEY, doc TEXT, tags TEXT);
INSERT INTO docs VALUES (1, '{"a": "é"}', '["é", null]');
"""

SCORES = """
CREATE TABLE scores (
    id INTEGER PRIMARY KEY, points INTEGER CHECK (points >= 0),
    grade TEXT, CONSTRAINT known_grade CHECK (grade IN ('a', 'b', 'c'))
);
PRAGMA ignore_check_constraints = ON;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
INSERT INTO scores SELECT {base} + i, CASE WHEN i % 20 = 0 THEN -i ELSE i END,
                          CASE WHEN i <= {bad} THEN 'z' ELSE 'a' END FROM n;
"""
SCORES_APP = """
CREATE TABLE scores (
    id bigint PRIMARY KEY, points integer CHECK (points >= 0),
    grade text CONSTRAINT known_grade CHECK (grade IN ('a', 'b', 'c'))
);
"""
# pod0: rows 1..70, 3 with negative points (20, 40, 60), 60 ('z' grades, rows 1..60) > the cap
SCORES_POD0 = SOURCE + SCORES.format(rows=70, base=0, bad=60)
SCORES_POD1 = SOURCE + SCORES.format(rows=5, base=1000, bad=2)  # 2 'z' grades, 1001 and 1002

# values SQLite keeps apart (another storage class, another spelling) that one target type makes
# equal: an untyped UNIQUE column holding 1 and '1', TEXT '1.0' and '1' (numeric), two
# spellings of one instant (timestamp); each within one file and across two
CODES = "CREATE TABLE codes (id INTEGER PRIMARY KEY, code UNIQUE, note TEXT);"
CODES_APP = "CREATE TABLE codes (id bigint PRIMARY KEY, code {type} UNIQUE, note text);"
ONE_AND_ONE = "INSERT INTO codes VALUES (1, 1, 'a'), (2, '1', 'b');"
PRICES = (
    "CREATE TABLE prices (id INTEGER PRIMARY KEY, amount TEXT UNIQUE);"
    "INSERT INTO prices VALUES (1, '1.0'), (2, '1'), (3, '2.50');"
)
TIMES = (
    "CREATE TABLE visits (id INTEGER PRIMARY KEY, at DATETIME UNIQUE);"
    "INSERT INTO visits VALUES (1, '2024-01-02'), (2, '2024-01-02 00:00:00'), (3, '2024-01-03');"
)
KEYED_CODES = "CREATE TABLE kinds (code PRIMARY KEY, label TEXT);"

# the app's domains: short_text (length < 20), small_text over it (not empty), and a table
# CHECK; labels 1, 3, 5 too long, 6 empty, 2 and 3 negative sizes
LABELS = """
CREATE TABLE labels (id INTEGER PRIMARY KEY, name TEXT, size INTEGER);
INSERT INTO labels VALUES (1, 'a-very-long-name-indeed', 1), (2, 'ok', -1),
    (3, 'another-very-long-name', -2), (4, 'fine', 3), (5, 'yet-another-long-name!', 2),
    (6, '', 4);
"""
LABELS_APP = """
CREATE DOMAIN short_text AS text CHECK (length(VALUE) < 20);
CREATE DOMAIN small_text AS short_text CONSTRAINT not_empty CHECK (VALUE <> '');
CREATE TABLE labels (id bigint PRIMARY KEY, name small_text, size int CHECK (size >= 0));
"""

# a foreign key whose values SQLite compares otherwise than the target: text '1' and integer 1
# are one bigint; integer 1 and REAL 1.0, one value to SQLite, are two texts
KINDS_PETS = (
    "CREATE TABLE kinds (code PRIMARY KEY, label TEXT);"
    "CREATE TABLE owned (id INTEGER PRIMARY KEY, kind REFERENCES kinds (code));"
    "INSERT INTO kinds VALUES (1, 'a'), (2, 'b');"
)
KINDS_PETS_APP = (
    "CREATE TABLE kinds (code bigint PRIMARY KEY, label text);"
    "CREATE TABLE owned (id bigint PRIMARY KEY, kind bigint REFERENCES kinds (code));"
)


@dataclass(frozen=True)
class Case:
    """Files (one SQL script each), the target as the app left it per mode, the options given
    to both commands, and per mode the exit code and the cells the report must name."""

    name: str
    files: tuple[str, ...]
    expect: dict[str, tuple[int, frozenset[Cell]]]
    app: dict[str, str] = field(default_factory=lambda: {"existing": APP})
    args: tuple[str, ...] = ()
    xfail: dict[str, str] = field(default_factory=dict)  # mode -> the known difference
    database: str = ""  # the target database's encoding (default: the server's, UTF8)
    url_query: str = ""  # added to the target URL, e.g. client_encoding=LATIN1


def cells(*items: Cell) -> frozenset[Cell]:
    return frozenset(items)


NONE = cells()
BOTH_OK = {"create": (0, NONE), "existing": (0, NONE)}

CASES = [
    Case("clean files migrate in both modes", (SOURCE,), BOTH_OK),
    Case(
        "values that do not fit, several columns of several tables",
        (SOURCE + BAD_VALUES,),
        {
            mode: (
                1,
                cells(("owners", "name"), ("pets", "age"), ("pets", "born"), ("pets", "flag")),
            )
            for mode in ("create", "existing")
        },
    ),
    Case(
        "values that do not convert to uuid, jsonb, enum, timestamptz, interval, inet",
        (TYPED_SOURCE,),
        {
            "create": (1, cells(("events", "at"), ("events", "d"))),
            "existing": (
                1,
                cells(*(("events", c) for c in ("u", "j", "s", "at", "d", "ip"))),
            ),
        },
        app={"existing": TYPED_APP},
    ),
    Case(
        "one id with different content in two files is refused",
        (SOURCE, SOURCE.replace("'Rex'", "'Max'")),
        {mode: (1, cells(("pets", "id"))) for mode in ("create", "existing")},
    ),
    Case(
        "one id with different content in two files, renumbered",
        (SOURCE, SOURCE.replace("'Rex'", "'Max'")),
        BOTH_OK,
        args=("--on-conflict", "renumber"),
    ),
    Case(
        "a UNIQUE value shared by rows of two files",
        (
            SOURCE + "INSERT INTO owners VALUES (5, 'x@example.com', 'X');",
            SOURCE + "INSERT INTO owners VALUES (6, 'x@example.com', 'Y');",
        ),
        {mode: (1, cells(("owners", "email"))) for mode in ("create", "existing")},
    ),
    Case(
        "a foreign key whose parent row is in no file",
        (SOURCE + ORPHAN,),
        {mode: (1, cells(("pets", "owner_id"))) for mode in ("create", "existing")},
    ),
    Case(
        "a CHECK the data breaks",
        (SOURCE + NEGATIVE,),
        {
            "create": (1, cells(("pets", "age"))),  # the row, the column the CHECK reads
            "existing": (1, cells(("pets", "age"))),  # the row, the column the app's CHECK reads
        },
    ),
    Case(
        "several rows break one CHECK, more rows than listed break another, in two files",
        (SCORES_POD0, SCORES_POD1),
        {
            mode: (1, cells(("scores", "points"), ("scores", "grade")))
            for mode in ("create", "existing")
        },
        app={"existing": APP + SCORES_APP},
    ),
    Case(
        "NULL where the target needs a value",
        (
            SOURCE
            + "CREATE TABLE tags (name TEXT PRIMARY KEY); INSERT INTO tags VALUES (NULL);"
            + "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
            + "INSERT INTO notes VALUES (1, NULL);",
        ),
        {
            "create": (1, cells(("tags", "name"))),
            "existing": (1, cells(("tags", "name"), ("notes", "body"))),
        },
        app={
            "existing": APP
            + "CREATE TABLE tags (name text PRIMARY KEY);"
            + "CREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL);"
        },
    ),
    Case(
        "a source column without a target column, a NOT NULL target column without a source",
        (
            SOURCE.replace("flag BOOLEAN", "flag BOOLEAN, color TEXT").replace(
                ", 1);", ", 1, 'red');"
            ),
        ),
        {"existing": (1, cells(("pets", "color"), ("pets", "weight")))},
        app={"existing": APP.replace("flag boolean", "flag boolean, weight int NOT NULL")},
    ),
    Case(
        "target tables already holding rows, without --replace",
        (SOURCE,),
        {"create": (2, cells(("owners", "*"))), "existing": (2, cells(("owners", "*")))},
        app={
            "create": "CREATE TABLE owners (id int PRIMARY KEY); INSERT INTO owners VALUES (7);",
            "existing": APP + SEED,
        },
    ),
    Case(
        "--replace and a table outside the migration referencing one it would empty",
        (SOURCE,),
        {"create": (2, cells(("owners", "*"))), "existing": (2, cells(("owners", "*")))},
        app={
            "create": "CREATE TABLE owners (id int PRIMARY KEY); INSERT INTO owners VALUES (7);"
            "CREATE TABLE fans (owner_id int REFERENCES owners (id));",
            "existing": APP + SEED + "CREATE TABLE fans (owner_id bigint REFERENCES owners (id));",
        },
        args=("--replace",),
    ),
    Case(
        "the app's own UNIQUE, which the file lacks, broken within one file",
        (SOURCE + "INSERT INTO owners VALUES (2, 'a2@example.com', 'Ann');",),
        {"existing": (1, cells(("owners", "name")))},
        app={
            "existing": APP.replace("name varchar(10) NOT NULL", "name varchar(10) NOT NULL UNIQUE")
        },
    ),
    Case(
        "the app's own foreign key, which the file lacks, with an orphan",
        (SOURCE.replace(" REFERENCES owners (id)", "") + ORPHAN,),
        {"existing": (1, cells(("pets", "owner_id")))},
    ),
    Case(
        "a foreign key of the file that the app's schema does not have, with an orphan",
        (SOURCE + ORPHAN,),
        {"existing": (0, NONE)},
        app={"existing": APP.replace(" REFERENCES owners (id)", "")},
    ),
    Case(
        "a view that does not translate",
        (SOURCE + ODD_VIEW,),
        {"create": (1, cells(("odd", "view:odd"))), "existing": (0, NONE)},
    ),
    Case(
        "a view that does not translate, skipped by name",
        (SOURCE + ODD_VIEW,),
        BOTH_OK,
        args=("--skip", "view:odd"),
    ),
    Case(
        "a value longer than its VARCHAR",
        (SOURCE + "INSERT INTO owners VALUES (3, 'c@example.com', 'Maximilian Long');",),
        {"create": (0, NONE), "existing": (1, cells(("owners", "name")))},
    ),
    Case(
        "a value longer than the VARCHAR a --cast asks for",
        (SOURCE + "INSERT INTO pets VALUES (2, 1, 'Maximilian', 1, NULL, 0);",),
        {"create": (1, cells(("pets", "name")))},
        args=("--cast", "pets.name=varchar(5)"),
    ),
    Case(
        "a UNIQUE COLLATE NOCASE value spelled in two cases in two files",
        (SOURCE + TAGS + "INSERT INTO tags VALUES (1, 'a', 'Rex');", SOURCE + TAGS + REX),
        {"create": (1, cells(("tags", "name"))), "existing": (0, NONE)},  # the app's: by case
        app={"existing": APP + APP_TAGS},
    ),
    Case(
        "a two-column UNIQUE index, one part COLLATE NOCASE, clashing across files",
        (
            SOURCE + TAGS_BY_KIND + "INSERT INTO tags VALUES (1, 'a', 'Rex'), (2, 'b', 'rex');",
            SOURCE + TAGS_BY_KIND + "INSERT INTO tags VALUES (3, 'a', 'rEX'), (4, 'c', 'Rex');",
        ),
        {"create": (1, cells(("tags", "kind,name")))},
    ),
    Case(
        "UNIQUE COLLATE NOCASE folds ASCII letters only: 'Äpfel' and 'äpfel' are two values",
        (
            SOURCE + TAGS + "INSERT INTO tags VALUES (1, 'a', 'Äpfel');",
            SOURCE + TAGS + "INSERT INTO tags VALUES (2, 'a', 'äpfel');",
        ),
        {"create": (0, NONE)},
    ),
    Case(
        "the app's primary key repeated within one file whose table has no primary key",
        (SOURCE + "CREATE TABLE tags (name TEXT, note TEXT);" + TAG_ROWS,),
        {"existing": (1, cells(("tags", "name")))},
        app={"existing": APP + "CREATE TABLE tags (name text PRIMARY KEY, note text);"},
    ),
    Case(
        "the app's primary key repeated by identical rows within one file",
        (SOURCE + "CREATE TABLE tags (name TEXT, note TEXT);" + TAG_ROWS.replace("'y'", "'x'"),),
        {"existing": (1, cells(("tags", "name")))},
        app={"existing": APP + "CREATE TABLE tags (name text PRIMARY KEY, note text);"},
    ),
    Case(
        "the app's primary key differs from the file's and repeats within one file",
        (
            SOURCE
            + "CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT, note TEXT);"
            + "INSERT INTO tags VALUES (1, 'a', 'x'), (2, 'a', 'y'), (3, 'b', 'z');",
        ),
        {"existing": (1, cells(("tags", "name")))},
        app={"existing": APP + "CREATE TABLE tags (id bigint, name text PRIMARY KEY, note text);"},
    ),
    Case(
        "the app's two-column primary key repeated within one file, once by identical rows",
        (SOURCE + "CREATE TABLE tags (name TEXT, note TEXT);" + TAG_ROWS + TAG_ROWS,),
        {"existing": (1, cells(("tags", "name,note")))},
        app={
            "existing": APP + "CREATE TABLE tags (name text, note text, PRIMARY KEY (name, note));"
        },
    ),
    Case(
        "the app's primary key in two files: identical rows stored once, no repeat in a file",
        (
            SOURCE
            + "CREATE TABLE tags (name TEXT, note TEXT);"
            + TAG_ROWS.replace("'a', 'y'", "'c', 'y'"),
            SOURCE
            + "CREATE TABLE tags (name TEXT, note TEXT);"
            + TAG_ROWS.replace("'a', 'y'", "'a', 'x'"),
        ),
        {"existing": (0, NONE)},
        app={"existing": APP + "CREATE TABLE tags (name text PRIMARY KEY, note text);"},
    ),
    Case(
        "the app's UNIQUE broken by identical rows of one file whose table has no key",
        (SOURCE + "CREATE TABLE tags (name TEXT, note TEXT);" + TAG_ROWS.replace("'y'", "'x'"),),
        {"existing": (1, cells(("tags", "name")))},
        app={"existing": APP + "CREATE TABLE tags (id bigint, name text UNIQUE, note text);"},
    ),
    Case(
        "the app's UNIQUE broken across files by rows sharing a file's key the app lacks",
        (
            SOURCE + "CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT, note TEXT);"
            "INSERT INTO tags VALUES (1, 'a', 'x');",
            SOURCE + "CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT, note TEXT);"
            "INSERT INTO tags VALUES (1, 'a', 'y');",
        ),
        {"existing": (1, cells(("tags", "name")))},
        app={"existing": APP + "CREATE TABLE tags (id bigint, name text UNIQUE, note text);"},
    ),
    Case(
        "a UNIQUE key cast to citext: two spellings in one file and across files",
        (
            SOURCE + "INSERT INTO owners VALUES (2, 'A@example.com', 'Bo');",
            SOURCE + "INSERT INTO owners VALUES (3, 'b@example.com', 'Cy');",
            SOURCE + "INSERT INTO owners VALUES (4, 'B@Example.com', 'Di');",
        ),
        {"create": (1, cells(("owners", "email")))},
        app={"create": CITEXT},
        args=("--cast", "owners.email=citext"),
    ),
    Case(
        "the app's UNIQUE citext column: two spellings in one file, one spelling in two",
        (
            SOURCE + "INSERT INTO owners VALUES (2, 'A@example.com', 'Bo');",
            SOURCE + "INSERT INTO owners VALUES (3, 'A@example.com', 'Cy');",
        ),
        {"existing": (1, cells(("owners", "email")))},
        app={"existing": CITEXT + APP.replace("email text UNIQUE", "email citext UNIQUE")},
    ),
    Case(
        "citext folds as the target's lower() does (this C-locale server: 'Äpfel' is not 'äpfel')",
        (
            SOURCE + "INSERT INTO owners VALUES (2, 'Äpfel', 'Bo');",
            SOURCE + "INSERT INTO owners VALUES (3, 'äpfel', 'Cy');",
        ),
        {"create": (0, NONE)},
        app={"create": CITEXT},
        args=("--cast", "owners.email=citext"),
    ),
    Case(
        "a primary key cast to citext: two spellings in one file",
        (SOURCE + BREEDS + "INSERT INTO breeds VALUES ('Rex', 'a'), ('rex', 'b');",),
        {"create": (1, cells(("breeds", "name")))},
        app={"create": CITEXT},
        args=("--cast", "breeds.name=citext"),
    ),
    Case(
        "a primary key cast to citext: two spellings in two files, same or other content",
        (
            SOURCE + BREEDS + "INSERT INTO breeds VALUES ('Rex', 'a'), ('Max', 'b');",
            SOURCE + BREEDS + "INSERT INTO breeds VALUES ('rex', 'a'), ('MAX', 'c'), ('Tom', 'd');",
        ),
        {"create": (1, cells(("breeds", "name")))},
        app={"create": CITEXT},
        args=("--cast", "breeds.name=citext"),
    ),
    Case(
        "the app's citext primary key: two spellings in one file",
        (SOURCE + BREEDS + "INSERT INTO breeds VALUES ('Rex', 'a'), ('rex', 'b');",),
        {"existing": (1, cells(("breeds", "name")))},
        app={
            "existing": CITEXT + APP + "CREATE TABLE breeds (name citext PRIMARY KEY, origin text);"
        },
    ),
    Case(
        "the app's unique index on lower(email): two spellings in each of two files",
        (
            SOURCE + "INSERT INTO owners VALUES (2, 'A@example.com', 'Bo');",
            SOURCE + "INSERT INTO owners VALUES (3, 'B@example.com', 'Cy');"
            "INSERT INTO owners VALUES (4, 'b@EXAMPLE.com', 'Di');",
        ),
        {"existing": (1, cells(("owners", "owners_lower_email")))},
        app={"existing": APP + "CREATE UNIQUE INDEX owners_lower_email ON owners (lower(email));"},
    ),
    Case(
        "the app's partial unique index: rows outside its predicate do not clash",
        (
            SOURCE.replace("email TEXT UNIQUE", "email TEXT")
            + "INSERT INTO owners VALUES (2, 'a@example.com', 'Ann');"
            "INSERT INTO owners VALUES (3, 'c@example.com', 'Cy'), (4, 'c@example.com', 'Cy');",
        ),
        {"existing": (1, cells(("owners", "owners_live_name")))},
        app={
            "existing": APP.replace("email text UNIQUE", "email text")
            + "CREATE UNIQUE INDEX owners_live_name ON owners (name) "
            "WHERE email <> 'c@example.com';"
        },
    ),
    Case(
        "the app's unique index on lower(email) over a domain a value breaks",
        (
            SOURCE + "INSERT INTO owners VALUES (2, 'A@example.com', 'Bo');"
            "INSERT INTO owners VALUES (3, 'a-very-long-address@example.com', 'Cy');",
        ),
        {
            "existing": (
                1,
                cells(
                    ("owners", "owners_lower_email"),
                    ("owners", "email"),  # the row the domain's CHECK refuses
                ),
            )
        },
        app={
            "existing": "CREATE DOMAIN short_text AS text CHECK (length(VALUE) < 20);"
            + APP.replace("email text UNIQUE", "email short_text")
            + "CREATE UNIQUE INDEX owners_lower_email ON owners (lower(email));"
        },
    ),
    Case(
        "UNIQUE: integer 1 and text '1' of one file are one value once converted",
        (SOURCE + CODES + ONE_AND_ONE,),
        {"create": (1, cells(("codes", "code"))), "existing": (1, cells(("codes", "code")))},
        app={"existing": APP + CODES_APP.format(type="text")},
    ),
    Case(
        "UNIQUE: integer 1 and text '1' of two files are one bigint",
        (
            SOURCE + CODES + "INSERT INTO codes VALUES (1, 1, 'a');",
            SOURCE + CODES + "INSERT INTO codes VALUES (2, '1', 'b');",
        ),
        {"existing": (1, cells(("codes", "code")))},
        app={"existing": APP + CODES_APP.format(type="bigint")},
    ),
    Case(
        "UNIQUE cast to text: integer 1 and text '1', in one file and across files",
        (
            SOURCE + CODES + ONE_AND_ONE,
            SOURCE + CODES + "INSERT INTO codes VALUES (3, '2', 'c');",
            SOURCE + CODES + "INSERT INTO codes VALUES (4, 2, 'd');",
        ),
        {"create": (1, cells(("codes", "code")))},
        args=("--cast", "codes.code=text"),
    ),
    Case(
        "UNIQUE cast to bigint: integer 1 and text '1' of two files",
        (
            SOURCE + CODES + "INSERT INTO codes VALUES (1, 1, 'a');",
            SOURCE + CODES + "INSERT INTO codes VALUES (2, '1', 'b');",
        ),
        {"create": (1, cells(("codes", "code")))},
        args=("--cast", "codes.code=bigint"),
    ),
    Case(
        "the app's UNIQUE numeric: text '1.0' and '1' are one value",
        (SOURCE + PRICES,),
        {"existing": (1, cells(("prices", "amount")))},
        app={
            "existing": APP + "CREATE TABLE prices (id bigint PRIMARY KEY, amount numeric UNIQUE);"
        },
    ),
    Case(
        "UNIQUE cast to numeric: text '1.0' and '1' are one value",
        (SOURCE + PRICES,),
        {"create": (1, cells(("prices", "amount")))},
        args=("--cast", "prices.amount=numeric"),
    ),
    Case(
        "UNIQUE: two spellings of one date-time are one timestamp",
        (SOURCE + TIMES,),
        {"create": (1, cells(("visits", "at")))},
    ),
    Case(
        "UNIQUE cast to text: 1 and 1.0, one value to SQLite, are two texts",
        (
            SOURCE + CODES + "INSERT INTO codes VALUES (1, 1, 'a');",
            SOURCE + CODES + "INSERT INTO codes VALUES (2, 1.0, 'b');",
        ),
        {"create": (0, NONE)},
        args=("--cast", "codes.code=text"),
    ),
    Case(
        "primary key: integer 1 and text '1' of one file are one bigint",
        (SOURCE + KEYED_CODES + "INSERT INTO kinds VALUES (1, 'a'), ('1', 'b');",),
        {"create": (1, cells(("kinds", "code"))), "existing": (1, cells(("kinds", "code")))},
        app={"existing": APP + "CREATE TABLE kinds (code bigint PRIMARY KEY, label text);"},
    ),
    Case(
        "primary key: integer 1 and text '1' in two files, other content: a conflict",
        (
            SOURCE + KEYED_CODES + "INSERT INTO kinds VALUES (1, 'a'), (2, 'b');",
            SOURCE + KEYED_CODES + "INSERT INTO kinds VALUES ('1', 'c'), ('2', 'b');",
        ),
        {"create": (1, cells(("kinds", "code"))), "existing": (1, cells(("kinds", "code")))},
        app={"existing": APP + "CREATE TABLE kinds (code bigint PRIMARY KEY, label text);"},
    ),
    Case(
        "the app's domain CHECKs (a domain over a domain) and a table CHECK, several rows each",
        (SOURCE + LABELS,),
        {"existing": (1, cells(("labels", "name"), ("labels", "size")))},
        app={"existing": APP + LABELS_APP},
    ),
    Case(
        "the app's bigint foreign key: text '1' in the child is the parent's integer 1",
        (SOURCE + KINDS_PETS + "INSERT INTO owned VALUES (1, '1'), (2, 2);",),
        {"existing": (0, NONE)},
        app={"existing": APP + KINDS_PETS_APP},
    ),
    Case(
        "the app's bigint foreign key: text '3' has no parent, text '1' has one",
        (SOURCE + KINDS_PETS + "INSERT INTO owned VALUES (1, '1'), (2, '3'), (3, 3);",),
        {"existing": (1, cells(("owned", "kind")))},
        app={"existing": APP + KINDS_PETS_APP},
    ),
    Case(
        "a foreign key cast to text: REAL 1.0 in the child is not the parent's 1 ('1.0', '1')",
        (SOURCE + KINDS_PETS + "INSERT INTO owned VALUES (1, 1.0), (2, 2);",),
        {"create": (1, cells(("owned", "kind")))},
        args=("--cast", "kinds.code=text", "owned.kind=text"),
    ),
    Case(
        "--schema auto with some source tables in the target and others not",
        (SOURCE,),
        {"auto": (2, NONE)},
        app={"auto": APP.split("CREATE TABLE pets")[0]},
    ),
    Case(
        "every kind of problem at once: one report, no second round",
        (
            SOURCE
            + BAD_VALUES.split("\n")[2]
            + ORPHAN.replace("(2,", "(4,")
            + NEGATIVE
            + ODD_VIEW
            + "INSERT INTO owners VALUES (5, 'x@example.com', 'X');",
            SOURCE.replace("'Rex'", "'Max'")
            + "INSERT INTO owners VALUES (6, 'x@example.com', 'Y');",
        ),
        {
            mode: (
                1,
                cells(
                    ("pets", "age"),
                    ("pets", "born"),
                    ("pets", "flag"),
                    ("pets", "owner_id"),
                    ("pets", "id"),
                    ("owners", "email"),
                )
                | (cells(("odd", "view:odd")) if mode == "create" else NONE),
            )
            for mode in ("create", "existing")
        },
    ),
    Case(
        "values the target database's encoding (LATIN1) lacks, one of them streamed",
        (SOURCE + EURO,),
        {mode: (1, cells(("owners", "name"), ("pets", "name"))) for mode in ("create", "existing")},
        database="LATIN1",
    ),
    Case(
        "values the session's client_encoding (LATIN1) lacks, with a value of the wrong type",
        (SOURCE + EURO + BAD_VALUES.split("\n")[2].replace("(2,", "(5,"),),
        {
            mode: (
                1,
                cells(("owners", "name"), ("pets", "name"), ("pets", "age"), ("pets", "born")),
            )
            for mode in ("create", "existing")
        },
        url_query="client_encoding=LATIN1",
    ),
    Case(
        "a table name the target database's encoding lacks",
        (SOURCE + 'CREATE TABLE "pr€ise" (id INTEGER PRIMARY KEY);',),
        dict.fromkeys(("create", "auto"), (2, NONE)),
        app={},
        database="LATIN1",
    ),
    Case(
        "the app's jsonb and text[] values the target database's encoding (LATIN1) lacks",
        (SOURCE + DOCS + """INSERT INTO docs VALUES (2, '{"p": "5 €"}', '["ok", "x€"]');""",),
        {"existing": (1, cells(("docs", "doc"), ("docs", "tags")))},
        app={
            "existing": APP + "CREATE TABLE docs (id bigint PRIMARY KEY, doc jsonb, tags text[]);"
        },
        database="LATIN1",
    ),
]

PARAMS = [
    pytest.param(
        case,
        mode,
        id=f"{mode}: {case.name}",
        marks=[pytest.mark.xfail(reason=case.xfail[mode], strict=True)]
        if mode in case.xfail
        else [],
    )
    for case in CASES
    for mode in case.expect
]


def snapshot(url: str) -> dict[str, list[tuple[object, ...]]]:
    """The target's relations, constraint and index definitions, sequences and every row."""
    out = {
        "relations": query(
            url,
            "SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
            "AND n.nspname NOT LIKE 'pg\\_%temp\\_%' ORDER BY 1, 2",
        ),
        "constraints": query(
            url,
            "SELECT conrelid::regclass::text, conname::text, pg_get_constraintdef(oid), "
            "condeferrable, convalidated FROM pg_constraint "
            "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
        ),
        "indexes": query(
            url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
        ),
        "sequences": query(url, "SELECT sequencename, last_value FROM pg_sequences ORDER BY 1"),
    }
    for (table,) in query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"):
        out[f"rows {table}"] = query(url, f'SELECT t::text FROM "{table}" t ORDER BY 1')
    return out


def problems(res: Result, tmp: str) -> list[tuple[str, ...]]:
    """Every `problem` record, file paths shortened to the file's name."""

    def short(value: object) -> str:
        return re.sub(re.escape(tmp) + r"/", "", str(value))

    return sorted(
        tuple(short(e[k]) for k in ("source", "table", "column", "rowid", "value", "reason"))
        for e in res.events
        if e["event"] == "problem"
    )


@pytest.fixture
def case_target(case: Case, target: str, pg_server: PgServer) -> Iterator[str]:
    """The case's target: `target`, or a database in the case's encoding; with its query."""
    with contextlib.ExitStack() as stack:
        url = (
            stack.enter_context(encoded_database(pg_server, case.database))
            if case.database
            else target
        )
        yield SecretURL(f"{url}?{case.url_query}") if case.url_query else url


@pytest.mark.parametrize(("case", "mode"), PARAMS)
def test_plan_reports_exactly_what_run_does(case: Case, mode: str, make_db, case_target, tmp_path):
    target = case_target
    app = case.app.get(mode, "")
    if app:
        query(target, app)
    files = [make_db(script, f"pod{i}.db") for i, script in enumerate(case.files)]
    args = [a for f in files for a in ("--source", f)]
    args += ["--target", target, "--schema", mode, *case.args]
    before = snapshot(target)
    plan = run_cli("plan", *args)
    assert snapshot(target) == before, "plan changed the target"
    run = run_cli("run", *args)
    code, wanted = case.expect[mode]
    listed, refused = problems(plan, str(tmp_path)), problems(run, str(tmp_path))
    verdicts = (
        f"plan exit {plan.code}: {listed}\nrun exit {run.code}: {refused}\n{run.messages('failed')}"
    )
    assert (plan.code, run.code) == (code, code), verdicts
    assert {(p[1], p[2]) for p in listed} >= wanted, verdicts
    assert refused == listed, verdicts
    if code:
        assert snapshot(target) == before, "a refused run changed the target"


RECORD_CELL = ("petstore_migration.runs", "*")
NAMES_VIEW = "CREATE VIEW owner_names AS SELECT name FROM owners;"


@pytest.mark.parametrize("mode", ["create", "existing"])
def test_a_completed_migration_of_other_files_is_named_not_its_tables(
    mode: str, make_db, target, tmp_path
):
    """A target holding a completed migration of other files: plan and run name that (run
    refuses it before any table), not 'holds rows' or a view the earlier run created."""
    if mode == "existing":
        query(target, APP)
    first = make_db(SOURCE + (NAMES_VIEW if mode == "create" else ""), "pod0.db")
    done = run_cli("run", "--source", first, "--target", target, "--schema", mode)
    assert done.code == 0, done.text
    other = make_db(SOURCE.replace("'Ann'", "X'00ff'"), "pod1.db")
    args = ["--source", first, "--source", other, "--target", target, "--schema", mode]
    args += ["--replace"]
    before = snapshot(target)
    plan, run = run_cli("plan", *args), run_cli("run", *args)
    listed, refused = problems(plan, str(tmp_path)), problems(run, str(tmp_path))
    assert (plan.code, run.code) == (1, 1), (listed, refused, run.text)
    assert refused == listed
    expected = {RECORD_CELL, ("owners", "name"), ("owners", "id")}  # id 1: another name
    assert {(p[1], p[2]) for p in listed} == expected, listed
    [record] = [p for p in listed if (p[1], p[2]) == RECORD_CELL]
    assert "completed migration from pod0.db; refusing to migrate pod0.db, pod1.db" in record[5]
    assert snapshot(target) == before


@pytest.mark.parametrize("mode", ["create", "existing"])
def test_plan_of_a_completed_migration_of_these_files_finds_nothing_as_run_reverifies(
    mode: str, make_db, target, tmp_path
):
    if mode == "existing":
        query(target, APP)
    pod = make_db(SOURCE, "pod0.db")
    args = ["--source", pod, "--target", target, "--schema", mode]
    assert run_cli("run", *args).code == 0
    plan, rerun = run_cli("plan", *args), run_cli("run", *args)
    assert (plan.code, rerun.code) == (0, 0), (plan.text, rerun.text)
    assert problems(plan, str(tmp_path)) == []
    assert any("already migrated and verified" in m for m in rerun.messages("done")), rerun.text


GENERATED_HEX = (
    "CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT, "
    "h TEXT GENERATED ALWAYS AS (hex(name)) STORED); INSERT INTO tags (id, name) VALUES (1, 'a');"
)


def test_an_object_that_does_not_translate_is_named_by_the_file_it_came_from(
    make_db, target, tmp_path
):
    """A view of the first file and a generated column of a table only the second file holds:
    each record names its file (not "target"), in plan and run, JSON and text alike."""
    files = [make_db(SOURCE + ODD_VIEW, "pod0.db"), make_db(SOURCE + GENERATED_HEX, "pod1.db")]
    args = [a for f in files for a in ("--source", f)] + ["--target", target]
    plan, run = run_cli("plan", *args), run_cli("run", *args)
    listed, refused = problems(plan, str(tmp_path)), problems(run, str(tmp_path))
    assert (plan.code, run.code) == (1, 1), (listed, refused)
    assert refused == listed
    assert [(p[0], p[1], p[2]) for p in listed] == [
        ("pod0.db", "odd", "view:odd"),
        ("pod1.db", "tags", "generated:tags.h"),
    ]
    texts = sorted(e["message"] for e in run.events if e["event"] == "problem")
    assert [t.partition(": not translated")[0] for t in texts] == [
        f"{files[0]}: view 'odd'",
        f"{files[1]}: generated column tags.h",
    ], texts  # the file, then the object (its --skip key ends the line)


LISTED = 50  # checkrows.CHECKS_LISTED: rows named per constraint and file


@pytest.mark.parametrize("mode", ["create", "existing"])
def test_every_row_breaking_a_check_is_named_up_to_a_cap_with_the_exact_count(
    mode: str, make_db, target, tmp_path
):
    if mode == "existing":
        query(target, APP + SCORES_APP)
    files = [make_db(SCORES_POD0, "pod0.db"), make_db(SCORES_POD1, "pod1.db")]
    args = [a for f in files for a in ("--source", f)] + ["--target", target, "--schema", mode]
    plan, run = run_cli("plan", *args), run_cli("run", *args)
    listed, refused = problems(plan, str(tmp_path)), problems(run, str(tmp_path))
    assert (plan.code, run.code) == (1, 1), (listed, run.text)
    assert refused == listed
    points = [p for p in listed if p[2] == "points"]
    assert [(p[0], p[3], p[4]) for p in points] == [
        ("pod0.db", "20", "-20"),
        ("pod0.db", "40", "-40"),
        ("pod0.db", "60", "-60"),
    ]
    assert all(p[5].endswith("(3 rows of this file)") for p in points), points
    assert "points >= 0" in points[0][5]
    grades = [p for p in listed if p[2] == "grade"]
    pod0 = [p for p in grades if p[0] == "pod0.db" and p[3] != "..."]
    assert sorted(int(p[3]) for p in pod0) == list(range(1, LISTED + 1))
    assert {p[4] for p in pod0} == {"z"}
    assert all(p[5].endswith("(60 rows of this file)") for p in pod0)
    [more] = [p for p in grades if p[3] == "..."]
    assert more[0] == "pod0.db"
    assert more[5].startswith(f"{60 - LISTED} more rows break ")
    assert more[5].endswith("(60 in this file)")
    pod1 = [(p[3], p[4]) for p in grades if p[0] == "pod1.db"]
    assert pod1 == [("1001", "z"), ("1002", "z")]
    [verdict] = [e for e in plan.events if e["event"] == "plan"]
    assert verdict["problems"] == 3 + 60 + 2
    [failed] = run.messages("failed")
    assert "table scores: 3 row(s) break " in failed, failed  # both files' rows, counted
    assert "table scores: 62 row(s) break " in failed, failed


ODD_CHECKS = """
CREATE TABLE "Odd Pets" (
    id INTEGER PRIMARY KEY, petstore_row INTEGER CHECK (petstore_row > 0),
    "Weight kg" REAL CHECK ("Odd Pets"."Weight kg" < 10)
);
CREATE TABLE divs (a INTEGER, b INTEGER CHECK (10 / b > 1));
CREATE TABLE logs (msg TEXT CHECK (length(msg) < 5));
PRAGMA ignore_check_constraints = ON;
INSERT INTO logs VALUES ('too long'), ('ok'), ('way too long');
DELETE FROM logs WHERE msg = 'ok';
INSERT INTO "Odd Pets" VALUES (1, -1, 50), (2, 5, 1), (3, 7, 12.5);
DELETE FROM "Odd Pets" WHERE id = 2;
INSERT INTO divs VALUES (1, 20), (2, 0), (3, 30);
"""


def test_rows_breaking_a_check_are_named_whatever_the_names_and_the_expression(
    make_db, target, tmp_path
):
    """A column called like the tool's row column, quoted mixed-case names, a table without a
    key (rows named by rowid); a CHECK whose expression fails on some row (division by zero)
    is still reported, with why its rows cannot be listed."""
    args = ["--source", make_db(ODD_CHECKS, "pod0.db"), "--target", target]
    plan, run = run_cli("plan", *args), run_cli("run", *args)
    listed, refused = problems(plan, str(tmp_path)), problems(run, str(tmp_path))
    assert (plan.code, run.code) == (1, 1), (listed, run.text)
    assert refused == listed
    assert [p[1:5] for p in listed] == [
        ("Odd Pets", "Weight kg", "1", "50"),
        ("Odd Pets", "Weight kg", "3", "12.5"),
        ("Odd Pets", "petstore_row", "1", "-1"),
        ("divs", "b", "-", "-"),
        ("logs", "msg", "1", "too long"),
        ("logs", "msg", "3", "way too long"),  # SQLite's rowid: row 2 was deleted
    ]
    assert "(the rows cannot be listed: division by zero)" in listed[3][5]


def test_a_citext_key_names_the_folded_clash_with_its_spellings(make_db, target, tmp_path):
    """The app's UNIQUE citext column: the rows whose values the target's fold makes one are
    named with every spelling and the exact count of different rows (ids 1, 2, 3); the value
    two files share byte for byte is named by the plain check as before; a group of one
    spelling only is not named twice."""
    query(target, CITEXT + APP.replace("email text UNIQUE", "email citext UNIQUE"))
    one = make_db(SOURCE + "INSERT INTO owners VALUES (2, 'A@example.com', 'Bo');", "pod0.db")
    two = make_db(SOURCE + "INSERT INTO owners VALUES (3, 'A@example.com', 'Cy');", "pod1.db")
    args = ["--source", one, "--source", two, "--target", target, "--schema", "existing"]
    plan = run_cli("plan", *args)
    assert plan.code == 1, plan.text
    assert [(p[0], p[2], p[4], p[5]) for p in problems(plan, str(tmp_path))] == [
        (
            "pod1.db",
            "email",
            "'A@example.com'",
            "UNIQUE (email): 2 different rows in pod0.db, pod1.db share this value",
        ),
        (
            "pod1.db",
            "email",
            "'A@example.com', 'a@example.com'",
            (
                "UNIQUE (email) over citext, compared without case by the target: 3 different "
                "rows in pod0.db, pod1.db share this value"
            ),
        ),
    ]


def test_plan_in_text_lists_the_rows_a_check_refuses(make_db, target, tmp_path):
    pod = make_db(SCORES_POD1, "pod1.db")
    res = run_cli("plan", "--source", pod, "--target", target, "--log-format", "text")
    assert res.code == 1, res.text
    after = res.out.split("Rows a CHECK refuses (2):\n", 1)[1].splitlines()
    block = list(itertools.takewhile(lambda line: line.startswith("  "), after))
    assert block == [
        f"  {pod}: table 'scores' row {row} column 'grade': breaks CHECK (grade IN ('a', 'b', "
        f"'c')) on 'scores' (2 rows of this file) (value z)"
        for row in (1001, 1002)
    ], res.out


KEYED = """
CREATE TABLE kv (
    k TEXT PRIMARY KEY, v INT CHECK (v <> 3), name TEXT COLLATE NOCASE UNIQUE
) STRICT, WITHOUT ROWID;
INSERT INTO kv VALUES ('a', 1, 'x'), ('b', 2, 'y');
"""


def test_a_without_rowid_tables_check_is_carried_over_and_its_rows_named_by_key(
    make_db, target, tmp_path
):
    """sqlglot does not parse SQLite's table options (WITHOUT ROWID, STRICT): the table's CHECK
    was silently left out. It is created now, and rows breaking it are named by their key."""
    bad = make_db(
        KEYED + "PRAGMA ignore_check_constraints = ON; INSERT INTO kv VALUES ('c', 3, 'z');",
        "pod1.db",
    )
    args = ["--source", bad, "--target", target]
    plan, run = run_cli("plan", *args), run_cli("run", *args)
    listed, refused = problems(plan, str(tmp_path)), problems(run, str(tmp_path))
    assert (plan.code, run.code) == (1, 1), (listed, run.text)
    assert refused == listed
    assert [p[:5] for p in listed] == [("pod1.db", "kv", "v", "'c'", "3")]
    good = make_db(KEYED, "pod0.db")
    done = run_cli("run", "--source", good, "--target", target)
    assert done.code == 0, done.text
    assert query(
        target,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'kv'::regclass "
        "AND contype = 'c'",
    ) == [("CHECK ((v <> 3))",)]
    with pytest.raises(Exception, match="violates check constraint"):
        query(target, "INSERT INTO kv VALUES ('d', 3, 'w')")


def test_every_row_breaking_the_apps_domain_checks_is_named_with_the_exact_count(
    make_db, target, tmp_path
):
    """`--schema existing`: a domain's CHECK (and the CHECK of the domain it is over) named for
    every row of every file that breaks it, up to the cap, with the exact count, as the
    table's own CHECKs are (which a domain's first refused row used to hide)."""
    query(target, APP + LABELS_APP)
    many = "".join(f"INSERT INTO labels VALUES ({100 + i}, '{'x' * 25}{i}', 0);" for i in range(55))
    files = [make_db(SOURCE + LABELS + many, "pod0.db"), make_db(SOURCE + LABELS, "pod1.db")]
    args = [a for f in files for a in ("--source", f)] + ["--target", target]
    args += ["--schema", "existing", "--on-conflict", "renumber"]
    plan, run = run_cli("plan", *args), run_cli("run", *args)
    listed, refused = problems(plan, str(tmp_path)), problems(run, str(tmp_path))
    assert (plan.code, run.code) == (1, 1), (listed, run.text)
    assert refused == listed
    short = [p for p in listed if "short_text_check" in p[5]]
    pod0 = [p for p in short if p[0] == "pod0.db" and p[3] != "..."]
    assert len(pod0) == LISTED
    assert sorted(int(p[3]) for p in pod0) == [1, 3, 5, *range(100, 100 + LISTED - 3)]
    assert all(p[2] == "name" for p in short)
    assert all(p[5].endswith("(58 rows of this file)") for p in pod0), pod0[0]
    assert 'domain short_text: constraint "short_text_check"' in pod0[0][5]
    assert "length(VALUE) < 20" in pod0[0][5]
    [more] = [p for p in short if p[3] == "..."]
    assert more[0] == "pod0.db"
    assert more[5].startswith(f"{58 - LISTED} more rows break the app's domain short_text")
    assert [(p[3], p[4]) for p in short if p[0] == "pod1.db"] == [
        ("1", "a-very-long-name-indeed"),
        ("3", "another-very-long-name"),
        ("5", "yet-another-long-name!"),
    ]
    empty = [(p[0], p[3], p[4]) for p in listed if "not_empty" in p[5]]
    assert empty == [("pod0.db", "6", ""), ("pod1.db", "6", "")]
    sizes = [(p[0], p[3], p[4]) for p in listed if p[2] == "size"]
    assert sizes == [
        ("pod0.db", "2", "-1"),
        ("pod0.db", "3", "-2"),
        ("pod1.db", "2", "-1"),
        ("pod1.db", "3", "-2"),
    ]
    [failed] = run.messages("failed")
    assert "table labels: 61 row(s) break the app's domain short_text" in failed, failed


def test_a_conversion_clash_names_its_rows_with_their_spellings(make_db, target, tmp_path):
    """Integer 1 and text '1' cast to text: one UNIQUE value in the target. plan and run name
    the key, every spelling, and the rows of each file holding it (row, spelling)."""
    files = [
        make_db(SOURCE + CODES + ONE_AND_ONE, "pod0.db"),
        make_db(SOURCE + CODES + "INSERT INTO codes VALUES (7, '1', 'c'), (8, 8, 'd');", "pod1.db"),
    ]
    args = [a for f in files for a in ("--source", f)]
    args += ["--target", target, "--cast", "codes.code=text"]
    plan, run = run_cli("plan", *args), run_cli("run", *args)
    listed, refused = problems(plan, str(tmp_path)), problems(run, str(tmp_path))
    assert (plan.code, run.code) == (1, 1), (listed, run.text)
    assert refused == listed
    assert listed == [
        (
            "pod1.db",
            "codes",
            "code",
            "-",
            "'1', 1",
            (
                "UNIQUE (code): 3 different rows in pod0.db, pod1.db hold values that are one "
                "once converted to text (rows 1 (1), 2 ('1') of pod0.db; 7 ('1') of pod1.db)"
            ),
        )
    ]
