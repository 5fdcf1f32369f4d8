"""Wrap the pure baseline checks into ``pulumi_policy`` policies (all mandatory).

Each wrapper resolves the environment from the stack name (see
:mod:`petstore_policy.environment`), the policy's own ``productionStacks`` config and the
resource's tags, then reports every message the pure check yields. ``build_policies`` takes
the stack-name source as a parameter so tests can run the very same wrappers for ``dev`` and
``prod`` without a Pulumi engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pulumi
from petstore_policy.baseline import BASELINE, STACK_BASELINE
from petstore_policy.environment import (
    PRODUCTION_STACKS_KEY,
    PRODUCTION_STACKS_SCHEMA,
    resolve_environment,
)
from petstore_policy.rules import Resource, ResourcePolicy, StackPolicy
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

PACK_NAME = "petstore-rds-baseline"
PACK_DESCRIPTION = (
    "petstore-rds security baseline: AWS Security Hub FSBP RDS controls, security groups, "
    "Secrets Manager and Kubernetes pod hardening, with production-only rules for prod stacks."
)

StackName = Callable[[], str | None]


def pulumi_stack() -> str | None:
    """The stack the engine is analysing (the CLI sets ``PULUMI_STACK`` for policy packs)."""
    stack: str | None = pulumi.get_stack()
    return stack or None


def _config_schema() -> PolicyConfigSchema:
    return PolicyConfigSchema(properties={PRODUCTION_STACKS_KEY: dict(PRODUCTION_STACKS_SCHEMA)})


def resource_policy(spec: ResourcePolicy, stack_name: StackName) -> ResourceValidationPolicy:
    """The CrossGuard policy that runs ``spec.check`` on every resource of its types."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in spec.resource_types:
            return
        protect = bool(args.opts.protect) if args.opts is not None else False
        resource = Resource(args.resource_type, args.name, args.props, args.urn, protect)
        env = resolve_environment(stack_name(), args.get_config(), args.props)
        for message in spec.violations(resource, env):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=spec.name,
        description=spec.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=_config_schema(),
        severity=spec.severity,
        tags=[spec.control],
    )


def stack_policy(spec: StackPolicy, stack_name: StackName) -> StackValidationPolicy:
    """The CrossGuard policy that runs ``spec.check`` over the whole stack."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [
            Resource(
                r.resource_type,
                r.name,
                r.props,
                r.urn,
                bool(r.opts.protect) if r.opts is not None else False,
            )
            for r in args.resources
        ]
        env = resolve_environment(stack_name(), args.get_config(), {})
        for message, offender in spec.violations(resources, env):
            report_violation(message, offender.urn if offender and offender.urn else None)

    return StackValidationPolicy(
        name=spec.name,
        description=spec.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=_config_schema(),
        severity=spec.severity,
        tags=[spec.control],
    )


def build_policies(
    stack_name: StackName = pulumi_stack,
    resource_specs: Sequence[ResourcePolicy] = BASELINE,
    stack_specs: Sequence[StackPolicy] = STACK_BASELINE,
) -> list[Policy]:
    """Every baseline policy, wrapped for ``PolicyPack``."""
    policies: list[Policy] = [resource_policy(spec, stack_name) for spec in resource_specs]
    policies.extend(stack_policy(spec, stack_name) for spec in stack_specs)
    return policies
