"""Every private Pulumi and pulumi_policy API the test harness uses, and the only module that
imports one.

Most of the harness runs on public interfaces: ``pulumi.runtime.set_mocks`` with a
``pulumi.runtime.Mocks``, ``set_all_config``, ``get_root_resource``, the ``rpc`` module, and the
analyzer's gRPC protocol (``pulumi.runtime.proto``), which tests/policy/test_pack_process.py
speaks to the pack running as its own process. What they do not offer is below, each with why
it is needed and what would replace it. tests/delivery/test_private_apis.py is the canary: it
checks that these names still exist with the signatures used here, that the in-process analyzer
reports exactly what the pack process reports over gRPC, and that no other module imports a
private name. A pulumi or pulumi-policy upgrade that breaks one of them fails there, by name,
before it can make a policy or infra test pass or fail for the wrong reason.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pulumi.runtime import settings as _settings

# The mocks' monitor: `set_mocks` builds one from a `Mocks`, but `Mocks.new_resource` receives
# neither the resource options (protect, retainOnDelete, deleteBeforeReplace, customTimeouts,
# ignoreChanges) nor the request as the engine sees it; subclassing the monitor does. Public
# replacement: none in the SDK (the engine's own registrations are only visible to a real engine).
from pulumi.runtime.mocks import MockMonitor as MockMonitor

# The generated gRPC messages of the resource monitor (the wire protocol the monitor answers in).
from pulumi.runtime.proto import resource_pb2 as resource_pb2

# Runs a program function the way `pulumi up` does (root stack resource, outputs awaited).
# Public replacement: `pulumi.runtime.test` decorates one test function; it cannot return the
# registrations and exports to a harness that runs the whole program once and caches the result.
from pulumi.runtime.stack import run_pulumi_func as _run_pulumi_func

# Drives the SDK's event loop from synchronous code (the same loop the mocks run in).
from pulumi.runtime.sync_await import _sync_await

# The analyzer `PolicyPack` serves over gRPC: calling it in process gives the pack's real path
# (protobuf decoding, unknown-value proxy, enforcement, config, report format) at a fraction of a
# process start per test. Public replacement: the pack process over gRPC (test_pack_process.py,
# and the canary's equivalence test).
from pulumi_policy.policy import _PolicyAnalyzerServicer

T = TypeVar("T")

PolicyAnalyzerServicer = _PolicyAnalyzerServicer


def sync_await(awaitable: Awaitable[T]) -> T:
    """The result of `awaitable`, run on the Pulumi SDK's event loop."""
    return _sync_await(awaitable)


def run_program(func: Callable[[], Awaitable[None] | None]) -> None:
    """Run `func` as a Pulumi program under the current (mock) settings, to completion."""
    _sync_await(_run_pulumi_func(func))


def reset_runtime_state() -> None:
    """Give the next program run its own pending-outputs set and lock: the mock settings keep
    those of whatever ran before (e.g. a run that failed with tasks pending on a closed loop)."""
    state: Any = _settings.SETTINGS
    state.outputs = set()
    state.lock = threading.Lock()
