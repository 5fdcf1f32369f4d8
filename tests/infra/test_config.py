"""Configuration: the real stack files parse to the intended values, and every bad value fails
at preview with a message naming the key (the real program under mocks), all problems at once."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest

from infra.config import ConfigError, known_keys, parse_config
from tests.support.pulumi_harness import REPO_ROOT, run_stack, stack_config

pytestmark = pytest.mark.infra

NS = "petstore-rds:"


def _raw(stack: str, overrides: Mapping[str, object] | None = None) -> dict[str, str]:
    config, _ = stack_config(stack, overrides)
    return {k.removeprefix(NS): v for k, v in config.items() if k.startswith(NS)}


def test_dev_stack_file_parses_to_a_small_single_az_database() -> None:
    cfg = parse_config(_raw("dev"), project="petstore-rds", stack="dev", region="eu-west-1")
    db = cfg.database

    assert not cfg.production
    assert cfg.network.vpc_id == "vpc-0d1e2f3a4b5c6d7e8"
    assert cfg.network.private_subnet_ids == (
        "subnet-0a1b2c3d4e5f60718",
        "subnet-0b2c3d4e5f6071829",
    )
    assert cfg.network.cluster_security_group_ids == ("sg-0c3d4e5f607182930",)
    assert cfg.network.cluster is None
    assert (db.identifier, db.instance_class, db.engine_major_version) == (
        "petstore-dev",
        "db.t4g.small",
        17,
    )
    assert (db.multi_az, db.deletion_protection, db.final_snapshot, db.create_kms_key) == (
        False,
        False,
        False,
        False,
    )
    assert db.backup_retention_days == 1
    assert db.parameter_group_family == "postgres17"
    assert db.burstable
    assert cfg.kubernetes.sqlite_files == ("petstore.db",)
    assert cfg.kubernetes.migration_image_tag is None  # pinned by digest only
    assert cfg.kubernetes.migration_image.endswith(
        "@sha256:4f6c1a9e2b7d3c5e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a"
    )
    assert cfg.kubernetes.migration_revision == "cutover-1"
    assert cfg.kubernetes.kube_context == "arn:aws:eks:eu-west-1:123456789012:cluster/petstore-dev"
    # Before the cutover (runbook step 4): the Job runs, the app stays on SQLite.
    assert (cfg.kubernetes.run_migration, cfg.kubernetes.cutover) == (True, False)
    assert cfg.environment == "development"
    assert (db.blue_green_update, db.log_retention_days) == (False, 30)


def test_prod_stack_file_parses_to_a_protected_multi_az_database() -> None:
    cfg = parse_config(_raw("prod"), project="petstore-rds", stack="prod", region="eu-west-1")
    db = cfg.database

    assert cfg.production
    assert cfg.network.cluster is not None
    assert cfg.network.cluster.stack == "acme/eks-cluster/prod"
    assert cfg.network.cluster.security_group_ids_output == "nodeSecurityGroupIds"
    assert (db.multi_az, db.deletion_protection, db.final_snapshot, db.create_kms_key) == (
        True,
        True,
        True,
        True,
    )
    assert db.backup_retention_days == 14
    assert (db.database_insights_mode, db.performance_insights_retention_days) == ("advanced", 465)
    assert cfg.credentials.secret_recovery_window_days == 30
    assert cfg.kubernetes.app_deployment == "petstore"
    assert cfg.kubernetes.on_conflict == "renumber"
    assert cfg.environment == "production"
    assert (cfg.kubernetes.run_migration, cfg.kubernetes.cutover) == (True, False)
    assert cfg.kubernetes.kube_context == "arn:aws:eks:eu-west-1:123456789012:cluster/petstore-prod"
    assert (db.blue_green_update, db.log_retention_days) == (True, 365)


def test_defaults_apply_to_keys_left_out() -> None:
    raw = {
        "vpcId": "vpc-0123456789abcdef0",
        "privateSubnetIds": '["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]',
        "clusterSecurityGroupIds": '["sg-0123456789abcdef0"]',
        "migrationImage": "registry.example/petstore-migration@sha256:" + "a" * 64,
        "migrationRevision": "r1",
        "kubeContext": "staging-cluster",
        "sqlitePvcName": "data",
        "sqliteDatabaseUrl": "sqlite:////data/petstore.db",
        "alarmSqsQueueArns": '["arn:aws:sqs:eu-west-1:123456789012:alerts"]',
    }
    cfg = parse_config(raw, project="petstore-rds", stack="staging", region="eu-west-1")

    assert cfg.database.identifier == "petstore-staging"
    assert cfg.database.engine_major_version == 17
    assert cfg.database.master_username == "petstore_admin"
    assert cfg.database.monitoring_interval_seconds == 60
    assert cfg.database.ca_cert_identifier == "rds-ca-rsa2048-g1"
    assert cfg.credentials.password_version == 1
    assert cfg.kubernetes.cutover is False  # never switch the app by default
    assert cfg.kubernetes.migration_image_tag is None
    assert not cfg.production
    assert cfg.environment == "development"


# (stack, overrides, key named in the error, a fragment of the expected message)
BAD_CONFIGS = [
    ("dev", {"engineMajorVersion": 13}, "engineMajorVersion", "past RDS standard support"),
    ("dev", {"engineMajorVersion": 12}, "engineMajorVersion", "past RDS standard support"),
    ("dev", {"engineMajorVersion": 19}, "engineMajorVersion", "expected one of 14, 15, 16, 17, 18"),
    ("dev", {"engineMajorVersion": "16.4"}, "engineMajorVersion", "give only the major"),
    ("dev", {"storageIops": 12000}, "storageIops", "no explicit IOPS/throughput below 400 GiB"),
    (
        "prod",
        {"storageThroughputMibps": 500},
        "storageThroughputMibps",
        "no explicit IOPS/throughput below 400 GiB",
    ),
    (
        "dev",
        {"allocatedStorageGib": 400, "maxAllocatedStorageGib": 1000, "storageIops": 12000},
        "storageThroughputMibps",
        "set together",
    ),
    ("dev", {"allocatedStorageGib": 10}, "allocatedStorageGib", "expected an integer 20-65536"),
    ("dev", {"maxAllocatedStorageGib": 20}, "maxAllocatedStorageGib", "so storage can autoscale"),
    # AWS wants 10% more: 21 GiB over 20 is not enough, 22 is.
    ("dev", {"maxAllocatedStorageGib": 21}, "maxAllocatedStorageGib", "at least 1.1x"),
    (
        "prod",
        {"maxAllocatedStorageGib": 109},
        "maxAllocatedStorageGib",
        "at least 1.1x allocatedStorageGib (100)",
    ),
    ("dev", {"backupRetentionDays": 36}, "backupRetentionDays", "expected an integer 0-35, got 36"),
    ("dev", {"backupRetentionDays": -1}, "backupRetentionDays", "expected an integer 0-35, got -1"),
    ("prod", {"backupRetentionDays": 3}, "backupRetentionDays", "at least 7"),
    (
        "dev",
        {"monitoringIntervalSeconds": 7},
        "monitoringIntervalSeconds",
        "0, 1, 5, 10, 15, 30, 60",
    ),
    ("prod", {"multiAz": False}, "multiAz", "must be true in stack 'prod'"),
    ("prod", {"deletionProtection": False}, "deletionProtection", "must be true"),
    ("prod", {"createKmsKey": False}, "createKmsKey", "must be true"),
    ("prod", {"finalSnapshot": False}, "finalSnapshot", "must be true"),
    ("dev", {"multiAz": "yes"}, "multiAz", "expected true or false, got 'yes'"),
    ("dev", {"masterUsername": "postgres"}, "masterUsername", "reserved name 'postgres'"),
    ("dev", {"masterUsername": "Admin-1"}, "masterUsername", "lowercase PostgreSQL role name"),
    ("dev", {"caCertIdentifier": "rds-ca-2019"}, "caCertIdentifier", "rds-ca-rsa2048-g1"),
    ("dev", {"instanceClass": "t4g.small"}, "instanceClass", "an RDS class like db.t4g.small"),
    ("dev", {"instanceIdentifier": "Petstore_Dev"}, "instanceIdentifier", "an RDS identifier"),
    (
        "dev",
        {"databaseInsightsMode": "advanced"},
        "performanceInsightsRetentionDays",
        "needs at least 465 days, got 7",
    ),
    (
        "dev",
        {"performanceInsightsRetentionDays": 30},
        "performanceInsightsRetentionDays",
        "one of 7, 31",
    ),
    ("dev", {"databaseInsightsMode": "deluxe"}, "databaseInsightsMode", "standard, advanced"),
    ("dev", {"backupWindow": "25:00-26:00"}, "backupWindow", "hh24:mi-hh24:mi"),
    ("dev", {"backupWindow": "03:00-03:15"}, "backupWindow", "at least 30 minutes"),
    ("dev", {"maintenanceWindow": "sunday 04:00"}, "maintenanceWindow", "ddd:hh24:mi-ddd:hh24:mi"),
    ("dev", {"vpcId": "vpc-xyz"}, "vpcId", "a VPC ID"),
    ("dev", {"vpcId": None}, "vpcId", "required"),
    ("dev", {"privateSubnetIds": ["subnet-0a1b2c3d4e5f60718"]}, "privateSubnetIds", "at least 2"),
    ("dev", {"privateSubnetIds": "subnet-0a1b2c3d4e5f60718"}, "privateSubnetIds", "list of subnet"),
    ("dev", {"clusterSecurityGroupIds": []}, "clusterSecurityGroupIds", "at least 1 source"),
    ("dev", {"clusterSecurityGroupIds": ["0.0.0.0/0"]}, "clusterSecurityGroupIds", "invalid item"),
    ("dev", {"clusterStack": "acme/eks/dev"}, "vpcId", "either the network IDs or clusterStack"),
    ("prod", {"clusterStackOutputs": {"vpc": "x"}}, "clusterStackOutputs", "unknown entries"),
    ("dev", {"clusterStackOutputs": {"vpcId": "v"}}, "clusterStackOutputs", "only meaningful"),
    ("dev", {"passwordVersion": 0}, "passwordVersion", "expected an integer 1-1000000, got 0"),
    ("dev", {"secretRecoveryWindowDays": 3}, "secretRecoveryWindowDays", "one of 0, 7, 8"),
    ("prod", {"secretRecoveryWindowDays": 0}, "secretRecoveryWindowDays", "expected 7-30"),
    ("dev", {"alarmEmails": ["oncall"]}, "alarmEmails", "e-mail addresses"),
    ("dev", {"alarmHttpsEndpoints": None}, "alarmHttpsEndpoints", "needs no human confirmation"),
    ("prod", {"alarmHttpsEndpoints": None}, "alarmHttpsEndpoints", "reach no one until"),
    ("dev", {"alarmHttpsEndpoints": ["http://x.example/a"]}, "alarmHttpsEndpoints", "https://"),
    ("dev", {"alarmSqsQueueArns": ["arn:aws:sns:eu-west-1:1:t"]}, "alarmSqsQueueArns", "SQS queue"),
    ("dev", {"migrationImage": None}, "migrationImage", "required"),
    ("dev", {"migrationImage": "petstore-migration"}, "migrationImage", "pinned by digest"),
    ("dev", {"migrationImage": "repo/petstore-migration:latest"}, "migrationImage", "by digest"),
    ("dev", {"migrationImage": "repo/petstore-migration:3f1c2ab"}, "migrationImage", "by digest"),
    ("dev", {"migrationImage": "Repo With Spaces:1"}, "migrationImage", "a full image reference"),
    ("dev", {"migrationRevision": None}, "migrationRevision", "required while runMigration"),
    ("dev", {"migrationRevision": "Cutover_1"}, "migrationRevision", "a short lowercase name"),
    ("dev", {"kubeContext": None}, "kubeContext", "never the ambient current context"),
    ("dev", {"appSchemaCommand": ["alembic", "upgrade", "head"]}, "appImage", "by digest"),
    ("dev", {"appImage": "repo/app@sha256:" + "b" * 64}, "appSchemaCommand", "required with"),
    ("dev", {"appImage": "repo/app:1.2", "appSchemaCommand": ["x"]}, "appImage", "by digest"),
    ("prod", {"environment": "development"}, "environment", "must be production in stack"),
    ("dev", {"environment": "prod"}, "environment", "one of development, production"),
    ("dev", {"logRetentionDays": 2}, "logRetentionDays", "one of 1, 3, 5"),
    ("dev", {"sqlitePvcName": None}, "sqlitePvcName", "required"),
    ("dev", {"sqliteFiles": ["../etc/passwd"]}, "sqliteFiles", "invalid item(s) ['../etc/passwd']"),
    ("dev", {"sqliteFiles": []}, "sqliteFiles", "at least one SQLite file"),
    ("dev", {"sqliteFiles": ["a.db", "a.db"]}, "sqliteFiles", "duplicates"),
    ("dev", {"migrationOnConflict": "skip"}, "migrationOnConflict", "fail, renumber"),
    ("dev", {"namespace": "Pet_Store"}, "namespace", "a Kubernetes namespace name"),
    ("dev", {"appCaBundlePath": "certs/rds.pem"}, "appCaBundlePath", "an absolute path"),
    ("dev", {"cutover": False, "sqliteDatabaseUrl": None}, "sqliteDatabaseUrl", "required when"),
    ("dev", {"sqliteDatabaseUrl": "postgresql://x"}, "sqliteDatabaseUrl", "a sqlite:/// URL"),
    ("dev", {"dbPort": 80}, "dbPort", "expected an integer 1150-65535, got 80"),
    ("dev", {"backupRetentionDay": 7}, "backupRetentionDay", "did you mean backupRetentionDays?"),
]


@pytest.mark.parametrize(
    ("stack", "overrides", "key", "message"),
    BAD_CONFIGS,
    ids=[f"{s}-{k}-{i}" for i, (s, _, k, _) in enumerate(BAD_CONFIGS)],
)
def test_bad_config_fails_with_a_message_naming_the_key(
    stack: str, overrides: dict[str, object], key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        run_stack(stack, overrides)

    lines = [p for p in excinfo.value.problems if p.startswith(f"{NS}{key}: ")]
    assert lines, f"no problem names {NS}{key}: {excinfo.value.problems}"
    assert any(message in line for line in lines), lines
    assert f"invalid configuration for stack '{stack}'" in str(excinfo.value)


def test_missing_region_is_named() -> None:
    with pytest.raises(ConfigError, match=re.escape("aws:region: required")):
        run_stack("dev", {"aws:region": None})


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as excinfo:
        run_stack(
            "dev",
            {"backupRetentionDays": 40, "monitoringIntervalSeconds": 7, "engineMajorVersion": 13},
        )

    assert [p.split(": ")[0] for p in excinfo.value.problems] == [
        f"{NS}engineMajorVersion",
        f"{NS}backupRetentionDays",
        f"{NS}monitoringIntervalSeconds",
    ]
    assert str(excinfo.value).count("\n  - ") == 3


def test_backup_retention_message_is_exact() -> None:
    with pytest.raises(ConfigError) as excinfo:
        run_stack("dev", {"backupRetentionDays": 40})

    assert excinfo.value.problems == (
        "petstore-rds:backupRetentionDays: expected an integer 0-35, got 40",
    )


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        (
            {
                "vpcId": "vpc-0f1e2d3c4b5a69788",
                "privateSubnetIds": [],
                "nodeSecurityGroupIds": ["sg-0f9e8d7c6b5a43210"],
            },
            (
                "output 'privateSubnetIds' of stack 'acme/eks-cluster/prod' "
                "should be a non-empty list of subnet IDs, got []"
            ),
        ),
        (
            {
                "vpcId": "vpc-0f1e2d3c4b5a69788",
                "privateSubnetIds": ["subnet-0aa11bb22cc33dd44", "subnet-0bb22cc33dd44ee55"],
                "nodeSecurityGroupIds": "0.0.0.0/0",
            },
            (
                "output 'nodeSecurityGroupIds' of stack 'acme/eks-cluster/prod' "
                "should be a security group ID"
            ),
        ),
    ],
)
def test_bad_cluster_stack_outputs_are_named(outputs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        run_stack("prod", cluster_outputs=outputs)

    assert excinfo.value.problems[0].startswith("petstore-rds:clusterStackOutputs: ")
    assert message in excinfo.value.problems[0]


def test_every_key_the_program_reads_is_documented_and_nothing_else() -> None:
    doc = (REPO_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([A-Za-z:]+)` \|", doc, flags=re.MULTILINE))

    assert documented == known_keys() | {"aws:region"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_files_use_only_known_keys_and_commit_no_secret(stack: str) -> None:
    config, secret_keys = stack_config(stack)

    assert secret_keys == []
    assert {k.removeprefix(NS) for k in config if k.startswith(NS)} <= known_keys()
    assert "petstore-rds:kubeconfig" not in config


def test_a_malformed_list_is_reported_once_not_again_as_empty() -> None:
    with pytest.raises(ConfigError) as excinfo:
        run_stack("dev", {"privateSubnetIds": "subnet-0a1b2c3d4e5f60718"})

    assert excinfo.value.problems == (
        (
            "petstore-rds:privateSubnetIds: expected a list of subnet IDs like "
            "subnet-0123456789abcdef0 (YAML/JSON), got 'subnet-0a1b2c3d4e5f60718'"
        ),
    )


def test_keys_given_as_per_key_environment_variables_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The engine may hand config over as PULUMI_CONFIG_<KEY> variables, not only as one map.
    monkeypatch.setenv("PULUMI_CONFIG_PETSTORE_RDS_DBPORT", "6543")
    run = run_stack("dev", {"passwordVersion": 4242})  # a run of its own: not cached with others

    assert run.one("aws:rds/instance:Instance").inputs["port"] == 6543
