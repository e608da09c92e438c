"""Every kernel change kubelab-bridge makes through netlink (pyroute2), and nothing else.

Namespaces: the plugin runs in the node's netns (the "current" one); the container's netns
is entered with setns(2) only long enough to open a netlink socket (and /proc/sys files)
there.  A netlink socket stays bound to the netns it was created in, so afterwards the
plugin drives both namespaces from one thread without forking.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import os
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from kubelab.cni import spec
from kubelab.cni.spec import CniError

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def open_netns(path: str) -> int:
    """An fd for the netns at `path` (/run/netns/X or /proc/PID/ns/net).

    Code 3 (unknown container) when it does not exist or is not a network namespace.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise CniError(spec.ERR_UNKNOWN_CONTAINER, f"network namespace {path} does not exist") \
            from None
    except OSError as e:
        raise CniError(spec.ERR_UNKNOWN_CONTAINER, f"cannot open network namespace {path}",
                       str(e)) from None
    # A netns file is an nsfs inode; setns() on it is the only reliable test, done cheaply
    # by entering and leaving right away.
    try:
        with entered(fd):
            pass
    except OSError as e:
        os.close(fd)
        raise CniError(spec.ERR_UNKNOWN_CONTAINER, f"{path} is not a network namespace",
                       str(e)) from None
    return fd


