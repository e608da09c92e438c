"""Node IPAM: give every Node a `spec.podCIDR` out of the cluster CIDR.

The set of used ranges is rebuilt from the Nodes themselves (informer list) before the first
allocation, so a restarted controller never hands out a range twice. One worker: the
allocator is not shared across concurrent syncs.
"""

from __future__ import annotations

import ipaddress

from kubelab.client import Conflict, NotFound

from .base import Context, Controller


class CIDRExhausted(Exception):
    pass


def allocate_cidr(cluster_cidr: str, mask_size: int, used: set[str]) -> str:
    """The first /mask_size of `cluster_cidr` not overlapping any of `used` (pure)."""
    net = ipaddress.ip_network(cluster_cidr, strict=False)
    if mask_size < net.prefixlen:
        raise ValueError(f"node CIDR mask /{mask_size} is larger than the cluster CIDR {cluster_cidr}")
    taken = []
    for c in used:
        try:
            taken.append(ipaddress.ip_network(c, strict=False))
        except ValueError:
            continue
    for sub in net.subnets(new_prefix=mask_size):
        if not any(sub.overlaps(t) for t in taken):
            return str(sub)
    raise CIDRExhausted(f"no free /{mask_size} left in {cluster_cidr}")


def used_cidrs(nodes: list[dict]) -> set[str]:
    out: set[str] = set()
    for n in nodes:
        spec = n.get("spec") or {}
        if spec.get("podCIDR"):
            out.add(spec["podCIDR"])
        out.update(spec.get("podCIDRs") or [])
    return out


class NodeIpamController(Controller):
    name = "nodeipam"
    component = "node-ipam-controller"
    workers = 1

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.cluster_cidr = getattr(ctx.options, "cluster_cidr", "10.244.0.0/16")
        self.mask = int(getattr(ctx.options, "node_cidr_mask_size", 24))
        self.nodes = ctx.factory.informer("nodes")
        self.nodes.add_handler(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n))
        self.pending: dict[str, str] = {}  # node -> cidr written but not yet seen in the cache

    async def sync(self, key: str) -> None:
        node = self.nodes.store.get(key)
        if node is None or (node.get("spec") or {}).get("podCIDR"):
            self.pending.pop(key, None)
            return
        used = used_cidrs(self.nodes.store.list()) | set(self.pending.values())
        cidr = allocate_cidr(self.cluster_cidr, self.mask, used)
        body = {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
                "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]}}
        try:
            await self.client.patch("nodes", key, body, patch_type="merge")
        except NotFound:
            return
        except Conflict:
            self.queue.add_after(key, 0.05)
            return
        self.pending[key] = cidr
        self.log.info("node %s: pod CIDR %s assigned", key, cidr)
        self.recorder.event(node, "Normal", "CIDRAssignmentSucceeded", f"Node {key} assigned pod CIDR {cidr}")
