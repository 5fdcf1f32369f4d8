"""Kubernetes wiring under mocks with the real stack files: the provider pinned to the
environment's cluster; the roles Job (the only reader of the master login) and the migration
Job (named after migrationRevision, credentials as a mounted file, hardened, egress limited by a
NetworkPolicy); the app's Secret switching to an app login only after both; rotation, rollback,
retirement; a new image alone never changes a Job; objects valid against the API schema."""

from __future__ import annotations

import copy
import json
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
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PASSWORD = "random:index/randomPassword:RandomPassword"
RESTART_ANNOTATION = "petstore-rds/database-cutover"
DIGEST = "sha256:4f6c1a9e2b7d3c5e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a"
IMAGE = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/petstore-migration@{DIGEST}"
CUTOVER = {"cutover": True}


@pytest.fixture(scope="module", params=["dev", "prod"])
def run(request: pytest.FixtureRequest) -> StackRun:
    return run_stack(request.param)


@pytest.fixture(scope="module", params=["dev", "prod"])
def cut(request: pytest.FixtureRequest) -> StackRun:
    """The stack after the cutover (runbook step 7)."""
    return run_stack(request.param, CUTOVER)


def _migration_job(run: StackRun) -> RegisteredResource:
    return run.one(JOB, "migration-job")


def _roles_job(run: StackRun) -> RegisteredResource:
    return run.one(JOB, "roles-job")


def _pod(job: RegisteredResource) -> dict[str, Any]:
    return dict(job.inputs["spec"]["template"]["spec"])


