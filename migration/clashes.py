"""Key values that SQLite keeps apart and the target type makes one (or the other way round).

SQLite compares a key by storage class and bytes: integer 1 and text '1' are two values, and
so are '1.0' and '1', or '2024-01-02' and '2024-01-02 00:00:00'. Converted to the target's
type (text, numeric, timestamp, the app's bigint ...) they are one, and `run` fails on the
primary key or the UNIQUE index it builds. A key is checked here when one of its columns holds
values whose conversion may not keep SQLite's equality (`converted_keys`: which storage classes
the files hold, which kind the column converts to); its values, converted as the load converts
them, are copied with each row's identity into a temporary table on the target and grouped
there with the target's own equality, in a transaction rolled back: memory stays bounded by a
batch. The byte-for-byte checks of `preflight` leave such a UNIQUE key to this module, and
a foreign key whose sides may compare otherwise there (text '1' referencing integer 1, both
bigint): its orphans are found on the target too (`conversion_orphans`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from psycopg import sql

from migration import preflight
from migration.errors import Problem
from migration.plan import Plan, TablePlan, batch_rows
from migration.preflight import Findings
from migration.source import Source, qi
from migration.typemap import ColumnPlan, show

STAGE = "petstore_converted_keys"
# kinds whose conversion of the values of these storage classes keeps SQLite's equality: two
# values are one in the target exactly when SQLite holds them equal (integers as numbers or as
# their decimal text, REALs bit for bit or as their shortest repr, text verbatim, BLOBs byte
# for byte). Any other mix (1 and '1', text to numeric, timestamp, uuid ...) is grouped on the
# target.
SAME_EQUALITY: dict[frozenset[str], frozenset[str]] = {
    frozenset({"integer"}): frozenset({"int", "numeric", "double", "float4", "text", "bool"}),
    frozenset({"real"}): frozenset({"double", "float4", "numeric"}),
    frozenset({"integer", "real"}): frozenset({"int", "numeric", "double", "float4"}),
    frozenset({"text"}): frozenset({"text"}),
    frozenset({"blob"}): frozenset({"bytea"}),
}
Key = tuple[str, tuple[str, ...]]  # (target table, key columns in source names)


Classes = dict[tuple[str, str], frozenset[str]]  # (table, column) -> storage classes held


def _classes(
    sources: list[Source], tp: TablePlan, name: str, seen: Classes | None = None
) -> frozenset[str]:
    """The storage classes (typeof) a column holds in any file, NULL aside."""
    if tp.table.rowid_alias is not None and name.lower() == tp.table.rowid_alias.lower():
        return frozenset({"integer"})
    if seen is not None and (tp.target, name.lower()) in seen:
        return seen[(tp.target, name.lower())]
    out: set[str] = set()
    for idx in tp.sources:
        st = sources[idx].schema.table(tp.table.name)
        c = qi(st.column(name).name)
        query = f"SELECT DISTINCT typeof({c}) FROM {qi(st.name)} WHERE {c} IS NOT NULL"  # noqa: S608 - identifiers quoted by qi(); read-only SQLite source
        for batch in sources[idx].batches(query, 8):
            out.update(str(r[0]) for r in batch)
    if seen is not None:
        seen[(tp.target, name.lower())] = frozenset(out)
    return frozenset(out)


def _keeps_equality(classes: frozenset[str], col: ColumnPlan) -> bool:
    return not classes or col.kind in SAME_EQUALITY.get(classes, frozenset())


def _plans(tp: TablePlan, cols: list[str]) -> list[ColumnPlan] | None:
    """The copied columns of `tp` named `cols` (source names), None if one is not copied."""
    by_name = {c.source.name.lower(): c for c in tp.copied()}
    plans = [by_name.get(c.lower()) for c in cols]
    return None if any(p is None for p in plans) else [p for p in plans if p is not None]


def converted_keys(plan: Plan, sources: list[Source]) -> set[Key]:
    """The keys (the app's, or the source's primary key and UNIQUE keys compared byte for
    byte) with a column whose conversion may not keep SQLite's equality. Keys over citext are
    `preflight.citext_clashes`'s."""
    out: set[Key] = set()
    seen: Classes = {}
    for tp in plan.tables:
        keys = preflight._keys(plan, tp)
        for cols in ([keys.pk] if keys.pk else []) + keys.uniques:
            plans = _plans(tp, cols)
            if plans is None or any(preflight._citext(p) for p in plans):
                continue
            if not all(
                _keeps_equality(_classes(sources, tp, p.source.name, seen), p) for p in plans
            ):
                out.add((tp.target, tuple(cols)))
    return out


