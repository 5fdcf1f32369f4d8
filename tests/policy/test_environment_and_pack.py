"""How the pack knows prod from dev, how it behaves in preview, and how it is assembled."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pulumi_policy
import pytest
import yaml
from petstore_policy import (
    BASELINE,
    PACK_NAME,
    STACK_BASELINE,
    Environment,
    PolicyConfigError,
    build_policies,
    resolve_environment,
)
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

from tests.policy import resources as r
from tests.policy.analyzer import UNKNOWN, Analyzer

pytestmark = pytest.mark.policy

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"


# --- environment resolution ----------------------------------------------------------------


def test_prod_stack_is_production_and_dev_is_not() -> None:
    assert resolve_environment("prod", {}, {}).production is True
    assert resolve_environment("dev", {}, {}).production is False


def test_production_stacks_config_replaces_the_default_list() -> None:
    config = {"productionStacks": ["production", "prod-eu"]}

    assert resolve_environment("prod-eu", config, {}).production is True
    assert resolve_environment("prod", config, {}).production is False


def test_production_environment_tag_makes_a_dev_stack_resource_production() -> None:
    env = resolve_environment("dev", {}, {"tags": {"environment": "prod"}})

    assert env == Environment("dev", True, "resource tag environment='prod' is production")


def test_production_tier_tag_makes_any_stack_production() -> None:
    env = resolve_environment(
        "eu-live", {}, {"tags": {"environment": "eu-live", "tier": "production"}}
    )

    assert env.production is True
    assert env.reason == "resource tag tier='production'"
    assert resolve_environment("eu-live", {}, {"tags": {"tier": "development"}}).production is False


def test_dev_tag_cannot_relax_a_prod_stack() -> None:
    assert resolve_environment("prod", {}, {"tags": {"environment": "dev"}}).production is True


def test_unknown_stack_name_fails_closed_to_production() -> None:
    env = resolve_environment(None, {}, {})

    assert env.production is True
    assert "fail closed" in env.reason


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("prod", "must be a list of stack names, got str 'prod'"),
        (7, "must be a list of stack names, got int 7"),
        (["prod", ""], "must hold non-empty stack names, got ['']"),
        (["prod", 3], "must hold non-empty stack names, got [3]"),
    ],
)
def test_malformed_production_stacks_config_is_refused_naming_the_key(
    value: Any, fragment: str
) -> None:
    with pytest.raises(PolicyConfigError) as excinfo:
        resolve_environment("dev", {"productionStacks": value}, {})

    assert str(excinfo.value).startswith("policy config 'productionStacks' ")
    assert fragment in str(excinfo.value)


def test_policy_pack_config_makes_a_custom_stack_production_through_the_analyzer() -> None:
    names = [spec.name for spec in BASELINE]
    config = {name: {"productionStacks": ["live"]} for name in names}
    single_az = r.prod_rds_instance()
    single_az.update(multiAz=False, tags=r.tags("staging"))

    live = Analyzer("live", config=config).violations(r.RDS_INSTANCE, single_az)
    prod = Analyzer("prod", config=config).violations(r.RDS_INSTANCE, single_az)

    assert list(live) == ["rds-5-multi-az"]
    assert prod == {}


def test_environment_tag_on_a_dev_stack_resource_triggers_prod_rules_in_the_pack() -> None:
    props = r.dev_rds_instance()
    props["tags"] = r.tags("prod")

    found = Analyzer("dev").violations(r.RDS_INSTANCE, props)

    assert "rds-5-multi-az" in found


def test_engine_without_a_stack_name_applies_production_rules() -> None:
    found = Analyzer(None).violations(r.RDS_INSTANCE, r.dev_rds_instance())

    assert "rds-8-deletion-protection" in found


# --- preview: values not known yet ----------------------------------------------------------


def test_outputs_unknown_in_preview_count_as_set_for_presence_rules() -> None:
    props = r.prod_rds_instance()
    props.update(
        kmsKeyId=UNKNOWN,
        monitoringRoleArn=UNKNOWN,
        dbSubnetGroupName=UNKNOWN,
        parameterGroupName=UNKNOWN,
        vpcSecurityGroupIds=UNKNOWN,
    )

    assert Analyzer("prod").analyze(r.RDS_INSTANCE, props) == []


def test_unknown_value_a_rule_must_read_is_an_advisory_note_not_a_pass_or_a_crash() -> None:
    props = r.prod_rds_instance()
    props["publiclyAccessible"] = UNKNOWN

    diagnostics = Analyzer("prod").analyze(r.RDS_INSTANCE, props)

    assert len(diagnostics) == 1
    note = diagnostics[0]
    assert note.policy == "rds-2-no-public-access"
    assert note.mandatory is False
    assert note.detail.startswith("can't run policy 'rds-2-no-public-access' from policy pack")
    assert "value at .publiclyAccessible can't be known during preview" in note.detail


def test_namespace_created_by_the_stack_is_unknown_in_preview_and_passes() -> None:
    props = r.job()
    props["metadata"]["namespace"] = UNKNOWN

    assert Analyzer("prod").analyze(r.JOB, props) == []


# --- the stack policy: RDS.20 -------------------------------------------------------------


def _stack(*extra: tuple[str, str, dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(r.RDS_INSTANCE, "db", r.prod_rds_instance()), *extra]


def test_stack_with_a_covering_event_subscription_passes() -> None:
    stack = _stack((r.EVENT_SUBSCRIPTION, "events", r.event_subscription()))

    assert Analyzer("prod").analyze_stack(stack) == []


def test_subscription_to_all_categories_covers_the_instance() -> None:
    sub = r.event_subscription()
    sub["eventCategories"] = []

    assert Analyzer("dev").analyze_stack(_stack((r.EVENT_SUBSCRIPTION, "events", sub))) == []


@pytest.mark.parametrize(
    "change",
    [
        {"eventCategories": ["failure", "failover", "low storage", "maintenance"]},
        {"enabled": False},
        {"sourceType": "db-cluster"},
    ],
    ids=["missing-configuration-change", "disabled", "wrong-source-type"],
)
def test_stack_without_a_covering_subscription_fails_on_the_instance(
    change: dict[str, Any],
) -> None:
    sub = r.event_subscription()
    sub.update(change)

    diagnostics = Analyzer("dev").analyze_stack(_stack((r.EVENT_SUBSCRIPTION, "events", sub)))

    assert [(d.policy, d.mandatory) for d in diagnostics] == [("rds-20-event-subscription", True)]
    assert diagnostics[0].detail == (
        "no enabled RDS event subscription with sourceType 'db-instance' covers 'maintenance', "
        "'configuration change', 'failure' events for 'db' [Security Hub RDS.20]"
    )
    assert diagnostics[0].urn == "urn:pulumi:dev::petstore-rds::aws:rds/instance:Instance::db"


def test_stack_without_databases_needs_no_subscription() -> None:
    assert Analyzer("prod").analyze_stack([(r.SECRET, "s", r.prod_secret())]) == []


# --- the pack itself -------------------------------------------------------------------------


def test_every_policy_is_mandatory_uniquely_named_and_cites_its_control() -> None:
    policies = build_policies(stack_name=lambda: "dev")
    names = [p.name for p in policies]

    assert len(names) == len(set(names)) == len(BASELINE) + len(STACK_BASELINE)
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in policies)
    for spec in (*BASELINE, *STACK_BASELINE):
        assert f"[{spec.control}]" in spec.description
    rds = [s for s in (*BASELINE, *STACK_BASELINE) if s.control.startswith("Security Hub RDS.")]
    assert sorted(s.control.removeprefix("Security Hub ") for s in rds) == sorted(
        ["RDS.2", "RDS.3", "RDS.5", "RDS.6", "RDS.8", "RDS.9, RDS.36", "RDS.11",
         "RDS.13", "RDS.17", "RDS.18", "RDS.20", "RDS.25"]
    )  # fmt: skip
    # RDS.10 (IAM auth) is deliberately not required: see petstore_policy.rds
    for spec in rds:
        number = spec.control.removeprefix("Security Hub RDS.").split(",")[0]
        assert spec.name.startswith(f"rds-{number}-"), spec.name


def test_prod_only_rules_are_stated_in_the_descriptions() -> None:
    prod_rules = {s.name for s in BASELINE if s.production_rule}

    assert prod_rules == {
        "rds-3-encrypted-at-rest",
        "rds-5-multi-az",
        "rds-8-deletion-protection",
        "rds-11-automatic-backups",
        "secretsmanager-kms-key",
        "k8s-image-pinned",
        "protect-stateful-resources",
    }
    for spec in BASELINE:
        if spec.production_rule:
            assert "In production stacks: " in spec.description


def test_analyzer_info_advertises_every_policy_with_its_config_schema() -> None:
    analyzer = Analyzer("dev")

    info = analyzer.servicer.GetAnalyzerInfo(None, None)

    assert info.name == PACK_NAME
    assert len(info.policies) == len(BASELINE) + len(STACK_BASELINE)
    for policy in info.policies:
        assert policy.enforcementLevel == proto.MANDATORY
        assert "productionStacks" in policy.configSchema.properties


def test_main_builds_a_mandatory_pack_of_every_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    captured: dict[str, Any] = {}

    def fake_pack(**kwargs: Any) -> None:
        captured.update(kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", fake_pack)
    runpy.run_path(str(POLICY_DIR / "__main__.py"), run_name="__main__")

    assert captured["name"] == PACK_NAME
    assert captured["enforcement_level"] == EnforcementLevel.MANDATORY
    policies = captured["policies"]
    assert [p.name for p in policies] == [s.name for s in (*BASELINE, *STACK_BASELINE)]
    assert sum(isinstance(p, ResourceValidationPolicy) for p in policies) == len(BASELINE)
    assert sum(isinstance(p, StackValidationPolicy) for p in policies) == len(STACK_BASELINE)


def test_pulumi_policy_yaml_runs_the_pack_with_python_from_its_own_virtualenv() -> None:
    spec = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text(encoding="utf-8"))

    assert spec["runtime"]["name"] == "python"
    assert spec["runtime"]["options"]["virtualenv"] == ".venv"
    assert spec["description"]
    requirements = (POLICY_DIR / "requirements.txt").read_text(encoding="utf-8")
    assert "pulumi-policy==" in requirements


def test_example_policy_config_names_every_policy_with_production_rules() -> None:
    import json

    config = json.loads((POLICY_DIR / "config.example.json").read_text(encoding="utf-8"))

    assert set(config) == {spec.name for spec in BASELINE if spec.production_rule}
    assert all(value == {"productionStacks": ["prod"]} for value in config.values())
    renamed = {name: {"productionStacks": ["prod-eu"]} for name in config}
    found = Analyzer("prod-eu", config=renamed).violations(r.RDS_INSTANCE, r.dev_rds_instance())
    assert sorted(found) == [
        "rds-11-automatic-backups",
        "rds-3-encrypted-at-rest",
        "rds-5-multi-az",
        "rds-8-deletion-protection",
    ]
