"""Run the real Pulumi program of a stack under mocks and return what it registered.

``run_stack("dev")`` loads the real ``Pulumi.dev.yaml`` (plus ``overrides``) into the mocks'
config, runs the real ``__main__.py`` under ``pulumi.runtime.set_mocks`` and returns a
``StackRun``: every registered resource with its wire-format inputs (camelCase keys, as the
engine would receive them), which inputs were secret, the outputs the mocks returned (realistic
provider-computed values: endpoints, ARNs, IDs), parent and dependencies, and the stack's
resolved exports with their secretness.

Each run happens in a fresh thread with a fresh ``contextvars.Context`` (the Pulumi runtime keeps
its settings, config and root stack in context variables), serialised by a lock, and is cached
per (stack, overrides, cluster outputs). Measured on the 2-core dev box: a subprocess per run
costs ~3.8 s (interpreter + pulumi_aws import + run); in-process, the first run ~2.5 s (the
import) and every further run ~0.4 s, a cached one ~7 ms. The isolation holds for both stacks
and dozens of failing configs in one process; pytest-xdist workers are separate processes with
their own caches.

Like the engine, the mocks mark ``additionalSecretOutputs`` and the outputs of secret inputs as
secret, so secretness seen by the program is what a real deployment would see.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import copy
import hashlib
import json
import logging
import runpy
import string
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT = "petstore-rds"
PROGRAM = REPO_ROOT / "__main__.py"
KUBERNETES_VERSION = "1.33.0"  # the EKS minor the rendered objects are validated against

ACCOUNT_ID = "123456789012"
RDS_HOST_SUFFIX = "abc123xyz"  # the random part of an RDS endpoint, e.g. petstore-dev.abc123xyz...

# What a cluster stack exports (for stacks that read the network IDs through a StackReference).
CLUSTER_STACK_OUTPUTS: dict[str, object] = {
    "vpcId": "vpc-0f1e2d3c4b5a69788",
    "privateSubnetIds": [
        "subnet-0aa11bb22cc33dd44",
        "subnet-0bb22cc33dd44ee55",
        "subnet-0cc33dd44ee55ff66",
    ],
    "clusterSecurityGroupIds": ["sg-0a9b8c7d6e5f40312"],
    "nodeSecurityGroupIds": ["sg-0f9e8d7c6b5a43210", "sg-0e8d7c6b5a4321098"],
}

_SIG = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

_LOCK = threading.Lock()
_CACHE: dict[str, StackRun] = {}
_LOG = logging.getLogger("pulumi-mocks")


@dataclass(frozen=True)
class RegisteredResource:
    """One resource as the mocked engine saw it."""

    type_: str
    name: str
    urn: str
    # Kept out of repr(): failure output stays readable and never prints (mock) secret values.
    inputs: dict[str, Any] = field(repr=False)
    outputs: dict[str, Any] = field(repr=False)
    secret_inputs: frozenset[str] = frozenset()  # dotted paths, e.g. "stringData.DATABASE_URL"
    secret_outputs: frozenset[str] = frozenset()  # top-level output names marked secret
    parent: str | None = None
    depends_on: tuple[str, ...] = ()
    property_dependencies: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    provider: str | None = None
    custom: bool = True
    delete_before_replace: bool = False
    custom_timeouts: dict[str, str] = field(default_factory=dict)
    # Resource options as the engine receives them (protect, retainOnDelete, ignoreChanges...).
    protect: bool = False
    retain_on_delete: bool = False
    ignore_changes: tuple[str, ...] = ()
    replace_on_changes: tuple[str, ...] = ()
    id: str = ""  # the physical ID the mocks returned (e.g. sg-0123...)
    # The program's view: every Output attribute of the Python resource object (snake_case,
    # e.g. "string_data"), resolved, and which of those Outputs are secret (Output.is_secret()).
    attributes: dict[str, Any] = field(default_factory=dict, repr=False)
    secret_attributes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class StackRun:
    """The result of running one stack's program under mocks."""

    stack: str
    config: dict[str, str] = field(repr=False)
    resources: list[RegisteredResource] = field(repr=False)
    outputs: dict[str, Any]
    secret_outputs: frozenset[str]

    def of_type(self, type_: str) -> list[RegisteredResource]:
        """Every resource of ``type_`` (e.g. ``aws:rds/instance:Instance``)."""
        return [r for r in self.resources if r.type_ == type_]

    def one(self, type_: str, name_contains: str = "") -> RegisteredResource:
        """The single resource of ``type_`` whose name contains ``name_contains``."""
        found = [r for r in self.of_type(type_) if name_contains in r.name]
        if len(found) != 1:
            names = [r.name for r in self.of_type(type_)]
            msg = f"expected one {type_} named *{name_contains}*, found {len(found)} in {names}"
            raise AssertionError(msg)
        return found[0]

    def by_urn(self, urn: str) -> RegisteredResource:
        """The resource with this URN."""
        for r in self.resources:
            if r.urn == urn:
                return r
        raise KeyError(urn)

    def depends_on(self, dependent: RegisteredResource, dependency: RegisteredResource) -> bool:
        """Whether ``dependent`` (transitively) waits for ``dependency`` (depends_on and
        property dependencies, as the engine orders them)."""
        seen: set[str] = set()
        stack = [dependent.urn]
        while stack:
            urn = stack.pop()
            if urn in seen:
                continue
            seen.add(urn)
            try:
                res = self.by_urn(urn)
            except KeyError:
                continue
            deps = set(res.depends_on)
            for urns in res.property_dependencies.values():
                deps.update(urns)
            if dependency.urn in deps:
                return True
            stack.extend(deps)
        return False

    def kubernetes_objects(self) -> list[dict[str, Any]]:
        """The rendered Kubernetes objects (full objects, not providers or patches)."""
        return [
            r.inputs
            for r in self.resources
            if r.type_.startswith("kubernetes:")
            and not r.type_.endswith("Patch")
            and "kind" in r.inputs
        ]


