"""Session-wide hooks. The example-app tests (tests/examples) share one results directory
across xdist workers: the controller creates it here (a conftest below tests/ is not loaded by
the controller) and prints the apps' pass counts in the summary."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

RESULTS_ENV = "PETSTORE_EXAMPLES_RESULTS"


def pytest_configure(config: pytest.Config) -> None:
    """The controller (or a single process) makes the directory every worker inherits."""
    if RESULTS_ENV not in os.environ:
        os.environ[RESULTS_ENV] = tempfile.mkdtemp(prefix="petstore-examples-")
        config.stash[_OWNED] = Path(os.environ[RESULTS_ENV])


_OWNED = pytest.StashKey[Path]()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Per-app pass counts of the apps' own suites in each mode (for the closing note)."""
    owned = config.stash.get(_OWNED, None)
    if owned is None:
        return
    lines = []
    from tests.examples.harness import APPS, MODES, counts

    for app in APPS:
        cells = []
        for mode in MODES:
            path = owned / f"{app}-{mode}.json"
            if path.exists():
                cells.append(f"{mode} {counts(json.loads(path.read_text(encoding='utf-8')))}")
        if cells:
            lines.append(f"{app}: " + ", ".join(cells))
    if lines:
        terminalreporter.write_sep("-", "example apps: own suite passed/total per mode")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the results directory this process created."""
    owned = config.stash.get(_OWNED, None)
    if owned is not None:
        shutil.rmtree(owned, ignore_errors=True)
        os.environ.pop(RESULTS_ENV, None)
