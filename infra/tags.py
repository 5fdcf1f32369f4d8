"""Tag keys every taggable AWS resource carries (the policy pack reads ``environment``)."""

from __future__ import annotations

PROJECT = "petstore-rds"

TAG_PROJECT = "project"
TAG_ENVIRONMENT = "environment"
TAG_MANAGED_BY = "managed-by"
MANAGED_BY = "pulumi"
# The stack's `environment` config (development or production): the policy pack holds resources
# tagged tier=production to the production rules whatever the stack is called.
TAG_TIER = "tier"

REQUIRED_TAG_KEYS = (TAG_PROJECT, TAG_ENVIRONMENT, TAG_MANAGED_BY)


def base_tags(environment: str, tier: str = "development") -> dict[str, str]:
    """The tags every taggable AWS resource of the stack ``environment`` carries; ``tier`` is
    its configured environment class (``development`` or ``production``)."""
    return {
        TAG_PROJECT: PROJECT,
        TAG_ENVIRONMENT: environment,
        TAG_TIER: tier,
        TAG_MANAGED_BY: MANAGED_BY,
    }


def with_name(tags: dict[str, str], name: str) -> dict[str, str]:
    """``tags`` plus the console's ``Name`` tag."""
    return {**tags, "Name": name}