# -- configuration ---------------------------------------------------------------------------


def _config_value(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


def _full_key(key: str) -> str:
    return key if ":" in key else f"{PROJECT}:{key}"


def stack_config(
    stack: str, overrides: Mapping[str, object] | None = None
) -> tuple[dict[str, str], list[str]]:
    """The stack file's config as the engine hands it to a program (strings; lists/maps as
    JSON), with ``overrides`` applied (bare keys get the project namespace; None deletes).
    Returns (config, secret keys). Secure values become a placeholder marked secret."""
    path = REPO_ROOT / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in (document.get("config") or {}).items():
        full = _full_key(key)
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full] = f"mock-secret-{full}"
            secret_keys.append(full)
        else:
            config[full] = _config_value(value)
    for key, value in (overrides or {}).items():
        full = _full_key(key)
        if value is None:
            config.pop(full, None)
        else:
            config[full] = _config_value(value)
    return config, secret_keys


# -- mocks -----------------------------------------------------------------------------------


def _digest(*parts: str, length: int = 17, alphabet: str = "0123456789abcdef") -> str:
    seed = hashlib.sha256("/".join(parts).encode()).digest()
    out = []
    while len(out) < length:
        for byte in seed:
            out.append(alphabet[byte % len(alphabet)])
        seed = hashlib.sha256(seed).digest()
    return "".join(out[:length])


def _physical_name(name: str, inputs: Mapping[str, Any], key: str = "name") -> str:
    if isinstance(inputs.get(key), str):
        return str(inputs[key])
    prefix = inputs.get("namePrefix")
    if isinstance(prefix, str):
        return prefix + _digest(name, length=26, alphabet="0123456789")
    return f"{name}-{_digest(name, length=7)}"


