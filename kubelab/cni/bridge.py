"""kubelab-bridge: connect a pod's network namespace to the node's bridge.

What happens during ADD (run in the node's netns, like the reference `bridge` plugin):

 1. the IPAM plugin named by `ipam.type` (found in CNI_PATH, given the same env and stdin)
    reserves an address from the node's pod CIDR;
 2. IPv4 forwarding is switched on in the node netns (pods' packets get routed), and bridged
    packets go through netfilter (br_netfilter, bridge-nf-call-iptables=1: a Service's reply
    from a pod on the client's own bridge must meet its conntrack entry to be un-DNATed);
 3. the bridge (`bridge`, default cni0) is created if missing; with `isGateway` it gets the
    gateway address (the first address of the pod CIDR);
 4. a veth pair is made: `veth<hash of container id + ifname>` stays on the node, attached
    to the bridge with hairpin mode on; its peer is born inside the pod netns as CNI_IFNAME;
 5. inside the pod: lo up, CNI_IFNAME up, the address, and the routes (the default route via
    the gateway when `isDefaultGateway` or IPAM's `routes` has 0.0.0.0/0);
 6. with `ipMasq`, traffic from the pod subnet leaving the pod network (`clusterCIDR`, else
    the subnet) is masqueraded (table `ip kubelab-cni`, see nft.py).

DEL undoes 4 and 1 (and 6 once no pod is left on the bridge), succeeding when things are
already gone; CHECK compares the live state with prevResult.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shutil
from dataclasses import dataclass, field
from typing import Any, Mapping

from kubelab.cni import invoke, netlink, nft, spec
from kubelab.cni.spec import CniError, DNS, Env, Interface, IPConfig, Result, Route

DEFAULT_BRIDGE = "cni0"
PLUGIN_TYPE = "kubelab-bridge"

# Keys of the reference bridge plugin we do not implement: refuse instead of ignoring.
_UNSUPPORTED = {"vlan": 0, "vlanTrunk": None, "macspoofchk": False, "enabledad": False,
                "promiscMode": False}


@dataclass
class BridgeConfig:
    name: str
    cni_version: str
    ipam_type: str
    bridge: str = DEFAULT_BRIDGE
    is_gateway: bool = False
    is_default_gateway: bool = False
    force_address: bool = False
    ip_masq: bool = False
    hairpin: bool = True        # kubelab default (the reference's is false): see specs.md
    mtu: int = 0
    cluster_cidr: str = ""      # kubelab: the whole pod network, not masqueraded
    dns: DNS = field(default_factory=DNS)


def _bool(conf: Mapping[str, Any], key: str, default: bool) -> bool:
    value = conf.get(key, default)
    if not isinstance(value, bool):
        raise CniError(spec.ERR_INVALID_CONFIG, f"{key} must be true or false, got {value!r}")
    return value


def parse_bridge_config(conf: Mapping[str, Any]) -> BridgeConfig:
    """Validate the plugin's keys (same names and meaning as the reference bridge)."""
    for key, harmless in _UNSUPPORTED.items():
        if key in conf and conf[key] not in (harmless, None):
            raise CniError(spec.ERR_UNSUPPORTED_FIELD, f"{key} is not supported by {PLUGIN_TYPE}")
    backend = conf.get("ipMasqBackend")
    if backend not in (None, "", "nftables"):
        raise CniError(spec.ERR_UNSUPPORTED_FIELD, f"ipMasqBackend {backend!r} is not supported",
                       "only nftables")
    bridge = conf.get("bridge") or DEFAULT_BRIDGE
    if not isinstance(bridge, str):
        raise CniError(spec.ERR_INVALID_CONFIG, "bridge must be a string")
    try:
        spec.validate_ifname(bridge)
    except CniError:
        raise CniError(spec.ERR_INVALID_CONFIG, f"invalid bridge name {bridge!r}") from None
    mtu = conf.get("mtu", 0) or 0
    if not isinstance(mtu, int) or isinstance(mtu, bool) or not (mtu == 0 or 68 <= mtu <= 65535):
        raise CniError(spec.ERR_INVALID_CONFIG, f"invalid mtu {mtu!r}")
    ipam = conf.get("ipam")
    if not isinstance(ipam, Mapping) or not isinstance(ipam.get("type"), str) or not ipam["type"]:
        raise CniError(spec.ERR_INVALID_CONFIG, "ipam.type is required",
                       'e.g. "ipam": {"type": "kubelab-ipam", "subnet": "10.244.1.0/24"}')
    cluster = conf.get("clusterCIDR") or ""
    if cluster:
        try:
            cluster = str(ipaddress.ip_network(cluster, strict=False))
        except (ValueError, TypeError):
            raise CniError(spec.ERR_INVALID_CONFIG, f"invalid clusterCIDR {cluster!r}") from None
    is_default_gw = _bool(conf, "isDefaultGateway", False)
    return BridgeConfig(
        name=conf["name"], cni_version=conf["cniVersion"], ipam_type=ipam["type"], bridge=bridge,
        is_gateway=_bool(conf, "isGateway", False) or is_default_gw,
        is_default_gateway=is_default_gw, force_address=_bool(conf, "forceAddress", False),
        ip_masq=_bool(conf, "ipMasq", False), hairpin=_bool(conf, "hairpinMode", True), mtu=mtu,
        cluster_cidr=cluster, dns=spec.DNS.from_dict(conf.get("dns")),
    )


