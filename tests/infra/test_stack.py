"""Every resource of the real dev and prod programs, with the property values that matter,
as registered under mocks from the real Pulumi.<stack>.yaml."""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections import Counter
from typing import Any

import pytest

from infra.tags import REQUIRED_TAG_KEYS
from tests.support.pulumi_harness import (
    ACCOUNT_ID,
    CLUSTER_STACK_OUTPUTS,
    RegisteredResource,
    StackRun,
    run_stack,
)

pytestmark = pytest.mark.infra

STACKS = ["dev", "prod"]
INSTANCE = "aws:rds/instance:Instance"
SG = "aws:ec2/securityGroup:SecurityGroup"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


@pytest.fixture(scope="module", params=STACKS)
def run(request: pytest.FixtureRequest) -> StackRun:
    return run_stack(request.param)


@pytest.fixture(scope="module")
def dev() -> StackRun:
    return run_stack("dev")


@pytest.fixture(scope="module")
def prod() -> StackRun:
    return run_stack("prod")


def _custom_types(run: StackRun) -> Counter[str]:
    return Counter(r.type_ for r in run.resources if r.custom)


def test_dev_registers_exactly_these_resources(dev: StackRun) -> None:
    assert _custom_types(dev) == {
        "aws:rds/subnetGroup:SubnetGroup": 1,
        SG: 1,
        # master, owner, app login a, app login b
        "random:index/randomPassword:RandomPassword": 4,
        "aws:rds/parameterGroup:ParameterGroup": 1,
        "aws:cloudwatch/logGroup:LogGroup": 2,  # postgresql and upgrade logs
        "aws:iam/role:Role": 1,
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment": 1,
        INSTANCE: 1,
        "aws:secretsmanager/secret:Secret": 1,
        "aws:secretsmanager/secretVersion:SecretVersion": 1,
        "aws:kms/key:Key": 1,  # the alarm topic's key
        "aws:sns/topic:Topic": 1,
        "aws:sns/topicSubscription:TopicSubscription": 1,  # the HTTPS endpoint
        ALARM: 12,  # with the surplus-credit alarm: db.t4g is burstable
        "aws:rds/eventSubscription:EventSubscription": 1,
        "pulumi:providers:kubernetes": 1,
        "kubernetes:core/v1:Namespace": 1,
        "kubernetes:networking.k8s.io/v1:NetworkPolicy": 1,
        "kubernetes:core/v1:Secret": 3,  # roles, migration, app
        "kubernetes:batch/v1:Job": 2,  # roles, migration
    }


def test_prod_registers_exactly_these_resources(prod: StackRun) -> None:
    assert _custom_types(prod) == {
        "pulumi:pulumi:StackReference": 1,
        "aws:rds/subnetGroup:SubnetGroup": 1,
        SG: 1,
        "random:index/randomPassword:RandomPassword": 4,
        "random:index/randomId:RandomId": 1,  # the final snapshot's unique suffix
        "aws:kms/key:Key": 2,  # the database's CMK and the alarm topic's key
        "aws:kms/alias:Alias": 1,
        "aws:rds/parameterGroup:ParameterGroup": 1,
        "aws:cloudwatch/logGroup:LogGroup": 2,
        "aws:iam/role:Role": 1,
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment": 1,
        INSTANCE: 1,
        "aws:secretsmanager/secret:Secret": 1,
        "aws:secretsmanager/secretVersion:SecretVersion": 1,
        "aws:sns/topic:Topic": 1,
        "aws:sns/topicSubscription:TopicSubscription": 2,  # HTTPS and e-mail
        ALARM: 11,
        "aws:rds/eventSubscription:EventSubscription": 1,
        "pulumi:providers:kubernetes": 1,
        "kubernetes:networking.k8s.io/v1:NetworkPolicy": 1,
        "kubernetes:core/v1:Secret": 3,
        "kubernetes:batch/v1:Job": 2,
        "kubernetes:apps/v1:DeploymentPatch": 1,
    }


