"""Print each example app's own-suite pass counts in every mode (for the closing note).

    .venv/bin/python -m tests.examples.counts [--show-failures]

Starts a throwaway embedded PostgreSQL, runs what tests/examples runs (SQLite baseline,
PostgreSQL native, `--schema create`, app migrations + `--schema existing`) and prints
`app: sqlite N/T, postgres N/T, create N/T, existing N/T`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from migration import embedded
from tests.examples.harness import APPS, MODES, compute, counts


def main(argv: list[str]) -> int:
    """Run every app in every mode and print the counts (and failures with --show-failures)."""
    server = embedded.start()
    admin = server.url()

    def url_for(database: str) -> str:
        return urlunsplit(urlsplit(admin)._replace(path="/" + database))

    try:
        with tempfile.TemporaryDirectory(prefix="examples-counts-") as work:
            for app, spec in APPS.items():
                cells = []
                for mode in MODES:
                    result = compute(spec, mode, Path(work) / f"{app}-{mode}", admin, url_for)
                    cells.append(f"{mode} {counts(result)}")
                    if "--show-failures" in argv:
                        for check, outcome in result["checks"].items():
                            if outcome != "passed":
                                print(f"  {app} {mode} {check}: {outcome}")
                print(f"{app}: " + ", ".join(cells), flush=True)
    finally:
        server.stop(delete=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
