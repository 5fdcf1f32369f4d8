"""scripts/preview_gate.py on `pulumi preview --json` documents: the three fixtures (a safe
preview, one replacing the database instance, one deleting its key and secret) in Pulumi's
preview-digest shape (steps[].op/urn/oldState/newState/replaceReasons, changeSummary), then
every operation on every guarded type."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.delivery

ROOT = Path(__file__).resolve().parents[2]
GATE = ROOT / "scripts" / "preview_gate.py"
FIXTURES = Path(__file__).parent / "fixtures"
INSTANCE = (
    "urn:pulumi:prod::petstore-rds::petstore-rds:database:Database$aws:rds/instance:Instance"
    "::petstore-prod-instance"
)
KEY = (
    "urn:pulumi:prod::petstore-rds::petstore-rds:database:Database$aws:kms/key:Key"
    "::petstore-prod-key"
)
SECRET = (
    "urn:pulumi:prod::petstore-rds::petstore-rds:credentials:DatabaseSecret"
    "$aws:secretsmanager/secret:Secret::petstore-prod-credentials-secret"
)
JOB = (
    "urn:pulumi:prod::petstore-rds::petstore-rds:k8s:KubernetesWiring$kubernetes:batch/v1:Job"
    "::petstore-prod-k8s-migration-job"
)
DESTRUCTIVE = [
    "delete",
    "replace",
    "create-replacement",
    "delete-replaced",
    "discard-replaced",
    "remove-pending-replace",
    "import-replacement",
    "read-replacement",
]


@pytest.fixture(scope="module")
def gate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("preview_gate", GATE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module's annotations through it
    spec.loader.exec_module(module)
    return module


def fixture(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / f"preview_{name}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def run_gate(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GATE), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=ROOT,
    )


def one_step(op: str, urn: str, *, with_state: bool = True) -> dict[str, Any]:
    type_ = urn.split("::")[2].rsplit("$", 1)[-1]
    step: dict[str, Any] = {"op": op, "urn": urn, "detailedDiff": None}
    if with_state:
        step["oldState"] = {"urn": urn, "custom": True, "type": type_, "id": "x"}
    return {"steps": [step], "changeSummary": {op: 1}}


def test_safe_preview_passes() -> None:
    result = run_gate(str(FIXTURES / "preview_safe.json"))

    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("preview gate: OK")


def test_preview_replacing_the_instance_fails_naming_it_and_the_inputs_forcing_it() -> None:
    result = run_gate(str(FIXTURES / "preview_replace.json"))

    assert result.returncode == 1
    assert "BLOCKED" in result.stdout
    assert f"replace: the database instance aws:rds/instance:Instance\n    {INSTANCE}" in (
        result.stdout
    )
    assert "(forced by: dbName, username)" in result.stdout
    assert JOB not in result.stdout  # the Job's in-place update is not a finding
    assert "1 guarded resource(s)" in result.stdout


def test_preview_deleting_the_key_and_the_secret_fails_naming_both(gate: ModuleType) -> None:
    blocked = gate.blocked_steps(fixture("delete"))

    assert [(b.op, b.urn, b.type_) for b in blocked] == [
        ("delete", KEY, "aws:kms/key:Key"),
        ("delete", SECRET, "aws:secretsmanager/secret:Secret"),
    ]
    result = run_gate(str(FIXTURES / "preview_delete.json"))
    assert result.returncode == 1
    assert KEY in result.stdout
    assert SECRET in result.stdout
    assert INSTANCE not in result.stdout


def test_the_fixtures_have_the_preview_digest_shape() -> None:
    """What the gate reads is where `pulumi preview --json` puts it (pkg/display/json.go)."""
    for name in ("safe", "replace", "delete"):
        document = fixture(name)
        assert set(document) == {"config", "steps", "duration", "changeSummary"}
        ops = [step["op"] for step in document["steps"]]
        assert sum(document["changeSummary"].get(op, 0) for op in set(ops) - {"same"}) == sum(
            op != "same" for op in ops
        )
        for step in document["steps"]:
            assert step["urn"].startswith("urn:pulumi:prod::petstore-rds::")
            states = [step[k] for k in ("oldState", "newState") if k in step]
            assert states, step["urn"]
            assert all(s["urn"] == step["urn"] for s in states)


@pytest.mark.parametrize("op", DESTRUCTIVE)
@pytest.mark.parametrize("urn", [INSTANCE, KEY, SECRET], ids=["instance", "key", "secret"])
def test_every_destructive_op_on_a_guarded_type_is_blocked(
    gate: ModuleType, op: str, urn: str
) -> None:
    assert [b.urn for b in gate.blocked_steps(one_step(op, urn))] == [urn]


@pytest.mark.parametrize("op", ["same", "create", "update", "read", "refresh", "import"])
def test_ops_that_keep_the_resource_pass(gate: ModuleType, op: str) -> None:
    for urn in (INSTANCE, KEY, SECRET):
        assert gate.blocked_steps(one_step(op, urn)) == []


def test_an_op_the_gate_does_not_know_is_blocked_on_a_guarded_type(gate: ModuleType) -> None:
    assert len(gate.blocked_steps(one_step("obliterate", INSTANCE))) == 1


def test_destructive_ops_on_other_types_pass(gate: ModuleType) -> None:
    for op in DESTRUCTIVE:
        assert gate.blocked_steps(one_step(op, JOB)) == []


def test_type_is_read_from_the_urn_when_the_step_has_no_state(gate: ModuleType) -> None:
    """A step whose states are absent (or blinded) is still classified by its URN."""
    blocked = gate.blocked_steps(one_step("delete", SECRET, with_state=False))

    assert [b.type_ for b in blocked] == ["aws:secretsmanager/secret:Secret"]


def test_allow_lets_exactly_the_reviewed_urn_through() -> None:
    path = str(FIXTURES / "preview_delete.json")

    only_key = run_gate(path, "--allow", KEY)
    both = run_gate(path, "--allow", KEY, "--allow", SECRET)

    assert only_key.returncode == 1
    assert SECRET in only_key.stdout
    assert KEY not in only_key.stdout
    assert both.returncode == 0


def test_reads_the_preview_from_stdin() -> None:
    result = run_gate("-", stdin=json.dumps(fixture("replace")))

    assert result.returncode == 1
    assert INSTANCE in result.stdout


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "Expecting value"),
        ("[]", "expected a JSON object with `steps`"),
        ('{"error": "stack not found"}', "expected a JSON object with `steps`"),
        ('{"steps": [{"urn": "x"}]}', "steps[0] has no `op` and `urn` strings"),
        ('{"steps": {}, "changeSummary": {}}', "`steps` is not a list"),
        ('{"steps": [], "changeSummary": {}, "maybeCorrupt": true}', "maybeCorrupt"),
        ('{"steps": [{"op": "delete", "urn": "garbage"}]}', "unreadable urn"),
    ],
)
def test_anything_but_a_preview_digest_exits_2_and_says_why(text: str, says: str) -> None:
    result = run_gate("-", stdin=text)

    assert result.returncode == 2
    assert "not a pulumi preview --json document" in result.stdout
    assert says in result.stdout


def test_a_preview_without_changes_passes(gate: ModuleType) -> None:
    """`steps` is omitted when empty (omitempty); the change summary still says it is one."""
    assert gate.blocked_steps({"changeSummary": {"same": 42}}) == []
    document = copy.deepcopy(fixture("safe"))
    document["steps"] = [s for s in document["steps"] if s["op"] == "same"]
    assert gate.blocked_steps(document) == []
