"""Delete stale UDP conntrack entries when a service's endpoints change.

Why: UDP has no connection teardown. After DNAT, the kernel keeps sending a client's packets
(same 5-tuple, e.g. a resolver's fixed source port) to the endpoint chosen the first time, for
as long as the conntrack entry lives and keeps being refreshed. If that pod went away, DNS
queries go to a dead address forever. Upstream kube-proxy (pkg/proxy/conntrack/cleanup.go)
deletes the entries after each sync; so do we, with the `conntrack` tool.

`stale_flows` is pure (two states in, filters out); `clear` runs the tool.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from typing import Callable, Sequence

from kubelab.proxy.model import ProxyState, categorize

log = logging.getLogger(__name__)

CLEARED_PROTOCOLS = ("UDP", "SCTP")  # connectionless: entries outlive the backend


@dataclass(frozen=True, order=True)
class FlowFilter:
    """One `conntrack -D` invocation's filter."""

    protocol: str  # "udp" | "sctp"
    orig_dst: str | None = None  # the service IP the client sent to
    orig_port_dst: int | None = None  # the (node)port the client sent to
    dst_nat: str | None = None  # the endpoint it was DNAT'ed to

    def args(self) -> list[str]:
        a = ["-D", "-p", self.protocol]
        if self.orig_dst:
            a += ["--orig-dst", self.orig_dst]
        if self.orig_port_dst:
            a += ["--orig-port-dst", str(self.orig_port_dst)]
        if self.dst_nat:
            a += ["--dst-nat", self.dst_nat]
        return a


def stale_flows(prev: ProxyState | None, new: ProxyState) -> list[FlowFilter]:
    """Entries to delete after moving from `prev` to `new` (upstream CleanStaleEntries).

    - an endpoint no longer used by a UDP service port: entries DNAT'ed to it via the
      ClusterIP, external IPs, or the NodePort;
    - a UDP service port that had no endpoints and now has some: entries to its IP:port
      (created while packets were being rejected) so new packets get DNAT'ed.
    """
    if prev is None:
        return []
    out: set[FlowFilter] = set()
    node = new.config.node_name
    for key, sp in new.services.items():
        if sp.protocol not in CLEARED_PROTOCOLS:
            continue
        proto = sp.protocol.lower()
        new_eps = set(categorize(sp, new.endpoints_for(key), node).reachable)
        old_sp = prev.services.get(key)
        if old_sp is None:
            continue
        old_cat = categorize(old_sp, prev.endpoints_for(key), prev.config.node_name)
        gone = {ep.ip for ep in old_cat.reachable} - {ep.ip for ep in new_eps}
        for ip in gone:
            for vip in (old_sp.cluster_ip, *old_sp.external_ips):
                out.add(FlowFilter(proto, orig_dst=vip, dst_nat=ip))
            if old_sp.node_port:
                out.add(FlowFilter(proto, orig_port_dst=old_sp.node_port, dst_nat=ip))
        if not old_cat.reachable and new_eps:
            out.add(FlowFilter(proto, orig_dst=sp.cluster_ip, orig_port_dst=sp.port))
            if sp.node_port:
                out.add(FlowFilter(proto, orig_port_dst=sp.node_port))
    # endpoints of deleted UDP services
    for key, old_sp in prev.services.items():
        if key in new.services or old_sp.protocol not in CLEARED_PROTOCOLS:
            continue
        for ep in categorize(old_sp, prev.endpoints_for(key), prev.config.node_name).reachable:
            out.add(FlowFilter(old_sp.protocol.lower(), orig_dst=old_sp.cluster_ip, dst_nat=ep.ip))
    return sorted(out, key=lambda f: (f.protocol, f.orig_dst or "", f.orig_port_dst or 0, f.dst_nat or ""))


Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _default_runner(argv: Sequence[str]) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30)


def clear(
    filters: Sequence[FlowFilter], *, netns: str | None = None, runner: Runner = _default_runner
) -> int:
    """Run `conntrack -D` per filter; returns how many filters deleted something.

    conntrack exits 1 with "0 flow entries have been deleted" when nothing matched: not an error.
    """
    prefix = ["ip", "netns", "exec", netns] if netns else []
    hits = 0
    for f in filters:
        r = runner([*prefix, "conntrack", *f.args()])
        if r.returncode == 0:
            hits += 1
        elif "0 flow entries" not in (r.stderr or ""):
            log.warning("conntrack %s failed: %s", " ".join(f.args()), (r.stderr or "").strip())
    return hits
