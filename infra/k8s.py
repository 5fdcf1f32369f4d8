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
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from infra.config import KubernetesConfig
from infra.credentials import (
    APP_GROUP_ROLE,
    APP_LOGINS,
    APP_SCHEMA,
    OWNER_ROLE,
    SSLMODE_REQUIRE,
    SSLMODE_VERIFY_FULL,
    active_app_login,
    database_url,
)

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
ROLES_DEADLINE_SECONDS = 600  # a handful of statements; ten minutes bounds a hung connection
# What a Job may not change after creation (Kubernetes refuses template edits anyway): ignoring
# the spec keeps a new image from replacing (re-running) a completed Job; its name is its identity.
JOB_IGNORED_PATHS = ("spec",)
TMP_SIZE_LIMIT = "1Gi"  # scratch space for Python and libpq; the data itself is streamed
MIGRATION_RESOURCES = {
    "requests": {"cpu": "250m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},  # streaming keeps the working set flat
}
RESTART_ANNOTATION = "petstore-rds/database-cutover"
REPLACE_UNREADY = "pulumi.com/replaceUnready"
PATCH_FORCE = "pulumi.com/patchForce"
JOB_NAME_SUFFIX = "migration"
# Credentials reach the Jobs as files of a read-only Secret volume, never as env or argv.
SECRET_MOUNT_PATH = "/var/run/secrets/petstore-db"  # noqa: S105 - a path
TARGET_URL_KEY = "target-url"  # the owner role's URL for the migration (verify-full)
APP_SCHEMA_URL_KEY = "app-schema-url"  # the same login for the app's schema command
ROLES_SPEC_KEY = "roles.json"  # the roles Job's spec, with the master login
SECRET_FILE_MODE = 0o400  # read-only for the Jobs' user
APP_SCHEMA_CONTAINER = "app-schema"
ROLES_CONTAINER = "roles"
ROLES_COMMAND = ("python", "-m", "migration.roles", "--spec-file")
DNS_PORT = 53
# Bumped when migration/roles.py's layout changes, so the roles Job runs again.
ROLES_LAYOUT_VERSION = 1
JOBS_PART_OF = "petstore-db-jobs"  # app.kubernetes.io/part-of of the Jobs' pods
REVISION_LABEL = "petstore-rds/migration-revision"
TARGET_POSTGRESQL = "postgresql"
TARGET_SQLITE = "sqlite"


@dataclass(frozen=True)
class KubernetesWiringArgs:
    """The validated Kubernetes settings and the database's connection parts and credentials.

    The master credentials reach only the roles Secret (read by the roles Job); the migration
    Secret holds the owner role's; the app's Secret one of the two app logins'."""

    config: KubernetesConfig
    environment: str
    host: pulumi.Input[str]
    port: pulumi.Input[int]
    dbname: str
    master_username: str
    master_password: pulumi.Input[str]
    owner_password: pulumi.Input[str]
    app_passwords: Mapping[str, pulumi.Input[str]]
    password_version: int
    app_password_version: int


def migration_args(
    files: Sequence[str], on_conflict: str, app_schema_first: bool = False
) -> list[str]:
    """The migration CLI's arguments: every SQLite source, the target from the mounted Secret
    file (never argv or env), verification, JSON logs; after the app's schema command, load
    into the schema it created (``--schema existing``: a table it lacks refuses the run).
    ``--source-immutable``: the claim is mounted read-only, so a WAL-mode file nobody has open
    is read with immutable=1 (no -shm can be created); the engine applies it only when there is
    no -shm and no -wal content, and reads or refuses a file whose -wal holds commits."""
    args = ["run"]
    for name in files:
        args += ["--source", f"{SQLITE_MOUNT_PATH}/{name}"]
    args += ["--target-file", f"{SECRET_MOUNT_PATH}/{TARGET_URL_KEY}"]
    args += ["--verify", "--source-immutable", "--log-format", "json"]
    if on_conflict == "renumber":
        args += ["--on-conflict", "renumber"]
    if app_schema_first:
        args += ["--schema", "existing"]
    return args


def migration_job_env() -> list[k8s.core.v1.EnvVarArgs]:
    """The Job's environment: no credentials (they are a mounted file), no bytecode writes."""
    return [k8s.core.v1.EnvVarArgs(name="PYTHONDONTWRITEBYTECODE", value="1")]


def migration_job_name(revision: str) -> str:
    """The migration Job's name: the revision is its identity, never the image."""
    return f"petstore-{JOB_NAME_SUFFIX}-{revision}"


def roles_job_name(settings: Mapping[str, object]) -> str:
    """The roles Job's name: a digest of what it converges (password versions, the roles'
    layout), never a secret; a new name re-runs it, an unchanged one never does."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    return f"petstore-db-roles-{digest[:10]}"


def migration_secret_data(
    *,
    user: str,
    password: str,
    host: str,
    port: int,
    dbname: str,
    app_ca_bundle_path: str | None,
    with_app_schema_url: bool,
) -> dict[str, str]:
    """The migration Secret (mounted as files): the owner role's verify-full URL against the CA
    bundle baked into the image, and for the app's schema command the same login with the TLS
    the app's image supports."""
    data = {
        TARGET_URL_KEY: database_url(
            user=user,
            password=password,
            host=host,
            port=port,
            dbname=dbname,
            sslmode=SSLMODE_VERIFY_FULL,
            sslrootcert=RDS_CA_BUNDLE_PATH,
        )
    }
    if with_app_schema_url:
        data[APP_SCHEMA_URL_KEY] = database_url(
            user=user,
            password=password,
            host=host,
            port=port,
            dbname=dbname,
            sslmode=SSLMODE_VERIFY_FULL if app_ca_bundle_path else SSLMODE_REQUIRE,
            sslrootcert=app_ca_bundle_path,
        )
    return data


def roles_spec(
    *,
    master_user: str,
    master_password: str,
    owner_password: str,
    app_passwords: Mapping[str, str],
    host: str,
    port: int,
    dbname: str,
) -> str:
    """The roles Job's spec (``migration.roles``), JSON; the only place the master login goes
    in Kubernetes."""
    return json.dumps(
        {
            "admin_url": database_url(
                user=master_user,
                password=master_password,
                host=host,
                port=port,
                dbname=dbname,
                sslmode=SSLMODE_VERIFY_FULL,
                sslrootcert=RDS_CA_BUNDLE_PATH,
            ),
            "database": dbname,
            "schema": APP_SCHEMA,
            "owner": {"name": OWNER_ROLE, "password": owner_password},
            "app_group": APP_GROUP_ROLE,
            "app_users": [
                {"name": login, "password": app_passwords[login]} for login in APP_LOGINS
            ],
        },
        sort_keys=True,
    )


def app_schema_command(command: Sequence[str]) -> list[str]:
    """The init container's command: the app's schema command with ``DATABASE_URL`` read from
    the mounted Secret file at start (so it is in no pod spec, argv or ``kubectl describe``)."""
    return [
        "/bin/sh",
        "-c",
        'DATABASE_URL="$(cat "$DATABASE_URL_FILE")" && export DATABASE_URL && exec "$@"',
        "app-schema",
        *command,
    ]


def job_pod_selector(instance: str) -> dict[str, str]:
    """The labels every pod of the roles and migration Jobs carries (and only theirs)."""
    return {"app.kubernetes.io/instance": instance, "app.kubernetes.io/part-of": JOBS_PART_OF}


def job_network_policy_spec(port: int, pod_labels: Mapping[str, str]) -> dict[str, Any]:
    """Egress of the Jobs' pods: DNS and the database port only; no ingress at all."""
    return {
        "podSelector": {"matchLabels": dict(pod_labels)},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [],
        "egress": [
            {
                "ports": [
                    {"protocol": "UDP", "port": DNS_PORT},
                    {"protocol": "TCP", "port": DNS_PORT},
                ]
            },
            {"ports": [{"protocol": "TCP", "port": port}]},
        ],
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


def _hardened_container(
    name: str,
    image: str,
    command: Sequence[str],
    args: Sequence[str] | None,
    env: Sequence[k8s.core.v1.EnvVarArgs],
    mounts: Sequence[k8s.core.v1.VolumeMountArgs],
) -> k8s.core.v1.ContainerArgs:
    """A container under the restricted profile: non-root, read-only root, no capabilities."""
    return k8s.core.v1.ContainerArgs(
        name=name,
        image=image,
        image_pull_policy="IfNotPresent",
        command=list(command),
        args=list(args) if args is not None else None,
        env=list(env),
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests=MIGRATION_RESOURCES["requests"], limits=MIGRATION_RESOURCES["limits"]
        ),
        security_context=k8s.core.v1.SecurityContextArgs(
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            run_as_non_root=True,
            capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
        ),
        volume_mounts=list(mounts),
    )


def _secret_volume(name: str, secret_name: str) -> k8s.core.v1.VolumeArgs:
    return k8s.core.v1.VolumeArgs(
        name=name,
        secret=k8s.core.v1.SecretVolumeSourceArgs(
            secret_name=secret_name, default_mode=SECRET_FILE_MODE
        ),
    )


def _pod_spec(
    containers: Sequence[k8s.core.v1.ContainerArgs],
    volumes: Sequence[k8s.core.v1.VolumeArgs],
    init_containers: Sequence[k8s.core.v1.ContainerArgs] = (),
) -> k8s.core.v1.PodSpecArgs:
    return k8s.core.v1.PodSpecArgs(
        restart_policy="Never",
        automount_service_account_token=False,
        security_context=k8s.core.v1.PodSecurityContextArgs(
            run_as_non_root=True,
            run_as_user=MIGRATION_UID,
            run_as_group=MIGRATION_UID,
            fs_group=MIGRATION_UID,  # the Secret files (mode 0400) belong to the Jobs' group
            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
        ),
        init_containers=list(init_containers) or None,
        containers=list(containers),
        volumes=list(volumes),
    )


def _failure_policy(container: str) -> k8s.batch.v1.PodFailurePolicyArgs:
    return k8s.batch.v1.PodFailurePolicyArgs(
        rules=[
            k8s.batch.v1.PodFailurePolicyRuleArgs(
                action="FailJob",
                on_exit_codes=k8s.batch.v1.PodFailurePolicyOnExitCodesRequirementArgs(
                    container_name=container, operator="In", values=[EXIT_DATA_PROBLEMS]
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
    )


def _tmp_volume() -> k8s.core.v1.VolumeArgs:
    return k8s.core.v1.VolumeArgs(
        name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=TMP_SIZE_LIMIT)
    )


@dataclass(frozen=True)
class _JobParts:
    """What differs between the Jobs; everything else (await, replace, hardening) is shared."""

    job_name: pulumi.Input[str]
    namespace: pulumi.Input[str]
    labels: dict[str, str]
    deadline_seconds: int
    container: k8s.core.v1.ContainerArgs
    container_name: str
    volumes: Sequence[k8s.core.v1.VolumeArgs]
    init_containers: Sequence[k8s.core.v1.ContainerArgs] = ()


def _job(resource_name: str, parts: _JobParts, opts: pulumi.ResourceOptions) -> k8s.batch.v1.Job:
    """One awaited, hardened Job. A failed (unready) Job is replaced, i.e. re-run, by the next
    `pulumi up`. No pulumi.com/skipAwait: Pulumi waits for completion before what depends on it
    (the cutover). No ttl_seconds_after_finished: a Job deleted by the TTL controller would be
    re-created, i.e. re-run, by the next `pulumi up`."""
    return k8s.batch.v1.Job(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=parts.job_name,
            namespace=parts.namespace,
            labels=parts.labels,
            annotations={REPLACE_UNREADY: "true"},
        ),
        spec=k8s.batch.v1.JobSpecArgs(
            backoff_limit=BACKOFF_LIMIT,
            active_deadline_seconds=parts.deadline_seconds,
            pod_failure_policy=_failure_policy(parts.container_name),
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=parts.labels),
                spec=_pod_spec([parts.container], parts.volumes, parts.init_containers),
            ),
        ),
        opts=opts,
    )


