"""Write migration/requirements.lock: migration/requirements.txt resolved for the Job's image.

The image (migration/Dockerfile) is CPython 3.11 on python:3.11.x-slim-bookworm (Debian 12,
glibc 2.36), built for linux/amd64 and linux/arm64, and installs its dependencies with
`pip install --require-hashes --no-deps --only-binary=:all: -r requirements.lock`. So the
lock must pin every distribution, the transitive ones included, and carry the sha256 of each
wheel either platform installs. This script resolves the requirements once per platform with

    pip download --only-binary=:all: --platform manylinux_2_36_<arch> ... (every older
        manylinux tag too) --python-version 3.11 --implementation cp --abi cp311

from PyPI alone (the machine's pip configuration, extra indexes and find-links are ignored:
the image sees only PyPI), hashes the downloaded wheels and writes the lock, sorted, with a
header saying how to regenerate it. It needs network access to PyPI and nothing beyond the
standard library and pip.

Usage (`make lock` runs it from the project's virtualenv):

    python scripts/lock_requirements.py [--requirements FILE] [--output FILE]

To bump a pin: edit migration/requirements.txt, run `make lock`, commit both files.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "migration" / "requirements.txt"
LOCK = REPO / "migration" / "requirements.lock"

PYTHON_VERSION = "3.11"
# python:3.11.x-slim-bookworm is Debian 12: glibc 2.36, so manylinux_2_36 and older wheels run.
GLIBC_MINOR = 36
ARCHES = ("x86_64", "aarch64")
INDEX_URL = "https://pypi.org/simple"

# The pre-PEP 600 names of some manylinux_2_N tags (pip does not expand manylinux_2_N itself).
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
# pip settings that choose where distributions come from; the lock is for PyPI only.
_SOURCE_SETTINGS = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX")
_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")


class LockError(Exception):
    """The requirements cannot be locked as asked (reported without a traceback)."""


@dataclass
class Locked:
    """One distribution of the lock: a single version, the hashes of its wheels."""

    name: str
    version: str
    hashes: set[str] = field(default_factory=set)


def normalize(name: str) -> str:
    """PEP 503 normalized project name: `typing_extensions` -> `typing-extensions`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def manylinux_platforms(arch: str, glibc_minor: int = GLIBC_MINOR) -> list[str]:
    """Every manylinux tag a glibc 2.<glibc_minor> system accepts, best first, as pip would
    compute it on that system (x86_64 goes back to manylinux1, other arches to 2014)."""
    lowest = 5 if arch in {"x86_64", "i686"} else 17
    tags: list[str] = []
    for minor in range(glibc_minor, lowest - 1, -1):
        tags.append(f"manylinux_2_{minor}_{arch}")
        if minor in _LEGACY_MANYLINUX:
            tags.append(f"{_LEGACY_MANYLINUX[minor]}_{arch}")
    return tags


def pins(requirements_text: str) -> dict[str, str]:
    """The `name==version` pins of a requirements file (extras dropped), by normalized name."""
    found: dict[str, str] = {}
    for raw in requirements_text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIN.fullmatch(line)
        if not match:
            raise LockError(f"not an exact `name==version` pin: {line!r}")
        found[normalize(match.group(1))] = match.group(2)
    return found


def pip_download_command(
    requirements: Path,
    dest: Path,
    arch: str,
    *,
    python_version: str = PYTHON_VERSION,
    glibc_minor: int = GLIBC_MINOR,
    index_url: str = INDEX_URL,
) -> list[str]:
    platforms = [
        arg for tag in manylinux_platforms(arch, glibc_minor) for arg in ("--platform", tag)
    ]
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        "--only-binary=:all:",
        "--index-url",
        index_url,
        *platforms,
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        "--abi",
        "cp" + python_version.replace(".", ""),
        "--dest",
        str(dest),
        "--requirement",
        str(requirements),
    ]


def pip_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without pip's configuration files and source settings, so
    that pip resolves from the index given on the command line only (proxies, certificates
    and timeouts set in the environment still apply)."""
    env = {key: value for key, value in environ.items() if key not in _SOURCE_SETTINGS}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def wheel_name_version(wheel: Path) -> tuple[str, str]:
    """(normalized name, version) from a wheel's file name (PEP 427)."""
    parts = wheel.name.removesuffix(".whl").split("-")
    if not wheel.name.endswith(".whl") or len(parts) not in {5, 6}:
        raise LockError(f"{wheel.name}: not a wheel (the image installs wheels only)")
    return normalize(parts[0]), parts[1]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def collect(downloads: Mapping[str, Path]) -> dict[str, Locked]:
    """Merge each platform's downloaded wheels (platform -> directory) into one entry per
    distribution; a distribution resolved to different versions on two platforms is an
    error (the lock has one version per name)."""
    locked: dict[str, Locked] = {}
    seen_on: dict[str, str] = {}
    for platform, directory in downloads.items():
        files = sorted(directory.iterdir())
        if not files:
            raise LockError(f"{platform}: pip downloaded nothing")
        for wheel in files:
            name, version = wheel_name_version(wheel)
            entry = locked.setdefault(name, Locked(name, version))
            seen_on.setdefault(name, platform)
            if entry.version != version:
                raise LockError(
                    f"{name} resolves to {entry.version} for {seen_on[name]} but to {version}"
                    f" for {platform}: pin it in the requirements file"
                )
            entry.hashes.add(sha256(wheel))
    return locked


