"""The pure builders: URLs, secret payloads, Secret data, Job env and args, alarm specs and
parameter-group settings, tested as plain functions (no Pulumi runtime)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any
from urllib.parse import quote

import pytest
from psycopg.conninfo import conninfo_to_dict

from infra import alarms, credentials, database, k8s
from infra.credentials import PASSWORD_SPECIALS, database_url, rds_secret_payload

pytestmark = pytest.mark.infra

GIB = 1024**3

AWKWARD_PASSWORDS = [
    "p@ss:w/rd?#",
    "100%&sure=yes+no",
    "spaces and 'quotes' \"too\"",
    "ünïcødé-€",
    "semi;colon\\back",
    "-_.~",
]


@pytest.mark.parametrize("password", AWKWARD_PASSWORDS)
def test_database_url_percent_encodes_awkward_passwords_so_libpq_reads_them_back(
    password: str,
) -> None:
    url = database_url(
        user="petstore_admin",
        password=password,
        host="petstore-dev.abc123xyz.eu-west-1.rds.amazonaws.com",
        port=5432,
        dbname="petstore",
        sslmode="verify-full",
        sslrootcert="/opt/rds/global-bundle.pem",
    )

    assert conninfo_to_dict(url) == {
        "user": "petstore_admin",
        "password": password,
        "host": "petstore-dev.abc123xyz.eu-west-1.rds.amazonaws.com",
        "port": "5432",
        "dbname": "petstore",
        "sslmode": "verify-full",
        "sslrootcert": "/opt/rds/global-bundle.pem",
    }


def test_database_url_without_root_cert_has_only_sslmode() -> None:
    url = database_url(
        user="u", password="p", host="h.example", port=6543, dbname="d", sslmode="require"
    )

    assert url == "postgresql://u:p@h.example:6543/d?sslmode=require"


def test_database_url_encodes_user_and_database_names() -> None:
    url = database_url(
        user="a@b", password="x", host="h", port=5432, dbname="my db", sslmode="require"
    )

    assert url == "postgresql://a%40b:x@h:5432/my%20db?sslmode=require"


def test_password_specials_need_no_percent_encoding() -> None:
    assert all(quote(c, safe="") == c for c in PASSWORD_SPECIALS)
    assert not set(PASSWORD_SPECIALS) & set('/@" ')  # RDS refuses these in master passwords


def test_rds_secret_payload_has_the_standard_rds_shape() -> None:
    payload = rds_secret_payload(
        host="h.example", port=5432, username="u", password="p", dbname="d", identifier="i"
    )

    assert payload == {
        "engine": "postgres",
        "host": "h.example",
        "port": 5432,
        "username": "u",
        "password": "p",
        "dbname": "d",
        "dbInstanceIdentifier": "i",
    }


def test_migration_args_list_every_source_then_the_target_file_verify_and_json_logs() -> None:
    assert k8s.migration_args(["a.db", "b.db"], "fail") == [
        "run",
        "--source",
        "/data/sqlite/a.db",
        "--source",
        "/data/sqlite/b.db",
        "--target-file",
        "/var/run/secrets/petstore-db/target-url",
        "--verify",
        "--source-immutable",
        "--log-format",
        "json",
    ]


def test_migration_args_load_into_the_apps_schema_after_its_schema_command() -> None:
    assert k8s.migration_args(["a.db"], "fail", app_schema_first=True)[-2:] == [
        "--schema",
        "existing",
    ]
    assert "--schema" not in k8s.migration_args(["a.db"], "fail")


def test_migration_args_add_renumber_only_when_configured() -> None:
    assert k8s.migration_args(["a.db"], "renumber")[-2:] == ["--on-conflict", "renumber"]
    assert "--on-conflict" not in k8s.migration_args(["a.db"], "fail")


def test_migration_job_env_carries_no_credentials() -> None:
    env = k8s.migration_job_env()

    assert [(e.name, e.value, e.value_from) for e in env] == [
        ("PYTHONDONTWRITEBYTECODE", "1", None)
    ]


def test_migration_secret_verifies_the_server_against_the_baked_ca_bundle() -> None:
    data = k8s.migration_secret_data(
        user="u",
        password="p w",
        host="h",
        port=5432,
        dbname="d",
        app_ca_bundle_path=None,
        with_app_schema_url=False,
    )

    assert data == {
        "target-url": "postgresql://u:p%20w@h:5432/d?sslmode=verify-full"
        "&sslrootcert=/opt/rds/global-bundle.pem"
    }
    assert k8s.RDS_CA_BUNDLE_PATH == "/opt/rds/global-bundle.pem"


@pytest.mark.parametrize(
    ("ca_bundle", "query"),
    [
        (None, "sslmode=require"),
        ("/etc/ssl/rds.pem", "sslmode=verify-full&sslrootcert=/etc/ssl/rds.pem"),
    ],
)
def test_migration_secret_gives_the_app_schema_command_the_apps_tls(
    ca_bundle: str | None, query: str
) -> None:
    data = k8s.migration_secret_data(
        user="u",
        password="p",
        host="h",
        port=5432,
        dbname="d",
        app_ca_bundle_path=ca_bundle,
        with_app_schema_url=True,
    )

    assert data["app-schema-url"] == f"postgresql://u:p@h:5432/d?{query}"
    assert data["target-url"].endswith("sslrootcert=/opt/rds/global-bundle.pem")


def test_migration_job_name_is_the_revision_and_never_the_image() -> None:
    assert k8s.migration_job_name("cutover-1") == "petstore-migration-cutover-1"
    assert len(k8s.migration_job_name("a" * 32)) <= 63  # a DNS label


def test_roles_job_name_changes_with_any_setting_and_only_then() -> None:
    base = {"masterPasswordVersion": 1, "appPasswordVersion": 1, "layout": 1}
    name = k8s.roles_job_name(base)

    assert name == k8s.roles_job_name(dict(reversed(list(base.items()))))
    assert name.startswith("petstore-db-roles-")
    assert len(name) == len("petstore-db-roles-") + 10
    for key in base:
        assert k8s.roles_job_name({**base, key: 2}) != name, key


def test_roles_spec_holds_the_master_login_and_every_role() -> None:
    spec = json.loads(
        k8s.roles_spec(
            master_user="admin",
            master_password="m/p",
            owner_password="o",
            app_passwords={"petstore_app_a": "a", "petstore_app_b": "b"},
            host="h",
            port=5432,
            dbname="petstore",
        )
    )

    assert spec == {
        "admin_url": "postgresql://admin:m%2Fp@h:5432/petstore?sslmode=verify-full"
        "&sslrootcert=/opt/rds/global-bundle.pem",
        "database": "petstore",
        "schema": "public",
        "owner": {"name": "petstore_owner", "password": "o"},
        "app_group": "petstore_app",
        "app_users": [
            {"name": "petstore_app_a", "password": "a"},
            {"name": "petstore_app_b", "password": "b"},
        ],
    }


def test_app_schema_command_reads_the_url_from_the_mounted_file_and_execs_the_command(
    tmp_path: Any,
) -> None:
    command = k8s.app_schema_command(
        ["python", "-c", "import os; print(os.environ['DATABASE_URL'])"]
    )
    url_file = tmp_path / "app-schema-url"
    url_file.write_text("postgresql://u:p@h/d", encoding="utf-8")

    assert command[:2] == ["/bin/sh", "-c"]
    done = subprocess.run(
        [*command[:3], command[3], sys.executable, *command[5:]],
        env={"DATABASE_URL_FILE": str(url_file), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == "postgresql://u:p@h/d\n"


def test_job_network_policy_allows_dns_and_the_database_port_only() -> None:
    spec = k8s.job_network_policy_spec(6432, k8s.job_pod_selector("petstore-dev"))

    assert spec == {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/instance": "petstore-dev",
                "app.kubernetes.io/part-of": "petstore-db-jobs",
            }
        },
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [],
        "egress": [
            {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
            {"ports": [{"protocol": "TCP", "port": 6432}]},
        ],
    }


@pytest.mark.parametrize(
    ("version", "active", "versions"),
    [
        (1, "petstore_app_a", {"petstore_app_a": 1, "petstore_app_b": 0}),
        (2, "petstore_app_b", {"petstore_app_a": 1, "petstore_app_b": 2}),
        (3, "petstore_app_a", {"petstore_app_a": 3, "petstore_app_b": 2}),
        (10, "petstore_app_b", {"petstore_app_a": 9, "petstore_app_b": 10}),
    ],
)
def test_each_app_password_bump_changes_only_the_login_the_app_is_about_to_use(
    version: int, active: str, versions: dict[str, int]
) -> None:
    assert credentials.active_app_login(version) == active
    assert credentials.app_login_versions(version) == versions
    previous = credentials.app_login_versions(version - 1)
    changed = [login for login in versions if versions[login] != previous[login]]
    assert changed == [active]


def test_app_secret_requires_tls_by_default() -> None:
    data = k8s.app_secret_data(
        user="u", password="p", host="h", port=5432, dbname="d", ca_bundle_path=None
    )

    assert data == {
        "DATABASE_URL": "postgresql://u:p@h:5432/d?sslmode=require",
        "DB_HOST": "h",
        "DB_PORT": "5432",
        "DB_NAME": "d",
        "DB_USER": "u",
        "DB_PASSWORD": "p",
        "DB_SSLMODE": "require",
    }


def test_app_secret_verifies_full_when_the_app_has_a_ca_bundle() -> None:
    data = k8s.app_secret_data(
        user="u", password="p", host="h", port=5432, dbname="d", ca_bundle_path="/etc/rds.pem"
    )

    assert (
        data["DATABASE_URL"]
        == "postgresql://u:p@h:5432/d?sslmode=verify-full&sslrootcert=/etc/rds.pem"
    )
    assert data["DB_SSLMODE"] == "verify-full"
    assert data["DB_SSLROOTCERT"] == "/etc/rds.pem"


def test_rollback_secret_holds_only_the_sqlite_url() -> None:
    assert k8s.rollback_secret_data("sqlite:////data/petstore.db") == {
        "DATABASE_URL": "sqlite:////data/petstore.db"
    }


def test_restart_token_is_stable_and_changes_with_any_connection_setting() -> None:
    settings = {"host": "h", "port": 5432, "passwordVersion": 1}
    token = k8s.restart_token("postgresql", settings)

    assert token == k8s.restart_token("postgresql", dict(reversed(settings.items())))
    assert token.startswith("postgresql-")
    assert len(token) == len("postgresql-") + 16
    assert token != k8s.restart_token("postgresql", {**settings, "passwordVersion": 2})
    assert token != k8s.restart_token("sqlite", settings)


def test_recommended_labels_omit_version_when_unknown() -> None:
    labels = k8s.recommended_labels("n", "i", "c", None)

    assert labels == {
        "app.kubernetes.io/name": "n",
        "app.kubernetes.io/instance": "i",
        "app.kubernetes.io/component": "c",
        "app.kubernetes.io/part-of": "petstore",
        "app.kubernetes.io/managed-by": "pulumi",
    }
    assert k8s.recommended_labels("n", "i", "c", "abc")["app.kubernetes.io/version"] == "abc"


def test_parameter_group_forces_tls_and_logs_slow_queries_connections_and_lock_waits() -> None:
    params = {
        p["name"]: (p["value"], p["apply_method"]) for p in database.parameter_group_parameters()
    }

    assert params["rds.force_ssl"] == ("1", "immediate")
    assert params["log_min_duration_statement"] == ("1000", "immediate")
    assert params["log_connections"] == ("1", "immediate")
    assert params["log_disconnections"] == ("1", "immediate")
    assert params["log_lock_waits"] == ("1", "immediate")
    assert [p["name"] for p in database.parameter_group_parameters()] == sorted(params)


def test_monitoring_role_trusts_only_rds_monitoring_from_this_account() -> None:
    policy = json.loads(database.monitoring_assume_role_policy("123456789012"))

    assert policy["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "monitoring.rds.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
        }
    ]


@pytest.mark.parametrize(
    ("instance_class", "gib"),
    [
        ("db.t4g.micro", 1),
        ("db.t4g.small", 2),
        ("db.t3.medium", 4),
        ("db.t4g.2xlarge", 32),
        ("db.m7g.large", 8),
        ("db.m6i.xlarge", 16),
        ("db.m7g.4xlarge", 64),
        ("db.r7g.large", 16),
        ("db.r6g.2xlarge", 64),
    ],
)
def test_instance_memory_of_known_classes(instance_class: str, gib: int) -> None:
    assert alarms.instance_memory_bytes(instance_class) == gib * GIB


@pytest.mark.parametrize("instance_class", ["db.x2g.large", "db.m7g.micro", "db.serverless"])
def test_instance_memory_of_unknown_classes_is_none(instance_class: str) -> None:
    assert alarms.instance_memory_bytes(instance_class) is None


def _specs(
    instance_class: str, gib: int, ceiling: int | None = None
) -> dict[str, alarms.AlarmSpec]:
    return {s.key: s for s in alarms.alarm_specs(instance_class, gib, ceiling)}


def test_usable_memory_is_below_nominal_by_the_rds_reserve() -> None:
    # 2 GiB - 256 MiB - 5.5% of 2 GiB
    assert alarms.usable_memory_bytes(2 * GIB) == 1760936591
    assert alarms.usable_memory_bytes(8 * GIB) == 7849052733


def test_alarm_specs_for_a_small_burstable_instance() -> None:
    specs = _specs("db.t4g.small", 20, 50)

    assert list(specs) == [
        "cpu-high",
        "free-storage-low",
        "freeable-memory-low",
        "connections-high",
        "read-latency-high",
        "write-latency-high",
        "disk-queue-high",
        "transaction-ids-high",
        "ebs-io-balance-low",
        "ebs-byte-balance-low",
        "cpu-surplus-credits-charged",
        "notifications-failed",
    ]
    cpu = specs["cpu-high"]
    assert (cpu.metric, cpu.statistic, cpu.comparison, cpu.threshold, cpu.periods) == (
        "CPUUtilization",
        "Average",
        "GreaterThanThreshold",
        80,
        2,
    )
    # 5% of the 50 GiB ceiling, sustained 30 minutes: below autoscaling's trigger (10% free
    # of the current size) once the size passes half the ceiling, and it follows the growth.
    storage = specs["free-storage-low"]
    assert (storage.threshold, storage.periods) == (round(2.5 * GIB), 6)
    assert specs["freeable-memory-low"].threshold == 176093659  # 10% of usable, not nominal
    # max_connections = usable 1760936591 / 9531392 = 184; alarm above 80%.
    assert specs["connections-high"].threshold == 147
    assert specs["read-latency-high"].threshold == 0.020
    assert specs["write-latency-high"].threshold == 0.020
    assert specs["disk-queue-high"].threshold == 20
    xid = specs["transaction-ids-high"]
    assert (xid.metric, xid.comparison, xid.threshold) == (
        "MaximumUsedTransactionIDs",
        "GreaterThanThreshold",
        1_000_000_000,
    )
    for key, metric in (
        ("ebs-io-balance-low", "EBSIOBalance%"),
        ("ebs-byte-balance-low", "EBSByteBalance%"),
    ):
        assert (specs[key].metric, specs[key].comparison, specs[key].threshold) == (
            metric,
            "LessThanThreshold",
            20,
        )
    credits = specs["cpu-surplus-credits-charged"]
    assert (credits.metric, credits.statistic, credits.comparison, credits.threshold) == (
        "CPUSurplusCreditsCharged",
        "Sum",
        "GreaterThanThreshold",
        0,
    )
    assert "CPUCreditBalance" not in {s.metric for s in specs.values()}


def test_alarm_specs_for_a_general_purpose_instance_have_no_credit_alarm() -> None:
    specs = _specs("db.m7g.large", 100, 500)

    assert "cpu-surplus-credits-charged" not in specs
    assert specs["free-storage-low"].threshold == 25 * GIB  # 5% of the 500 GiB ceiling
    assert specs["connections-high"].threshold == 658  # 80% of usable 7849052733 / 9531392 = 823
    assert "ebs-io-balance-low" in specs  # m7g.large bursts its EBS bandwidth


def test_large_classes_have_sustained_ebs_bandwidth_and_no_balance_alarms() -> None:
    specs = _specs("db.m7g.8xlarge", 100, 500)

    assert "ebs-io-balance-low" not in specs
    assert "ebs-byte-balance-low" not in specs


def test_storage_alarm_follows_the_ceiling_not_the_initial_size() -> None:
    assert _specs("db.m7g.large", 100, 1000)["free-storage-low"].threshold == 50 * GIB
    assert _specs("db.m7g.large", 100)["free-storage-low"].threshold == 5 * GIB  # no autoscaling


def test_alarm_specs_fall_back_for_classes_not_in_the_table() -> None:
    specs = _specs("db.x2g.large", 20)

    assert specs["freeable-memory-low"].threshold == alarms.FALLBACK_MEMORY_BYTES
    assert specs["connections-high"].threshold == int(0.8 * alarms.FALLBACK_MAX_CONNECTIONS)


def test_topic_key_lets_only_this_accounts_alarms_and_event_subscriptions_publish() -> None:
    policy = json.loads(alarms.topic_key_policy("123456789012", "aws", "eu-west-1"))
    admin, cloudwatch, rds = policy["Statement"]

    assert admin["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert rds["Principal"] == {"Service": "events.rds.amazonaws.com"}
    for statement, source in (
        (cloudwatch, "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:*"),
        (rds, "arn:aws:rds:eu-west-1:123456789012:es:*"),
    ):
        assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
        assert statement["Condition"] == {
            "StringEquals": {"aws:SourceAccount": "123456789012"},
            "ArnLike": {"aws:SourceArn": source},
        }


def test_pending_subscriptions_lists_only_the_unconfirmed() -> None:
    assert alarms.pending_subscriptions([("https", False), ("email", True), ("sqs", False)]) == [
        "email"
    ]
    assert alarms.pending_subscriptions([("https", False)]) == []
