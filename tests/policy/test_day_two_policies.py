"""The day-two rules, each with a compliant and a failing fixture, through the pack's real
analyzer: images by digest (production), Secrets as mounted files, a NetworkPolicy over every
Job's pods, no master user in an app-facing Secret, explicit KMS key policies, protect in
production; and IAM database authentication no longer required."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from petstore_policy import BASELINE

from tests.policy import resources as r
from tests.policy.analyzer import Analyzer
from tests.support.pulumi_harness import REPO_ROOT

pytestmark = pytest.mark.policy

KMS_KEY = "aws:kms/key:Key"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
POD_LABELS = {"app.kubernetes.io/part-of": "petstore-db-jobs"}


def _job(labels: dict[str, str] | None = None) -> dict[str, Any]:
    job = r.job()
    job["spec"]["template"]["metadata"] = {"labels": dict(labels or POD_LABELS)}
    return job


def _network_policy(selector: dict[str, Any], types: list[str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "petstore-db-jobs", "namespace": "petstore"},
        "spec": {
            "podSelector": selector,
            "policyTypes": types or ["Ingress", "Egress"],
            "egress": [{"ports": [{"protocol": "TCP", "port": 5432}]}],
        },
    }


def _stack_details(stack: str, *resources: tuple[str, str, dict[str, Any]]) -> list[str]:
    return [d.detail for d in Analyzer(stack).analyze_stack(list(resources))]


# --- images by digest (production) ------------------------------------------------------------


def test_an_image_by_digest_passes_and_a_tag_alone_fails_in_prod() -> None:
    tagged = r.job()
    tagged["spec"]["template"]["spec"]["containers"][0]["image"] = "repo/petstore-migration:3f1c2ab"

    assert Analyzer("prod").violations(r.JOB, r.job()) == {}
    assert Analyzer("prod").violations(r.JOB, tagged) == {
        "k8s-image-pinned": [
            (
                "kubernetes:batch/v1:Job 'res': container 'migrate': image "
                "'repo/petstore-migration:3f1c2ab' is pinned by a tag only (a tag can be moved to "
                "other content); pin it by digest (@sha256:...) [baseline: immutable images]"
            )
        ]
    }


# --- Secrets as mounted files -------------------------------------------------------------


def test_a_secret_mounted_as_a_file_passes() -> None:
    job = r.job()
    pod = job["spec"]["template"]["spec"]
    pod["volumes"] = [{"name": "credentials", "secret": {"secretName": "petstore-db-migration"}}]
    pod["containers"][0]["volumeMounts"] = [
        {"name": "credentials", "mountPath": "/var/run/secrets/petstore-db", "readOnly": True}
    ]
    pod["containers"][0]["env"] = [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}]

    assert Analyzer("dev").violations(r.JOB, job) == {}


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        (
            "env",
            [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            "env DATABASE_URL (env[0]) reads a Secret",
        ),
        ("envFrom", [{"secretRef": {"name": "petstore-db"}}], "envFrom[0] loads a whole Secret"),
    ],
)
def test_a_secret_in_the_environment_fails(field: str, value: Any, fragment: str) -> None:
    job = r.job()
    job["spec"]["template"]["spec"]["containers"][0][field] = value

    found = Analyzer("dev").violations(r.JOB, job)

    assert list(found) == ["k8s-secrets-as-files"]
    assert fragment in found["k8s-secrets-as-files"][0]


def test_a_config_map_in_the_environment_is_fine() -> None:
    job = r.job()
    job["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "c"}}]

    assert Analyzer("dev").violations(r.JOB, job) == {}


# --- a NetworkPolicy for every Job's pods -------------------------------------------------


def test_a_job_selected_by_an_egress_network_policy_passes() -> None:
    assert (
        _stack_details(
            "dev",
            (r.JOB, "job", _job()),
            (NETWORK_POLICY, "np", _network_policy({"matchLabels": POD_LABELS})),
        )
        == []
    )


@pytest.mark.parametrize(
    "policies",
    [
        [],  # none at all
        [(NETWORK_POLICY, "np", _network_policy({"matchLabels": {"app": "other"}}))],
        [(NETWORK_POLICY, "np", _network_policy({"matchLabels": POD_LABELS}, ["Ingress"]))],
        [
            (
                NETWORK_POLICY,
                "np",
                {
                    **_network_policy({"matchLabels": POD_LABELS}),
                    "metadata": {"name": "np", "namespace": "elsewhere"},
                },
            )
        ],
    ],
    ids=["none", "other-pods", "ingress-only", "other-namespace"],
)
def test_a_job_without_an_egress_network_policy_fails(
    policies: list[tuple[str, str, dict[str, Any]]],
) -> None:
    details = _stack_details("dev", (r.JOB, "job", _job()), *policies)

    assert details == [
        (
            "kubernetes:batch/v1:Job 'job': no NetworkPolicy with an Egress rule selects its pods "
            "(spec.template.metadata.labels); limit them to DNS and the database port "
            "[baseline: egress control]"
        )
    ]


# --- no master user in an app Secret ------------------------------------------------------


def _app_secret(data: dict[str, str], component: str = "database-credentials") -> dict[str, Any]:
    secret = r.k8s_secret()
    secret["metadata"]["labels"] = {"app.kubernetes.io/component": component}
    secret["stringData"] = data
    return secret


INSTANCE = (r.RDS_INSTANCE, "db", r.prod_rds_instance())  # username petstore_admin
EVENTS = (r.EVENT_SUBSCRIPTION, "events", r.event_subscription())


def test_an_app_secret_with_an_app_login_passes() -> None:
    secret = _app_secret(
        {
            "DATABASE_URL": "postgresql://petstore_app_a:pw@h:5432/petstore",
            "DB_USER": "petstore_app_a",
        }
    )

    assert _stack_details("prod", INSTANCE, EVENTS, (r.K8S_SECRET, "app", secret)) == []


def test_the_roles_secret_may_hold_the_master_login() -> None:
    spec = json.dumps({"admin_url": "postgresql://petstore_admin:pw@h:5432/petstore"})
    secret = _app_secret({"roles.json": spec}, component="database-roles")

    assert _stack_details("prod", INSTANCE, EVENTS, (r.K8S_SECRET, "roles", secret)) == []


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        (_app_secret({"DB_USER": "petstore_admin"}), "DB_USER is 'petstore_admin'"),
        (
            _app_secret({"DATABASE_URL": "postgresql://petstore_admin:pw@h/petstore"}),
            "a connection string logs in as 'petstore_admin'",
        ),
        (
            {
                **r.k8s_secret(),
                "data": {
                    "DATABASE_URL": base64.b64encode(b"postgresql://petstore_admin@h/d").decode()
                },
            },
            "a connection string logs in as 'petstore_admin'",
        ),
    ],
    ids=["db-user", "url", "base64-data"],
)
def test_an_app_secret_with_the_master_user_fails(secret: dict[str, Any], fragment: str) -> None:
    details = _stack_details("prod", INSTANCE, EVENTS, (r.K8S_SECRET, "app", secret))

    assert len(details) == 1
    assert details[0].startswith(
        f"kubernetes:core/v1:Secret 'app': {fragment}, the RDS master user"
    )
    assert details[0].endswith("[baseline: least privilege]")


# --- explicit KMS key policies ------------------------------------------------------------


def test_a_key_with_an_explicit_policy_passes_and_one_without_fails() -> None:
    key = {"description": "db", "enableKeyRotation": True, "policy": '{"Version": "2012-10-17"}'}
    bare = {"description": "db", "enableKeyRotation": True}

    assert Analyzer("dev").violations(KMS_KEY, key) == {}
    assert Analyzer("dev").violations(KMS_KEY, bare) == {
        "kms-explicit-key-policy": [
            (
                "aws:kms/key:Key 'res': policy is unset, so AWS applies its default key policy; "
                "state who administers and who may use the key (and under which conditions) "
                "explicitly [baseline: key control]"
            )
        ]
    }


# --- protect in production ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "props"),
    [
        (r.RDS_INSTANCE, r.prod_rds_instance()),
        (r.SECRET, r.prod_secret()),
        (KMS_KEY, {"description": "db", "policy": "{}"}),
    ],
    ids=["instance", "secret", "key"],
)
def test_protect_is_required_in_prod_only(type_: str, props: dict[str, Any]) -> None:
    assert Analyzer("prod").violations(type_, props, protect=True) == {}
    found = Analyzer("prod").violations(type_, props, protect=False)
    assert list(found) == ["protect-stateful-resources"]
    assert "the protect resource option is off" in found["protect-stateful-resources"][0]
    dev_props = {**props, "tags": r.tags("dev")}
    assert "protect-stateful-resources" not in Analyzer("dev").violations(
        type_, dev_props, protect=False
    )


# --- IAM database authentication: not required, with the reason ---------------------------


def test_iam_authentication_is_not_required_and_the_docs_say_why() -> None:
    instance = r.prod_rds_instance()
    instance["iamDatabaseAuthenticationEnabled"] = False
    architecture = (REPO_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")

    assert Analyzer("prod").violations(r.RDS_INSTANCE, instance) == {}
    assert not [s for s in BASELINE if "RDS.10" in s.control]
    assert "**Why not IAM database authentication.**" in architecture