def check_pins(locked: Mapping[str, Locked], pinned: Mapping[str, str]) -> None:
    """Every pin resolved to exactly its version (pip enforces it; this guards the merge)."""
    for name, version in pinned.items():
        if name not in locked:
            raise LockError(f"{name} is pinned in the requirements but was not downloaded")
        if locked[name].version != version:
            raise LockError(f"{name}: pinned {version}, resolved {locked[name].version}")


def render(
    locked: Mapping[str, Locked],
    pinned: Collection[str],
    *,
    requirements: str = "migration/requirements.txt",
    arches: Sequence[str] = ARCHES,
    python_version: str = PYTHON_VERSION,
    glibc_minor: int = GLIBC_MINOR,
    index_url: str = INDEX_URL,
) -> str:
    """The lock file: a header, then each distribution sorted by name, one hash per line;
    those not in `pinned` (the requirements file's names) are marked as transitive."""
    abi = "cp" + python_version.replace(".", "")
    targets = ", ".join(f"manylinux_2_{glibc_minor}_{arch}" for arch in arches)
    lines = [
        f"# Generated by scripts/lock_requirements.py from {requirements}: do not edit by hand.",
        f"# To change a dependency, edit {requirements}, run `make lock` and commit both files.",
        "# Every distribution, transitive ones included, resolved from",
        f"# {index_url} by `pip download --only-binary=:all: --python-version {python_version}",
        f"# --implementation cp --abi {abi}` for each of {targets}",
        "# (with every older manylinux tag), pinned with the sha256 of each wheel those platforms",
        "# install. The image installs it with",
        "# `pip install --require-hashes --no-deps --only-binary=:all: -r requirements.lock`.",
    ]
    for name in sorted(locked):
        entry = locked[name]
        hashes = sorted(entry.hashes)
        lines.append(f"{name}=={entry.version} \\")
        lines.extend(
            f"    --hash=sha256:{digest}" + (" \\" if i < len(hashes) - 1 else "")
            for i, digest in enumerate(hashes)
        )
        if name not in pinned:
            lines.append(f"    # transitive: required by a distribution in {requirements}")
    return "\n".join(lines) + "\n"


def display(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def lock(
    requirements: Path,
    output: Path,
    *,
    arches: Sequence[str] = ARCHES,
    index_url: str = INDEX_URL,
) -> dict[str, Locked]:
    with tempfile.TemporaryDirectory(prefix="lock-requirements-") as tmp:
        downloads: dict[str, Path] = {}
        for arch in arches:
            dest = Path(tmp) / arch
            dest.mkdir()
            command = pip_download_command(requirements, dest, arch, index_url=index_url)
            print(f"resolving {display(requirements)} for cp311 manylinux {arch} ...", flush=True)
            result = subprocess.run(  # noqa: S603 (our own interpreter's pip, fixed arguments)
                command, env=pip_environment(os.environ), check=False
            )
            if result.returncode != 0:
                raise LockError(f"pip download for {arch} failed (exit {result.returncode})")
            downloads[f"manylinux {arch}"] = dest
        locked = collect(downloads)
    pinned = pins(requirements.read_text(encoding="utf-8"))
    check_pins(locked, pinned)
    text = render(
        locked, pinned, requirements=display(requirements), arches=arches, index_url=index_url
    )
    partial = output.with_name(output.name + ".tmp")
    partial.write_text(text, encoding="utf-8")
    partial.replace(output)
    return locked


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--requirements", type=Path, default=REQUIREMENTS)
    parser.add_argument("--output", type=Path, default=LOCK)
    parser.add_argument("--index-url", default=INDEX_URL)
    args = parser.parse_args(argv)
    try:
        locked = lock(args.requirements.resolve(), args.output.resolve(), index_url=args.index_url)
    except LockError as error:
        print(f"lock_requirements: {error}", file=sys.stderr)
        return 1
    for entry in sorted(locked.values(), key=lambda e: e.name):
        print(f"  {entry.name}=={entry.version}  ({len(entry.hashes)} wheel(s))")
    print(f"wrote {display(args.output.resolve())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