def test_components_use_petstore_tokens_and_every_resource_has_a_component_parent(
    run: StackRun,
) -> None:
    components = {r.urn: r for r in run.resources if not r.custom}
    assert {r.type_ for r in components.values()} == {
        "petstore-rds:network:Network",
        "petstore-rds:database:Database",
        "petstore-rds:credentials:MasterPassword",
        "petstore-rds:credentials:RolePasswords",
        "petstore-rds:credentials:DatabaseSecret",
        "petstore-rds:alarms:Alarms",
        "petstore-rds:k8s:KubernetesWiring",
    }
    orphans = [
        r.name
        for r in run.resources
        if r.custom and r.type_ != "pulumi:pulumi:StackReference" and r.parent not in components
    ]
    assert orphans == []


def _taggable(type_: str) -> bool:
    package, rest = type_.split(":", 1)
    if package != "aws":
        return False
    module, cls_name = rest.split(":")
    cls = getattr(importlib.import_module(f"pulumi_aws.{module.split('/')[0]}"), cls_name)
    return "tags" in inspect.signature(cls._internal_init).parameters


def test_every_taggable_aws_resource_carries_the_required_tags(run: StackRun) -> None:
    taggable = [r for r in run.resources if r.custom and _taggable(r.type_)]

    assert len(taggable) >= 15
    for r in taggable:
        tags = r.inputs.get("tags", {})
        assert {k: tags.get(k) for k in REQUIRED_TAG_KEYS} == {
            "project": "petstore-rds",
            "environment": run.stack,
            "managed-by": "pulumi",
        }, r.name
        assert tags["tier"] == {"dev": "development", "prod": "production"}[run.stack], r.name


def _instance(run: StackRun) -> RegisteredResource:
    return run.one(INSTANCE)


def _master_password(run: StackRun) -> str:
    return str(
        run.one("random:index/randomPassword:RandomPassword", "master-password").outputs["result"]
    )


COMMON_INSTANCE_INPUTS: dict[str, Any] = {
    "engine": "postgres",
    "engineVersion": "17",
    "engineLifecycleSupport": "open-source-rds-extended-support-disabled",
    "storageType": "gp3",
    "storageEncrypted": True,
    "dbName": "petstore",
    "username": "petstore_admin",
    "port": 5432,
    "publiclyAccessible": False,
    "networkType": "IPV4",
    "iamDatabaseAuthenticationEnabled": False,
    "caCertIdentifier": "rds-ca-rsa2048-g1",
    "enabledCloudwatchLogsExports": ["postgresql", "upgrade"],
    "performanceInsightsEnabled": True,
    "autoMinorVersionUpgrade": True,
    "allowMajorVersionUpgrade": True,
    "copyTagsToSnapshot": True,
    "backupWindow": "02:00-03:00",
    "maintenanceWindow": "sun:03:30-sun:04:30",
}

INSTANCE_INPUTS: dict[str, dict[str, Any]] = {
    "dev": {
        "identifier": "petstore-dev",
        "instanceClass": "db.t4g.small",
        "allocatedStorage": 20,
        "maxAllocatedStorage": 50,
        "multiAz": False,
        "backupRetentionPeriod": 1,
        "deletionProtection": False,
        "skipFinalSnapshot": True,
        "deleteAutomatedBackups": True,
        "monitoringInterval": 60,
        "databaseInsightsMode": "standard",
        "performanceInsightsRetentionPeriod": 7,
        "applyImmediately": True,
        "blueGreenUpdate": {"enabled": False},
    },
    "prod": {
        "identifier": "petstore-prod",
        "instanceClass": "db.m7g.large",
        "allocatedStorage": 100,
        "maxAllocatedStorage": 500,
        "multiAz": True,
        "backupRetentionPeriod": 14,
        "deletionProtection": True,
        "skipFinalSnapshot": False,
        "deleteAutomatedBackups": False,
        "monitoringInterval": 15,
        "databaseInsightsMode": "advanced",
        "performanceInsightsRetentionPeriod": 465,
        "applyImmediately": False,
        "blueGreenUpdate": {"enabled": True},
    },
}


