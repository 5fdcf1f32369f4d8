"""Kubernetes wiring: the app's namespace, the migration Secret and Job, the app's Secret (which
switches to PostgreSQL only after the Job has completed) and the Deployment restart.

The object bodies (Secret data, Job env and args, the restart token) are plain functions with
plain tests; the component only wires them in order: migration Secret -> Job -> app Secret ->
Deployment restart.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.config import KubernetesConfig
from infra.credentials import SSLMODE_REQUIRE, SSLMODE_VERIFY_FULL, database_url

# The migration image bakes the RDS CA bundle here and points PGSSLROOTCERT at it.
RDS_CA_BUNDLE_PATH = "/opt/rds/global-bundle.pem"
SQLITE_MOUNT_PATH = "/data/sqlite"
TMP_MOUNT_PATH = "/tmp"  # noqa: S108 - an emptyDir: the root filesystem is read-only
MIGRATION_UID = 10001  # the image's user and group
MIGRATION_CONTAINER = "migrate"
MIGRATION_COMMAND = ("python", "-m", "migration")
# Retries are for transient failures (node loss, a connection reset); the migration is one
# transaction and safe to re-run. Data problems (exit 1) fail the Job at once, see below.
BACKOFF_LIMIT = 2
EXIT_DATA_PROBLEMS = 1  # the migration CLI's exit code for data problems: retrying cannot help
# An hour bounds a stuck run (lock wait, hung connection); the benchmark moves 10M rows in minutes.
ACTIVE_DEADLINE_SECONDS = 3600
# Pulumi waits for Job completion; give it the deadline plus scheduling and image-pull slack.
JOB_AWAIT_TIMEOUT = "70m"
TMP_SIZE_LIMIT = "1Gi"  # scratch space for Python and libpq; the data itself is streamed
MIGRATION_RESOURCES = {
    "requests": {"cpu": "250m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},  # streaming keeps the working set flat
}
RESTART_ANNOTATION = "petstore-rds/database-cutover"
REPLACE_UNREADY = "pulumi.com/replaceUnready"
PATCH_FORCE = "pulumi.com/patchForce"
JOB_NAME_SUFFIX = "migration"
TARGET_POSTGRESQL = "postgresql"
TARGET_SQLITE = "sqlite"


@dataclass(frozen=True)
class KubernetesWiringArgs:
    """The validated Kubernetes settings and the database's connection parts."""

    config: KubernetesConfig
    environment: str
    host: pulumi.Input[str]
    port: pulumi.Input[int]
    dbname: str
    username: str
    password: pulumi.Input[str]
    password_version: int


def migration_args(files: Sequence[str], on_conflict: str) -> list[str]:
    """The migration CLI's arguments: every SQLite source, verification, JSON logs."""
    args = ["run"]
    for name in files:
        args += ["--source", f"{SQLITE_MOUNT_PATH}/{name}"]
    args += ["--verify", "--log-format", "json"]
    if on_conflict == "renumber":
        args += ["--on-conflict", "renumber"]
    return args


def migration_job_env(migration_secret_name: str) -> list[k8s.core.v1.EnvVarArgs]:
    """The Job's environment: the target from the migration Secret (never the app's)."""
    return [
        k8s.core.v1.EnvVarArgs(
            name="DATABASE_URL",
            value_from=k8s.core.v1.EnvVarSourceArgs(
                secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(
                    name=migration_secret_name, key="DATABASE_URL"
                )
            ),
        ),
        k8s.core.v1.EnvVarArgs(name="PYTHONDONTWRITEBYTECODE", value="1"),
    ]


def migration_secret_data(
    *, user: str, password: str, host: str, port: int, dbname: str
) -> dict[str, str]:
    """The migration Secret: a verify-full URL against the CA bundle baked into the image."""
    return {
        "DATABASE_URL": database_url(
            user=user,
            password=password,
            host=host,
            port=port,
            dbname=dbname,
            sslmode=SSLMODE_VERIFY_FULL,
            sslrootcert=RDS_CA_BUNDLE_PATH,
        )
    }


def app_secret_data(
    *,
    user: str,
    password: str,
    host: str,
    port: int,
    dbname: str,
    ca_bundle_path: str | None,
) -> dict[str, str]:
    """The app's Secret after cutover: DATABASE_URL plus the parts, for apps that build their
    own URL. ``sslmode`` is require, or verify-full when the app has the CA bundle."""
    sslmode = SSLMODE_VERIFY_FULL if ca_bundle_path else SSLMODE_REQUIRE
    data = {
        "DATABASE_URL": database_url(
            user=user,
            password=password,
            host=host,
            port=port,
            dbname=dbname,
            sslmode=sslmode,
            sslrootcert=ca_bundle_path,
        ),
        "DB_HOST": host,
        "DB_PORT": str(port),
        "DB_NAME": dbname,
        "DB_USER": user,
        "DB_PASSWORD": password,
        "DB_SSLMODE": sslmode,
    }
    if ca_bundle_path:
        data["DB_SSLROOTCERT"] = ca_bundle_path
    return data