def _container(job: RegisteredResource) -> dict[str, Any]:
    containers = _pod(job)["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _password(run: StackRun, which: str) -> str:
    return str(run.one(PASSWORD, which).outputs["result"])


def _host(run: StackRun) -> tuple[str, int]:
    instance = run.one("aws:rds/instance:Instance").outputs
    return instance["address"], instance["port"]


def _namespace(run: StackRun) -> str:
    return {"dev": "petstore-dev", "prod": "petstore"}[run.stack]


def test_provider_is_pinned_to_the_environments_cluster_context(run: StackRun) -> None:
    provider = run.one("pulumi:providers:kubernetes")

    assert provider.inputs["context"] == (
        f"arn:aws:eks:eu-west-1:123456789012:cluster/petstore-{run.stack}"
    )
    assert "kubeconfig" not in provider.inputs
    assert provider.inputs["enableSecretMutable"] == "true"
    assert all(
        r.provider and r.provider.startswith(provider.urn)
        for r in run.resources
        if r.custom and r.type_.startswith("kubernetes:")
    )


def test_kubeconfig_from_config_goes_to_the_provider_as_a_secret_with_the_context() -> None:
    run = run_stack("dev", {"kubeconfig": "apiVersion: v1\nkind: Config\n"})
    provider = run.one("pulumi:providers:kubernetes")

    assert provider.inputs["kubeconfig"] == "apiVersion: v1\nkind: Config\n"
    assert "kubeconfig" in provider.secret_inputs
    assert provider.inputs["context"].endswith("cluster/petstore-dev")


def test_migration_secret_holds_the_owner_login_never_the_master(run: StackRun) -> None:
    host, port = _host(run)
    secret = run.one(SECRET, "migration-secret").inputs
    owner = quote(_password(run, "owner"), safe="")

    assert secret["metadata"]["name"] == "petstore-db-migration"
    assert secret["metadata"]["namespace"] == _namespace(run)
    assert secret["stringData"] == {
        "target-url": f"postgresql://petstore_owner:{owner}@{host}:{port}/petstore"
        "?sslmode=verify-full&sslrootcert=/opt/rds/global-bundle.pem"
    }
    assert _password(run, "master-password") not in str(secret)


def test_roles_secret_is_the_only_kubernetes_object_with_the_master_login(run: StackRun) -> None:
    host, port = _host(run)
    spec = json.loads(run.one(SECRET, "roles-secret").inputs["stringData"]["roles.json"])
    master = _password(run, "master-password")

    assert spec["admin_url"] == (
        f"postgresql://petstore_admin:{quote(master, safe='')}@{host}:{port}/petstore"
        "?sslmode=verify-full&sslrootcert=/opt/rds/global-bundle.pem"
    )
    assert spec["owner"] == {"name": "petstore_owner", "password": _password(run, "owner")}
    assert spec["app_users"] == [
        {"name": "petstore_app_a", "password": _password(run, "petstore_app_a")},
        {"name": "petstore_app_b", "password": _password(run, "petstore_app_b")},
    ]
    holders = [
        r.name
        for r in run.resources
        if r.type_.startswith("kubernetes:") and master in str(r.inputs)
    ]
    assert holders == [f"petstore-{run.stack}-k8s-roles-secret"]


def test_before_cutover_the_app_secret_points_at_sqlite(run: StackRun) -> None:
    secret = run.one(SECRET, "app-secret").inputs

    assert secret["stringData"] == {"DATABASE_URL": "sqlite:////data/petstore.db"}
    assert run.outputs["databaseTarget"] == "sqlite"


def test_after_cutover_the_app_secret_holds_an_app_login_never_the_master(cut: StackRun) -> None:
    host, port = _host(cut)
    secret = cut.one(SECRET, "app-secret").inputs
    password = _password(cut, "petstore_app_a")
    url = f"postgresql://petstore_app_a:{quote(password, safe='')}@{host}:{port}/petstore"
    expected_tls = {
        "dev": {"DATABASE_URL": f"{url}?sslmode=require", "DB_SSLMODE": "require"},
        "prod": {
            "DATABASE_URL": f"{url}?sslmode=verify-full&sslrootcert=/etc/ssl/rds/global-bundle.pem",
            "DB_SSLMODE": "verify-full",
            "DB_SSLROOTCERT": "/etc/ssl/rds/global-bundle.pem",
        },
    }[cut.stack]

    assert secret["metadata"]["name"] == "petstore-db"
    assert secret["stringData"] == {
        "DB_HOST": host,
        "DB_PORT": "5432",
        "DB_NAME": "petstore",
        "DB_USER": "petstore_app_a",
        "DB_PASSWORD": password,
        **expected_tls,
    }
    text = str(secret)
    assert "petstore_admin" not in text
    assert _password(cut, "master-password") not in text
    assert _password(cut, "owner") not in text
    assert cut.outputs["databaseTarget"] == "postgresql"


def test_migration_job_runs_the_cli_with_the_target_from_the_mounted_file(run: StackRun) -> None:
    container = _container(_migration_job(run))
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
    assert container["image"] == IMAGE
    assert container["command"] == ["python", "-m", "migration"]
    assert container["args"] == [
        "run",
        *sources,
        "--target-file",
        "/var/run/secrets/petstore-db/target-url",
        "--verify",
        "--source-immutable",
        "--log-format",
        "json",
        *extra,
    ]
    assert container["env"] == [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}]
    assert "envFrom" not in container


def test_jobs_mount_their_own_secret_read_only_and_no_job_reads_the_apps(run: StackRun) -> None:
    for job, secret_name in (
        (_migration_job(run), "petstore-db-migration"),
        (_roles_job(run), "petstore-db-roles"),
    ):
        pod = _pod(job)
        credentials = [v for v in pod["volumes"] if v["name"] == "credentials"]
        assert credentials == [
            {"name": "credentials", "secret": {"secretName": secret_name, "defaultMode": 0o400}}
        ]
        mounts = _container(job)["volumeMounts"]
        assert {
            "name": "credentials",
            "mountPath": "/var/run/secrets/petstore-db",
            "readOnly": True,
        } in mounts
        secret_refs = [v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v]
        assert secret_refs == [secret_name]  # never the app's Secret
    app_secret = run.one(SECRET, "app-secret")
    assert not run.depends_on(_migration_job(run), app_secret)
    assert not run.depends_on(_roles_job(run), app_secret)


