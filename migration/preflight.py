"""What `run` would refuse beyond single values, found by reading the sources only (no target).

`plan` uses it to be a complete dry run, and `run` to list every problem at once when it
refuses: rows with the same key but different content in several sources, values that several
sources' rows share under a UNIQUE constraint, NULL primary keys, and foreign keys whose parent
row exists in no source. Each check streams every source's rows sorted by SQLite itself and
merges the streams (`heapq.merge`), so memory stays bounded by a batch per source, whatever the
table's size.
"""

from __future__ import annotations

import contextlib
import heapq
import io
import itertools
import string
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from migration import compat, load, verify
from migration.errors import Problem, SourceTextError
from migration.log import Reporter
from migration.plan import Plan, PostStep, TablePlan, batch_rows
from migration.source import Source, qi
from migration.typemap import ColumnPlan, show

LISTED_PER_CHECK = 50  # rows listed per table and check in a report; the count is always exact
BATCH_ROWS = 5_000
_CLASS = {type(None): 0, int: 1, float: 1, str: 2, bytes: 3}  # SQLite's order of storage classes
_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)

SortKey = tuple[tuple[int, object], ...]
# (sort key, source index, key values, the row's canonical text, its primary key's text)
Row = tuple[SortKey, int, tuple[object, ...], str, str]


@dataclass
class Keys:
    """The keys rows are checked against, in source column names: the app's own for
    `--schema existing` (`ExistingPlan.app_keys`; the file never enforced them, so one file
    alone can break them), else the source's."""

    pk: list[str]
    uniques: list[list[str]]
    fks: list[tuple[list[str], TablePlan, list[str]]]  # columns, parent table, its columns
    app: bool = False
    pk_name: str = ""  # the app's primary key constraint, as PostgreSQL names it


def _keys(plan: Plan, tp: TablePlan) -> Keys:
    app: dict[str, Keys] = getattr(plan, "app_keys", {})
    if tp.target in app:
        return app[tp.target]
    by_name = {p.table.name.lower(): p for p in plan.tables}
    fks = []
    for fk in tp.table.fks:
        parent = by_name.get(fk.ref_table.lower())
        ref = (fk.ref_columns or parent.table.pk) if parent else None
        if parent is not None and ref and len(ref) == len(fk.columns):
            fks.append((fk.columns, parent, ref))  # else reported by the plan as not carried over
    return Keys(tp.table.pk, _unique_sets(tp), fks)


@dataclass
class Findings:
    """Problems `run` would refuse, and what it would decide (renumbered keys) instead."""

    problems: list[Problem] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)  # (table, check) -> rows
    # UNIQUE keys grouped on the target instead, (table, columns): `clashes.conversion_clashes`
    by_target: set[tuple[str, tuple[str, ...]]] = field(default_factory=set)
    fks_by_target: set[tuple[str, tuple[str, ...]]] = field(default_factory=set)  # (child, cols)

    def add(self, check: str, problem: Problem) -> None:
        key = (problem.table, check)
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.counts[key] <= LISTED_PER_CHECK:
            self.problems.append(problem)


def _order(values: Iterable[object]) -> SortKey:
    """A sort key equal to SQLite's BINARY order (NULL < numbers < text < blob)."""
    out: list[tuple[int, object]] = []
    for v in values:
        if isinstance(v, str):
            out.append((2, v.encode("utf-8", "surrogatepass")))
        else:
            out.append((_CLASS.get(type(v), 3), v))
    return tuple(out)


def _canon(col: ColumnPlan, value: object) -> str:
    """A value as the target will hold it (a bad value, already reported, as its repr)."""
    try:
        return col.canon(col.check(value))
    except Exception:  # noqa: BLE001 - any value a check refuses is reported by diagnose
        return f"?{value!r}"


def _folded(values: tuple[object, ...], nocase: tuple[bool, ...]) -> tuple[object, ...]:
    """Key values as a NOCASE key compares them: the 26 ASCII letters folded, every other
    character as it is (SQLite's sqlite3StrNICmp; the target's translate(A-Z, a-z) key)."""
    return tuple(
        v.translate(_ASCII_FOLD) if isinstance(v, str) and fold else v
        for v, fold in zip(values, nocase or (False,) * len(values), strict=True)
    )


