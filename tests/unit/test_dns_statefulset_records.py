"""Per-pod DNS of a StatefulSet, end to end through the pure parts: the controller's pod
(hostname = pod name, subdomain = serviceName) → the EndpointSlice controller's endpoint
(hostname published only when the subdomain is the Service) → the DNS zone, and the name a
pod's resolver tries for `web-0.web` (its search path). A table, as test_dns_records.py."""

from __future__ import annotations

from dataclasses import dataclass

import dns.rcode
import dns.rdatatype
import pytest

from kubelab.controllers.endpointslice import pod_to_endpoint
from kubelab.controllers.statefulset import pod_for
from kubelab.dns import records
from kubelab.nodeagent.sandbox import DnsSettings, hosts_file, resolv_conf

NS = "shop"


def _sts(name: str, service: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": NS, "uid": "u"},
            "spec": {"serviceName": service, "template": {"metadata": {"labels": {"app": name}},
                                                          "spec": {"containers": [{"name": "c", "image": "i"}]}}}}


def _running(pod: dict, ip: str, ready: bool = True) -> dict:
    pod["status"] = {"podIP": ip, "phase": "Running",
                     "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    return pod


def _service(name: str, *, headless: bool = True, publish: bool = False) -> dict:
    spec = {"clusterIP": "None" if headless else "10.96.0.50", "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}], "publishNotReadyAddresses": publish}
    if not headless:
        spec["clusterIPs"] = ["10.96.0.50"]
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS}, "spec": spec}


def _slice(service: dict, pods: list[dict]) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"{service['metadata']['name']}-x", "namespace": NS,
                         "labels": {records.SERVICE_NAME_LABEL: service["metadata"]["name"]}},
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            "endpoints": [pod_to_endpoint(p, service) for p in pods]}


def _zone(service: dict, pods: list[dict]) -> records.Snapshot:
    return records.build_snapshot(services=[service], endpointslices=[_slice(service, pods)], namespaces=[NS])


WEB = _sts("web", "web")
PODS = [_running(pod_for(WEB, 0), "10.244.1.10"), _running(pod_for(WEB, 1), "10.244.2.11"),
        _running(pod_for(WEB, 2), "10.244.1.12", ready=False)]


@dataclass(frozen=True)
class Case:
    what: str
    service: dict
    qname: str
    qtype: str
    rcode: str
    answer: frozenset[str]


CASES = [
    Case("a pod by its stable name", _service("web"), "web-0.web.shop.svc.cluster.local.", "A", "NOERROR",
         frozenset({"10.244.1.10"})),
    Case("another ordinal", _service("web"), "web-1.web.shop.svc.cluster.local.", "A", "NOERROR",
         frozenset({"10.244.2.11"})),
    Case("an unready pod has no record", _service("web"), "web-2.web.shop.svc.cluster.local.", "A", "NXDOMAIN",
         frozenset()),
    Case("... unless the Service publishes not-ready addresses", _service("web", publish=True),
         "web-2.web.shop.svc.cluster.local.", "A", "NOERROR", frozenset({"10.244.1.12"})),
    Case("the headless name lists the ready pods", _service("web"), "web.shop.svc.cluster.local.", "A", "NOERROR",
         frozenset({"10.244.1.10", "10.244.2.11"})),
    Case("SRV targets are the stable names", _service("web"), "_http._tcp.web.shop.svc.cluster.local.", "SRV",
         "NOERROR", frozenset({"0 50 80 web-0.web.shop.svc.cluster.local.",
                               "0 50 80 web-1.web.shop.svc.cluster.local."})),
    Case("PTR points back at the stable name", _service("web"), "10.1.244.10.in-addr.arpa.", "PTR", "NOERROR",
         frozenset({"web-0.web.shop.svc.cluster.local."})),
    Case("a Service that is not the pods' subdomain publishes no hostname", _service("other"),
         "web-0.other.shop.svc.cluster.local.", "A", "NXDOMAIN", frozenset()),
    Case("... its endpoints get the address-derived name", _service("other"),
         "10-244-1-10.other.shop.svc.cluster.local.", "A", "NOERROR", frozenset({"10.244.1.10"})),
    Case("a ClusterIP Service has no per-pod names", _service("web", headless=False),
         "web-0.web.shop.svc.cluster.local.", "A", "NXDOMAIN", frozenset()),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.what)
def test_statefulset_pod_records(case: Case) -> None:
    rcode, answer, _ = records.answer(_zone(case.service, PODS), case.qname, dns.rdatatype.from_text(case.qtype))
    assert dns.rcode.to_text(rcode) == case.rcode
    assert {rd.to_text() for rrset in answer for rd in rrset} == set(case.answer)


def test_short_name_resolves_through_the_search_path() -> None:
    """`web-0.web` from a pod of the same namespace: the first search suffix completes it
    (ndots:5, so the resolver tries the suffixes before the bare name)."""
    client = {"metadata": {"name": "client", "namespace": NS}, "spec": {}}
    conf = resolv_conf(client, DnsSettings(), "")
    search = next(line.split()[1:] for line in conf.splitlines() if line.startswith("search"))
    assert "options ndots:5" in conf and search[0] == f"{NS}.svc.cluster.local"
    zone = _zone(_service("web"), PODS)
    tried = [f"web-0.web.{s}." for s in search]
    first = next(q for q in tried if records.answer(zone, q, dns.rdatatype.A)[0] == dns.rcode.NOERROR)
    assert first == "web-0.web.shop.svc.cluster.local."
    # from another namespace the short name does not resolve (the first suffix is theirs)
    other = resolv_conf({"metadata": {"name": "c", "namespace": "elsewhere"}, "spec": {}}, DnsSettings(), "")
    search = next(line.split()[1:] for line in other.splitlines() if line.startswith("search"))
    assert all(records.answer(zone, f"web-0.web.{s}.", dns.rdatatype.A)[0] == dns.rcode.NXDOMAIN for s in search)


def test_the_pod_knows_its_own_fqdn() -> None:
    """/etc/hosts carries the pod's FQDN and its hostname, as the kubelet writes it."""
    hosts = hosts_file(PODS[0], "10.244.1.10", "cluster.local")
    assert "10.244.1.10\tweb-0.web.shop.svc.cluster.local\tweb-0" in hosts.splitlines()
