"""The forwarder's response cache: TTLs honoured and aged, negative caching (RFC 2308)."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from kubelab.dns.forward import ResponseCache, cache_ttl, parse_upstream, resolv_conf_upstream

KEY = (dns.name.from_text("www.example.test."), dns.rdatatype.A, dns.rdataclass.IN)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _response(rcode: int = dns.rcode.NOERROR, ttl: int = 60, soa_ttl: int = 900, minimum: int = 30):
    r = dns.message.make_response(dns.message.make_query("www.example.test.", "A"))
    r.set_rcode(rcode)
    if rcode == dns.rcode.NOERROR and ttl:
        r.answer.append(dns.rrset.from_text("www.example.test.", ttl, "IN", "A", "192.0.2.1"))
    else:
        r.authority.append(dns.rrset.from_text(
            "example.test.", soa_ttl, "IN", "SOA", f"ns.example.test. h.example.test. 1 2 3 4 {minimum}"))
    return r


def test_positive_answer_cached_for_its_ttl_and_aged() -> None:
    clock = Clock()
    cache = ResponseCache(clock=clock)
    cache.put(KEY, _response(ttl=60))
    clock.now += 20.4
    rcode, answer, _, _ = cache.get(KEY)
    assert rcode == dns.rcode.NOERROR and answer[0].ttl == 40
    clock.now += 40
    assert cache.get(KEY) is None
    assert (cache.hits, cache.misses) == (1, 1)


def test_key_is_case_insensitive() -> None:
    cache = ResponseCache(clock=Clock())
    cache.put(KEY, _response())
    assert cache.get((dns.name.from_text("WWW.Example.TEST."), *KEY[1:])) is not None


def test_negative_answers_use_soa_minimum() -> None:
    assert cache_ttl(_response(dns.rcode.NXDOMAIN, soa_ttl=900, minimum=30)) == 30
    assert cache_ttl(_response(dns.rcode.NXDOMAIN, soa_ttl=10, minimum=300)) == 10
    assert cache_ttl(_response(dns.rcode.NOERROR, ttl=0, minimum=45)) == 45  # NODATA
    clock = Clock()
    cache = ResponseCache(clock=clock)
    cache.put(KEY, _response(dns.rcode.NXDOMAIN, minimum=30))
    assert cache.get(KEY)[0] == dns.rcode.NXDOMAIN
    clock.now += 31
    assert cache.get(KEY) is None


def test_ttls_are_capped_and_refused_not_cached() -> None:
    assert cache_ttl(_response(ttl=999999)) == 3600
    assert cache_ttl(_response(dns.rcode.REFUSED)) == 0
    no_soa = _response(dns.rcode.NXDOMAIN)
    no_soa.authority = []
    assert cache_ttl(no_soa) == 0


def test_lru_bound() -> None:
    cache = ResponseCache(max_entries=2, clock=Clock())
    keys = [(dns.name.from_text(f"n{i}.test."), 1, 1) for i in range(3)]
    for k in keys:
        cache.put(k, _response())
    assert len(cache) == 2 and cache.get(keys[0]) is None and cache.get(keys[2]) is not None


def test_upstream_parsing(tmp_path) -> None:
    assert parse_upstream("none") is None
    assert parse_upstream("127.0.0.1:5300") == ("127.0.0.1", 5300)
    assert parse_upstream("192.0.2.1") == ("192.0.2.1", 53)
    assert parse_upstream("[::1]:5300") == ("::1", 5300)
    conf = tmp_path / "resolv.conf"
    conf.write_text("search a.b\n# x\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n")
    assert resolv_conf_upstream(str(conf)) == ("10.0.0.2", 53)
    assert resolv_conf_upstream(str(tmp_path / "missing")) is None
