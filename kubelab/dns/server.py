"""The DNS wire side: UDP and TCP listeners answering from the current zone snapshot.

Two paths. The slow path parses with dnspython, answers via `records.answer` (or the
forwarder), handles EDNS0, truncation and every malformed-packet case. Each authoritative
answer it renders is remembered as wire bytes keyed by the raw question (lower-cased name,
type, class, EDNS or not); the fast path answers a repeat of that question by patching the
query id, RD bit and the question's original spelling into the stored bytes, without
parsing; a byte-for-byte repeat of an earlier UDP query (all but the id) is answered from a
second table without even reading the question. The stored answers belong to one snapshot
and are dropped with it.

A third path answers names that do not exist in the cluster zone (the NXDOMAINs that
`ndots:5` search expansion sends for every external name: `example.com.default.svc.…`)
straight from the wire: each is a different name, so the stored answers rarely help, and
parsing each with dnspython capped them at a few thousand per second. `nxdomain` checks the
raw name against the snapshot's names (kept as lower-cased wire bytes) and writes header,
question and the zone's SOA itself; anything it is not sure about goes to the slow path.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from kubelab.dns import records
from kubelab.dns.forward import Forwarder
from kubelab.dns.status import Metrics

log = logging.getLogger("kubelab.dns")

OUR_PAYLOAD = 1232  # the EDNS buffer size DNS flag day 2020 recommends
MAX_FAST_ENTRIES = 50000
TCP_IDLE_TIMEOUT = 10.0
MAX_TCP_CLIENTS = 256
_ONE_QUESTION = b"\x00\x01\x00\x00\x00\x00"  # qdcount 1, ancount 0, nscount 0


def question_key(data: bytes) -> tuple[bytes, int, int] | None:
    """(cache key, end of the question, UDP size limit) for a plain query, else None.

    Plain means: a standard QUERY, no flags but RD, one question with an uncompressed
    name, and either no additional record or one EDNS0 OPT record carrying nothing but
    well-formed cookies. Anything else takes the slow path, which judges it properly.
    """
    n = len(data)
    if n < 17 or data[2] & 0xFE or data[4:10] != _ONE_QUESTION:
        return None
    i = 12
    while True:
        if i >= n:
            return None
        length = data[i]
        if length == 0:
            break
        if length > 63:
            return None
        i += length + 1
    if i - 12 > 254:  # a name is at most 255 octets, the root label included
        return None
    qend = i + 5
    arcount = data[10:12]
    if arcount == b"\x00\x00":
        if qend != n:
            return None
        return data[12:qend].lower() + b"\x00", qend, 512
    if arcount != b"\x00\x01" or n < qend + 11:
        return None
    # OPT: root name, type 41, class = payload, ttl = ext-rcode, version, flags; rdlen; options
    if data[qend] != 0 or data[qend + 1:qend + 3] != b"\x00\x29" or data[qend + 5] or data[qend + 6]:
        return None
    j = qend + 11
    end = j + int.from_bytes(data[qend + 9:qend + 11], "big")
    if end != n:
        return None
    while j < end:
        if j + 4 > end:
            return None
        code = int.from_bytes(data[j:j + 2], "big")
        olen = int.from_bytes(data[j + 2:j + 4], "big")
        if code != 10 or not (olen == 8 or 16 <= olen <= 40):
            return None
        j += 4 + olen
    if j != end:
        return None
    return data[12:qend].lower() + b"\x01", qend, max(512, int.from_bytes(data[qend + 3:qend + 5], "big"))


_NOT_PLAIN_TYPES = frozenset((dns.rdatatype.AXFR, dns.rdatatype.IXFR, dns.rdatatype.OPT))
# what make_response(our_payload=OUR_PAYLOAD) adds to an EDNS query's answer: OPT, no options
_OPT = b"\x00\x00\x29" + OUR_PAYLOAD.to_bytes(2, "big") + b"\x00\x00\x00\x00\x00\x00"
_TYPE_TEXT: dict[int, str] = {}


def _type_text(qtype: int) -> str:
    text = _TYPE_TEXT.get(qtype)
    if text is None:
        text = _TYPE_TEXT[qtype] = dns.rdatatype.to_text(qtype)
    return text


def _labels(name: dns.name.Name) -> tuple[bytes, ...]:
    return tuple(label for label in name.labels if label)


def _compress(labels: tuple[bytes, ...], at: int, table: dict[bytes, int]) -> bytes:
    """A name written at offset `at` as dnspython compresses it (so both paths give equal bytes).

    Walk the suffixes longest first: a known one becomes a pointer, an unknown one is
    remembered at its offset (case-insensitively) and its first label written out.
    """
    out = bytearray()
    for i in range(len(labels)):
        suffix = b"".join(bytes((len(x),)) + x.lower() for x in labels[i:]) + b"\x00"
        pos = table.get(suffix)
        if pos is not None:
            out += (0xC000 | pos).to_bytes(2, "big")
            return bytes(out)
        if at + len(out) <= 0x3FFF:
            table[suffix] = at + len(out)
        out += bytes((len(labels[i]),)) + labels[i]
    return bytes(out + b"\x00")


def _wire(name: dns.name.Name) -> bytes:
    return b"".join(bytes((len(label),)) + label.lower() for label in name.labels)


class _MissIndex:
    """One snapshot's names as lower-cased wire bytes, and its SOA record ready to append."""

    def __init__(self, snap: records.Snapshot, ra: bool = False) -> None:
        self.snapshot = snap
        self.zone = _wire(snap.zone)
        self.pod_suffix = b"\x03pod" + self.zone
        # every name that exists (records, empty non-terminals), and the reverse names we hold
        self.names = frozenset(_wire(n) for n in snap.names) | frozenset(_wire(n) for n in snap.records)
        soa = snap.soa
        rd = soa[0]
        self._soa_head = b"".join((soa.rdtype.to_bytes(2, "big"), soa.rdclass.to_bytes(2, "big"),
                                   soa.ttl.to_bytes(4, "big")))
        self._soa_names = (_labels(rd.mname), _labels(rd.rname))
        self._soa_numbers = b"".join(x.to_bytes(4, "big") for x in
                                     (rd.serial, rd.refresh, rd.retry, rd.expire, rd.minimum))
        self._tails: dict[tuple[int, bytes], bytes] = {}
        # a question suffix can equal an SOA name only within that name's labels above the zone
        zl = len(_labels(snap.zone))
        self.depth = max([1] + [len(n) - zl for n, full in zip(self._soa_names, (rd.mname, rd.rname))
                                if full.is_subdomain(snap.zone)])
        self.ra_rcode = (0x80 if ra else 0) | dns.rcode.NXDOMAIN  # RA as make_response sets it


    def soa_after(self, name: bytes, cut: int, near: bytes) -> bytes:
        """The authority SOA record for a question named `name` (lower-cased wire, zone at `cut`).

        Compression lets the SOA's names point into the question, so the bytes depend on the
        question's last `depth` labels above the zone (`near`: no longer suffix can equal one
        of the SOA's names) and on where the zone starts; cached by those two.
        """
        key = (cut, near)
        tail = self._tails.get(key)
        if tail is not None:
            return tail
        table: dict[bytes, int] = {}
        i = 0
        while i < len(name) - 1:  # the question's suffixes, as dnspython registers them
            table[name[i:]] = 12 + i
            i += name[i] + 1
        at = 12 + len(name) + 4
        owner = (0xC000 | (12 + cut)).to_bytes(2, "big")
        rdata_at = at + 2 + 10
        mname = _compress(self._soa_names[0], rdata_at, table)
        rname = _compress(self._soa_names[1], rdata_at + len(mname), table)
        rdata = mname + rname + self._soa_numbers
        tail = owner + self._soa_head + len(rdata).to_bytes(2, "big") + rdata
        if len(self._tails) < 4096:
            self._tails[key] = tail
        return tail