def host_veth_name(container_id: str, ifname: str) -> str:
    """veth + 8 hex digits: deterministic, so DEL finds it without any saved state."""
    return "veth" + hashlib.sha256(f"{container_id}/{ifname}".encode()).hexdigest()[:8]


def plan_ip_config(ipam_result: Result, cfg: BridgeConfig) -> Result:
    """Pure: IPAM's answer -> what to configure (ips bound to interface 2 = the container's
    veth, gateways filled in, a default route added for isDefaultGateway)."""
    out = Result(ips=[], routes=list(ipam_result.routes), dns=ipam_result.dns)
    if not ipam_result.ips:
        raise CniError(spec.ERR_DELEGATE, "IPAM plugin returned missing IP config")
    for ipc in ipam_result.ips:
        iface = ipc.interface_address
        if iface.version != 4:
            raise CniError(spec.ERR_UNSUPPORTED_FIELD, f"IPv6 address {iface} is not supported",
                           "kubelab-bridge configures IPv4 only")
        gw = ipc.gateway
        if not gw and cfg.is_gateway:
            gw = str(iface.network.network_address + 1)
        out.ips.append(IPConfig(address=str(iface), gateway=gw, interface=2))
    if cfg.is_default_gateway and not any(
            r.dst in ("0.0.0.0/0",) and r.gw for r in out.routes):
        out.routes = [r for r in out.routes if r.dst != "0.0.0.0/0"]
        out.routes.append(Route(dst="0.0.0.0/0", gw=out.ips[0].gateway))
    if cfg.dns.is_set():
        out.dns = cfg.dns
    return out


def masq_rules(cfg: BridgeConfig, ips: list[IPConfig]) -> list[nft.MasqRule]:
    if not cfg.ip_masq:
        return []
    return nft.desired_rules(network=cfg.name, cluster_cidr=cfg.cluster_cidr,
                             subnets=[str(ip.interface_address.network) for ip in ips])


# ---------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------

def _ipam(cfg: BridgeConfig, env: Env, command: str, stdin: bytes) -> dict[str, Any] | None:
    return invoke.delegate(cfg.ipam_type, command=command, environ=env.environ, stdin=stdin,
                           cni_path=env.path)