class _Mocks:
    """Provider behaviour: echo the inputs and add realistic computed outputs."""

    def __init__(self, region: str, cluster_outputs: Mapping[str, object]) -> None:
        self.region = region
        self.cluster_outputs = cluster_outputs

    def call(self, token: str, args: Mapping[str, Any]) -> dict[str, Any]:
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/ci",
                "userId": "AIDAEXAMPLEUSERID0001",
                "id": ACCOUNT_ID,
            }
        if token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsSuffix": "com.amazonaws",
                "id": "aws",
            }
        if token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}
        msg = f"the mocks do not implement the invoke {token} (args {sorted(args)})"
        raise NotImplementedError(msg)

    def new_resource(
        self, type_: str, name: str, inputs: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        out: dict[str, Any] = copy.deepcopy(dict(inputs))
        region, account = self.region, ACCOUNT_ID
        if type_ == "pulumi:pulumi:StackReference":
            out["outputs"] = dict(self.cluster_outputs)
            out["secretOutputNames"] = []
            return str(inputs.get("name", name)), out
        if type_.startswith("pulumi:providers:"):
            return f"{name}-provider-id", out
        if type_ == "aws:rds/instance:Instance":
            identifier = _physical_name(name, inputs, "identifier")
            port = int(inputs.get("port") or 5432)
            address = f"{identifier}.{RDS_HOST_SUFFIX}.{region}.rds.amazonaws.com"
            resource_id = "db-" + _digest(name, length=26, alphabet=string.ascii_uppercase)
            out.update(
                identifier=identifier,
                address=address,
                port=port,
                endpoint=f"{address}:{port}",
                arn=f"arn:aws:rds:{region}:{account}:db:{identifier}",
                resourceId=resource_id,
                hostedZoneId="Z29XKXDKYMONMX",
                engineVersionActual=f"{inputs.get('engineVersion', '17')}.6",
                status="available",
                availabilityZone=f"{region}a",
            )
            return resource_id, out
        if type_ == "random:index/randomPassword:RandomPassword":
            specials = str(inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?")
            alphabet = string.ascii_letters + string.digits + specials
            # A new value whenever the keepers change, like the provider's replacement.
            keepers = json.dumps(inputs.get("keepers") or {}, sort_keys=True)
            length = int(inputs["length"])
            out["result"] = _digest(name, "password", keepers, length=length, alphabet=alphabet)
            out["bcryptHash"] = "$2a$10$" + _digest(name, "bcrypt", length=53, alphabet=alphabet)
            return "none", out
        if type_ == "random:index/randomId:RandomId":
            keepers = json.dumps(inputs.get("keepers") or {}, sort_keys=True)
            raw = bytes.fromhex(
                _digest(
                    name,
                    "id",
                    keepers,
                    length=2 * int(inputs["byteLength"]),
                    alphabet="0123456789abcdef",
                )
            )
            out["hex"] = raw.hex()
            out["b64Std"] = base64.b64encode(raw).decode()
            out["b64Url"] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
            out["dec"] = str(int.from_bytes(raw, "big"))
            return raw.hex(), out
        if type_.startswith("kubernetes:"):
            meta = dict(out.get("metadata") or {})
            meta.setdefault("name", f"{name}-{_digest(name, length=8)}")
            meta["uid"] = _digest(name, "uid", length=32)
            meta["resourceVersion"] = "1"
            out["metadata"] = meta
            if type_ == "kubernetes:core/v1:Secret" and isinstance(out.get("stringData"), dict):
                # The API server stores stringData base64-encoded under data.
                out["data"] = {
                    k: base64.b64encode(str(v).encode()).decode()
                    for k, v in out["stringData"].items()
                }
            if type_ == "kubernetes:batch/v1:Job":
                out["status"] = {
                    "succeeded": 1,
                    "conditions": [{"type": "Complete", "status": "True"}],
                }
            ns = meta.get("namespace")
            return (f"{ns}/{meta['name']}" if ns else str(meta["name"])), out
        physical = _physical_name(name, inputs)
        hexid = _digest(name, length=17)
        service = type_.split(":")[1].split("/")[0]
        arn_prefix = f"arn:aws:{service}:{region}:{account}"
        if type_ == "aws:ec2/securityGroup:SecurityGroup":
            rid = f"sg-{hexid}"
            out.update(name=physical, arn=f"{arn_prefix}:security-group/{rid}", ownerId=account)
            return rid, out
        if type_ in ("aws:rds/subnetGroup:SubnetGroup", "aws:rds/parameterGroup:ParameterGroup"):
            kind = "subgrp" if "subnet" in type_ else "pg"
            out.update(name=physical, arn=f"{arn_prefix}:{kind}:{physical}")
            return physical, out
        if type_ == "aws:iam/role:Role":
            out.update(
                name=physical,
                arn=f"arn:aws:iam::{account}:role/{physical}",
                uniqueId="AROA" + _digest(name, length=17, alphabet=string.ascii_uppercase),
            )
            return physical, out
        if type_ == "aws:kms/key:Key":
            key_id = "-".join(
                _digest(name, str(i), length=n) for i, n in enumerate((8, 4, 4, 4, 12))
            )
            out.update(keyId=key_id, arn=f"{arn_prefix}:key/{key_id}")
            return key_id, out
        if type_ == "aws:secretsmanager/secret:Secret":
            suffix = _digest(name, length=6, alphabet=string.ascii_letters)
            arn = f"{arn_prefix}:secret:{physical}-{suffix}"
            out.update(name=physical, arn=arn)
            return arn, out
        if type_ == "aws:secretsmanager/secretVersion:SecretVersion":
            version_id = _digest(name, "version", length=32)
            out.update(versionId=version_id, arn=str(inputs.get("secretId", "")))
            return f"{inputs.get('secretId', '')}|{version_id}", out
        if type_ == "aws:sns/topic:Topic":
            arn = f"{arn_prefix}:{physical}"
            out.update(name=physical, arn=arn)
            return arn, out
        if type_ == "aws:sns/topicSubscription:TopicSubscription":
            arn = f"{inputs.get('topic', arn_prefix)}:{_digest(name, length=32)}"
            # E-mail needs a person to click; HTTPS endpoints that confirm themselves and
            # same-account SQS queues do not.
            protocol = inputs.get("protocol")
            pending = protocol in ("email", "email-json") or (
                protocol in ("http", "https") and not inputs.get("endpointAutoConfirms")
            )
            out.update(arn=arn, pendingConfirmation=pending)
            return arn, out
        if type_ == "aws:cloudwatch/metricAlarm:MetricAlarm":
            out.update(arn=f"{arn_prefix}:alarm:{physical}")
            return physical, out
        if type_ == "aws:rds/eventSubscription:EventSubscription":
            out.update(arn=f"{arn_prefix}:es:{physical}", customerAwsId=account)
            return physical, out
        if type_ == "aws:kms/alias:Alias":
            out.update(arn=f"{arn_prefix}:{physical}")
            return physical, out
        out.setdefault("arn", f"{arn_prefix}:{physical}")
        return f"{name}-{hexid}", out


def _plain(value: Any, path: str, secrets: set[str]) -> Any:
    """Decode a wire value: secrets unwrapped (path recorded), resource refs to URNs,
    integral numbers to int."""
    if isinstance(value, dict):
        sig = value.get(_SIG)
        if sig == _SECRET_SIG:
            secrets.add(path)
            return _plain(value.get("value"), path, secrets)
        if sig == _RESOURCE_SIG:
            return value.get("urn")
        return {k: _plain(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value == _UNKNOWN:
        return None
    return value


def _make_monitor_class() -> type:
    from pulumi.runtime import rpc

    from tests.support.pulumi_private import MockMonitor, resource_pb2
    from tests.support.pulumi_private import sync_await as _sync_await

    class RecordingMonitor(MockMonitor):  # type: ignore[misc]
        """A mock monitor that records every registration, like the engine would see it."""

        def __init__(self, mocks: _Mocks) -> None:
            super().__init__(mocks=None)
            self.behaviour = mocks
            self.registered: list[RegisteredResource] = []

        def Invoke(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
            if request.tok == "pulumi:pulumi:getResource":
                return super().Invoke(request)
            args = _plain(json_format.MessageToDict(request.args), "", set())
            ret = self.behaviour.call(request.tok, args)
            proto = _sync_await(rpc.serialize_properties(ret, {}))
            return resource_pb2.ResourceInvokeResponse(failures=None, **{"return": proto})

        def _register(
            self, request: Any, urn: str, import_id: str | None, custom: bool
        ) -> tuple[str, Any]:
            secrets: set[str] = set()
            raw = json_format.MessageToDict(
                request.properties if hasattr(request, "properties") else request.object
            )
            inputs = _plain(raw, "", secrets)
            rid, state = self.behaviour.new_resource(request.type, request.name, inputs)
            secret_roots = {p.split(".")[0].split("[")[0] for p in secrets}
            secret_outputs = set(getattr(request, "additionalSecretOutputs", ())) | secret_roots
            wire = {
                k: ({_SIG: _SECRET_SIG, "value": v} if k in secret_outputs else v)
                for k, v in state.items()
            }
            timeouts = {}
            if "customTimeouts" in request.DESCRIPTOR.fields_by_name and request.HasField(
                "customTimeouts"
            ):
                ct = request.customTimeouts
                timeouts = {
                    k: getattr(ct, k) for k in ("create", "update", "delete") if getattr(ct, k)
                }
            self.registered.append(
                RegisteredResource(
                    type_=request.type,
                    name=request.name,
                    urn=urn,
                    inputs=inputs,
                    outputs=state,
                    secret_inputs=frozenset(secrets),
                    secret_outputs=frozenset(k for k in secret_outputs if k in state),
                    parent=request.parent or None,
                    depends_on=tuple(getattr(request, "dependencies", ())),
                    property_dependencies={
                        k: tuple(v.urns)
                        for k, v in getattr(request, "propertyDependencies", {}).items()
                    },
                    provider=request.provider or None,
                    custom=custom,
                    delete_before_replace=bool(getattr(request, "deleteBeforeReplace", False)),
                    custom_timeouts=timeouts,
                    protect=bool(getattr(request, "protect", False)),
                    retain_on_delete=bool(getattr(request, "retainOnDelete", False)),
                    ignore_changes=tuple(getattr(request, "ignoreChanges", ())),
                    replace_on_changes=tuple(getattr(request, "replaceOnChanges", ())),
                    id=rid,
                )
            )
            self.resources[urn] = MockMonitor.ResourceRegistration(urn, rid, state)
            return rid, _sync_await(rpc.serialize_properties(wire, {}))

        def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
            urn = self.make_urn(request.parent, request.type, request.name)
            if request.type == "pulumi:pulumi:Stack":
                return resource_pb2.RegisterResourceResponse(urn=urn)
            if not request.custom:  # components: record the tree, no provider behaviour
                self.registered.append(
                    RegisteredResource(
                        type_=request.type,
                        name=request.name,
                        urn=urn,
                        inputs={},
                        outputs={},
                        parent=request.parent or None,
                        depends_on=tuple(request.dependencies),
                        custom=False,
                    )
                )
                return resource_pb2.RegisterResourceResponse(urn=urn)
            rid, obj = self._register(request, urn, request.importId or None, custom=True)
            return resource_pb2.RegisterResourceResponse(urn=urn, id=rid, object=obj)

        def ReadResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
            urn = self.make_urn(request.parent, request.type, request.name)
            _, obj = self._register(request, urn, request.id, custom=True)
            return resource_pb2.ReadResourceResponse(urn=urn, properties=obj)

    return RecordingMonitor


_MONITOR_CLASS: type | None = None


def _plain_value(value: Any) -> Any:
    """A resolved program value as plain dicts and lists: provider output types are dict
    subclasses, and some (a field named ``items``) cannot be deep-copied as they are."""
    if isinstance(value, Mapping):
        return {k: _plain_value(v) for k, v in dict.items(value)}  # type: ignore[arg-type]
    if isinstance(value, list | tuple):
        return [_plain_value(v) for v in value]
    return value


def _execute(
    stack: str,
    config: dict[str, str],
    secret_keys: list[str],
    cluster_outputs: Mapping[str, object],
) -> StackRun:
    """Run the program once; must be called in a fresh thread and context."""
    global _MONITOR_CLASS
    if _MONITOR_CLASS is None:
        _MONITOR_CLASS = _make_monitor_class()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return _execute_in_loop(stack, config, secret_keys, cluster_outputs)
    finally:
        loop.close()
        asyncio.set_event_loop(None)


def _execute_in_loop(
    stack: str,
    config: dict[str, str],
    secret_keys: list[str],
    cluster_outputs: Mapping[str, object],
) -> StackRun:
    import pulumi
    from pulumi.runtime import get_root_resource, set_all_config, set_mocks

    from tests.support.pulumi_private import reset_runtime_state, run_program
    from tests.support.pulumi_private import sync_await as _sync_await

    assert _MONITOR_CLASS is not None
    set_all_config(dict(config), secret_keys)
    monitor = _MONITOR_CLASS(_Mocks(config.get("aws:region", "eu-west-1"), cluster_outputs))
    set_mocks(
        monitor.mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor, logger=_LOG
    )
    reset_runtime_state()

    created: list[pulumi.Resource] = []
    original_init = pulumi.Resource.__init__

    def recording_init(self: pulumi.Resource, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        created.append(self)

    def program() -> None:
        runpy.run_path(str(PROGRAM), run_name="__main__")

    pulumi.Resource.__init__ = recording_init  # type: ignore[method-assign]
    try:
        run_program(program)
    finally:
        pulumi.Resource.__init__ = original_init  # type: ignore[method-assign]
    views = {}
    for resource in created:
        urn = _sync_await(resource.urn.future())
        values, secret = {}, set()
        for attr, value in vars(resource).items():
            if isinstance(value, pulumi.Output) and not attr.startswith("_") and attr != "urn":
                values[attr] = _plain_value(_sync_await(value.future()))
                if _sync_await(value.is_secret()):
                    secret.add(attr)
        views[urn] = (values, frozenset(secret))
    resources = [
        replace(r, attributes=views[r.urn][0], secret_attributes=views[r.urn][1])
        if r.urn in views
        else r
        for r in monitor.registered
    ]
    root = get_root_resource()
    exports: dict[str, Any] = {}
    secret_exports: set[str] = set()
    for key, value in getattr(root, "outputs", {}).items():
        output = pulumi.Output.from_input(value)
        exports[key] = _sync_await(output.future())
        if _sync_await(output.is_secret()):
            secret_exports.add(key)
    return StackRun(
        stack=stack,
        config=dict(config),
        resources=resources,
        outputs=exports,
        secret_outputs=frozenset(secret_exports),
    )


def run_stack(
    stack: str,
    overrides: Mapping[str, object] | None = None,
    *,
    cluster_outputs: Mapping[str, object] | None = None,
) -> StackRun:
    """Run the real program of ``stack`` (its real Pulumi.<stack>.yaml plus ``overrides``)
    under mocks. Exceptions from the program (e.g. ``infra.config.ConfigError``) propagate.
    ``cluster_outputs`` replaces what a StackReference'd cluster stack exports."""
    config, secret_keys = stack_config(stack, overrides)
    outputs = dict(CLUSTER_STACK_OUTPUTS if cluster_outputs is None else cluster_outputs)
    cache_key = json.dumps([stack, config, secret_keys, outputs], sort_keys=True)
    with _LOCK:
        if cache_key not in _CACHE:
            box: dict[str, Any] = {}

            def target() -> None:
                try:
                    box["run"] = _execute(stack, config, secret_keys, outputs)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                    box["error"] = exc

            thread = threading.Thread(
                target=contextvars.Context().run, args=(target,), name=f"pulumi-{stack}"
            )
            thread.start()
            thread.join()
            if "error" in box:
                raise box["error"]
            _CACHE[cache_key] = box["run"]
        return copy.deepcopy(_CACHE[cache_key])


def validate_kubernetes(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """Validate objects against the Kubernetes API schema (strict: unknown fields are errors);
    returns the problems, one string per object that failed."""
    import kubernetes_validate

    problems = []
    for obj in objects:
        try:
            kubernetes_validate.validate(dict(obj), KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            kind = obj.get("kind")
            name = (obj.get("metadata") or {}).get("name")
            problems.append(f"{kind}/{name}: {exc.message} at {list(exc.path)}")
    return problems
