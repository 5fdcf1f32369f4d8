"""The master password stays secret end to end: every input that carries it (or anything built
from it) is a secret on the wire, its outputs come back secret, and no stack output or
non-secret input contains it in any form."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.pulumi_harness import RegisteredResource, StackRun, run_stack

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module", params=["dev", "prod"])
def run(request: pytest.FixtureRequest) -> StackRun:
    return run_stack(request.param)


def _password(run: StackRun) -> str:
    return str(run.one("random:index/randomPassword:RandomPassword").outputs["result"])


def _leaves(value: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, f"{path}[{i}]")]
    return [(path, value)] if isinstance(value, str) else []


def _covered(path: str, secret_paths: frozenset[str]) -> bool:
    return any(path == s or path.startswith((s + ".", s + "[")) for s in secret_paths)


def _forms(password: str) -> list[str]:
    return [password, quote(password, safe=""), json.dumps(password)[1:-1]]


def test_the_password_is_generated_secret(run: StackRun) -> None:
    pw = run.one("random:index/randomPassword:RandomPassword")

    assert pw.secret_outputs >= {"result", "bcryptHash"}
    assert len(_password(run)) == 32


def test_every_input_holding_the_password_is_secret(run: StackRun) -> None:
    password = _password(run)
    holders: dict[str, list[str]] = {}
    for res in run.resources:
        for path, value in _leaves(res.inputs):
            if any(form in value for form in _forms(password)):
                assert _covered(path, res.secret_inputs), f"{res.name}.{path} is not secret"
                holders.setdefault(res.type_, []).append(path)
    holders = {k: sorted(v) for k, v in holders.items()}

    assert holders == {
        "aws:rds/instance:Instance": ["password"],
        "aws:secretsmanager/secretVersion:SecretVersion": ["secretString"],
        "kubernetes:core/v1:Secret": [
            "stringData.DATABASE_URL",  # the migration Secret
            "stringData.DATABASE_URL",  # the app's Secret
            "stringData.DB_PASSWORD",
        ],
    }


def test_every_output_the_program_sees_holding_the_password_is_secret(run: StackRun) -> None:
    password = _password(run)
    holders = []
    for res in run.resources:
        for attr, value in res.attributes.items():
            if any(form in json.dumps(value, default=str) for form in _forms(password)):
                assert attr in res.secret_attributes, f"{res.name}.{attr} is not a secret Output"
                holders.append((res.type_, attr))

    assert sorted(holders) == [
        ("aws:rds/instance:Instance", "password"),
        ("aws:secretsmanager/secretVersion:SecretVersion", "secret_string"),
        ("kubernetes:core/v1:Secret", "string_data"),
        ("kubernetes:core/v1:Secret", "string_data"),
        ("petstore-rds:credentials:MasterPassword", "result"),
        ("random:index/randomPassword:RandomPassword", "result"),
    ]


def test_kubernetes_secrets_stored_data_is_secret_too(run: StackRun) -> None:
    for secret in run.of_type("kubernetes:core/v1:Secret"):
        assert {"data", "string_data"} <= secret.secret_attributes, secret.name
        assert secret.attributes["data"]  # the mocked API server filled it


def _secret_holders(run: StackRun) -> list[RegisteredResource]:
    return [
        run.one("aws:rds/instance:Instance"),
        run.one("aws:secretsmanager/secretVersion:SecretVersion"),
        *run.of_type("kubernetes:core/v1:Secret"),
    ]


def test_outputs_derived_from_the_password_come_back_secret(run: StackRun) -> None:
    secret_outputs = {r.name: sorted(r.secret_outputs) for r in _secret_holders(run)}

    stack = run.stack
    assert secret_outputs == {
        f"petstore-{stack}-instance": ["password"],
        f"petstore-{stack}-credentials-version": ["secretString"],
        f"petstore-{stack}-k8s-migration-secret": ["data", "stringData"],
        f"petstore-{stack}-k8s-app-secret": ["data", "stringData"],
    }


def test_no_stack_output_contains_the_password(run: StackRun) -> None:
    exported = json.dumps(run.outputs)

    assert run.outputs  # the exports were resolved
    assert not any(form in exported for form in _forms(_password(run)))
    assert run.secret_outputs == frozenset()  # nothing secret is exported at all


def test_rotation_changes_the_password_everywhere_at_once() -> None:
    before = run_stack("dev")
    after = run_stack("dev", {"passwordVersion": 2})
    old, new = _password(before), _password(after)

    assert old != new
    for res in _secret_holders(after):
        text = json.dumps(res.inputs)
        assert new in text, res.name
        assert old not in text, res.name
