"""records.build_snapshot + records.answer against the schema-by-example table."""

from __future__ import annotations

import copy

import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from kubelab.dns import records
from kubelab.dns.examples import CASES, SOA, Case, example_objects, normalize


def _lines(rrsets) -> set[str]:
    return {normalize(line) for rrset in rrsets for line in rrset.to_text().splitlines()}


@pytest.fixture(scope="module")
def snap() -> records.Snapshot:
    return records.build_snapshot(**records.objects_by_kind(example_objects()), serial=42)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.qname}/{c.qtype}")
def test_answer_table(snap: records.Snapshot, case: Case) -> None:
    rcode, answer, authority = records.answer(snap, case.qname, dns.rdatatype.from_text(case.qtype))
    assert dns.rcode.to_text(rcode) == case.rcode
    assert _lines(answer) == {normalize(x) for x in case.answer}
    assert _lines(authority) == {normalize(x) for x in case.authority}


def test_cname_comes_before_its_target(snap: records.Snapshot) -> None:
    _, answer, _ = records.answer(snap, "ext-internal.testns.svc.cluster.local.", dns.rdatatype.A)
    assert [r.rdtype for r in answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]


def test_soa_carries_serial_and_coredns_timers(snap: records.Snapshot) -> None:
    (soa,) = snap.soa
    assert (soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum) == (42, 7200, 1800, 86400, 5)
    assert snap.soa.ttl == 5


def test_srv_additional_holds_target_addresses(snap: records.Snapshot) -> None:
    _, answer, _ = records.answer(snap, "_http._tcp.hdls1.testns.svc.cluster.local.", dns.rdatatype.SRV)
    extra = _lines(records.additional(snap, answer))
    assert "web-0.hdls1.testns.svc.cluster.local. 5 in a 10.244.1.5" in extra
    assert "fd00-10-244--5.hdls1.testns.svc.cluster.local. 5 in aaaa fd00:10:244::5" in extra


def test_endpoint_turning_not_ready_leaves_every_record() -> None:
    objs = example_objects()
    before = records.build_snapshot(**records.objects_by_kind(objs))
    changed = copy.deepcopy(objs)
    for o in changed:
        if o["kind"] == "EndpointSlice" and o["metadata"]["name"] == "hdls1-v4":
            o["endpoints"][0]["conditions"]["ready"] = False  # web-0
    after = records.build_snapshot(**records.objects_by_kind(changed))
    name = "web-0.hdls1.testns.svc.cluster.local."
    assert records.answer(before, name, dns.rdatatype.A)[0] == dns.rcode.NOERROR
    assert records.answer(after, name, dns.rdatatype.A)[0] == dns.rcode.NXDOMAIN
    _, a, _ = records.answer(after, "hdls1.testns.svc.cluster.local.", dns.rdatatype.A)
    assert "10.244.1.5" not in {rd.to_text() for rrset in a for rd in rrset}
    assert not records.in_zone(after, dns.name.from_text("5.1.244.10.in-addr.arpa."))


def test_deleted_service_is_nxdomain_but_namespace_stays() -> None:
    objs = [o for o in example_objects() if o["metadata"]["name"] != "svc1"]
    snap = records.build_snapshot(**records.objects_by_kind(objs))
    assert records.answer(snap, "svc1.testns.svc.cluster.local.", dns.rdatatype.A)[0] == dns.rcode.NXDOMAIN
    assert records.answer(snap, "testns.svc.cluster.local.", dns.rdatatype.A)[0] == dns.rcode.NOERROR


def test_namespace_without_objects_only_exists_when_listed() -> None:
    kinds = records.objects_by_kind(example_objects())
    kinds["namespaces"] = [n for n in kinds["namespaces"] if n["metadata"]["name"] != "emptyns"]
    snap = records.build_snapshot(**kinds)
    assert records.answer(snap, "emptyns.svc.cluster.local.", dns.rdatatype.A)[0] == dns.rcode.NXDOMAIN


def test_pod_records_behind_flag() -> None:
    kinds = records.objects_by_kind(example_objects())
    off = records.build_snapshot(**kinds)
    on = records.build_snapshot(**kinds, pod_records=True)
    name = "10-244-1-5.testns.pod.cluster.local."
    assert records.answer(off, name, dns.rdatatype.A)[0] == dns.rcode.NXDOMAIN
    rcode, answer, _ = records.answer(on, name, dns.rdatatype.A)
    assert rcode == dns.rcode.NOERROR and _lines(answer) == {f"{name} 5 in a 10.244.1.5"}
    assert records.answer(on, "10-244-1-5.nons.pod.cluster.local.", dns.rdatatype.A)[0] == dns.rcode.NXDOMAIN
    assert records.answer(on, "not-an-ip.testns.pod.cluster.local.", dns.rdatatype.A)[0] == dns.rcode.NXDOMAIN
    assert records.answer(on, "testns.pod.cluster.local.", dns.rdatatype.A)[:2] == (dns.rcode.NOERROR, [])


def test_other_zone_name() -> None:
    snap = records.build_snapshot(**records.objects_by_kind(example_objects()), zone="Corp.Example")
    _, answer, _ = records.answer(snap, "svc1.testns.svc.corp.example.", dns.rdatatype.A)
    assert _lines(answer) == {"svc1.testns.svc.corp.example. 5 in a 10.96.0.100"}
    assert records.answer(snap, "svc1.testns.svc.cluster.local.", dns.rdatatype.A)[0] == dns.rcode.REFUSED


def test_bad_objects_are_skipped_not_fatal() -> None:
    objs = example_objects() + [
        {"kind": "Service", "metadata": {"name": "x" * 70, "namespace": "testns"}, "spec": {"clusterIP": "10.96.0.7"}},
        {"kind": "Service", "metadata": {"name": "badip", "namespace": "testns"}, "spec": {"clusterIP": "300.1.1.1"}},
        {"kind": "Service", "metadata": {"namespace": "testns"}, "spec": {}},
        {"kind": "EndpointSlice", "metadata": {"name": "e", "namespace": "testns",
                                               "labels": {"kubernetes.io/service-name": "hdls1"}},
         "addressType": "FQDN", "endpoints": [{"addresses": ["example.com"]}]},
    ]
    snap = records.build_snapshot(**records.objects_by_kind(objs))
    assert records.answer(snap, "svc1.testns.svc.cluster.local.", dns.rdatatype.A)[0] == dns.rcode.NOERROR
    assert records.answer(snap, "badip.testns.svc.cluster.local.", dns.rdatatype.A)[0] == dns.rcode.NXDOMAIN


def test_snapshot_is_immutable(snap: records.Snapshot) -> None:
    with pytest.raises(TypeError):
        snap.records[dns.name.from_text("x.cluster.local.")] = {}  # type: ignore[index]
    assert SOA.startswith("cluster.local.")
