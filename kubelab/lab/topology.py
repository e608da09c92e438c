"""The lab's node network: one host bridge, one network namespace per node, a veth each.

A node namespace is the lab's stand-in for a VM's network stack: its own interfaces, routes,
sysctls and nftables. The plan (names and addresses) is pure and computed from the lab name,
so `down` can recompute what `up` made even if the state file is lost. The commands are plain
`ip` invocations so a student can read (and replay) exactly what the lab did.

There is deliberately no default route in a node and no forwarding/NAT on the host: the host
reaches the nodes through the bridge address, nothing in the lab reaches past it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
from dataclasses import asdict, dataclass, field

NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")
IFNAMSIZ = 15

DEFAULT_NODE_SUBNET = "192.168.56.0/24"
POD_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/12"
DNS_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
API_PORT = 6443


class PlanError(ValueError):
    """Bad `up` input (lab name, worker count, subnet): shown to the user as one line."""


@dataclass(frozen=True)
class NodePlan:
    name: str          # the Kubernetes node name: control-plane, worker-1, ...
    role: str          # "control-plane" | "worker"
    ip: str            # eth0 address inside the node namespace
    netns: str         # kl-<lab>-<node>
    host_veth: str     # the host end of the node's veth (on the lab bridge)
    index: int


@dataclass(frozen=True)
class LabPlan:
    name: str
    bridge: str
    bridge_ip: str
    prefixlen: int
    node_subnet: str
    nodes: tuple[NodePlan, ...]
    root_dir: str
    proxy_mode: str = "nftables"
    pod_cidr: str = POD_CIDR
    service_cidr: str = SERVICE_CIDR
    dns_ip: str = DNS_IP
    cluster_domain: str = CLUSTER_DOMAIN
    extra: dict = field(default_factory=dict, compare=False)
    tls: bool = False  # `kubelab up --tls`: a lab PKI, HTTPS and mutual TLS everywhere (see components)
    lb_pool: str = ""  # LoadBalancer addresses (kubelab.loadbalancer): .200-.250 of the node subnet by default
    node_monitor_grace_period: str = ""  # the controller manager's, when not its default (tests: short)

    @property
    def lab_dir(self) -> str:
        return os.path.join(self.root_dir, self.name)

    @property
    def control_plane(self) -> NodePlan:
        return self.nodes[0]

    @property
    def workers(self) -> tuple[NodePlan, ...]:
        return tuple(n for n in self.nodes if n.role == "worker")

    @property
    def api_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.control_plane.ip}:{API_PORT}"

    def node(self, name: str) -> NodePlan:
        for n in self.nodes:
            if n.name == name or n.netns == name:
                return n
        raise KeyError(name)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["nodes"] = [asdict(n) for n in self.nodes]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LabPlan":
        d = dict(d)
        d["nodes"] = tuple(NodePlan(**n) for n in d["nodes"])
        return cls(**d)


def check_name(name: str) -> str:
    """Lab names become part of interface names (15 chars max), so keep them short and plain."""
    if not NAME_RE.match(name or ""):
        raise PlanError(f"invalid lab name {name!r}: use 1-8 lowercase letters/digits, starting with a letter")
    return name


def node_names(workers: int) -> list[tuple[str, str]]:
    return [("control-plane", "control-plane")] + [(f"worker-{i}", "worker") for i in range(1, workers + 1)]


def default_lb_pool(net: ipaddress.IPv4Network) -> str:
    """.200-.250 of the node network (192.168.56.200-192.168.56.250 on the default /24), the
    last 51 addresses below the broadcast on a smaller one: never a node's (.10 and up)."""
    base = int(net.network_address)
    first, last = base + 200, base + 250
    if last >= int(net.broadcast_address):
        last = int(net.broadcast_address) - 1
        first = max(base + 10 + 21, last - 50)
    return f"{ipaddress.IPv4Address(first)}-{ipaddress.IPv4Address(last)}"


