"""The EndpointSlice controller: discovery.k8s.io/v1 slices for every Service with a selector.

`desired_endpoint_slices` is upstream's reconciler (pkg/controller/endpointslice/reconciler.go)
as a pure function: per port mapping, keep each existing slice's still-wanted endpoints in
place, drop the unwanted, put new endpoints first into slices being rewritten anyway, then
into the fullest existing slice that fits them all, and only then into new slices. So one pod
change rewrites one slice, and slices stay stable (kube-proxy and DNS see small diffs).

A tracker remembers the resourceVersions this process wrote, and a sync waits (requeues)
until the informer has caught up with them: a sync on a stale cache would create duplicates.
"""

from __future__ import annotations

import asyncio

from kubelab.client import Conflict, NotFound

from .base import Context, Controller
from .util import (endpoint_pod_fields, map_selector_matches, owner_ref_for, pod_is_ready, pod_is_terminating,
                   resolve_target_port, should_publish)

MAX_ENDPOINTS_PER_SLICE = 100
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"


def _ports_for_pod(service: dict, pod: dict) -> list[dict]:
    ports = []
    for sp in (service.get("spec") or {}).get("ports") or []:
        number = resolve_target_port(sp, pod)
        if number is None:
            continue
        p = {"name": sp.get("name") or "", "port": number, "protocol": sp.get("protocol") or "TCP"}
        if sp.get("appProtocol"):
            p["appProtocol"] = sp["appProtocol"]
        ports.append(p)
    return sorted(ports, key=lambda p: (p["name"], p["port"], p["protocol"]))


def _port_key(ports: list[dict] | None) -> tuple:
    return tuple(sorted((p.get("name") or "", p.get("port"), p.get("protocol") or "TCP", p.get("appProtocol") or "")
                        for p in ports or []))


def pod_to_endpoint(pod: dict, service: dict) -> dict:
    """One slice endpoint for a pod (pure)."""
    publish_not_ready = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    terminating = pod_is_terminating(pod)
    serving = pod_is_ready(pod)
    ep: dict = {"addresses": [pod["status"]["podIP"]],
                "conditions": {"ready": publish_not_ready or (serving and not terminating),
                               "serving": publish_not_ready or serving, "terminating": terminating}}
    ep.update(endpoint_pod_fields(pod, service))
    return ep


def _ep_id(ep: dict) -> tuple:
    ref = ep.get("targetRef") or {}
    return (ref.get("namespace") or "", ref.get("name") or "", (ep.get("addresses") or [""])[0])


def slice_labels(service: dict) -> dict:
    meta = service["metadata"]
    labels = {k: v for k, v in (meta.get("labels") or {}).items()
              if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL)}
    if (service.get("spec") or {}).get("clusterIP") == "None":
        labels["service.kubernetes.io/headless"] = ""
    labels[SERVICE_NAME_LABEL] = meta["name"]
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def new_slice(service: dict, ports: list[dict] | None, endpoints: list[dict]) -> dict:
    meta = service["metadata"]
    s = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"generateName": f"{meta['name']}-", "namespace": meta["namespace"],
                      "labels": slice_labels(service)},
         "addressType": "IPv4", "endpoints": endpoints, "ports": ports}
    if meta.get("uid"):
        s["metadata"]["ownerReferences"] = [owner_ref_for({"apiVersion": "v1", "kind": "Service", "metadata": meta})]
    return s


def desired_endpoint_map(service: dict, pods: list[dict]) -> dict[tuple, tuple[list[dict], dict[tuple, dict]]]:
    """Port mapping → (ports, {endpoint id → endpoint}) for the service's pods (pure)."""
    meta = service["metadata"]
    selector = (service.get("spec") or {}).get("selector") or {}
    out: dict[tuple, tuple[list[dict], dict[tuple, dict]]] = {}
    has_ports = bool((service.get("spec") or {}).get("ports"))
    for pod in pods:
        if pod["metadata"].get("namespace") != meta.get("namespace"):
            continue
        if not map_selector_matches(selector, pod["metadata"].get("labels")) or not should_publish(pod, service):
            continue
        ports = _ports_for_pod(service, pod)
        if has_ports and not ports:
            continue
        ep = pod_to_endpoint(pod, service)
        entry = out.setdefault(_port_key(ports), (ports, {}))
        entry[1][_ep_id(ep)] = ep
    return out


def _sorted_eps(eps: list[dict]) -> list[dict]:
    return sorted(eps, key=_ep_id)


def _rewritten(s: dict, *, labels: dict, endpoints: list[dict], ports: list | None = None) -> dict:
    """A new version of slice `s` sharing its unchanged parts (inputs are never mutated;
    a deep copy of 100 endpoints per sync shows in the latency)."""
    out = {**s, "metadata": {**s["metadata"], "labels": dict(labels)}, "endpoints": endpoints}
    if ports is not None:
        out["ports"] = ports
    return out


