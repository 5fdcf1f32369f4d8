"""A SQLite CREATE TABLE statement cut down to what sqlglot parses and the plan reads from its
tree: the CHECK constraints, generated columns and collations (`translate.table_extras`).

SQLite accepts more than sqlglot parses, and a statement sqlglot cannot parse has its CHECKs and
generated columns refused by name. So, found by token (never inside a string literal or a quoted
name), these are cut first:
- the constraints' conflict clauses (`ON CONFLICT REPLACE`, ...; reported by the plan:
  migration/conflict_clauses.py);
- column type names, each replaced by TEXT (also where a column has none: sqlglot wants a type
  before GENERATED): SQLite takes any run of names, with an optional `(n)` or `(n, m)`, as a type
  (`UNSIGNED BIG INT`, `NATIVE CHARACTER(70)`, `ANY` in a STRICT table); the plan reads each
  column's declared type from `PRAGMA table_xinfo`, never from this tree;
- `ASC`/`DESC` in the column list of a table's PRIMARY KEY or UNIQUE constraint (an index
  order, read from `PRAGMA index_xinfo`).
"""

from __future__ import annotations

from typing import Any

from migration import conflict_clauses
from migration.conflict_clauses import word

# What ends a column's type name: the first word of a column constraint.
_CONSTRAINT_WORDS = {
    "CONSTRAINT",
    "PRIMARY KEY",
    "NOT",
    "NULL",
    "UNIQUE",
    "CHECK",
    "DEFAULT",
    "COLLATE",
    "REFERENCES",
    "GENERATED",
    "AS",
}
_TABLE_CONSTRAINTS = {"CONSTRAINT", "PRIMARY KEY", "UNIQUE", "CHECK", "FOREIGN KEY"}
_KEYED = {"PRIMARY KEY", "UNIQUE"}


def parsable(sql: str) -> str:
    """`sql` without its conflict clauses, column type names and key column orders."""
    from sqlglot.dialects.sqlite import SQLite
    from sqlglot.errors import SqlglotError

    sql = conflict_clauses.cut(sql)[0]
    try:
        tokens = SQLite().tokenize(sql)
    except SqlglotError:
        return sql
    spans = [span for item in _items(tokens) for span in _cuts(item)]
    for start, end, text in sorted(spans, reverse=True):
        sql = sql[:start] + text + sql[end:]
    return sql


def _items(tokens: list[Any]) -> list[list[tuple[Any, int]]]:
    """The column definitions and table constraints: the tokens between the commas of the
    outermost parentheses, each with its depth inside the item (0: the item's own level)."""
    items: list[list[tuple[Any, int]]] = []
    depth = 0
    for tok in tokens:
        text = word(tok)
        if text == "(":
            depth += 1
            if depth == 1:
                items.append([])
                continue
        elif text == ")":
            depth -= 1
        elif text == "," and depth == 1:
            items.append([])
            continue
        if depth >= 1 and items:
            items[-1].append((tok, depth - 1 - (text == "(")))
    return items


def _cuts(item: list[tuple[Any, int]]) -> list[tuple[int, int, str]]:
    """Spans (start, end) of `item` and their replacement: a column's type name (TEXT), or the
    ASC/DESC of a key's columns (nothing)."""
    if not item:
        return []
    words = [word(tok) for tok, _ in item]
    if words[0] in _TABLE_CONSTRAINTS:
        keyed = any(w in _KEYED for w in words)
        return [
            (tok.start, tok.end + 1, " ")
            for (tok, depth), w in zip(item, words, strict=True)
            if keyed and depth == 1 and w in ("ASC", "DESC")
        ]
    end = 1
    while end < len(item) and (item[end][1] > 0 or words[end] not in _CONSTRAINT_WORDS):
        end += 1
    name_end = item[0][0].end + 1
    return [(name_end, item[end - 1][0].end + 1 if end > 1 else name_end, " TEXT ")]
