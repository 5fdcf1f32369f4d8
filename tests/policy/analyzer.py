"""Drive the policy pack exactly as the Pulumi engine does, without an engine.

``pulumi_policy``'s analyzer servicer is what ``PolicyPack`` serves over gRPC; the engine calls
its ``Analyze`` (one resource) and ``AnalyzeStack`` (all resources) with protobuf requests.
This helper builds those requests from plain dicts of wire-format props, so every test runs the
pack's real path: protobuf decoding, the unknown-value proxy, the enforcement level, the
policy config and the report formatting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2
from petstore_policy import PACK_DESCRIPTION, PACK_NAME, build_policies
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

# The pack's analyzer in process: a private class, confined to the shim (its canary,
# tests/delivery/test_private_apis.py, checks it against the pack process over gRPC).
from tests.support.pulumi_private import PolicyAnalyzerServicer

PROJECT = "petstore-rds"
# What the engine sends for a value that is only known after the update (preview).
UNKNOWN = UNKNOWN_STRING_VALUE


@dataclass(frozen=True)
class Diagnostic:
    """One reported violation: the policy, its detail line, how it is enforced, the URN."""

    policy: str
    detail: str
    mandatory: bool
    urn: str


def urn(stack: str, type_: str, name: str) -> str:
    """The URN the engine would give a top-level resource."""
    return f"urn:pulumi:{stack}::{PROJECT}::{type_}::{name}"


def _struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(dict(props))
    return message


class Analyzer:
    """The pack's analyzer for one stack name (None: the engine did not say)."""

    def __init__(self, stack: str | None, config: Mapping[str, Mapping[str, Any]] | None = None):
        self.stack = stack
        self.policies = build_policies(stack_name=lambda: stack)
        self.servicer = PolicyAnalyzerServicer(
            PACK_NAME, "0.1.0", self.policies, EnforcementLevel.MANDATORY, None, PACK_DESCRIPTION
        )
        if config:
            request = proto.ConfigureAnalyzerRequest(
                policyConfig={
                    name: proto.PolicyConfig(
                        enforcementLevel=proto.MANDATORY, properties=_struct(values)
                    )
                    for name, values in config.items()
                }
            )
            self.servicer.Configure(request, None)

    @staticmethod
    def _diagnostics(response: Any) -> list[Diagnostic]:
        found = []
        for d in response.diagnostics:
            # A violation is "<description>\n<detail>"; a preview note is one line.
            head, _, detail = d.message.partition("\n")
            detail = detail or head
            found.append(
                Diagnostic(d.policyName, detail, d.enforcementLevel == proto.MANDATORY, d.urn)
            )
        return found

    def analyze(
        self, type_: str, props: Mapping[str, Any], name: str = "res", *, protect: bool = True
    ) -> list[Diagnostic]:
        """Every diagnostic the pack reports for one resource. ``protect`` is the resource's
        Pulumi protect option (default on, as production registers its stateful resources)."""
        request = proto.AnalyzeRequest(
            type=type_,
            properties=_struct(props),
            urn=urn(self.stack or "s", type_, name),
            name=name,
            options=proto.AnalyzerResourceOptions(protect=protect),
        )
        return self._diagnostics(self.servicer.Analyze(request, None))

    def violations(
        self, type_: str, props: Mapping[str, Any], name: str = "res", *, protect: bool = True
    ) -> dict[str, list[str]]:
        """Mandatory violations for one resource, as {policy name: [detail, ...]}."""
        found: dict[str, list[str]] = {}
        for d in self.analyze(type_, props, name, protect=protect):
            assert d.mandatory, f"{d.policy} reported a non-mandatory diagnostic: {d.detail}"
            found.setdefault(d.policy, []).append(d.detail)
        return found

    def analyze_stack(
        self, resources: Iterable[tuple[str, str, Mapping[str, Any]]]
    ) -> list[Diagnostic]:
        """Every diagnostic of the stack policies for (type, name, props) resources."""
        request = proto.AnalyzeStackRequest(
            resources=[
                proto.AnalyzerResource(
                    type=type_,
                    properties=_struct(props),
                    urn=urn(self.stack or "s", type_, name),
                    name=name,
                )
                for type_, name, props in resources
            ]
        )
        return self._diagnostics(self.servicer.AnalyzeStack(request, None))
