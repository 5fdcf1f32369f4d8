"""README, runbook and architecture: the promised first commands, links that resolve, config
keys and CLI flags that really exist; `.ci/run` and the pre-commit hooks run what CI runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.delivery

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
RUNBOOK = ROOT / "docs" / "runbook.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
MARKDOWN = [README, *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    plain = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return plain.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    body = FENCE.sub("", text(path))
    return {slug(m) for m in re.findall(r"^#{1,6}\s+(.+?)\s*$", body, flags=re.MULTILINE)}


def test_readme_starts_with_the_rehearsal_then_the_test_command() -> None:
    body = text(README)
    first_section = body.split("\n## ", 2)[1]
    (lang, block), *_ = FENCE.findall(first_section)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]

    assert first_section.startswith("Start here")
    assert lang == "bash"
    assert commands == ["make rehearse", "make test"]
    assert "make test" in body


def test_readme_shows_how_to_deploy_each_stack_and_links_every_doc() -> None:
    body = text(README)

    for command in (
        "pulumi up -s dev --policy-pack policy",
        "pulumi up -s prod --policy-pack policy",
        "pulumi config set --secret",
        "pulumi config set cutover false",
    ):
        assert command in body, command
    for doc in ("runbook", "architecture", "configuration", "migration", "benchmark"):
        assert f"(docs/{doc}.md)" in body, doc


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    body = FENCE.sub("", text(path))
    broken = []
    for target in LINK.findall(body):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading with that anchor")
    assert broken == []


def test_ci_entry_point_runs_the_readme_test_command() -> None:
    script = ROOT / ".ci" / "run"
    lines = [
        ln.strip() for ln in text(script).splitlines() if ln.strip() and not ln.startswith("#")
    ]

    assert os.access(script, os.X_OK)
    assert "set -euo pipefail" in lines
    assert lines[-1] == "make test"


def test_runbook_has_every_step_with_commands_and_success_criteria() -> None:
    body = text(RUNBOOK)
    steps = re.findall(r"^## (\d+)\. (.+)$", body, flags=re.MULTILINE)

    assert [title.split(":")[0].split(" (")[0] for _, title in steps] == [
        "Pre-flight",
        "Freeze writes",
        "Collect the files onto the PVC",
        "`pulumi up`",
        "What the Job prints",
        "Verification, independently of the Job",
        "Switch the app",
        "Watch the alarms",
        "Rollback",
    ]
    sections = re.split(r"^## \d+\. ", body, flags=re.MULTILINE)[1:]
    for title, section in zip(steps, sections, strict=True):
        assert "```bash" in section, f"step {title}: no command"
        assert "Success" in section, f"step {title}: no success criterion"
    for command in (
        "-m migration plan --source",
        "kubectl cp",
        'pulumi up -s "$STACK" --policy-pack policy',
        'kubectl logs -n "$NS" job/petstore-migration',
        "verify, --source",
        "pulumi config set cutover true",
        "aws cloudwatch describe-alarms",
        "pulumi config set cutover false",
    ):
        assert command in body, command


def test_architecture_has_mermaid_diagrams_of_resources_and_cutover_order() -> None:
    blocks = [lang for lang, _ in FENCE.findall(text(ARCHITECTURE))]
    body = text(ARCHITECTURE)

    assert blocks.count("mermaid") >= 2
    assert "sequenceDiagram" in body
    for heading in ("Resources", "How outputs wire into inputs", "Cutover order"):
        assert f"## {heading}" in body


def _config_keys_read_by_the_program() -> set[str]:
    source = text(ROOT / "infra" / "config.py")
    return set(re.findall(r'"([a-z][A-Za-z]+)"', source))


@pytest.mark.parametrize("path", [README, RUNBOOK, ARCHITECTURE], ids=lambda p: p.name)
def test_config_keys_named_in_the_docs_are_keys_the_program_reads(path: Path) -> None:
    named = set(re.findall(r"petstore-rds:([a-z][A-Za-z]+)\b(?!:)", text(path)))
    named |= set(
        re.findall(
            r"pulumi config (?:set|get) (?:--secret |--path )?'?([a-z][A-Za-z]+)", text(path)
        )
    )

    assert named, "the doc names no config key?"
    assert named <= _config_keys_read_by_the_program(), named - _config_keys_read_by_the_program()


def test_stack_outputs_named_in_the_docs_are_exported() -> None:
    exported = set(re.findall(r'^\s+"(\w+)":', text(ROOT / "infra" / "stack.py"), re.MULTILINE))
    for path in (README, RUNBOOK):
        named = set(re.findall(r"pulumi stack output (\w+)", text(path)))
        assert named <= exported, (path.name, named - exported)


def _migration_help(subcommand: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "migration", subcommand, "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_migration_commands_in_the_runbook_exist_with_those_flags() -> None:
    body = text(RUNBOOK)
    used: dict[str, set[str]] = {}
    for sub, rest in re.findall(r"-m migration (\w+) (.*)$", body, flags=re.MULTILINE):
        used.setdefault(sub, set()).update(re.findall(r"(--[a-z][a-z-]+)", rest))
    for rest in re.findall(r"args: \[verify, (.*)\]", body):
        used.setdefault("verify", set()).update(re.findall(r"(--[a-z][a-z-]+)", rest))

    assert set(used) == {"plan", "rehearse", "verify"}
    for sub, flags in used.items():
        help_text = _migration_help(sub)
        for flag in flags:
            assert flag in help_text, f"python -m migration {sub} has no {flag}"


def test_pre_commit_runs_the_same_lint_and_typecheck_from_the_venv() -> None:
    config_path = ROOT / ".pre-commit-config.yaml"
    config = yaml.safe_load(text(config_path))
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    makefile = text(ROOT / "Makefile")

    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    assert hooks["ruff-check"]["entry"].startswith(".venv/bin/ruff check")
    assert hooks["ruff-format"]["entry"].startswith(".venv/bin/ruff format --check")
    assert hooks["mypy"]["entry"] == ".venv/bin/mypy"
    assert hooks["mypy"]["pass_filenames"] is False
    assert "$(VENV)/bin/ruff check ." in makefile
    assert "$(VENV)/bin/ruff format --check ." in makefile
    assert "$(VENV)/bin/mypy" in makefile
    pre_commit = Path(sys.executable).parent / "pre-commit"
    result = subprocess.run(
        [str(pre_commit), "validate-config", str(config_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_lists_exactly_the_policies_the_pack_enforces() -> None:
    from petstore_policy import BASELINE, STACK_BASELINE

    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", text(README), flags=re.MULTILINE))
    enforced = {spec.name for spec in (*BASELINE, *STACK_BASELINE)}

    assert listed == enforced


def _runbook_manifests() -> list[dict[str, object]]:
    """The objects the runbook applies with `kubectl apply -n "$NS" -f - <<EOF`, with its shell
    variables filled in the way the runbook sets them."""
    values = {
        "$PVC": "petstore-data",
        # `pulumi config get migrationImage`: pinned by digest (the stacks refuse anything else)
        "$IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/petstore-migration@sha256:"
        + "3f" * 32,
        "$SECRET": "petstore-db-migration",
    }
    manifests = []
    for block in re.findall(
        r'kubectl apply -n "\$NS" -f - <<EOF\n(.*?)\nEOF', text(RUNBOOK), re.DOTALL
    ):
        for variable, value in values.items():
            block = block.replace(variable, value)
        assert "$" not in block, f"unfilled variable in {block}"
        manifests.append(yaml.safe_load(block))
    return manifests


def test_runbook_manifests_are_valid_kubernetes_objects() -> None:
    from tests.support.pulumi_harness import validate_kubernetes

    manifests = _runbook_manifests()

    assert [m["kind"] for m in manifests] == ["PersistentVolumeClaim", "Pod", "Pod"]
    assert validate_kubernetes(manifests) == []


def test_runbook_pods_pass_the_policy_pack_like_the_migration_job() -> None:
    from tests.policy.analyzer import Analyzer

    analyzer = Analyzer("prod")
    for manifest in _runbook_manifests():
        if manifest["kind"] != "Pod":
            continue
        metadata = manifest["metadata"]
        assert isinstance(metadata, dict)
        pod = {**manifest, "metadata": {**metadata, "namespace": "petstore"}}  # kubectl -n
        assert analyzer.violations("kubernetes:core/v1:Pod", pod, name=str(metadata["name"])) == {}
