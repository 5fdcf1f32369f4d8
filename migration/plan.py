"""Turn the source schemas and their statistics into a migration plan: names, types, DDL.

Identifiers go through `psycopg.sql.Identifier`; constants (defaults) through `sql.Literal`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace

import apsw
from psycopg import sql

from migration import casts as casts_mod
from migration import conflict_clauses, render, translate, typemap
from migration.casts import CastOptions, NamedType
from migration.errors import Problem, SchemaError, UsageError
from migration.model import Column, Table, name_key
from migration.source import BATCH_BYTES, SQLITE_MAX_COLUMNS, Source, qi
from migration.typemap import ColumnPlan, Kind, ValueProblem

_CONSTANT = re.compile(
    r"\(*\s*(?:NULL|TRUE|FALSE|[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|'(?:[^']|'')*'|[xX]'[0-9a-fA-F]*')\s*\)*",
    re.IGNORECASE,
)  # a literal default: evaluated by SQLite, checked like data, written with sql.Literal
PG_NAME_MAX = 63  # bytes; PostgreSQL silently truncates longer identifiers (NAMEDATALEN - 1)
FK_ACTIONS = {"NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT"}
PROBLEMS_LISTED_PER_COLUMN = 50  # rows listed per column in a report; the count is always exact


class Namer:
    """Source names to PostgreSQL names under the `--identifiers` policy."""

    def __init__(self, policy: str) -> None:
        self.policy = policy

    def __call__(self, name: str) -> str:
        # ASCII only: exactly what PostgreSQL does to an unquoted identifier, so the app's
        # unquoted SQL finds the same objects (`SELECT Größe FROM ÄPFEL` finds "Äpfel").
        return name_key(name) if self.policy == "lower" else name

    def clash_key(self, target: str) -> str:
        """Two names with one key are refused: under `lower`, names that differ only in case
        (ASCII or not: `Pets`/`pets`, `Äpfel`/`äpfel`); under `preserve`, equal names."""
        return target.lower() if self.policy == "lower" else target


def _fit_name(name: str) -> str:
    """A generated constraint/index name shortened (with a hash) to PostgreSQL's limit."""
    if len(name.encode()) <= PG_NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    cut = name.encode()[: PG_NAME_MAX - 9].decode("utf-8", "ignore")
    return f"{cut}_{digest}"


@dataclass
class PostStep:
    """A DDL statement run after the data, with what to report if PostgreSQL rejects it."""

    what: str
    statement: sql.Composed
    kind: str  # pkey (added right after the first COPY), unique, index, check, fk
    name: str = ""  # the relation it creates (indexes share the namespace with tables)
    validate: sql.Composed | None = None  # run alone right after `statement` (NOT VALID ones)
    key: str = ""  # how --skip names it: index:NAME, check:TABLE.NAME, unique:..., fk:...
    translated: bool = False  # holds an expression translated from the source (plan tries it)
    expr: sql.Composable | None = None  # a CHECK's translated expression (rows breaking it)
    columns: list[str] = field(default_factory=list)  # the target columns a CHECK references


