"""kubelab-ipam: host-local style IP address management for one node's pod CIDR.

Same config keys and on-disk store as the reference `host-local` plugin, so a student can
compare the two side by side:

    "ipam": {"type": "kubelab-ipam",
             "ranges": [[{"subnet": "10.244.1.0/24", "rangeStart": ..., "rangeEnd": ...,
                          "gateway": "10.244.1.1"}]],         # or "subnet" etc. at this level
             "routes": [{"dst": "0.0.0.0/0"}],
             "dataDir": "/var/lib/cni/networks"}               # store is <dataDir>/<network name>

The store is a directory with one file per allocated address (named by the address, holding
"<container id>\\r\\n<ifname>"), a `last_reserved_ip.<range set index>` pointer for
round-robin allocation, and a lock file every operation holds (fcntl), which is what makes
concurrent ADDs from many pods safe.  The choice of the next address is a pure function.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence, Union

from kubelab.cni import spec
from kubelab.cni.spec import CniError, DNS, Env, IPConfig, Result, Route

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

DEFAULT_DATA_DIR = "/var/lib/cni/networks"
LAST_IP_PREFIX = "last_reserved_ip."
LOCK_FILE = "lock"
DEFAULT_LOCK_TIMEOUT = 30.0
LINE_BREAK = "\r\n"


# ---------------------------------------------------------------------------------------
# Ranges and the pure allocation logic
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Range:
    """One allocatable range; start/end inclusive, like host-local's."""

    subnet: IPNetwork
    range_start: IPAddress
    range_end: IPAddress
    gateway: IPAddress

    def contains(self, ip: IPAddress) -> bool:
        return ip.version == self.subnet.version and self.range_start <= ip <= self.range_end

    def __str__(self) -> str:
        return f"{self.range_start}-{self.range_end}"


def _addr(value: Any, what: str) -> IPAddress:
    try:
        return ipaddress.ip_address(value)
    except (ValueError, TypeError):
        raise CniError(spec.ERR_INVALID_CONFIG, f"invalid {what} {value!r}") from None


def parse_range(d: Mapping[str, Any]) -> Range:
    """Canonicalise one range dict: defaults as host-local (gateway = first address,
    start = first address, end = last address before the IPv4 broadcast)."""
    if not isinstance(d, Mapping):
        raise CniError(spec.ERR_INVALID_CONFIG, f"range must be an object, got {d!r}")
    try:
        subnet = ipaddress.ip_network(d["subnet"], strict=False)
    except KeyError:
        raise CniError(spec.ERR_INVALID_CONFIG, "range has no subnet") from None
    except (ValueError, TypeError):
        raise CniError(spec.ERR_INVALID_CONFIG, f"invalid subnet {d.get('subnet')!r}") from None
    if subnet.prefixlen > subnet.max_prefixlen - 2:
        raise CniError(spec.ERR_INVALID_CONFIG, f"network {subnet} too small to allocate from")
    first = subnet.network_address + 1
    last = subnet.broadcast_address - 1 if subnet.version == 4 else subnet.broadcast_address
    gateway = _addr(d["gateway"], "gateway") if d.get("gateway") else first
    start = _addr(d["rangeStart"], "rangeStart") if d.get("rangeStart") else first
    end = _addr(d["rangeEnd"], "rangeEnd") if d.get("rangeEnd") else last
    for name, ip in (("gateway", gateway), ("rangeStart", start), ("rangeEnd", end)):
        if ip.version != subnet.version or ip not in subnet:
            raise CniError(spec.ERR_INVALID_CONFIG, f"{name} {ip} not in network {subnet}")
    if start > end:
        raise CniError(spec.ERR_INVALID_CONFIG, f"rangeStart {start} is after rangeEnd {end}")
    return Range(subnet=subnet, range_start=start, range_end=end, gateway=gateway)


def _overlaps(a: Range, b: Range) -> bool:
    return a.subnet.version == b.subnet.version and \
        a.range_start <= b.range_end and b.range_start <= a.range_end


def usable(ip: IPAddress, r: Range) -> bool:
    """Never hand out the network address, the IPv4 broadcast or the gateway."""
    if ip == r.subnet.network_address or ip == r.gateway:
        return False
    return not (r.subnet.version == 4 and ip == r.subnet.broadcast_address)