def _stream(
    src: Source, tp: TablePlan, keys: list[str], where: str = "", nocase: tuple[bool, ...] = ()
) -> Iterator[Row]:
    """One source's rows in SQLite's key order (each part under BINARY, or NOCASE where
    `nocase` says so), the copied columns converted as the load converts them."""
    st = src.schema.table(tp.table.name)
    cols = tp.copied()
    key_sql = ", ".join(qi(st.column(k).name) for k in keys)
    order = ", ".join(
        f"{qi(st.column(k).name)} COLLATE {'NOCASE' if fold else 'BINARY'}"
        for k, fold in zip(keys, nocase or (False,) * len(keys), strict=True)
    )
    select = ", ".join(
        c.select.replace(qi(c.source.name), qi(st.column(c.source.name).name)) for c in cols
    )
    pk_pos = [i for i, c in enumerate(cols) if c.name in tp.pk]  # the key the load merges on
    query = f"SELECT {key_sql}, {select} FROM {qi(st.name)} {where} ORDER BY {order}"  # noqa: S608 - identifiers quoted by qi(); read-only SQLite source
    n = len(keys)
    for batch in src.batches(query, batch_rows(src, st.name, BATCH_ROWS)):
        for row in batch:
            key = tuple(row[:n])
            texts = [_canon(c, v) for c, v in zip(cols, row[n:], strict=True)]
            yield (
                _order(_folded(key, nocase)),
                src.index,
                key,
                "\x1f".join(texts),
                "\x1f".join(texts[i] for i in pk_pos),
            )


def _merged(
    sources: list[Source],
    tp: TablePlan,
    keys: list[str],
    where: str = "",
    nocase: tuple[bool, ...] = (),
) -> Iterator[list[Row]]:
    """Rows of every source holding the table, grouped by equal key (NOCASE parts folded),
    earlier sources first."""
    streams = [_stream(sources[i], tp, keys, where, nocase) for i in tp.sources]
    merged = heapq.merge(*streams, key=lambda r: (r[0], r[1]))
    for _key, group in itertools.groupby(merged, key=lambda r: r[0]):
        yield list(group)


def _int_key(tp: TablePlan) -> bool:
    if len(tp.pk) != 1:
        return False
    return next(c for c in tp.columns if c.name == tp.pk[0]).kind == "int"


def key_conflicts(plan: Plan, sources: list[Source], policy: str, found: Findings) -> None:
    """Rows whose key an earlier source holds with different content (merge_source's test)."""
    for tp in plan.tables:
        pk = _keys(plan, tp).pk
        if len(tp.sources) < 2 or not pk:
            continue
        renumber = policy == "renumber" and (tp.identity is not None or _int_key(tp))
        renumbered: dict[int, int] = {}
        for group in _merged(sources, tp, pk, _not_null(sources, tp, pk)):
            _sortkey, first_idx, key, first_row, _pk = group[0]
            for _s, idx, _k, row, _p in group[1:]:
                if idx == first_idx or row == first_row:
                    continue
                if renumber:
                    renumbered[idx] = renumbered.get(idx, 0) + 1
                    continue
                why = "" if policy == "refuse" else " (renumbering needs a single integer key)"
                found.add(
                    "conflict",
                    Problem(
                        sources[idx].path,
                        tp.table.name,
                        ",".join(map(str, key)),
                        ",".join(tp.pk),  # as the load names it
                        show(key[0] if len(key) == 1 else key),
                        f"same key as an earlier source, different content{why}",
                    ),
                )
        for idx, count in renumbered.items():
            found.decisions.append(
                f"{sources[idx].path}: table {tp.table.name!r}: {count} row(s) share a key with "
                "an earlier source but differ: they will get new keys (--on-conflict renumber)"
            )


def _enforced(tp: TablePlan, cols: list[str]) -> bool:
    """Whether SQLite already keeps `cols` unique in every file: the source's primary key or
    a plain UNIQUE key over exactly these columns (NULLs aside: `null_keys` names those)."""
    want = sorted(c.lower() for c in cols)
    keys = [tp.table.pk, *_unique_sets(tp)] if tp.table.pk else _unique_sets(tp)
    return any(sorted(c.lower() for c in k) == want for k in keys)


def repeated_app_keys(plan: Plan, sources: list[Source], found: Findings) -> None:
    """`--schema existing`: values of the app's primary key that several rows of one file hold
    (the file never enforced that key: no primary key, or another one). Every row of a file is
    loaded, except a later file's rows identical to an earlier file's row with that key (stored
    once); two left with one key break the app's primary key when `run` rebuilds it."""
    for tp in plan.tables:
        keys = _keys(plan, tp)
        if not keys.app or not keys.pk or _enforced(tp, keys.pk) or _over_citext(tp, keys.pk):
            continue  # a key over citext: citext_clashes groups it by the target's fold
        for group in _merged(sources, tp, keys.pk, _not_null(sources, tp, keys.pk)):
            earlier: set[str] = set()
            for idx, rows in itertools.groupby(group, key=lambda g: g[1]):
                texts = [g[3] for g in rows]
                loaded = [t for t in texts if t not in earlier]
                earlier.update(texts)
                if len(loaded) < 2:
                    continue
                key = group[0][2]
                found.add(
                    "repeated key",
                    Problem(
                        sources[idx].path,
                        tp.table.name,
                        "-",
                        ",".join(tp.pk),  # the app's key, as run's rebuild of it names it
                        show(key[0] if len(key) == 1 else key),
                        f"the app's {keys.pk_name} PRIMARY KEY ({', '.join(tp.pk)}): "
                        f"{len(loaded)} rows of this file hold this value (the file does not "
                        "enforce that key)",
                    ),
                )