@dataclass
class Pending:
    """A query that needs the upstream: finished asynchronously by `DnsCore.finish`."""

    response: dns.message.Message
    qname: dns.name.Name  # the name to ask upstream (the query's, or a CNAME target)
    qtype: int
    qclass: int
    max_size: int
    proto: str
    started: float


class DnsCore:
    """Answers one DNS message (bytes in, bytes out); shared by the UDP and TCP listeners."""

    def __init__(self, snapshot: records.Snapshot | None = None, *, forwarder: Forwarder | None = None,
                 metrics: Metrics | None = None, fast_path: bool = True, zone: str | None = None) -> None:
        self.forwarder = forwarder
        self.zone = dns.name.from_text(zone) if zone else None  # for answers before the first snapshot
        self.metrics = metrics or Metrics()
        self.fast_path = fast_path
        self.snapshot: records.Snapshot | None = None
        self._fast: dict[bytes, tuple[bytes, int, str, str]] = {}
        self._miss: _MissIndex | None = None  # built on the first miss after a snapshot swap
        # UDP query bytes after the id → (answer bytes after the id, type, rcode), same zone
        self._exact: dict[bytes, tuple[bytes, str, str]] = {}
        if snapshot is not None:
            self.set_snapshot(snapshot)

    def set_snapshot(self, snapshot: records.Snapshot) -> None:
        """Swap the zone atomically; stored wire answers of the old zone go with it."""
        self.snapshot = snapshot
        self._fast = {}
        self._exact = {}
        self._miss = None
        self.metrics.snapshot_builds += 1
        self.metrics.snapshot_names = len(snapshot.names)

    # -- fast path -------------------------------------------------------------------------

    def fast(self, data: bytes, *, proto: str = "udp", max_size: int | None = None) -> bytes | None:
        """The stored answer to a repeated plain question, or None (then use `slow`)."""
        if not self.fast_path:
            return None
        udp = max_size is None
        if udp:
            # the same packet again but for its id (what a resolver or dnsperf repeats): no parsing
            same = self._exact.get(data[2:])
            if same is not None:
                m = self.metrics
                m.fast_hits += 1
                m.count(proto, same[1], same[2])
                return data[:2] + same[0]
        parsed = question_key(data)
        if parsed is None:
            return None
        key, qend, udp_limit = parsed
        entry = self._fast.get(key)
        if entry is None:
            out = self.nxdomain(data, key, qend, udp_limit if udp else max_size, proto)
            if out is not None and udp:
                self._keep_exact(data, out, _type_text(int.from_bytes(key[-5:-3], "big")), "NXDOMAIN")
            return out
        wire, tqend, qtype, rcode = entry
        if len(wire) > (udp_limit if udp else max_size) or tqend != qend:
            return None
        m = self.metrics
        m.fast_hits += 1
        m.count(proto, qtype, rcode)
        out = b"".join((data[:2], bytes(((wire[2] & 0xFE) | (data[2] & 0x01),)), wire[3:12],
                        data[12:qend], wire[qend:]))
        if udp:
            self._keep_exact(data, out, qtype, rcode)
        return out

    def _keep_exact(self, data: bytes, out: bytes, qtype: str, rcode: str) -> None:
        if len(self._exact) >= MAX_FAST_ENTRIES:
            self._exact = {}
        self._exact[data[2:]] = (out[2:], qtype, rcode)

    def nxdomain(self, data: bytes, key: bytes, qend: int, limit: int, proto: str) -> bytes | None:
        """NXDOMAIN for a plain question about a name the cluster zone does not hold, else None.

        `key` is question_key's: lower-cased name wire, type, class, EDNS flag. Answers exactly
        what `records.answer` gives such a name (NXDOMAIN, the zone SOA in authority, AA).
        """
        snap = self.snapshot
        if snap is None:
            return None
        miss = self._miss
        if miss is None or miss.snapshot is not snap:
            miss = self._miss = _MissIndex(snap, ra=self.forwarder is not None)
        name = key[:-5]
        qtype = int.from_bytes(key[-5:-3], "big")
        if (key[-3:-1] != b"\x00\x01" or qtype in _NOT_PLAIN_TYPES or not name.endswith(miss.zone)
                or name in miss.names or (snap.pod_records and name.endswith(miss.pod_suffix))):
            return None
        # a name is in the zone only on a label boundary: walk the labels to the suffix
        i, cut = 0, len(name) - len(miss.zone)
        starts = []
        while i < cut:
            starts.append(i)
            i += name[i] + 1
        if i != cut:
            return None
        depth = miss.depth
        near = name[starts[-depth]:cut] if len(starts) >= depth else name[:cut]
        edns = key[-1] == 1
        flags = 0x84 | (data[2] & 0x01)  # QR, AA, the query's RD
        out = b"".join((
            data[:2], bytes((flags, miss.ra_rcode)), b"\x00\x01\x00\x00\x00\x01",
            b"\x00\x01" if edns else b"\x00\x00",
            data[12:qend],
            miss.soa_after(name, cut, near),
            _OPT if edns else b"",
        ))
        if len(out) > limit:
            return None
        self.metrics.count(proto, _type_text(qtype), "NXDOMAIN")
        return out

    # -- slow path -------------------------------------------------------------------------

    def slow(self, data: bytes, *, proto: str = "udp", max_size: int | None = None) -> bytes | Pending | None:
        """Parse and answer; None means drop (no answer is possible or wise)."""
        started = time.perf_counter()
        try:
            query = dns.message.from_wire(data)
        except Exception:  # noqa: BLE001 - any parse failure of untrusted bytes is FORMERR
            return self._formerr(data, proto)
        if query.flags & dns.flags.QR:
            self.metrics.dropped += 1
            return None  # never answer a response: that is how reflection loops start
        response = dns.message.make_response(query, recursion_available=self.forwarder is not None,
                                             our_payload=OUR_PAYLOAD)
        if max_size is None:
            max_size = max(512, query.payload) if query.edns >= 0 else 512
        qtype_text = dns.rdatatype.to_text(query.question[0].rdtype) if query.question else "NONE"
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
        elif len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
        elif query.edns > 0:
            response.use_edns(0, 0, OUR_PAYLOAD)
            response.set_rcode(dns.rcode.BADVERS)
        else:
            q = query.question[0]
            snap = self.snapshot
            if snap is not None and q.rdclass == dns.rdataclass.IN and records.in_zone(snap, q.name):
                if q.rdtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
                    response.set_rcode(dns.rcode.REFUSED)
                else:
                    rcode, answer, authority = records.answer(snap, q.name, q.rdtype)
                    response.set_rcode(rcode)
                    response.flags |= dns.flags.AA
                    response.answer = answer
                    response.authority = authority
                    response.additional = records.additional(snap, answer)
                    last = answer[-1] if answer else None
                    if (last is not None and last.rdtype == dns.rdatatype.CNAME
                            and q.rdtype != dns.rdatatype.CNAME and self.forwarder is not None
                            and not records.in_zone(snap, last[0].target)):
                        return Pending(response, last[0].target, q.rdtype, q.rdclass, max_size, proto, started)
                    wire = self._render(response, max_size, proto, qtype_text)
                    self._remember(data, wire, qtype_text, response)
                    return wire
            elif snap is None and self.zone is not None and q.name.is_subdomain(self.zone):
                response.set_rcode(dns.rcode.SERVFAIL)  # not synced yet: never guess NXDOMAIN
            elif self.forwarder is not None and q.rdtype not in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
                return Pending(response, q.name, q.rdtype, q.rdclass, max_size, proto, started)
            else:
                response.set_rcode(dns.rcode.REFUSED)
                wire = self._render(response, max_size, proto, qtype_text)
                self._remember(data, wire, qtype_text, response)
                return wire
        return self._render(response, max_size, proto, qtype_text)

    async def finish(self, pending: Pending) -> bytes:
        """Complete a forwarded query (appending to any in-zone CNAME already answered)."""
        assert self.forwarder is not None
        rcode, answer, authority, additional = await self.forwarder.resolve(
            pending.qname, pending.qtype, pending.qclass)
        resp = pending.response
        resp.set_rcode(rcode)
        resp.answer = list(resp.answer) + answer
        if not resp.answer or rcode != dns.rcode.NOERROR:
            resp.authority = authority
        resp.additional = list(resp.additional) + additional
        return self._render(resp, pending.max_size, pending.proto,
                            dns.rdatatype.to_text(pending.qtype))

    # -- helpers ---------------------------------------------------------------------------

    def _render(self, response: dns.message.Message, max_size: int, proto: str, qtype: str) -> bytes:
        try:
            # Stable record order: the stored fast-path bytes must equal what we would render.
            wire = response.to_wire(max_size=max_size, want_shuffle=False)
        except dns.exception.TooBig:
            # RFC 2181 §9: set TC and let the client retry over TCP; send what surely fits.
            response.answer, response.authority, response.additional = [], [], []
            response.flags |= dns.flags.TC
            wire = response.to_wire(max_size=max_size)
        self.metrics.count(proto, qtype, dns.rcode.to_text(response.rcode()))
        return wire

    def _remember(self, data: bytes, wire: bytes, qtype: str, response: dns.message.Message) -> None:
        """Store an answer that depends on nothing but the question, for the fast path."""
        if not self.fast_path or response.flags & dns.flags.TC:
            return
        parsed = question_key(data)
        if parsed is None:
            return
        if len(self._fast) >= MAX_FAST_ENTRIES:
            self._fast = {}
        key, qend, _ = parsed
        self._fast[key] = (wire, qend, qtype, dns.rcode.to_text(response.rcode()))

    def _formerr(self, data: bytes, proto: str) -> bytes | None:
        """FORMERR with the query's id and opcode when the header is readable, else drop."""
        if len(data) < 12 or data[2] & 0x80:
            self.metrics.dropped += 1
            return None
        self.metrics.count(proto, "NONE", "FORMERR")
        flags = 0x80 | (data[2] & 0x79)  # QR, keep opcode and RD
        return data[:2] + bytes((flags, dns.rcode.FORMERR)) + b"\x00" * 8