def iter_candidates(ranges: Sequence[Range], last_reserved: IPAddress | None
                    ) -> Iterator[tuple[IPAddress, Range]]:
    """Round-robin order over a range set: from the address after `last_reserved` (when it
    lies in the set; else from the first range's start), wrapping once around all ranges.
    A crash-looping pod so does not get the same address back until the set is used up."""
    if not ranges:
        return
    sizes = [int(r.range_end) - int(r.range_start) + 1 for r in ranges]
    total = sum(sizes)
    offset = 0
    if last_reserved is not None:
        base = 0
        for r, size in zip(ranges, sizes):
            if r.contains(last_reserved):
                offset = (base + int(last_reserved) - int(r.range_start) + 1) % total
                break
            base += size
    for step in range(total):
        g = (offset + step) % total
        for r, size in zip(ranges, sizes):
            if g < size:
                ip = ipaddress.ip_address(int(r.range_start) + g)
                if usable(ip, r):
                    yield ip, r
                break
            g -= size


def next_free_in_set(ranges: Sequence[Range], *, allocated: Iterable[IPAddress],
                     last_reserved: IPAddress | None = None) -> tuple[IPAddress, Range] | None:
    """The first address of the round-robin order that nobody holds, or None when full."""
    taken = set(allocated)
    for ip, r in iter_candidates(ranges, last_reserved):
        if ip not in taken:
            return ip, r
    return None


def next_free(*, subnet: str | IPNetwork, range_start: str | IPAddress | None = None,
              range_end: str | IPAddress | None = None, gateway: str | IPAddress | None = None,
              allocated: Iterable[str | IPAddress] = (),
              last_reserved: str | IPAddress | None = None) -> IPAddress | None:
    """Single-range form of the allocator, for tests and for reading: which address would
    the next ADD get?"""
    r = parse_range({"subnet": str(subnet), "rangeStart": range_start and str(range_start),
                     "rangeEnd": range_end and str(range_end), "gateway": gateway and str(gateway)})
    found = next_free_in_set(
        [r], allocated=[ipaddress.ip_address(a) for a in allocated],
        last_reserved=ipaddress.ip_address(last_reserved) if last_reserved else None)
    return found[0] if found else None


# ---------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------

@dataclass
class IpamConfig:
    name: str
    ranges: list[list[Range]]
    routes: list[Route] = field(default_factory=list)
    data_dir: str = DEFAULT_DATA_DIR
    resolv_conf: str = ""
    requested: list[IPAddress] = field(default_factory=list)
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT

    @property
    def store_dir(self) -> str:
        return os.path.join(self.data_dir, self.name)


