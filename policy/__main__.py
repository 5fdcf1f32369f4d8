"""The petstore-rds policy pack: ``pulumi preview --policy-pack policy`` runs this file.

The Pulumi CLI runs the pack with this directory on ``sys.path``, so ``petstore_policy`` (the
checks the tests exercise) is importable as is. Every policy is mandatory: a violation fails
the preview or update.
"""

from petstore_policy import PACK_DESCRIPTION, PACK_NAME, build_policies
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name=PACK_NAME,
    description=PACK_DESCRIPTION,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=build_policies(),
)
