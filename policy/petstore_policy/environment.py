"""Which environment a resource belongs to, so prod-only rules fire in production only.

The Pulumi CLI starts a policy pack with ``PULUMI_STACK`` set, and ``pulumi_policy`` configures
the runtime from it, so :func:`pulumi.get_stack` names the stack being previewed or updated.
A stack is production when its name is in the policy's ``productionStacks`` config (default
``["prod"]``; override with ``--policy-pack-config``). An AWS resource whose ``environment`` tag
names a production stack, or whose ``tier`` tag is ``production`` (the program sets it from the
stack's ``environment`` config), is treated as production too: a tag can only make the rules
stricter, never looser. When the stack name is unknown, the pack assumes production (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy.proxy import UnknownValueError

PRODUCTION_STACKS_KEY = "productionStacks"
DEFAULT_PRODUCTION_STACKS: tuple[str, ...] = ("prod",)
ENVIRONMENT_TAG = "environment"
# The program tags every AWS resource with its stack's configured class (infra/tags.py): a
# production stack is recognised by that config, whatever its name.
TIER_TAG = "tier"
PRODUCTION_TIER = "production"

# JSON schema of the per-policy config; the CLI validates --policy-pack-config against it.
PRODUCTION_STACKS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "minLength": 1},
    "default": list(DEFAULT_PRODUCTION_STACKS),
    "description": "Stack names whose prod-only rules apply (default: prod).",
}


class PolicyConfigError(ValueError):
    """The policy pack's configuration is not of the expected shape."""


@dataclass(frozen=True)
class Environment:
    """The stack a resource is validated in and whether production rules apply to it."""

    stack: str | None
    production: bool
    reason: str


def production_stacks(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``productionStacks`` list from a policy's config, validated."""
    raw = config.get(PRODUCTION_STACKS_KEY, list(DEFAULT_PRODUCTION_STACKS))
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        msg = (
            f"policy config {PRODUCTION_STACKS_KEY!r} must be a list of stack names, "
            f"got {type(raw).__name__} {raw!r}"
        )
        raise PolicyConfigError(msg)
    names = tuple(raw)
    bad = [name for name in names if not isinstance(name, str) or not name]
    if bad:
        msg = (
            f"policy config {PRODUCTION_STACKS_KEY!r} must hold non-empty stack names, got {bad!r}"
        )
        raise PolicyConfigError(msg)
    return names


def _environment_tag(props: Mapping[str, Any], key: str = ENVIRONMENT_TAG) -> str | None:
    """The resource's ``key`` tag, or None when absent or not yet known (preview)."""
    try:
        tags = props.get("tags")
        if not isinstance(tags, Mapping):
            return None
        value = tags.get(key)
    except UnknownValueError:
        return None
    return value if isinstance(value, str) else None


def resolve_environment(
    stack: str | None, config: Mapping[str, Any], props: Mapping[str, Any]
) -> Environment:
    """Decide whether the prod-only rules apply to a resource with ``props`` in ``stack``."""
    prod_names = production_stacks(config)
    if stack is None:
        return Environment(None, True, "stack name unknown: production rules apply (fail closed)")
    if stack in prod_names:
        return Environment(stack, True, f"stack {stack!r} is in {PRODUCTION_STACKS_KEY}")
    tag = _environment_tag(props)
    if tag is not None and tag in prod_names:
        return Environment(stack, True, f"resource tag {ENVIRONMENT_TAG}={tag!r} is production")
    if _environment_tag(props, TIER_TAG) == PRODUCTION_TIER:
        return Environment(stack, True, f"resource tag {TIER_TAG}={PRODUCTION_TIER!r}")
    return Environment(stack, False, f"stack {stack!r} is not in {PRODUCTION_STACKS_KEY}")