def test_roles_job_converges_the_roles_with_the_migration_image(run: StackRun) -> None:
    container = _container(_roles_job(run))

    assert container["image"] == IMAGE
    assert container["command"] == [
        "python",
        "-m",
        "migration.roles",
        "--spec-file",
        "/var/run/secrets/petstore-db/roles.json",
    ]
    assert "args" not in container
    assert _roles_job(run).inputs["spec"]["activeDeadlineSeconds"] == 600


HARDENED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def test_both_jobs_are_hardened(run: StackRun) -> None:
    for job in (_migration_job(run), _roles_job(run)):
        pod = _pod(job)
        container = _container(job)
        assert pod["restartPolicy"] == "Never"
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert container["securityContext"] == HARDENED_CONTAINER
        assert container["resources"] == {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        }
        assert job.inputs["spec"]["backoffLimit"] == 2
        assert "ttlSecondsAfterFinished" not in job.inputs["spec"]
    assert _migration_job(run).inputs["spec"]["activeDeadlineSeconds"] == 3600


def test_jobs_fail_fast_on_data_problems_and_ignore_evictions(run: StackRun) -> None:
    for job, container in ((_migration_job(run), "migrate"), (_roles_job(run), "roles")):
        assert job.inputs["spec"]["podFailurePolicy"]["rules"] == [
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": container, "operator": "In", "values": [1]},
            },
            {
                "action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            },
        ]