@dataclass
class TablePlan:
    """One target table: its columns, keys, DDL and the sources that hold it."""

    table: Table
    target: str
    columns: list[ColumnPlan]
    sources: list[int]
    identity: str | None = None
    restart_after: int = 0
    pk: list[str] = field(default_factory=list)
    post: list[PostStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    row_counts: dict[int, int] = field(default_factory=dict)
    generated: dict[str, sql.Composable] = field(default_factory=dict)  # target column -> expr
    no_default: set[str] = field(default_factory=set)  # target columns whose default is skipped
    translated_defaults: bool = False  # a DEFAULT is a translated expression (plan tries it)

    def copied(self) -> list[ColumnPlan]:
        """Columns written by COPY (generated ones are computed by PostgreSQL)."""
        return [c for c in self.columns if not c.source.generated or c.plain]

    def order_by(self) -> str:
        """SQLite ORDER BY for key order (rowid for tables without a primary key)."""
        if self.table.pk:
            return ", ".join(f"{qi(c)} COLLATE BINARY" for c in self.table.pk)
        return "rowid" if not self.table.without_rowid else "1"

    def row_id_expr(self) -> str:
        """How a report names a row: rowid, or the primary key of a WITHOUT ROWID table."""
        if self.table.without_rowid:
            return " || ',' || ".join(f"quote({qi(c)})" for c in self.table.pk)
        return "rowid"


@dataclass
class Plan:
    """The whole migration, before anything is written."""

    tables: list[TablePlan]
    views: list[tuple[str, str, sql.Composable | None, str | None]]  # name, target, query, error
    reported: list[str]
    problems: list[Problem]
    problem_counts: dict[tuple[str, str, str], int]
    sources: list[str]
    refusals: list[Refusal] = field(default_factory=list)  # cannot be created; run refuses
    skipped: list[str] = field(default_factory=list)  # --skip keys applied
    named_types: list[NamedType] = field(default_factory=list)  # enums/citext casts use

    def origin(self, key: str) -> str:
        """The file the object a --skip key names was read from: its table's first file (whose
        schema is migrated); for a view, the first file (views are created from its schema)."""
        kind, _, name = key.partition(":")
        longest_first = sorted(self.tables, key=lambda tp: -len(tp.table.name))
        for tp in [] if kind == "view" else longest_first:
            t = tp.table
            if (kind == "index" and any(ix.name == name for ix in t.indexes)) or (
                kind != "index" and name_key(name).startswith(name_key(t.name) + ".")
            ):
                return self.sources[tp.sources[0]]
        return self.sources[0] if self.sources else "target"

    def attributed(self, refusals: list[Refusal]) -> list[Refusal]:
        """The refusals, each naming the file its object was read from (`origin`)."""
        return [replace(r, source=self.origin(r.key)) for r in refusals]

    def needs_trial(self) -> bool:
        """True when some DDL holds a translated expression PostgreSQL may still reject."""
        if self.named_types:  # an enum or citext: the CREATE TABLE needs it on the server
            return True
        return any(q is not None for _, _, q, _ in self.views) or any(
            tp.generated or tp.translated_defaults or any(s.translated for s in tp.post)
            for tp in self.tables
        )


@dataclass
class Refusal:
    """A view, index, CHECK or default that cannot be created: the run refuses unless the user
    skips it by name (`--skip KEY`)."""

    key: str  # view:NAME, index:NAME, check:TABLE.NAME (or TABLE.N for the Nth unnamed one),
    # default:TABLE.COLUMN, generated:TABLE.COLUMN, unique:TABLE.COLUMNS, fk:TABLE.COLUMNS
    what: str
    why: str
    source: str = "target"  # the file the object was read from (Plan.attributed)

    def message(self) -> str:
        """One line naming the object, why, and the option that migrates without it."""
        if self.key.startswith("generated:"):
            return (
                f"{self.what}: {self.why} (to carry its stored values as a plain column: "
                f"--skip {self.key})"
            )
        return f"{self.what}: {self.why} (to migrate without it: --skip {self.key})"

    def problem(self) -> Problem:
        """The refusal as a `problem` record: the object's table (or view) and its --skip key."""
        owner = self.key.partition(":")[2].partition(".")[0]
        return Problem(self.source, owner, "-", self.key, "", self.message())


SKIP_FORMS = "view:NAME, index:NAME, check:TABLE.NAME, default:TABLE.COLUMN, generated:TABLE.COLUMN"
PLAIN_NOTE = "carried over as a plain column with its stored values: skipped with --skip {}"


def generated_key(tp: TablePlan, col: ColumnPlan) -> str:
    """How `--skip` names a generated column: generated:TABLE.COLUMN (source names)."""
    return f"generated:{tp.table.name}.{col.source.name}"


def generated_refusal(tp: TablePlan, col: ColumnPlan, why: str) -> Refusal:
    """A generated column whose expression cannot be carried over exactly."""
    return Refusal(
        generated_key(tp, col), f"generated column {tp.table.name}.{col.source.name}", why
    )


def apply_skips(plan: Plan, skips: list[str]) -> None:
    """Leave out what `--skip` names (before anything is tried); an unknown key is an error."""
    wanted = {k.strip().lower(): k.strip() for k in skips}
    if not wanted:
        return
    known: set[str] = {r.key.lower() for r in plan.refusals}
    known |= {f"view:{name}".lower() for name, *_ in plan.views}
    known |= {s.key.lower() for tp in plan.tables for s in tp.post if s.key}
    known |= {
        f"default:{tp.table.name}.{c.source.name}".lower()
        for tp in plan.tables
        for c in tp.columns
        if c.source.default is not None
    }
    known |= {
        generated_key(tp, c).lower() for tp in plan.tables for c in tp.columns if c.source.generated
    }
    for low, key in wanted.items():
        if low not in known:
            raise UsageError(
                f"--skip {key}: no such object in the sources (expected one of {SKIP_FORMS})"
            )
    note = "not carried over: skipped with --skip {}"
    kept_views = []
    for view in plan.views:
        key = f"view:{view[0]}"
        if key.lower() in wanted:
            plan.reported.append(f"view {view[0]!r}: " + note.format(key))
        else:
            kept_views.append(view)
    plan.views = kept_views
    for tp in plan.tables:
        for step in [s for s in tp.post if s.key.lower() in wanted]:
            tp.post.remove(step)
            plan.reported.append(f"{step.what}: " + note.format(step.key))
        for c in tp.columns:
            if f"default:{tp.table.name}.{c.source.name}".lower() in wanted:
                tp.no_default.add(c.name)
            if c.source.generated and generated_key(tp, c).lower() in wanted:
                c.plain = True
                tp.generated.pop(c.name, None)
                if not any(r.key.lower() == generated_key(tp, c).lower() for r in plan.refusals):
                    plan.reported.append(
                        f"generated column {tp.table.name}.{c.source.name}: "
                        + PLAIN_NOTE.format(generated_key(tp, c))
                    )
    for r in [r for r in plan.refusals if r.key.lower() in wanted]:
        plan.refusals.remove(r)
        template = PLAIN_NOTE if r.key.startswith("generated:") else note
        plan.reported.append(f"{r.what}: {r.why}: " + template.format(r.key))
    plan.skipped = list(wanted.values())


def temp_name(plan: Plan, base: str) -> str:
    """A name for one of the tool's own temporary tables (created in pg_temp) that no relation
    of the migration takes: an unqualified reference to a migrated table, which PostgreSQL
    resolves in pg_temp first, must never find the tool's table (a source may well hold a
    table called `petstore_renumber`)."""
    taken = {tp.target for tp in plan.tables} | {v[1] for v in plan.views}
    taken |= {step.name for tp in plan.tables for step in tp.post if step.name}
    name, n = _fit_name(base), 0
    while name in taken:
        n += 1
        name = _fit_name(f"{base}_{n}")
    return name


def _toposort(tables: list[Table]) -> list[Table]:
    by = {name_key(t.name): t for t in tables}
    done: list[Table] = []
    seen: set[str] = set()

    def visit(t: Table, stack: set[str]) -> None:
        key = name_key(t.name)
        if key in seen or key in stack:
            return
        stack.add(key)
        for fk in t.fks:
            parent = by.get(name_key(fk.ref_table))
            if parent is not None and parent is not t:
                visit(parent, stack)
        stack.discard(key)
        seen.add(key)
        done.append(t)

    for t in tables:
        visit(t, set())
    return done


def parse_casts(
    casts: list[str],
    declared: list[str] | None = None,
    enums: list[str] | None = None,
    zone: str = "UTC",
) -> CastOptions:
    """`--cast table.column=type`, `--cast-declared`, `--enum` and `--source-timezone`
    (`casts.parse`; column keys are lower-case source names)."""
    return casts_mod.parse(casts, declared or [], enums or [], zone)


def _check_names(names: list[tuple[str, str]], what: str, namer: Namer) -> None:
    seen: dict[str, tuple[str, str]] = {}
    hint = " (use --identifiers preserve to keep the case)" if namer.policy == "lower" else ""
    for source_name, target in names:
        if len(target.encode()) > PG_NAME_MAX:
            raise SchemaError(
                f"{what} {source_name!r}: name longer than {PG_NAME_MAX} bytes, which PostgreSQL "
                "would truncate"
            )
        key = namer.clash_key(target)
        if key not in seen or seen[key][0] == source_name:
            seen[key] = (source_name, target)
            continue
        first, first_target = seen[key]
        if first_target != target:  # e.g. Äpfel and äpfel: one name to anyone folding case
            raise SchemaError(
                f"{what} {first!r} and {source_name!r} differ only in case: with --identifiers "
                f"lower they count as one name{hint}"
            )
        if what == "relation":
            raise SchemaError(
                f"{first} and {source_name} both need the PostgreSQL name {target!r} (tables, "
                f"views and indexes share one namespace){hint}"
            )
        raise SchemaError(
            f"{what} {first!r} and {source_name!r} both become {target!r} in PostgreSQL{hint}"
        )


def build(
    sources: list[Source],
    namer: Namer,
    casts: CastOptions | dict[tuple[str, str], Kind],
    optimistic: bool = False,
) -> Plan:
    """Read statistics from every source and decide every table, column, index and view."""
    options = casts if isinstance(casts, CastOptions) else CastOptions(columns=dict(casts))
    first = sources[0]
    reported: list[str] = []
    refused: list[Refusal] = []  # generated columns that cannot be carried over exactly
    tables_by_name: dict[str, Table] = {}
    holders: dict[str, list[int]] = {}
    conflicts_seen: set[str] = set()
    for src in sources:
        for t in src.schema.tables:
            key = name_key(t.name)
            if key in tables_by_name:
                _same_shape(tables_by_name[key], t, src.path)
            else:
                tables_by_name[key] = t
            holders.setdefault(key, []).append(src.index)
        reported.extend(f"{src.path}: {s}" for s in src.schema.skipped)
        reported.extend(
            f"{src.path}: trigger {tr.name!r} on {tr.table!r}: not carried over (triggers are "
            "reported, never translated)"
            for tr in src.schema.triggers
        )
        reported.extend(_conflict_reports(src, conflicts_seen))
    _check_declared_rules(options, list(tables_by_name.values()))
    for tname, cname in options.columns:
        found = tables_by_name.get(tname)
        if found is None or not any(name_key(c.name) == cname for c in found.columns):
            raise UsageError(f"--cast {tname}.{cname}: no such table/column in the sources")
    ordered = _toposort(list(tables_by_name.values()))
    _check_names(
        [(t.name, namer(t.name)) for t in ordered]
        + [(v.name, namer(v.name)) for v in first.schema.views],
        "table/view",
        namer,
    )
    plans: list[TablePlan] = []
    for t in ordered:
        _check_names(
            [(c.name, namer(c.name)) for c in t.columns], f"table {t.name!r}: column", namer
        )
        json_cols = typemap.json_checked_columns([chk.source_sql for chk in t.checks])
        kinds = [options.kind_for(t.name, c, json_cols) for c in t.columns]
        for col, kind in zip(t.columns, kinds, strict=True):
            _check_type_limits(sources[holders[name_key(t.name)][0]].path, t, col, kind)
        stats: list[list[object]] = [[] for _ in t.columns]
        counts: dict[int, int] = {}
        for idx in holders[name_key(t.name)]:
            src = sources[idx]
            st = src.schema.table(t.name)
            exprs: list[str] = []
            spans = []
            hows = []
            for kind, col in zip(kinds, t.columns, strict=True):
                spec = typemap.stats_spec(kind, qi(st.column(col.name).name), optimistic)
                spans.append((len(exprs), len(exprs) + len(spec)))
                exprs.extend(e for e, _ in spec)
                hows.append([h for _, h in spec])
            aggregates = ", ".join(exprs) or "0"
            row = src.one(f"SELECT count(*), {aggregates} FROM {qi(st.name)}")  # noqa: S608 - identifiers quoted by qi(); read-only SQLite source
            counts[idx] = int(str(row[0]))
            for i, (a, b) in enumerate(spans):
                stats[i] = typemap.merge_stats(hows[i], stats[i], list(row[1 + a : 1 + b]))
        cols = [
            typemap.decide(c, namer(c.name), k, s)
            for c, k, s in zip(t.columns, kinds, stats, strict=True)
        ]
        tp = TablePlan(t, namer(t.name), cols, holders[name_key(t.name)], row_counts=counts)
        tp.pk = [namer(c) for c in t.pk]
        if t.rowid_alias:
            alias = next(c for c in cols if c.source.name == t.rowid_alias)
            if alias.kind == "int" and not alias.needs_diagnosis:
                tp.identity = alias.name
                seqs = [sources[i].schema.sequences.get(name_key(t.name), 0) for i in tp.sources]
                tp.restart_after = max(seqs, default=0)
        _translate_generated(tp, namer, refused)
        for cp in cols:
            tp.notes.extend(f"column {cp.source.name!r}: {n}" for n in cp.notes)
        plans.append(tp)
    views = _views(first, namer, {tp.table.name.lower(): table_relation(tp) for tp in plans})
    for src in sources[1:]:
        for v in src.schema.views:
            if not any(name_key(v.name) == name_key(name) for name, *_ in views):
                reported.append(
                    f"{src.path}: view {v.name!r} exists only in a later source: created from the "
                    "first source's views only"
                )
    plan = Plan(plans, views, reported, [], {}, [s.path for s in sources])
    plan.refusals += refused
    plan.named_types = options.named_types()
    _check_type_names(plan)
    _check_cast_references(plans)
    plan.refusals += [
        Refusal(f"view:{name}", f"view {name!r}", error) for name, _, q, error in views if error
    ]
    for tp in plans:
        _post_steps(tp, plan, namer, {name_key(p.table.name): p for p in plans})
        _default_refusals(tp, plan, sources[tp.sources[0]])
    relations = [(f"table {tp.table.name!r}", tp.target) for tp in plans] + [
        (f"view {v[0]!r}", v[1]) for v in views
    ]
    relations += [
        (step.what, step.name)
        for tp in plans
        for step in tp.post
        if step.name and step.kind in ("pkey", "unique", "index")
    ]
    _check_names(relations, "relation", namer)
    return plan


def _check_declared_rules(options: CastOptions, tables: list[Table]) -> None:
    """A `--cast-declared` rule no column matches is a usage error (a typo would do nothing)."""
    for rule in options.declared:
        if not any(rule.matches(c.declared) for t in tables for c in t.columns):
            raise UsageError(
                f"--cast-declared {rule.option}: no column of the sources is declared so"
            )


def _check_type_names(plan: Plan) -> None:
    """An `--enum` may not take a relation's name: PostgreSQL gives every table and view a
    type of its own name, so one of the two could not be created."""
    relations = {tp.target.lower() for tp in plan.tables} | {v[1].lower() for v in plan.views}
    for named in plan.named_types:
        if named.labels is not None and named.name.lower() in relations:
            raise UsageError(
                f"--enum {named.name}: a table or view of the migration has that name, and "
                "PostgreSQL gives each one a type of its name; choose another type name"
            )


def _check_cast_references(plans: list[TablePlan]) -> None:
    """A foreign key between columns of different types, one of them chosen by a cast (e.g. the
    key cast to uuid, the referencing column left varchar(32)), cannot be created: refused
    before anything is written, naming the cast that fixes it."""
    by_name = {name_key(tp.table.name): tp for tp in plans}
    for tp in plans:
        for fk in tp.table.fks:
            parent = by_name.get(name_key(fk.ref_table))
            ref_cols = fk.ref_columns or (parent.table.pk if parent else [])
            if parent is None or len(ref_cols) != len(fk.columns):
                continue
            for child_name, parent_name in zip(fk.columns, ref_cols, strict=True):
                child = _column_plan(tp, child_name)
                ref = _column_plan(parent, parent_name)
                if child is None or ref is None or not _cast_apart(child, ref):
                    continue
                raise UsageError(
                    f"foreign key {tp.table.name}({child_name}) -> {parent.table.name}"
                    f"({parent_name}): the columns would be {child.pg_type} and {ref.pg_type}, "
                    "which PostgreSQL cannot compare in a foreign key; give both the same type "
                    f"(e.g. --cast {tp.table.name}.{child_name}={ref.pg_type})"
                )


def _cast_apart(child: ColumnPlan, ref: ColumnPlan) -> bool:
    """Two columns of incomparable types, at least one of them chosen by a cast."""
    if not (child.reason.startswith("--cast") or ref.reason.startswith("--cast")):
        return False
    return child.kind != ref.kind or child.named is not ref.named


def _referenced(tp: TablePlan, node: object) -> list[str]:
    """The target names of the columns an expression of `tp` references."""
    found = [_column_plan(tp, name) for name in translate.referenced_columns(node)]
    return [c.name for c in found if c is not None]


def _column_plan(tp: TablePlan, name: str) -> ColumnPlan | None:
    return next((c for c in tp.columns if name_key(c.source.name) == name_key(name)), None)


def _default_refusals(tp: TablePlan, plan: Plan, src: Source) -> None:
    """Every DEFAULT that cannot be carried over is a refusal (`default:TABLE.COLUMN`)."""
    for col in tp.columns:
        if col.source.default is None or col.name == tp.identity or col.source.generated:
            continue
        default, note = default_sql(col, src)
        if default is None and note:
            key = f"default:{tp.table.name}.{col.source.name}"
            what = f"default of {tp.table.name}.{col.source.name}"
            plan.refusals.append(Refusal(key, what, note.removesuffix(": not carried over")))
        elif note and "translated to" in note:
            tp.translated_defaults = True


def _translate_generated(tp: TablePlan, namer: Namer, refused: list[Refusal]) -> None:
    """Generated expressions through the allowlist; one that is not is refused by name
    (`generated:TABLE.COLUMN`; skipped, it becomes a plain column carrying the source's
    stored values). It is planned as a plain column so the rest can still be tried."""
    rel = table_relation(tp)
    for cp in tp.columns:
        if not cp.source.generated or cp.plain:
            continue
        if cp.source.generated_node is None:
            cp.plain = True
            why = cp.source.generated_error or "the generated expression was not found in the DDL"
            refused.append(generated_refusal(tp, cp, why))
            continue
        try:
            tp.generated[cp.name] = translate.generated_expression(
                cp.source.generated_node, rel, tp.table.name, namer, cp.pg_type
            )
        except translate.TranslationError as exc:
            cp.plain = True
            refused.append(generated_refusal(tp, cp, f"not translated: {exc}"))


def table_relation(tp: TablePlan) -> render.Relation:
    """What an expression may reference of a table: its columns' target names and kinds."""
    return render.Relation(
        tp.target,
        {c.source.name.lower(): (c.name, c.kind) for c in tp.columns},
        [c.source.name for c in tp.columns],
    )


def _views(
    first: Source, namer: Namer, relations: dict[str, render.Relation]
) -> list[tuple[str, str, sql.Composable | None, str | None]]:
    """Every view of the first source, translated over the migration's own relations (views
    that use other views after them)."""
    pending = list(first.schema.views)
    done: dict[str, tuple[str, str, sql.Composable | None, str | None]] = {}
    names = {v.name.lower() for v in pending}
    while pending:
        ready = [
            v
            for v in pending
            if not (translate.view_references(v.sql) & (names - set(done) - {v.name.lower()}))
        ] or pending[:1]
        for v in ready:
            pending.remove(v)
            try:
                query, cols = translate.view_query(v.sql, namer, relations)
            except translate.TranslationError as exc:
                done[v.name.lower()] = (v.name, namer(v.name), None, f"not translated: {exc}")
                continue
            relations[v.name.lower()] = render.Relation(
                namer(v.name), {n.lower(): (namer(n), k) for n, k in cols}, [n for n, _ in cols]
            )
            done[v.name.lower()] = (v.name, namer(v.name), query, None)
    return [done[v.name.lower()] for v in first.schema.views]


VARCHAR_MAX = 10_485_760  # PostgreSQL's largest varchar(n) / char(n) length
NUMERIC_PRECISION_MAX = 1000  # PostgreSQL's largest numeric(p, s) precision (and scale)


def _check_type_limits(path: str, t: Table, col: Column, kind: Kind) -> None:
    """A declared length or precision PostgreSQL cannot take is refused, naming the column
    (SQLite accepts any number there and enforces none of them)."""
    what = f"{path}: table {t.name!r} column {col.name!r}: declared type {col.declared}"
    if kind.cast:
        what = f"{path}: table {t.name!r} column {col.name!r}: {kind.why}"
    fix = f"; choose a type with --cast {t.name}.{col.name}=TYPE (e.g. text or numeric)"
    if kind.kind == "text" and kind.length is not None and not 1 <= kind.length <= VARCHAR_MAX:
        raise SchemaError(f"{what}: PostgreSQL needs a length from 1 to {VARCHAR_MAX:,}{fix}")
    if kind.kind == "numeric" and kind.precision is not None:
        if not 1 <= kind.precision <= NUMERIC_PRECISION_MAX:
            raise SchemaError(
                f"{what}: PostgreSQL needs a numeric precision from 1 to "
                f"{NUMERIC_PRECISION_MAX}{fix}"
            )
        if kind.scale is not None and kind.scale > NUMERIC_PRECISION_MAX:
            raise SchemaError(
                f"{what}: PostgreSQL needs a numeric scale from 0 to {NUMERIC_PRECISION_MAX}{fix}"
            )


def _conflict_reports(src: Source, seen: set[str]) -> list[str]:
    """The conflict clauses (`ON CONFLICT REPLACE`, ...) of the tables first seen in `src`, each
    reported once: PostgreSQL has none (migration/conflict_clauses.py)."""
    lines = []
    for t in src.schema.tables:
        if name_key(t.name) in seen:
            continue
        seen.add(name_key(t.name))
        for clause in conflict_clauses.cut(t.sql)[1]:
            if clause.changes_behaviour:
                lines.append(f"{src.path}: table {t.name!r}: {clause.describe()}")
    return lines


def _same_shape(a: Table, b: Table, path: str) -> None:
    names_a = [name_key(c.name) for c in a.columns]
    names_b = [name_key(c.name) for c in b.columns]
    if sorted(names_a) != sorted(names_b):
        raise SchemaError(
            f"{path}: table {b.name!r} has columns {names_b}, but the first source's has "
            f"{names_a}; "
            "sources must share one schema"
        )


def default_sql(col: ColumnPlan, src: Source) -> tuple[sql.Composable | None, str | None]:
    """The PostgreSQL DEFAULT for a column, or None and the reason it is not carried over."""
    text = col.source.default
    if text is None:
        return None, None
    up = text.strip().upper().strip("()")
    utc_now = "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')"
    if up in ("CURRENT_TIMESTAMP", "CURRENT_DATE", "CURRENT_TIME") or "'NOW'" in up:
        fmt = {"CURRENT_DATE": "YYYY-MM-DD", "CURRENT_TIME": "HH24:MI:SS"}.get(
            up, "YYYY-MM-DD HH24:MI:SS"
        )
        if col.kind == "timestamp" and up != "CURRENT_TIME":
            return sql.SQL(
                utc_now if up != "CURRENT_DATE" else f"date_trunc('day', {utc_now})"
            ), None
        if col.kind == "date" and up != "CURRENT_TIME":
            return sql.SQL(f"({utc_now})::date"), None
        if col.kind == "timestamptz" and up not in ("CURRENT_DATE", "CURRENT_TIME"):
            return sql.SQL("CURRENT_TIMESTAMP"), None
        if col.kind == "text" and "'NOW'" not in up:
            return sql.SQL(f"to_char({utc_now}, {{}})").format(sql.Literal(fmt)), None
        return (
            None,
            f"default {text} has no equivalent for a {col.pg_type} column: not carried over",
        )
    if _CONSTANT.fullmatch(text.strip()):
        try:
            value = src.value(f"SELECT {text}")
        except apsw.Error as exc:
            return None, f"default {text} could not be evaluated ({exc}): not carried over"
        if value is None:
            return None, None
        try:
            converted = col.check(value)
        except ValueProblem as exc:
            return None, f"default {text} does not fit {col.pg_type} ({exc}): not carried over"
        if col.kind == "jsonb":  # jsonb's binary COPY format: a version byte, then the JSON text
            converted = bytes(converted)[1:].decode()  # type: ignore[call-overload]
        elif isinstance(converted, bytes) and col.kind != "bytea":  # another type's wire format
            return None, f"default {text} on a {col.pg_type} column: not carried over"
        return sql.SQL("{}::{}").format(sql.Literal(converted), col.type_sql()), None
    try:
        rendered = translate.expression(text, lambda n: n)
    except translate.TranslationError as exc:
        return None, f"default {text} could not be translated ({exc}): not carried over"
    shown = rendered.as_string(None)
    return sql.SQL("({})").format(rendered), f"default {text} translated to {shown}: review it"


def create_table(tp: TablePlan, src: Source, namer: Namer) -> tuple[sql.Composed, list[str]]:
    """CREATE TABLE with types, NOT NULL, defaults, identity and generated columns (no keys yet)."""
    parts = []
    notes = []
    for col in tp.columns:
        bits = [sql.Identifier(col.name), col.type_sql()]
        if col.source.generated and not col.plain:
            expr = tp.generated[col.name]
            bits.append(sql.SQL("GENERATED ALWAYS AS ({}) STORED").format(expr))
            if col.source.hidden == 2:
                notes.append(
                    f"column {col.source.name!r}: VIRTUAL generated column created as STORED "
                    f"({expr.as_string(None)})"
                )
        else:
            if col.name == tp.identity:
                bits.append(sql.SQL("GENERATED BY DEFAULT AS IDENTITY"))
            if col.source.notnull or col.name == tp.identity:
                bits.append(sql.SQL("NOT NULL"))
            if col.name != tp.identity and col.name not in tp.no_default:
                default, note = default_sql(col, src)
                if default is not None:
                    bits.extend([sql.SQL("DEFAULT"), default])
                if note:
                    notes.append(f"column {col.source.name!r}: {note}")
        parts.append(sql.SQL(" ").join(bits))
    stmt = sql.SQL("CREATE TABLE {} ({})").format(
        sql.Identifier(tp.target), sql.SQL(", ").join(parts)
    )
    return stmt, notes


def _nocase_text(tp: TablePlan, source_name: str) -> bool:
    """Whether a NOCASE index key's column is text on the target (the fold is for text)."""
    return any(c.kind == "text" for c in tp.columns if c.source.name.lower() == source_name.lower())


def _post_steps(tp: TablePlan, plan: Plan, namer: Namer, by_name: dict[str, TablePlan]) -> None:
    t = tp.table
    ident = sql.Identifier(tp.target)
    if tp.pk:
        name = _fit_name(f"{tp.target}_pkey")
        tp.post.append(
            PostStep(
                f"primary key of {t.name!r}",
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(
                    ident, sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, tp.pk))
                ),
                "pkey",
                name,
            )
        )
    for ix in t.indexes:
        colls = {p.collation.upper() for p in ix.columns}
        ix_key, ix_what = f"index:{ix.name}", f"index {ix.name!r} on {t.name!r}"
        if ix.origin == "u":
            ix_key = f"unique:{t.name}.{','.join(p.name or '?' for p in ix.columns)}"
        if colls - {"BINARY", "NOCASE"}:
            why = f"collation {sorted(colls - {'BINARY', 'NOCASE'})} has no PostgreSQL equivalent"
            plan.refusals.append(Refusal(ix_key, ix_what, why))
            continue
        expr_parts: list[sql.Composable] = []
        predicate: sql.Composable | None = None
        # sqlglot only for partial or expression indexes: plain keys come from PRAGMA index_xinfo
        if ix.sql and (ix.partial or any(p.name is None for p in ix.columns)):
            try:
                expr_parts, predicate = translate.index_parts(
                    ix.sql, table_relation(tp), t.name, namer
                )
            except translate.TranslationError as exc:
                plan.refusals.append(Refusal(ix_key, ix_what, f"not translated: {exc}"))
                continue
        keys: list[sql.Composable] = []
        for i, part in enumerate(ix.columns):
            if part.name is None:
                if i >= len(expr_parts) or part.collation.upper() != "BINARY":
                    why = "an expression part with a collation is not translated"
                    plan.refusals.append(Refusal(ix_key, ix_what, why))
                    keys = []
                    break
                keys.append(expr_parts[i])
                continue
            key: sql.Composable = sql.Identifier(namer(part.name))
            if part.collation.upper() == "NOCASE":
                if not _nocase_text(tp, part.name):
                    why = f"COLLATE NOCASE on {part.name!r}, a column that is not text"
                    plan.refusals.append(Refusal(ix_key, ix_what, why))
                    keys = []
                    break
                key = render.nocase_key(key)
                plan.reported.append(
                    f"index {ix.name!r} on {t.name!r}: COLLATE NOCASE on {part.name!r} carried "
                    f"over as translate({namer(part.name)}, 'A..Z', 'a..z') (ASCII letters "
                    "only, as SQLite folds them); queries must compare that to use it"
                )
            if part.desc:
                key = sql.SQL("{} DESC").format(key)
            keys.append(key)
        if not keys:
            continue
        if ix.origin == "u" and not (colls - {"BINARY"}):
            cols = [namer(p.name) for p in ix.columns if p.name]
            name = _fit_name(f"{tp.target}_{'_'.join(cols)}_key")
            tp.post.append(
                PostStep(
                    f"UNIQUE ({', '.join(cols)}) on {t.name!r}",
                    sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} UNIQUE ({})").format(
                        ident, sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, cols))
                    ),
                    "unique",
                    name,
                    key=ix_key,
                )
            )
            continue
        name = _fit_name(namer(ix.name if ix.origin == "c" else f"{tp.target}_{ix.name}"))
        stmt = sql.SQL("CREATE {}INDEX {} ON {} ({})").format(
            sql.SQL("UNIQUE " if ix.unique else ""),
            sql.Identifier(name),
            ident,
            sql.SQL(", ").join(keys),
        )
        if predicate is not None:
            stmt = sql.SQL("{} WHERE {}").format(stmt, predicate)
        translated = bool(expr_parts) or predicate is not None
        tp.post.append(PostStep(ix_what, stmt, "index", name, key=ix_key, translated=translated))
    for n, chk in enumerate(t.checks, 1):
        if typemap.implied_by_jsonb(chk.source_sql, tp.columns):
            tp.notes.append(f"CHECK ({chk.source_sql}): implied by the jsonb type, not created")
            continue
        chk_key = f"check:{t.name}.{chk.name or n}"
        chk_what = f"CHECK ({chk.source_sql}) on {t.name!r}"
        if chk.node is None:
            plan.refusals.append(Refusal(chk_key, chk_what, str(chk.error)))
            continue
        try:
            rendered = translate.table_expression(chk.node, table_relation(tp), t.name, namer)
        except translate.TranslationError as exc:
            plan.refusals.append(Refusal(chk_key, chk_what, f"not translated: {exc}"))
            continue
        name = _fit_name(namer(chk.name) if chk.name else f"{tp.target}_check{n}")
        tp.post.append(
            PostStep(
                chk_what,
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({}) NOT VALID").format(
                    ident, sql.Identifier(name), rendered
                ),
                "check",
                validate=sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(
                    ident, sql.Identifier(name)
                ),
                key=chk_key,
                translated=True,
                expr=rendered,
                columns=_referenced(tp, chk.node),
            )
        )
    for fk in t.fks:
        parent = by_name.get(name_key(fk.ref_table))
        if parent is None:
            plan.reported.append(
                f"foreign key {t.name}({', '.join(fk.columns)}) -> {fk.ref_table}: the parent "
                "table does not exist in the source: not carried over"
            )
            continue
        ref_cols = fk.ref_columns or parent.table.pk
        if not ref_cols:
            plan.reported.append(
                f"foreign key {t.name}({', '.join(fk.columns)}) -> {fk.ref_table}: parent has no "
                "primary key: not carried over"
            )
            continue
        actions = []
        for label, action in (("ON DELETE", fk.on_delete), ("ON UPDATE", fk.on_update)):
            if action.upper() not in FK_ACTIONS:
                plan.reported.append(
                    f"foreign key {t.name}({', '.join(fk.columns)}): {label} {action} unknown, "
                    "using NO ACTION"
                )
                continue
            actions.append(sql.SQL(f"{label} {action.upper()}"))
        cols = [namer(c) for c in fk.columns]
        name = _fit_name(f"{tp.target}_{'_'.join(cols)}_fkey")
        stmt = sql.SQL(
            "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) {} NOT VALID"
        ).format(
            ident,
            sql.Identifier(name),
            sql.SQL(", ").join(map(sql.Identifier, cols)),
            sql.Identifier(parent.target),
            sql.SQL(", ").join(sql.Identifier(namer(c)) for c in ref_cols),
            sql.SQL(" ").join(actions),
        )
        validate = sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(
            ident, sql.Identifier(name)
        )
        tp.post.append(
            PostStep(
                f"foreign key {t.name}({', '.join(fk.columns)}) -> "
                f"{fk.ref_table}({', '.join(ref_cols)})",
                stmt,
                "fk",
                validate=validate,
                key=f"fk:{t.name}.{','.join(fk.columns)}",
            )
        )


