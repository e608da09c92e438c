"""The real `python -m kubelab.dns` process, asked with the real `dig` (and a real resolver).

The server is fed from an objects file (`--objects`), so these tests need no API server;
changes are made by rewriting the file, which the server reloads.
"""

from __future__ import annotations

import json
import os
import random
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.rcode
import dns.resolver
import dns.rrset
import pytest

from kubelab.dns.examples import CASES, Case, example_objects, normalize

pytestmark = pytest.mark.skipif(shutil.which("dig") is None, reason="dig (dnsutils) not installed")


def wait_until(pred: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> object:
    """Poll a condition until it holds (a deadline, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass
class DnsProcess:
    """One `python -m kubelab.dns --objects FILE` on loopback, free ports, cleaned up by stop()."""

    objects_file: Path
    proc: subprocess.Popen
    port: int = 0
    health_port: int = 0
    metrics_port: int = 0
    log: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, tmp: Path, objects: list[dict] | None, *extra: str, prefix: list[str] | None = None,
              listen: str = "127.0.0.1:0", ready: Callable[[DnsProcess], bool] | None = None) -> DnsProcess:
        """objects=None: no --objects file (give --server/--kubeconfig in `extra`)."""
        path = tmp / f"objects-{uuid.uuid4().hex[:6]}.json"
        source: list[str] = []
        if objects is not None:
            path.write_text(json.dumps(objects))
            source = ["--objects", str(path)]
        cmd = [*(prefix or []), sys.executable, "-m", "kubelab.dns", *source, "--listen", listen,
               "--health-port", "0", "--metrics-port", "0", *extra]
        if "--upstream" not in extra:
            cmd += ["--upstream", "none"]
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                cwd=Path(__file__).resolve().parents[2])
        self = cls(path, proc)
        sel = selectors.DefaultSelector()
        sel.register(proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + 20
        try:
            while True:
                if time.monotonic() > deadline or not sel.select(timeout=1) and proc.poll() is not None:
                    raise RuntimeError("dns server did not start: " + "".join(self.log))
                line = proc.stderr.readline()
                if not line and proc.poll() is not None:
                    raise RuntimeError("dns server exited: " + "".join(self.log))
                self.log.append(line)
                if line.startswith("kubelab-dns listening"):
                    fields = dict(f.split("=", 1) for f in line.split()[2:])
                    self.port = int(fields["dns"].rsplit(":", 1)[1])
                    self.health_port = int(fields["health"].rsplit(":", 1)[1])
                    self.metrics_port = int(fields["metrics"].rsplit(":", 1)[1])
                    break
        except BaseException:
            self.stop()
            raise
        finally:
            sel.close()
        threading.Thread(target=self._drain, daemon=True).start()
        check = ready or (lambda p: p.http("/ready")[0] == 200)
        wait_until(lambda: check(self), 20, "ready")
        return self

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.log.append(line)

    def http(self, path: str, port: int | None = None) -> tuple[int, str]:
        url = f"http://127.0.0.1:{port or self.health_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, ""

    def update(self, objects: list[dict]) -> None:
        """Replace the objects (atomically, so the server never reads half a file)."""
        tmp = self.objects_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(objects))
        os.replace(tmp, self.objects_file)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class DigResult:
    status: str
    flags: set[str]
    answer: set[str]
    authority: set[str]
    raw: str


def dig(port: int, name: str, qtype: str = "A", *opts: str, server: str = "127.0.0.1") -> DigResult:
    out = subprocess.run(
        ["dig", f"@{server}", "-p", str(port), "+norec", "+time=2", "+tries=2", "+noall", "+comments",
         "+answer", "+authority", *opts, name, qtype],
        capture_output=True, text=True, timeout=30).stdout
    status, flags, section = "", set(), None
    answer: set[str] = set()
    authority: set[str] = set()
    for line in out.splitlines():
        if "status:" in line:
            status = line.split("status:")[1].split(",")[0].strip()
        elif line.startswith(";; flags:"):
            flags = set(line.split(";")[2].split(":", 1)[1].split())
        elif line.startswith(";; ANSWER SECTION"):
            section = answer
        elif line.startswith(";; AUTHORITY SECTION"):
            section = authority
        elif line.startswith(";") or not line.strip():
            if not line.strip():
                section = None
        elif section is not None:
            section.add(normalize(line))
    return DigResult(status, flags, answer, authority, out)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[DnsProcess]:
    big = [
        {"kind": "Service", "metadata": {"name": "big", "namespace": "testns"}, "spec": {"clusterIP": "None"}},
        {"kind": "EndpointSlice", "metadata": {"name": "big-1", "namespace": "testns",
                                               "labels": {"kubernetes.io/service-name": "big"}},
         "addressType": "IPv4", "endpoints": [{"addresses": [f"10.244.9.{i}"]} for i in range(1, 101)]},
    ]
    proc = DnsProcess.start(tmp_path_factory.mktemp("dns"), example_objects() + big)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.mark.parametrize("mode", ["udp", "tcp", "noedns"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.qname}/{c.qtype}")
def test_table_with_dig(server: DnsProcess, case: Case, mode: str) -> None:
    opts = {"udp": (), "tcp": ("+tcp",), "noedns": ("+noedns",)}[mode]
    r = dig(server.port, case.qname, case.qtype, *opts)
    assert r.status == case.rcode, r.raw
    assert r.answer == {normalize(x) for x in case.answer}, r.raw
    assert r.authority == {normalize(x) for x in case.authority}, r.raw
    if case.rcode != "REFUSED":
        assert "aa" in r.flags


def test_truncation_over_udp_then_full_answer_over_tcp(server: DnsProcess) -> None:
    name = "big.testns.svc.cluster.local."
    small = dig(server.port, name, "A", "+ignore", "+bufsize=512")
    assert small.status == "NOERROR" and "tc" in small.flags and not small.answer
    noedns = dig(server.port, name, "A", "+ignore", "+noedns")
    assert "tc" in noedns.flags
    tcp = dig(server.port, name, "A", "+tcp")
    assert "tc" not in tcp.flags and len(tcp.answer) == 100
    retried = dig(server.port, name, "A", "+bufsize=512")  # dig retries over TCP itself
    assert len(retried.answer) == 100
    large = dig(server.port, name, "A", "+bufsize=4096", "+ignore")
    assert "tc" not in large.flags and len(large.answer) == 100


def test_health_ready_and_metrics(server: DnsProcess) -> None:
    assert server.http("/health") == (200, "OK\n")
    assert server.http("/ready")[0] == 200
    for _ in range(3):
        dig(server.port, "svc1.testns.svc.cluster.local.", "A")
    status, text = server.http("/metrics", server.metrics_port)
    assert status == 200
    assert 'coredns_dns_requests_total{family="1",proto="udp",server="dns://:53",type="A"' in text
    assert 'coredns_dns_responses_total{plugin="",rcode="NOERROR"' in text
    assert "coredns_dns_request_duration_seconds_bucket" in text
    hits = [line for line in text.splitlines() if line.startswith('kubelab_dns_cache_hits_total{cache="answers"}')]
    assert hits and float(hits[0].split()[-1]) >= 2  # repeats answered from stored wire bytes


def test_pod_resolver_search_list_with_ndots_5(server: DnsProcess) -> None:
    """What a pod's resolver does with `search testns.svc.cluster.local svc.cluster.local cluster.local`."""
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = ["127.0.0.1"]
    res.port = server.port
    res.search = [dns.name.from_text(s) for s in ("testns.svc.cluster.local", "svc.cluster.local", "cluster.local")]
    res.ndots = 5
    res.use_search_by_default = True
    a = res.resolve("svc1", "A")
    assert a.qname.to_text() == "svc1.testns.svc.cluster.local." and a[0].to_text() == "10.96.0.100"
    b = res.resolve("kubernetes.default", "A")  # first try kubernetes.default.testns.svc... → NXDOMAIN
    assert b.qname.to_text() == "kubernetes.default.svc.cluster.local." and b[0].to_text() == "10.96.0.1"
    c = res.resolve("_http._tcp.hdls1", "SRV")
    assert len(c) == 4
    # every search expansion is NXDOMAIN; the bare name is outside the zone: REFUSED (no upstream)
    with pytest.raises(dns.resolver.NoNameservers, match="REFUSED"):
        res.resolve("no-such-svc", "A")



def test_dig_search_with_domain(server: DnsProcess) -> None:
    r = dig(server.port, "svc1", "A", "+search", "+domain=testns.svc.cluster.local", "+ndots=5")
    assert r.answer == {"svc1.testns.svc.cluster.local. 5 in a 10.96.0.100"}, r.raw


@pytest.mark.root
def test_glibc_resolver_in_a_netns_like_a_pod(tmp_path: Path) -> None:
    """getent (glibc) with a pod's resolv.conf inside a network namespace, server on port 53."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2")
    ns = f"kl-{uuid.uuid4().hex[:8]}"
    etc = Path("/etc/netns") / ns
    proc = None
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        etc.mkdir(parents=True)
        (etc / "resolv.conf").write_text(
            "nameserver 127.0.0.1\nsearch testns.svc.cluster.local svc.cluster.local cluster.local\n"
            "options ndots:5 timeout:1 attempts:2\n")
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        # a pod has an address (getaddrinfo's AI_ADDRCONFIG ignores loopback-only hosts)
        subprocess.run(["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"], check=True)
        subprocess.run(["ip", "-n", ns, "addr", "add", "10.244.9.2/24", "dev", "eth0"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "eth0", "up"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "eth0p", "up"], check=True)
        in_ns = ["ip", "netns", "exec", ns]

        def ready(p: DnsProcess) -> bool:
            out = subprocess.run([*in_ns, "dig", "@127.0.0.1", "+time=1", "+tries=1", "dns-version.cluster.local",
                                  "TXT", "+short"], capture_output=True, text=True, timeout=30).stdout
            return "1.1.0" in out

        proc = DnsProcess.start(tmp_path, example_objects(), prefix=in_ns, listen="127.0.0.1:53", ready=ready)

        def getent(name: str) -> str:
            return subprocess.run(["ip", "netns", "exec", ns, "getent", "ahostsv4", name],
                                  capture_output=True, text=True, timeout=30).stdout

        assert "10.96.0.100" in getent("svc1")
        assert "10.96.0.1 " in getent("kubernetes.default")
        assert "10.244.1.5" in getent("web-0.hdls1")
        assert getent("no-such-svc") == ""
    finally:
        if proc is not None:
            proc.stop()
        shutil.rmtree(etc, ignore_errors=True)
        subprocess.run(["ip", "netns", "del", ns], check=False)


def _without(objs: list[dict], name: str) -> list[dict]:
    return [o for o in objs if o["metadata"].get("name") != name]


def test_changes_reach_answers(tmp_path: Path) -> None:
    objs = example_objects()
    proc = DnsProcess.start(tmp_path, objs)
    try:
        web0 = "web-0.hdls1.testns.svc.cluster.local."
        assert dig(proc.port, web0).status == "NOERROR"
        assert "hdls1.testns.svc.cluster.local. 5 in a 10.244.1.5" in dig(proc.port, "hdls1.testns.svc.cluster.local.").answer
        # web-0 becomes not ready
        for o in objs:
            if o["metadata"]["name"] == "hdls1-v4":
                o["endpoints"][0]["conditions"]["ready"] = False
        proc.update(objs)
        wait_until(lambda: dig(proc.port, web0).status == "NXDOMAIN", what="not-ready endpoint gone")
        a = dig(proc.port, "hdls1.testns.svc.cluster.local.")
        assert a.status == "NOERROR" and not any("10.244.1.5" in x for x in a.answer)
        assert not any("web-0" in x for x in dig(proc.port, "_http._tcp.hdls1.testns.svc.cluster.local.", "SRV").answer)
        assert dig(proc.port, "5.1.244.10.in-addr.arpa.", "PTR").status == "REFUSED"
        # svc1 deleted
        assert dig(proc.port, "svc1.testns.svc.cluster.local.").status == "NOERROR"
        proc.update(_without(objs, "svc1"))
        wait_until(lambda: dig(proc.port, "svc1.testns.svc.cluster.local.").status == "NXDOMAIN",
                   what="deleted service NXDOMAIN")
        assert dig(proc.port, "_http._tcp.svc1.testns.svc.cluster.local.", "SRV").status == "NXDOMAIN"
        assert dig(proc.port, "svc6.testns.svc.cluster.local.").status == "NOERROR"
    finally:
        proc.stop()


# -- fuzz ---------------------------------------------------------------------------------------

def _mutate(rng: random.Random, seeds: list[bytes]) -> bytes:
    p = bytearray(rng.choice(seeds))
    op = rng.randrange(7)
    if op == 0:
        del p[rng.randrange(len(p)):]
    elif op == 1:
        for _ in range(rng.randint(1, 4)):
            p[rng.randrange(len(p))] = rng.randrange(256)
    elif op == 2:
        p[12 + rng.randrange(min(20, len(p) - 12))] = rng.choice((63, 64, 0xC0, 0xFF))
    elif op == 3:  # a compression pointer loop in the question
        p = bytearray(p[:12] + b"\xc0\x0c" + p[-4:])
    elif op == 4:
        p = bytearray(rng.randbytes(rng.randint(0, 600)))
    elif op == 5:
        p[rng.randrange(2, 12)] = rng.randrange(256)
    # op 6: unchanged, so the fast path sees exact repeats too
    return bytes(p)


def test_fuzz_udp_and_tcp_then_still_serving(server: DnsProcess) -> None:
    rng = random.Random(1234)
    seeds = [dns.message.make_query(n, t, use_edns=e).to_wire()
             for n in ("svc1.testns.svc.cluster.local.", "hdls1.testns.svc.cluster.local.",
                       "Big.TestNS.svc.cluster.local.", "nope.cluster.local.", "example.com.")
             for t in ("A", "SRV", "AAAA") for e in (-1, 0)]
    status, before = server.http("/metrics", server.metrics_port)

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setblocking(False)
    answers = 0
    try:
        for i in range(5000):
            udp.sendto(_mutate(rng, seeds), ("127.0.0.1", server.port))
            if i % 50 == 0:  # let replies drain, and count them
                try:
                    while True:
                        udp.recv(65535)
                        answers += 1
                except BlockingIOError:
                    pass
        udp.settimeout(1.0)  # collect the stragglers until the server goes quiet
        try:
            while answers <= 100:
                udp.recv(65535)
                answers += 1
        except socket.timeout:
            pass
    finally:
        udp.close()

    def frame(payload: bytes) -> bytes:
        return len(payload).to_bytes(2, "big") + payload

    for i in range(60):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            kind = i % 4
            try:
                if kind == 0:  # a full 64 KiB frame of junk
                    s.sendall(frame(rng.randbytes(65535)))
                elif kind == 1:  # a 64 KiB frame that is a valid query followed by junk
                    q = rng.choice(seeds)
                    s.sendall(frame(q + rng.randbytes(65535 - len(q))))
                elif kind == 2:  # several mutated frames pipelined
                    s.sendall(b"".join(frame(_mutate(rng, seeds)) for _ in range(20)))
                else:  # a length that promises more than is sent, then close
                    s.sendall(b"\xff\xff" + rng.randbytes(100))
                s.shutdown(socket.SHUT_WR)
                s.settimeout(5)
                while s.recv(65536):
                    pass
            except (ConnectionError, socket.timeout):
                pass

    assert server.proc.poll() is None, "server died"
    assert answers > 100  # FORMERR/answers came back for the mutated packets
    ok = dig(server.port, "svc1.testns.svc.cluster.local.", "A")
    assert ok.answer == {"svc1.testns.svc.cluster.local. 5 in a 10.96.0.100"}
    ok_tcp = dig(server.port, "big.testns.svc.cluster.local.", "A", "+tcp")
    assert len(ok_tcp.answer) == 100

    def fast_hits(text: str) -> int:
        for line in text.splitlines():
            if line.startswith('kubelab_dns_cache_hits_total{cache="answers"}'):
                return int(float(line.split()[-1]))
        return 0

    _, after = server.http("/metrics", server.metrics_port)
    assert fast_hits(after) - fast_hits(before) > 100  # the fuzz went through the fast path too
    assert 'rcode="FORMERR"' in after


# -- forwarding -----------------------------------------------------------------------------------

class StubUpstream:
    """A loopback DNS server standing in for the node's resolver; counts what it is asked."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.asked: list[str] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except (socket.timeout, OSError):
                continue
            q = dns.message.from_wire(data)
            name = q.question[0].name.to_text().lower()
            self.asked.append(name)
            r = dns.message.make_response(q)
            if name in ("www.example.test.", "ext.example.test."):
                r.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "192.0.2.1"))
            else:
                r.set_rcode(dns.rcode.NXDOMAIN)
                r.authority.append(dns.rrset.from_text(
                    "example.test.", 300, "IN", "SOA", "ns.example.test. h.example.test. 1 2 3 4 30"))
            self.sock.sendto(r.to_wire(), addr)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.sock.close()