def _not_null(sources: list[Source], tp: TablePlan, cols: list[str]) -> str:
    st = sources[tp.sources[0]].schema.table(tp.table.name)
    return "WHERE " + " AND ".join(f"{qi(st.column(c).name)} IS NOT NULL" for c in cols)


def null_keys(plan: Plan, sources: list[Source], found: Findings) -> None:
    """Rows with NULL in a primary key column (SQLite allows it outside INTEGER PRIMARY KEY)."""
    for tp in plan.tables:
        pk = _keys(plan, tp).pk
        if not pk or tp.table.without_rowid or pk == [tp.table.rowid_alias]:
            continue
        for idx in tp.sources:
            st = sources[idx].schema.table(tp.table.name)
            nulls = " OR ".join(f"{qi(st.column(c).name)} IS NULL" for c in pk)
            query = f"SELECT rowid FROM {qi(st.name)} WHERE {nulls} ORDER BY rowid"  # noqa: S608 - identifiers quoted by qi(); read-only SQLite source
            for batch in sources[idx].batches(query, BATCH_ROWS):
                for (rowid,) in batch:
                    found.add(
                        "null key",
                        Problem(
                            sources[idx].path,
                            tp.table.name,
                            rowid,
                            ",".join(pk),
                            "None",
                            "NULL in the primary key (PostgreSQL keys are NOT NULL)",
                        ),
                    )


def _unique_sets(tp: TablePlan) -> list[list[str]]:
    """UNIQUE constraints and unique indexes over plain columns compared byte for byte."""
    out: list[list[str]] = []
    for ix in tp.table.indexes:
        if not ix.unique or ix.partial or any(p.name is None for p in ix.columns):
            continue
        if any(p.collation.upper() != "BINARY" for p in ix.columns):
            continue
        out.append([str(p.name) for p in ix.columns])
    return out


def unique_clashes(plan: Plan, sources: list[Source], policy: str, found: Findings) -> None:
    """Values of a UNIQUE key that rows of several sources share (each file alone is unique)."""
    for tp in plan.tables:
        keys = _keys(plan, tp)
        if len(tp.sources) < 2 and not keys.app:
            continue
        # refuse: rows with one primary key are one row (stored once, or a conflict reported
        # above); renumber: every distinct row is stored; no key the load merges on: every
        # row, but a later file's twin of an earlier file's row (stored once).
        by_pk = bool(tp.pk) and policy == "refuse"
        for cols in keys.uniques:
            if (tp.target, tuple(cols)) in found.by_target:
                continue  # values the conversion may make one (or two): grouped on the target
            for group in _merged(sources, tp, cols, _not_null(sources, tp, cols)):
                rows = _stored(group, by_pk) if tp.pk else _loaded(group)
                if len(rows) < 2 or (len({g[1] for g in group}) < 2 and not keys.app):
                    continue
                _s, _i, key, _r, _p = group[0]
                many = "different rows" if tp.pk or len(set(rows)) == len(rows) else "rows"
                value = show(key[0] if len(key) == 1 else key)
                what = f"UNIQUE ({', '.join(cols)})"
                _shared(found, sources, tp, cols, group, value, what, f"{len(rows)} {many}")


def _stored(group: list[Row], by_pk: bool) -> set[str]:
    """The different rows of one key's group that the target would hold: with --on-conflict
    refuse and a primary key, rows with one key are one row (stored once, or a conflict
    reported by `key_conflicts`); else every distinct row is stored."""
    return {(g[4] if by_pk else g[3]) for g in group}


def _loaded(group: list[Row]) -> list[str]:
    """The rows of one key's group that the load stores when it merges on no key (a table
    without a primary key, or the app's lacking one): every row of a file, except a later
    file's rows identical to an earlier file's (stored once)."""
    out: list[str] = []
    earlier: set[str] = set()
    for _idx, rows in itertools.groupby(group, key=lambda g: g[1]):
        texts = [g[3] for g in rows]
        out.extend(t for t in texts if t not in earlier)
        earlier.update(texts)
    return out


