"""The stack's configuration: read once, validated once, handed to components as frozen dataclasses.

This is the only module that reads ``pulumi.Config`` or a ``StackReference``. Every key lives in
the ``petstore-rds:`` namespace (see docs/configuration.md). ``parse_config`` is a pure function
over the raw string values, so every rule is testable without Pulumi; ``load_config`` feeds it the
stack's real configuration. All problems are collected and raised together as one ``ConfigError``
whose lines each name the key, what was expected and what was found.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pulumi

from infra.tags import PROJECT

NAMESPACE = PROJECT
# A stack of this name is production whatever its config says (a name can only make rules
# stricter); every other stack is production when ``environment`` says so.
PRODUCTION_STACKS = frozenset({"prod"})
ENVIRONMENTS = ("development", "production")
# AWS requires maxAllocatedStorage to be at least 10% above allocatedStorage.
MIN_AUTOSCALING_HEADROOM = 1.1

# Engine majors RDS for PostgreSQL offers in standard support; 13 and older are past it (paid
# Extended Support only), so they are refused rather than silently enrolled.
SUPPORTED_ENGINE_MAJORS = (14, 15, 16, 17, 18)
OLDEST_REFUSED_MAJOR = 13
DEFAULT_ENGINE_MAJOR = 17

# Current RDS certificate authorities (rds-ca-2019 expired in August 2024).
CURRENT_CA_IDENTIFIERS = ("rds-ca-rsa2048-g1", "rds-ca-rsa4096-g1", "rds-ca-ecc384-g1")

# AWS limits for RDS for PostgreSQL (CreateDBInstance), encoded so a bad config fails at preview.
MONITORING_INTERVALS = (0, 1, 5, 10, 15, 30, 60)  # seconds; 0 disables enhanced monitoring
BACKUP_RETENTION_RANGE = (0, 35)  # days
PROD_MIN_BACKUP_RETENTION = 7  # days; the team's floor for production
GP3_MIN_GIB = 20  # smallest gp3 volume RDS accepts
GP3_MAX_GIB = 65536
GP3_PROVISIONED_MIN_GIB = 400  # below this gp3 has fixed 3000 IOPS / 125 MiB/s; no explicit values
GP3_IOPS_RANGE = (12000, 64000)  # IOPS, PostgreSQL at >= 400 GiB
GP3_THROUGHPUT_RANGE = (500, 4000)  # MiB/s, PostgreSQL at >= 400 GiB
RDS_IDENTIFIER_MAX_LENGTH = 63
MIN_PRIVATE_SUBNETS = 2  # a DB subnet group must span two availability zones
MIN_BACKUP_WINDOW_MINUTES = 30  # AWS rejects shorter backup windows
SECRET_RECOVERY_WINDOW_RANGE = (7, 30)  # days; 0 means "delete without recovery"
# Performance Insights retention: 7 (free), a multiple of 31 up to 23 months, or 731.
PI_RETENTION_DAYS = (7, *(31 * m for m in range(1, 24)), 731)
PI_ADVANCED_MIN_RETENTION = 465  # Database Insights advanced mode needs 15 months
DATABASE_INSIGHTS_MODES = ("standard", "advanced")
ON_CONFLICT_CHOICES = ("fail", "renumber")
# CloudWatch Logs retention values (days) that AWS accepts.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827)
# Master names RDS for PostgreSQL reserves or that a platform team should never use.
RESERVED_USERNAMES = frozenset({"postgres", "rdsadmin", "rdsrepladmin", "rds_superuser", "admin"})

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")  # RDS instance identifier
_PG_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")  # unquoted PostgreSQL identifier
_INSTANCE_CLASS = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SG_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
_WINDOW_TIME = r"([01]\d|2[0-3]):[0-5]\d"
_BACKUP_WINDOW = re.compile(rf"^({_WINDOW_TIME})-({_WINDOW_TIME})$")
_DAY = r"(mon|tue|wed|thu|fri|sat|sun)"
_MAINTENANCE_WINDOW = re.compile(rf"^{_DAY}:({_WINDOW_TIME})-{_DAY}:({_WINDOW_TIME})$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_IMAGE = re.compile(
    r"^(?P<repo>[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*)"
    r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
_SQLITE_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HTTPS_URL = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/\S*)?$")
_SQS_ARN = re.compile(r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?$")
_STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,2}$")
# A migration revision names the Job (petstore-migration-<revision>): a short DNS label part.
_REVISION = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")
# The kubeconfig context the provider must use, e.g. an EKS cluster ARN (aws eks
# update-kubeconfig names contexts so) or any other explicit context name.
_KUBE_CONTEXT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,252}$")

DEFAULT_CLUSTER_OUTPUTS = {
    "vpcId": "vpcId",
    "privateSubnetIds": "privateSubnetIds",
    "clusterSecurityGroupIds": "clusterSecurityGroupIds",
}


class ConfigError(pulumi.RunError):
    """The stack's configuration is invalid; the message lists every problem, one per line."""

    def __init__(self, stack: str, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid configuration for stack {stack!r}:\n{lines}")


@dataclass(frozen=True)
class ClusterStackRef:
    """Network IDs to read from another stack's outputs (``clusterStack``)."""

    stack: str
    vpc_id_output: str
    private_subnet_ids_output: str
    security_group_ids_output: str


@dataclass(frozen=True)
class NetworkConfig:
    """Where the database lives and who may reach it (given directly or via ``cluster``)."""

    vpc_id: str | None
    private_subnet_ids: tuple[str, ...]
    cluster_security_group_ids: tuple[str, ...]
    cluster: ClusterStackRef | None


@dataclass(frozen=True)
class DatabaseConfig:
    """The RDS instance and its parameter group."""

    identifier: str
    db_name: str
    master_username: str
    port: int
    instance_class: str
    engine_major_version: int
    allocated_storage_gib: int
    max_allocated_storage_gib: int
    storage_iops: int | None
    storage_throughput_mibps: int | None
    multi_az: bool
    deletion_protection: bool
    final_snapshot: bool
    backup_retention_days: int
    backup_window: str
    maintenance_window: str
    monitoring_interval_seconds: int
    database_insights_mode: str
    performance_insights_retention_days: int
    ca_cert_identifier: str
    create_kms_key: bool
    apply_immediately: bool
    blue_green_update: bool
    log_retention_days: int

    @property
    def parameter_group_family(self) -> str:
        """The RDS parameter group family of the engine major, e.g. ``postgres17``."""
        return f"postgres{self.engine_major_version}"

    @property
    def burstable(self) -> bool:
        """Whether the class earns CPU credits (db.t*)."""
        return self.instance_class.startswith("db.t")


@dataclass(frozen=True)
class CredentialsConfig:
    """The master password and the Secrets Manager secret."""

    password_version: int
    app_password_version: int
    secret_recovery_window_days: int


@dataclass(frozen=True)
class AlarmsConfig:
    """Who hears about alarms and RDS events."""

    emails: tuple[str, ...]
    https_endpoints: tuple[str, ...]
    sqs_queue_arns: tuple[str, ...]


@dataclass(frozen=True)
class KubernetesConfig:
    """The app's namespace, Secret, Deployment and the migration Job."""

    kubeconfig: pulumi.Output[str] | None = field(compare=False)
    kube_context: str
    namespace: str
    create_namespace: bool
    app_secret_name: str
    app_deployment: str | None
    app_ca_bundle_path: str | None
    migration_image: str
    migration_revision: str
    app_image: str | None
    app_schema_command: tuple[str, ...]
    sqlite_pvc_name: str
    sqlite_files: tuple[str, ...]
    on_conflict: str
    run_migration: bool
    cutover: bool
    sqlite_database_url: str | None

    @property
    def migration_image_tag(self) -> str | None:
        """The image's tag, if it has one (informational: the Job is named by the revision)."""
        match = _IMAGE.match(self.migration_image)
        return match.group("tag") if match else None


@dataclass(frozen=True)
class StackConfig:
    """Everything the program needs, validated."""

    project: str
    stack: str
    region: str
    environment: str
    network: NetworkConfig
    database: DatabaseConfig
    credentials: CredentialsConfig
    alarms: AlarmsConfig
    kubernetes: KubernetesConfig

    @property
    def production(self) -> bool:
        """Whether production-only rules apply (Multi-AZ, CMK, deletion protection, protect)."""
        return self.environment == "production"


_T = TypeVar("_T")
_MISSING = object()
_INVALID = object()


class _Reader:
    """Parses raw config strings, collecting every problem instead of stopping at the first."""

    def __init__(self, raw: Mapping[str, str]) -> None:
        self.raw = raw
        self.problems: list[str] = []
        self.seen: set[str] = set()
        self.failed: set[str] = set()  # keys already reported: no follow-up complaints

    def fail(self, key: str, message: str) -> None:
        self.failed.add(key)
        self.problems.append(f"{NAMESPACE}:{key}: {message}")

    def _value(self, key: str) -> str | None:
        self.seen.add(key)
        return self.raw.get(key)

    def string(
        self, key: str, default: str | None, pattern: re.Pattern[str] | None, expected: str
    ) -> str | None:
        value = self._value(key)
        if value is None:
            return default
        if value == "" or (pattern is not None and not pattern.match(value)):
            self.fail(key, f"expected {expected}, got {value!r}")
            return default
        return value

    def required(self, key: str, pattern: re.Pattern[str] | None, expected: str) -> str:
        value = self.string(key, None, pattern, expected)
        if value is None:
            if key not in self.raw:
                self.fail(key, f"required: {expected}")
            return ""
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        return self._int(key, default, low, high, f"an integer {low}-{high}")

    def _int(self, key: str, default: int, low: int, high: int, expected: str) -> int:
        value = self._value(key)
        if value is None:
            return default
        try:
            number = int(value.strip())
        except ValueError:
            self.fail(key, f"expected {expected}, got {value!r}")
            return default
        if not low <= number <= high:
            self.fail(key, f"expected {expected}, got {number}")
            return default
        return number

    def optional_int(self, key: str, low: int, high: int) -> int | None:
        if self.raw.get(key) is None:
            self.seen.add(key)
            return None
        return self.integer(key, low, low, high)

    def one_of(
        self, key: str, default: _T, choices: Sequence[_T], parse: Callable[[str], _T]
    ) -> _T:
        value = self._value(key)
        if value is None:
            return default
        expected = "one of " + ", ".join(str(c) for c in choices)
        try:
            parsed = parse(value.strip())
        except ValueError:
            parsed = _MISSING  # type: ignore[assignment]
        if parsed not in choices:
            self.fail(key, f"expected {expected}, got {value!r}")
            return default
        return parsed

    def boolean(self, key: str, default: bool) -> bool:
        value = self._value(key)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered not in ("true", "false"):
            self.fail(key, f"expected true or false, got {value!r}")
            return default
        return lowered == "true"

    def _json(self, key: str, expected: str) -> Any:
        value = self._value(key)
        if value is None:
            return _MISSING
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            self.fail(key, f"expected {expected} (YAML/JSON), got {value!r}")
            return _INVALID

    def string_list(
        self, key: str, default: Sequence[str], pattern: re.Pattern[str], expected: str
    ) -> tuple[str, ...]:
        parsed = self._json(key, f"a list of {expected}")
        if parsed is _MISSING or parsed is _INVALID:
            return tuple(default)
        if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
            self.fail(key, f"expected a list of {expected}, got {self.raw[key]!r}")
            return tuple(default)
        bad = [v for v in parsed if not pattern.match(v)]
        if bad:
            self.fail(key, f"expected a list of {expected}, got invalid item(s) {bad!r}")
            return tuple(default)
        if len(set(parsed)) != len(parsed):
            self.fail(key, f"expected distinct items, got duplicates in {parsed!r}")
        return tuple(parsed)

    def string_map(self, key: str, default: Mapping[str, str]) -> dict[str, str]:
        parsed = self._json(key, "a map of strings")
        if parsed is _MISSING or parsed is _INVALID:
            return dict(default)
        if not isinstance(parsed, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in parsed.items()
        ):
            self.fail(key, f"expected a map of non-empty strings, got {self.raw[key]!r}")
            return dict(default)
        unknown = sorted(set(parsed) - set(default))
        if unknown:
            self.fail(key, f"unknown entries {unknown}; expected keys from {sorted(default)}")
        return {**default, **parsed}


def _window_minutes(start: str, end: str) -> tuple[int, int]:
    def minutes(hhmm: str) -> int:
        hours, mins = hhmm.split(":")
        return int(hours) * 60 + int(mins)

    return minutes(start), minutes(end)


def _parse_network(r: _Reader) -> NetworkConfig:
    cluster_stack = r.string(
        "clusterStack", None, _STACK_NAME, "a stack name like org/project/stack"
    )
    outputs = r.string_map("clusterStackOutputs", DEFAULT_CLUSTER_OUTPUTS)
    direct_keys = [
        k for k in ("vpcId", "privateSubnetIds", "clusterSecurityGroupIds") if k in r.raw
    ]
    if cluster_stack is not None:
        for key in direct_keys:
            r.fail(key, "set either the network IDs or clusterStack, not both")
        return NetworkConfig(
            vpc_id=None,
            private_subnet_ids=(),
            cluster_security_group_ids=(),
            cluster=ClusterStackRef(
                stack=cluster_stack,
                vpc_id_output=outputs["vpcId"],
                private_subnet_ids_output=outputs["privateSubnetIds"],
                security_group_ids_output=outputs["clusterSecurityGroupIds"],
            ),
        )
    if "clusterStackOutputs" in r.raw:
        r.fail("clusterStackOutputs", "only meaningful together with clusterStack")
    vpc_id = r.required("vpcId", _VPC_ID, "a VPC ID like vpc-0123456789abcdef0 (or clusterStack)")
    subnets = r.string_list(
        "privateSubnetIds", (), _SUBNET_ID, "subnet IDs like subnet-0123456789abcdef0"
    )
    if len(subnets) < MIN_PRIVATE_SUBNETS and "privateSubnetIds" not in r.failed:
        r.fail(
            "privateSubnetIds",
            f"expected at least {MIN_PRIVATE_SUBNETS} private subnets, got {len(subnets)}",
        )
    groups = r.string_list(
        "clusterSecurityGroupIds", (), _SG_ID, "security group IDs like sg-0123456789abcdef0"
    )
    if not groups and "clusterSecurityGroupIds" not in r.failed:
        r.fail("clusterSecurityGroupIds", "expected at least 1 source security group, got 0")
    return NetworkConfig(
        vpc_id=vpc_id,
        private_subnet_ids=subnets,
        cluster_security_group_ids=groups,
        cluster=None,
    )


def _parse_engine_major(r: _Reader) -> int:
    value = r.raw.get("engineMajorVersion")
    r.seen.add("engineMajorVersion")
    if value is None:
        return DEFAULT_ENGINE_MAJOR
    text = value.strip()
    supported = ", ".join(str(v) for v in SUPPORTED_ENGINE_MAJORS)
    if not text.isdigit():
        r.fail(
            "engineMajorVersion",
            f"expected a PostgreSQL major version ({supported}), got {value!r}"
            + (" (give only the major; RDS picks and upgrades the minor)" if "." in text else ""),
        )
        return DEFAULT_ENGINE_MAJOR
    major = int(text)
    if major <= OLDEST_REFUSED_MAJOR:
        r.fail(
            "engineMajorVersion",
            f"PostgreSQL {major} is past RDS standard support (paid Extended Support only); "
            f"expected one of {supported}, got {major}",
        )
        return DEFAULT_ENGINE_MAJOR
    if major not in SUPPORTED_ENGINE_MAJORS:
        r.fail("engineMajorVersion", f"expected one of {supported}, got {major}")
        return DEFAULT_ENGINE_MAJOR
    return major


def _parse_database(r: _Reader, stack: str, production: bool) -> DatabaseConfig:
    identifier = (
        r.string(
            "instanceIdentifier",
            f"petstore-{stack}".lower(),
            _IDENTIFIER,
            "an RDS identifier: lowercase letters, digits and single hyphens, "
            "starting with a letter",
        )
        or f"petstore-{stack}".lower()
    )
    if len(identifier) > RDS_IDENTIFIER_MAX_LENGTH:
        r.fail(
            "instanceIdentifier",
            f"expected at most {RDS_IDENTIFIER_MAX_LENGTH} characters, got {len(identifier)}",
        )
    db_name = r.string("dbName", "petstore", _PG_NAME, "a lowercase PostgreSQL name") or "petstore"
    username = (
        r.string(
            "masterUsername",
            "petstore_admin",
            _PG_NAME,
            "a lowercase PostgreSQL role name (letters, digits, underscores)",
        )
        or "petstore_admin"
    )
    if username in RESERVED_USERNAMES:
        r.fail("masterUsername", f"expected a custom name, got the reserved name {username!r}")
    port = r.integer("dbPort", 5432, 1150, 65535)
    instance_class = (
        r.string("instanceClass", "db.t4g.small", _INSTANCE_CLASS, "an RDS class like db.t4g.small")
        or "db.t4g.small"
    )
    major = _parse_engine_major(r)

    allocated = r.integer("allocatedStorageGib", GP3_MIN_GIB, GP3_MIN_GIB, GP3_MAX_GIB)
    max_allocated = r.integer("maxAllocatedStorageGib", 100, GP3_MIN_GIB, GP3_MAX_GIB)
    if max_allocated < allocated * MIN_AUTOSCALING_HEADROOM:
        r.fail(
            "maxAllocatedStorageGib",
            f"expected at least {MIN_AUTOSCALING_HEADROOM}x allocatedStorageGib ({allocated}) so "
            f"storage can autoscale (AWS requires 10% more), got {max_allocated}",
        )
    iops = r.optional_int("storageIops", *GP3_IOPS_RANGE)
    throughput = r.optional_int("storageThroughputMibps", *GP3_THROUGHPUT_RANGE)
    if allocated < GP3_PROVISIONED_MIN_GIB:
        for key, value in (("storageIops", iops), ("storageThroughputMibps", throughput)):
            if value is not None:
                r.fail(
                    key,
                    f"gp3 takes no explicit IOPS/throughput below {GP3_PROVISIONED_MIN_GIB} GiB "
                    f"(allocatedStorageGib is {allocated}); remove it, got {value}",
                )
        iops = throughput = None
    elif (iops is None) != (throughput is None):
        missing = "storageThroughputMibps" if throughput is None else "storageIops"
        r.fail(missing, "expected storageIops and storageThroughputMibps to be set together")

    multi_az = r.boolean("multiAz", False)
    deletion_protection = r.boolean("deletionProtection", False)
    final_snapshot = r.boolean("finalSnapshot", production)
    retention = r.integer("backupRetentionDays", 1, *BACKUP_RETENTION_RANGE)
    backup_window = (
        r.string("backupWindow", "02:00-03:00", _BACKUP_WINDOW, "hh24:mi-hh24:mi (UTC)")
        or "02:00-03:00"
    )
    start, end = _window_minutes(*backup_window.split("-"))
    if (end - start) % (24 * 60) < MIN_BACKUP_WINDOW_MINUTES:
        r.fail(
            "backupWindow",
            f"expected a window of at least {MIN_BACKUP_WINDOW_MINUTES} minutes, "
            f"got {backup_window!r}",
        )
    maintenance_window = (
        r.string(
            "maintenanceWindow",
            "sun:03:30-sun:04:30",
            _MAINTENANCE_WINDOW,
            "ddd:hh24:mi-ddd:hh24:mi (UTC), e.g. sun:03:30-sun:04:30",
        )
        or "sun:03:30-sun:04:30"
    )
    monitoring = r.one_of("monitoringIntervalSeconds", 60, MONITORING_INTERVALS, int)
    insights_mode = r.one_of("databaseInsightsMode", "standard", DATABASE_INSIGHTS_MODES, str)
    pi_retention = r.one_of("performanceInsightsRetentionDays", 7, PI_RETENTION_DAYS, int)
    if insights_mode == "advanced" and pi_retention < PI_ADVANCED_MIN_RETENTION:
        r.fail(
            "performanceInsightsRetentionDays",
            f"databaseInsightsMode advanced needs at least {PI_ADVANCED_MIN_RETENTION} days, "
            f"got {pi_retention}",
        )
    ca = r.one_of("caCertIdentifier", "rds-ca-rsa2048-g1", CURRENT_CA_IDENTIFIERS, str)
    create_kms_key = r.boolean("createKmsKey", False)
    apply_immediately = r.boolean("applyImmediately", False)
    blue_green = r.boolean("blueGreenUpdate", production)
    log_retention = r.one_of("logRetentionDays", 365 if production else 30, LOG_RETENTION_DAYS, int)

    if production:
        for key, ok in (
            ("multiAz", multi_az),
            ("deletionProtection", deletion_protection),
            ("createKmsKey", create_kms_key),
            ("finalSnapshot", final_snapshot),
        ):
            if not ok:
                r.fail(key, f"must be true in stack {stack!r} (production)")
        if retention < PROD_MIN_BACKUP_RETENTION:
            r.fail(
                "backupRetentionDays",
                f"expected at least {PROD_MIN_BACKUP_RETENTION} in stack {stack!r} (production), "
                f"got {retention}",
            )
    return DatabaseConfig(
        identifier=identifier,
        db_name=db_name,
        master_username=username,
        port=port,
        instance_class=instance_class,
        engine_major_version=major,
        allocated_storage_gib=allocated,
        max_allocated_storage_gib=max_allocated,
        storage_iops=iops,
        storage_throughput_mibps=throughput,
        multi_az=multi_az,
        deletion_protection=deletion_protection,
        final_snapshot=final_snapshot,
        backup_retention_days=retention,
        backup_window=backup_window,
        maintenance_window=maintenance_window,
        monitoring_interval_seconds=monitoring,
        database_insights_mode=insights_mode,
        performance_insights_retention_days=pi_retention,
        ca_cert_identifier=ca,
        create_kms_key=create_kms_key,
        apply_immediately=apply_immediately,
        blue_green_update=blue_green,
        log_retention_days=log_retention,
    )


def _parse_credentials(r: _Reader, stack: str, production: bool) -> CredentialsConfig:
    version = r.integer("passwordVersion", 1, 1, 1_000_000)
    window = r.one_of(
        "secretRecoveryWindowDays",
        SECRET_RECOVERY_WINDOW_RANGE[1] if production else SECRET_RECOVERY_WINDOW_RANGE[0],
        (0, *range(SECRET_RECOVERY_WINDOW_RANGE[0], SECRET_RECOVERY_WINDOW_RANGE[1] + 1)),
        int,
    )
    if production and window == 0:
        r.fail(
            "secretRecoveryWindowDays",
            f"expected 7-30 in stack {stack!r} (production), got 0 (no recovery)",
        )
    app_version = r.integer("appPasswordVersion", 1, 1, 1_000_000)
    return CredentialsConfig(
        password_version=version,
        app_password_version=app_version,
        secret_recovery_window_days=window,
    )


def _digest_image(r: _Reader, key: str, *, required: bool) -> str | None:
    """An image reference pinned by digest (``repo[:tag]@sha256:<64 hex>``): a tag can be
    moved to other content, a digest cannot."""
    expected = (
        "a full image reference pinned by digest, e.g. "
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/petstore-migration@sha256:<64 hex>"
    )
    image = r.required(key, _IMAGE, expected) if required else r.string(key, None, _IMAGE, expected)
    match = _IMAGE.match(image or "")
    if image and match and not match.group("digest"):
        r.fail(key, f"expected an image pinned by digest (@sha256:...), got {image!r}")
        return None
    return image or None


def _parse_kubernetes(r: _Reader, kubeconfig: pulumi.Output[str] | None) -> KubernetesConfig:
    r.seen.add("kubeconfig")
    namespace = r.string("namespace", "petstore", _DNS_LABEL, "a Kubernetes namespace name")
    secret_name = r.string(
        "appSecretName", "petstore-db", _DNS_LABEL, "a Kubernetes Secret name (DNS label)"
    )
    deployment = r.string("appDeployment", None, _DNS_SUBDOMAIN, "a Deployment name")
    ca_bundle = r.string(
        "appCaBundlePath",
        None,
        re.compile(r"^/[^\s?&#%]+$"),
        "an absolute path inside the app container, without spaces or ?&#%",
    )
    image = _digest_image(r, "migrationImage", required=True) or ""
    revision = r.string(
        "migrationRevision",
        None,
        _REVISION,
        "a short lowercase name for this migration, e.g. 2026-12-cutover (letters, digits, "
        "hyphens; at most 32)",
    )
    run_migration = r.boolean("runMigration", True)
    if run_migration and revision is None and "migrationRevision" not in r.failed:
        r.fail(
            "migrationRevision",
            "required while runMigration is true: the migration's identity (the Job is named "
            "after it; a new image alone never re-runs it)",
        )
    app_image = _digest_image(r, "appImage", required=False)
    command = r.string_list(
        "appSchemaCommand",
        (),
        re.compile(r"^\S(.*\S)?$"),
        "command words, e.g. [alembic, upgrade, head]",
    )
    if command and app_image is None and "appImage" not in r.failed:
        r.fail("appImage", "required with appSchemaCommand: the app's image, by digest")
    if app_image is not None and not command and "appSchemaCommand" not in r.failed:
        r.fail("appSchemaCommand", "required with appImage: the app's schema command")
    context = r.string(
        "kubeContext",
        None,
        _KUBE_CONTEXT,
        "the kubeconfig context of this environment's cluster, e.g. "
        "arn:aws:eks:eu-west-1:123456789012:cluster/petstore-prod",
    )
    if context is None and "kubeContext" not in r.failed:
        r.fail(
            "kubeContext",
            "required: the kubeconfig context of this environment's cluster (never the ambient "
            "current context)",
        )
    pvc = r.required(
        "sqlitePvcName", _DNS_SUBDOMAIN, "the PersistentVolumeClaim holding the SQLite files"
    )
    files = r.string_list(
        "sqliteFiles", ("petstore.db",), _SQLITE_FILE, "file names (no directories) on the PVC"
    )
    if not files and "sqliteFiles" not in r.failed:
        r.fail("sqliteFiles", "expected at least one SQLite file, got []")
    on_conflict = r.one_of("migrationOnConflict", "fail", ON_CONFLICT_CHOICES, str)
    cutover = r.boolean("cutover", False)
    sqlite_url = r.string(
        "sqliteDatabaseUrl", None, re.compile(r"^sqlite(\+\w+)?:///\S+$"), "a sqlite:/// URL"
    )
    if not cutover and sqlite_url is None and "sqliteDatabaseUrl" not in r.raw:
        r.fail(
            "sqliteDatabaseUrl",
            "required when cutover is false (the app's previous SQLite DATABASE_URL)",
        )
    return KubernetesConfig(
        kubeconfig=kubeconfig,
        kube_context=context or "",
        namespace=namespace or "petstore",
        create_namespace=r.boolean("createNamespace", True),
        app_secret_name=secret_name or "petstore-db",
        app_deployment=deployment,
        app_ca_bundle_path=ca_bundle,
        migration_image=image,
        migration_revision=revision or "",
        app_image=app_image,
        app_schema_command=command,
        sqlite_pvc_name=pvc,
        sqlite_files=files,
        on_conflict=on_conflict,
        run_migration=run_migration,
        cutover=cutover,
        sqlite_database_url=sqlite_url,
    )


def parse_config(
    raw: Mapping[str, str],
    *,
    project: str,
    stack: str,
    region: str | None,
    kubeconfig: pulumi.Output[str] | None = None,
) -> StackConfig:
    """Validate the raw ``petstore-rds:`` values (keys without the namespace) of ``stack``.

    Raises ConfigError listing every problem.
    """
    r = _Reader(raw)
    environment = _parse_environment(r, stack)
    production = environment == "production"
    if not region:
        r.problems.append("aws:region: required (e.g. eu-west-1)")
    network = _parse_network(r)
    database = _parse_database(r, stack, production)
    credentials = _parse_credentials(r, stack, production)
    alarms = _parse_alarms(r)
    kubernetes = _parse_kubernetes(r, kubeconfig)
    known = known_keys()
    for key in sorted(set(raw) - known):
        hint = difflib.get_close_matches(key, sorted(known), n=1)
        r.fail(key, "unknown key" + (f" (did you mean {hint[0]}?)" if hint else ""))
    if r.problems:
        raise ConfigError(stack, r.problems)
    return StackConfig(
        project=project,
        stack=stack,
        region=region or "",
        environment=environment,
        network=network,
        database=database,
        credentials=credentials,
        alarms=alarms,
        kubernetes=kubernetes,
    )


def _parse_alarms(r: _Reader) -> AlarmsConfig:
    """Alarm subscribers; at least one must need no person to confirm it (HTTPS or SQS)."""
    emails = r.string_list("alarmEmails", (), _EMAIL, "e-mail addresses")
    https = r.string_list(
        "alarmHttpsEndpoints", (), _HTTPS_URL, "https:// URLs that confirm SNS subscriptions"
    )
    queues = r.string_list(
        "alarmSqsQueueArns", (), _SQS_ARN, "SQS queue ARNs like arn:aws:sqs:eu-west-1:<account>:q"
    )
    failed = {"alarmHttpsEndpoints", "alarmSqsQueueArns"} & r.failed
    if not https and not queues and not failed:
        r.fail(
            "alarmHttpsEndpoints",
            "expected at least one alarm endpoint that needs no human confirmation "
            "(alarmHttpsEndpoints or alarmSqsQueueArns); e-mail subscriptions reach no one until "
            "confirmed",
        )
    return AlarmsConfig(emails=emails, https_endpoints=https, sqs_queue_arns=queues)


def _parse_environment(r: _Reader, stack: str) -> str:
    """``development`` or ``production``; production-only rules follow this key, and a stack
    named like a production stack must say production (a name can only add rules)."""
    environment = r.one_of("environment", "development", ENVIRONMENTS, str)
    if stack in PRODUCTION_STACKS and environment != "production":
        r.fail("environment", f"must be production in stack {stack!r}, got {environment!r}")
        return "production"
    return environment


def known_keys() -> frozenset[str]:
    """Every ``petstore-rds:`` key the program reads (without the namespace)."""
    r = _Reader({})
    _parse_environment(r, "known-keys")
    _parse_network(r)
    _parse_database(r, "known-keys", production=False)
    _parse_credentials(r, "known-keys", production=False)
    _parse_alarms(r)
    _parse_kubernetes(r, None)
    return frozenset(r.seen)


def _namespace_keys() -> set[str]:
    """Every configured key of our namespace (without it), from wherever the engine put them."""
    from pulumi.runtime import config as runtime_config

    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    prefix = f"{NAMESPACE}:"
    return {k[len(prefix) :] for k in keys if k.startswith(prefix)}


def load_config() -> StackConfig:
    """Read and validate the current stack's configuration (the only place that reads it)."""
    cfg = pulumi.Config(NAMESPACE)
    raw: dict[str, str] = {}
    # Every key the program knows (whatever source the engine used), plus any other key of the
    # namespace so that typos are reported.
    for key in (known_keys() | _namespace_keys()) - {"kubeconfig"}:
        value = cfg.get(key)
        if value is not None:
            raw[key] = value
    kubeconfig = cfg.get_secret("kubeconfig")
    return parse_config(
        raw,
        project=pulumi.get_project(),
        stack=pulumi.get_stack(),
        region=pulumi.Config("aws").get("region"),
        kubeconfig=kubeconfig,
    )


@dataclass(frozen=True)
class NetworkIds:
    """The network IDs the components use, resolved from config or the cluster stack."""

    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    cluster_security_group_ids: pulumi.Input[Sequence[str]]


def _checked_output(
    ref: pulumi.StackReference, stack: str, output: str, pattern: re.Pattern[str], expected: str
) -> pulumi.Output[list[str]]:
    """A cluster-stack output (one ID or a list), checked like the direct config keys."""

    def check(value: object) -> list[str]:
        items = [value] if isinstance(value, str) else value
        if (
            not isinstance(items, list)
            or not items
            or not all(isinstance(i, str) and pattern.match(i) for i in items)
        ):
            problem = (
                f"{NAMESPACE}:clusterStackOutputs: output {output!r} of stack {stack!r} "
                f"should be {expected}, got {value!r}"
            )
            raise ConfigError(pulumi.get_stack(), [problem])
        return list(items)

    return ref.require_output(output).apply(check)


def resolve_network(network: NetworkConfig) -> NetworkIds:
    """The network IDs given directly, or read (and checked) from the cluster stack."""
    if network.cluster is None:
        return NetworkIds(
            vpc_id=network.vpc_id or "",
            private_subnet_ids=list(network.private_subnet_ids),
            cluster_security_group_ids=list(network.cluster_security_group_ids),
        )
    c = network.cluster
    ref = pulumi.StackReference(f"{NAMESPACE}-cluster", stack_name=c.stack)
    vpc = _checked_output(ref, c.stack, c.vpc_id_output, _VPC_ID, "a VPC ID").apply(
        lambda ids: ids[0]
    )
    return NetworkIds(
        vpc_id=vpc,
        private_subnet_ids=_checked_output(
            ref, c.stack, c.private_subnet_ids_output, _SUBNET_ID, "a non-empty list of subnet IDs"
        ),
        cluster_security_group_ids=_checked_output(
            ref,
            c.stack,
            c.security_group_ids_output,
            _SG_ID,
            "a security group ID or a non-empty list of them",
        ),
    )
