"""Fail a `pulumi preview --json` that would replace or delete what holds the data.

The deploy and preview workflows run `pulumi preview --json --refresh ... > preview.json` and
then `python scripts/preview_gate.py preview.json`. The document is Pulumi's preview digest
(pkg/display/json.go): `steps`, each with `op`, `urn`, `oldState`/`newState` (each with its
`type`) and, for replacements, `replaceReasons` (the inputs that force it); plus
`changeSummary` and `maybeCorrupt`.

A step on a guarded resource type (the RDS instance, a KMS key, a Secrets Manager secret) passes
only if its operation leaves the physical resource in place: `same`, `create` (the first
deploy), `update` (in place), `read`, `refresh`, `import`. Every other operation, the known
destructive ones (`delete`, `replace`, `create-replacement`, `delete-replaced`,
`discard-replaced`, `remove-pending-replace`, `import-replacement`, `read-replacement`) and any
operation this script does not know, fails the gate: a replaced instance is a new, empty
database; a deleted or replaced key makes every snapshot encrypted with it unreadable once its
deletion window ends; a replaced secret gets a new ARN that the Job and the app no longer read.

Exit codes: 0 the preview is safe, 1 it would replace or delete a guarded resource (each one
named, with the inputs forcing it), 2 the file is not a preview digest. `--allow URN` lets one
reviewed URN through (a deliberate replacement, run by hand per docs/runbook.md); the workflows
never pass it.

Standard library only: it runs on the runner's Python before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The resource types whose replacement or deletion loses data or access to it, and what they are.
GUARDED_TYPES: Mapping[str, str] = {
    "aws:rds/instance:Instance": "the database instance",
    "aws:kms/key:Key": "a KMS key",
    "aws:secretsmanager/secret:Secret": "a Secrets Manager secret",
}
# Operations that keep the physical resource (and its data) where it is.
SAFE_OPS = frozenset({"same", "create", "update", "read", "refresh", "import"})
EXIT_SAFE, EXIT_BLOCKED, EXIT_UNREADABLE = 0, 1, 2


class NotAPreviewError(Exception):
    """The input is not a `pulumi preview --json` document."""


@dataclass(frozen=True)
class Blocked:
    """One step of the preview that would replace or delete a guarded resource."""

    op: str
    urn: str
    type_: str
    replace_reasons: tuple[str, ...]

    def describe(self) -> str:
        what = GUARDED_TYPES[self.type_]
        reasons = f" (forced by: {', '.join(self.replace_reasons)})" if self.replace_reasons else ""
        return f"{self.op}: {what} {self.type_}\n    {self.urn}{reasons}"


def resource_type(step: Mapping[str, Any]) -> str:
    """A step's resource type: from its new or old state, else the URN's last type segment
    (`urn:pulumi:<stack>::<project>::<parent types>$<type>::<name>`)."""
    for key in ("newState", "oldState"):
        state = step.get(key)
        if isinstance(state, Mapping) and isinstance(state.get("type"), str):
            return str(state["type"])
    parts = str(step.get("urn", "")).split("::")
    if len(parts) < 4:
        raise NotAPreviewError(f"step has no type and an unreadable urn: {step.get('urn')!r}")
    return parts[2].rsplit("$", 1)[-1]


def steps_of(document: object) -> list[Mapping[str, Any]]:
    """The steps of a preview digest, after checking it is one."""
    if not isinstance(document, Mapping) or not ({"steps", "changeSummary"} & set(document)):
        raise NotAPreviewError("expected a JSON object with `steps` (pulumi preview --json)")
    if document.get("maybeCorrupt"):
        raise NotAPreviewError("the preview says the stack's state may be corrupt (maybeCorrupt)")
    steps = document.get("steps")
    if steps is None:  # omitted when empty
        steps = []
    if not isinstance(steps, list) or not all(isinstance(s, Mapping) for s in steps):
        raise NotAPreviewError("`steps` is not a list of objects")
    for index, step in enumerate(steps):
        if not isinstance(step.get("op"), str) or not isinstance(step.get("urn"), str):
            raise NotAPreviewError(f"steps[{index}] has no `op` and `urn` strings")
    return steps


def blocked_steps(document: object, allow: Iterable[str] = ()) -> list[Blocked]:
    """Every step that would replace or delete a guarded resource, in preview order."""
    allowed = set(allow)
    blocked = []
    for step in steps_of(document):
        type_ = resource_type(step)
        if type_ not in GUARDED_TYPES or step["op"] in SAFE_OPS or step["urn"] in allowed:
            continue
        reasons = tuple(str(r) for r in step.get("replaceReasons") or ())
        blocked.append(Blocked(step["op"], step["urn"], type_, reasons))
    return blocked


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("preview", help="the output of `pulumi preview --json` ('-': stdin)")
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="URN",
        help="let this reviewed URN be replaced or deleted (repeatable)",
    )
    args = parser.parse_args(argv)
    source = "stdin" if args.preview == "-" else args.preview
    try:
        text = sys.stdin.read() if args.preview == "-" else Path(args.preview).read_text("utf-8")
        blocked = blocked_steps(json.loads(text), args.allow)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, NotAPreviewError) as error:
        print(f"preview gate: {source}: not a pulumi preview --json document: {error}")
        return EXIT_UNREADABLE
    if not blocked:
        print(f"preview gate: OK, no replace or delete of {', '.join(GUARDED_TYPES)}")
        return EXIT_SAFE
    print(f"preview gate: BLOCKED, this preview would destroy {len(blocked)} guarded resource(s):")
    for step in blocked:
        print(f"  {step.describe()}")
    print(
        "A replaced instance is a new, empty database; a replaced or deleted key or secret cuts "
        "the data or the app off. Change the program so these resources stay (aliases, "
        "ignoreChanges, or undo the config change), or follow docs/runbook.md and run the "
        "reviewed update by hand."
    )
    return EXIT_BLOCKED


if __name__ == "__main__":
    sys.exit(main())
