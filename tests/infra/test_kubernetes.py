"""Kubernetes wiring: the migration Job (hardened, awaited, re-run when failed) reads its own
Secret; the app's Secret switches to PostgreSQL only after the Job, then the Deployment restarts;
rollback returns the app to SQLite without touching the Job; rendered objects validate against
the Kubernetes API schema."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.support.pulumi_harness import (
    KUBERNETES_VERSION,
    RegisteredResource,
    StackRun,
    run_stack,
    validate_kubernetes,
)

pytestmark = pytest.mark.infra

JOB = "kubernetes:batch/v1:Job"
SECRET = "kubernetes:core/v1:Secret"
PATCH = "kubernetes:apps/v1:DeploymentPatch"
RESTART_ANNOTATION = "petstore-rds/database-cutover"


@pytest.fixture(scope="module", params=["dev", "prod"])
def run(request: pytest.FixtureRequest) -> StackRun:
    return run_stack(request.param)


@pytest.fixture(scope="module")
def prod() -> StackRun:
    return run_stack("prod")


def _job(run: StackRun) -> RegisteredResource:
    return run.one(JOB)


def _container(run: StackRun) -> dict[str, Any]:
    containers = _job(run).inputs["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _app_secret(run: StackRun) -> RegisteredResource:
    return run.one(SECRET, "app-secret")


def _migration_secret(run: StackRun) -> RegisteredResource:
    return run.one(SECRET, "migration-secret")


def _endpoint(run: StackRun) -> tuple[str, int, str]:
    instance = run.one("aws:rds/instance:Instance").outputs
    password = run.one("random:index/randomPassword:RandomPassword").outputs["result"]
    return instance["address"], instance["port"], password


def test_migration_secret_is_a_verify_full_url_built_from_the_instance_outputs(
    run: StackRun,
) -> None:
    host, port, password = _endpoint(run)
    secret = _migration_secret(run).inputs
    namespace = {"dev": "petstore-dev", "prod": "petstore"}[run.stack]

    assert secret["metadata"]["name"] == "petstore-db-migration"
    assert secret["metadata"]["namespace"] == namespace
    assert secret["type"] == "Opaque"
    assert secret["stringData"] == {
        "DATABASE_URL": f"postgresql://petstore_admin:{quote(password, safe='')}@{host}:{port}"
        "/petstore?sslmode=verify-full&sslrootcert=/opt/rds/global-bundle.pem"
    }
    assert host == f"petstore-{run.stack}.abc123xyz.eu-west-1.rds.amazonaws.com"


def test_app_secret_is_built_from_the_instance_outputs(run: StackRun) -> None:
    host, port, password = _endpoint(run)
    secret = _app_secret(run).inputs
    url = f"postgresql://petstore_admin:{quote(password, safe='')}@{host}:{port}/petstore"
    expected_tls = {
        "dev": {"DATABASE_URL": f"{url}?sslmode=require", "DB_SSLMODE": "require"},
        "prod": {
            "DATABASE_URL": f"{url}?sslmode=verify-full&sslrootcert=/etc/ssl/rds/global-bundle.pem",
            "DB_SSLMODE": "verify-full",
            "DB_SSLROOTCERT": "/etc/ssl/rds/global-bundle.pem",
        },
    }[run.stack]

    assert secret["metadata"]["name"] == "petstore-db"
    assert secret["stringData"] == {
        "DB_HOST": host,
        "DB_PORT": "5432",
        "DB_NAME": "petstore",
        "DB_USER": "petstore_admin",
        "DB_PASSWORD": password,
        **expected_tls,
    }


def test_job_runs_the_migration_cli_over_every_configured_source(run: StackRun) -> None:
    container = _container(run)
    sources = {
        "dev": ["--source", "/data/sqlite/petstore.db"],
        "prod": [
            "--source",
            "/data/sqlite/petstore-0.db",
            "--source",
            "/data/sqlite/petstore-1.db",
        ],
    }[run.stack]
    extra = {"dev": [], "prod": ["--on-conflict", "renumber"]}[run.stack]

    assert container["name"] == "migrate"
    assert container["image"] == (
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/petstore-migration:0.1.0"
    )
    assert container["command"] == ["python", "-m", "migration"]
    assert container["args"] == ["run", *sources, "--verify", "--log-format", "json", *extra]


def test_job_env_reads_only_the_migration_secret(run: StackRun) -> None:
    container = _container(run)

    assert container["env"] == [
        {
            "name": "DATABASE_URL",
            "valueFrom": {
                "secretKeyRef": {
                    "name": _migration_secret(run).inputs["metadata"]["name"],
                    "key": "DATABASE_URL",
                }
            },
        },
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]
    assert "envFrom" not in container
    assert not run.depends_on(_job(run), _app_secret(run))


def test_job_is_hardened(run: StackRun) -> None:
    spec = _job(run).inputs["spec"]
    pod = spec["template"]["spec"]
    container = _container(run)

    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert spec["backoffLimit"] == 2
    assert spec["activeDeadlineSeconds"] == 3600
    assert "ttlSecondsAfterFinished" not in spec


def test_job_fails_fast_on_data_problems_and_ignores_evictions(run: StackRun) -> None:
    rules = _job(run).inputs["spec"]["podFailurePolicy"]["rules"]

    assert rules == [
        {
            "action": "FailJob",
            "onExitCodes": {"containerName": "migrate", "operator": "In", "values": [1]},
        },
        {
            "action": "Ignore",
            "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
        },
    ]


def test_job_mounts_the_sqlite_claim_read_only_and_tmp_as_empty_dir(run: StackRun) -> None:
    pod = _job(run).inputs["spec"]["template"]["spec"]

    assert _container(run)["volumeMounts"] == [
        {"name": "sqlite", "mountPath": "/data/sqlite", "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    assert pod["volumes"] == [
        {
            "name": "sqlite",
            "persistentVolumeClaim": {"claimName": "petstore-data", "readOnly": True},
        },
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
    ]


def test_job_is_awaited_and_a_failed_job_is_replaced_next_time(run: StackRun) -> None:
    job = _job(run)
    annotations = job.inputs["metadata"]["annotations"]

    assert annotations == {"pulumi.com/replaceUnready": "true"}
    assert "pulumi.com/skipAwait" not in annotations
    assert job.custom_timeouts == {"create": "70m", "update": "70m"}
    assert job.delete_before_replace is True
    assert job.inputs["metadata"]["name"] == "petstore-migration"


def test_job_carries_the_recommended_labels(run: StackRun) -> None:
    job = _job(run).inputs
    labels = {
        "app.kubernetes.io/name": "petstore-migration",
        "app.kubernetes.io/instance": f"petstore-{run.stack}",
        "app.kubernetes.io/component": "database-migration",
        "app.kubernetes.io/part-of": "petstore",
        "app.kubernetes.io/managed-by": "pulumi",
        "app.kubernetes.io/version": "0.1.0",
    }

    assert job["metadata"]["labels"] == labels
    assert job["spec"]["template"]["metadata"]["labels"] == labels


def test_cutover_order_migration_secret_then_job_then_app_secret(run: StackRun) -> None:
    instance = run.one("aws:rds/instance:Instance")
    migration_secret, job, app_secret = _migration_secret(run), _job(run), _app_secret(run)

    assert run.depends_on(migration_secret, instance)
    assert run.depends_on(job, migration_secret)
    assert run.depends_on(app_secret, job)
    assert job.urn in app_secret.depends_on  # directly, not only through the instance
    assert not run.depends_on(job, app_secret)


def test_prod_restarts_the_deployment_after_the_app_secret(prod: StackRun) -> None:
    patch = prod.one(PATCH)
    app_secret = _app_secret(prod)
    token = app_secret.inputs["metadata"]["annotations"][RESTART_ANNOTATION]

    assert prod.depends_on(patch, app_secret)
    assert patch.inputs["metadata"] == {
        "name": "petstore",
        "namespace": "petstore",
        "annotations": {"pulumi.com/patchForce": "true"},
    }
    assert patch.inputs["spec"] == {
        "template": {"metadata": {"annotations": {RESTART_ANNOTATION: token}}}
    }
    assert token.startswith("postgresql-")


def test_dev_has_no_deployment_to_restart(run: StackRun) -> None:
    if run.stack == "dev":
        assert run.of_type(PATCH) == []
    else:
        assert len(run.of_type(PATCH)) == 1


def test_dev_creates_the_namespace_prod_reuses_it(run: StackRun) -> None:
    namespaces = run.of_type("kubernetes:core/v1:Namespace")
    if run.stack == "prod":
        assert namespaces == []
        return
    (ns,) = namespaces
    assert ns.inputs["metadata"]["name"] == "petstore-dev"
    assert ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/warn"] == "restricted"
    assert run.depends_on(_migration_secret(run), ns)


def test_rollback_points_the_app_back_at_sqlite_and_leaves_the_job_alone(prod: StackRun) -> None:
    rollback = run_stack("prod", {"cutover": False})
    secret = _app_secret(rollback).inputs
    before = prod.one(PATCH).inputs["spec"]["template"]["metadata"]["annotations"]
    after = rollback.one(PATCH).inputs["spec"]["template"]["metadata"]["annotations"]

    assert secret["stringData"] == {"DATABASE_URL": "sqlite:////data/petstore.db"}
    assert after[RESTART_ANNOTATION].startswith("sqlite-")
    assert after != before  # so the pods restart onto SQLite
    assert _job(rollback).inputs == _job(prod).inputs  # no re-run of the migration
    assert rollback.outputs["databaseTarget"] == "sqlite"
    # ... and does not wait for the Job, so a failing migration cannot block it.
    assert not rollback.depends_on(_app_secret(rollback), _job(rollback))
    assert rollback.depends_on(rollback.one(PATCH), _app_secret(rollback))
    assert rollback.one("aws:rds/instance:Instance").inputs == (
        prod.one("aws:rds/instance:Instance").inputs
    )  # the database and its data stay


def test_password_rotation_restarts_the_deployment(prod: StackRun) -> None:
    rotated = run_stack("prod", {"passwordVersion": 2})

    def token(r: StackRun) -> str:
        return str(
            r.one(PATCH).inputs["spec"]["template"]["metadata"]["annotations"][RESTART_ANNOTATION]
        )

    assert token(rotated) != token(prod)
    assert _job(rotated).inputs == _job(prod).inputs


def test_kubeconfig_from_config_goes_to_the_provider_as_a_secret() -> None:
    run = run_stack("dev", {"kubeconfig": "apiVersion: v1\nkind: Config\n"})
    provider = run.one("pulumi:providers:kubernetes")

    assert provider.inputs["kubeconfig"] == "apiVersion: v1\nkind: Config\n"
    assert "kubeconfig" in provider.secret_inputs
    assert provider.inputs["enableSecretMutable"] == "true"
    assert all(
        r.provider and r.provider.startswith(provider.urn)
        for r in run.resources
        if r.custom and r.type_.startswith("kubernetes:")
    )


def test_without_kubeconfig_the_provider_uses_the_ambient_context(run: StackRun) -> None:
    provider = run.one("pulumi:providers:kubernetes")

    assert "kubeconfig" not in provider.inputs


def test_rendered_objects_validate_against_the_kubernetes_schema(run: StackRun) -> None:
    objects = run.kubernetes_objects()
    kinds = sorted(o["kind"] for o in objects)

    assert (
        kinds
        == {"dev": ["Job", "Namespace", "Secret", "Secret"], "prod": ["Job", "Secret", "Secret"]}[
            run.stack
        ]
    )
    assert validate_kubernetes(objects) == []
    assert KUBERNETES_VERSION == "1.33.0"


def test_schema_validation_catches_a_broken_job(run: StackRun) -> None:
    job = dict(_job(run).inputs)
    job["spec"] = {**job["spec"], "backoffLimit": "two"}

    problems = validate_kubernetes([job])
    assert len(problems) == 1
    assert problems[0].startswith("Job/petstore-migration: ")


def test_retiring_the_migration_removes_the_job_and_its_secret_and_keeps_the_cutover(
    prod: StackRun,
) -> None:
    retired = run_stack("prod", {"runMigration": False})

    assert retired.of_type(JOB) == []
    assert [s.inputs["metadata"]["name"] for s in retired.of_type(SECRET)] == ["petstore-db"]
    assert _app_secret(retired).inputs == _app_secret(prod).inputs
    assert retired.one(PATCH).inputs == prod.one(PATCH).inputs  # no restart either
    assert retired.outputs["jobName"] is None
    assert retired.outputs["migrationSecretName"] is None
    assert retired.outputs["databaseTarget"] == "postgresql"