def _nocase_keys(tp: TablePlan) -> Iterator[tuple[list[str], tuple[bool, ...], PostStep]]:
    """The source's UNIQUE keys with a COLLATE NOCASE part that `run` builds (its post step is
    planned: not refused, not skipped) as a unique index on translate(col, A-Z, a-z)."""
    steps = {s.key.lower(): s for s in tp.post if s.kind == "index" and s.key}
    for ix in tp.table.indexes:
        parts = ix.columns
        colls = [p.collation.upper() for p in parts]
        if (
            not ix.unique
            or ix.partial
            or "NOCASE" not in colls
            or any(p.name is None for p in parts)
        ):
            continue
        # the key plan._post_steps gives the index (as --skip names it)
        names = ",".join(str(p.name) for p in parts)
        key = f"unique:{tp.table.name}.{names}" if ix.origin == "u" else f"index:{ix.name}"
        step = steps.get(key.lower())
        if step is not None:
            yield [str(p.name) for p in parts], tuple(c == "NOCASE" for c in colls), step


def _shared(
    found: Findings,
    sources: list[Source],
    tp: TablePlan,
    cols: list[str],
    group: list[Row],
    value: str,
    what: str,
    rows: str,
) -> None:
    """One key value that `rows` of the files in `group` share, under the key `what` (named
    against the last of those files)."""
    files = sorted({sources[g[1]].path for g in group})
    reason = f"{what}: {rows} in {', '.join(files)} share this value"
    found.add("unique", Problem(files[-1], tp.table.name, "-", ",".join(cols), value, reason))


def folded_clashes(plan: Plan, sources: list[Source], policy: str, found: Findings) -> None:
    """Values of a UNIQUE COLLATE NOCASE key that rows of several sources share once the ASCII
    letters are folded ('Rex' in one file, 'rex' in another: each file alone is unique), which
    `run` meets when it builds the index. SQLite sorts each file under NOCASE; the streams are
    merged on the folded key, so memory stays bounded by a batch per source."""
    for tp in plan.tables:
        if len(tp.sources) < 2 or _keys(plan, tp).app:  # the app's own keys: unique_clashes
            continue
        by_pk = bool(tp.pk) and policy == "refuse"
        for cols, nocase, step in _nocase_keys(tp):
            where = _not_null(sources, tp, cols)
            for group in _merged(sources, tp, cols, where, nocase):
                rows = _stored(group, by_pk) if tp.pk else _loaded(group)
                if len(rows) < 2:
                    continue
                spelled = dict.fromkeys(show(k[0] if len(k) == 1 else k) for *_, k, _r, _p in group)
                parts = ", ".join(
                    f"{c} COLLATE NOCASE" if fold else c
                    for c, fold in zip(cols, nocase, strict=True)
                )
                what = f"{step.what}: UNIQUE ({parts}), A-Z folded to a-z as SQLite compares"
                value = ", ".join(spelled)
                _shared(found, sources, tp, cols, group, value, what, f"{len(rows)} different rows")


CITEXT_STAGE = "petstore_citext_keys"
# A table whose rows cannot all be staged on the target (text not decoded, a value its type or
# domain refuses): that key is left unchecked; diagnose and the CHECK checks name those rows.
UNSTAGED = (SourceTextError, load.LoadValueError, psycopg.DataError, psycopg.IntegrityError)


def _citext(col: ColumnPlan | None) -> bool:
    """Whether the target compares the column without case: citext (a --cast, or the app's)."""
    if col is None:
        return False
    named = col.named.name if col.named is not None else ""
    return "citext" in (named, col.pg_type.rsplit(".", 1)[-1].strip('"'))


def _over_citext(tp: TablePlan, cols: list[str]) -> bool:
    folded = {k.lower() for k in cols}
    return any(_citext(c) for c in tp.copied() if c.source.name.lower() in folded)


def citext_keys(plan: Plan, tp: TablePlan) -> list[tuple[list[str], bool]]:
    """The keys of the table (the app's, or the source's: its primary key, its UNIQUE keys
    compared byte for byte) with a citext column, whose clashes only the target's own lower()
    can find; True for the primary key."""
    by_name = {c.source.name.lower(): c for c in tp.copied()}
    keys = _keys(plan, tp)
    return [
        (cols, cols is keys.pk)
        for cols in ([keys.pk] if keys.pk else []) + keys.uniques
        if all(c.lower() in by_name for c in cols)
        and any(_citext(by_name[c.lower()]) for c in cols)
    ]