UDP_DRAIN_MAX = 64  # datagrams answered per selector wake-up beyond the one asyncio delivered


class _UdpProtocol(asyncio.DatagramProtocol):
    """Answers each datagram inline; then drains what else is already queued on the socket.

    asyncio delivers one datagram per selector wake-up (an epoll round and a callback each),
    which was most of the cost of a stored answer. Reading the queued datagrams in the same
    callback, up to UDP_DRAIN_MAX (≈1 ms of work, so the TCP listener and the watch are never
    starved), keeps the per-query cost at recvfrom + a dict lookup + sendto. The socket stays
    non-blocking and owned by the transport; an empty queue ends the drain at once.
    """

    def __init__(self, core: DnsCore, sock: socket.socket | None = None) -> None:
        self.core = core
        self.sock = sock  # the transport's socket, read directly while draining (None: no drain)
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task] = set()
        self.drained = 0  # datagrams read by the drain rather than delivered by asyncio (tests)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self._answer(data, addr)
        sock = self.sock
        if sock is None:
            return
        for _ in range(UDP_DRAIN_MAX):
            if self.transport is None or self.transport.is_closing():
                return
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.error_received(e)
                return
            self.drained += 1
            self._answer(data, addr)

    def _answer(self, data: bytes, addr: tuple) -> None:
        started = time.perf_counter()
        core = self.core
        out = core.fast(data)
        if out is None:
            try:
                out = core.slow(data)
            except Exception:  # noqa: BLE001 - one bad packet must never stop the listener
                log.exception("error answering a UDP query")
                return
            if isinstance(out, Pending):
                task = asyncio.get_running_loop().create_task(self._forward(out, addr))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
                return
            if out is None:
                return
        self.transport.sendto(out, addr)  # type: ignore[union-attr]
        core.metrics.observe(time.perf_counter() - started)

    async def _forward(self, pending: Pending, addr: tuple) -> None:
        try:
            out = await self.core.finish(pending)
        except Exception:  # noqa: BLE001
            log.exception("error forwarding a query")
            return
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(out, addr)
        self.core.metrics.observe(time.perf_counter() - pending.started)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)


