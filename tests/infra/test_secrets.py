"""Every password stays secret end to end: every input that carries it (or anything built from
it) is a secret on the wire, its outputs come back secret, and no stack output or non-secret
input contains it in any form. The master password reaches only the instance (write-only), the
Secrets Manager secret and the roles Secret, never the app's or the migration's Secret."""

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


PASSWORD = "random:index/randomPassword:RandomPassword"


def _password(run: StackRun, which: str = "master-password") -> str:
    return str(run.one(PASSWORD, which).outputs["result"])


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
    passwords = run.of_type(PASSWORD)

    assert len(passwords) == 4
    for pw in passwords:
        assert pw.secret_outputs >= {"result", "bcryptHash"}
        assert len(pw.outputs["result"]) == 32
    assert len({pw.outputs["result"] for pw in passwords}) == 4


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
        "aws:rds/instance:Instance": ["passwordWo"],
        "aws:secretsmanager/secretVersion:SecretVersion": ["secretString"],
        "kubernetes:core/v1:Secret": ["stringData.roles.json"],  # the roles Secret only
    }


@pytest.mark.parametrize(
    ("which", "expected"),
    [
        ("owner", ["stringData.roles.json", "stringData.target-url"]),
        ("petstore_app_a", ["stringData.roles.json"]),  # before cutover: not yet in the app's
        ("petstore_app_b", ["stringData.roles.json"]),
    ],
)
def test_every_input_holding_a_role_password_is_secret(
    run: StackRun, which: str, expected: list[str]
) -> None:
    password = _password(run, which)
    holders = []
    for res in run.resources:
        for path, value in _leaves(res.inputs):
            if any(form in value for form in _forms(password)):
                assert _covered(path, res.secret_inputs), f"{res.name}.{path} is not secret"
                holders.append(path)
    assert sorted(holders) == expected


def test_every_output_the_program_sees_holding_the_password_is_secret(run: StackRun) -> None:
    password = _password(run)
    holders = []
    for res in run.resources:
        for attr, value in res.attributes.items():
            if any(form in json.dumps(value, default=str) for form in _forms(password)):
                assert attr in res.secret_attributes, f"{res.name}.{attr} is not a secret Output"
                holders.append((res.type_, attr))

    assert sorted(holders) == [
        # The mocks echo every input; the real provider keeps no value of a write-only input.
        ("aws:rds/instance:Instance", "password_wo"),
        ("aws:secretsmanager/secretVersion:SecretVersion", "secret_string"),
        ("kubernetes:core/v1:Secret", "string_data"),  # the roles Secret
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
        f"petstore-{stack}-instance": ["passwordWo"],
        f"petstore-{stack}-credentials-version": ["secretString"],
        f"petstore-{stack}-k8s-roles-secret": ["data", "stringData"],
        f"petstore-{stack}-k8s-migration-secret": ["data", "stringData"],
        f"petstore-{stack}-k8s-app-secret": ["data", "stringData"],
    }


def test_no_stack_output_contains_the_password(run: StackRun) -> None:
    exported = json.dumps(run.outputs)

    assert run.outputs  # the exports were resolved
    for pw in run.of_type(PASSWORD):
        assert not any(form in exported for form in _forms(pw.outputs["result"]))
    assert run.secret_outputs == frozenset()  # nothing secret is exported at all


def test_rotation_changes_the_password_everywhere_at_once() -> None:
    before = run_stack("dev")
    after = run_stack("dev", {"passwordVersion": 2})
    old, new = _password(before), _password(after)

    assert old != new
    holders = [
        after.one("aws:rds/instance:Instance"),
        after.one("aws:secretsmanager/secretVersion:SecretVersion"),
        after.one("kubernetes:core/v1:Secret", "roles-secret"),
    ]
    for res in holders:
        text = json.dumps(res.inputs)
        assert new in text, res.name
        assert old not in text, res.name
    assert after.one("aws:rds/instance:Instance").inputs["passwordWoVersion"] == 2
