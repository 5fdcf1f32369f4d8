"""Each baseline policy over compliant and deliberately broken resources, dev and prod.

Every broken resource is a compliant one with exactly one thing changed, and must fail with
exactly one policy and that policy's own message; the compliant ones pass every policy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.policy import resources as r
from tests.policy.analyzer import Analyzer

pytestmark = pytest.mark.policy

Mutation = Callable[[dict[str, Any]], None]


def setting(*path: str | int, value: Any) -> Mutation:
    def mutate(props: dict[str, Any]) -> None:
        node: Any = props
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value

    return mutate


def removing(*path: str | int) -> Mutation:
    def mutate(props: dict[str, Any]) -> None:
        node: Any = props
        for step in path[:-1]:
            node = node[step]
        del node[path[-1]]

    return mutate


JOB_POD = ("spec", "template", "spec")
JOB_CONTAINER = (*JOB_POD, "containers", 0)


@pytest.fixture(scope="module")
def dev() -> Analyzer:
    return Analyzer("dev")


@pytest.fixture(scope="module")
def prod() -> Analyzer:
    return Analyzer("prod")


COMPLIANT = [
    pytest.param("dev", r.RDS_INSTANCE, r.dev_rds_instance, id="dev-rds-instance"),
    pytest.param("prod", r.RDS_INSTANCE, r.prod_rds_instance, id="prod-rds-instance"),
    pytest.param("dev", r.RDS_INSTANCE, r.prod_rds_instance, id="prod-shaped-instance-in-dev"),
    pytest.param("prod", r.PARAMETER_GROUP, r.parameter_group, id="parameter-group"),
    pytest.param("prod", r.SECURITY_GROUP, r.security_group, id="security-group"),
    pytest.param("dev", r.SECRET, r.dev_secret, id="dev-secret"),
    pytest.param("prod", r.SECRET, r.prod_secret, id="prod-secret"),
    pytest.param("prod", r.JOB, r.job, id="job"),
    pytest.param("prod", r.POD, r.pod, id="pod"),
    pytest.param("prod", r.CRONJOB, r.cronjob, id="cronjob"),
    pytest.param("prod", r.K8S_SECRET, r.k8s_secret, id="k8s-secret"),
]


@pytest.mark.parametrize(("stack", "type_", "build"), COMPLIANT)
def test_compliant_resource_passes_every_policy(
    stack: str, type_: str, build: Callable[[], dict[str, Any]]
) -> None:
    assert Analyzer(stack).analyze(type_, build()) == []


# (stack, type, compliant builder, mutation, the one policy that must fire, message fragment)
BROKEN = [
    # RDS, every environment
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance, setting("publiclyAccessible", value=True),
     "rds-2-no-public-access", "publiclyAccessible is true"),
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance, setting("storageEncrypted", value=False),
     "rds-3-encrypted-at-rest", "storageEncrypted is false; it must be true"),
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance, removing("storageEncrypted"),
     "rds-3-encrypted-at-rest", "storageEncrypted is unset"),
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance, setting("monitoringInterval", value=0),
     "rds-6-enhanced-monitoring", "monitoringInterval is 0"),
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance, setting("monitoringInterval", value=45),
     "rds-6-enhanced-monitoring", "monitoringInterval is 45; enhanced monitoring needs one of"),
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance, removing("monitoringRoleArn"),
     "rds-6-enhanced-monitoring", "monitoringRoleArn is unset"),
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance,
     setting("enabledCloudwatchLogsExports", value=["postgresql"]),
     "rds-9-36-postgresql-logs-to-cloudwatch", "it must include 'upgrade'"),
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance, removing("enabledCloudwatchLogsExports"),
     "rds-9-36-postgresql-logs-to-cloudwatch", "it must include 'postgresql', 'upgrade'"),
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance, setting("backupRetentionPeriod", value=0),
     "rds-11-automatic-backups", "backupRetentionPeriod is 0 days; it must be at least 1"),
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance, setting("autoMinorVersionUpgrade", value=False),
     "rds-13-auto-minor-version-upgrade", "autoMinorVersionUpgrade is false"),
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance, setting("copyTagsToSnapshot", value=False),
     "rds-17-copy-tags-to-snapshots", "copyTagsToSnapshot is false"),
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance, removing("dbSubnetGroupName"),
     "rds-18-in-vpc", "dbSubnetGroupName is unset"),
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance, setting("vpcSecurityGroupIds", value=[]),
     "rds-18-in-vpc", "vpcSecurityGroupIds is empty"),
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance, setting("username", value="postgres"),
     "rds-25-custom-admin-username", "username is 'postgres', an engine default"),
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance, setting("username", value="Admin"),
     "rds-25-custom-admin-username", "username is 'Admin', an engine default"),
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance, removing("username"),
     "rds-25-custom-admin-username", "username is unset"),
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance,
     setting("parameterGroupName", value="default.postgres17"),
     "rds-force-ssl", "parameterGroupName is 'default.postgres17', an AWS default group"),
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance, removing("parameterGroupName"),
     "rds-force-ssl", "parameterGroupName is unset"),
    ("dev", r.PARAMETER_GROUP, r.parameter_group, setting("parameters", 0, "value", value="0"),
     "rds-force-ssl", "parameter rds.force_ssl is '0'; it must be '1'"),
    ("dev", r.PARAMETER_GROUP, r.parameter_group, removing("parameters", 0),
     "rds-force-ssl", "parameter rds.force_ssl is unset"),
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance, setting("caCertIdentifier", value="rds-ca-2019"),
     "rds-current-ca", "caCertIdentifier is 'rds-ca-2019'; set a current CA"),
    ("dev", r.RDS_INSTANCE, r.dev_rds_instance, removing("caCertIdentifier"),
     "rds-current-ca", "caCertIdentifier is unset"),
    # RDS, production only
    ("prod", r.RDS_INSTANCE, r.prod_rds_instance, removing("kmsKeyId"),
     "rds-3-encrypted-at-rest", "kmsKeyId is unset; a production database must be encrypted"),
    ("prod", r.RDS_INSTANCE, r.prod_rds_instance, setting("multiAz", value=False),
     "rds-5-multi-az", "multiAz is false; a production database must be Multi-AZ"),
    ("prod", r.RDS_INSTANCE, r.prod_rds_instance, removing("multiAz"),
     "rds-5-multi-az", "multiAz is unset"),
    ("prod", r.RDS_INSTANCE, r.prod_rds_instance, setting("deletionProtection", value=False),
     "rds-8-deletion-protection", "deletionProtection is false"),
    ("prod", r.RDS_INSTANCE, r.prod_rds_instance, setting("skipFinalSnapshot", value=True),
     "rds-8-deletion-protection", "skipFinalSnapshot is true"),
    ("prod", r.RDS_INSTANCE, r.prod_rds_instance, removing("finalSnapshotIdentifier"),
     "rds-8-deletion-protection", "finalSnapshotIdentifier is unset"),
    ("prod", r.RDS_INSTANCE, r.prod_rds_instance, setting("backupRetentionPeriod", value=6),
     "rds-11-automatic-backups", "backupRetentionPeriod is 6 days; it must be at least 7"),
    # Security groups
    ("dev", r.SECURITY_GROUP, r.security_group,
     setting("ingress", 0, "cidrBlocks", value=["10.0.0.0/8", "0.0.0.0/0"]),
     "sg-no-ingress-from-internet", "ingress[0] allows 0.0.0.0/0"),
    ("dev", r.SECURITY_GROUP, r.security_group,
     setting("ingress", 0, "ipv6CidrBlocks", value=["::/0"]),
     "sg-no-ingress-from-internet", "ingress[0] allows ::/0"),
    ("dev", r.SECURITY_GROUP, r.security_group, removing("description"),
     "sg-rules-described", "description is unset; say what the security group guards"),
    ("dev", r.SECURITY_GROUP, r.security_group, setting("description", value="Managed by Pulumi"),
     "sg-rules-described", "description is unset"),
    ("dev", r.SECURITY_GROUP, r.security_group, removing("ingress", 0, "description"),
     "sg-rules-described", "ingress[0] has no description"),
    ("dev", r.SECURITY_GROUP, r.security_group,
     setting("egress", value=[{"protocol": "-1", "fromPort": 0, "toPort": 0,
                               "cidrBlocks": ["10.0.0.0/16"]}]),
     "sg-rules-described", "egress[0] has no description"),
    # Secrets Manager
    ("dev", r.SECRET, r.dev_secret, removing("kmsKeyId"),
     "secretsmanager-kms-key", "kmsKeyId is unset; name the KMS key"),
    ("prod", r.SECRET, r.prod_secret, setting("kmsKeyId", value="alias/aws/secretsmanager"),
     "secretsmanager-kms-key", "kmsKeyId is 'alias/aws/secretsmanager', the AWS-managed key"),
    ("prod", r.SECRET, r.prod_secret, setting("recoveryWindowInDays", value=0),
     "secretsmanager-kms-key", "recoveryWindowInDays is 0; a production secret must keep"),
    ("dev", r.SECRET, r.dev_secret, removing("description"),
     "secretsmanager-description", "description is unset"),
    ("dev", r.SECRET, r.dev_secret, setting("description", value=""),
     "secretsmanager-description", "description is unset"),
    # Kubernetes
    ("dev", r.JOB, r.job, setting(*JOB_POD, "securityContext", "runAsNonRoot", value=False),
     "k8s-run-as-non-root", "container 'migrate': runAsNonRoot is false"),
    ("dev", r.JOB, r.job, removing(*JOB_POD, "securityContext", "runAsNonRoot"),
     "k8s-run-as-non-root", "container 'migrate': runAsNonRoot is unset"),
    ("dev", r.JOB, r.job, setting(*JOB_CONTAINER, "securityContext", "runAsUser", value=0),
     "k8s-run-as-non-root", "container 'migrate': securityContext.runAsUser is 0 (root)"),
    ("dev", r.JOB, r.job,
     setting(*JOB_CONTAINER, "securityContext", "readOnlyRootFilesystem", value=False),
     "k8s-read-only-root-filesystem", "securityContext.readOnlyRootFilesystem is false"),
    ("dev", r.JOB, r.job,
     setting(*JOB_CONTAINER, "securityContext", "allowPrivilegeEscalation", value=True),
     "k8s-no-privilege-escalation", "securityContext.allowPrivilegeEscalation is true"),
    ("dev", r.JOB, r.job,
     removing(*JOB_CONTAINER, "securityContext", "allowPrivilegeEscalation"),
     "k8s-no-privilege-escalation", "securityContext.allowPrivilegeEscalation is unset"),
    ("dev", r.JOB, r.job, setting(*JOB_CONTAINER, "securityContext", "privileged", value=True),
     "k8s-no-privilege-escalation", "securityContext.privileged is true"),
    ("dev", r.JOB, r.job, setting(*JOB_POD, "hostNetwork", value=True),
     "k8s-no-privilege-escalation", "pod spec hostNetwork is true"),
    ("dev", r.JOB, r.job,
     setting(*JOB_CONTAINER, "securityContext", "capabilities", "drop", value=["NET_RAW"]),
     "k8s-drop-all-capabilities", "capabilities.drop is ['NET_RAW']; it must include 'ALL'"),
    ("dev", r.JOB, r.job,
     setting(*JOB_CONTAINER, "securityContext", "capabilities", "add", value=["SYS_ADMIN"]),
     "k8s-drop-all-capabilities", "capabilities.add has ['SYS_ADMIN']"),
    ("dev", r.JOB, r.job,
     setting(*JOB_POD, "securityContext", "seccompProfile", "type", value="Unconfined"),
     "k8s-seccomp-runtime-default", "seccompProfile.type is 'Unconfined'"),
    ("dev", r.JOB, r.job, removing(*JOB_CONTAINER, "resources", "limits", "cpu"),
     "k8s-resource-limits", "container 'migrate': resources.limits.cpu is unset"),
    ("dev", r.JOB, r.job, removing(*JOB_CONTAINER, "resources", "requests", "memory"),
     "k8s-resource-limits", "container 'migrate': resources.requests.memory is unset"),
    ("dev", r.JOB, r.job, setting("metadata", "namespace", value="default"),
     "k8s-no-default-namespace", "metadata.namespace is 'default'"),
    ("dev", r.JOB, r.job, removing("metadata", "namespace"),
     "k8s-no-default-namespace", "metadata.namespace is unset"),
    ("dev", r.K8S_SECRET, r.k8s_secret, setting("metadata", "namespace", value="default"),
     "k8s-no-default-namespace", "metadata.namespace is 'default'"),
    ("dev", r.JOB, r.job, removing(*JOB_CONTAINER, "image"),
     "k8s-image-pinned", "container 'migrate': image is unset"),
    ("prod", r.JOB, r.job,
     setting(*JOB_CONTAINER, "image", value="1234.dkr.ecr.eu-west-1.amazonaws.com/m:latest"),
     "k8s-image-pinned", "uses the mutable :latest tag"),
    ("prod", r.JOB, r.job, setting(*JOB_CONTAINER, "image", value="registry.local:5000/migration"),
     "k8s-image-pinned", "'registry.local:5000/migration' has no tag"),
    ("dev", r.POD, r.pod, setting("spec", "securityContext", "runAsNonRoot", value=False),
     "k8s-run-as-non-root", "container 'migrate': runAsNonRoot is false"),
    ("dev", r.CRONJOB, r.cronjob,
     setting("spec", "jobTemplate", "spec", "template", "spec", "containers", 0,
             "securityContext", "readOnlyRootFilesystem", value=False),
     "k8s-read-only-root-filesystem", "readOnlyRootFilesystem is false"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("stack", "type_", "build", "mutate", "policy", "fragment"),
    [pytest.param(*case, id=f"{case[0]}-{case[4]}-{i}") for i, case in enumerate(BROKEN)],
)
def test_broken_resource_fails_only_its_own_policy_with_its_message(
    stack: str,
    type_: str,
    build: Callable[[], dict[str, Any]],
    mutate: Mutation,
    policy: str,
    fragment: str,
) -> None:
    props = build()
    mutate(props)

    found = Analyzer(stack).violations(type_, props, name="broken")

    assert list(found) == [policy], found
    assert len(found[policy]) == 1, found
    assert fragment in found[policy][0]
    assert found[policy][0].startswith(f"{type_} 'broken': ")


PROD_ONLY = [case for case in BROKEN if case[0] == "prod"]


@pytest.mark.parametrize(
    ("type_", "build", "mutate", "policy"),
    [pytest.param(c[1], c[2], c[3], c[4], id=f"{c[4]}-{i}") for i, c in enumerate(PROD_ONLY)],
)
def test_prod_only_rule_does_not_fire_in_dev(
    type_: str, build: Callable[[], dict[str, Any]], mutate: Mutation, policy: str
) -> None:
    props = build()
    mutate(props)
    props.get("tags", {}).pop("environment", None)

    assert Analyzer("dev").violations(type_, props) == {}


def test_force_ssl_given_as_a_number_is_accepted(dev: Analyzer) -> None:
    props = r.parameter_group()
    props["parameters"][0]["value"] = 1

    assert dev.violations(r.PARAMETER_GROUP, props) == {}


def test_parameter_groups_of_other_engines_are_not_held_to_force_ssl(dev: Analyzer) -> None:
    props = r.parameter_group()
    props.update(family="mysql8.0", parameters=[])

    assert dev.violations(r.PARAMETER_GROUP, props) == {}


def test_dev_shaped_database_breaks_exactly_the_prod_only_rds_rules_in_prod(prod: Analyzer) -> None:
    found = prod.violations(r.RDS_INSTANCE, r.dev_rds_instance(), name="petstore-dev")

    assert sorted(found) == [
        "rds-11-automatic-backups",
        "rds-3-encrypted-at-rest",
        "rds-5-multi-az",
        "rds-8-deletion-protection",
    ]
    assert found["rds-8-deletion-protection"] == [
        (
            "aws:rds/instance:Instance 'petstore-dev': deletionProtection is false; a production "
            "database must be protected from deletion [Security Hub RDS.8]"
        ),
        (
            "aws:rds/instance:Instance 'petstore-dev': skipFinalSnapshot is true; a production "
            "database must take a final snapshot when deleted [Security Hub RDS.8]"
        ),
        (
            "aws:rds/instance:Instance 'petstore-dev': finalSnapshotIdentifier is unset; a "
            "production database needs a named final snapshot [Security Hub RDS.8]"
        ),
    ]


def test_dev_secret_with_aws_managed_key_fails_in_prod(prod: Analyzer) -> None:
    found = prod.violations(r.SECRET, r.dev_secret())

    assert list(found) == ["secretsmanager-kms-key"]
    assert len(found["secretsmanager-kms-key"]) == 2


def test_every_world_open_ingress_form_is_refused(dev: Analyzer) -> None:
    cases = [
        (r.SECURITY_GROUP_RULE, {"type": "ingress", "cidrBlocks": ["0.0.0.0/0"],
                                 "fromPort": 5432, "toPort": 5432, "protocol": "tcp",
                                 "securityGroupId": "sg-1", "description": "x"}),
        (r.SECURITY_GROUP_RULE, {"type": "ingress", "ipv6CidrBlocks": ["::0/0"],
                                 "fromPort": 5432, "toPort": 5432, "protocol": "tcp",
                                 "securityGroupId": "sg-1", "description": "x"}),
        (r.VPC_INGRESS_RULE, {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp",
                              "securityGroupId": "sg-1", "description": "x"}),
        (r.VPC_INGRESS_RULE, {"cidrIpv6": "::/0", "ipProtocol": "tcp",
                              "securityGroupId": "sg-1", "description": "x"}),
    ]  # fmt: skip
    for type_, props in cases:
        found = dev.violations(type_, props)
        assert list(found) == ["sg-no-ingress-from-internet"], (type_, props, found)


def test_egress_to_the_internet_and_narrow_ingress_are_allowed(dev: Analyzer) -> None:
    egress = {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "-1", "securityGroupId": "sg-1",
              "description": "HTTPS to AWS APIs"}  # fmt: skip
    narrow = {"type": "ingress", "cidrBlocks": ["10.0.0.0/16"], "fromPort": 5432,
              "toPort": 5432, "protocol": "tcp", "securityGroupId": "sg-1",
              "description": "PostgreSQL from the VPC"}  # fmt: skip

    assert dev.violations(r.VPC_EGRESS_RULE, egress) == {}
    assert dev.violations(r.SECURITY_GROUP_RULE, narrow) == {}


def test_standalone_rule_without_description_is_refused(dev: Analyzer) -> None:
    rule = {"type": "egress", "cidrBlocks": ["10.0.0.0/16"], "fromPort": 0, "toPort": 0,
            "protocol": "-1", "securityGroupId": "sg-1"}  # fmt: skip

    found = dev.violations(r.SECURITY_GROUP_RULE, rule)

    assert found == {
        "sg-rules-described": [
            (
                "aws:ec2/securityGroupRule:SecurityGroupRule 'res': description is unset; "
                "say who the rule lets in or out [baseline: auditable rules]"
            )
        ]
    }


def test_unhardened_init_container_is_named_in_every_message(dev: Analyzer) -> None:
    props = r.job()
    props["spec"]["template"]["spec"]["initContainers"] = [{"name": "fetch", "image": r.IMAGE}]

    found = dev.violations(r.JOB, props)

    assert sorted(found) == [
        "k8s-drop-all-capabilities",
        "k8s-no-privilege-escalation",
        "k8s-read-only-root-filesystem",
        "k8s-resource-limits",
    ]
    for messages in found.values():
        assert all("container 'fetch'" in m for m in messages), messages
    assert len(found["k8s-resource-limits"]) == 4


def test_pinned_images_pass_in_prod_and_latest_passes_in_dev(dev: Analyzer, prod: Analyzer) -> None:
    by_digest = r.job()
    by_digest["spec"]["template"]["spec"]["containers"][0]["image"] = (
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/petstore-migration@sha256:" + "ab" * 32
    )
    latest = r.job()
    latest["spec"]["template"]["spec"]["containers"][0]["image"] = "petstore-migration:latest"

    assert prod.violations(r.JOB, by_digest) == {}
    assert dev.violations(r.JOB, latest) == {}
    assert list(prod.violations(r.JOB, latest)) == ["k8s-image-pinned"]


def test_workload_without_pod_spec_is_reported_not_crashed(dev: Analyzer) -> None:
    found = dev.violations(r.JOB, {"metadata": {"namespace": "petstore"}, "spec": {}})

    assert found["k8s-run-as-non-root"] == [
        (
            "kubernetes:batch/v1:Job 'res': has no pod spec at spec.template.spec "
            "[Pod Security restricted: runAsNonRoot]"
        )
    ]


def test_policies_ignore_resource_types_they_do_not_cover(prod: Analyzer) -> None:
    assert prod.analyze("aws:sns/topic:Topic", {"name": "alarms"}) == []
    assert prod.analyze("kubernetes:apps/v1:DeploymentPatch", {"spec": {}}) == []