@contextmanager
def entered(fd: int) -> Iterator[None]:
    """Run the body with this thread inside the netns `fd`, then come back."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def iproute_in(fd: int | None) -> IPRoute:
    """An IPRoute whose socket lives in netns `fd` (None: the current netns)."""
    if fd is None:
        return IPRoute()
    with entered(fd):
        return IPRoute()


def kernel_error(what: str, e: Exception) -> CniError:
    return CniError(spec.ERR_INTERNAL, what, f"{type(e).__name__}: {e}")


def read_sysctl(path: str) -> str | None:
    """/proc/sys/<path> in the current netns; None when the key does not exist."""
    try:
        with open(os.path.join("/proc/sys", path), encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def write_sysctl(path: str, value: str) -> None:
    """Write /proc/sys/<path> in the current netns (skipped when already set)."""
    full = os.path.join("/proc/sys", path)
    try:
        with open(full, encoding="ascii") as f:
            if f.read().strip() == value:
                return
        with open(full, "w", encoding="ascii") as f:
            f.write(value)
    except OSError as e:
        raise kernel_error(f"cannot set sysctl {path}={value}", e) from None


BRIDGE_NF_SYSCTL = "net/bridge/bridge-nf-call-iptables"


def ensure_bridge_netfilter() -> None:
    """Make bridged IPv4 packets pass netfilter in the current netns (br_netfilter).

    A Service reply from a pod on the same bridge as its client is switched, not routed:
    without this, conntrack never sees it, the un-DNAT never happens and the client drops a
    reply from the pod's own address (the classic "Service works from other nodes only").
    Stock Debian kernels ship br_netfilter as a module that nothing loads."""
    if not os.path.exists(os.path.join("/proc/sys", BRIDGE_NF_SYSCTL)):
        try:
            proc = subprocess.run(["modprobe", "br_netfilter"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise kernel_error("cannot load the br_netfilter module", e) from None
        if proc.returncode != 0:
            raise CniError(spec.ERR_INTERNAL, "cannot load the br_netfilter module",
                           (proc.stderr or proc.stdout).strip())
    write_sysctl(BRIDGE_NF_SYSCTL, "1")


# ---------------------------------------------------------------------------------------
# Links
# ---------------------------------------------------------------------------------------

@dataclass
class Link:
    index: int
    name: str
    mac: str
    kind: str
    master: int | None
    peer_index: int | None      # veth: the peer's ifindex (in the peer's netns)
    up: bool
    mtu: int
    hairpin: bool | None


def _link_from_msg(msg: Any) -> Link:
    info = msg.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else ""
    hairpin = None
    if info is not None and info.get_attr("IFLA_INFO_SLAVE_KIND") == "bridge":
        data = info.get_attr("IFLA_INFO_SLAVE_DATA")
        if data is not None:
            mode = data.get_attr("IFLA_BRPORT_MODE")
            hairpin = bool(mode) if mode is not None else None
    return Link(index=msg["index"], name=msg.get_attr("IFLA_IFNAME"),
                mac=msg.get_attr("IFLA_ADDRESS") or "", kind=kind or "",
                master=msg.get_attr("IFLA_MASTER"), peer_index=msg.get_attr("IFLA_LINK"),
                up=bool(msg["flags"] & 1), mtu=msg.get_attr("IFLA_MTU") or 0, hairpin=hairpin)


def get_link(ipr: IPRoute, name: str) -> Link | None:
    try:
        found = ipr.link_lookup(ifname=name)
        if not found:
            return None
        return _link_from_msg(ipr.get_links(found[0])[0])
    except NetlinkError as e:
        if e.code == errno.ENODEV:
            return None
        raise kernel_error(f"cannot look up link {name}", e) from None


def links(ipr: IPRoute) -> list[Link]:
    return [_link_from_msg(m) for m in ipr.get_links()]


def ensure_bridge(ipr: IPRoute, name: str, *, mtu: int = 0) -> Link:
    """Create the bridge if missing (tolerating a concurrent creator) and bring it up."""
    try:
        kwargs: dict[str, Any] = {"ifname": name, "kind": "bridge"}
        if mtu:
            kwargs["mtu"] = mtu
        ipr.link("add", **kwargs)
    except NetlinkError as e:
        if e.code != errno.EEXIST:
            raise kernel_error(f"could not add bridge {name}", e) from None
    br = get_link(ipr, name)
    if br is None:
        raise CniError(spec.ERR_INTERNAL, f"bridge {name} vanished after creation")
    if br.kind != "bridge":
        raise CniError(spec.ERR_INVALID_CONFIG, f"{name!r} already exists but is not a bridge")
    try:
        if not br.up:
            # Pin the MAC: otherwise a bridge takes the lowest port MAC, changing as pods come
            # and go (the reference plugin does the same).
            ipr.link("set", index=br.index, address=br.mac, state="up")
        if mtu and br.mtu != mtu:
            ipr.link("set", index=br.index, mtu=mtu)
    except NetlinkError as e:
        raise kernel_error(f"could not set bridge {name} up", e) from None
    return get_link(ipr, name) or br


def addresses(ipr: IPRoute, index: int) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    out = []
    for a in ipr.get_addr(index=index):
        out.append(ipaddress.ip_interface(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"))
    return out


def ensure_address(ipr: IPRoute, link: Link, addr: ipaddress.IPv4Interface, *,
                   force: bool = False) -> None:
    """Put the gateway address on the bridge; another IPv4 address there is an error unless
    forceAddress (then it is replaced), as in the reference plugin."""
    for have in addresses(ipr, link.index):
        if have == addr:
            return
        if have.version == 4 and addr.version == 4:
            if not force:
                raise CniError(spec.ERR_INVALID_CONFIG,
                               f"{link.name!r} already has an IP address different from {addr}",
                               f"it has {have}; set forceAddress to replace it")
            try:
                ipr.addr("del", index=link.index, address=str(have.ip), prefixlen=have.network.prefixlen)
            except NetlinkError as e:
                raise kernel_error(f"could not remove {have} from {link.name}", e) from None
    try:
        ipr.addr("add", index=link.index, address=str(addr.ip), prefixlen=addr.network.prefixlen)
    except NetlinkError as e:
        if e.code != errno.EEXIST:
            raise kernel_error(f"could not add {addr} to {link.name}", e) from None


def create_veth(ipr: IPRoute, *, host_name: str, peer_name: str, peer_netns_fd: int,
                mtu: int = 0) -> None:
    """One veth pair whose peer is born inside the container netns with its final name."""
    kwargs: dict[str, Any] = {"ifname": host_name, "kind": "veth",
                              "peer": {"ifname": peer_name, "net_ns_fd": peer_netns_fd}}
    if mtu:
        kwargs["mtu"] = mtu
        kwargs["peer"]["mtu"] = mtu
    try:
        ipr.link("add", **kwargs)
    except NetlinkError as e:
        if e.code == errno.EEXIST:
            raise CniError(spec.ERR_INTERFACE_EXISTS,
                           f"veth {host_name} or {peer_name} already exists") from None
        raise kernel_error(f"could not create veth {host_name}", e) from None


def attach_port(ipr: IPRoute, *, port: Link, bridge: Link, hairpin: bool) -> None:
    try:
        ipr.link("set", index=port.index, master=bridge.index)
        # Hairpin lets a pod reach itself through its Service (see docs: bridge netfilter).
        ipr.brport("set", index=port.index, mode=1 if hairpin else 0)
        ipr.link("set", index=port.index, state="up")
    except NetlinkError as e:
        raise kernel_error(f"could not attach {port.name} to {bridge.name}", e) from None


def delete_link(ipr: IPRoute, name: str) -> bool:
    """Delete a link if present; False when it was already gone."""
    link = get_link(ipr, name)
    if link is None:
        return False
    try:
        ipr.link("del", index=link.index)
    except NetlinkError as e:
        if e.code in (errno.ENODEV, errno.ENOENT):
            return False
        raise kernel_error(f"could not delete {name}", e) from None
    return True


def bridge_ports(ipr: IPRoute, bridge: Link) -> list[Link]:
    return [link for link in links(ipr) if link.master == bridge.index]


# ---------------------------------------------------------------------------------------
# Inside the container
# ---------------------------------------------------------------------------------------

def set_up(ipr: IPRoute, name: str) -> Link:
    link = get_link(ipr, name)
    if link is None:
        raise CniError(spec.ERR_INTERNAL, f"link {name} not found")
    try:
        ipr.link("set", index=link.index, state="up")
    except NetlinkError as e:
        raise kernel_error(f"could not set {name} up", e) from None
    return link


def add_address(ipr: IPRoute, link: Link, addr: ipaddress.IPv4Interface) -> None:
    try:
        ipr.addr("add", index=link.index, address=str(addr.ip), prefixlen=addr.network.prefixlen)
    except NetlinkError as e:
        if e.code != errno.EEXIST:
            raise kernel_error(f"could not add {addr} to {link.name}", e) from None


def add_route(ipr: IPRoute, *, dst: str, gw: str, oif: int) -> None:
    net = ipaddress.ip_network(dst, strict=False)
    kwargs: dict[str, Any] = {"dst": str(net.network_address), "dst_len": net.prefixlen,
                              "oif": oif}
    if gw:
        kwargs["gateway"] = gw
    try:
        ipr.route("add", **kwargs)
    except NetlinkError as e:
        if e.code != errno.EEXIST:
            raise kernel_error(f"could not add route {dst} via {gw or 'link'}", e) from None


def routes(ipr: IPRoute, family: int = 2) -> list[tuple[str, str, int | None]]:
    """Main-table routes as (dst CIDR, gateway or '', oif)."""
    out = []
    for r in ipr.get_routes(family=family, table=254):
        dst = r.get_attr("RTA_DST") or ("0.0.0.0" if family == 2 else "::")
        out.append((f"{dst}/{r['dst_len']}", r.get_attr("RTA_GATEWAY") or "", r.get_attr("RTA_OIF")))
    return out