def desired_endpoint_slices(service: dict, pods: list[dict], existing_slices: list[dict], *,
                            max_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> tuple[list[dict], list[dict], list[dict]]:
    """(slices to create, slices to update, slices to delete) to make `existing_slices`
    (this controller's slices of `service`) hold exactly the endpoints of `pods` (pure)."""
    desired = desired_endpoint_map(service, pods)
    labels = slice_labels(service)
    existing_by_ports: dict[tuple, list[dict]] = {}
    for s in sorted(existing_slices, key=lambda s: s["metadata"].get("name") or ""):
        existing_by_ports.setdefault(_port_key(s.get("ports")), []).append(s)

    create: list[dict] = []
    update: list[dict] = []
    delete: list[dict] = []
    for pkey in sorted(set(desired) | set(existing_by_ports)):
        ports, wanted = desired.get(pkey, (None, {}))
        wanted = dict(wanted)
        to_update: list[dict] = []
        unchanged: list[dict] = []
        # 1. existing slices: keep wanted endpoints (refreshed), drop the rest
        for s in existing_by_ports.get(pkey, []):
            kept, changed = [], False
            for ep in s.get("endpoints") or []:
                eid = _ep_id(ep)
                if eid in wanted:
                    new_ep = wanted.pop(eid)
                    if new_ep != ep:
                        changed = True
                    kept.append(new_ep)
                else:
                    changed = True
            if (s["metadata"].get("labels") or {}) != labels:
                changed = True
            if not kept and changed:
                delete.append(s)
                continue
            if changed:
                to_update.append(_rewritten(s, labels=labels, endpoints=kept))
            else:
                unchanged.append(s)
        remaining = [wanted[k] for k in sorted(wanted)]
        # 2. fill slices that are being rewritten anyway
        for s in to_update:
            room = max_per_slice - len(s["endpoints"])
            if room > 0 and remaining:
                s["endpoints"].extend(remaining[:room])
                remaining = remaining[room:]
        # 3. the fullest unchanged slice that can take all the rest, else new slices
        while remaining:
            target = None
            if len(remaining) < max_per_slice:
                fits = [s for s in unchanged if len(s.get("endpoints") or []) + len(remaining) <= max_per_slice]
                if fits:
                    target = max(fits, key=lambda s: len(s.get("endpoints") or []))
                    unchanged.remove(target)
                    target = _rewritten(target, labels=labels, endpoints=list(target.get("endpoints") or []))
                    to_update.append(target)
            if target is None:
                target = new_slice(service, ports, [])
                create.append(target)
            room = max_per_slice - len(target["endpoints"])
            target["endpoints"].extend(remaining[:room])
            remaining = remaining[room:]
        update.extend(to_update)

    # A Service with no endpoints keeps exactly one empty placeholder slice, as upstream does;
    # once it has endpoints, empty slices go.
    touched = {s["metadata"].get("name") for s in update + delete}
    unchanged_all = [s for s in existing_slices if s["metadata"].get("name") not in touched]
    if any(s.get("endpoints") for s in create + update + unchanged_all):
        delete.extend(s for s in unchanged_all if not s.get("endpoints"))
    elif create or update or unchanged_all:
        survivors = create + update + unchanged_all
        keep = survivors[0]
        for s in survivors[1:]:
            if s in create:
                create.remove(s)
            else:
                if s in update:
                    update.remove(s)
                delete.append(s)
        if keep in unchanged_all and keep.get("ports"):
            update.append(_rewritten(keep, labels=labels, endpoints=[], ports=[]))
    elif delete:
        update.append(_rewritten(delete.pop(0), labels=labels, endpoints=[], ports=[]))
    else:
        create.append(new_slice(service, [], []))
    for s in create + update:
        s["endpoints"] = _sorted_eps(s["endpoints"])
    return create, update, delete


def slice_write_line(verb: str, s: dict, service_key: str) -> str:
    """The INFO line for one slice write (pure): which slice, for which Service, and the ready
    addresses it now holds. One line per write, so `kubelab logs controllers | grep endpointslice`
    and `kubelab timeline` show every change the proxies will see."""
    m = s.get("metadata") or {}
    eps = s.get("endpoints") or []
    ready = [a for e in eps if (e.get("conditions") or {}).get("ready", True) for a in e.get("addresses") or []]
    line = f"endpointslice {m.get('namespace')}/{m.get('name')} {verb} for service {service_key}"
    if verb == "deleted":
        return line
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in s.get("ports") or []) or "none"
    return (f"{line}: {len(eps)} endpoint(s), {len(ready)} ready"
            + (f" ({', '.join(ready[:8])}{', ...' if len(ready) > 8 else ''})" if ready else "")
            + f", ports {ports}")


def _slice_service_key(s: dict) -> list[str]:
    labels = s["metadata"].get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != CONTROLLER_NAME or not labels.get(SERVICE_NAME_LABEL):
        return []
    return [f"{s['metadata']['namespace']}/{labels[SERVICE_NAME_LABEL]}"]