def cmd_add(env: Env, conf: dict[str, Any], stdin: bytes) -> Result:
    cfg = parse_bridge_config(conf)
    podfd = netlink.open_netns(env.netns)
    node = netlink.iproute_in(None)
    pod = netlink.iproute_in(podfd)
    host_name = host_veth_name(env.container_id, env.ifname)
    ipam_done = veth_made = False
    try:
        if netlink.get_link(pod, env.ifname) is not None:
            raise CniError(spec.ERR_INTERFACE_EXISTS,
                           f"interface {env.ifname} already exists in {env.netns}")
        ipam_raw = _ipam(cfg, env, "ADD", stdin)
        ipam_done = True
        if ipam_raw is None:
            raise CniError(spec.ERR_DELEGATE, f"IPAM plugin {cfg.ipam_type} printed no result")
        plan = plan_ip_config(Result.from_dict(ipam_raw), cfg)

        netlink.write_sysctl("net/ipv4/ip_forward", "1")
        netlink.ensure_bridge_netfilter()
        br = netlink.ensure_bridge(node, cfg.bridge, mtu=cfg.mtu)
        if cfg.is_gateway:
            for ipc in plan.ips:
                prefix = ipc.interface_address.network.prefixlen
                netlink.ensure_address(node, br, ipaddress.ip_interface(f"{ipc.gateway}/{prefix}"),
                                       force=cfg.force_address)

        netlink.create_veth(node, host_name=host_name, peer_name=env.ifname,
                            peer_netns_fd=podfd, mtu=cfg.mtu)
        veth_made = True
        host = netlink.get_link(node, host_name)
        if host is None:
            raise CniError(spec.ERR_INTERNAL, f"veth {host_name} vanished after creation")
        netlink.attach_port(node, port=host, bridge=br, hairpin=cfg.hairpin)

        with netlink.entered(podfd):
            # Announce the new address so the bridge and peers learn the MAC at once.
            netlink.write_sysctl(f"net/ipv4/conf/{env.ifname}/arp_notify", "1")
        netlink.set_up(pod, "lo")
        cont = netlink.set_up(pod, env.ifname)
        for ipc in plan.ips:
            netlink.add_address(pod, cont, ipc.interface_address)
        for r in plan.routes:
            netlink.add_route(pod, dst=r.dst, gw=r.gw or plan.ips[0].gateway, oif=cont.index)

        if cfg.ip_masq:
            nft.sync_masquerade(network=cfg.name, want=masq_rules(cfg, plan.ips))

        br = netlink.get_link(node, cfg.bridge) or br          # MACs may settle late
        host = netlink.get_link(node, host_name) or host
        cont = netlink.get_link(pod, env.ifname) or cont
        plan.interfaces = [
            Interface(name=br.name, mac=br.mac, mtu=br.mtu),
            Interface(name=host.name, mac=host.mac, mtu=host.mtu),
            Interface(name=cont.name, mac=cont.mac, mtu=cont.mtu, sandbox=env.netns),
        ]
        return plan
    except BaseException:
        if veth_made:
            try:
                netlink.delete_link(node, host_name)
            except CniError:
                pass
        if ipam_done:
            try:
                _ipam(cfg, env, "DEL", stdin)
            except CniError:
                pass
        raise
    finally:
        pod.close()
        node.close()
        os.close(podfd)


def cmd_del(env: Env, conf: dict[str, Any], stdin: bytes) -> None:
    """Best effort and idempotent: a gone netns or link is success; IPAM is always told."""
    cfg = parse_bridge_config(conf)
    if env.netns:
        try:
            podfd = netlink.open_netns(env.netns)
        except CniError:
            podfd = -1                       # netns already gone: nothing to clean inside
        if podfd >= 0:
            try:
                pod = netlink.iproute_in(podfd)
                try:
                    netlink.delete_link(pod, env.ifname)
                finally:
                    pod.close()
            finally:
                os.close(podfd)
    node = netlink.iproute_in(None)
    try:
        # Normally gone with its peer; not so when the netns file was unmounted but the
        # namespace lives on (a process still in it).
        netlink.delete_link(node, host_veth_name(env.container_id, env.ifname))
        _ipam(cfg, env, "DEL", stdin)
        if cfg.ip_masq and shutil.which("nft"):
            def bridge_empty() -> bool:
                br = netlink.get_link(node, cfg.bridge)
                return br is None or not netlink.bridge_ports(node, br)
            nft.sync_masquerade(network=cfg.name, want=[], only_if=bridge_empty)
    finally:
        node.close()
    return None


def _fail(msg: str, details: str = "") -> CniError:
    return CniError(spec.ERR_CHECK_FAILED, msg, details)