class DnsServer:
    """UDP and TCP listeners on one address and port, sharing one DnsCore."""

    def __init__(self, core: DnsCore, host: str, port: int) -> None:
        self.core = core
        self.host = host
        self.port = port
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_proto: _UdpProtocol | None = None
        self._tcp: asyncio.Server | None = None
        self._tcp_clients: set[asyncio.Task] = set()

    async def start(self) -> None:
        """Bind UDP then TCP on the same port (port 0: find one free for both)."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for _ in range(50):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
                sock.bind((self.host, self.port))
                port = sock.getsockname()[1]
                tcp = await asyncio.start_server(self._tcp_client, self.host, port, reuse_address=True,
                                                 limit=70000)
            except OSError:
                sock.close()
                if self.port:
                    raise
                continue
            transport, proto = await loop.create_datagram_endpoint(lambda s=sock: _UdpProtocol(self.core, s),
                                                                     sock=sock)
            self._udp, self._udp_proto, self._tcp, self.port = transport, proto, tcp, port
            return
        raise OSError(f"no free port for UDP and TCP on {self.host}")

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for task in list(self._tcp_clients):
            task.cancel()
        if self._udp_proto is not None:
            for task in list(self._udp_proto.tasks):
                task.cancel()

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if len(self._tcp_clients) >= MAX_TCP_CLIENTS:
            writer.close()
            return
        if task is not None:
            self._tcp_clients.add(task)
        core = self.core
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_TIMEOUT)
                size = int.from_bytes(head, "big")
                if size == 0:
                    break
                data = await asyncio.wait_for(reader.readexactly(size), TCP_IDLE_TIMEOUT)
                started = time.perf_counter()
                out = core.fast(data, proto="tcp", max_size=65535)
                if out is None:
                    try:
                        result = core.slow(data, proto="tcp", max_size=65535)
                    except Exception:  # noqa: BLE001
                        log.exception("error answering a TCP query")
                        break
                    if isinstance(result, Pending):
                        result = await core.finish(result)
                    if result is None:
                        break  # undecodable without a header: the stream is out of sync
                    out = result
                writer.write(len(out).to_bytes(2, "big") + out)
                await writer.drain()
                core.metrics.observe(time.perf_counter() - started)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if task is not None:
                self._tcp_clients.discard(task)
            writer.close()