def test_instance_properties(run: StackRun) -> None:
    inputs = _instance(run).inputs
    expected = {**COMMON_INSTANCE_INPUTS, **INSTANCE_INPUTS[run.stack]}

    assert {k: inputs.get(k) for k in expected} == expected
    assert "iops" not in inputs  # gp3 below 400 GiB: no explicit IOPS/throughput
    assert "storageThroughput" not in inputs
    assert inputs["username"] != "postgres"


def test_prod_final_snapshot_name_is_unique_per_instance(prod: StackRun) -> None:
    suffix = prod.one("random:index/randomId:RandomId")
    assert suffix.inputs["byteLength"] == 4
    assert suffix.inputs["keepers"] == {"identifier": "petstore-prod"}
    hexed = suffix.outputs["hex"]
    assert re.fullmatch(r"[0-9a-f]{8}", hexed)
    assert _instance(prod).inputs["finalSnapshotIdentifier"] == f"petstore-prod-final-{hexed}"


def test_dev_takes_no_final_snapshot(dev: StackRun) -> None:
    inputs = _instance(dev).inputs
    assert inputs["skipFinalSnapshot"] is True
    assert "finalSnapshotIdentifier" not in inputs
    assert not [r for r in dev.resources if r.type_ == "random:index/randomId:RandomId"]


def test_instance_uses_the_stacks_subnet_group_security_group_and_parameter_group(
    run: StackRun,
) -> None:
    inputs = _instance(run).inputs

    assert inputs["dbSubnetGroupName"] == run.one("aws:rds/subnetGroup:SubnetGroup").outputs["name"]
    assert inputs["vpcSecurityGroupIds"] == [run.one(SG).id]
    assert run.one(SG).id.startswith("sg-")
    assert (
        inputs["parameterGroupName"]
        == run.one("aws:rds/parameterGroup:ParameterGroup").outputs["name"]
    )
    assert inputs["monitoringRoleArn"] == run.one("aws:iam/role:Role").outputs["arn"]


def test_dev_storage_uses_the_aws_managed_key(dev: StackRun) -> None:
    inputs = _instance(dev).inputs

    assert "kmsKeyId" not in inputs
    assert "performanceInsightsKmsKeyId" not in inputs
    assert (
        dev.one("aws:secretsmanager/secret:Secret").inputs["kmsKeyId"] == "alias/aws/secretsmanager"
    )


def test_prod_storage_secret_and_insights_use_the_stacks_cmk(prod: StackRun) -> None:
    key = prod.one("aws:kms/key:Key", "petstore-prod-key")
    inputs = _instance(prod).inputs

    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["deletionWindowInDays"] == 30
    assert inputs["kmsKeyId"] == key.outputs["arn"]
    assert inputs["performanceInsightsKmsKeyId"] == key.outputs["arn"]
    assert prod.one("aws:secretsmanager/secret:Secret").inputs["kmsKeyId"] == key.outputs["arn"]
    alias = prod.one("aws:kms/alias:Alias")
    assert (alias.inputs["name"], alias.inputs["targetKeyId"]) == (
        "alias/petstore-prod",
        key.outputs["keyId"],
    )


def test_parameter_group_matches_the_engine_major_and_forces_tls(run: StackRun) -> None:
    pg = run.one("aws:rds/parameterGroup:ParameterGroup")
    params = {p["name"]: p["value"] for p in pg.inputs["parameters"]}

    assert pg.inputs["family"] == "postgres17"
    assert params["rds.force_ssl"] == "1"
    assert params["log_min_duration_statement"] == "1000"
    assert params["log_connections"] == params["log_disconnections"] == "1"
    assert params["log_lock_waits"] == "1"


def test_engine_major_follows_config_into_version_and_parameter_family() -> None:
    run = run_stack("dev", {"engineMajorVersion": 16})

    assert _instance(run).inputs["engineVersion"] == "16"
    assert run.one("aws:rds/parameterGroup:ParameterGroup").inputs["family"] == "postgres16"