def converted_fks(plan: Plan, sources: list[Source]) -> set[Key]:
    """The foreign keys (child table, its columns) whose two sides SQLite may compare otherwise
    than the target: a column whose conversion may not keep SQLite's equality, or a child
    column holding other storage classes than its parent column."""
    out: set[Key] = set()
    seen: Classes = {}
    for tp in plan.tables:
        for columns, parent, ref in preflight._keys(plan, tp).fks:
            child, parents = _plans(tp, columns), _plans(parent, ref)
            if child is None or parents is None:
                continue
            for c, p in zip(child, parents, strict=True):
                held = _classes(sources, tp, c.source.name, seen)
                parent_held = _classes(sources, parent, p.source.name, seen)
                if held and (
                    held != parent_held
                    or not _keeps_equality(held, c)
                    or not _keeps_equality(parent_held, p)
                ):
                    out.add((tp.target, tuple(columns)))
    return out


def conversion_clashes(
    conn: psycopg.Connection,
    plan: Plan,
    sources: list[Source],
    policy: str,
    found: Findings,
    keys: set[Key],
) -> None:
    """Values of `keys` that several stored rows share once converted: a UNIQUE key's groups
    (all of them: `preflight.unique_clashes` leaves these keys here), a primary key's values
    held by several rows of one file in different spellings, and a later file's key that an
    earlier file holds in another spelling with different content (one spelling:
    `preflight.key_conflicts`)."""
    for tp in plan.tables:
        pk = preflight._keys(plan, tp).pk
        for target, cols in sorted(keys):
            if target != tp.target:
                continue
            with (
                contextlib.suppress(*preflight.UNSTAGED, psycopg.errors.UndefinedObject),
                conn.transaction(force_rollback=True),
            ):
                _stage(conn, plan, tp, sources, list(cols), full=False)
                if not _repeated(conn, len(cols)):
                    continue  # no two rows share a converted value: nothing to name
                conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("pg_temp", STAGE)))
                _stage(conn, plan, tp, sources, list(cols))
                if list(cols) == pk:
                    _pk_repeats(conn, tp, sources, list(cols), found)
                    _pk_conflicts(conn, tp, sources, list(cols), policy, found)
                else:
                    _unique_groups(conn, tp, sources, list(cols), policy, found)


def _repeated(conn: psycopg.Connection, n: int) -> bool:
    """Whether two staged rows share a converted key (a clash needs that; most keys have
    none, and the rows' content is then never read)."""
    keys = sql.SQL(", ").join(sql.Identifier(f"k{i}") for i in range(n))
    query = sql.SQL("SELECT EXISTS (SELECT FROM {} GROUP BY {} HAVING count(*) > 1)").format(
        sql.Identifier("pg_temp", STAGE), keys
    )
    row = conn.execute(query).fetchone()
    return bool(row and row[0])


def _types(tp: TablePlan, cols: list[str]) -> str:
    by_name = {c.source.name.lower(): c for c in tp.copied()}
    return ", ".join(by_name[c.lower()].pg_type for c in cols)


