"""The endpoints controller: one core/v1 Endpoints object per Service with a selector.

`desired_endpoints(service, pods)` is the whole policy (pure); the loop only compares it with
what is stored and writes when it differs.
"""

from __future__ import annotations

from kubelab.client import AlreadyExists, NotFound

from .base import Context, Controller
from .util import (endpoint_pod_fields, map_selector_matches, pod_is_ready, pod_is_terminating, resolve_target_port,
                   should_publish)


def _address(pod: dict, service: dict) -> dict:
    return {"ip": pod["status"]["podIP"], **endpoint_pod_fields(pod, service)}


def desired_subsets(service: dict, pods: list[dict]) -> list[dict]:
    """EndpointSubsets: addresses grouped by their (resolved) port lists, sorted, as
    upstream's RepackSubsets does, so the same state always renders the same object."""
    spec = service.get("spec") or {}
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    groups: dict[tuple, dict] = {}
    for pod in pods:
        if not should_publish(pod, service):
            continue
        if pod_is_terminating(pod) and not publish_not_ready:
            continue
        ports = []
        for sp in spec.get("ports") or []:
            number = resolve_target_port(sp, pod)
            if number is None:
                continue
            p = {"port": number, "protocol": sp.get("protocol") or "TCP"}
            if sp.get("name"):
                p["name"] = sp["name"]
            if sp.get("appProtocol"):
                p["appProtocol"] = sp["appProtocol"]
            ports.append(p)
        if spec.get("ports") and not ports:
            continue
        pkey = tuple(sorted((p.get("name", ""), p["port"], p["protocol"]) for p in ports))
        g = groups.setdefault(pkey, {"ports": sorted(ports, key=lambda p: (p.get("name", ""), p["port"])),
                                     "addresses": [], "notReadyAddresses": []})
        ready = publish_not_ready or pod_is_ready(pod)
        g["addresses" if ready else "notReadyAddresses"].append(_address(pod, service))
    subsets = []
    for pkey in sorted(groups):
        g = groups[pkey]
        subset: dict = {}
        for field in ("addresses", "notReadyAddresses"):
            if g[field]:
                subset[field] = sorted(g[field], key=lambda a: (a["ip"], a["targetRef"]["name"]))
        if g["ports"]:
            subset["ports"] = g["ports"]
        subsets.append(subset)
    return subsets


def desired_endpoints(service: dict, pods: list[dict]) -> dict:
    """The Endpoints object for `service` given the pods of its namespace (pure)."""
    meta = service["metadata"]
    selector = (service.get("spec") or {}).get("selector") or {}
    selected = [p for p in pods if p["metadata"].get("namespace") == meta.get("namespace")
                and map_selector_matches(selector, p["metadata"].get("labels"))]
    labels = dict(meta.get("labels") or {})
    if (service.get("spec") or {}).get("clusterIP") == "None":
        labels["service.kubernetes.io/headless"] = ""
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": labels},
            "subsets": desired_subsets(service, selected)}


def endpoints_write_line(verb: str, key: str, ep: dict) -> str:
    """The INFO line for one Endpoints write (pure): ready and not-ready address counts."""
    subsets = ep.get("subsets") or []
    ready = [a.get("ip") for s in subsets for a in s.get("addresses") or []]
    not_ready = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    return (f"endpoints {key} {verb}: {len(ready)} ready address(es)"
            + (f" ({', '.join(ready[:8])}{', ...' if len(ready) > 8 else ''})" if ready else "")
            + f", {not_ready} not ready")


def endpoints_differ(current: dict, desired: dict) -> bool:
    return (current.get("subsets") or []) != desired["subsets"] or \
        (current["metadata"].get("labels") or {}) != desired["metadata"]["labels"]


def _pod_service_keys(pod: dict, services) -> list[str]:
    ns = pod["metadata"].get("namespace")
    out = []
    for svc in services.by_index("namespace", ns):
        sel = (svc.get("spec") or {}).get("selector")
        if sel and map_selector_matches(sel, pod["metadata"].get("labels")):
            out.append(f"{ns}/{svc['metadata']['name']}")
    return out


class EndpointsController(Controller):
    name = "endpoints"
    component = "endpoint-controller"
    workers = 4

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.services = ctx.factory.informer("services")
        self.pods = ctx.factory.informer("pods")
        self.endpoints = ctx.factory.informer("endpoints")
        self.services.add_handler(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n),
                                  on_delete=self.enqueue)
        self.pods.add_handler(on_add=self._pod_changed, on_update=self._pod_updated, on_delete=self._pod_changed)
        self.endpoints.add_handler(on_delete=self._endpoints_deleted)

    def _pod_changed(self, pod: dict) -> None:
        for key in _pod_service_keys(pod, self.services.store):
            self.queue.add(key)

    def _pod_updated(self, old: dict, new: dict) -> None:
        keys = set(_pod_service_keys(new, self.services.store))
        if (old["metadata"].get("labels") or {}) != (new["metadata"].get("labels") or {}):
            keys |= set(_pod_service_keys(old, self.services.store))
        for key in keys:
            self.queue.add(key)

    def _endpoints_deleted(self, ep: dict) -> None:
        self.enqueue(ep)  # someone deleted ours: recreate it if the Service still wants one

    async def sync(self, key: str) -> None:
        ns, name = key.split("/", 1)
        service = self.services.store.get(key)
        if service is None:
            try:
                await self.client.delete("endpoints", name, namespace=ns)
            except NotFound:
                pass
            return
        spec = service.get("spec") or {}
        if not spec.get("selector") or spec.get("type") == "ExternalName":
            return  # Endpoints of selector-less Services belong to their users; ExternalName has none
        pods = self.pods.store.by_index("namespace", ns)
        desired = desired_endpoints(service, pods)
        current = self.endpoints.store.get(key)
        if current is not None and not endpoints_differ(current, desired):
            return
        if current is None:
            try:
                await self.client.create("endpoints", desired, namespace=ns)
                self.log.info("%s", endpoints_write_line("created", key, desired))
                return
            except AlreadyExists:
                current = await self.client.get("endpoints", name, namespace=ns)
        body = {**current, "subsets": desired["subsets"],
                "metadata": {**current["metadata"], "labels": desired["metadata"]["labels"]}}
        await self.client.replace("endpoints", name, body, namespace=ns)
        self.log.info("%s", endpoints_write_line("updated", key, desired))
