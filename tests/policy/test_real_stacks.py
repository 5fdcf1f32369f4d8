"""The pack over what the real dev and prod programs register under Pulumi mocks.

``tests.support.pulumi_harness.run_stack`` runs the real ``__main__.py`` with the real
``Pulumi.<stack>.yaml``; every registered resource goes through the pack's analyzer exactly as
the engine would send it, and the stack policies see the whole stack.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.policy import resources as r
from tests.policy.analyzer import Analyzer
from tests.support.pulumi_harness import RegisteredResource, StackRun, run_stack

pytestmark = [pytest.mark.policy, pytest.mark.infra]

# Resource types the baseline covers that each real stack must register (so "no violations"
# cannot pass by the program registering nothing the pack looks at).
COVERED_TYPES = {
    r.RDS_INSTANCE,
    r.PARAMETER_GROUP,
    r.EVENT_SUBSCRIPTION,
    r.SECURITY_GROUP,
    r.SECRET,
    r.JOB,
    r.K8S_SECRET,
}


def _violations(analyzer: Analyzer, run: StackRun) -> dict[str, dict[str, list[str]]]:
    found = {}
    for res in run.resources:
        if not res.custom:
            continue
        violations = analyzer.violations(res.type_, res.inputs, res.name, protect=res.protect)
        if violations:
            found[res.urn] = violations
    return found


def _stack_resources(run: StackRun) -> list[tuple[str, str, dict[str, Any]]]:
    return [(res.type_, res.name, res.outputs) for res in run.resources if res.custom]


def _one(run: StackRun, type_: str) -> RegisteredResource:
    return run.one(type_)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_resource_of_the_real_program_passes_the_pack(stack: str) -> None:
    run = run_stack(stack)

    assert {res.type_ for res in run.resources} >= COVERED_TYPES
    assert _violations(Analyzer(stack), run) == {}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_real_stack_passes_the_stack_policies(stack: str) -> None:
    diagnostics = Analyzer(stack).analyze_stack(_stack_resources(run_stack(stack)))

    # Security Hub RDS.20 wants the db-instance subscription to cover "maintenance",
    # "configuration change" and "failure" (infra/alarms.py: RDS_EVENT_CATEGORIES).
    assert [d.detail for d in diagnostics] == []


def test_prod_program_really_is_held_to_the_prod_only_rules() -> None:
    run = run_stack("prod")
    instance = _one(run, r.RDS_INSTANCE).inputs

    assert instance["multiAz"] is True
    assert instance["deletionProtection"] is True
    assert instance["backupRetentionPeriod"] >= 7
    assert instance["kmsKeyId"]


def test_dev_program_would_fail_exactly_the_prod_only_rules_if_it_were_prod() -> None:
    found = _violations(Analyzer("prod"), run_stack("dev"))
    # A URN's type part is the parent chain, "Component$...$Type"; keep the resource's own.
    by_type = {urn.split("::")[2].split("$")[-1]: sorted(p) for urn, p in found.items()}

    assert by_type == {
        r.RDS_INSTANCE: [
            "protect-stateful-resources",
            "rds-11-automatic-backups",
            "rds-3-encrypted-at-rest",
            "rds-5-multi-az",
            "rds-8-deletion-protection",
        ],
        r.SECRET: ["protect-stateful-resources", "secretsmanager-kms-key"],
        "aws:kms/key:Key": ["protect-stateful-resources"],  # the alarm topic's key
    }


@pytest.mark.parametrize(
    ("stack", "overrides"),
    [
        ("prod", {"cutover": False}),
        ("prod", {"cutover": True}),
        ("prod", {"cutover": True, "runMigration": False, "migrationRevision": None}),
        ("dev", {"cutover": True}),
        ("dev", {"cutover": False}),
    ],
    ids=[
        "prod-rolled-back",
        "prod-cut-over",
        "prod-migration-retired",
        "dev-cut-over",
        "dev-rolled-back",
    ],
)
def test_the_runbook_states_of_the_real_program_pass_the_pack(
    stack: str, overrides: dict[str, object]
) -> None:
    run = run_stack(stack, overrides)

    assert _violations(Analyzer(stack), run) == {}
    assert Analyzer(stack).analyze_stack(_stack_resources(run)) == []


def test_a_setting_the_program_accepts_but_the_baseline_refuses_is_caught() -> None:
    # monitoringIntervalSeconds 0 is a valid RDS setting (it disables enhanced monitoring), so
    # the program accepts it; Security Hub RDS.6 does not.
    run = run_stack("dev", {"monitoringIntervalSeconds": 0})

    found = _violations(Analyzer("dev"), run)

    assert [sorted(v) for v in found.values()] == [["rds-6-enhanced-monitoring"]]
    (messages,) = (v["rds-6-enhanced-monitoring"] for v in found.values())
    assert [m.split(": ", 1)[1] for m in messages] == [
        (
            "monitoringInterval is 0; enhanced monitoring needs one of 1, 5, 10, 15, 30, 60 "
            "seconds [Security Hub RDS.6]"
        ),
        "monitoringRoleArn is unset; enhanced monitoring needs its IAM role [Security Hub RDS.6]",
    ]


def test_a_stack_configured_as_production_gets_the_production_rules_whatever_its_name() -> None:
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
    instance = run.one(r.RDS_INSTANCE)
    analyzer = Analyzer("dev")  # the stack's name is not in productionStacks

    assert instance.inputs["tags"]["tier"] == "production"
    assert _violations(analyzer, run) == {}
    unprotected = analyzer.violations(r.RDS_INSTANCE, instance.inputs, protect=False)
    assert list(unprotected) == ["protect-stateful-resources"]