def citext_clashes(
    conn: psycopg.Connection, plan: Plan, sources: list[Source], policy: str, found: Findings
) -> None:
    """Values of a UNIQUE key over a citext column that several stored rows share once the
    target folds case ('A@x' and 'a@x', even in one file, which SQLite kept apart). The fold is
    the target's (its lower() under its locale), so the key values, converted as the load
    converts them, are copied with each row's identity into a temporary table on the target
    and grouped there, in a transaction rolled back: memory stays bounded by a batch."""
    for tp in plan.tables:
        for cols, pk in citext_keys(plan, tp):
            # a target without citext: run refuses that on its own (exit 2, the fix named)
            with (
                contextlib.suppress(*UNSTAGED, psycopg.errors.UndefinedObject),
                conn.transaction(force_rollback=True),
            ):
                _stage_keys(conn, plan, tp, sources, cols)
                if pk:
                    _pk_repeats(conn, tp, sources, cols, found)
                    _pk_conflicts(conn, tp, sources, cols, policy, found)
                else:
                    _group_keys(conn, tp, sources, cols, policy, found)


def _pk_repeats(
    conn: psycopg.Connection, tp: TablePlan, sources: list[Source], cols: list[str], found: Findings
) -> None:
    """Primary key values over citext that several rows of one file hold once folded (the key
    is built after the first file's COPY; a later file's rows are inserted after its twins of
    earlier rows are dropped)."""
    stage = sql.Identifier("pg_temp", CITEXT_STAGE)
    keys = sql.SQL(", ").join(sql.Identifier(f"k{i}") for i in range(len(cols)))
    conn.execute(
        sql.SQL(
            "DELETE FROM {s} a USING {s} b WHERE a.src > b.src AND a.row_text = b.row_text"
        ).format(s=stage)
    )
    query = sql.SQL(
        "SELECT src, count(*), {spelled} FROM {s} GROUP BY src, {keys} HAVING count(*) > 1 "
        "ORDER BY 1, 3"
    ).format(spelled=_spelled(keys, cols), s=stage, keys=keys)
    with conn.cursor(name="petstore_citext_repeats") as cur:
        cur.execute(query)
        for idx, count, spellings in cur:
            found.add(
                "repeated key",
                Problem(
                    sources[idx].path,
                    tp.table.name,
                    "-",
                    ",".join(tp.pk),
                    ", ".join(show(v) for v in sorted(spellings)),
                    f"PRIMARY KEY ({', '.join(tp.pk)}) over citext, compared without case by the "
                    f"target: {count} rows of this file hold this value",
                ),
            )


def _pk_conflicts(
    conn: psycopg.Connection,
    tp: TablePlan,
    sources: list[Source],
    cols: list[str],
    policy: str,
    found: Findings,
) -> None:
    """Rows whose primary key over citext an earlier file holds, spelled otherwise, with
    different content (the load's merge joins on the target's equality; the same spelling is
    `key_conflicts`'s)."""
    stage = sql.Identifier("pg_temp", CITEXT_STAGE)
    n = len(cols)
    same = sql.SQL(" AND ").join(
        sql.SQL("e.{k} = s.{k}").format(k=sql.Identifier(f"k{i}")) for i in range(n)
    )
    alike = sql.SQL(" AND ").join(
        sql.SQL("e.{k}::text = s.{k}::text").format(k=sql.Identifier(f"k{i}")) for i in range(n)
    )
    shown = sql.SQL(", ").join(
        sql.SQL("s.{}::text").format(sql.Identifier(f"k{i}")) for i in range(n)
    )
    query = sql.SQL(
        "SELECT DISTINCT s.src, {shown} FROM {s} s WHERE EXISTS (SELECT 1 FROM {s} e "
        "WHERE e.src < s.src AND {same} AND e.row_text <> s.row_text AND NOT ({alike})) "
        "ORDER BY 1, 2"
    ).format(shown=shown, s=stage, same=same, alike=alike)
    why = "" if policy == "refuse" else " (renumbering needs a single integer key)"
    with conn.cursor(name="petstore_citext_conflicts") as cur:
        cur.execute(query)
        for idx, *key in cur:
            found.add(
                "conflict",
                Problem(
                    sources[idx].path,
                    tp.table.name,
                    ",".join(map(str, key)),
                    ",".join(tp.pk),
                    show(key[0] if len(key) == 1 else tuple(key)),
                    f"same key as an earlier source, different content{why} (citext: "
                    "compared without case by the target)",
                ),
            )


def _spelled(keys: sql.Composable, cols: list[str]) -> sql.Composable:
    """The distinct spellings of a group's key, as text."""
    return sql.SQL("array_agg(DISTINCT ({})::text)").format(
        sql.SQL("ROW({})").format(keys) if len(cols) > 1 else keys
    )