def _job_options(
    child: pulumi.ResourceOptions, depends_on: Sequence[pulumi.Resource]
) -> pulumi.ResourceOptions:
    """Awaited Jobs whose identity is their name: the spec (image, template) is ignored after
    creation, so a new image alone never replaces, i.e. never re-runs, a Job. A changed name
    (a new revision, new password versions) replaces it: delete first, the name is fixed."""
    return pulumi.ResourceOptions.merge(
        child,
        pulumi.ResourceOptions(
            depends_on=list(depends_on),
            ignore_changes=list(JOB_IGNORED_PATHS),
            delete_before_replace=True,
            custom_timeouts=pulumi.CustomTimeouts(
                create=JOB_AWAIT_TIMEOUT, update=JOB_AWAIT_TIMEOUT
            ),
        ),
    )


class KubernetesWiring(pulumi.ComponentResource):
    """Provider pinned to the environment's cluster, namespace, NetworkPolicy, roles Secret and
    Job, migration Secret and Job, app Secret and Deployment restart."""

    namespace: pulumi.Output[str]
    app_secret_name: pulumi.Output[str]
    migration_secret_name: pulumi.Output[str | None]  # None once runMigration is false
    job_name: pulumi.Output[str | None]
    roles_job_name: pulumi.Output[str]
    database_target: str

    def __init__(
        self, name: str, args: KubernetesWiringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("petstore-rds:k8s:KubernetesWiring", name, None, opts)
        cfg = args.config
        provider = k8s.Provider(
            f"{name}-provider",
            kubeconfig=cfg.kubeconfig,  # None: the kubeconfig file, but never its current context
            context=cfg.kube_context,  # the environment's cluster, explicitly
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
        after_namespace = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=namespace_deps)
        )

        policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-jobs-egress",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="petstore-db-jobs",
                namespace=namespace,
                labels=recommended_labels("petstore-migration", instance, "network-policy", None),
            ),
            spec=pulumi.Output.from_input(args.port).apply(
                lambda port: cast(
                    k8s.networking.v1.NetworkPolicySpecArgsDict,
                    job_network_policy_spec(int(port), job_pod_selector(instance)),
                )
            ),
            opts=after_namespace,
        )

        roles_job = self._roles(name, args, namespace, [policy, *namespace_deps], child)

        job_deps: list[pulumi.Resource] = [roles_job]
        self.migration_secret_name = pulumi.Output.from_input(None)
        self.job_name = pulumi.Output.from_input(None)
        if cfg.run_migration:
            migration_secret, job = self._migration(
                name, args, namespace, [roles_job, policy, *namespace_deps], child
            )
            job_deps.append(job)
            self.migration_secret_name = migration_secret.metadata.apply(lambda m: m.name)
            self.job_name = job.metadata.apply(lambda m: m.name)

        login = active_app_login(args.app_password_version)
        if cfg.cutover:
            self.database_target = TARGET_POSTGRESQL
            app_parts = pulumi.Output.all(args.host, args.port, args.app_passwords[login])
            app_data = app_parts.apply(
                lambda p: app_secret_data(
                    user=login,
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
                        "user": login,
                        "caBundle": cfg.app_ca_bundle_path,
                        "passwordVersion": args.app_password_version,
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
            # Cutover: the app's Secret changes only after the roles Job set the login's
            # password and the migration Job completed. A rollback waits for neither: a failing
            # Job must not block it.
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
        self.roles_job_name = roles_job.metadata.apply(lambda m: m.name or "")
        self.register_outputs(
            {
                "namespace": self.namespace,
                "app_secret_name": self.app_secret_name,
                "migration_secret_name": self.migration_secret_name,
                "job_name": self.job_name,
                "roles_job_name": self.roles_job_name,
            }
        )

    def _roles(
        self,
        name: str,
        args: KubernetesWiringArgs,
        namespace: pulumi.Input[str],
        deps: list[pulumi.Resource],
        child: pulumi.ResourceOptions,
    ) -> k8s.batch.v1.Job:
        """The roles Secret (the master login, nowhere else in Kubernetes) and the Job that
        converges the owner role, the app group and the two app logins."""
        cfg = args.config
        instance = f"petstore-{args.environment}"
        secret_name = f"{cfg.app_secret_name}-roles"
        logins = list(APP_LOGINS)
        parts = pulumi.Output.all(
            args.host,
            args.port,
            args.master_password,
            args.owner_password,
            *(args.app_passwords[login] for login in logins),
        )
        spec: pulumi.Output[str] = pulumi.Output.secret(
            parts.apply(
                lambda p: roles_spec(
                    master_user=args.master_username,
                    master_password=p[2],
                    owner_password=p[3],
                    app_passwords=dict(zip(logins, p[4:], strict=True)),
                    host=p[0],
                    port=int(p[1]),
                    dbname=args.dbname,
                )
            )
        )
        labels = {
            **recommended_labels("petstore-db-roles", instance, "database-roles", None),
            "app.kubernetes.io/part-of": JOBS_PART_OF,
        }
        secret = k8s.core.v1.Secret(
            f"{name}-roles-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=secret_name, namespace=namespace, labels=labels
            ),
            type="Opaque",
            string_data=spec.apply(lambda text: {ROLES_SPEC_KEY: text}),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=deps)),
        )
        job_name = roles_job_name(
            {
                "masterPasswordVersion": args.password_version,
                "appPasswordVersion": args.app_password_version,
                "layout": ROLES_LAYOUT_VERSION,
            }
        )
        container = _hardened_container(
            ROLES_CONTAINER,
            cfg.migration_image,
            [*ROLES_COMMAND, f"{SECRET_MOUNT_PATH}/{ROLES_SPEC_KEY}"],
            None,
            migration_job_env(),
            [
                k8s.core.v1.VolumeMountArgs(
                    name="credentials", mount_path=SECRET_MOUNT_PATH, read_only=True
                ),
                k8s.core.v1.VolumeMountArgs(name="tmp", mount_path=TMP_MOUNT_PATH),
            ],
        )
        job_parts = _JobParts(
            job_name=job_name,
            namespace=namespace,
            labels=labels,
            deadline_seconds=ROLES_DEADLINE_SECONDS,
            container=container,
            container_name=ROLES_CONTAINER,
            volumes=[_secret_volume("credentials", secret_name), _tmp_volume()],
        )
        return _job(f"{name}-roles-job", job_parts, _job_options(child, [secret]))

    def _migration(
        self,
        name: str,
        args: KubernetesWiringArgs,
        namespace: pulumi.Input[str],
        deps: list[pulumi.Resource],
        child: pulumi.ResourceOptions,
    ) -> tuple[k8s.core.v1.Secret, k8s.batch.v1.Job]:
        """The migration Secret (the owner role's login, mounted as files) and the Job named
        after ``migrationRevision``: optionally the app's schema command first (init
        container, the app's image), then ``migration run --target-file``."""
        cfg = args.config
        instance = f"petstore-{args.environment}"
        migration_secret_name = f"{cfg.app_secret_name}-{JOB_NAME_SUFFIX}"
        parts = pulumi.Output.all(args.host, args.port, args.owner_password)
        migration_data: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            parts.apply(
                lambda p: migration_secret_data(
                    user=OWNER_ROLE,
                    password=p[2],
                    host=p[0],
                    port=int(p[1]),
                    dbname=args.dbname,
                    app_ca_bundle_path=cfg.app_ca_bundle_path,
                    with_app_schema_url=bool(cfg.app_schema_command),
                )
            )
        )
        labels = {
            **recommended_labels("petstore-migration", instance, "database-migration", None),
            "app.kubernetes.io/part-of": JOBS_PART_OF,
            REVISION_LABEL: cfg.migration_revision,
        }
        migration_secret = k8s.core.v1.Secret(
            f"{name}-migration-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=migration_secret_name, namespace=namespace, labels=labels
            ),
            type="Opaque",
            string_data=migration_data,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=deps)),
        )
        credentials = k8s.core.v1.VolumeMountArgs(
            name="credentials", mount_path=SECRET_MOUNT_PATH, read_only=True
        )
        tmp = k8s.core.v1.VolumeMountArgs(name="tmp", mount_path=TMP_MOUNT_PATH)
        init_containers = []
        if cfg.app_schema_command and cfg.app_image:
            init_containers.append(
                _hardened_container(
                    APP_SCHEMA_CONTAINER,
                    cfg.app_image,
                    app_schema_command(cfg.app_schema_command),
                    None,
                    [
                        k8s.core.v1.EnvVarArgs(
                            name="DATABASE_URL_FILE",
                            value=f"{SECRET_MOUNT_PATH}/{APP_SCHEMA_URL_KEY}",
                        )
                    ],
                    [credentials, tmp],
                )
            )
        container = _hardened_container(
            MIGRATION_CONTAINER,
            cfg.migration_image,
            MIGRATION_COMMAND,
            migration_args(cfg.sqlite_files, cfg.on_conflict, bool(init_containers)),
            migration_job_env(),
            [
                k8s.core.v1.VolumeMountArgs(
                    name="sqlite", mount_path=SQLITE_MOUNT_PATH, read_only=True
                ),
                credentials,
                tmp,
            ],
        )
        sqlite = k8s.core.v1.VolumeArgs(
            name="sqlite",
            persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                claim_name=cfg.sqlite_pvc_name, read_only=True
            ),
        )
        job_parts = _JobParts(
            job_name=migration_job_name(cfg.migration_revision),
            namespace=namespace,
            labels=labels,
            deadline_seconds=ACTIVE_DEADLINE_SECONDS,
            container=container,
            container_name=MIGRATION_CONTAINER,
            volumes=[sqlite, _secret_volume("credentials", migration_secret_name), _tmp_volume()],
            init_containers=init_containers,
        )
        job = _job(f"{name}-migration-job", job_parts, _job_options(child, [migration_secret]))
        return migration_secret, job
