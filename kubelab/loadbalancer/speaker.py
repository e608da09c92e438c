"""The speaker on one node: puts the addresses it owns on the node's interface and says so.

How the node answers ARP — the address as a /32 on the node's interface (`ip addr add
IP/32 dev eth0 label eth0:lb`), and the kernel answers ARP for it like for any local address.
Why not a user-space ARP responder as MetalLB has: MetalLB needs one because kube-proxy's IPVS
mode puts every LoadBalancer address on every node (kube-ipvs0), so the kernel must be told
*not* to answer (strictARP) and the speaker answers for the one owner. kubelab's proxy never
puts the address on an interface, so the only node holding it is the owner, and a student can
see who owns what with plain `ip addr` in the node. Packets to the address are then local
deliveries on that node, where the service proxy's prerouting DNAT (like for a NodePort on the
node's IP) sends them on to a pod. One consequence: ports that the node itself listens on
(the proxy's health port) also answer on the address, as on a cloud node's own IP.

On taking an address the speaker sends gratuitous ARP (an ARP request and a reply with
sender = target = the address, from the node's MAC) so that neighbours — the host's bridge —
update their cache at once instead of after their entry goes stale, logs
`gratuitous ARP: <ip> is-at <mac> (<node>)` and records a `nodeAssigned` Event on the Service
(`kubectl describe svc`). On giving it up (another node is now the owner, the Service is gone)
it removes the address; on SIGTERM it removes all of them.

Liveness is the node's Ready condition: a speaker that dies while its node agent lives is not
noticed by the others (MetalLB adds memberlist for that); its addresses go with it, and
`kubelab status` shows the speaker down.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import struct
import subprocess
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from kubelab.client.syncrunner import BoundedFrequencyRunner

from . import announce

log = logging.getLogger(__name__)

LABEL_SUFFIX = ":lb"  # `ip addr` label of our addresses: eth0:lb (found again after a restart)


class DataplaneError(RuntimeError):
    """An `ip` command that failed (logged; the next sync tries again)."""


def garp_frames(mac: str, ip: str) -> list[bytes]:
    """Gratuitous ARP request and reply for `ip` at `mac` (pure: Ethernet frames as bytes)."""
    hw = bytes.fromhex(mac.replace(":", ""))
    pa = ipaddress.IPv4Address(ip).packed
    bcast = b"\xff" * 6
    frames = []
    for op, target_hw in ((1, b"\x00" * 6), (2, bcast)):
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, hw, pa, target_hw, pa)
        frames.append(bcast + hw + struct.pack("!H", 0x0806) + arp)
    return frames


@dataclass
class Dataplane:
    """The node's interface: our /32 addresses on it, gratuitous ARP out of it (runs in the node's netns)."""

    interface: str = "eth0"

    @property
    def label(self) -> str:
        return (self.interface + LABEL_SUFFIX)[:15]

    def _ip(self, *args: str) -> str:
        p = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
        if p.returncode != 0:
            raise DataplaneError(f"ip {' '.join(args)}: {p.stderr.strip()}")
        return p.stdout

    def addresses(self) -> set[str]:
        """Our addresses now on the interface (by label)."""
        out = json.loads(self._ip("-j", "-4", "addr", "show", "dev", self.interface) or "[]")
        return {a["local"] for link in out for a in link.get("addr_info", ())
                if a.get("label") == self.label and a.get("prefixlen") == 32}

    def add(self, ip: str) -> None:
        self._ip("addr", "replace", f"{ip}/32", "dev", self.interface, "label", self.label)

    def remove(self, ip: str) -> None:
        self._ip("addr", "del", f"{ip}/32", "dev", self.interface)

    def mac(self) -> str:
        # from netlink, not /sys/class/net: the speaker enters only the node's network namespace,
        # and the /sys it sees is still the host's (whose eth0 is another interface)
        return json.loads(self._ip("-j", "link", "show", "dev", self.interface))[0]["address"]

    def gratuitous_arp(self, ip: str) -> str:
        mac = self.mac()
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806)) as s:
            s.bind((self.interface, 0))
            for frame in garp_frames(mac, ip):
                s.send(frame)
        return mac


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.announced = Gauge("kubelab_lb_speaker_announced", "addresses this node answers ARP for",
                               registry=self.registry)
        self.garps = Counter("kubelab_lb_speaker_gratuitous_arps", "gratuitous ARPs sent", registry=self.registry)
        self.errors = Counter("kubelab_lb_speaker_sync_errors", "failed syncs", registry=self.registry)


class Speaker:
    """Informer-fed caches → owned addresses (announce.py) → the interface, coalesced by a runner."""

    def __init__(self, *, node_name: str, dataplane: Dataplane, recorder=None, speakers: tuple[str, ...] | None = None,
                 pool=None, min_sync_period: float = 0.1, sync_period: float = 30.0) -> None:
        self.node_name = node_name
        self.pool = pool  # only addresses in it are announced (None: any; the lab passes the pool)
        self.dataplane = dataplane
        self.recorder = recorder
        self.speakers = speakers
        self.services: dict[str, dict] = {}
        self.nodes: dict[str, dict] = {}
        self.slices: dict[str, dict] = {}  # ns/name → slice
        self.metrics = Metrics()
        self.runner = BoundedFrequencyRunner(self._run_sync, min_interval=min_sync_period, max_interval=sync_period)
        self.initialized = False
        self.announced: dict[str, announce.Announcement] = {}
        self.last_sync_ok = 0.0

    # handlers
    @staticmethod
    def _key(obj: dict) -> str:
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace")
        return f"{ns}/{meta.get('name', '')}" if ns else meta.get("name", "")

    def _changed(self) -> None:
        if self.initialized:
            self.runner.run()

    def on_service(self, obj: dict, new: dict | None = None) -> None:
        obj = new if new is not None else obj
        self.services[self._key(obj)] = obj
        self._changed()

    def on_service_delete(self, obj: dict) -> None:
        self.services.pop(self._key(obj), None)
        self._changed()

    def on_node(self, obj: dict, new: dict | None = None) -> None:
        obj = new if new is not None else obj
        self.nodes[self._key(obj)] = obj
        self._changed()

    def on_node_delete(self, obj: dict) -> None:
        self.nodes.pop(self._key(obj), None)
        self._changed()

    def on_slice(self, obj: dict, new: dict | None = None) -> None:
        obj = new if new is not None else obj
        self.slices[self._key(obj)] = obj
        self._changed()

    def on_slice_delete(self, obj: dict) -> None:
        self.slices.pop(self._key(obj), None)
        self._changed()

    def desired(self) -> dict[str, announce.Announcement]:
        by_service: dict[str, list[dict]] = {}
        for es in self.slices.values():
            meta = es.get("metadata") or {}
            svc = (meta.get("labels") or {}).get(announce.SERVICE_NAME_LABEL)
            if svc:
                by_service.setdefault(f"{meta.get('namespace')}/{svc}", []).append(es)
        anns = announce.announcements(self.services.values(), self.nodes.values(), by_service, self.speakers,
                                      self.pool)
        return announce.owned_by(anns, self.node_name)

    def set_initialized(self) -> None:
        self.initialized = True
        self.runner.run()

    async def _run_sync(self, periodic: bool) -> None:
        import asyncio
        try:
            taken = await asyncio.to_thread(self.sync)
        except (DataplaneError, OSError) as e:
            self.metrics.errors.inc()
            log.error("sync failed: %s", e)
            self.runner.retry_after(1.0)
            return
        self.record(taken)

    def record(self, taken: list[tuple[announce.Announcement, str]]) -> None:
        """Events for the addresses just taken (on the event loop: the recorder is not thread-safe)."""
        for ann, mac in taken:
            svc = self.services.get(ann.service)
            if self.recorder is not None and svc is not None:
                self.recorder.event({"kind": "Service", "apiVersion": "v1", **svc}, "Normal", "nodeAssigned",
                                    f"announcing {ann.ip} from node \"{self.node_name}\" with protocol \"layer2\" "
                                    f"(gratuitous ARP: {ann.ip} is-at {mac})")

    def sync(self) -> list[tuple[announce.Announcement, str]]:
        """Make the interface hold exactly the owned addresses; announce the new ones.
        Returns the addresses taken with the MAC announced (for `record`)."""
        import time
        want = self.desired()
        taken: list[tuple[announce.Announcement, str]] = []
        have = self.dataplane.addresses()
        for ip in sorted(have - want.keys()):
            self.dataplane.remove(ip)
            log.info("released %s: another node announces it now, or its Service is gone", ip)
            self.announced.pop(ip, None)
        for ip, ann in sorted(want.items()):
            if ip in have and ip in self.announced:
                continue
            self.dataplane.add(ip)
            mac = self.dataplane.gratuitous_arp(ip)
            self.metrics.garps.inc()
            log.info("gratuitous ARP: %s is-at %s (%s) for %s", ip, mac, self.node_name, ann.service)
            self.announced[ip] = ann
            taken.append((ann, mac))
        self.metrics.announced.set(len(want))
        self.last_sync_ok = time.time()
        return taken

    def cleanup(self) -> None:
        for ip in sorted(self.dataplane.addresses()):
            try:
                self.dataplane.remove(ip)
            except DataplaneError as e:
                log.error("%s", e)
