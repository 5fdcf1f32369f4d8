"""The petstore-rds Pulumi program: every resource is defined in infra/; this only exports."""

import pulumi

from infra.stack import define_stack

for output_name, value in define_stack().items():
    pulumi.export(output_name, value)