def plan_lab(*, name: str = "lab", workers: int = 2, root_dir: str = "/var/lib/kubelab",
             proxy_mode: str = "nftables", node_subnet: str = DEFAULT_NODE_SUBNET, tls: bool = False,
             lb_pool: str = "", node_monitor_grace_period: str = "") -> LabPlan:
    """Names and addresses for a lab: bridge .1, control plane .10, workers .11, .12, ..."""
    check_name(name)
    if not 0 <= workers <= 20:
        raise PlanError(f"--workers must be between 0 and 20 (got {workers})")
    if proxy_mode not in ("nftables", "iptables"):
        raise PlanError(f"--proxy-mode must be nftables or iptables (got {proxy_mode!r})")
    try:
        net = ipaddress.ip_network(node_subnet)
    except ValueError as e:
        raise PlanError(f"invalid node subnet {node_subnet!r}: {e}") from None
    if net.version != 4 or net.num_addresses < 32 + workers:
        raise PlanError(f"node subnet {node_subnet} is too small (need a /27 or larger IPv4 network)")
    if lb_pool:
        from kubelab.loadbalancer.pool import PoolError, parse_pool
        try:
            pool = parse_pool(lb_pool)
        except PoolError as e:
            raise PlanError(f"--lb-pool: {e}") from None
        if not all(ipaddress.IPv4Address(r.first) in net and ipaddress.IPv4Address(r.last) in net
                   for r in pool.ranges):
            raise PlanError(f"--lb-pool {lb_pool} is not inside the node network {net}: the host could not "
                            f"reach it through the lab bridge")
    base = net.network_address
    nodes = []
    for i, (node, role) in enumerate(node_names(workers)):
        short = "cp" if role == "control-plane" else f"w{i}"
        veth = f"kl-{name}-{short}"
        assert len(veth) <= IFNAMSIZ, veth
        nodes.append(NodePlan(name=node, role=role, ip=str(base + 10 + i), netns=f"kl-{name}-{node}",
                              host_veth=veth, index=i))
    return LabPlan(name=name, bridge=f"kl-{name}", bridge_ip=str(base + 1), prefixlen=net.prefixlen,
                   node_subnet=str(net), nodes=tuple(nodes), root_dir=os.path.abspath(root_dir),
                   proxy_mode=proxy_mode, tls=tls, lb_pool=lb_pool or default_lb_pool(net),
                   node_monitor_grace_period=node_monitor_grace_period)


# --- commands (pure) ----------------------------------------------------------------------------

def bridge_commands(plan: LabPlan) -> list[list[str]]:
    return [
        ["ip", "link", "add", plan.bridge, "type", "bridge"],
        ["ip", "addr", "add", f"{plan.bridge_ip}/{plan.prefixlen}", "dev", plan.bridge],
        ["ip", "link", "set", plan.bridge, "up"],
    ]