def rollback_secret_data(sqlite_database_url: str) -> dict[str, str]:
    """The app's Secret on rollback: only the previous SQLite URL, so no app reaches PostgreSQL
    (not even one that builds its URL from DB_*)."""
    return {"DATABASE_URL": sqlite_database_url}


def restart_token(target: str, settings: Mapping[str, object]) -> str:
    """A pod-template annotation value that changes whenever the app's connection changes
    (target, host, port, user, TLS, password version) and never contains a secret."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    return f"{target}-{digest[:16]}"


def recommended_labels(
    name: str, instance: str, component: str, version: str | None
) -> dict[str, str]:
    """The app.kubernetes.io/* labels."""
    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "petstore",
        "app.kubernetes.io/managed-by": "pulumi",
    }
    if version:
        labels["app.kubernetes.io/version"] = version
    return labels


class KubernetesWiring(pulumi.ComponentResource):
    """Namespace, migration Secret, migration Job, app Secret and Deployment restart."""

    namespace: pulumi.Output[str]
    app_secret_name: pulumi.Output[str]
    migration_secret_name: pulumi.Output[str | None]  # None once runMigration is false
    job_name: pulumi.Output[str | None]
    database_target: str

    def __init__(
        self, name: str, args: KubernetesWiringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("petstore-rds:k8s:KubernetesWiring", name, None, opts)
        cfg = args.config
        provider = k8s.Provider(
            f"{name}-provider",
            kubeconfig=cfg.kubeconfig,  # None: the ambient kubeconfig/context
            # Update the Secrets in place: a replaced Secret would briefly not exist.
            enable_secret_mutable=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        instance = f"petstore-{args.environment}"

        namespace_deps: list[pulumi.Resource] = []
        namespace: pulumi.Input[str] = cfg.namespace
        if cfg.create_namespace:
            ns = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=cfg.namespace,
                    labels={
                        **recommended_labels("petstore", instance, "namespace", None),
                        # Warn and audit only: enforcing would also bind the app's own pods.
                        "pod-security.kubernetes.io/warn": "restricted",
                        "pod-security.kubernetes.io/audit": "restricted",
                    },
                ),
                opts=child,
            )
            namespace = ns.metadata.apply(lambda m: m.name or cfg.namespace)
            namespace_deps.append(ns)

        parts = pulumi.Output.all(args.host, args.port, args.password)
        job_deps: list[pulumi.Resource] = []
        self.migration_secret_name = pulumi.Output.from_input(None)
        self.job_name = pulumi.Output.from_input(None)
        if cfg.run_migration:
            migration_secret, job = self._migration(
                name, args, namespace, namespace_deps, parts, child
            )
            job_deps.append(job)
            self.migration_secret_name = migration_secret.metadata.apply(lambda m: m.name)
            self.job_name = job.metadata.apply(lambda m: m.name)

        if cfg.cutover:
            self.database_target = TARGET_POSTGRESQL
            app_data = parts.apply(
                lambda p: app_secret_data(
                    user=args.username,
                    password=p[2],
                    host=p[0],
                    port=int(p[1]),
                    dbname=args.dbname,
                    ca_bundle_path=cfg.app_ca_bundle_path,
                )
            )
            token = pulumi.Output.all(args.host, args.port).apply(
                lambda p: restart_token(
                    TARGET_POSTGRESQL,
                    {
                        "host": p[0],
                        "port": int(p[1]),
                        "dbname": args.dbname,
                        "user": args.username,
                        "caBundle": cfg.app_ca_bundle_path,
                        "passwordVersion": args.password_version,
                    },
                )
            )
        else:
            self.database_target = TARGET_SQLITE
            sqlite_url = cfg.sqlite_database_url or ""
            app_data = pulumi.Output.from_input(rollback_secret_data(sqlite_url))
            token = pulumi.Output.from_input(restart_token(TARGET_SQLITE, {"url": sqlite_url}))

        secret_app_data: pulumi.Output[dict[str, str]] = pulumi.Output.secret(app_data)
        app_secret = k8s.core.v1.Secret(
            f"{name}-app-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=cfg.app_secret_name,
                namespace=namespace,
                labels=recommended_labels("petstore", instance, "database-credentials", None),
                annotations={RESTART_ANNOTATION: token},
            ),
            type="Opaque",
            string_data=secret_app_data,
            # Cutover: the app's Secret changes only after the migration Job has completed.
            # A rollback does not wait for the Job: a failing migration must not block it.
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=job_deps if cfg.cutover else [])
            ),
        )

        if cfg.app_deployment:
            k8s.apps.v1.DeploymentPatch(
                f"{name}-restart",
                metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                    name=cfg.app_deployment,
                    namespace=namespace,
                    # Take over this one annotation even if kubectl or a GitOps tool set it.
                    annotations={PATCH_FORCE: "true"},
                ),
                spec=k8s.apps.v1.DeploymentSpecPatchArgs(
                    template=k8s.core.v1.PodTemplateSpecPatchArgs(
                        metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                            annotations={RESTART_ANNOTATION: token}
                        )
                    )
                ),
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[app_secret])
                ),
            )

        self.namespace = pulumi.Output.from_input(namespace)
        self.app_secret_name = app_secret.metadata.apply(lambda m: m.name or cfg.app_secret_name)
        self.register_outputs(
            {
                "namespace": self.namespace,
                "app_secret_name": self.app_secret_name,
                "migration_secret_name": self.migration_secret_name,
                "job_name": self.job_name,
            }
        )

    def _migration(
        self,
        name: str,
        args: KubernetesWiringArgs,
        namespace: pulumi.Input[str],
        namespace_deps: list[pulumi.Resource],
        parts: pulumi.Output[list[Any]],
        child: pulumi.ResourceOptions,
    ) -> tuple[k8s.core.v1.Secret, k8s.batch.v1.Job]:
        """The migration Secret and the Job that reads it (never the app's Secret)."""
        cfg = args.config
        instance = f"petstore-{args.environment}"
        migration_secret_name = f"{cfg.app_secret_name}-{JOB_NAME_SUFFIX}"
        migration_data: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            parts.apply(
                lambda p: migration_secret_data(
                    user=args.username,
                    password=p[2],
                    host=p[0],
                    port=int(p[1]),
                    dbname=args.dbname,
                )
            )
        )
        migration_secret = k8s.core.v1.Secret(
            f"{name}-migration-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=migration_secret_name,
                namespace=namespace,
                labels=recommended_labels(
                    "petstore-migration", instance, "database-migration", None
                ),
            ),
            type="Opaque",
            string_data=migration_data,
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=namespace_deps)
            ),
        )

        labels = recommended_labels(
            "petstore-migration", instance, "database-migration", cfg.migration_image_tag
        )
        job_name = f"petstore-{JOB_NAME_SUFFIX}"
        job = k8s.batch.v1.Job(
            f"{name}-migration-job",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=job_name,
                namespace=namespace,
                labels=labels,
                # A failed (unready) Job is replaced, i.e. re-run, by the next `pulumi up`.
                # No pulumi.com/skipAwait: Pulumi must wait for completion before cutover.
                annotations={REPLACE_UNREADY: "true"},
            ),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=BACKOFF_LIMIT,
                active_deadline_seconds=ACTIVE_DEADLINE_SECONDS,
                # No ttl_seconds_after_finished: a Job deleted by the TTL controller would be
                # re-created, i.e. the migration re-run, by the next `pulumi up`.
                pod_failure_policy=k8s.batch.v1.PodFailurePolicyArgs(
                    rules=[
                        k8s.batch.v1.PodFailurePolicyRuleArgs(
                            action="FailJob",
                            on_exit_codes=k8s.batch.v1.PodFailurePolicyOnExitCodesRequirementArgs(
                                container_name=MIGRATION_CONTAINER,
                                operator="In",
                                values=[EXIT_DATA_PROBLEMS],
                            ),
                        ),
                        k8s.batch.v1.PodFailurePolicyRuleArgs(
                            action="Ignore",  # evictions/drains do not count against retries
                            on_pod_conditions=[
                                k8s.batch.v1.PodFailurePolicyOnPodConditionsPatternArgs(
                                    type="DisruptionTarget", status="True"
                                )
                            ],
                        ),
                    ]
                ),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        restart_policy="Never",
                        automount_service_account_token=False,
                        security_context=k8s.core.v1.PodSecurityContextArgs(
                            run_as_non_root=True,
                            run_as_user=MIGRATION_UID,
                            run_as_group=MIGRATION_UID,
                            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                        ),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name=MIGRATION_CONTAINER,
                                image=cfg.migration_image,
                                image_pull_policy="IfNotPresent",
                                command=list(MIGRATION_COMMAND),
                                args=migration_args(cfg.sqlite_files, cfg.on_conflict),
                                env=migration_job_env(migration_secret_name),
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests=MIGRATION_RESOURCES["requests"],
                                    limits=MIGRATION_RESOURCES["limits"],
                                ),
                                security_context=k8s.core.v1.SecurityContextArgs(
                                    allow_privilege_escalation=False,
                                    read_only_root_filesystem=True,
                                    run_as_non_root=True,
                                    capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                                    seccomp_profile=k8s.core.v1.SeccompProfileArgs(
                                        type="RuntimeDefault"
                                    ),
                                ),
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(
                                        name="sqlite", mount_path=SQLITE_MOUNT_PATH, read_only=True
                                    ),
                                    k8s.core.v1.VolumeMountArgs(
                                        name="tmp", mount_path=TMP_MOUNT_PATH
                                    ),
                                ],
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="sqlite",
                                persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                                    claim_name=cfg.sqlite_pvc_name, read_only=True
                                ),
                            ),
                            k8s.core.v1.VolumeArgs(
                                name="tmp",
                                empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(
                                    size_limit=TMP_SIZE_LIMIT
                                ),
                            ),
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=[migration_secret],
                    # The Job's template is immutable and its name fixed: replace = delete+create.
                    delete_before_replace=True,
                    custom_timeouts=pulumi.CustomTimeouts(
                        create=JOB_AWAIT_TIMEOUT, update=JOB_AWAIT_TIMEOUT
                    ),
                ),
            ),
        )
        return migration_secret, job
