"""The petstore-rds security baseline as pure checks, and their Pulumi CrossGuard wrappers.

The checks are plain functions over a resource's wire-format (camelCase) inputs and the
resolved :class:`~petstore_policy.environment.Environment`; :mod:`petstore_policy.pack` wraps
them into ``pulumi_policy`` policies. ``policy/__main__.py`` and the tests import the same
objects, so the tests exercise exactly what ``pulumi preview --policy-pack policy`` runs.
"""

from petstore_policy.baseline import BASELINE, STACK_BASELINE
from petstore_policy.environment import Environment, PolicyConfigError, resolve_environment
from petstore_policy.pack import PACK_DESCRIPTION, PACK_NAME, build_policies
from petstore_policy.rules import Resource, ResourcePolicy, StackPolicy

__all__ = [
    "BASELINE",
    "PACK_DESCRIPTION",
    "PACK_NAME",
    "STACK_BASELINE",
    "Environment",
    "PolicyConfigError",
    "Resource",
    "ResourcePolicy",
    "StackPolicy",
    "build_policies",
    "resolve_environment",
]