def create_key_stage(
    conn: psycopg.Connection,
    plan: Plan,
    tp: TablePlan,
    cols: list[str],
    name: str,
    extra: tuple[tuple[str, str], ...] = (),
) -> list[ColumnPlan]:
    """Temporary table `name` to stage a key in: `src` (the file's index), `row_text`,
    `pk_text`, the `extra` (name, type) columns, then k0, k1, ... typed as the key's target
    columns (the app's own, with their collations, in `--schema existing`); returns the key's
    column plans."""
    by_name = {c.source.name.lower(): c for c in tp.copied()}
    plans = [by_name[c.lower()] for c in cols]
    keys = sql.SQL(", ").join(
        sql.SQL("NULL::{} AS {}").format(p.type_sql(), sql.Identifier(f"k{i}"))
        for i, p in enumerate(plans)
    )
    relation = getattr(plan, "targets", {}).get(tp.target)
    if relation is not None:  # the app's columns, with their collations
        keys = sql.SQL(", ").join(
            sql.SQL("t.{} AS {}").format(sql.Identifier(p.name), sql.Identifier(f"k{i}"))
            for i, p in enumerate(plans)
        )
    columns = [("src", "int"), ("row_text", "text"), ("pk_text", "text"), *extra]
    conn.execute(
        sql.SQL("CREATE TEMP TABLE {} AS SELECT {}, {} {} WITH NO DATA").format(
            sql.Identifier("pg_temp", name),
            sql.SQL(", ").join(
                sql.SQL("NULL::{} AS {}").format(sql.SQL(t), sql.Identifier(c)) for c, t in columns
            ),
            keys,
            sql.SQL("FROM {} t").format(relation.ident) if relation is not None else sql.SQL(""),
        )
    )
    return plans


def _stage_keys(
    conn: psycopg.Connection, plan: Plan, tp: TablePlan, sources: list[Source], cols: list[str]
) -> None:
    plans = create_key_stage(conn, plan, tp, cols, CITEXT_STAGE)
    stage = sql.Identifier("pg_temp", CITEXT_STAGE)
    names = sql.SQL(", ").join(
        sql.Identifier(n)
        for n in ["src", "row_text", "pk_text", *(f"k{i}" for i in range(len(cols)))]
    )
    where = _not_null(sources, tp, cols)
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(stage, names)
    with conn.cursor() as cur, cur.copy(copy_sql) as copy:
        copy.set_types(["int4", "text", "text", *(p.copy_type for p in plans)])
        for idx in tp.sources:
            for _s, _i, key, row_text, pk_text in _stream(sources[idx], tp, cols, where):
                try:  # converted as the load converts them
                    values = [p.check(v) for p, v in zip(plans, key, strict=True)]
                except Exception:  # noqa: BLE001, S112 - a value a check refuses: diagnose names it
                    continue
                copy.write_row([idx, row_text, pk_text, *values])


def _group_keys(
    conn: psycopg.Connection,
    tp: TablePlan,
    sources: list[Source],
    cols: list[str],
    policy: str,
    found: Findings,
) -> None:
    stage = sql.Identifier("pg_temp", CITEXT_STAGE)
    keys = sql.SQL(", ").join(sql.Identifier(f"k{i}") for i in range(len(cols)))
    if not tp.pk:  # a later file's twin of an earlier file's row is stored once
        conn.execute(
            sql.SQL(
                "DELETE FROM {s} a USING {s} b WHERE a.src > b.src AND a.row_text = b.row_text"
            ).format(s=stage)
        )
    rows: sql.Composable = sql.SQL("count(*)")
    if tp.pk:
        rows = sql.SQL("count(DISTINCT {})").format(
            sql.Identifier("pk_text" if policy == "refuse" else "row_text")
        )
    spelled = _spelled(keys, cols)
    query = sql.SQL(
        "SELECT {rows}, array_agg(DISTINCT src ORDER BY src), {spelled} FROM {s} "
        "GROUP BY {keys} HAVING {rows} > 1 ORDER BY 3"
    ).format(rows=rows, spelled=spelled, s=stage, keys=keys)
    with conn.cursor(name="petstore_citext_groups") as cur:
        cur.execute(query)
        for count, idxs, spellings in cur:
            if len(spellings) < 2:  # one spelling: unique_clashes names it, byte for byte
                continue
            files = [sources[i].path for i in idxs]
            found.add(
                "unique",
                Problem(
                    files[-1],
                    tp.table.name,
                    "-",
                    ",".join(cols),
                    ", ".join(show(v) for v in sorted(spellings)),
                    f"UNIQUE ({', '.join(cols)}) over citext, compared without case by the "
                    f"target: {count} different rows in {', '.join(sorted(files))} share this "
                    "value",
                ),
            )