def node_commands(plan: LabPlan, node: NodePlan) -> list[list[str]]:
    """One node's network: netns, lo, veth (eth0 inside, host end on the bridge), address,
    and forwarding *inside the node* (pods on other nodes are routed through it)."""
    ns = node.netns
    return [
        ["ip", "netns", "add", ns],
        ["ip", "-n", ns, "link", "set", "lo", "up"],
        ["ip", "link", "add", node.host_veth, "type", "veth", "peer", "name", "eth0", "netns", ns],
        ["ip", "link", "set", node.host_veth, "master", plan.bridge, "up"],
        ["ip", "-n", ns, "addr", "add", f"{node.ip}/{plan.prefixlen}", "dev", "eth0"],
        ["ip", "-n", ns, "link", "set", "eth0", "up"],
        # no default route, so a node process talking to a ClusterIP needs a route for the
        # lookup that precedes the proxy's DNAT in OUTPUT (VMs have it from their default route)
        ["ip", "-n", ns, "route", "add", plan.service_cidr, "dev", "eth0"],
        ["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
    ]


def pod_cidr_route_commands(plan: LabPlan, pod_cidrs: dict[str, str]) -> list[list[str]]:
    """Routes to every other node's pod CIDR via that node's address (what kubenet/host-gw do)."""
    cmds = []
    for node in plan.nodes:
        for other in plan.nodes:
            cidr = pod_cidrs.get(other.name)
            if other is node or not cidr:
                continue
            cmds.append(["ip", "-n", node.netns, "route", "replace", cidr, "via", other.ip, "dev", "eth0"])
    return cmds


def shell(cmd: list[str]) -> str:
    """A command as a student would type it."""
    import shlex
    return " ".join(shlex.quote(c) for c in cmd)


# --- I/O -----------------------------------------------------------------------------------------

class CommandError(RuntimeError):
    pass


def run(cmd: list[str], *, check: bool = True, timeout: float = 20.0) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise CommandError(f"`{shell(cmd)}` failed: {(p.stderr or p.stdout).strip()}")
    return p


def existing_netns() -> set[str]:
    try:
        return set(os.listdir("/run/netns"))
    except FileNotFoundError:
        return set()


def existing_links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def host_routes() -> list[dict]:
    p = run(["ip", "-j", "-4", "route", "show"], check=False)
    try:
        return json.loads(p.stdout or "[]")
    except ValueError:
        return []


def subnet_conflict(plan: LabPlan) -> str | None:
    """A host route/address overlapping the node subnet on another interface would make the
    lab's addresses ambiguous: refuse rather than shadow the user's network."""
    net = ipaddress.ip_network(plan.node_subnet)
    for r in host_routes():
        dst = r.get("dst", "")
        if dst in ("default", "") or r.get("dev") == plan.bridge:
            continue
        try:
            other = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if other.overlaps(net) and other.prefixlen > 0:
            return f"{plan.node_subnet} overlaps {dst} on {r.get('dev')}"
    return None


def node_link_netns(netns: str) -> dict[int, str]:
    """In a node namespace: nsid -> name of the namespaces its veths lead to (the pods')."""
    p = run(["ip", "-n", netns, "netns", "list-id"], check=False)
    ids: dict[int, str] = {}
    for line in p.stdout.splitlines():
        m = re.match(r"nsid (\d+) \(iproute2 netns name: ([^)]+)\)", line.strip())
        if m:
            ids[int(m.group(1))] = m.group(2)
    return ids


def pod_netns_of_node(netns: str) -> list[str]:
    """Named namespaces of the pods on a node: those at the other end of its veths."""
    ids = node_link_netns(netns)
    p = run(["ip", "-n", netns, "-j", "link", "show", "type", "veth"], check=False)
    try:
        links = json.loads(p.stdout or "[]")
    except ValueError:
        links = []
    out = []
    for link in links:
        nsid = link.get("link_netnsid")
        if nsid is not None and nsid in ids:
            out.append(ids[nsid])
    return sorted(set(out))


def pod_netns_re(lab: str) -> re.Pattern:
    """Names of a lab's pod namespaces: kl-<lab>-<node>-<pod uid> (the node agent's
    --netns-prefix, see components.worker_specs). Lab names have no dash and node names end in
    a word or a number, so one lab's pattern never matches another lab's names."""
    return re.compile(rf"^kl-{re.escape(lab)}-(?P<node>control-plane|worker-\d+)-"
                      r"(?P<uid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")


def lab_pod_netns(lab: str, names: set[str] | list[str]) -> list[str]:
    """A lab's pod namespaces found by name (pure): also those a veth does not lead to yet (a
    pod mid-creation: pause started, CNI ADD not done) or any more (its node namespace gone)."""
    pattern = pod_netns_re(lab)
    return sorted(n for n in names if pattern.match(n))


def netns_inode(name: str) -> int | None:
    try:
        return os.stat(f"/run/netns/{name}").st_ino
    except OSError:
        return None