def cmd_check(env: Env, conf: dict[str, Any], stdin: bytes) -> None:
    cfg = parse_bridge_config(conf)
    raw_prev = conf.get("prevResult")
    if not isinstance(raw_prev, Mapping):
        raise CniError(spec.ERR_INVALID_CONFIG, "required prevResult missing")
    prev = Result.from_dict(raw_prev)
    _ipam(cfg, env, "CHECK", stdin)
    podfd = netlink.open_netns(env.netns)
    node = netlink.iproute_in(None)
    pod = netlink.iproute_in(podfd)
    try:
        want_br = next((i for i in prev.interfaces if i.name == cfg.bridge and not i.sandbox), None)
        want_cont = next((i for i in prev.interfaces
                          if i.name == env.ifname and i.sandbox == env.netns), None)
        if want_br is None or want_cont is None:
            raise _fail("prevResult lacks the bridge or the container interface",
                        f"bridge {cfg.bridge}, {env.ifname} in {env.netns}")
        br = netlink.get_link(node, cfg.bridge)
        if br is None or br.kind != "bridge":
            raise _fail(f"bridge {cfg.bridge} not found in the node netns")
        if want_br.mac and want_br.mac != br.mac:
            raise _fail(f"bridge {cfg.bridge} MAC is {br.mac}, prevResult says {want_br.mac}")
        cont = netlink.get_link(pod, env.ifname)
        if cont is None:
            raise _fail(f"interface {env.ifname} not found in {env.netns}")
        if cont.kind != "veth":
            raise _fail(f"interface {env.ifname} is a {cont.kind or 'device'}, not a veth")
        if want_cont.mac and want_cont.mac != cont.mac:
            raise _fail(f"{env.ifname} MAC is {cont.mac}, prevResult says {want_cont.mac}")
        host = netlink.get_link(node, host_veth_name(env.container_id, env.ifname))
        if host is None or host.index != cont.peer_index or host.peer_index != cont.index:
            raise _fail(f"the node side of {env.ifname}'s veth is missing")
        if host.master != br.index:
            raise _fail(f"veth {host.name} is not attached to bridge {cfg.bridge}")
        if host.hairpin is not None and host.hairpin != cfg.hairpin:
            raise _fail(f"veth {host.name} hairpin mode is {host.hairpin}, want {cfg.hairpin}")
        if netlink.read_sysctl(netlink.BRIDGE_NF_SYSCTL) != "1":
            raise _fail("bridged packets bypass netfilter (bridge-nf-call-iptables is not 1): "
                        "Service replies from pods on this bridge would not be un-DNATed")
        have_addrs = set(netlink.addresses(pod, cont.index))
        cont_idx = prev.interfaces.index(want_cont)
        for ipc in prev.ips:
            if ipc.interface not in (None, cont_idx):
                continue
            if ipc.interface_address not in have_addrs:
                raise _fail(f"address {ipc.address} missing on {env.ifname}")
        have_routes = netlink.routes(pod)
        for r in prev.routes:
            dst = str(ipaddress.ip_network(r.dst, strict=False))
            if not any(d == dst and (not r.gw or g == r.gw) for d, g, _ in have_routes):
                raise _fail(f"route {r.dst} via {r.gw or '-'} missing in {env.netns}")
        if cfg.ip_masq:
            want = {m.comment for m in masq_rules(cfg, prev.ips)}
            have = set(nft.rules_of_network(nft.list_table(), cfg.name).values())
            if not want <= have:
                raise _fail("masquerade rule missing", ", ".join(sorted(want - have)))
    finally:
        pod.close()
        node.close()
        os.close(podfd)
    return None


def cmd_status(env: Env, conf: dict[str, Any], stdin: bytes) -> None:
    cfg = parse_bridge_config(conf)
    try:
        invoke.find_in_path(cfg.ipam_type, env.path)
    except CniError as e:
        raise CniError(spec.ERR_NOT_AVAILABLE, f"IPAM plugin {cfg.ipam_type} not available",
                       e.details) from None
    if cfg.ip_masq and not shutil.which("nft"):
        raise CniError(spec.ERR_NOT_AVAILABLE, "nft not found in PATH (needed for ipMasq)")
    _ipam(cfg, env, "STATUS", stdin)
    return None


def cmd_gc(env: Env, conf: dict[str, Any], stdin: bytes) -> None:
    """IPAM releases what no valid attachment holds; with none left, the masquerade goes."""
    cfg = parse_bridge_config(conf)
    valid = spec.valid_attachments(conf)
    _ipam(cfg, env, "GC", stdin)
    if cfg.ip_masq and not valid and shutil.which("nft"):
        nft.sync_masquerade(network=cfg.name, want=[])
    return None


ABOUT = """\
kubelab-bridge: the kubelab CNI plugin (CNI spec 0.4.0, 1.0.0, 1.1.0).

A CNI plugin is an executable the runtime (kubelab's node agent) runs once per pod and
network: the command and the pod come in environment variables, the network config on
stdin, the result goes to stdout as JSON.  See `python -m kubelab.cni --help`.

  CNI_COMMAND=ADD CNI_CONTAINERID=pod1 CNI_NETNS=/run/netns/pod1 CNI_IFNAME=eth0 \\
  CNI_PATH=/opt/cni/bin kubelab-bridge < /etc/cni/net.d/10-kubelab.conflist

Config keys (as the reference `bridge` plugin): bridge (cni0), isGateway, isDefaultGateway,
forceAddress, ipMasq, hairpinMode (default true here), mtu, dns, ipam {type, ...};
kubelab adds clusterCIDR (destinations not masqueraded).
"""

PLUGIN = spec.Plugin(name=PLUGIN_TYPE, about=ABOUT, add=cmd_add, delete=cmd_del,
                     check=cmd_check, status=cmd_status, gc=cmd_gc)


def main(argv: list[str] | None = None) -> int:
    return spec.plugin_main(PLUGIN, argv=argv)


if __name__ == "__main__":
    raise SystemExit(main())
