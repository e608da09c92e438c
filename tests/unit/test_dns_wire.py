"""DnsCore without sockets: EDNS, truncation, malformed input, and fast path == slow path."""

from __future__ import annotations

import random

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from kubelab.dns import records
from kubelab.dns.examples import example_objects
from kubelab.dns.server import DnsCore, question_key


def _many_endpoints(n: int) -> list[dict]:
    return [
        {"kind": "Service", "metadata": {"name": "big", "namespace": "testns"}, "spec": {"clusterIP": "None"}},
        {"kind": "EndpointSlice", "metadata": {"name": "big-1", "namespace": "testns",
                                               "labels": {"kubernetes.io/service-name": "big"}},
         "addressType": "IPv4", "endpoints": [{"addresses": [f"10.244.{i // 250}.{i % 250 + 1}"]} for i in range(n)]},
    ]


@pytest.fixture()
def core() -> DnsCore:
    snap = records.build_snapshot(**records.objects_by_kind(example_objects() + _many_endpoints(100)))
    return DnsCore(snap)


def ask(core: DnsCore, q: dns.message.Message, **kw) -> dns.message.Message:
    out = core.slow(q.to_wire(), **kw)
    assert isinstance(out, bytes)
    return dns.message.from_wire(out)


def test_answer_is_authoritative_and_echoes_id_and_rd(core: DnsCore) -> None:
    q = dns.message.make_query("svc1.testns.svc.cluster.local.", "A")
    r = ask(core, q)
    assert r.id == q.id and r.flags & dns.flags.AA and r.flags & dns.flags.RD
    assert r.answer[0][0].to_text() == "10.96.0.100"
    assert r.edns == -1  # no EDNS asked, none given


def test_edns_is_answered_with_our_payload(core: DnsCore) -> None:
    r = ask(core, dns.message.make_query("svc1.testns.svc.cluster.local.", "A", use_edns=0, payload=4096))
    assert r.edns == 0 and r.payload == 1232


def test_edns_version_1_gets_badvers(core: DnsCore) -> None:
    r = ask(core, dns.message.make_query("svc1.testns.svc.cluster.local.", "A", use_edns=1))
    assert r.rcode() == dns.rcode.BADVERS


def test_udp_truncation_respects_client_buffer(core: DnsCore) -> None:
    name = "big.testns.svc.cluster.local."
    plain = ask(core, dns.message.make_query(name, "A"))
    assert plain.flags & dns.flags.TC and not plain.answer
    big = ask(core, dns.message.make_query(name, "A", use_edns=0, payload=4096))
    assert not big.flags & dns.flags.TC and len(big.answer[0]) == 100
    tcp = ask(core, dns.message.make_query(name, "A"), proto="tcp", max_size=65535)
    assert not tcp.flags & dns.flags.TC and len(tcp.answer[0]) == 100


def test_fast_path_never_answers_truncation_it_should_not(core: DnsCore) -> None:
    q = dns.message.make_query("big.testns.svc.cluster.local.", "A", use_edns=0, payload=4096)
    assert isinstance(core.slow(q.to_wire()), bytes)
    assert core.fast(q.to_wire()) is not None  # stored, fits 4096
    small = dns.message.make_query("big.testns.svc.cluster.local.", "A", use_edns=0, payload=512)
    assert core.fast(small.to_wire()) is None  # too big for this client: slow path truncates


def test_out_of_zone_without_upstream_is_refused(core: DnsCore) -> None:
    r = ask(core, dns.message.make_query("example.com.", "A"))
    assert r.rcode() == dns.rcode.REFUSED and not r.flags & dns.flags.AA


def test_other_opcodes_and_classes(core: DnsCore) -> None:
    q = dns.message.make_query("svc1.testns.svc.cluster.local.", "A")
    q.set_opcode(dns.opcode.NOTIFY)
    assert ask(core, q).rcode() == dns.rcode.NOTIMP
    assert ask(core, dns.message.make_query("svc1.testns.svc.cluster.local.", "A", "CH")).rcode() == dns.rcode.REFUSED
    assert ask(core, dns.message.make_query("cluster.local.", "AXFR")).rcode() == dns.rcode.REFUSED


