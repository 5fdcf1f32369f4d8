"""Kubernetes pod hardening, after the Pod Security Standards' "restricted" profile.

Applies to every pod template the stack creates (the migration Job above all): non-root, a
read-only root filesystem, no privilege escalation, all capabilities dropped, a RuntimeDefault
seccomp profile, CPU and memory requests and limits, an explicit non-default namespace, Secrets
read from mounted files (never env), a NetworkPolicy restricting every Job's egress, and (in
production) images pinned by digest.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from petstore_policy.environment import Environment
from petstore_policy.rules import (
    MISSING,
    Resource,
    ResourcePolicy,
    StackPolicy,
    as_list,
    get,
    is_set,
    shown,
)
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
DIGEST_MARK = "@sha256:"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
K8S_SECRET = "kubernetes:core/v1:Secret"  # noqa: S105 - a type token


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
    if DIGEST_MARK in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag (it means :latest)"
    if last.rsplit(":", 1)[1] == MUTABLE_TAG:
        return "uses the mutable :latest tag"
    return "is pinned by a tag only (a tag can be moved to other content)"


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
            yield f"container {name!r}: image {image!r} {problem}; pin it by digest (@sha256:...)"


def _secrets_as_files(resource: Resource, env: Environment) -> Iterator[str]:
    pod, problems = _pod_checks(resource)
    yield from problems
    for name, container in _containers(pod or {}):
        for index, var in enumerate(as_list(get(container, "env"))):
            if get(var, "valueFrom", "secretKeyRef") is not MISSING:
                yield (
                    f"container {name!r}: env {get(var, 'name')!s} (env[{index}]) reads a Secret; "
                    "mount the Secret as a read-only volume and read the file instead (an "
                    "environment variable leaks into child processes, crash dumps and "
                    "`kubectl describe`)"
                )
        for index, source in enumerate(as_list(get(container, "envFrom"))):
            if get(source, "secretRef") is not MISSING:
                yield (
                    f"container {name!r}: envFrom[{index}] loads a whole Secret into the "
                    "environment; mount it as a read-only volume instead"
                )


def _labels_selected(selector: Any, labels: Mapping[str, Any]) -> bool:
    """Whether a NetworkPolicy podSelector (matchLabels only; {} selects every pod) selects
    pods with ``labels``. A selector with matchExpressions is not trusted to match."""
    if not isinstance(selector, Mapping):
        return False
    if get(selector, "matchExpressions") is not MISSING:
        return False
    wanted = get(selector, "matchLabels")
    if wanted is MISSING:
        return True
    return isinstance(wanted, Mapping) and all(labels.get(k) == v for k, v in wanted.items())


def _known(props: Mapping[str, Any], *path: str) -> Any:
    """The value at ``path``, or UNKNOWN_VALUE when it is only known after the update."""
    try:
        return get(props, *path)
    except UnknownValueError:
        return UNKNOWN_VALUE


UNKNOWN_VALUE: Any = object()


def _job_network_policy(
    resources: Sequence[Resource], env: Environment
) -> Iterator[tuple[str, Resource | None]]:
    policies = [
        r
        for r in resources
        if r.type == NETWORK_POLICY
        and "Egress" in [str(t) for t in as_list(_known(r.props, "spec", "policyTypes"))]
    ]
    for job in (r for r in resources if r.type == "kubernetes:batch/v1:Job"):
        namespace = _known(job.props, "metadata", "namespace")
        labels = _known(job.props, "spec", "template", "metadata", "labels")
        labels = labels if isinstance(labels, Mapping) else {}
        covered = False
        for policy in policies:
            policy_ns = _known(policy.props, "metadata", "namespace")
            same_ns = UNKNOWN_VALUE in (policy_ns, namespace) or policy_ns == namespace
            if same_ns and _labels_selected(_known(policy.props, "spec", "podSelector"), labels):
                covered = True
                break
        if not covered:
            message = (
                f"kubernetes:batch/v1:Job {job.name!r}: no NetworkPolicy with an Egress rule "
                "selects its pods (spec.template.metadata.labels); limit them to DNS and the "
                "database port"
            )
            yield message, job


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
        "the image must be pinned by digest (repo@sha256:...).",
        WORKLOAD_TYPES,
        _image_pinned,
    ),
    ResourcePolicy(
        "k8s-secrets-as-files",
        "baseline: credentials as files",
        "Containers must read Secrets from mounted files, never from environment variables.",
        "",
        WORKLOAD_TYPES,
        _secrets_as_files,
    ),
)

KUBERNETES_STACK_POLICIES: tuple[StackPolicy, ...] = (
    StackPolicy(
        "k8s-job-network-policy",
        "baseline: egress control",
        "Every Job's pods must be selected by a NetworkPolicy that restricts their egress.",
        "",
        _job_network_policy,
    ),
)
