"""Small pure helpers every control loop shares: selectors, pod states, owner references, time.

Kept here (not imported from the API server) because components only see the API through
`kubelab.client`; these are the few bits of API semantics a client must know.
"""

from __future__ import annotations


from kubelab.labels import selector_matches  # noqa: F401  (re-exported for the controllers)
from kubelab.resources import BY_KIND, ResourceType
from kubelab.timestamps import parse_epoch



def map_selector_matches(selector: dict | None, labels: dict | None) -> bool:
    """A Service's plain map selector (all pairs must match)."""
    labels = labels or {}
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def selector_string(selector: dict | None) -> str:
    """`matchLabels` as a `labelSelector=` query string (expressions are matched client-side)."""
    return ",".join(f"{k}={v}" for k, v in sorted(((selector or {}).get("matchLabels") or {}).items()))


def condition(obj: dict, ctype: str) -> dict | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def pod_is_ready(pod: dict) -> bool:
    c = condition(pod, "Ready")
    return bool(c and c.get("status") == "True")


def pod_is_terminating(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def pod_is_terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def pod_is_active(pod: dict) -> bool:
    """Counts toward a ReplicaSet's replicas: not terminating, not finished."""
    return not pod_is_terminating(pod) and not pod_is_terminal(pod)


def pod_is_available(pod: dict, min_ready_seconds: int, now: float) -> bool:
    """Ready for at least minReadySeconds (what 'available' means to deployments)."""
    c = condition(pod, "Ready")
    if not c or c.get("status") != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    t = parse_epoch(c.get("lastTransitionTime"))
    return t is None or t + min_ready_seconds <= now


def controller_ref(obj: dict) -> dict | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_ref_for(owner: dict, *, block: bool = True) -> dict:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": block}


def resource_of_ref(ref: dict) -> ResourceType | None:
    return BY_KIND.get((ref.get("apiVersion", ""), ref.get("kind", "")))


_FNV_OFFSET, _FNV_PRIME = 0x811C9DC5, 0x01000193
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def fnv32a(data: bytes) -> int:
    h = _FNV_OFFSET
    for b in data:
        h ^= b
        h = (h * _FNV_PRIME) & 0xFFFFFFFF
    return h


def safe_encode(s: str) -> str:
    """apimachinery's rand.SafeEncodeString: no vowels, so hashes never spell words."""
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in s)


def resolve_target_port(svc_port: dict, pod: dict) -> int | None:
    """A Service port's targetPort for one pod: a number as is, a name looked up in the pod's
    container ports (so two pods may serve the same name on different numbers)."""
    target = svc_port.get("targetPort", svc_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str):
        if target.isdigit():
            return int(target)
        proto = svc_port.get("protocol") or "TCP"
        for c in (pod.get("spec") or {}).get("containers") or []:
            for p in c.get("ports") or []:
                if p.get("name") == target and (p.get("protocol") or "TCP") == proto:
                    return p.get("containerPort")
    return None


def should_publish(pod: dict, service: dict) -> bool:
    """Pods that may appear in a Service's endpoints at all: have an IP, not finished."""
    if not (pod.get("status") or {}).get("podIP"):
        return False
    if pod_is_terminal(pod):
        return False
    return True


def endpoint_hostname(pod: dict, service: dict) -> str | None:
    """`hostname` is published when the pod names this Service as its subdomain (headless DNS)."""
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == service["metadata"]["name"] and \
            pod["metadata"].get("namespace") == service["metadata"].get("namespace"):
        return spec["hostname"]
    return None


def endpoint_pod_fields(pod: dict, service: dict) -> dict:
    """What an Endpoints address and an EndpointSlice endpoint both say about the pod behind
    them: `hostname` (when published), `nodeName`, `targetRef`. One place, so the two
    controllers cannot drift apart."""
    fields: dict = {}
    hostname = endpoint_hostname(pod, service)
    if hostname:
        fields["hostname"] = hostname
    if pod["spec"].get("nodeName"):
        fields["nodeName"] = pod["spec"]["nodeName"]
    fields["targetRef"] = {"kind": "Pod", "namespace": pod["metadata"]["namespace"], "name": pod["metadata"]["name"],
                           "uid": pod["metadata"].get("uid")}
    return fields