DIAGNOSE_ROWS = 5_000  # rows per read when checking values (fewer when records are wide)


def batch_rows(src: Source, table: str, limit: int) -> int:
    """Rows per batch so that a batch of `table`'s widest records holds at most BATCH_BYTES
    (SQLite's dbstat tells the largest record without reading a value), at most `limit`;
    `limit` when SQLite cannot tell. At least two: reading one row past a table's last row
    ends the statement, so SQLite frees its own copy of a huge last value before it is checked
    (with batches of one, that copy stays alive next to Python's: +200 MB for one 200 MB text)."""
    top = src.max_payload(table)
    if top is None:
        return limit
    return max(2, min(limit, BATCH_BYTES // max(top, 1)))


def diagnose(
    plan: Plan, sources: list[Source], tables: list[TablePlan] | None = None, every: bool = False
) -> None:
    """Find, in Python, every value that does not fit (in flagged columns, or all with `every`)."""
    for tp in tables if tables is not None else plan.tables:
        # two result columns per checked column: a wide table is checked in groups of columns
        # (SQLite returns at most SQLITE_MAX_COLUMNS per query)
        per = (SQLITE_MAX_COLUMNS - 1) // 2
        for idx in tp.sources:
            src = sources[idx]
            # UTF-16 text is converted by SQLite itself, which pairs a lone surrogate with the
            # next unit without complaint: every column of such a file is checked as raw bytes
            utf16 = src.text_codec != "utf-8"
            flagged = [c for c in tp.columns if every or utf16 or c.needs_diagnosis]
            for cols in [flagged[i : i + per] for i in range(0, len(flagged), per)]:
                _diagnose_columns(plan, tp, src, cols)


def _diagnose_columns(plan: Plan, tp: TablePlan, src: Source, cols: list[ColumnPlan]) -> None:
    """Check every value of `cols` in one source (TEXT as its raw bytes in the file's encoding,
    so that text that does not decode is found and named, not raised)."""
    st = src.schema.table(tp.table.name)
    exprs = [
        f"CASE WHEN typeof({n}) = 'text' THEN CAST({n} AS BLOB) ELSE {n} END, typeof({n})"
        for n in (qi(st.column(c.source.name).name) for c in cols)
    ]
    select = ", ".join(exprs)
    id_expr, order = tp.row_id_expr(), tp.order_by()
    query = f"SELECT {id_expr}, {select} FROM {qi(st.name)} ORDER BY {order}"  # noqa: S608 - identifiers quoted by qi(); read-only SQLite source
    for batch in src.batches(query, batch_rows(src, st.name, DIAGNOSE_ROWS)):
        for row in batch:
            rowid = row[0]
            for j, col in enumerate(cols):
                raw, storage = row[1 + 2 * j], row[2 + 2 * j]
                value: object = raw
                if storage == "text" and isinstance(raw, bytes):
                    try:
                        value = raw.decode(src.text_codec)
                    except UnicodeDecodeError:
                        value = typemap.InvalidText(raw)
                        value.encoding = src.encoding
                try:
                    col.check(value)
                except ValueProblem as exc:
                    key = (src.path, tp.table.name, col.source.name)
                    plan.problem_counts[key] = plan.problem_counts.get(key, 0) + 1
                    if plan.problem_counts[key] <= PROBLEMS_LISTED_PER_COLUMN:
                        plan.problems.append(
                            Problem(
                                src.path,
                                tp.table.name,
                                rowid,
                                col.source.name,
                                typemap.show(value),
                                str(exc),
                            )
                        )