def parse_ipam_config(conf: Mapping[str, Any], env_args: Mapping[str, str] | None = None
                      ) -> IpamConfig:
    """The `ipam` section of a plugin config (host-local keys + kubelab's lockTimeoutSeconds)."""
    ipam = conf.get("ipam")
    if not isinstance(ipam, Mapping):
        raise CniError(spec.ERR_INVALID_CONFIG, "IPAM config missing 'ipam' key")
    rangesets: list[list[Range]] = []
    if ipam.get("subnet"):                       # old single-range style, prepended
        rangesets.append([parse_range(ipam)])
    raw = ipam.get("ranges") or []
    if not isinstance(raw, list):
        raise CniError(spec.ERR_INVALID_CONFIG, "ipam.ranges must be a list of range sets")
    for i, rs in enumerate(raw):
        if not isinstance(rs, list) or not rs:
            raise CniError(spec.ERR_INVALID_CONFIG, f"ipam.ranges[{i}] must be a non-empty list")
        rangesets.append([parse_range(r) for r in rs])
    if not rangesets:
        raise CniError(spec.ERR_INVALID_CONFIG, "no IP ranges specified",
                       "set ipam.ranges or ipam.subnet")
    flat = [(i, r) for i, rs in enumerate(rangesets) for r in rs]
    for i, rs in enumerate(rangesets):
        if len({r.subnet.version for r in rs}) != 1:
            raise CniError(spec.ERR_INVALID_CONFIG, f"range set {i} mixes address families")
    for a_i, (i, a) in enumerate(flat):
        for j, b in flat[a_i + 1:]:
            if _overlaps(a, b):
                raise CniError(spec.ERR_INVALID_CONFIG,
                               f"range {a} (set {i}) overlaps with range {b} (set {j})")
    routes_raw = ipam.get("routes") or []
    if not isinstance(routes_raw, list):
        raise CniError(spec.ERR_INVALID_CONFIG, "ipam.routes must be a list")
    routes = [Route.from_dict(r) if isinstance(r, Mapping) else Route.from_dict({})
              for r in routes_raw]
    requested: list[IPAddress] = []
    if env_args and env_args.get("IP"):
        requested.append(_addr(env_args["IP"], "CNI_ARGS IP"))
    args_ips = ((conf.get("args") or {}).get("cni") or {}).get("ips") or []
    requested += [_addr(ip, "args.cni.ips entry") for ip in args_ips]
    data_dir = ipam.get("dataDir") or DEFAULT_DATA_DIR
    if not isinstance(data_dir, str) or not os.path.isabs(data_dir):
        raise CniError(spec.ERR_INVALID_CONFIG, f"ipam.dataDir must be an absolute path: {data_dir!r}")
    timeout = ipam.get("lockTimeoutSeconds", DEFAULT_LOCK_TIMEOUT)
    if not isinstance(timeout, (int, float)) or timeout < 0:
        raise CniError(spec.ERR_INVALID_CONFIG, "ipam.lockTimeoutSeconds must be a number >= 0")
    return IpamConfig(name=str(conf["name"]), ranges=rangesets, routes=routes, data_dir=data_dir,
                      resolv_conf=str(ipam.get("resolvConf") or ""), requested=requested,
                      lock_timeout=float(timeout))


def parse_resolv_conf(text: str) -> DNS:
    """host-local's `resolvConf`: nameserver / domain / search / options lines -> DNS."""
    dns = DNS()
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 2:
            continue
        key, rest = words[0], words[1:]
        if key == "nameserver":
            dns.nameservers.append(rest[0])
        elif key == "domain":
            dns.domain = rest[0]
        elif key == "search":
            dns.search += rest
        elif key == "options":
            dns.options += rest
    return dns


# ---------------------------------------------------------------------------------------
# The on-disk store
# ---------------------------------------------------------------------------------------