_EXPRESSION_UNIQUES = """
SELECT c.relname::text,
       ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
             FROM generate_series(1, i.indnkeyatts::int) k ORDER BY k),
       pg_get_expr(i.indpred, i.indrelid, true),
       ARRAY(SELECT DISTINCT a.attname::text FROM pg_depend d
             JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
             WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
               AND d.refobjsubid > 0)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = %s AND i.indisunique AND {nulls_distinct}
  AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL)
ORDER BY c.relname
"""
NULLS_NOT_DISTINCT_SINCE = 15  # pg_index.indnullsnotdistinct (UNIQUE NULLS NOT DISTINCT)
APP_STAGE = "petstore_app_keys"
SRC_COLUMN = "petstore_source_index"


def app_expression_clashes(
    conn: psycopg.Connection, plan: Plan, sources: list[Source], policy: str, found: Findings
) -> None:
    """`--schema existing`: the app's unique indexes over expressions or with a predicate
    (lower(email), WHERE deleted_at IS NULL), which the file never enforced and no check
    compares in Python: the loaded columns are copied, converted, into a temporary twin on the
    target (rolled back), and the rows sharing a key are grouped there with the index's own
    expressions, read from the target's catalog (the app's schema, never the file's SQL)."""
    targets = getattr(plan, "targets", {})
    major = compat.server_major(conn)
    for tp in plan.tables:
        target = targets.get(tp.target)
        if target is None:
            continue
        copied = {c.name for c in tp.copied()}
        nulls_distinct = (
            "NOT i.indnullsnotdistinct" if major >= NULLS_NOT_DISTINCT_SINCE else "true"
        )
        indexes = conn.execute(
            sql.SQL(_EXPRESSION_UNIQUES.format(nulls_distinct=nulls_distinct)), (target.oid,)
        ).fetchall()
        for name, exprs, pred, used in indexes:
            if not set(used) <= copied:
                continue  # a column the load does not fill (a default): PostgreSQL checks it
            with contextlib.suppress(*UNSTAGED), conn.transaction(force_rollback=True):
                _stage_rows(conn, tp, target.ident, sources)
                _group_expressions(conn, tp, sources, (name, exprs, pred), policy, found)


def _stage_rows(
    conn: psycopg.Connection, tp: TablePlan, ident: sql.Composable, sources: list[Source]
) -> None:
    quiet = Reporter("json", (), io.StringIO(), io.StringIO())
    cols = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c.name)) for c in tp.copied())
    stage = sql.Identifier("pg_temp", APP_STAGE)
    conn.execute(
        sql.SQL("CREATE TEMP TABLE {} AS SELECT NULL::int AS {}, {} FROM {} t WITH NO DATA").format(
            stage, sql.Identifier(SRC_COLUMN), cols, ident
        )
    )
    base_types(conn, APP_STAGE)  # a domain's CHECK is the CHECK checks' to name
    for idx in tp.sources:
        conn.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}").format(
                stage, sql.Identifier(SRC_COLUMN), sql.Literal(idx)
            )
        )
        load.copy_rows(conn, load.lenient(tp), sources[idx], APP_STAGE, quiet, temp=True)


DOMAIN_LEVELS = 4  # domains over domains unwrapped this deep (one level is the usual case)
_DOMAIN_COLUMNS = """
SELECT a.attname::text, format_type(ty.typbasetype, ty.typtypmod)
FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
WHERE a.attrelid = ('pg_temp.' || quote_ident(%s))::regclass AND a.attnum > 0
  AND NOT a.attisdropped AND ty.typtype = 'd'
"""


def base_types(conn: psycopg.Connection, name: str) -> None:
    """The columns of temporary table `name` whose type is a domain retyped as the domain's
    base type (DOMAIN_LEVELS deep), so that staging rows there never stops at a domain's CHECK."""
    stage = sql.Identifier("pg_temp", name)
    for _level in range(DOMAIN_LEVELS):
        for column, base in conn.execute(_DOMAIN_COLUMNS, (name,)).fetchall():
            conn.execute(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {}").format(
                    stage,
                    sql.Identifier(column),
                    sql.SQL(base),  # the target's catalog
                )
            )


