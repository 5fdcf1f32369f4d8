"""The shapes of a baseline policy and the helpers its checks use to read wire-format props.

Props are what the Pulumi engine hands a policy pack: the resource's inputs with camelCase keys
(``publiclyAccessible``, ``spec.template.spec.containers``). During ``pulumi preview`` some
values are not known yet; ``pulumi_policy`` wraps props in a proxy that raises
``UnknownValueError`` when one is read, and the pack turns that into an advisory "cannot check
during preview" note. Checks that only need to know a value is *set* use :func:`is_set`, which
counts an unknown value as set, so they still run (and pass) during preview.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from petstore_policy.environment import Environment
from pulumi_policy import Severity
from pulumi_policy.proxy import UnknownValueError


@dataclass(frozen=True)
class Resource:
    """One resource as a policy sees it: its type token, logical name and input props."""

    type: str
    name: str
    props: Mapping[str, Any]
    urn: str = ""
    protect: bool = False  # the Pulumi resource option, as the engine reports it


ResourceCheck = Callable[[Resource, Environment], Iterable[str]]
StackCheck = Callable[[Sequence[Resource], Environment], Iterable[tuple[str, Resource | None]]]


@dataclass(frozen=True)
class ResourcePolicy:
    """A baseline rule over single resources of ``resource_types``.

    ``check`` yields one message per violation; it is a pure function of the resource and the
    environment, so tests call it directly and the pack wraps it unchanged.
    ``production_rule`` says what the policy additionally demands in production stacks.
    """

    name: str
    control: str
    summary: str
    production_rule: str
    resource_types: frozenset[str]
    check: ResourceCheck
    severity: Severity = Severity.HIGH

    @property
    def description(self) -> str:
        """The one-paragraph description the Pulumi CLI prints next to a violation."""
        prod = f" In production stacks: {self.production_rule}" if self.production_rule else ""
        return f"{self.summary} [{self.control}]{prod}"

    def violations(self, resource: Resource, env: Environment) -> list[str]:
        """Messages for every way ``resource`` breaks this policy in ``env`` (empty: compliant)."""
        if resource.type not in self.resource_types:
            return []
        return [
            f"{resource.type} {resource.name!r}: {message} [{self.control}]"
            for message in self.check(resource, env)
        ]


@dataclass(frozen=True)
class StackPolicy:
    """A baseline rule that needs the whole stack (e.g. "some subscription covers the DB")."""

    name: str
    control: str
    summary: str
    production_rule: str
    check: StackCheck
    severity: Severity = Severity.HIGH

    @property
    def description(self) -> str:
        """The one-paragraph description the Pulumi CLI prints next to a violation."""
        prod = f" In production stacks: {self.production_rule}" if self.production_rule else ""
        return f"{self.summary} [{self.control}]{prod}"

    def violations(
        self, resources: Sequence[Resource], env: Environment
    ) -> list[tuple[str, Resource | None]]:
        """(message, offending resource or None for the stack) for every violation."""
        return [(f"{message} [{self.control}]", res) for message, res in self.check(resources, env)]


class _Missing:
    """Marker for a property that is absent (distinct from an explicit null)."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


def keys(props: Mapping[str, Any]) -> set[str]:
    """The property names present, without reading (and so without tripping on) their values."""
    return set(iter(props))


def get(props: Mapping[str, Any], *path: str | int) -> Any:
    """The value at ``path`` (keys and list indexes), or MISSING if any step is absent or null.

    Raises ``UnknownValueError`` when a value on the path is not known yet (preview).
    """
    node: Any = props
    for step in path:
        if isinstance(step, int):
            if isinstance(node, str) or not isinstance(node, Sequence) or step >= len(node):
                return MISSING
            node = node[step]
        else:
            if not isinstance(node, Mapping) or step not in keys(node):
                return MISSING
            node = node[step]
        if node is None:
            return MISSING
    return node


class _Unknown:
    """Marker for a value the engine will only know after the update (preview)."""

    def __repr__(self) -> str:
        return "<unknown until the update>"


UNKNOWN: Any = _Unknown()


def peek(props: Mapping[str, Any], key: str) -> Any:
    """The value of ``key`` (MISSING if absent or null), or UNKNOWN instead of raising."""
    try:
        return get(props, key)
    except UnknownValueError:
        return UNKNOWN


def is_set(props: Mapping[str, Any], key: str) -> bool:
    """True when ``key`` holds a non-empty value, or a value not known until the update."""
    if key not in keys(props):
        return False
    try:
        value = props[key]
    except UnknownValueError:
        return True
    if value is None:
        return False
    if isinstance(value, str):
        return value != ""
    if isinstance(value, (Mapping, Sequence)):
        return len(value) > 0
    return True


def as_list(value: Any) -> list[Any]:
    """A list-valued property as a list (MISSING and null become empty)."""
    if value is MISSING or value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        return [value]
    return list(value)


def as_number(value: Any) -> float | None:
    """A numeric property as a float (the wire format carries numbers as floats or strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def shown(value: Any) -> str:
    """A property value as it appears in a message (``true``, ``7``, ``'postgres'``, unset)."""
    if value is MISSING:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)
