"""Start the pack exactly as the Pulumi CLI does and talk to it over gRPC.

The CLI runs a Python policy pack as ``python -u -m pulumi.policy <engine> <pack dir>`` with
``PULUMI_PROJECT``, ``PULUMI_STACK`` and ``PULUMI_DRY_RUN`` set; the pack prints the port of its
analyzer server on stdout and serves ``GetAnalyzerInfo`` and ``Analyze``. This proves the
entry point (``policy/__main__.py``), its imports from the pack directory and the stack-name
detection work in a separate interpreter, not only inside the test process.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc

from tests.policy import resources as r

pytestmark = pytest.mark.policy

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"
STARTUP_TIMEOUT_S = 60  # importing pulumi and grpc in a cold interpreter takes a few seconds
RPC_TIMEOUT_S = 30


def _start(stack: str) -> tuple[subprocess.Popen[bytes], int]:
    env = {
        **os.environ,
        "PULUMI_PROJECT": "petstore-rds",
        "PULUMI_STACK": stack,
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
        if not selector.select(timeout=STARTUP_TIMEOUT_S):
            proc.kill()
            pytest.fail(f"the pack printed no port in {STARTUP_TIMEOUT_S}s")
    line = proc.stdout.readline().decode().strip()
    if not line.isdigit():
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"the pack did not start: {line!r}\n{err.decode()}")
    return proc, int(line)


@pytest.fixture(scope="module", params=["dev", "prod"])
def pack(request: pytest.FixtureRequest) -> Iterator[tuple[str, analyzer_pb2_grpc.AnalyzerStub]]:
    proc, port = _start(request.param)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield request.param, analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        channel.close()
        proc.terminate()
        proc.wait(timeout=10)


def _analyze(
    stub: analyzer_pb2_grpc.AnalyzerStub, type_: str, props: dict[str, object]
) -> set[str]:
    properties = struct_pb2.Struct()
    properties.update(props)
    request = proto.AnalyzeRequest(
        type=type_,
        properties=properties,
        urn=f"urn:pulumi:s::petstore-rds::{type_}::db",
        name="db",
        options=proto.AnalyzerResourceOptions(protect=True),  # as the program registers it
    )
    response = stub.Analyze(request, timeout=RPC_TIMEOUT_S)
    assert all(d.enforcementLevel == proto.MANDATORY for d in response.diagnostics)
    return {d.policyName for d in response.diagnostics}


def test_the_running_pack_advertises_every_policy_as_mandatory(
    pack: tuple[str, analyzer_pb2_grpc.AnalyzerStub],
) -> None:
    _, stub = pack

    info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=RPC_TIMEOUT_S)

    assert info.name == "petstore-rds-baseline"
    # 14 RDS, 2 security-group, 2 Secrets Manager, 10 Kubernetes, 3 day-two (KMS key policy,
    # protect in production, no master user in an app Secret)
    assert len(info.policies) == 31
    assert {p.enforcementLevel for p in info.policies} == {proto.MANDATORY}
    assert "rds-2-no-public-access" in {p.name for p in info.policies}


def test_the_running_pack_knows_its_stack_from_the_cli_environment(
    pack: tuple[str, analyzer_pb2_grpc.AnalyzerStub],
) -> None:
    stack, stub = pack
    dev_database = r.dev_rds_instance()
    del dev_database["tags"]  # only the stack name decides

    found = _analyze(stub, r.RDS_INSTANCE, dev_database)

    if stack == "prod":
        assert found == {
            "rds-3-encrypted-at-rest",
            "rds-5-multi-az",
            "rds-8-deletion-protection",
            "rds-11-automatic-backups",
        }
    else:
        assert found == set()


def test_the_running_pack_refuses_a_public_database_in_any_stack(
    pack: tuple[str, analyzer_pb2_grpc.AnalyzerStub],
) -> None:
    _, stub = pack
    public = r.prod_rds_instance()
    public["publiclyAccessible"] = True

    assert _analyze(stub, r.RDS_INSTANCE, public) == {"rds-2-no-public-access"}
