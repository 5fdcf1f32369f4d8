"""SQLite's conflict clauses in CREATE TABLE: found, cut out before sqlglot parses the statement,
and reported, since PostgreSQL has no per-constraint conflict resolution.

SQLite lets a PRIMARY KEY, UNIQUE, NOT NULL or CHECK constraint say what a statement that breaks
it does: `ON CONFLICT REPLACE` (delete the rows in the way, or for NOT NULL write the default),
`IGNORE` (skip the row), `FAIL`, `ROLLBACK` or `ABORT` (the default). An app written against such
a schema gets an error from PostgreSQL where SQLite replaced or skipped, so each clause that
changes anything is reported by name; ABORT is what PostgreSQL does anyway. sqlglot cannot parse
these clauses (without the cut, a table's CHECKs and generated columns were refused as "could
not be parsed"). The clauses are found by token (sqlglot's SQLite tokenizer), so text inside
string literals and quoted names is never mistaken for one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RESOLUTIONS = ("REPLACE", "IGNORE", "FAIL", "ROLLBACK", "ABORT")
_WHY = {
    "REPLACE": (
        "SQLite deletes the rows a conflicting INSERT or UPDATE is in the way of and goes on; "
        "PostgreSQL refuses the statement: the app must say INSERT ... ON CONFLICT (...) DO UPDATE"
    ),
    "IGNORE": (
        "SQLite skips the conflicting row and goes on; PostgreSQL refuses the statement: the app "
        "must say INSERT ... ON CONFLICT DO NOTHING"
    ),
    "FAIL": (
        "SQLite stops the statement but keeps the rows it already changed; PostgreSQL undoes "
        "the statement and fails the transaction"
    ),
    "ROLLBACK": (
        "SQLite rolls the transaction back; PostgreSQL fails it, and the app must roll it back"
    ),
    "ABORT": "SQLite undoes the statement, as PostgreSQL does",  # the default: not reported
}
_WHY_NOT_NULL = {
    "REPLACE": (
        "SQLite writes the column's default in place of a NULL; PostgreSQL refuses the "
        "statement: the app must write the default itself"
    ),
    "IGNORE": "SQLite skips a row with a NULL there and goes on; PostgreSQL refuses the statement",
}
_KEYWORDS = {"PRIMARY KEY": "PRIMARY KEY", "UNIQUE": "UNIQUE", "NOT": "NOT NULL", "CHECK": "CHECK"}
_TABLE_CONSTRAINTS = {"CONSTRAINT", "PRIMARY KEY", "UNIQUE", "CHECK", "FOREIGN KEY"}


@dataclass(frozen=True)
class Clause:
    """One `ON CONFLICT <resolution>` of a constraint: on `column` (a column constraint) or on
    `columns` (a table constraint's list; empty for a table CHECK)."""

    constraint: str  # PRIMARY KEY, UNIQUE, NOT NULL or CHECK
    resolution: str
    column: str | None
    columns: tuple[str, ...] = ()

    def describe(self) -> str:
        """E.g. `column 'id': PRIMARY KEY ON CONFLICT REPLACE not carried over: ...`."""
        if self.column is not None:
            where = f"column {self.column!r}: {self.constraint}"
        elif self.columns:
            where = f"{self.constraint} ({', '.join(map(repr, self.columns))})"
        else:
            where = self.constraint
        return f"{where} ON CONFLICT {self.resolution} not carried over: {self.why}"

    @property
    def why(self) -> str:
        """What SQLite does that PostgreSQL will not."""
        if self.constraint == "NOT NULL" and self.resolution in _WHY_NOT_NULL:
            return _WHY_NOT_NULL[self.resolution]
        return _WHY[self.resolution]

    @property
    def changes_behaviour(self) -> bool:
        return self.resolution != "ABORT"


def cut(sql: str) -> tuple[str, list[Clause]]:
    """The CREATE TABLE statement without its conflict clauses, and the clauses (in order).
    A statement the tokenizer rejects is returned as it is, with none."""
    from sqlglot.dialects.sqlite import SQLite
    from sqlglot.errors import SqlglotError

    try:
        tokens = SQLite().tokenize(sql)
    except SqlglotError:
        return sql, []
    clauses: list[Clause] = []
    spans: list[tuple[int, int]] = []
    item = 0  # index of the first token of the current column or table constraint
    depth = 0
    for i, tok in enumerate(tokens):
        text = word(tok)
        if text == "(":
            depth += 1
            if depth == 1:
                item = i + 1
        elif text == ")":
            depth -= 1
        elif text == "," and depth == 1:
            item = i + 1
        elif text == "ON" and _is_clause(tokens, i):
            clauses.append(_clause(tokens, item, i))
            spans.append((tok.start, tokens[i + 2].end + 1))
    for start, end in reversed(spans):
        sql = sql[:start] + " " + sql[end:]
    return sql, clauses


def word(tok: Any) -> str:
    """A keyword or punctuation token's upper-case text; '' for names and literals."""
    name = tok.token_type.name
    if name in ("IDENTIFIER", "STRING", "NUMBER", "HEX_STRING", "BIT_STRING"):
        return ""
    return str(tok.text).upper()


def _is_clause(tokens: list[Any], i: int) -> bool:
    return (
        i + 2 < len(tokens)
        and word(tokens[i + 1]) == "CONFLICT"
        and word(tokens[i + 2]) in RESOLUTIONS
    )


def _clause(tokens: list[Any], item: int, on: int) -> Clause:
    """The clause whose ON is tokens[on], in the column or table constraint starting at
    tokens[item]."""
    resolution = word(tokens[on + 2])
    words = [word(t) for t in tokens[item:on]]
    keyword = next((w for w in reversed(words) if w in _KEYWORDS), "")
    constraint = _KEYWORDS.get(keyword, "constraint")
    if words and words[0] in _TABLE_CONSTRAINTS:
        return Clause(constraint, resolution, None, _listed(tokens[item:on]))
    return Clause(constraint, resolution, str(tokens[item].text))


def _listed(tokens: list[Any]) -> tuple[str, ...]:
    """The names in the first parenthesised list (a table constraint's columns, without their
    COLLATE and ASC/DESC); none for a CHECK, whose parentheses hold an expression."""
    words = [word(t) for t in tokens]
    if "CHECK" in words or "(" not in words:
        return ()
    names: list[str] = []
    after_collate = False
    for tok, w in zip(tokens[words.index("(") + 1 :], words[words.index("(") + 1 :], strict=True):
        if w == ")":
            break
        if tok.token_type.name in ("IDENTIFIER", "VAR") and not after_collate:
            names.append(str(tok.text))
        after_collate = w == "COLLATE"
    return tuple(names)
