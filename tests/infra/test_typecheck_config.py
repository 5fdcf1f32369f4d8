"""mypy follows only the pulumi_aws / pulumi_kubernetes modules infra/ uses (pyproject.toml);
a module used but not listed would be silently typed Any, so this test fails instead."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import tomllib
from pathlib import Path

import pytest

from tests.support.pulumi_harness import REPO_ROOT

pytestmark = pytest.mark.infra

PACKAGES = ("pulumi_aws", "pulumi_kubernetes")


def _followed_modules() -> list[str]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    overrides = config["tool"]["mypy"]["overrides"]
    skipped = [o for o in overrides if o.get("follow_imports") == "skip"]
    assert [sorted(o["module"]) for o in skipped] == [sorted(f"{p}.*" for p in PACKAGES)]
    return [m for o in overrides if o.get("follow_imports") == "normal" for m in o["module"]]


def _matches(module: str, pattern: str) -> bool:
    if pattern.endswith(".*"):
        return module.startswith(pattern[:-1])
    return module == pattern


def _chain(node: ast.expr) -> list[str]:
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.insert(0, node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        names.insert(0, node.id)
    return names


def _is_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _modules_used(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases: dict[str, str] = {}
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    aliases[alias.asname or alias.name] = alias.name
                    used.add(alias.name)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                used.add(full if _is_module(full) else str(node.module))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        chain = _chain(node)
        if not chain or chain[0] not in aliases:
            continue
        module = aliases[chain[0]]
        for name in chain[1:]:
            if _is_module(f"{module}.{name}"):
                module = f"{module}.{name}"
            else:
                owner = getattr(importlib.import_module(module), name, None)
                defined_in = getattr(owner, "__module__", None)
                if isinstance(defined_in, str) and defined_in.startswith(module):
                    module = defined_in
                break
        used.add(module)
    return used


def test_every_pulumi_module_infra_uses_is_type_checked() -> None:
    followed = _followed_modules()
    used = set().union(*(_modules_used(p) for p in sorted((REPO_ROOT / "infra").glob("*.py"))))

    assert {
        "pulumi_aws.rds",
        "pulumi_kubernetes.batch.v1",
        "pulumi_aws.get_caller_identity",
    } <= used
    unchecked = sorted(m for m in used if not any(_matches(m, p) for p in followed))
    assert unchecked == [], (
        f"add these to the follow_imports=normal list in pyproject.toml: {unchecked}"
    )
