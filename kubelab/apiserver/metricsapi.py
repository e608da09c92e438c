"""`metrics.k8s.io/v1beta1`: NodeMetrics and PodMetrics, read-only, as metrics-server serves
them, so `kubectl top nodes|pods` works.

Why in the API server rather than a metrics-server add-on: kubelab has no API aggregation;
the API server already reaches every node agent (as for logs and exec), so it asks each
agent's `/stats/usage` (kubelab.nodeagent.usage: CPU rate and memory from /proc) at request
time. Nothing is stored: there is no metrics history, as with metrics-server.

Authorization is the Guard's, as for any resource: `get`/`list` on `nodes.metrics.k8s.io` and
`pods.metrics.k8s.io` (request_attributes maps these paths); writes are 405, not routed.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable

import httpx

from kubelab.timestamps import format_time

from .status import StatusError

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
GV = f"{GROUP}/{VERSION}"
WINDOW = "10s"
AGENT_TIMEOUT = 5.0
# plural -> (kind, namespaced)
RESOURCES = {"nodes": ("NodeMetrics", False), "pods": ("PodMetrics", True)}
ListObjects = Callable[[str, str | None], Awaitable[list[dict]]]


def group_entry() -> dict:
    gv = {"groupVersion": GV, "version": VERSION}
    return {"name": GROUP, "versions": [gv], "preferredVersion": gv}


def resource_list() -> dict:
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GV, "resources": [
        {"name": plural, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": ["get", "list"]}
        for plural, (kind, namespaced) in RESOURCES.items()]}


def parse(path: str) -> tuple[str, str | None, str | None] | None:
    """(plural, namespace, name) for a metrics API path, or None."""
    parts = path.strip("/").split("/")
    if parts[:3] != ["apis", GROUP, VERSION]:
        return None
    rest, ns = parts[3:], None
    if len(rest) >= 3 and rest[0] == "namespaces":
        ns, rest = rest[1], rest[2:]
    if not rest or rest[0] not in RESOURCES or len(rest) > 2 or (ns and not RESOURCES[rest[0]][1]):
        return None
    if not all(rest) or (ns is not None and not ns):
        return None
    return rest[0], ns, rest[1] if len(rest) == 2 else None


def cpu_quantity(cores: float) -> str:
    return f"{int(round(cores * 1e9))}n"


def memory_quantity(b: int) -> str:
    return f"{int(b) // 1024}Ki"


def _agent_url(node: dict, tls: ssl.SSLContext | None) -> str | None:
    from .nodeproxy import _node_agent_address
    try:
        return f"{'https' if tls else 'http'}://{_node_agent_address(node)}/stats/usage"
    except StatusError:
        return None


async def _usage(nodes: list[dict], tls: ssl.SSLContext | None) -> dict[str, dict]:
    """Each reachable node agent's usage document, by node name (unreachable: left out, as
    metrics-server leaves out nodes it cannot scrape)."""
    async with httpx.AsyncClient(timeout=AGENT_TIMEOUT, verify=tls if tls else True, trust_env=False) as client:
        async def one(node: dict) -> tuple[str, dict | None]:
            url = _agent_url(node, tls)
            if url is None:
                return node["metadata"]["name"], None
            try:
                r = await client.get(url)
                return node["metadata"]["name"], r.json() if r.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                return node["metadata"]["name"], None
        got = await asyncio.gather(*(one(n) for n in nodes))
    return {name: doc for name, doc in got if isinstance(doc, dict)}


async def serve(plural: str, namespace: str | None, name: str | None, *, list_objects: ListObjects,
                tls: ssl.SSLContext | None, label_match: Callable[[dict], bool] = lambda o: True) -> dict:
    """The NodeMetrics/PodMetrics (list) for one GET; StatusError 404 for an unknown name."""
    kind = RESOURCES[plural][0]
    nodes = await list_objects("nodes", None)
    if plural == "nodes" and name:
        nodes = [n for n in nodes if n["metadata"]["name"] == name]
    if plural == "nodes":
        nodes = [n for n in nodes if label_match(n)]
    usage = await _usage(nodes, tls)
    items: list[dict] = []
    if plural == "nodes":
        for n in nodes:
            doc = usage.get(n["metadata"]["name"])
            if doc is None:
                continue
            items.append({"metadata": {"name": n["metadata"]["name"], "labels": n["metadata"].get("labels") or {},
                                       "creationTimestamp": format_time(doc.get("timestamp"))},
                          "timestamp": format_time(doc.get("timestamp")), "window": WINDOW,
                          "usage": {"cpu": cpu_quantity(doc["node"]["cpu"]),
                                    "memory": memory_quantity(doc["node"]["memory"])}})
    else:
        wanted = None
        if name or label_match is not None:
            pods = await list_objects("pods", namespace)
            wanted = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods
                      if (not name or p["metadata"]["name"] == name) and label_match(p)}
        for doc in usage.values():
            for p in doc.get("pods") or []:
                key = (p.get("namespace"), p.get("name"))
                if namespace and key[0] != namespace or (wanted is not None and key not in wanted):
                    continue
                labels = (wanted[key]["metadata"].get("labels") or {}) if wanted else {}
                items.append({"metadata": {"name": key[1], "namespace": key[0], "labels": labels,
                                           "creationTimestamp": format_time(doc.get("timestamp"))},
                              "timestamp": format_time(doc.get("timestamp")), "window": WINDOW,
                              "containers": [{"name": c["name"], "usage": {"cpu": cpu_quantity(c["cpu"]),
                                                                           "memory": memory_quantity(c["memory"])}}
                                             for c in p.get("containers") or []]})
    if name:
        if not items:
            raise StatusError(404, f'{plural}.{GROUP} "{name}" not found',
                              details={"name": name, "group": GROUP, "kind": plural})
        return {"kind": kind, "apiVersion": GV, **items[0]}
    items.sort(key=lambda i: (i["metadata"].get("namespace", ""), i["metadata"]["name"]))
    return {"kind": f"{kind}List", "apiVersion": GV, "metadata": {}, "items": items}