def test_forwarding_with_cache_and_negative_cache(tmp_path: Path) -> None:
    upstream = StubUpstream()
    proc = None
    try:
        proc = DnsProcess.start(tmp_path, example_objects(), "--upstream", f"127.0.0.1:{upstream.port}")
        r1 = dig(proc.port, "www.example.test.", "A", "+rec")
        assert r1.status == "NOERROR" and any(x.endswith("in a 192.0.2.1") for x in r1.answer), r1.raw
        assert "aa" not in r1.flags and "ra" in r1.flags
        r2 = dig(proc.port, "WWW.example.test.", "A", "+rec")
        assert any("192.0.2.1" in x for x in r2.answer)
        assert upstream.asked.count("www.example.test.") == 1  # the second came from the cache
        n1 = dig(proc.port, "gone.example.test.", "A")
        n2 = dig(proc.port, "gone.example.test.", "A")
        assert n1.status == n2.status == "NXDOMAIN" and n1.authority
        assert upstream.asked.count("gone.example.test.") == 1  # negative answer cached
        # ExternalName pointing outside: CNAME from us, the target's A from upstream
        e = dig(proc.port, "external.testns.svc.cluster.local.", "A")
        assert "external.testns.svc.cluster.local. 5 in cname ext.example.test." in e.answer
        assert any(x.startswith("ext.example.test.") and "192.0.2.1" in x for x in e.answer), e.raw
        # cluster names never go upstream
        dig(proc.port, "svc1.testns.svc.cluster.local.", "A")
        assert not any(n.endswith("cluster.local.") for n in upstream.asked)
        _, metrics = proc.http("/metrics", proc.metrics_port)
        assert 'kubelab_dns_cache_hits_total{cache="forward"} 2.0' in metrics
    finally:
        if proc is not None:
            proc.stop()
        upstream.close()


def test_dead_upstream_gives_servfail(tmp_path: Path) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))  # bound but never answering
    proc = None
    try:
        proc = DnsProcess.start(tmp_path, example_objects(), "--upstream", f"127.0.0.1:{s.getsockname()[1]}")
        r = dig(proc.port, "www.example.test.", "A", "+time=5", "+tries=1")
        assert r.status == "SERVFAIL", r.raw
        assert dig(proc.port, "svc1.testns.svc.cluster.local.").status == "NOERROR"
    finally:
        if proc is not None:
            proc.stop()
        s.close()


def test_cli_help_and_bad_input(tmp_path: Path) -> None:
    h = subprocess.run([sys.executable, "-m", "kubelab.dns", "--help"], capture_output=True, text=True, timeout=30)
    assert h.returncode == 0 and "--upstream" in h.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("{not: [valid")
    r = subprocess.run([sys.executable, "-m", "kubelab.dns", "--objects", str(bad), "--listen", "127.0.0.1:0",
                        "--upstream", "none", "--health-port", "0", "--metrics-port", "0"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "error" in r.stderr.lower()
