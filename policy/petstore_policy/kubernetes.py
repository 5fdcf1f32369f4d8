"""Kubernetes pod hardening, after the Pod Security Standards' "restricted" profile.

Applies to every pod template the stack creates (the migration Job above all): non-root, a
read-only root filesystem, no privilege escalation, all capabilities dropped, a RuntimeDefault
seccomp profile, CPU and memory requests and limits, an explicit non-default namespace, and
(in production) an image reference that cannot move under the Job.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from petstore_policy.environment import Environment
from petstore_policy.rules import MISSING, Resource, ResourcePolicy, as_list, get, is_set, shown
from pulumi_policy.proxy import UnknownValueError

# Where each workload kind keeps its pod spec, as a path through the wire-format props.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
}
WORKLOAD_TYPES = frozenset(POD_SPEC_PATHS)
NAMESPACED_TYPES = WORKLOAD_TYPES | frozenset(
    {
        "kubernetes:core/v1:Secret",
        "kubernetes:core/v1:ConfigMap",
        "kubernetes:core/v1:ServiceAccount",
        "kubernetes:core/v1:Service",
        "kubernetes:core/v1:PersistentVolumeClaim",
    }
)
DEFAULT_NAMESPACE = "default"
# The only capability the restricted profile lets a container add back.
ALLOWED_ADDED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
ALLOWED_SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
RESOURCE_KINDS = ("cpu", "memory")
MUTABLE_TAG = "latest"


def _pod_spec(resource: Resource) -> Mapping[str, Any] | None:
    spec = get(resource.props, *POD_SPEC_PATHS[resource.type])
    return spec if isinstance(spec, Mapping) else None


def _containers(pod: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for field in ("initContainers", "containers"):
        for index, container in enumerate(as_list(get(pod, field))):
            if isinstance(container, Mapping):
                name = get(container, "name")
                label = str(name) if isinstance(name, str) else f"{field}[{index}]"
                yield label, container


def _pod_checks(resource: Resource) -> tuple[Mapping[str, Any] | None, list[str]]:
    pod = _pod_spec(resource)
    if pod is None:
        return None, [f"has no pod spec at {'.'.join(POD_SPEC_PATHS[resource.type])}"]
    return pod, []


def _non_root(resource: Resource, env: Environment) -> Iterator[str]:
    pod, problems = _pod_checks(resource)
    yield from problems
    if pod is None:
        return
    pod_non_root = get(pod, "securityContext", "runAsNonRoot")
    pod_user = get(pod, "securityContext", "runAsUser")
    if pod_user is not MISSING and pod_user == 0:
        yield "securityContext.runAsUser is 0 (root) for the pod"
    for name, container in _containers(pod):
        non_root = get(container, "securityContext", "runAsNonRoot")
        effective = pod_non_root if non_root is MISSING else non_root
        if effective is not True:
            yield (
                f"container {name!r}: runAsNonRoot is {shown(effective)} (pod or container "
                "securityContext); it must be true"
            )
        user = get(container, "securityContext", "runAsUser")
        if user is not MISSING and user == 0:
            yield f"container {name!r}: securityContext.runAsUser is 0 (root)"


def _read_only_root(resource: Resource, env: Environment) -> Iterator[str]:
    pod, problems = _pod_checks(resource)
    yield from problems
    for name, container in _containers(pod or {}):
        value = get(container, "securityContext", "readOnlyRootFilesystem")
        if value is not True:
            yield (
                f"container {name!r}: securityContext.readOnlyRootFilesystem is {shown(value)}; "
                "it must be true (mount an emptyDir where the process needs to write)"
            )


def _no_privilege_escalation(resource: Resource, env: Environment) -> Iterator[str]:
    pod, problems = _pod_checks(resource)
    yield from problems
    if pod is None:
        return
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if get(pod, host) is True:
            yield f"pod spec {host} is true; it must be false"
    for name, container in _containers(pod):
        escalation = get(container, "securityContext", "allowPrivilegeEscalation")
        if escalation is not False:
            yield (
                f"container {name!r}: securityContext.allowPrivilegeEscalation is "
                f"{shown(escalation)}; it must be false"
            )
        if get(container, "securityContext", "privileged") is True:
            yield f"container {name!r}: securityContext.privileged is true; it must be false"


def _capabilities_dropped(resource: Resource, env: Environment) -> Iterator[str]:
    pod, problems = _pod_checks(resource)
    yield from problems
    for name, container in _containers(pod or {}):
        caps = get(container, "securityContext", "capabilities")
        dropped = [str(c) for c in as_list(get(caps, "drop"))] if caps is not MISSING else []
        added = [str(c) for c in as_list(get(caps, "add"))] if caps is not MISSING else []
        if "ALL" not in dropped:
            yield (
                f"container {name!r}: securityContext.capabilities.drop is {dropped!r}; "
                "it must include 'ALL'"
            )
        extra = sorted(set(added) - ALLOWED_ADDED_CAPABILITIES)
        if extra:
            yield (
                f"container {name!r}: securityContext.capabilities.add has {extra!r}; add none back"
            )


def _seccomp(resource: Resource, env: Environment) -> Iterator[str]:
    pod, problems = _pod_checks(resource)
    yield from problems
    if pod is None:
        return
    pod_profile = get(pod, "securityContext", "seccompProfile", "type")
    for name, container in _containers(pod):
        profile = get(container, "securityContext", "seccompProfile", "type")
        effective = pod_profile if profile is MISSING else profile
        if effective not in ALLOWED_SECCOMP_TYPES:
            yield (
                f"container {name!r}: seccompProfile.type is {shown(effective)} (pod or "
                "container securityContext); it must be RuntimeDefault or Localhost"
            )


def _resources(resource: Resource, env: Environment) -> Iterator[str]:
    pod, problems = _pod_checks(resource)
    yield from problems
    for name, container in _containers(pod or {}):
        for bound in ("requests", "limits"):
            values = get(container, "resources", bound)
            for kind in RESOURCE_KINDS:
                if not isinstance(values, Mapping) or not is_set(values, kind):
                    yield f"container {name!r}: resources.{bound}.{kind} is unset"


def _namespace(resource: Resource, env: Environment) -> Iterator[str]:
    metadata = get(resource.props, "metadata")
    if not isinstance(metadata, Mapping) or not is_set(metadata, "namespace"):
        yield (
            "metadata.namespace is unset, so it lands in the provider's default namespace; "
            "set the app's namespace"
        )
        return
    try:
        namespace = metadata["namespace"]
    except UnknownValueError:
        return  # a namespace the stack creates: known at update time, and never "default"
    if namespace == DEFAULT_NAMESPACE:
        yield "metadata.namespace is 'default'; run in the app's own namespace"


def _image_reference_problem(image: str) -> str | None:
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag (it means :latest)"
    if last.rsplit(":", 1)[1] == MUTABLE_TAG:
        return "uses the mutable :latest tag"
    return None


def _image_pinned(resource: Resource, env: Environment) -> Iterator[str]:
    pod, problems = _pod_checks(resource)
    yield from problems
    for name, container in _containers(pod or {}):
        if not is_set(container, "image"):
            yield f"container {name!r}: image is unset"
            continue
        if not env.production:
            continue
        try:
            image = container["image"]
        except UnknownValueError:
            continue  # built from an output: checked at update time
        problem = _image_reference_problem(str(image))
        if problem:
            yield f"container {name!r}: image {image!r} {problem}; pin a commit tag or a digest"


KUBERNETES_POLICIES: tuple[ResourcePolicy, ...] = (
    ResourcePolicy(
        "k8s-run-as-non-root",
        "Pod Security restricted: runAsNonRoot",
        "Pods must run as a non-root user.",
        "",
        WORKLOAD_TYPES,
        _non_root,
    ),
    ResourcePolicy(
        "k8s-read-only-root-filesystem",
        "Pod Security hardening: readOnlyRootFilesystem",
        "Containers must have a read-only root filesystem.",
        "",
        WORKLOAD_TYPES,
        _read_only_root,
    ),
    ResourcePolicy(
        "k8s-no-privilege-escalation",
        "Pod Security restricted: allowPrivilegeEscalation",
        "Containers must not escalate privileges, run privileged or share host namespaces.",
        "",
        WORKLOAD_TYPES,
        _no_privilege_escalation,
    ),
    ResourcePolicy(
        "k8s-drop-all-capabilities",
        "Pod Security restricted: capabilities",
        "Containers must drop ALL Linux capabilities and add none back.",
        "",
        WORKLOAD_TYPES,
        _capabilities_dropped,
    ),
    ResourcePolicy(
        "k8s-seccomp-runtime-default",
        "Pod Security restricted: seccompProfile",
        "Containers must run under the RuntimeDefault (or a Localhost) seccomp profile.",
        "",
        WORKLOAD_TYPES,
        _seccomp,
    ),
    ResourcePolicy(
        "k8s-resource-limits",
        "baseline: bounded resources",
        "Containers must set CPU and memory requests and limits.",
        "",
        WORKLOAD_TYPES,
        _resources,
    ),
    ResourcePolicy(
        "k8s-no-default-namespace",
        "baseline: namespace isolation",
        "Namespaced objects must name a namespace other than 'default'.",
        "",
        NAMESPACED_TYPES,
        _namespace,
    ),
    ResourcePolicy(
        "k8s-image-pinned",
        "baseline: immutable images",
        "Containers must name an image.",
        "the image must be pinned to a tag other than latest, or to a digest.",
        WORKLOAD_TYPES,
        _image_pinned,
    ),
)