def test_gp3_iops_and_throughput_are_passed_from_400_gib() -> None:
    run = run_stack(
        "dev",
        {
            "allocatedStorageGib": 400,
            "maxAllocatedStorageGib": 1000,
            "storageIops": 12000,
            "storageThroughputMibps": 500,
        },
    )

    inputs = _instance(run).inputs
    assert (inputs["allocatedStorage"], inputs["iops"], inputs["storageThroughput"]) == (
        400,
        12000,
        500,
    )


def test_monitoring_role_trusts_rds_monitoring_and_has_the_managed_policy(run: StackRun) -> None:
    role = run.one("aws:iam/role:Role")
    attachment = run.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment")

    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
    assert trust["Statement"][0]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
    assert attachment.inputs["role"] == role.outputs["name"]
    assert attachment.inputs["policyArn"] == (
        "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
    )


def test_monitoring_interval_zero_drops_the_role() -> None:
    run = run_stack("dev", {"monitoringIntervalSeconds": 0})

    assert run.of_type("aws:iam/role:Role") == []
    assert _instance(run).inputs["monitoringInterval"] == 0
    assert "monitoringRoleArn" not in _instance(run).inputs


EXPECTED_NETWORK = {
    "dev": (
        "vpc-0d1e2f3a4b5c6d7e8",
        ["subnet-0a1b2c3d4e5f60718", "subnet-0b2c3d4e5f6071829"],
        ["sg-0c3d4e5f607182930"],
    ),
    "prod": (
        CLUSTER_STACK_OUTPUTS["vpcId"],
        CLUSTER_STACK_OUTPUTS["privateSubnetIds"],
        CLUSTER_STACK_OUTPUTS["nodeSecurityGroupIds"],
    ),
}


def test_network_uses_the_configured_or_referenced_ids(run: StackRun) -> None:
    vpc, subnets, groups = EXPECTED_NETWORK[run.stack]
    sg = run.one(SG)

    assert sg.inputs["vpcId"] == vpc
    assert run.one("aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"] == subnets
    assert sg.inputs["ingress"][0]["securityGroups"] == groups


def test_prod_reads_the_network_from_the_cluster_stack(prod: StackRun) -> None:
    ref = prod.one("pulumi:pulumi:StackReference")

    assert ref.inputs["name"] == "acme/eks-cluster/prod"


def test_the_only_ingress_is_postgres_from_the_configured_groups(run: StackRun) -> None:
    sg = run.one(SG)
    _, _, groups = EXPECTED_NETWORK[run.stack]

    assert sg.inputs["ingress"] == [
        {
            "description": "PostgreSQL (TCP 5432) from the EKS cluster/node security groups",
            "protocol": "tcp",
            "fromPort": 5432,
            "toPort": 5432,
            "securityGroups": groups,
        }
    ]
    assert sg.inputs["egress"] == []
    assert sg.inputs["description"]


def test_no_resource_opens_anything_to_the_internet(run: StackRun) -> None:
    text = json.dumps([r.inputs for r in run.resources])

    assert "0.0.0.0/0" not in text
    assert "::/0" not in text
    assert "cidrBlocks" not in text


def test_ingress_port_follows_db_port() -> None:
    run = run_stack("dev", {"dbPort": 6432})

    rule = run.one(SG).inputs["ingress"][0]
    assert (rule["fromPort"], rule["toPort"]) == (6432, 6432)
    assert _instance(run).inputs["port"] == 6432


def test_secrets_manager_secret_holds_the_rds_shape_from_the_instance_outputs(
    run: StackRun,
) -> None:
    secret = run.one("aws:secretsmanager/secret:Secret")
    version = run.one("aws:secretsmanager/secretVersion:SecretVersion")
    instance = _instance(run)
    password = _master_password(run)

    assert secret.inputs["recoveryWindowInDays"] == {"dev": 7, "prod": 30}[run.stack]
    assert secret.inputs["namePrefix"] == f"petstore-{run.stack}-master-"
    assert "passwordVersion" in secret.inputs["description"]
    assert version.inputs["secretId"] == secret.outputs["arn"]
    assert json.loads(version.inputs["secretString"]) == {
        "engine": "postgres",
        "host": instance.outputs["address"],
        "port": 5432,
        "username": "petstore_admin",
        "password": password,
        "dbname": "petstore",
        "dbInstanceIdentifier": f"petstore-{run.stack}",
    }