def test_malformed_gets_formerr_or_drop(core: DnsCore) -> None:
    assert core.slow(b"\x12") is None  # no header: drop
    out = core.slow(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05abc")  # truncated name
    assert isinstance(out, bytes) and out[:2] == b"\x12\x34"
    assert dns.message.from_wire(out).rcode() == dns.rcode.FORMERR
    loop = b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"  # pointer to itself
    assert dns.message.from_wire(core.slow(loop)).rcode() == dns.rcode.FORMERR
    response = dns.message.make_response(dns.message.make_query("svc1.testns.svc.cluster.local.", "A"))
    assert core.slow(response.to_wire()) is None  # never answer an answer


def test_question_key_is_case_insensitive_and_edns_aware() -> None:
    a = dns.message.make_query("Svc1.TESTNS.svc.cluster.local.", "A").to_wire()
    b = dns.message.make_query("svc1.testns.svc.cluster.local.", "A").to_wire()
    c = dns.message.make_query("svc1.testns.svc.cluster.local.", "A", use_edns=0, payload=1400).to_wire()
    ka, kb, kc = question_key(a), question_key(b), question_key(c)
    assert ka and kb and kc
    assert ka[0] == kb[0] and kb[0] != kc[0]
    assert kb[2] == 512 and kc[2] == 1400
    cookie = dns.message.make_query("svc1.testns.svc.cluster.local.", "A", use_edns=0,
                                    options=[dns.edns.CookieOption(b"12345678", b"")]).to_wire()
    assert question_key(cookie) is not None
    nsid = dns.message.make_query("svc1.testns.svc.cluster.local.", "A", use_edns=0,
                                  options=[dns.edns.GenericOption(3, b"")]).to_wire()
    assert question_key(nsid) is None  # other options: slow path


def test_fast_path_patches_id_rd_and_spelling(core: DnsCore) -> None:
    first = dns.message.make_query("svc1.testns.svc.cluster.local.", "A")
    core.slow(first.to_wire())
    again = dns.message.make_query("SVC1.testns.svc.CLUSTER.local.", "A")
    again.flags &= ~dns.flags.RD
    fast = core.fast(again.to_wire())
    assert fast is not None
    r = dns.message.from_wire(fast)
    assert r.id == again.id and not r.flags & dns.flags.RD
    assert r.question[0].name.to_text() == "SVC1.testns.svc.CLUSTER.local."
    assert r.answer[0][0].to_text() == "10.96.0.100"
    assert fast == core.slow(again.to_wire())  # byte for byte what the slow path says
    assert core.metrics.fast_hits == 1


def test_new_snapshot_drops_stored_answers(core: DnsCore) -> None:
    q = dns.message.make_query("svc1.testns.svc.cluster.local.", "A").to_wire()
    core.slow(q)
    assert core.fast(q) is not None
    core.set_snapshot(records.build_snapshot(services=[]))
    fast = core.fast(q)  # not the stored answer: the new zone's NXDOMAIN, from the wire
    assert fast == core.slow(q)
    assert dns.message.from_wire(fast).rcode() == dns.rcode.NXDOMAIN


def test_nxdomain_from_the_wire_equals_the_slow_path(core: DnsCore) -> None:
    """Never-seen names the zone lacks are answered without parsing, byte for byte as the slow path."""
    names = ["example.com.testns.svc.cluster.local.", "www.Example.COM.svc.cluster.local.", "x.cluster.local.",
             "a.dns.cluster.local.", "q.ns.dns.cluster.local.", "hostmaster.cluster.local.",
             "deep." * 40 + "cluster.local."]
    for name in names:
        for qtype in ("A", "AAAA", "SRV", "MX"):
            for edns in (-1, 0):
                q = dns.message.make_query(name, qtype, use_edns=edns)
                if qtype == "MX":
                    q.flags &= ~dns.flags.RD  # RD is echoed either way
                wire = q.to_wire()
                fast = core.fast(wire)
                assert fast is not None, (name, qtype)
                assert fast == core.slow(wire), (name, qtype, edns)
    before = dict(core.metrics.requests)
    core.fast(dns.message.make_query("never.seen.svc.cluster.local.", "A").to_wire())
    assert core.metrics.requests[("udp", "A", "NXDOMAIN")] == before.get(("udp", "A", "NXDOMAIN"), 0) + 1


def test_nxdomain_from_the_wire_leaves_everything_else_to_the_other_paths(core: DnsCore) -> None:
    for name, qtype in [("svc1.testns.svc.cluster.local.", "A"),  # exists
                        ("svc.cluster.local.", "A"),  # empty non-terminal: NODATA, not NXDOMAIN
                        ("testns.svc.cluster.local.", "TXT"),
                        ("cluster.local.", "A"),  # the apex
                        ("xcluster.local.", "A"),  # not on a label boundary: not ours
                        ("example.com.", "A"),  # outside the zone
                        ("nope.cluster.local.", "AXFR")]:
        assert core.fast(dns.message.make_query(name, qtype).to_wire()) is None, name
    q = dns.message.make_query("nope.cluster.local.", "A", rdclass="CH").to_wire()
    assert core.fast(q) is None


def test_nxdomain_from_the_wire_keeps_pod_names_and_ra() -> None:
    snap = records.build_snapshot(**records.objects_by_kind(example_objects()), pod_records=True)
    core = DnsCore(snap)
    q = dns.message.make_query("10-244-1-5.testns.pod.cluster.local.", "A").to_wire()
    assert core.fast(q) is None  # pod names are synthesised: the slow path decides
    assert dns.message.from_wire(core.slow(q)).rcode() == dns.rcode.NOERROR

    class NoUpstream:  # RA follows whether a forwarder exists; it is never asked here
        pass

    core = DnsCore(snap, forwarder=NoUpstream())  # type: ignore[arg-type]
    q = dns.message.make_query("nope.svc.cluster.local.", "A").to_wire()
    fast = core.fast(q)
    assert fast is not None and fast == core.slow(q)
    assert dns.message.from_wire(fast).flags & dns.flags.RA


def _mutations(seed_packets: list[bytes], rng: random.Random, n: int):
    for _ in range(n):
        p = bytearray(rng.choice(seed_packets))
        op = rng.randrange(6)
        if op == 0 and len(p) > 1:
            del p[rng.randrange(len(p)):]  # truncate
        elif op == 1:
            for _ in range(rng.randint(1, 4)):
                p[rng.randrange(len(p))] = rng.randrange(256)  # flip bytes
        elif op == 2:
            p[12 + rng.randrange(min(20, len(p) - 12))] = rng.choice((63, 64, 0xC0, 0xFF, 0))  # label lengths
        elif op == 3:
            p += bytes(rng.randrange(256) for _ in range(rng.randint(1, 30)))  # trailing junk
        elif op == 4:
            p = bytearray(rng.randbytes(rng.randint(0, 80)))
        else:
            p[rng.randrange(2, 12)] = rng.randrange(256)  # header fields
        yield bytes(p)


def test_fuzz_fast_path_agrees_with_slow_path(core: DnsCore) -> None:
    """Whatever the fast path answers, the slow path answers identically; nothing raises."""
    rng = random.Random(6)
    names = ["svc1.testns.svc.cluster.local.", "hdls1.testns.svc.cluster.local.", "nope.cluster.local.",
             "_http._tcp.svc1.testns.svc.cluster.local.", "example.com.", "cluster.local."]
    seeds = []
    for name in names:
        for qtype in ("A", "AAAA", "SRV", "TXT"):
            for edns in (-1, 0):
                seeds.append(dns.message.make_query(name, qtype, use_edns=edns).to_wire())
    for s in seeds:  # warm the store so mutations can hit it
        core.slow(s)
    fast_hits = 0
    for packet in _mutations(seeds, rng, 20000):
        fast = core.fast(packet)
        slow = core.slow(packet)
        if fast is not None:
            fast_hits += 1
            assert fast == slow, packet
    assert fast_hits > 500  # the fuzz really exercised the fast path


def test_before_the_first_snapshot_cluster_names_are_servfail() -> None:
    core = DnsCore(zone="cluster.local")
    r = ask(core, dns.message.make_query("svc1.testns.svc.cluster.local.", "A"))
    assert r.rcode() == dns.rcode.SERVFAIL
    assert ask(core, dns.message.make_query("example.com.", "A")).rcode() == dns.rcode.REFUSED


def test_metrics_text_has_one_type_line_per_family() -> None:
    from kubelab.dns.status import Metrics

    m = Metrics()
    m.count("udp", "A", "NOERROR")
    m.observe(0.0002)
    m.extra = lambda: {'kubelab_dns_cache_hits_total{cache="forward"}': 3}
    text = m.render()
    assert text.count("# TYPE kubelab_dns_cache_hits_total counter") == 1
    assert 'kubelab_dns_cache_hits_total{cache="forward"} 3.0' in text
    assert 'kubelab_dns_cache_hits_total{cache="answers"} 0.0' in text
    assert ('coredns_dns_requests_total{family="1",proto="udp",server="dns://:53",type="A",view="",zone="."} 1.0'
            in text)
    assert 'coredns_dns_responses_total{plugin="",rcode="NOERROR",server="dns://:53",view="",zone="."} 1.0' in text
    assert ('coredns_dns_request_duration_seconds_bucket{le="0.00025",server="dns://:53",view="",zone="."} 1.0'
            in text)
    assert 'coredns_dns_request_duration_seconds_count{server="dns://:53",view="",zone="."} 1.0' in text


def test_exact_repeat_is_answered_with_the_new_id_and_dropped_with_the_zone(core: DnsCore) -> None:
    q = dns.message.make_query("svc1.testns.svc.cluster.local.", "A")
    core.slow(q.to_wire())
    first = core.fast(q.to_wire())
    assert first is not None and core._exact
    q.id = (q.id + 1) % 65536
    again = core.fast(q.to_wire())
    assert again == core.slow(q.to_wire()) and again[:2] == q.id.to_bytes(2, "big")
    core.set_snapshot(records.build_snapshot(services=[]))
    gone = core.fast(q.to_wire())
    assert dns.message.from_wire(gone).rcode() == dns.rcode.NXDOMAIN  # the new zone, not the stored answer
