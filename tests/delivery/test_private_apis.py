"""Canary for the private Pulumi / pulumi_policy APIs the test harness relies on
(tests/support/pulumi_private.py, the one module allowed to import them): they exist with the
signatures the harness calls, the in-process analyzer reports exactly what the pack reports over
its public gRPC interface, and nothing else imports a private name. When an upgrade breaks one
of them, this fails by name instead of a policy or infra test going wrong for no visible reason.
"""

from __future__ import annotations

import inspect
import os
import re
import selectors
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc

from tests.policy import resources as r
from tests.policy.analyzer import Analyzer
from tests.support import pulumi_private

pytestmark = pytest.mark.delivery

ROOT = Path(__file__).resolve().parents[2]
SHIM = ROOT / "tests" / "support" / "pulumi_private.py"
POLICY_DIR = ROOT / "policy"
STARTUP_TIMEOUT_S = 60
RPC_TIMEOUT_S = 30
# An import, from pulumi or pulumi_policy, of a private name or of a module the SDK does not
# export (pulumi.runtime.__all__ has set_mocks, Mocks, set_all_config, get_root_resource, rpc...).
PRIVATE = re.compile(
    r"^\s*(?:from|import)\s+pulumi(?:_policy)?[\w.]*\b.*?"
    r"(\b_\w+|\bMockMonitor\b|\brun_pulumi_func\b|\bsettings\b|pulumi\.runtime\.(?:stack|"
    r"sync_await|mocks|settings)\b|pulumi_policy\.policy\b)"
)


def _params(func: object) -> list[str]:
    return list(inspect.signature(func).parameters)  # type: ignore[arg-type]


def test_the_private_names_exist_with_the_signatures_the_harness_calls() -> None:
    from pulumi.runtime import mocks, settings, stack, sync_await
    from pulumi_policy import policy

    assert _params(sync_await._sync_await) == ["awaitable"]
    assert inspect.iscoroutinefunction(stack.run_pulumi_func)
    assert _params(stack.run_pulumi_func) == ["func"]
    assert _params(mocks.MockMonitor.__init__) == ["self", "mocks"]
    assert mocks.MockMonitor.ResourceRegistration._fields == ("urn", "id", "state")
    for method in ("RegisterResource", "ReadResource", "Invoke", "SupportsFeature"):
        assert callable(getattr(mocks.MockMonitor, method)), method
    assert hasattr(settings.SETTINGS, "outputs")
    assert hasattr(settings.SETTINGS, "lock")
    assert _params(policy._PolicyAnalyzerServicer.__init__)[:7] == [
        "self",
        "name",
        "version",
        "policies",
        "enforcement_level",
        "initial_config",
        "description",
    ]
    for method in ("Analyze", "AnalyzeStack", "Configure"):  # what tests/policy/analyzer.py calls
        # Called positionally as (request, None), like grpc calls a servicer.
        params = _params(getattr(policy._PolicyAnalyzerServicer, method))
        assert params[:2] == ["self", "request"], method
        assert len(params) == 3, method
    assert pulumi_private.PolicyAnalyzerServicer is policy._PolicyAnalyzerServicer


def test_no_module_but_the_shim_imports_a_private_api() -> None:
    offenders = []
    for folder in ("tests", "infra", "policy", "migration", "scripts", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path in (SHIM, Path(__file__)) or ".venv" in path.parts:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if PRIVATE.search(line.split("#", 1)[0]):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_scan_finds_a_private_import() -> None:
    assert PRIVATE.search("from pulumi.runtime.sync_await import _sync_await")
    assert PRIVATE.search("from pulumi_policy.policy import _PolicyAnalyzerServicer")
    assert PRIVATE.search("from pulumi.runtime import rpc, settings")
    assert PRIVATE.search("    from pulumi.runtime.mocks import MockMonitor")
    assert not PRIVATE.search("from pulumi.runtime import get_root_resource, set_mocks")
    assert not PRIVATE.search("from tests.support.pulumi_private import MockMonitor")
    assert not PRIVATE.search("from pulumi_policy.proxy import UNKNOWN_STRING_VALUE")


def test_reset_runtime_state_gives_a_fresh_set_and_lock() -> None:
    from pulumi.runtime import settings

    before = (settings.SETTINGS.outputs, settings.SETTINGS.lock)
    pulumi_private.reset_runtime_state()

    assert settings.SETTINGS.outputs == set()
    assert settings.SETTINGS.outputs is not before[0]
    assert settings.SETTINGS.lock is not before[1]


@pytest.fixture(scope="module")
def pack_process() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """The pack as the Pulumi CLI runs it (`python -m pulumi.policy`), prod stack."""
    env = {
        **os.environ,
        "PULUMI_PROJECT": "petstore-rds",
        "PULUMI_STACK": "prod",
        "PULUMI_DRY_RUN": "true",
        "PULUMI_CONFIG": "{}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:0", str(POLICY_DIR)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=POLICY_DIR,
    )
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout=STARTUP_TIMEOUT_S)
    port = proc.stdout.readline().decode().strip() if ready else ""
    if not port.isdigit():
        proc.kill()
        pytest.fail(f"the pack did not start: {port!r}\n{proc.communicate(timeout=10)[1]!r}")
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        channel.close()
        proc.terminate()
        proc.wait(timeout=10)


def _request(type_: str, props: dict[str, object], name: str) -> proto.AnalyzeRequest:
    properties = struct_pb2.Struct()
    properties.update(props)
    return proto.AnalyzeRequest(
        type=type_,
        properties=properties,
        urn=f"urn:pulumi:prod::petstore-rds::{type_}::{name}",
        name=name,
        # As the engine sends a protected production resource (the pack checks protect).
        options=proto.AnalyzerResourceOptions(protect=True),
    )


def _report(response: proto.AnalyzeResponse) -> list[tuple[str, str, int, str]]:
    return sorted(
        (d.policyName, d.message, d.enforcementLevel, d.urn) for d in response.diagnostics
    )


def test_in_process_analyzer_reports_what_the_pack_process_reports_over_grpc(
    pack_process: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    """The harness's shortcut (the private servicer, in process) against the public path
    (the pack's own process, over the analyzer gRPC protocol): same diagnostics, same text."""
    public_db = r.prod_rds_instance()
    public_db["publiclyAccessible"] = True
    unencrypted_dev = r.dev_rds_instance()
    del unencrypted_dev["tags"]
    cases = [
        (r.RDS_INSTANCE, public_db, "public"),
        (r.RDS_INSTANCE, unencrypted_dev, "dev-in-prod"),
        (r.RDS_INSTANCE, r.prod_rds_instance(), "compliant"),
        (r.JOB, r.job(), "job"),
    ]
    servicer = Analyzer("prod").servicer
    reports = []
    for type_, props, name in cases:
        request = _request(type_, props, name)
        in_process = _report(servicer.Analyze(request, None))
        over_grpc = _report(pack_process.Analyze(request, timeout=RPC_TIMEOUT_S))
        assert in_process == over_grpc, name
        reports.append(in_process)

    assert [d[0] for d in reports[0]] == ["rds-2-no-public-access"]
    assert len(reports[1]) >= 3  # the comparison is over real findings, not empty lists
    assert reports[2] == []
