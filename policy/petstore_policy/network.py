"""Security-group rules: no ingress from the whole internet, and every rule described.

Covers the three ways Pulumi AWS expresses rules: inline ``ingress``/``egress`` blocks on
``aws:ec2/securityGroup:SecurityGroup``, ``aws:ec2/securityGroupRule:SecurityGroupRule`` and
the newer ``aws:vpc/securityGroupIngressRule`` / ``aws:vpc/securityGroupEgressRule``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from petstore_policy.environment import Environment
from petstore_policy.rules import MISSING, Resource, ResourcePolicy, as_list, get, is_set

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
VPC_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
VPC_EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SG_TYPES = frozenset({SECURITY_GROUP, SECURITY_GROUP_RULE, VPC_INGRESS_RULE, VPC_EGRESS_RULE})
# The description the AWS provider fills in when none is given: it says nothing.
PROVIDER_DEFAULT_DESCRIPTION = "Managed by Pulumi"
_ONLY_APP_SGS = "allow only the app's security groups"
_SAY_WHO = "say who the rule lets in or out"


def _is_world(cidr: Any) -> bool:
    """True for a CIDR that matches every address (0.0.0.0/0, ::/0 and spellings of them)."""
    if not isinstance(cidr, str):
        return False
    try:
        return ipaddress.ip_network(cidr.strip(), strict=False).prefixlen == 0
    except ValueError:
        return False


def _world_cidrs(rule: Mapping[str, Any], *fields: str) -> list[str]:
    found: list[str] = []
    for field in fields:
        found.extend(str(c) for c in as_list(get(rule, field)) if _is_world(c))
    return found


def _no_world_ingress(resource: Resource, env: Environment) -> Iterator[str]:
    props = resource.props
    if resource.type == SECURITY_GROUP:
        for index, rule in enumerate(as_list(get(props, "ingress"))):
            world = _world_cidrs(rule, "cidrBlocks", "ipv6CidrBlocks")
            if world:
                yield f"ingress[{index}] allows {', '.join(world)}; {_ONLY_APP_SGS}"
    elif resource.type == SECURITY_GROUP_RULE:
        if get(props, "type") == "ingress":
            world = _world_cidrs(props, "cidrBlocks", "ipv6CidrBlocks")
            if world:
                yield f"ingress rule allows {', '.join(world)}; {_ONLY_APP_SGS}"
    elif resource.type == VPC_INGRESS_RULE:
        world = _world_cidrs(props, "cidrIpv4", "cidrIpv6")
        if world:
            yield f"ingress rule allows {', '.join(world)}; {_ONLY_APP_SGS}"


def _described(resource: Resource, env: Environment) -> Iterator[str]:
    props = resource.props
    if resource.type == SECURITY_GROUP:
        description = get(props, "description")
        if description is MISSING or description in ("", PROVIDER_DEFAULT_DESCRIPTION):
            yield "description is unset; say what the security group guards"
        for direction in ("ingress", "egress"):
            for index, rule in enumerate(as_list(get(props, direction))):
                if not is_set(rule, "description"):
                    yield f"{direction}[{index}] has no description; {_SAY_WHO}"
    elif not is_set(props, "description"):
        yield f"description is unset; {_SAY_WHO}"


NETWORK_POLICIES: tuple[ResourcePolicy, ...] = (
    ResourcePolicy(
        "sg-no-ingress-from-internet",
        "baseline, stricter than Security Hub EC2.18/EC2.19",
        "Security groups must not allow ingress from 0.0.0.0/0 or ::/0 on any port.",
        "",
        SG_TYPES,
        _no_world_ingress,
    ),
    ResourcePolicy(
        "sg-rules-described",
        "baseline: auditable rules",
        "Security groups and every one of their rules must carry a description.",
        "",
        SG_TYPES,
        _described,
    ),
)