def test_migration_job_mounts_the_sqlite_claim_read_only_and_tmp_as_empty_dir(
    run: StackRun,
) -> None:
    pod = _pod(_migration_job(run))

    assert _container(_migration_job(run))["volumeMounts"] == [
        {"name": "sqlite", "mountPath": "/data/sqlite", "readOnly": True},
        {"name": "credentials", "mountPath": "/var/run/secrets/petstore-db", "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    assert pod["volumes"] == [
        {
            "name": "sqlite",
            "persistentVolumeClaim": {"claimName": "petstore-data", "readOnly": True},
        },
        {
            "name": "credentials",
            "secret": {"secretName": "petstore-db-migration", "defaultMode": 0o400},
        },
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
    ]
    assert "initContainers" not in pod  # no appSchemaCommand configured


def test_jobs_are_awaited_named_by_identity_and_ignore_spec_changes(run: StackRun) -> None:
    migration, roles = _migration_job(run), _roles_job(run)

    assert migration.inputs["metadata"]["name"] == "petstore-migration-cutover-1"
    assert roles.inputs["metadata"]["name"].startswith("petstore-db-roles-")
    for job in (migration, roles):
        annotations = job.inputs["metadata"]["annotations"]
        assert annotations == {"pulumi.com/replaceUnready": "true"}
        assert job.custom_timeouts == {"create": "70m", "update": "70m"}
        assert job.delete_before_replace is True
        assert job.ignore_changes == ("spec",)
        assert job.replace_on_changes == ()


def test_migration_job_labels_carry_the_revision_not_the_image(run: StackRun) -> None:
    job = _migration_job(run).inputs
    labels = {
        "app.kubernetes.io/name": "petstore-migration",
        "app.kubernetes.io/instance": f"petstore-{run.stack}",
        "app.kubernetes.io/component": "database-migration",
        "app.kubernetes.io/part-of": "petstore-db-jobs",
        "app.kubernetes.io/managed-by": "pulumi",
        "petstore-rds/migration-revision": "cutover-1",
    }

    assert job["metadata"]["labels"] == labels
    assert job["spec"]["template"]["metadata"]["labels"] == labels


def _apply_ignore_changes(
    old: dict[str, Any], new: dict[str, Any], paths: tuple[str, ...]
) -> dict[str, Any]:
    """What the engine diffs: the new inputs with every ignored top-level path taken from the
    old inputs (Pulumi's ignoreChanges)."""
    merged = copy.deepcopy(new)
    for path in paths:
        assert "." not in path, path  # only top-level paths are used here
        assert "[" not in path, path
        if path in old:
            merged[path] = copy.deepcopy(old[path])
    return merged


NEW_IMAGES = [
    f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/petstore-migration@sha256:{i:064x}"
    for i in range(1, 11)
]


def test_a_new_image_alone_leaves_both_jobs_identical(run: StackRun) -> None:
    again = run_stack(run.stack, {"migrationImage": NEW_IMAGES[0]})
    for which in ("migration-job", "roles-job"):
        before, after = run.one(JOB, which), again.one(JOB, which)

        assert _container(after)["image"] == NEW_IMAGES[0]  # the program sees the new image...
        # ...but nothing that triggers a replacement or an update differs:
        assert after.inputs["metadata"] == before.inputs["metadata"]
        assert after.ignore_changes == ("spec",)
        assert _apply_ignore_changes(before.inputs, after.inputs, after.ignore_changes) == (
            before.inputs
        )
        assert after.urn == before.urn


def test_the_state_after_cutover_survives_ten_deploys_of_new_images() -> None:
    first = run_stack("prod", {**CUTOVER})
    job, roles = first.one(JOB, "migration-job"), first.one(JOB, "roles-job")
    app = first.one(SECRET, "app-secret").inputs
    restart = first.one(PATCH).inputs
    for image in NEW_IMAGES:
        deploy = run_stack("prod", {**CUTOVER, "migrationImage": image})
        for before in (job, roles):
            after = deploy.one(JOB, before.name.rsplit("k8s-", 1)[1])
            assert after.inputs["metadata"] == before.inputs["metadata"]
            assert _apply_ignore_changes(before.inputs, after.inputs, after.ignore_changes) == (
                before.inputs
            )
        assert deploy.one(SECRET, "app-secret").inputs == app
        assert (
            deploy.one(SECRET, "app-secret")
            .inputs["stringData"]["DATABASE_URL"]
            .startswith("postgresql://petstore_app_a:")
        )
        assert deploy.one(PATCH).inputs == restart  # no restart either
        assert deploy.outputs["databaseTarget"] == "postgresql"


def test_a_new_revision_replaces_the_migration_job_and_only_it(run: StackRun) -> None:
    again = run_stack(run.stack, {"migrationRevision": "cutover-2"})

    assert _migration_job(again).inputs["metadata"]["name"] == "petstore-migration-cutover-2"
    assert _roles_job(again).inputs == _roles_job(run).inputs


def test_cutover_order_roles_then_migration_then_app_secret(cut: StackRun) -> None:
    instance = cut.one("aws:rds/instance:Instance")
    roles_secret, roles_job = cut.one(SECRET, "roles-secret"), _roles_job(cut)
    migration_secret, job = cut.one(SECRET, "migration-secret"), _migration_job(cut)
    app_secret = cut.one(SECRET, "app-secret")
    policy = cut.one(POLICY)

    assert cut.depends_on(roles_secret, instance)
    assert cut.depends_on(roles_secret, policy)  # no Job pod before its egress is limited
    assert cut.depends_on(roles_job, roles_secret)
    assert cut.depends_on(migration_secret, roles_job)
    assert cut.depends_on(job, migration_secret)
    assert {job.urn, roles_job.urn} <= set(app_secret.depends_on)
    assert not cut.depends_on(job, app_secret)


def test_prod_restarts_the_deployment_after_the_app_secret() -> None:
    prod = run_stack("prod", CUTOVER)
    patch = prod.one(PATCH)
    app_secret = prod.one(SECRET, "app-secret")
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
    assert len(run.of_type(PATCH)) == {"dev": 0, "prod": 1}[run.stack]


def test_dev_creates_the_namespace_prod_reuses_it(run: StackRun) -> None:
    namespaces = run.of_type("kubernetes:core/v1:Namespace")
    if run.stack == "prod":
        assert namespaces == []
        return
    (ns,) = namespaces
    assert ns.inputs["metadata"]["name"] == "petstore-dev"
    assert ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/warn"] == "restricted"
    assert run.depends_on(run.one(SECRET, "migration-secret"), ns)
    assert run.depends_on(run.one(POLICY), ns)


def test_network_policy_limits_every_job_pod_to_dns_and_the_database_port(run: StackRun) -> None:
    policy = run.one(POLICY).inputs
    selector = policy["spec"]["podSelector"]["matchLabels"]

    assert policy["metadata"]["namespace"] == _namespace(run)
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["ingress"] == []
    assert policy["spec"]["egress"] == [
        {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
        {"ports": [{"protocol": "TCP", "port": 5432}]},
    ]
    for job in (_migration_job(run), _roles_job(run)):
        labels = job.inputs["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), job.name
    # ...and not the app's pods: nothing else carries the Jobs' part-of label.
    assert selector["app.kubernetes.io/part-of"] == "petstore-db-jobs"


def test_network_policy_follows_the_database_port() -> None:
    run = run_stack("dev", {"dbPort": 6432})

    assert run.one(POLICY).inputs["spec"]["egress"][1] == {
        "ports": [{"protocol": "TCP", "port": 6432}]
    }


def test_rollback_points_the_app_back_at_sqlite_and_leaves_the_jobs_alone() -> None:
    cut, rollback = run_stack("prod", CUTOVER), run_stack("prod", {"cutover": False})
    secret = rollback.one(SECRET, "app-secret").inputs
    before = cut.one(PATCH).inputs["spec"]["template"]["metadata"]["annotations"]
    after = rollback.one(PATCH).inputs["spec"]["template"]["metadata"]["annotations"]

    assert secret["stringData"] == {"DATABASE_URL": "sqlite:////data/petstore.db"}
    assert after[RESTART_ANNOTATION].startswith("sqlite-")
    assert after != before  # so the pods restart onto SQLite
    assert _migration_job(rollback).inputs == _migration_job(cut).inputs
    assert _roles_job(rollback).inputs == _roles_job(cut).inputs
    assert rollback.outputs["databaseTarget"] == "sqlite"
    # ...and does not wait for the Jobs, so a failing Job cannot block it.
    assert rollback.one(SECRET, "app-secret").depends_on == ()
    assert rollback.one("aws:rds/instance:Instance").inputs == (
        cut.one("aws:rds/instance:Instance").inputs
    )  # the database and its data stay


def test_app_rotation_switches_the_secret_to_the_other_login_after_its_new_password() -> None:
    """Across two rotations the Secret alternates logins; each bump changes only the password
    of the login the app is about to use, so pods still on the previous login keep working."""
    runs = [run_stack("prod", {**CUTOVER, "appPasswordVersion": v}) for v in (1, 2, 3)]
    users = [r.one(SECRET, "app-secret").inputs["stringData"]["DB_USER"] for r in runs]
    a = [_password(r, "petstore_app_a") for r in runs]
    b = [_password(r, "petstore_app_b") for r in runs]

    assert users == ["petstore_app_a", "petstore_app_b", "petstore_app_a"]
    assert a[0] == a[1] != a[2]  # a untouched while the app moves to b, rotated for the way back
    assert b[0] != b[1] == b[2]
    for r, user, pw in zip(runs, users, (a[0], b[1], a[2]), strict=True):
        data = r.one(SECRET, "app-secret").inputs["stringData"]
        assert (data["DB_USER"], data["DB_PASSWORD"]) == (user, pw)
        assert data["DATABASE_URL"].startswith(f"postgresql://{user}:{quote(pw, safe='')}@")
        assert r.depends_on(r.one(SECRET, "app-secret"), _roles_job(r))
    roles_names = {_roles_job(r).inputs["metadata"]["name"] for r in runs}
    assert len(roles_names) == 3  # the roles Job runs again at each rotation
    tokens = {
        r.one(PATCH).inputs["spec"]["template"]["metadata"]["annotations"][RESTART_ANNOTATION]
        for r in runs
    }
    assert len(tokens) == 3  # and the pods roll each time
    assert len({_migration_job(r).inputs["metadata"]["name"] for r in runs}) == 1


def test_master_rotation_reruns_the_roles_job_and_leaves_the_app_alone() -> None:
    before, after = run_stack("prod", CUTOVER), run_stack("prod", {**CUTOVER, "passwordVersion": 2})

    assert (
        _roles_job(after).inputs["metadata"]["name"]
        != _roles_job(before).inputs["metadata"]["name"]
    )
    assert after.one(SECRET, "app-secret").inputs == before.one(SECRET, "app-secret").inputs
    assert after.one(PATCH).inputs == before.one(PATCH).inputs


def test_app_schema_command_runs_first_in_the_apps_image_with_the_same_hardening() -> None:
    app_image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/petstore@sha256:" + "c" * 64
    run = run_stack(
        "prod", {"appImage": app_image, "appSchemaCommand": ["alembic", "upgrade", "head"]}
    )
    pod = _pod(_migration_job(run))
    (init,) = pod["initContainers"]
    host, port = _host(run)
    owner = quote(_password(run, "owner"), safe="")

    assert init["name"] == "app-schema"
    assert init["image"] == app_image
    assert init["command"] == [
        "/bin/sh",
        "-c",
        'DATABASE_URL="$(cat "$DATABASE_URL_FILE")" && export DATABASE_URL && exec "$@"',
        "app-schema",
        "alembic",
        "upgrade",
        "head",
    ]
    assert init["env"] == [
        {"name": "DATABASE_URL_FILE", "value": "/var/run/secrets/petstore-db/app-schema-url"}
    ]
    assert init["securityContext"] == HARDENED_CONTAINER
    assert _container(_migration_job(run))["args"][-2:] == ["--schema", "existing"]
    assert init["resources"] == _container(_migration_job(run))["resources"]
    assert {
        "name": "credentials",
        "mountPath": "/var/run/secrets/petstore-db",
        "readOnly": True,
    } in init["volumeMounts"]
    assert run.one(SECRET, "migration-secret").inputs["stringData"]["app-schema-url"] == (
        f"postgresql://petstore_owner:{owner}@{host}:{port}/petstore"
        "?sslmode=verify-full&sslrootcert=/etc/ssl/rds/global-bundle.pem"
    )
    assert validate_kubernetes([_migration_job(run).inputs]) == []


def test_rendered_objects_validate_against_the_kubernetes_schema(run: StackRun) -> None:
    objects = run.kubernetes_objects()
    kinds = sorted(o["kind"] for o in objects)

    base = ["Job", "Job", "NetworkPolicy", "Secret", "Secret", "Secret"]
    assert kinds == {"dev": sorted([*base, "Namespace"]), "prod": base}[run.stack]
    assert validate_kubernetes(objects) == []
    assert KUBERNETES_VERSION == "1.33.0"


def test_schema_validation_catches_a_broken_job(run: StackRun) -> None:
    job = dict(_migration_job(run).inputs)
    job["spec"] = {**job["spec"], "backoffLimit": "two"}

    problems = validate_kubernetes([job])
    assert len(problems) == 1
    assert problems[0].startswith("Job/petstore-migration-cutover-1: ")


def test_retiring_the_migration_removes_its_job_and_secret_and_keeps_the_rest() -> None:
    cut = run_stack("prod", CUTOVER)
    retired = run_stack("prod", {**CUTOVER, "runMigration": False, "migrationRevision": None})

    assert [j.name for j in retired.of_type(JOB)] == ["petstore-prod-k8s-roles-job"]
    assert sorted(s.inputs["metadata"]["name"] for s in retired.of_type(SECRET)) == [
        "petstore-db",
        "petstore-db-roles",
    ]
    assert retired.one(SECRET, "app-secret").inputs == cut.one(SECRET, "app-secret").inputs
    assert retired.one(PATCH).inputs == cut.one(PATCH).inputs  # no restart either
    assert retired.outputs["jobName"] is None
    assert retired.outputs["migrationSecretName"] is None
    assert retired.outputs["databaseTarget"] == "postgresql"
