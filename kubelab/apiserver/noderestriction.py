"""NodeRestriction: what a node may write, judged on the objects themselves (upstream's
admission plugin of that name, plugin/pkg/admission/noderestriction).

Why this exists beside the Node authorizer: the authorizer sees only the URL. A node's
`POST /api/v1/nodes` names no node, so without this a compromised node creates Node `ghost`
with a slice of another node's pod range and every node routes those pods through it; a PUT
of a pod it runs could rewrite the pod's labels (and so which Services send it traffic).
Here the proposed object and the stored one are compared:

- Node: only its own (name = its identity); on create no `spec.podCIDR(s)` (the IPAM
  controller assigns them) and only labels a kubelet may set; on update no change to
  `spec.podCIDR(s)`, `spec.taints`, or labels outside that set. Status writes keep all of them.
- Pod: the status of pods bound to it, never the pod itself (labels, images, owners,
  finalizers); deletes of pods bound to it are the authorizer's (it checks the binding).
- Lease: only its own, in kube-node-lease.
- TokenRequest: only bound to a pod (by name and uid) that runs on it.

Everything here is pure: the caller (security.Guard) supplies the node's name, the request's
subresource and the objects, and turns a returned reason into a 403.
"""

from __future__ import annotations

# Labels a kubelet may set on its own Node (upstream pkg/kubelet/apis: IsKubeletLabel).
KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch",
    "beta.kubernetes.io/os", "beta.kubernetes.io/arch", "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
    "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
})
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")  # and their subdomains
RESTRICTED_NAMESPACE = "node-restriction.kubernetes.io"  # never self-set: admins label nodes with it
RESERVED_NAMESPACES = ("kubernetes.io", "k8s.io")
LEASE_NAMESPACE = "kube-node-lease"


def _in_namespace(namespace: str, suffix: str) -> bool:
    return namespace == suffix or namespace.endswith("." + suffix)


def is_kubelet_label(key: str) -> bool:
    if key in KUBELET_LABELS:
        return True
    namespace = key.split("/", 1)[0] if "/" in key else ""
    return any(_in_namespace(namespace, ns) for ns in KUBELET_LABEL_NAMESPACES)


def modified_labels(new: dict | None, old: dict | None) -> set[str]:
    new, old = new or {}, old or {}
    return {k for k in new.keys() | old.keys() if new.get(k) != old.get(k) or (k in new) != (k in old)}


def forbidden_labels(keys: set[str]) -> list[str]:
    """The keys a node may not set or change: node-restriction.kubernetes.io always, and
    kubernetes.io / k8s.io namespaces unless a kubelet label. Other prefixes are free."""
    bad = []
    for key in keys:
        namespace = key.split("/", 1)[0] if "/" in key else ""
        if _in_namespace(namespace, RESTRICTED_NAMESPACE):
            bad.append(key)
        elif any(_in_namespace(namespace, ns) for ns in RESERVED_NAMESPACES) and not is_kubelet_label(key):
            bad.append(key)
    return sorted(bad)


def _labels(obj: dict | None) -> dict:
    meta = (obj or {}).get("metadata") or {}
    return meta.get("labels") if isinstance(meta.get("labels"), dict) else {}


def _spec(obj: dict | None) -> dict:
    spec = (obj or {}).get("spec")
    return spec if isinstance(spec, dict) else {}


def admit_node(node: str, obj: dict, old: dict | None) -> str | None:
    name = (obj.get("metadata") or {}).get("name")
    if name != node:
        return f'node "{node}" is not allowed to modify node "{name}"'
    spec = _spec(obj)
    if old is None:
        if spec.get("podCIDR") or spec.get("podCIDRs"):
            return f'node "{node}" is not allowed to set spec.podCIDR or spec.podCIDRs (the cluster assigns them)'
        bad = forbidden_labels(modified_labels(_labels(obj), None))
        if bad:
            return f'node "{node}" is not allowed to set the following labels: {", ".join(bad)}'
        return None
    ospec = _spec(old)
    for f in ("podCIDR", "podCIDRs"):
        if spec.get(f) != ospec.get(f):
            return f'node "{node}" is not allowed to modify spec.{f}'
    if (spec.get("taints") or []) != (ospec.get("taints") or []):
        return f'node "{node}" is not allowed to modify taints'
    bad = forbidden_labels(modified_labels(_labels(obj), _labels(old)))
    if bad:
        return f'node "{node}" is not allowed to modify labels: {", ".join(bad)}'
    return None


def admit_pod(node: str, subresource: str, obj: dict, old: dict | None) -> str | None:
    if old is None:
        return f'node "{node}" can only create mirror pods, and kubelab has none'
    if subresource != "status":
        return f'node "{node}" can only update pod status'
    if _spec(old).get("nodeName") != node:
        return f'node "{node}" can only update pod status for pods with spec.nodeName set to itself'
    return None


def admit_lease(node: str, obj: dict, old: dict | None) -> str | None:
    meta = obj.get("metadata") or {}
    if meta.get("namespace") != LEASE_NAMESPACE:
        return f'node "{node}" can only access leases in the "{LEASE_NAMESPACE}" namespace'
    if meta.get("name") != node:
        return f'node "{node}" can only access node lease with the same name as the requesting node'
    return None


def bound_pod_name(token_request: dict) -> str | None:
    spec = token_request.get("spec") if isinstance(token_request.get("spec"), dict) else {}
    ref = spec.get("boundObjectRef") if isinstance(spec.get("boundObjectRef"), dict) else {}
    name = ref.get("name")
    return name if ref.get("kind") == "Pod" and isinstance(name, str) and name else None


def admit_token_request(node: str, token_request: dict, pod: dict | None) -> str | None:
    """`pod`: the pod boundObjectRef names (None when absent or not found)."""
    spec = token_request.get("spec") if isinstance(token_request.get("spec"), dict) else {}
    ref = spec.get("boundObjectRef") if isinstance(spec.get("boundObjectRef"), dict) else None
    if ref is None or ref.get("kind") != "Pod" or ref.get("apiVersion", "v1") != "v1" or not ref.get("name"):
        return "node requested token not bound to a pod"
    if not ref.get("uid"):
        return "node requested token with a pod binding without a uid"
    if pod is None:
        return f'node requested token bound to pod "{ref["name"]}", which does not exist'
    if (pod.get("metadata") or {}).get("uid") != ref["uid"]:
        return (f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record. "
                f"The object might have been deleted and then recreated")
    if _spec(pod).get("nodeName") != node:
        return "node requested token bound to a pod scheduled on a different node"
    return None


def admit(node: str, plural: str, subresource: str, obj: dict, old: dict | None) -> str | None:
    """Why node `node` may not store `obj` (over `old`, None on create), or None."""
    if plural == "nodes":
        return admit_node(node, obj, old)
    if plural == "pods":
        return admit_pod(node, subresource, obj, old)
    if plural == "leases":
        return admit_lease(node, obj, old)
    return None