def test_password_is_long_url_safe_and_rotates_with_its_version(run: StackRun) -> None:
    pw = run.one("random:index/randomPassword:RandomPassword", "master-password")

    assert pw.inputs["length"] == 32
    assert pw.inputs["special"] is True
    assert pw.inputs["overrideSpecial"] == "-_.~"
    assert pw.inputs["keepers"] == {"version": "1"}
    rotated = run_stack(run.stack, {"passwordVersion": 2})
    assert rotated.one("random:index/randomPassword:RandomPassword", "master-password").inputs[
        "keepers"
    ] == {"version": "2"}


COMMON_ALARMS = {
    "cpu-high": ("CPUUtilization", "GreaterThanThreshold", 80, 2),
    "read-latency-high": ("ReadLatency", "GreaterThanThreshold", 0.02, 3),
    "write-latency-high": ("WriteLatency", "GreaterThanThreshold", 0.02, 3),
    "disk-queue-high": ("DiskQueueDepth", "GreaterThanThreshold", 20, 3),
    "transaction-ids-high": ("MaximumUsedTransactionIDs", "GreaterThanThreshold", 10**9, 1),
    "ebs-io-balance-low": ("EBSIOBalance%", "LessThanThreshold", 20, 3),
    "ebs-byte-balance-low": ("EBSByteBalance%", "LessThanThreshold", 20, 3),
}
EXPECTED_ALARMS = {
    "dev": {
        **COMMON_ALARMS,
        "free-storage-low": ("FreeStorageSpace", "LessThanThreshold", round(2.5 * 1024**3), 6),
        "freeable-memory-low": ("FreeableMemory", "LessThanThreshold", 176093659, 3),
        "connections-high": ("DatabaseConnections", "GreaterThanThreshold", 147, 3),
        "cpu-surplus-credits-charged": ("CPUSurplusCreditsCharged", "GreaterThanThreshold", 0, 3),
    },
    "prod": {
        **COMMON_ALARMS,
        "free-storage-low": ("FreeStorageSpace", "LessThanThreshold", 25 * 1024**3, 6),
        "freeable-memory-low": ("FreeableMemory", "LessThanThreshold", 784905273, 3),
        "connections-high": ("DatabaseConnections", "GreaterThanThreshold", 658, 3),
    },
}


def test_alarms_watch_the_instance_and_notify_the_topic_on_alarm_and_ok(run: StackRun) -> None:
    topic = run.one("aws:sns/topic:Topic").outputs
    topic_arn = topic["arn"]
    found = {}
    for alarm in run.of_type(ALARM):
        i = alarm.inputs
        if i["metricName"] == "NumberOfNotificationsFailed":
            assert (i["namespace"], i["dimensions"]) == ("AWS/SNS", {"TopicName": topic["name"]})
            assert (i["comparisonOperator"], i["threshold"]) == ("GreaterThanThreshold", 0)
            assert i["alarmActions"] == [topic_arn]
            continue
        assert i["namespace"] == "AWS/RDS"
        assert i["dimensions"] == {"DBInstanceIdentifier": f"petstore-{run.stack}"}
        assert i["period"] == 300
        assert i["datapointsToAlarm"] == i["evaluationPeriods"]
        assert i["alarmActions"] == [topic_arn]
        assert i["okActions"] == [topic_arn]
        assert i["name"].startswith(f"petstore-{run.stack}-")
        key = i["name"].removeprefix(f"petstore-{run.stack}-")
        found[key] = (
            i["metricName"],
            i["comparisonOperator"],
            i["threshold"],
            i["evaluationPeriods"],
        )

    assert found == EXPECTED_ALARMS[run.stack]