class Store:
    """<dataDir>/<network>/: a file per address, last_reserved_ip.<n>, and a lock."""

    def __init__(self, directory: str) -> None:
        self.dir = directory
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
        except OSError as e:
            raise CniError(spec.ERR_IO, f"cannot create IPAM data dir {directory}", str(e)) from None
        if not os.path.isdir(directory):
            raise CniError(spec.ERR_IO, f"IPAM data dir {directory} is not a directory")

    @contextmanager
    def locked(self, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
        """Hold the store's exclusive lock; code 11 (try again) when it stays busy."""
        try:
            fd = os.open(os.path.join(self.dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise CniError(spec.ERR_IO, f"cannot open lock in {self.dir}", str(e)) from None
        try:
            deadline = time.monotonic() + timeout
            delay = 0.001
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise CniError(spec.ERR_TRY_AGAIN, f"IPAM store {self.dir} is busy",
                                       f"lock not acquired within {timeout}s") from None
                    # Polling (not a blocking flock) keeps the timeout without signals.
                    time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                    delay = min(delay * 2, 0.02)
            yield
        finally:
            os.close(fd)   # closing drops the flock

    def _path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def allocations(self) -> dict[IPAddress, tuple[str, str]]:
        """Every reserved address -> (container id, ifname)."""
        out: dict[IPAddress, tuple[str, str]] = {}
        try:
            names = os.listdir(self.dir)
        except OSError as e:
            raise CniError(spec.ERR_IO, f"cannot list {self.dir}", str(e)) from None
        for name in names:
            try:
                ip = ipaddress.ip_address(name)
            except ValueError:
                continue       # lock, last_reserved_ip.N, stray files
            try:
                with open(self._path(name), encoding="utf-8", newline="") as f:
                    data = f.read()
            except OSError:
                continue
            cid, _, ifname = data.strip().partition(LINE_BREAK)
            out[ip] = (cid.strip(), ifname.strip())
        return out

    def reserve(self, ip: IPAddress, container_id: str, ifname: str, range_id: str) -> bool:
        """Create the address file exclusively; False if someone holds it."""
        try:
            fd = os.open(self._path(str(ip)), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        except OSError as e:
            raise CniError(spec.ERR_IO, f"cannot reserve {ip} in {self.dir}", str(e)) from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                f.write(container_id.strip() + LINE_BREAK + ifname)
            tmp = self._path(f".{LAST_IP_PREFIX}{range_id}.tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(str(ip))
            os.replace(tmp, self._path(LAST_IP_PREFIX + range_id))
        except OSError as e:
            try:
                os.unlink(self._path(str(ip)))
            except OSError:
                pass
            raise CniError(spec.ERR_IO, f"cannot write reservation for {ip}", str(e)) from None
        return True

    def last_reserved(self, range_id: str) -> IPAddress | None:
        try:
            with open(self._path(LAST_IP_PREFIX + range_id), encoding="utf-8") as f:
                return ipaddress.ip_address(f.read().strip())
        except (OSError, ValueError):
            return None

    def find(self, container_id: str, ifname: str) -> list[IPAddress]:
        """Addresses held by (container, ifname); files from old host-local versions hold
        only the id and match any ifname."""
        return sorted(ip for ip, (cid, ifn) in self.allocations().items()
                      if cid == container_id and ifn in (ifname, ""))

    def release(self, ips: Iterable[IPAddress]) -> list[IPAddress]:
        done = []
        for ip in ips:
            try:
                os.unlink(self._path(str(ip)))
                done.append(ip)
            except FileNotFoundError:
                pass
            except OSError as e:
                raise CniError(spec.ERR_IO, f"cannot release {ip}", str(e)) from None
        return done


# ---------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------

def allocate(store: Store, cfg: IpamConfig, container_id: str, ifname: str) -> list[IPConfig]:
    """One address from every range set (the caller holds the lock)."""
    held = store.allocations()
    mine = {ip for ip, (cid, ifn) in held.items() if cid == container_id and ifn in (ifname, "")}
    requested = list(cfg.requested)
    out: list[IPConfig] = []
    reserved: list[IPAddress] = []
    try:
        for idx, rangeset in enumerate(cfg.ranges):
            for ip in mine:
                if any(r.contains(ip) for r in rangeset):
                    raise CniError(spec.ERR_ADDRESS_UNAVAILABLE,
                                   f"{ip} is already allocated to {container_id}/{ifname}",
                                   "duplicate allocation is not allowed; DEL first")
            want = next((ip for ip in requested if any(r.contains(ip) for r in rangeset)), None)
            if want is not None:
                requested.remove(want)
                r = next(r for r in rangeset if r.contains(want))
                if not usable(want, r) or want in held:
                    raise CniError(spec.ERR_ADDRESS_UNAVAILABLE,
                                   f"requested address {want} is not available")
                pick: tuple[IPAddress, Range] | None = (want, r)
            else:
                pick = next_free_in_set(rangeset, allocated=held,
                                        last_reserved=store.last_reserved(str(idx)))
            if pick is None:
                raise CniError(spec.ERR_NO_FREE_ADDRESS,
                               f"no IP addresses available in range set {idx}: "
                               + ", ".join(str(r) for r in rangeset))
            ip, r = pick
            if not store.reserve(ip, container_id, ifname, str(idx)):
                raise CniError(spec.ERR_ADDRESS_UNAVAILABLE, f"address {ip} was taken meanwhile")
            reserved.append(ip)
            held[ip] = (container_id, ifname)
            out.append(IPConfig(address=f"{ip}/{r.subnet.prefixlen}", gateway=str(r.gateway)))
        if requested:
            raise CniError(spec.ERR_ADDRESS_UNAVAILABLE,
                           "requested addresses outside every range: "
                           + ", ".join(str(ip) for ip in requested))
    except CniError:
        store.release(reserved)
        raise
    return out


def cmd_add(env: Env, conf: dict[str, Any], _stdin: bytes) -> Result:
    cfg = parse_ipam_config(conf, env.args)
    dns = DNS()
    if cfg.resolv_conf:
        try:
            with open(cfg.resolv_conf, encoding="utf-8") as f:
                dns = parse_resolv_conf(f.read())
        except OSError as e:
            raise CniError(spec.ERR_IO, f"cannot read resolvConf {cfg.resolv_conf}", str(e)) from None
    store = Store(cfg.store_dir)
    with store.locked(cfg.lock_timeout):
        ips = allocate(store, cfg, env.container_id, env.ifname)
    return Result(ips=ips, routes=list(cfg.routes), dns=dns)


def cmd_del(env: Env, conf: dict[str, Any], _stdin: bytes) -> None:
    """Release everything the container holds; releasing nothing is success."""
    cfg = parse_ipam_config(conf, env.args)
    if not os.path.isdir(cfg.store_dir):
        return None
    store = Store(cfg.store_dir)
    with store.locked(cfg.lock_timeout):
        store.release(store.find(env.container_id, env.ifname))
    return None


def cmd_check(env: Env, conf: dict[str, Any], _stdin: bytes) -> None:
    cfg = parse_ipam_config(conf, env.args)
    if os.path.isdir(cfg.store_dir):
        store = Store(cfg.store_dir)
        with store.locked(cfg.lock_timeout):
            if store.find(env.container_id, env.ifname):
                return None
    raise CniError(spec.ERR_CHECK_FAILED,
                   f"no address reserved for container {env.container_id} ifname {env.ifname}")


def cmd_status(env: Env, conf: dict[str, Any], _stdin: bytes) -> None:
    """Ready when the store is writable and every range set still has a free address."""
    cfg = parse_ipam_config(conf, env.args)
    try:
        store = Store(cfg.store_dir)
        if not os.access(store.dir, os.W_OK):
            raise CniError(spec.ERR_IO, f"IPAM data dir {store.dir} is not writable")
    except CniError as e:
        raise CniError(spec.ERR_NOT_AVAILABLE, "IPAM store unusable", e.msg) from None
    with store.locked(cfg.lock_timeout):
        held = store.allocations()
    for idx, rangeset in enumerate(cfg.ranges):
        if next_free_in_set(rangeset, allocated=held) is None:
            raise CniError(spec.ERR_NOT_AVAILABLE, f"range set {idx} has no free address")
    return None


def cmd_gc(env: Env, conf: dict[str, Any], _stdin: bytes) -> None:
    """Release every reservation whose (container id, ifname) the runtime no longer knows."""
    cfg = parse_ipam_config(conf, env.args)
    valid = spec.valid_attachments(conf)
    valid_ids = {cid for cid, _ in valid}
    if not os.path.isdir(cfg.store_dir):
        return None
    store = Store(cfg.store_dir)
    with store.locked(cfg.lock_timeout):
        stale = [ip for ip, (cid, ifn) in store.allocations().items()
                 if (cid, ifn) not in valid and not (ifn == "" and cid in valid_ids)]
        store.release(stale)
    return None


ABOUT = """\
kubelab-ipam: host-local style IPAM (CNI 0.4.0, 1.0.0, 1.1.0).

Normally executed by kubelab-bridge (the `ipam.type` of its config), with the same CNI_*
environment and stdin.  ADD prints {"ips": [...], "routes": [...], "dns": {...}}; DEL
releases the container's addresses; CHECK fails unless an address is reserved; STATUS
fails (code 50) when the store is unusable or a range is full; GC releases reservations
not in `cni.dev/valid-attachments`.

Store: <ipam.dataDir or /var/lib/cni/networks>/<network name>/<address> files.
"""

PLUGIN = spec.Plugin(name="kubelab-ipam", about=ABOUT, add=cmd_add, delete=cmd_del,
                     check=cmd_check, status=cmd_status, gc=cmd_gc)


def main(argv: list[str] | None = None) -> int:
    return spec.plugin_main(PLUGIN, argv=argv)


if __name__ == "__main__":
    raise SystemExit(main())
