"""The whole baseline, in the order the pack registers it."""

from __future__ import annotations

from petstore_policy.day_two import DAY_TWO_POLICIES, DAY_TWO_STACK_POLICIES
from petstore_policy.kubernetes import KUBERNETES_POLICIES, KUBERNETES_STACK_POLICIES
from petstore_policy.network import NETWORK_POLICIES
from petstore_policy.rds import RDS_POLICIES, RDS_STACK_POLICIES
from petstore_policy.rules import ResourcePolicy, StackPolicy
from petstore_policy.secrets import SECRETS_POLICIES

BASELINE: tuple[ResourcePolicy, ...] = (
    *RDS_POLICIES,
    *NETWORK_POLICIES,
    *SECRETS_POLICIES,
    *KUBERNETES_POLICIES,
    *DAY_TWO_POLICIES,
)
STACK_BASELINE: tuple[StackPolicy, ...] = (
    *RDS_STACK_POLICIES,
    *KUBERNETES_STACK_POLICIES,
    *DAY_TWO_STACK_POLICIES,
)
