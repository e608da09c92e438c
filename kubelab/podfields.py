"""What kubelab does with every field of a pod spec: implemented, refused, or warned.

One table, shared by the API server (a refused field is a 422 naming it; a warned one a
`Warning:` response header) and the node agent (a pod event saying what it ignores), so a
student's manifest is never silently half-run. `tests/unit/test_podfields.py` walks every
field of PodSpec and Container (the strict-decoding lists of `kubelab/apiserver/shapes.py`)
and fails when one is missing here.

A refusal or warning applies only when the field is set to something that matters: not
empty, not its server default (`default`), and `when(value)` if given (privileged: true).
Pure: no I/O, no imports of component packages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

IMPLEMENTED, REFUSED, WARNED = "implemented", "refused", "warned"
_UNSET = object()


@dataclass(frozen=True)
class Field:
    how: str                                   # IMPLEMENTED | REFUSED | WARNED
    note: str = ""                             # why (shown in the 422 or the warning)
    default: Any = _UNSET                      # the server's default: never refused/warned
    when: Callable[[Any], bool] | None = None  # refused/warned only when this holds


def _impl(note: str = "") -> Field:
    return Field(IMPLEMENTED, note)


def _refuse(note: str, **kw) -> Field:
    return Field(REFUSED, note, **kw)


def _warn(note: str, **kw) -> Field:
    return Field(WARNED, note, **kw)


_NOT_ENFORCED = "resource limits and requests are not enforced by the node agent (no cgroups yet)"

# PodSpec fields; dotted names go into nested objects (the parent is then "nested")
POD_SPEC: dict[str, Field] = {
    "volumes": _impl("see VOLUME_SOURCES"),
    "initContainers": _impl(), "containers": _impl(),
    "ephemeralContainers": _refuse("ephemeral containers (kubectl debug) are not supported by kubelab"),
    "restartPolicy": _impl(), "terminationGracePeriodSeconds": _impl(),
    "activeDeadlineSeconds": _warn("activeDeadlineSeconds is not enforced by kubelab's node agent"),
    "dnsPolicy": _impl(), "dnsConfig": _impl(), "hostAliases": _impl(), "hostname": _impl(), "subdomain": _impl(),
    "nodeSelector": _impl(), "nodeName": _impl(), "tolerations": _impl(), "schedulerName": _impl(),
    "affinity": _impl(),
    "affinity.nodeAffinity": _impl(),
    "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution": _impl(),
    "affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution":
        _warn("preferred node affinity is not scored by kubelab's scheduler"),
    "affinity.podAffinity": _warn("pod affinity is not implemented by kubelab's scheduler"),
    "affinity.podAntiAffinity": _warn("pod anti-affinity is not implemented by kubelab's scheduler"),
    "serviceAccountName": _impl(), "serviceAccount": _impl(), "automountServiceAccountToken": _impl(),
    "hostNetwork": _impl(), "shareProcessNamespace": _impl(),
    "hostPID": _refuse("the node's PID namespace is not given to pods by kubelab", when=lambda v: v is True),
    "hostIPC": _refuse("the node's IPC namespace is not given to pods by kubelab", when=lambda v: v is True),
    "securityContext": _impl("see POD_SECURITY_CONTEXT"),
    "imagePullSecrets": _impl("no registry: every catalogue image is present, nothing is pulled"),
    "priorityClassName": _warn("kubelab has no priority classes or preemption"),
    "priority": _warn("kubelab's scheduler does not order or preempt by priority", default=0),
    "preemptionPolicy": _warn("kubelab's scheduler never preempts", default="PreemptLowerPriority"),
    "readinessGates": _warn("readiness gates are not evaluated: Ready follows the containers only"),
    "runtimeClassName": _refuse("kubelab has one runtime and no RuntimeClass objects"),
    "enableServiceLinks": _warn("Service environment variables (FOO_SERVICE_HOST ...) are not injected; "
                                "use the cluster DNS names", default=True),
    "overhead": _warn(_NOT_ENFORCED),
    "topologySpreadConstraints": _warn("topology spread constraints are not implemented by kubelab's scheduler"),
    "setHostnameAsFQDN": _warn("the pod's hostname is never the FQDN on kubelab"),
    "os": _impl(), "os.name": _refuse("kubelab runs Linux pods only", when=lambda v: v != "linux"),
    "hostUsers": _refuse("user namespaces are not supported by kubelab", when=lambda v: v is False),
    "schedulingGates": _refuse("scheduling gates are not implemented by kubelab's scheduler"),
    "resourceClaims": _refuse("dynamic resource allocation is not supported by kubelab"),
    "resources": _warn(_NOT_ENFORCED),
}

CONTAINER: dict[str, Field] = {
    "name": _impl(), "image": _impl("the image catalogue, docs/pods.md"), "command": _impl(), "args": _impl(),
    "workingDir": _impl(), "env": _impl(), "envFrom": _impl(), "volumeMounts": _impl(),
    "volumeMounts.mountPropagation": _warn("mount propagation is always private on kubelab", default="None"),
    "volumeMounts.recursiveReadOnly": _warn("read-only mounts are always recursive on kubelab",
                                            default="Disabled"),
    "ports": _impl("informational, as upstream"),
    "ports.hostPort": _warn("hostPort is not implemented: use a NodePort Service"),
    "ports.hostIP": _warn("hostPort is not implemented: use a NodePort Service"),
    "resources": _impl(),
    "resources.limits": _warn(_NOT_ENFORCED),
    "resources.requests": _impl("used by the scheduler to fit pods on nodes"),
    "resources.claims": _refuse("dynamic resource allocation is not supported by kubelab"),
    "resizePolicy": _warn("in-place resize is not supported by kubelab"),
    "restartPolicy": _refuse("native sidecar containers (restartPolicy: Always) are not supported by kubelab yet"),
    "volumeDevices": _refuse("raw block devices are not supported by kubelab"),
    "livenessProbe": _impl(), "readinessProbe": _impl(), "startupProbe": _impl(),
    "livenessProbe.grpc": _warn("a gRPC probe only checks that the port accepts TCP connections"),
    "readinessProbe.grpc": _warn("a gRPC probe only checks that the port accepts TCP connections"),
    "startupProbe.grpc": _warn("a gRPC probe only checks that the port accepts TCP connections"),
    "lifecycle": _impl("postStart/preStop: exec, httpGet, tcpSocket, sleep (postStart does not delay Running)"),
    "terminationMessagePath": _warn("termination messages are not read", default="/dev/termination-log"),
    "terminationMessagePolicy": _warn("termination messages are not read", default="File"),
    "imagePullPolicy": _impl("no registry: every catalogue image is present"),
    "securityContext": _impl("see SECURITY_CONTEXT"),
    "stdin": _impl("a stdin pipe (or the terminal) the node agent holds for `kubectl attach`"),
    "stdinOnce": _impl("the first attach session's end closes stdin"),
    "tty": _impl("the container runs on a terminal (`kubectl attach -t`, `run -it`); TERM=xterm for exec -t"),
    "targetContainerName": _refuse("ephemeral containers (kubectl debug) are not supported by kubelab"),
}

_NO_LSM = "kubelab applies no SELinux, AppArmor or seccomp policy"
SECURITY_CONTEXT: dict[str, Field] = {
    "capabilities": _impl(), "runAsUser": _impl(), "runAsGroup": _impl(), "runAsNonRoot": _impl(),
    "readOnlyRootFilesystem": _impl(), "allowPrivilegeEscalation": _impl(),
    "privileged": _refuse("privileged containers would see the whole node; kubelab does not run them",
                          when=lambda v: v is True),
    "seLinuxOptions": _warn(_NO_LSM), "seccompProfile": _warn(_NO_LSM), "appArmorProfile": _warn(_NO_LSM),
    "windowsOptions": _warn("kubelab runs Linux pods only"),
    "procMount": _warn("/proc is always masked the default way on kubelab", default="Default"),
}

POD_SECURITY_CONTEXT: dict[str, Field] = {
    "runAsUser": _impl(), "runAsGroup": _impl(), "runAsNonRoot": _impl(), "supplementalGroups": _impl(),
    "fsGroup": _impl(), "seLinuxOptions": _warn(_NO_LSM), "seccompProfile": _warn(_NO_LSM),
    "appArmorProfile": _warn(_NO_LSM), "windowsOptions": _warn("kubelab runs Linux pods only"),
    "supplementalGroupsPolicy": _warn("the image's own groups are never merged on kubelab", default="Merge"),
    "sysctls": _warn("pod sysctls are not applied by kubelab's node agent"),
    "fsGroupChangePolicy": _warn("volume ownership is always set on kubelab", default="Always"),
    "seLinuxChangePolicy": _warn(_NO_LSM),
}

_NO_STORAGE = "kubelab has no storage provisioner yet: use emptyDir, hostPath, configMap or secret"
VOLUME_SOURCES: dict[str, Field] = {
    "name": _impl(), "emptyDir": _impl(), "hostPath": _impl(), "configMap": _impl(), "secret": _impl(),
    "downwardAPI": _impl(), "projected": _impl(),
    "emptyDir.sizeLimit": _impl("enforced for medium: Memory (tmpfs size)"),
    "projected.sources.clusterTrustBundle": _refuse("ClusterTrustBundles are not served by kubelab"),
    "persistentVolumeClaim": _refuse(_NO_STORAGE), "ephemeral": _refuse(_NO_STORAGE),
    "image": _refuse("image volumes need a registry; kubelab has none"),
    "gitRepo": _refuse("gitRepo volumes are deprecated upstream and not supported by kubelab"),
    **{k: _refuse(f"{k} volumes need storage kubelab does not have") for k in (
        "gcePersistentDisk", "awsElasticBlockStore", "nfs", "iscsi", "glusterfs", "rbd", "flexVolume", "cinder",
        "cephfs", "flocker", "fc", "azureFile", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk",
        "portworxVolume", "scaleIO", "storageos", "csi")},
}


# ---- checking a spec (pure) --------------------------------------------------------------

def _matters(f: Field, value: Any) -> bool:
    if value is None or value == "" or value == [] or value == {}:
        return False
    if f.default is not _UNSET and value == f.default:
        return False
    if f.when is not None:
        return bool(f.when(value))
    return value is not False


def _walk(obj: Any, table: dict[str, Field], path: str, out: list[tuple[str, str, str]]) -> None:
    """Visit each table entry whose (dotted) field is set in `obj`; lists are looked into."""
    if not isinstance(obj, dict):
        return
    for name, f in table.items():
        if f.how == IMPLEMENTED:
            continue
        parts = name.split(".")
        for p, v in _values(obj, parts, path):
            if _matters(f, v):
                out.append((f.how, p, f.note))


def _values(obj: Any, parts: list[str], path: str):
    if not parts:
        yield path, obj
        return
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from _values(item, parts, f"{path}[{i}]")
        return
    if isinstance(obj, dict) and parts[0] in obj:
        yield from _values(obj[parts[0]], parts[1:], f"{path}.{parts[0]}")


def check(spec: Any, path: str = "spec") -> list[tuple[str, str, str]]:
    """(REFUSED or WARNED, field path, why) for every field of `spec` kubelab does not run."""
    out: list[tuple[str, str, str]] = []
    if not isinstance(spec, dict):
        return out
    _walk(spec, POD_SPEC, path, out)
    _walk(spec.get("securityContext"), POD_SECURITY_CONTEXT, f"{path}.securityContext", out)
    for i, v in enumerate(spec.get("volumes") or []):
        _walk(v, VOLUME_SOURCES, f"{path}.volumes[{i}]", out)
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for i, c in enumerate(spec.get(kind) or []):
            if not isinstance(c, dict):
                continue
            cp = f"{path}.{kind}[{i}]"
            # with hostNetwork, hostPort is what the pod already has (defaulted to containerPort)
            table = {k: v for k, v in CONTAINER.items()
                     if not (spec.get("hostNetwork") and k.startswith("ports.host"))}
            _walk(c, table, cp, out)
            _walk(c.get("securityContext"), SECURITY_CONTEXT, f"{cp}.securityContext", out)
    return out


def warning_text(path: str, note: str) -> str:
    return f"{path}: ignored by kubelab: {note}"


def warnings(spec: Any, path: str = "spec") -> list[str]:
    return [warning_text(p, n) for how, p, n in check(spec, path) if how == WARNED]
