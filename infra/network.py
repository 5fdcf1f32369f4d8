"""Network: the DB subnet group and the database's security group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.tags import with_name


@dataclass(frozen=True)
class NetworkArgs:
    """Where the database lives and who may connect to it."""

    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    source_security_group_ids: pulumi.Input[Sequence[str]]
    port: int
    tags: Mapping[str, str]


def ingress_description(port: int) -> str:
    """The description of the only ingress rule."""
    return f"PostgreSQL (TCP {port}) from the EKS cluster/node security groups"


class Network(pulumi.ComponentResource):
    """A DB subnet group over the private subnets and a security group whose only ingress is
    TCP on the DB port from the configured source security groups (no CIDR rules, no egress)."""

    subnet_group_name: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("petstore-rds:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            description=f"Private subnets of the {name} PostgreSQL database",
            subnet_ids=args.private_subnet_ids,
            tags=with_name(dict(args.tags), f"{name}-subnets"),
            opts=child,
        )
        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            description=f"{name} PostgreSQL: ingress only from the cluster security groups",
            vpc_id=args.vpc_id,
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    description=ingress_description(args.port),
                    protocol="tcp",
                    from_port=args.port,
                    to_port=args.port,
                    security_groups=args.source_security_group_ids,
                )
            ],
            # RDS only answers connections (security groups are stateful): no egress rule.
            egress=[],
            revoke_rules_on_delete=True,
            tags=with_name(dict(args.tags), f"{name}-sg"),
            opts=child,
        )
        self.subnet_group_name = subnet_group.name
        self.security_group_id = security_group.id
        self.register_outputs(
            {
                "subnet_group_name": self.subnet_group_name,
                "security_group_id": self.security_group_id,
            }
        )