def _stage(
    conn: psycopg.Connection,
    plan: Plan,
    tp: TablePlan,
    sources: list[Source],
    cols: list[str],
    name: str = STAGE,
    full: bool = True,
) -> None:
    """Each row's source index, canonical text, primary key text, the key as the file spells
    it, and the key converted, typed as the target column (a domain as its base type: its CHECK
    is the CHECK checks' to name)."""
    extra = (("spelling", "text"), ("row_name", "text"), ("n", "bigint"))
    plans = preflight.create_key_stage(conn, plan, tp, cols, name, extra)
    stage = sql.Identifier("pg_temp", name)
    preflight.base_types(conn, name)
    names = ["src", "row_text", "pk_text", "spelling", "row_name", "n"]
    names += [f"k{i}" for i in range(len(cols))]
    where = preflight._not_null(sources, tp, cols)
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        stage, sql.SQL(", ").join(sql.Identifier(n) for n in names)
    )
    with conn.cursor() as cur, cur.copy(copy_sql) as copy:
        copy.set_types(
            ["int4", "text", "text", "text", "text", "int8", *(p.copy_type for p in plans)]
        )
        n = 0
        for idx in tp.sources:
            for row_name, key, row_text, pk_text in _rows(sources[idx], tp, cols, where, full):
                try:  # converted as the load converts them
                    values = [p.check(v) for p, v in zip(plans, key, strict=True)]
                except Exception:  # noqa: BLE001, S112 - a value a check refuses: diagnose names it
                    continue
                spelling = show(key[0] if len(key) == 1 else key)
                n += 1
                copy.write_row([idx, row_text, pk_text, spelling, str(row_name), n, *values])


def _rows(
    src: Source, tp: TablePlan, cols: list[str], where: str, full: bool = True
) -> Iterator[tuple[object, tuple[object, ...], str, str]]:
    """One source's rows in row order: the row's name in its file (as a value report names
    it), the key's values, the row's canonical text and its primary key's, the copied columns
    converted as the load converts them (`preflight._stream`, without the sort). Not `full`:
    the key only (the texts empty)."""
    st = src.schema.table(tp.table.name)
    copied = tp.copied() if full else []
    key_sql = ", ".join(qi(st.column(k).name) for k in cols)
    select = ", ".join(
        c.select.replace(qi(c.source.name), qi(st.column(c.source.name).name)) for c in copied
    )
    pk_pos = [i for i, c in enumerate(copied) if c.name in tp.pk]
    select = f", {select}" if select else ""
    query = f"SELECT {tp.row_id_expr()}, {key_sql}{select} FROM {qi(st.name)} {where} ORDER BY 1"  # noqa: S608 - identifiers quoted by qi(); read-only SQLite source
    n = len(cols)
    for batch in src.batches(query, batch_rows(src, st.name, preflight.BATCH_ROWS)):
        for row in batch:
            texts = [preflight._canon(c, v) for c, v in zip(copied, row[n + 1 :], strict=True)]
            pk_text = "\x1f".join(texts[i] for i in pk_pos)
            yield row[0], tuple(row[1 : n + 1]), "\x1f".join(texts), pk_text


ROWS_NAMED = 10  # rows named per clashing value; the count is always exact
# the first ROWS_NAMED + 1 rows of a group (source index, row, spelling), in file and row order
_SEP = "\x1f"
_NAMED = sql.SQL(
    "(array_agg(concat_ws({sep}, src, row_name, spelling) ORDER BY src, n))[1:{last}]"
).format(sep=sql.Literal(_SEP), last=sql.Literal(ROWS_NAMED + 1))


def _listed(named: list[str], sources: list[Source]) -> str:
    """Rows named by file, row (as a value report names it) and spelling, at most
    ROWS_NAMED: 'rows 1 (1), 2 ('1') of a.db; 4 (1) of b.db'."""
    by_file: dict[str, list[str]] = {}
    for item in named[:ROWS_NAMED]:
        idx, row, spelling = item.split(_SEP, 2)
        by_file.setdefault(sources[int(idx)].path, []).append(f"{row} ({spelling})")
    parts = [f"{', '.join(rows)} of {path}" for path, rows in by_file.items()]
    return "rows " + "; ".join(parts) + ("; ..." if len(named) > ROWS_NAMED else "")


