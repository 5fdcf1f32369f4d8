"""Day two under mocks with the real stack files: production recognised by config, protection
against destroy and replace, the write-only master password, a major upgrade that keeps the old
parameter group, the exported log groups created by the stack, the CMK's explicit policy, and
committed stacks that match the runbook."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from infra import database
from tests.support.pulumi_harness import REPO_ROOT, StackRun, run_stack

pytestmark = pytest.mark.infra

INSTANCE = "aws:rds/instance:Instance"
KEY = "aws:kms/key:Key"
SM_SECRET = "aws:secretsmanager/secret:Secret"
PARAMS = "aws:rds/parameterGroup:ParameterGroup"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
GUARDED = (INSTANCE, SM_SECRET)


@pytest.fixture(scope="module")
def prod() -> StackRun:
    return run_stack("prod")


@pytest.fixture(scope="module")
def dev() -> StackRun:
    return run_stack("dev")


def _guarded(run: StackRun) -> dict[str, tuple[bool, bool]]:
    found = {r.name: (r.protect, r.retain_on_delete) for r in run.resources if r.type_ in GUARDED}
    found.update(
        {
            r.name: (r.protect, r.retain_on_delete)
            for r in run.of_type(KEY)
            if "alarms" not in r.name
        }
    )
    return found


def test_prod_instance_key_and_secret_are_protected_and_retained(prod: StackRun) -> None:
    assert _guarded(prod) == {
        "petstore-prod-instance": (True, True),
        "petstore-prod-credentials-secret": (True, True),
        "petstore-prod-key": (True, True),
    }


def test_dev_can_be_torn_down(dev: StackRun) -> None:
    assert _guarded(dev) == {
        "petstore-dev-instance": (False, False),
        "petstore-dev-credentials-secret": (False, False),
    }


def test_production_is_recognised_by_config_not_the_stack_name() -> None:
    """The dev file set to production (as a stack named e.g. prod-eu would be) gets every
    production rule: the program refuses its dev settings, and once they are production-grade
    the instance, key and secret are protected."""
    with pytest.raises(Exception, match="multiAz: must be true") as excinfo:
        run_stack("dev", {"environment": "production"})
    assert "createKmsKey: must be true" in str(excinfo.value)
    run = run_stack(
        "dev",
        {
            "environment": "production",
            "multiAz": True,
            "deletionProtection": True,
            "createKmsKey": True,
            "finalSnapshot": True,
            "backupRetentionDays": 7,
            "secretRecoveryWindowDays": 30,
        },
    )
    assert set(_guarded(run).values()) == {(True, True)}
    assert len(_guarded(run)) == 3
    assert run.one(INSTANCE).inputs["blueGreenUpdate"] == {"enabled": True}


def test_the_master_password_is_write_only_and_versioned(prod: StackRun) -> None:
    inputs = prod.one(INSTANCE).inputs
    master = prod.one("random:index/randomPassword:RandomPassword", "master-password")

    assert "password" not in inputs
    assert inputs["passwordWo"] == master.outputs["result"]
    assert "passwordWo" in prod.one(INSTANCE).secret_inputs
    assert inputs["passwordWoVersion"] == 1
    assert "manageMasterUserPassword" not in inputs
    rotated = run_stack("prod", {"passwordVersion": 3}).one(INSTANCE).inputs
    assert rotated["passwordWoVersion"] == 3
    assert rotated["passwordWo"] != inputs["passwordWo"]


def test_parameter_group_is_per_major_and_retained_when_replaced(prod: StackRun) -> None:
    group = prod.one(PARAMS)

    assert group.name == "petstore-prod-params-pg17"
    assert group.inputs["namePrefix"] == "petstore-prod-pg17-"
    assert group.inputs["family"] == "postgres17"
    assert group.retain_on_delete is True
    assert group.delete_before_replace is False
    assert prod.one(INSTANCE).inputs["parameterGroupName"] == group.outputs["name"]


def test_a_major_upgrade_adds_a_new_group_and_upgrades_through_blue_green(
    prod: StackRun,
) -> None:
    upgraded = run_stack("prod", {"engineMajorVersion": 18})
    group = upgraded.one(PARAMS)
    instance = upgraded.one(INSTANCE).inputs

    # A new logical resource: Pulumi creates it, then "deletes" the pg17 one, which
    # retain_on_delete turns into leaving it in AWS while the instance still uses it.
    assert group.name == "petstore-prod-params-pg18"
    assert group.urn != prod.one(PARAMS).urn
    assert (group.inputs["family"], group.retain_on_delete) == ("postgres18", True)
    assert instance["engineVersion"] == "18"
    assert instance["allowMajorVersionUpgrade"] is True
    assert instance["blueGreenUpdate"] == {"enabled": True}
    assert instance["parameterGroupName"] == group.outputs["name"]
    assert upgraded.one(INSTANCE).protect is True


def test_blue_green_turns_on_logical_replication_only_where_used(
    prod: StackRun, dev: StackRun
) -> None:
    def params(run: StackRun) -> dict[str, tuple[str, str]]:
        return {
            p["name"]: (p["value"], p["applyMethod"]) for p in run.one(PARAMS).inputs["parameters"]
        }

    assert params(prod)["rds.logical_replication"] == ("1", "pending-reboot")
    assert "rds.logical_replication" not in params(dev)
    assert dev.one(INSTANCE).inputs["blueGreenUpdate"] == {"enabled": False}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_log_groups_exist_before_the_instance_with_retention_and_key(stack: str) -> None:
    run = run_stack(stack)
    groups = sorted(run.of_type(LOG_GROUP), key=lambda g: g.inputs["name"])
    instance = run.one(INSTANCE)

    assert [g.inputs["name"] for g in groups] == [
        f"/aws/rds/instance/petstore-{stack}/postgresql",
        f"/aws/rds/instance/petstore-{stack}/upgrade",
    ]
    for g in groups:
        assert g.inputs["retentionInDays"] == {"dev": 30, "prod": 365}[stack]
        assert run.depends_on(instance, g)
        if stack == "prod":
            assert g.inputs["kmsKeyId"] == run.one(KEY, "petstore-prod-key").outputs["arn"]
        else:
            assert "kmsKeyId" not in g.inputs  # no CMK in dev: CloudWatch's own encryption
    assert [g.inputs["name"].rsplit("/", 1)[1] for g in groups] == (
        instance.inputs["enabledCloudwatchLogsExports"]
    )


def test_the_database_key_has_an_explicit_policy(prod: StackRun) -> None:
    policy = json.loads(prod.one(KEY, "petstore-prod-key").inputs["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}

    assert statements["AccountAdministers"]["Principal"] == {
        "AWS": "arn:aws:iam::123456789012:root"
    }
    via = statements["UseThroughRdsAndSecretsManager"]["Condition"]["StringEquals"]
    assert via == {
        "kms:CallerAccount": "123456789012",
        "kms:ViaService": ["rds.eu-west-1.amazonaws.com", "secretsmanager.eu-west-1.amazonaws.com"],
    }
    logs = statements["CloudWatchLogsForThisInstance"]
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert logs["Condition"] == {
        "ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": (
                "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/rds/instance/petstore-prod/*"
            )
        }
    }
    assert "kms:*" not in json.dumps(
        [s for sid, s in statements.items() if sid != "AccountAdministers"]
    )


def test_engine_lifecycle_comment_says_rds_upgrades_at_end_of_standard_support() -> None:
    source = (REPO_ROOT / "infra" / "database.py").read_text(encoding="utf-8")
    config_doc = (REPO_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")

    assert database.ENGINE_LIFECYCLE_SUPPORT == "open-source-rds-extended-support-disabled"
    assert "RDS itself upgrades" in source
    assert "fails instead" not in source
    assert "RDS\nupgrades it to a newer major version itself" in config_doc.replace("**", "")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_committed_stacks_are_the_state_before_cutover_that_the_runbook_expects(
    stack: str,
) -> None:
    config = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))[
        "config"
    ]
    runbook = (REPO_ROOT / "docs" / "runbook.md").read_text(encoding="utf-8")

    assert config["petstore-rds:cutover"] is False
    assert config["petstore-rds:runMigration"] is True
    revision = config["petstore-rds:migrationRevision"]
    assert f"`migrationRevision: {revision}`" in runbook
    assert f"petstore-migration-{revision}" in runbook
    assert "`cutover: false`, `runMigration: true`" in runbook
    assert re.search(r"pulumi config get cutover .*# must print false", runbook)
    assert config["petstore-rds:environment"] == {"dev": "development", "prod": "production"}[stack]
    assert "@sha256:" in config["petstore-rds:migrationImage"]
    run = run_stack(stack)
    assert run.outputs["databaseTarget"] == "sqlite"
    assert run.outputs["jobName"] == f"petstore-migration-{revision}"
