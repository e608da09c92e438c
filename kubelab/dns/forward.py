"""Names outside the cluster zone: forwarded to one upstream, with a TTL-honouring cache.

Like CoreDNS's `forward` + `cache` plugins: positive answers are kept for their smallest
TTL, negative ones (NXDOMAIN, NODATA) for the SOA's negative TTL (RFC 2308), both capped.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

MAX_TTL = 3600  # CoreDNS cache: success capped at 3600 s
MAX_NEGATIVE_TTL = 1800  # CoreDNS cache: denial capped at 1800 s
SERVFAIL_TTL = 5


def parse_upstream(text: str) -> tuple[str, int] | None:
    """`IP`, `IP:PORT`, `[v6]:PORT` or `none` → (ip, port) or None."""
    text = text.strip()
    if text.lower() == "none":
        return None
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return host.rstrip("]"), int(port or 53)
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, 53


def resolv_conf_upstream(path: str = "/etc/resolv.conf") -> tuple[str, int] | None:
    """The first `nameserver` of the node's resolv.conf (the default upstream on VMs)."""
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    return parts[1], 53
    except OSError:
        pass
    return None


CacheKey = tuple[dns.name.Name, int, int]  # (qname, qtype, qclass); Name compares case-insensitively


@dataclass
class _Entry:
    stored: float
    expires: float
    rcode: int
    answer: list[dns.rrset.RRset]
    authority: list[dns.rrset.RRset]
    additional: list[dns.rrset.RRset]


def cache_ttl(response: dns.message.Message) -> int:
    """How long a response may be reused (0: not at all)."""
    rcode = response.rcode()
    if rcode == dns.rcode.SERVFAIL:
        return SERVFAIL_TTL
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return 0
    if rcode == dns.rcode.NOERROR and response.answer:
        return min(MAX_TTL, *(r.ttl for r in response.answer))
    for rrset in response.authority:  # negative answer: RFC 2308 §5
        if rrset.rdtype == dns.rdatatype.SOA:
            return min(MAX_NEGATIVE_TTL, rrset.ttl, rrset[0].minimum)
    return 0


class ResponseCache:
    """An LRU of upstream answers keyed by question; ages TTLs on the way out."""

    def __init__(self, *, max_entries: int = 10000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._data: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def put(self, key: CacheKey, response: dns.message.Message) -> None:
        ttl = cache_ttl(response)
        if ttl <= 0:
            return
        now = self.clock()
        self._data[key] = _Entry(now, now + ttl, response.rcode(), list(response.answer),
                                 list(response.authority),
                                 [r for r in response.additional if r.rdtype != dns.rdatatype.OPT])
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def get(self, key: CacheKey) -> tuple[int, list, list, list] | None:
        """(rcode, answer, authority, additional) with TTLs reduced by the time spent cached."""
        entry = self._data.get(key)
        now = self.clock()
        if entry is None or now >= entry.expires:
            if entry is not None:
                del self._data[key]
            self.misses += 1
            return None
        self.hits += 1
        self._data.move_to_end(key)
        aged = int(now - entry.stored)
        return (entry.rcode, *(
            [_aged(r, aged) for r in section]
            for section in (entry.answer, entry.authority, entry.additional)
        ))


def _aged(rrset: dns.rrset.RRset, seconds: int) -> dns.rrset.RRset:
    out = rrset.copy()
    out.ttl = max(0, rrset.ttl - seconds)
    return out


class Forwarder:
    """Sends questions to one upstream (UDP, TCP on truncation) and caches the answers."""

    def __init__(self, upstream: tuple[str, int], *, timeout: float = 2.0,
                 cache: ResponseCache | None = None) -> None:
        self.host, self.port = upstream
        self.timeout = timeout
        self.cache = cache if cache is not None else ResponseCache()
        self.requests = 0
        self.failures = 0

    async def resolve(self, qname: dns.name.Name, qtype: int, qclass: int) -> tuple[int, list, list, list]:
        """(rcode, answer, authority, additional); SERVFAIL when the upstream does not answer."""
        key = (qname, qtype, qclass)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        query = dns.message.make_query(qname, qtype, qclass, use_edns=0, payload=1232)
        self.requests += 1
        try:
            resp = await dns.asyncquery.udp(query, self.host, port=self.port, timeout=self.timeout,
                                            ignore_unexpected=True)
            if resp.flags & dns.flags.TC:
                resp = await dns.asyncquery.tcp(query, self.host, port=self.port, timeout=self.timeout)
        except (dns.exception.DNSException, OSError, asyncio.TimeoutError, EOFError):
            self.failures += 1
            return dns.rcode.SERVFAIL, [], [], []
        self.cache.put(key, resp)
        return (resp.rcode(), list(resp.answer), list(resp.authority),
                [r for r in resp.additional if r.rdtype != dns.rdatatype.OPT])
