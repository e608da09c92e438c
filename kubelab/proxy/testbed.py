"""A one-node service lab built from network namespaces, for the proxy's tests and benchmark.

    client ns ──veth── node ns ──bridge kl-br── backend ns × N (HTTP on :8080, UDP echo on :5353)
    192.168.56.100     192.168.56.11             10.244.1.10, .11, ...
                       10.244.1.1 (gateway)

The proxy's rules are applied *inside the node namespace* (`ip netns exec <node> nft -f -`), so
the machine's own nftables/iptables are never touched. Everything created here carries a random
`kl<hex>` prefix and is removed by `close()` (deleting a namespace removes its links).

Clients run in threads that `setns()` into a namespace: sockets created by that thread live
there, so a test can make hundreds of requests without spawning a process per request.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import ctypes
import os
import secrets
import socket
import subprocess
import sys
import time
from typing import Callable, TypeVar

NODE_IP = "192.168.56.11"
CLIENT_IP = "192.168.56.100"
UPLINK_GW = "192.168.56.1"
GATEWAY_IP = "10.244.1.1"
POD_CIDR = "10.244.1.0/24"
CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/12"
HTTP_PORT = 8080
UDP_PORT = 5353
BRIDGE = "kl-br"

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


def sh(*argv: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip()}")
    return r


def in_netns(ns: str, fn: Callable[[], T]) -> T:
    """Run `fn` in a fresh thread switched into network namespace `ns`; return its result."""

    def target() -> T:
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns({ns}) failed")
        finally:
            os.close(fd)
        return fn()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as ex:
        return ex.submit(target).result()


def http_get(ip: str, port: int, *, timeout: float = 3.0) -> str:
    """One HTTP/1.0 GET; returns the body (`<backend name> <peer ip>`). Raises OSError on failure."""
    with socket.create_connection((ip, port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[-1].decode().strip()


def udp_ask(ip: str, port: int, *, src_port: int = 0, timeout: float = 2.0) -> str:
    """Send one datagram from a fixed source port (same 5-tuple → same conntrack entry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", src_port))
        s.settimeout(timeout)
        s.sendto(b"who", (ip, port))
        return s.recv(512).decode().strip()


class Testbed:
    """Create with `with Testbed(backends=3) as tb:`; names in tb.node, tb.client, tb.backends."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, *, backends: int = 3, servers: bool = True) -> None:
        self.id = "kl" + secrets.token_hex(3)
        self.node = f"{self.id}-node"
        self.client = f"{self.id}-client"
        self.backends = [f"{self.id}-b{i}" for i in range(backends)]
        self.backend_ips = [f"10.244.1.{10 + i}" for i in range(backends)]
        self._servers: list[subprocess.Popen] = []
        self._want_servers = servers
        self._created: list[str] = []

    def __enter__(self) -> "Testbed":
        try:
            self.create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ns(self, ns: str, *argv: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", ns, *argv, input=input, check=check)

    def _add_ns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self._created.append(name)
        self.ns(name, "ip", "link", "set", "lo", "up")

    def create(self) -> None:
        self._add_ns(self.node)
        n = self.node
        for key, val in (("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.rp_filter", "0"),
                         ("net.ipv4.conf.default.rp_filter", "0"),
                         # a packet forwarded back out of the interface it came in on triggers an
                         # ICMP redirect, which then suppresses the ICMP port-unreachable that
                         # rejects connections to services without endpoints (clients would hang)
                         ("net.ipv4.conf.all.send_redirects", "0"),
                         ("net.ipv4.conf.default.send_redirects", "0")):
            self.ns(n, "sysctl", "-qw", f"{key}={val}")
        self.ns(n, "ip", "link", "add", BRIDGE, "type", "bridge")
        self.ns(n, "ip", "addr", "add", f"{GATEWAY_IP}/24", "dev", BRIDGE)
        self.ns(n, "ip", "link", "set", BRIDGE, "up")
        for i, (b, ip) in enumerate(zip(self.backends, self.backend_ips)):
            self._add_ns(b)
            port = f"veth{i}"
            self.ns(n, "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", b)
            self.ns(n, "ip", "link", "set", port, "master", BRIDGE)
            self.ns(n, "ip", "link", "set", port, "up")
            # hairpin: a pod load-balanced to itself gets its packets back through its own port
            self.ns(n, "ip", "link", "set", port, "type", "bridge_slave", "hairpin", "on")
            self.ns(b, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
            self.ns(b, "ip", "link", "set", "eth0", "up")
            self.ns(b, "ip", "route", "add", "default", "via", GATEWAY_IP)
        self._add_ns(self.client)
        self.ns(n, "ip", "link", "add", "uplink", "type", "veth", "peer", "name", "eth0", "netns", self.client)
        self.ns(n, "ip", "addr", "add", f"{NODE_IP}/24", "dev", "uplink")
        self.ns(n, "ip", "link", "set", "uplink", "up")
        # a default route out of the node network, as a real node has: packets to a ClusterIP
        # without endpoints must be routable to reach the forward hook and be rejected there.
        # (Nothing answers at .1, and the uplink's far end is the lab's own client namespace.)
        self.ns(n, "ip", "route", "add", "default", "via", UPLINK_GW, "dev", "uplink")
        c = self.client
        self.ns(c, "ip", "addr", "add", f"{CLIENT_IP}/24", "dev", "eth0")
        self.ns(c, "ip", "link", "set", "eth0", "up")
        self.ns(c, "ip", "route", "add", SERVICE_CIDR, "via", NODE_IP)
        self.ns(c, "ip", "route", "add", CLUSTER_CIDR, "via", NODE_IP)
        if self._want_servers:
            for i, b in enumerate(self.backends):
                self._servers.append(subprocess.Popen(
                    ["ip", "netns", "exec", b, sys.executable, "-m", "kubelab.proxy.testbed", "serve",
                     "--name", f"b{i}"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            for ip in self.backend_ips:
                self.wait_for(lambda ip=ip: in_netns(self.client, lambda: http_get(ip, HTTP_PORT, timeout=0.5)),
                              timeout=15)

    @staticmethod
    def wait_for(probe: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05) -> T:
        """Poll `probe` until it returns without raising (condition wait, not a fixed sleep)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return probe()
            except (OSError, AssertionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(interval)

    def close(self) -> None:
        for p in self._servers:
            if p.poll() is None:
                p.terminate()
        for p in self._servers:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        self._servers.clear()
        for name in reversed(self._created):
            sh("ip", "netns", "del", name, check=False)
        self._created.clear()

    # convenience wrappers
    def get(self, ns: str, ip: str, port: int, **kw) -> str:
        return in_netns(ns, lambda: http_get(ip, port, **kw))

    def udp(self, ns: str, ip: str, port: int, **kw) -> str:
        return in_netns(ns, lambda: udp_ask(ip, port, **kw))


# ---------------------------------------------------------------- backend server


async def _serve(name: str, http_port: int, udp_port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            peer = writer.get_extra_info("peername")[0]
            body = f"{name} {peer}\n".encode()
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()
        finally:
            writer.close()

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport):  # type: ignore[override]
            self.t = transport

        def datagram_received(self, data, addr):  # type: ignore[override]
            self.t.sendto(f"{name}\n".encode(), addr)

    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(Echo, local_addr=("0.0.0.0", udp_port))
    server = await asyncio.start_server(handle, "0.0.0.0", http_port, reuse_address=True)
    async with server:
        await server.serve_forever()


def _pump_server(port: int) -> None:
    """Sink for throughput runs: accept connections and discard everything."""
    srv = socket.create_server(("0.0.0.0", port), reuse_port=True)
    while True:
        conn, _ = srv.accept()
        with conn:
            while conn.recv(1 << 20):
                pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kubelab.proxy.testbed", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="backend: HTTP on --http-port, UDP echo on --udp-port, replying with --name")
    s.add_argument("--name", required=True)
    s.add_argument("--http-port", type=int, default=HTTP_PORT)
    s.add_argument("--udp-port", type=int, default=UDP_PORT)
    k = sub.add_parser("sink", help="TCP sink for throughput measurements")
    k.add_argument("--port", type=int, default=9000)
    args = p.parse_args(argv)
    try:
        if args.cmd == "serve":
            asyncio.run(_serve(args.name, args.http_port, args.udp_port))
        else:
            _pump_server(args.port)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