def test_topic_is_encrypted_with_a_key_cloudwatch_and_rds_can_use(run: StackRun) -> None:
    key = run.one("aws:kms/key:Key", "alarms-key")
    topic = run.one("aws:sns/topic:Topic")
    policy = json.loads(key.inputs["policy"])

    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True
    assert [s["Principal"] for s in policy["Statement"][1:]] == [
        {"Service": "cloudwatch.amazonaws.com"},
        {"Service": "events.rds.amazonaws.com"},
    ]
    assert [s["Condition"]["ArnLike"]["aws:SourceArn"] for s in policy["Statement"][1:]] == [
        "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:*",
        "arn:aws:rds:eu-west-1:123456789012:es:*",
    ]
    assert all(
        s["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
        for s in policy["Statement"][1:]
    )


def test_every_stack_has_an_endpoint_that_needs_no_confirmation(run: StackRun) -> None:
    topic = run.one("aws:sns/topic:Topic").outputs["arn"]
    https = run.one("aws:sns/topicSubscription:TopicSubscription", "https-0")

    assert https.inputs == {
        "topic": topic,
        "protocol": "https",
        "endpoint": f"https://alerts.example.com/sns/petstore-{run.stack}",
        "endpointAutoConfirms": True,
        "confirmationTimeoutInMinutes": 5,
    }
    assert "endpoint" in https.secret_inputs
    assert https.outputs["pendingConfirmation"] is False


def test_prod_emails_are_subscribed_and_flagged_while_pending(prod: StackRun) -> None:
    sub = prod.one("aws:sns/topicSubscription:TopicSubscription", "email-0")

    assert sub.inputs == {
        "topic": prod.one("aws:sns/topic:Topic").outputs["arn"],
        "protocol": "email",
        "endpoint": "platform-oncall@example.com",
    }
    assert prod.outputs["alarmSubscriptionsPending"] == ["email"]


def test_sqs_queues_subscribe_without_confirmation() -> None:
    queue = "arn:aws:sqs:eu-west-1:123456789012:alert-router"
    run = run_stack("dev", {"alarmHttpsEndpoints": None, "alarmSqsQueueArns": [queue]})
    sub = run.one("aws:sns/topicSubscription:TopicSubscription", "sqs-0")

    assert (sub.inputs["protocol"], sub.inputs["endpoint"]) == ("sqs", queue)
    assert run.outputs["alarmSubscriptionsPending"] == []


def test_event_subscription_covers_failure_failover_storage_and_maintenance(run: StackRun) -> None:
    sub = run.one("aws:rds/eventSubscription:EventSubscription")

    assert sub.inputs["snsTopic"] == run.one("aws:sns/topic:Topic").outputs["arn"]
    assert sub.inputs["sourceType"] == "db-instance"
    assert sub.inputs["sourceIds"] == [f"petstore-{run.stack}"]
    assert sub.inputs["eventCategories"] == [
        "configuration change",
        "failure",
        "failover",
        "low storage",
        "maintenance",
    ]
    assert sub.inputs["enabled"] is True


def test_stack_outputs_come_from_the_mocked_provider_outputs(run: StackRun) -> None:
    instance = _instance(run)
    host = f"petstore-{run.stack}.abc123xyz.eu-west-1.rds.amazonaws.com"

    assert run.outputs == {
        "endpoint": f"{host}:5432",
        "address": host,
        "port": 5432,
        "instanceId": f"petstore-{run.stack}",
        "secretArn": run.one("aws:secretsmanager/secret:Secret").outputs["arn"],
        "kubernetesNamespace": {"dev": "petstore-dev", "prod": "petstore"}[run.stack],
        "kubernetesSecretName": "petstore-db",
        "migrationSecretName": "petstore-db-migration",
        "jobName": "petstore-migration-cutover-1",
        "rolesJobName": run.one("kubernetes:batch/v1:Job", "roles-job").inputs["metadata"]["name"],
        "databaseTarget": "sqlite",  # the committed stacks describe the state before cutover
        "alarmTopicArn": run.one("aws:sns/topic:Topic").outputs["arn"],
        "alarmSubscriptionsPending": {"dev": [], "prod": ["email"]}[run.stack],
    }
    assert instance.outputs["endpoint"] == run.outputs["endpoint"]