class SliceTracker:
    """The resourceVersions this controller wrote per service, so a sync can tell whether the
    informer cache already shows its own previous writes (upstream's endpointSliceTracker)."""

    def __init__(self) -> None:
        self._expected: dict[str, dict[str, int | None]] = {}  # service key -> slice name -> rv (None: deleted)

    def written(self, service_key: str, name: str, rv: str | None) -> None:
        self._expected.setdefault(service_key, {})[name] = int(rv) if rv else None

    def stale(self, service_key: str, slices: list[dict]) -> bool:
        exp = self._expected.get(service_key)
        if not exp:
            return False
        seen = {s["metadata"]["name"]: int(s["metadata"].get("resourceVersion") or 0) for s in slices}
        for name, rv in list(exp.items()):
            if rv is None:
                if name in seen:
                    return True
                del exp[name]
            elif seen.get(name, -1) < rv:
                return True
            else:
                del exp[name]
        return False

    def forget(self, service_key: str) -> None:
        self._expected.pop(service_key, None)


class EndpointSliceController(Controller):
    name = "endpointslice"
    component = "endpoint-slice-controller"
    workers = 4

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.max_per_slice = getattr(ctx.options, "max_endpoints_per_slice", MAX_ENDPOINTS_PER_SLICE)
        self.services = ctx.factory.informer("services")
        self.pods = ctx.factory.informer("pods")
        self.slices = ctx.factory.informer("endpointslices", indexers={"service": _slice_service_key})
        self.tracker = SliceTracker()
        self.services.add_handler(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n), on_delete=self.enqueue)
        self.pods.add_handler(on_add=self._pod_changed, on_update=self._pod_updated, on_delete=self._pod_changed)
        self.slices.add_handler(on_add=self._slice_changed, on_update=lambda o, n: self._slice_changed(n),
                                on_delete=self._slice_changed)

    def _services_of(self, pod: dict) -> list[str]:
        ns = pod["metadata"].get("namespace")
        return [f"{ns}/{s['metadata']['name']}" for s in self.services.store.by_index("namespace", ns)
                if (s.get("spec") or {}).get("selector")
                and map_selector_matches(s["spec"]["selector"], pod["metadata"].get("labels"))]

    def _pod_changed(self, pod: dict) -> None:
        for k in self._services_of(pod):
            self.queue.add(k)

    def _pod_updated(self, old: dict, new: dict) -> None:
        keys = set(self._services_of(new))
        if (old["metadata"].get("labels") or {}) != (new["metadata"].get("labels") or {}):
            keys |= set(self._services_of(old))
        for k in keys:
            self.queue.add(k)

    def _slice_changed(self, s: dict) -> None:
        for k in _slice_service_key(s):
            self.queue.add(k)

    async def sync(self, key: str) -> None:
        ns, name = key.split("/", 1)
        service = self.services.store.get(key)
        existing = self.slices.store.by_index("service", key)
        spec = (service or {}).get("spec") or {}
        if service is None or not spec.get("selector") or spec.get("type") == "ExternalName":
            # ownerReferences let the GC remove slices too; deleting here is faster
            for s in existing:
                try:
                    await self.client.delete("endpointslices", s["metadata"]["name"], namespace=ns)
                except NotFound:
                    pass
            self.tracker.forget(key)
            return
        if self.tracker.stale(key, existing):
            self.queue.add_after(key, 0.05)
            return
        pods = self.pods.store.by_index("namespace", ns)
        create, update, delete = desired_endpoint_slices(service, pods, existing, max_per_slice=self.max_per_slice)
        if not (create or update or delete):
            return

        async def do_update(s: dict) -> None:
            out = await self.client.replace("endpointslices", s["metadata"]["name"], s, namespace=ns)
            self.tracker.written(key, out["metadata"]["name"], out["metadata"]["resourceVersion"])
            self.log.info("%s", slice_write_line("updated", out, key))

        async def do_create(s: dict) -> None:
            out = await self.client.create("endpointslices", s, namespace=ns)
            self.tracker.written(key, out["metadata"]["name"], out["metadata"]["resourceVersion"])
            self.log.info("%s", slice_write_line("created", out, key))

        async def do_delete(s: dict) -> None:
            try:
                await self.client.delete("endpointslices", s["metadata"]["name"], namespace=ns)
            except NotFound:
                pass
            self.tracker.written(key, s["metadata"]["name"], None)
            self.log.info("%s", slice_write_line("deleted", s, key))

        # new and changed slices first, deletions after: a reader never sees an endpoint vanish
        # in between (upstream orders its writes the same way)
        results = await asyncio.gather(*(do_update(s) for s in update), *(do_create(s) for s in create),
                                       return_exceptions=True)
        if not any(isinstance(r, Exception) for r in results):
            results += await asyncio.gather(*(do_delete(s) for s in delete), return_exceptions=True)
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            if all(isinstance(e, Conflict) for e in errors):
                self.queue.add_after(key, 0.05)  # the cache was behind someone else's write
                return
            raise errors[0]
