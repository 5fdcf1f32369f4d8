"""Compliant wire-format props for every resource type the baseline covers.

``prod_*`` builders are what a production stack registers; ``dev_*`` builders relax exactly
what the prod-only rules allow a development stack to relax. Tests copy one and break it.
"""

from __future__ import annotations

import copy
from typing import Any

RDS_INSTANCE = "aws:rds/instance:Instance"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
EVENT_SUBSCRIPTION = "aws:rds/eventSubscription:EventSubscription"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
VPC_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
VPC_EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SECRET = "aws:secretsmanager/secret:Secret"
JOB = "kubernetes:batch/v1:Job"
POD = "kubernetes:core/v1:Pod"
CRONJOB = "kubernetes:batch/v1:CronJob"
K8S_SECRET = "kubernetes:core/v1:Secret"

KMS_KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/0b6f7c3e-1111-2222-3333-444455556666"
IMAGE = (
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com/petstore-migration:3f1c2ab9e0d4@sha256:"
    + "3f" * 32
)


def tags(environment: str) -> dict[str, str]:
    return {"project": "petstore-rds", "environment": environment, "managed-by": "pulumi"}


def prod_rds_instance() -> dict[str, Any]:
    return {
        "identifier": "petstore-prod",
        "engine": "postgres",
        "engineVersion": "17",
        "instanceClass": "db.m7g.large",
        "storageEncrypted": True,
        "kmsKeyId": KMS_KEY_ARN,
        "username": "petstore_admin",
        "dbSubnetGroupName": "petstore-prod-subnets-1a2b3c",
        "vpcSecurityGroupIds": ["sg-0123456789abcdef0"],
        "parameterGroupName": "petstore-prod-params-4d5e6f",
        "publiclyAccessible": False,
        "iamDatabaseAuthenticationEnabled": True,
        "caCertIdentifier": "rds-ca-rsa2048-g1",
        "enabledCloudwatchLogsExports": ["postgresql", "upgrade"],
        "monitoringInterval": 60,
        "monitoringRoleArn": "arn:aws:iam::123456789012:role/petstore-prod-monitoring",
        "multiAz": True,
        "backupRetentionPeriod": 14,
        "copyTagsToSnapshot": True,
        "autoMinorVersionUpgrade": True,
        "deletionProtection": True,
        "skipFinalSnapshot": False,
        "finalSnapshotIdentifier": "petstore-prod-final",
        "tags": tags("prod"),
    }


def dev_rds_instance() -> dict[str, Any]:
    props = prod_rds_instance()
    props.update(
        identifier="petstore-dev",
        multiAz=False,
        backupRetentionPeriod=1,
        deletionProtection=False,
        skipFinalSnapshot=True,
        tags=tags("dev"),
    )
    del props["kmsKeyId"], props["finalSnapshotIdentifier"]
    return props


def parameter_group() -> dict[str, Any]:
    return {
        "family": "postgres17",
        "description": "petstore: TLS only, slow-query logging",
        "parameters": [
            {"name": "rds.force_ssl", "value": "1", "applyMethod": "pending-reboot"},
            {"name": "log_min_duration_statement", "value": "500", "applyMethod": "immediate"},
        ],
        "tags": tags("prod"),
    }


def event_subscription() -> dict[str, Any]:
    return {
        "snsTopic": "arn:aws:sns:eu-west-1:123456789012:petstore-alarms",
        "sourceType": "db-instance",
        "sourceIds": ["petstore-prod"],
        "eventCategories": ["configuration change", "failure", "failover", "maintenance"],
        "enabled": True,
        "tags": tags("prod"),
    }


def security_group() -> dict[str, Any]:
    return {
        "description": "petstore PostgreSQL: ingress only from the cluster security groups",
        "vpcId": "vpc-0123456789abcdef0",
        "ingress": [
            {
                "description": "PostgreSQL 5432 from the EKS node security group",
                "protocol": "tcp",
                "fromPort": 5432,
                "toPort": 5432,
                "securityGroups": ["sg-0fedcba9876543210"],
            }
        ],
        "egress": [],
        "tags": tags("prod"),
    }


def prod_secret() -> dict[str, Any]:
    return {
        "namePrefix": "petstore-prod-master-",
        "description": "Master credentials of the RDS PostgreSQL instance petstore-prod",
        "kmsKeyId": KMS_KEY_ARN,
        "recoveryWindowInDays": 7,
        "tags": tags("prod"),
    }


def dev_secret() -> dict[str, Any]:
    props = prod_secret()
    props.update(kmsKeyId="alias/aws/secretsmanager", recoveryWindowInDays=0, tags=tags("dev"))
    return props


def container(name: str = "migrate", image: str = IMAGE) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "args": ["run", "--source", "/data/pod-0.db", "--verify"],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
    }


def pod_spec() -> dict[str, Any]:
    return {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container()],
    }


def job() -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "petstore-migrate", "namespace": "petstore"},
        "spec": {"backoffLimit": 2, "template": {"spec": pod_spec()}},
    }


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "pvc-loader", "namespace": "petstore"},
        "spec": pod_spec(),
    }


def cronjob() -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "petstore-verify", "namespace": "petstore"},
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {"spec": {"template": {"spec": pod_spec()}}},
        },
    }


def k8s_secret() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "petstore-db", "namespace": "petstore"},
        "type": "Opaque",
    }


def clone(props: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(props)