def _drop_later_twins() -> sql.Composed:
    """A later file's row identical to an earlier file's is stored once (the load's merge)."""
    return sql.SQL(
        "DELETE FROM {s} a USING {s} b WHERE a.src > b.src AND a.row_text = b.row_text"
    ).format(s=sql.Identifier("pg_temp", STAGE))


def _unique_groups(
    conn: psycopg.Connection,
    tp: TablePlan,
    sources: list[Source],
    cols: list[str],
    policy: str,
    found: Findings,
) -> None:
    """Every value of a UNIQUE key that several stored rows share in the target; named as
    `preflight.unique_clashes` names a value spelled one way, with every spelling otherwise."""
    stage = sql.Identifier("pg_temp", STAGE)
    keys = sql.SQL(", ").join(sql.Identifier(f"k{i}") for i in range(len(cols)))
    if not tp.pk:
        conn.execute(_drop_later_twins())
    rows: sql.Composable = sql.SQL("count(*)")
    if tp.pk:
        rows = sql.SQL("count(DISTINCT {})").format(
            sql.Identifier("pk_text" if policy == "refuse" else "row_text")
        )
    query = sql.SQL(
        "SELECT {rows}, count(DISTINCT row_text), array_agg(DISTINCT src ORDER BY src), "
        "array_agg(DISTINCT spelling ORDER BY spelling), {named} FROM {s} GROUP BY {keys} "
        "HAVING {rows} > 1 ORDER BY 4"
    ).format(rows=rows, named=_NAMED, s=stage, keys=keys)
    what = f"UNIQUE ({', '.join(cols)})"
    with conn.cursor(name="petstore_converted_groups") as cur:
        cur.execute(query)
        for count, distinct, idxs, spellings, named in cur:
            files = sorted(sources[i].path for i in idxs)
            many = "different rows" if tp.pk or distinct == count else "rows"
            reason = f"{what}: {count} {many} in {', '.join(files)} share this value"
            if len(spellings) > 1:
                reason = (
                    f"{what}: {count} different rows in {', '.join(files)} hold values that "
                    f"are one once converted to {_types(tp, cols)} ({_listed(named, sources)})"
                )
            found.add(
                "unique",
                Problem(
                    files[-1], tp.table.name, "-", ",".join(cols), ", ".join(spellings), reason
                ),
            )


