"""Check a stack's configuration file the way `pulumi preview` would, without Pulumi or AWS.

    make check-config STACK=dev            # Pulumi.dev.yaml
    python scripts/check_config.py prod    # Pulumi.prod.yaml
    python scripts/check_config.py path/to/Pulumi.staging.yaml

It reads the stack file's `config:` the way the engine hands it to the program (strings; lists
and maps as JSON; `secure:` values stay encrypted and are never read) and runs the program's own
validation, infra.config.parse_config, so it prints exactly the messages a preview would fail
with (tests/infra/test_config.py asserts them): every problem at once, each naming its key.
Exit 0 when the configuration is valid, 1 when it is not, 2 when the file cannot be read.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: infra/ is a sibling package

from infra.config import NAMESPACE, ConfigError, parse_config  # noqa: E402

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2
ENCRYPTED_VALUE = "[secret]"  # a secure value is never decrypted here


class UnreadableError(Exception):
    """The stack file is missing or is not a Pulumi stack file."""


def stack_file(stack: str) -> Path:
    """`dev` -> ROOT/Pulumi.dev.yaml; anything with a slash or a .yaml suffix is a path."""
    if "/" in stack or stack.endswith((".yaml", ".yml")):
        return Path(stack)
    return ROOT / f"Pulumi.{stack}.yaml"


def stack_name(path: Path) -> str:
    name = path.name
    for suffix in (".yaml", ".yml"):
        name = name.removesuffix(suffix)
    return name.removeprefix("Pulumi.")


def engine_value(value: object) -> str:
    """A config value as the engine gives it to the program."""
    if isinstance(value, Mapping) and set(value) == {"secure"}:
        return ENCRYPTED_VALUE
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


def read_config(path: Path) -> dict[str, str]:
    """Every `config:` key of the stack file (fully qualified) with its engine value."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UnreadableError(f"{path}: cannot read it ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise UnreadableError(f"{path}: not valid YAML ({error})") from None
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise UnreadableError(f"{path}: expected a mapping with a `config:` key")
    config = document.get("config") or {}
    if not isinstance(config, Mapping):
        raise UnreadableError(f"{path}: `config:` must be a mapping of keys to values")
    return {str(key): engine_value(value) for key, value in config.items()}


def project_name() -> str:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text(encoding="utf-8"))
    return str(project["name"])


def check(path: Path) -> tuple[int, str]:
    """(exit code, message) for the stack file at `path`."""
    stack = stack_name(path)
    try:
        config = read_config(path)
    except UnreadableError as error:
        return EXIT_UNREADABLE, f"check-config: {error}"
    prefix = f"{NAMESPACE}:"
    # As load_config: the kubeconfig is read as a secret Output, not from the raw values.
    raw = {
        key.removeprefix(prefix): value
        for key, value in config.items()
        if key.startswith(prefix) and key != f"{prefix}kubeconfig"
    }
    try:
        parse_config(raw, project=project_name(), stack=stack, region=config.get("aws:region"))
    except ConfigError as error:
        return EXIT_INVALID, str(error)
    return EXIT_OK, f"configuration of stack {stack!r} ({path}) is valid"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return EXIT_UNREADABLE
    code, message = check(stack_file(args[0]))
    print(message, file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())