def _group_expressions(
    conn: psycopg.Connection,
    tp: TablePlan,
    sources: list[Source],
    index: tuple[str, list[str], str | None],
    policy: str,
    found: Findings,
) -> None:
    name, exprs, pred = index
    stage = sql.Identifier("pg_temp", APP_STAGE)
    src = sql.Identifier(SRC_COLUMN)
    copied = tp.copied()
    if not tp.pk:  # a later file's twin of an earlier file's row is stored once
        conn.execute(
            sql.SQL("DELETE FROM {s} a USING {s} b WHERE a.{i} > b.{i} AND {ha} = {hb}").format(
                s=stage,
                i=src,
                ha=verify.pg_row_hash(copied, "a"),
                hb=verify.pg_row_hash(copied, "b"),
            )
        )
    rows: sql.Composable = sql.SQL("count(*)")
    if tp.pk and policy == "refuse":
        rows = sql.SQL("count(DISTINCT ({}))").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in tp.pk)
            if len(tp.pk) == 1
            else sql.SQL("ROW({})").format(sql.SQL(", ").join(sql.Identifier(c) for c in tp.pk))
        )
    elif tp.pk:
        rows = sql.SQL("count(DISTINCT {})").format(verify.pg_row_hash(copied))
    keys = [sql.SQL("({})").format(sql.SQL(e)) for e in exprs]  # the app's catalog, not the file
    where = [sql.SQL("{} IS NOT NULL").format(k) for k in keys]
    if pred:
        where.append(sql.SQL("({})").format(sql.SQL(pred)))
    query = sql.SQL(
        "SELECT {rows}, array_agg(DISTINCT {i} ORDER BY {i}), (ROW({keys}))::text FROM {s} "
        "WHERE {where} GROUP BY {keys} HAVING {rows} > 1 ORDER BY 3"
    ).format(
        rows=rows,
        i=src,
        keys=sql.SQL(", ").join(keys),
        s=stage,
        where=sql.SQL(" AND ").join(where),
    )
    with conn.cursor(name="petstore_app_expression_groups") as cur:
        cur.execute(query)
        for count, idxs, key in cur:
            files = [sources[i].path for i in idxs]
            found.add(
                "unique",
                Problem(
                    files[-1],
                    tp.table.name,
                    "-",
                    name,  # as run's rebuild of the index names it
                    str(key),
                    f"the app's unique index {name} ({', '.join(exprs)})"
                    + (f" WHERE {pred}" if pred else "")
                    + f": {count} different rows in {', '.join(sorted(files))} share this key",
                ),
            )


def orphans(plan: Plan, sources: list[Source], found: Findings) -> None:
    """Foreign key values whose parent row is in no source (PostgreSQL validates every FK)."""
    for tp in plan.tables:
        for columns, parent, ref in _keys(plan, tp).fks:
            if (tp.target, tuple(columns)) in found.fks_by_target:
                continue  # compared on the target: `clashes.conversion_orphans`
            children = _merged(sources, tp, columns, _not_null(sources, tp, columns))
            parents = (
                g[0][0] for g in _merged(sources, parent, ref, _not_null(sources, parent, ref))
            )
            _anti_join(children, parents, tp, columns, parent.table.name, sources, found)


def _anti_join(
    children: Iterator[list[Row]],
    parents: Iterator[SortKey],
    tp: TablePlan,
    cols: list[str],
    ref_table: str,
    sources: list[Source],
    found: Findings,
) -> None:
    current = next(parents, None)
    for group in children:
        key = group[0][0]
        while current is not None and current < key:
            current = next(parents, None)
        if current == key:
            continue
        values = group[0][2]
        for idx in sorted({g[1] for g in group}):
            found.add(
                "orphan",
                Problem(
                    sources[idx].path,
                    tp.table.name,
                    "-",
                    ",".join(cols),
                    show(values[0] if len(values) == 1 else values),
                    f"foreign key to {ref_table}: no such row in any source "
                    f"({sum(1 for g in group if g[1] == idx)} row(s))",
                ),
            )


def check(
    plan: Plan,
    sources: list[Source],
    policy: str,
    by_target: set[tuple[str, tuple[str, ...]]] | None = None,
    fks_by_target: set[tuple[str, tuple[str, ...]]] | None = None,
) -> Findings:
    """Every cross-row problem `run` would refuse; a table whose text cannot be decoded is left
    to `diagnose`, which names each such row. `by_target`, `fks_by_target`: UNIQUE keys and
    foreign keys left to the target's grouping (`clashes`)."""
    found = Findings(by_target=set(by_target or ()), fks_by_target=set(fks_by_target or ()))
    steps: list[Callable[[], None]] = [
        lambda: key_conflicts(plan, sources, policy, found),
        lambda: null_keys(plan, sources, found),
        lambda: unique_clashes(plan, sources, policy, found),
        lambda: folded_clashes(plan, sources, policy, found),
        lambda: repeated_app_keys(plan, sources, found),
        lambda: orphans(plan, sources, found),
    ]
    for step in steps:
        with contextlib.suppress(SourceTextError):
            step()
    return found