def _pk_repeats(
    conn: psycopg.Connection, tp: TablePlan, sources: list[Source], cols: list[str], found: Findings
) -> None:
    """Primary key values that several rows of one file spell differently and the target
    holds equal (one spelling repeated: `preflight.repeated_app_keys`)."""
    stage = sql.Identifier("pg_temp", STAGE)
    keys = sql.SQL(", ").join(sql.Identifier(f"k{i}") for i in range(len(cols)))
    conn.execute(_drop_later_twins())
    query = sql.SQL(
        "SELECT src, count(*), array_agg(DISTINCT spelling ORDER BY spelling), {named} "
        "FROM {s} GROUP BY src, {keys} HAVING count(DISTINCT spelling) > 1 ORDER BY 1, 3"
    ).format(named=_NAMED, s=stage, keys=keys)
    with conn.cursor(name="petstore_converted_repeats") as cur:
        cur.execute(query)
        for idx, count, spellings, named in cur:
            found.add(
                "repeated key",
                Problem(
                    sources[idx].path,
                    tp.table.name,
                    "-",
                    ",".join(tp.pk),
                    ", ".join(spellings),
                    f"PRIMARY KEY ({', '.join(tp.pk)}): {count} rows of this file hold values "
                    f"that are one once converted to {_types(tp, cols)} "
                    f"({_listed(named, sources)})",
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
    """Rows whose primary key an earlier file holds, spelled otherwise, with different content
    (the load's merge joins on the target's equality)."""
    stage = sql.Identifier("pg_temp", STAGE)
    n = len(cols)
    same = sql.SQL(" AND ").join(
        sql.SQL("e.{k} = s.{k}").format(k=sql.Identifier(f"k{i}")) for i in range(n)
    )
    query = sql.SQL(
        "SELECT s.src, s.spelling, array_agg(DISTINCT e.spelling ORDER BY e.spelling) "
        "FROM {s} s JOIN {s} e ON e.src < s.src AND {same} AND e.spelling <> s.spelling "
        "AND e.row_text <> s.row_text GROUP BY 1, 2 ORDER BY 1, 2"
    ).format(s=stage, same=same)
    renumber = policy == "renumber" and (tp.identity is not None or preflight._int_key(tp))
    renumbered: dict[int, int] = {}
    with conn.cursor(name="petstore_converted_conflicts") as cur:
        cur.execute(query)
        for idx, spelling, earlier in cur:
            if renumber:
                renumbered[idx] = renumbered.get(idx, 0) + 1
                continue
            why = "" if policy == "refuse" else " (renumbering needs a single integer key)"
            found.add(
                "conflict",
                Problem(
                    sources[idx].path,
                    tp.table.name,
                    spelling,
                    ",".join(tp.pk),
                    spelling,
                    f"same key as an earlier source ({', '.join(earlier)}) once converted to "
                    f"{_types(tp, cols)}, different content{why}",
                ),
            )
    for idx, count in renumbered.items():
        found.decisions.append(
            f"{sources[idx].path}: table {tp.table.name!r}: {count} row(s) share a key with "
            "an earlier source once converted but differ: they will get new keys "
            "(--on-conflict renumber)"
        )


PARENT_STAGE = "petstore_converted_parents"


def conversion_orphans(
    conn: psycopg.Connection, plan: Plan, sources: list[Source], found: Findings, fks: set[Key]
) -> None:
    """Foreign key values of `fks` whose parent row is in no source once both sides are
    converted and compared by the target (`preflight.orphans` leaves these keys here)."""
    for tp in plan.tables:
        for columns, parent, ref in preflight._keys(plan, tp).fks:
            if (tp.target, tuple(columns)) not in fks:
                continue
            with (
                contextlib.suppress(
                    *preflight.UNSTAGED,
                    psycopg.errors.UndefinedObject,
                    psycopg.errors.UndefinedFunction,  # types the run refuses to compare
                ),
                conn.transaction(force_rollback=True),
            ):
                _stage(conn, plan, tp, sources, columns, full=False)
                _stage(conn, plan, parent, sources, ref, PARENT_STAGE, full=False)
                _anti_join(conn, tp, sources, columns, parent.table.name, found)


def _anti_join(
    conn: psycopg.Connection,
    tp: TablePlan,
    sources: list[Source],
    columns: list[str],
    ref_table: str,
    found: Findings,
) -> None:
    """Named as `preflight.orphans` names them: per value and file, with every spelling."""
    keys = [sql.Identifier(f"k{i}") for i in range(len(columns))]
    match = sql.SQL(" AND ").join(sql.SQL("p.{k} = c.{k}").format(k=k) for k in keys)
    query = sql.SQL(
        "SELECT c.src, count(*), array_agg(DISTINCT c.spelling ORDER BY c.spelling) FROM {c} c "
        "WHERE NOT EXISTS (SELECT 1 FROM {p} p WHERE {match}) "
        "GROUP BY c.src, {keys} ORDER BY 3, 1"
    ).format(
        c=sql.Identifier("pg_temp", STAGE),
        p=sql.Identifier("pg_temp", PARENT_STAGE),
        match=match,
        keys=sql.SQL(", ").join(sql.SQL("c.{}").format(k) for k in keys),
    )
    with conn.cursor(name="petstore_converted_orphans") as cur:
        cur.execute(query)
        for idx, count, spellings in cur:
            found.add(
                "orphan",
                Problem(
                    sources[idx].path,
                    tp.table.name,
                    "-",
                    ",".join(columns),
                    ", ".join(spellings),
                    f"foreign key to {ref_table}: no such row in any source ({count} row(s))",
                ),
            )
