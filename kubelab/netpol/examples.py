"""The upstream e2e model as API objects: namespaces x, y, z × pods a, b, c (label pod=<name>),
each pod serving 80 and 81 on TCP, UDP and SCTP under named ports `serve-<port>-<proto>`
(test/e2e/network/netpol/model.go). Shared by the unit tests, the benchmark and the docs."""

from __future__ import annotations

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
PORTS = (80, 81)
PROTOCOLS = ("TCP", "UDP", "SCTP")


def port_name(port: int, protocol: str) -> str:
    return f"serve-{port}-{protocol.lower()}"


def pod_ip(ns: str, pod: str) -> str:
    """A stable fake address per model pod (unit tests; real labs get IPAM's)."""
    return f"10.244.{1 + NAMESPACES.index(ns)}.{10 + PODS.index(pod)}"


def pod_obj(ns: str, name: str, labels: dict | None = None, ip: str | None = None, node: str | None = None) -> dict:
    ports = [{"name": port_name(n, proto), "containerPort": n, "protocol": proto} for n in PORTS for proto in PROTOCOLS]
    return {"metadata": {"namespace": ns, "name": name, "labels": labels if labels is not None else {"pod": name}},
            "spec": {"nodeName": node or ("worker-1" if name != "b" else "worker-2"),
                     "containers": [{"name": "c", "ports": ports}]},
            "status": {"podIP": ip or pod_ip(ns, name), "phase": "Running"}}


def ns_obj(name: str, labels: dict | None = None) -> dict:
    return {"metadata": {"name": name, "labels": {"ns": name, "kubernetes.io/metadata.name": name, **(labels or {})}}}


def netpol(name: str, ns: str = "x", **spec) -> dict:
    """A NetworkPolicy; `types=[...]` sets policyTypes (default: as the API server defaults)."""
    spec.setdefault("podSelector", {})
    types = spec.pop("types", None)
    if types is None:
        types = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
    spec["policyTypes"] = types
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"namespace": ns, "name": name}, "spec": spec}
