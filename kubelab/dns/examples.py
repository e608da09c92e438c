"""A small cluster's Services and EndpointSlices, and what DNS must answer for them.

One table serves three readers: the unit tests (records.answer), the integration tests
(the real server through `dig`), and students, who can read it as the schema by example
or serve it with `python -m kubelab.dns --objects <(python -m kubelab.dns.examples)`.
Modelled on CoreDNS's kubernetes plugin handler tests.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass


def _svc(name: str, ns: str, spec: dict, **meta: object) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, **meta}, "spec": spec}


def _slice(name: str, ns: str, svc: str, endpoints: list[dict], ports: list[dict],
           address_type: str = "IPv4") -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
            "addressType": address_type, "endpoints": endpoints, "ports": ports}


def _ep(ip: str, ready: bool | None = True, hostname: str | None = None) -> dict:
    ep: dict = {"addresses": [ip]}
    if ready is not None:
        ep["conditions"] = {"ready": ready}
    if hostname:
        ep["hostname"] = hostname
    return ep


def example_objects() -> list[dict]:
    """Namespaces, Services and EndpointSlices covering every record kind of the schema."""
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                  for n in ("default", "kube-system", "testns", "emptyns")]
    http = [{"name": "http", "port": 8080, "protocol": "TCP"}]
    return namespaces + [
        _svc("kubernetes", "default", {"clusterIP": "10.96.0.1", "ports": [
            {"name": "https", "port": 443, "protocol": "TCP"}]}),
        _svc("kube-dns", "kube-system", {"clusterIP": "10.96.0.10", "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            {"name": "metrics", "port": 9153, "protocol": "TCP"}]}),
        _svc("svc1", "testns", {"clusterIP": "10.96.0.100", "ports": [
            {"name": "http", "port": 80, "protocol": "TCP"},
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"port": 443, "protocol": "TCP"}]}),  # unnamed: no SRV
        _svc("svc6", "testns", {"clusterIP": "10.96.0.106", "clusterIPs": ["10.96.0.106", "fd00:10:96::6"],
                                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
        _svc("hdls1", "testns", {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]}),
        _slice("hdls1-v4", "testns", "hdls1", [
            _ep("10.244.1.5", hostname="web-0"),
            _ep("10.244.2.6"),
            _ep("10.244.2.7", ready=False),
            _ep("10.244.3.8", ready=None),  # no conditions: ready, per the EndpointSlice API
        ], http),
        _slice("hdls1-v6", "testns", "hdls1", [_ep("fd00:10:244::5")], http, "IPv6"),
        _svc("hdls-none", "testns", {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]}),
        _slice("hdls-none-1", "testns", "hdls-none", [_ep("10.244.1.9", ready=False)], http),
        _svc("hdls-publish", "testns", {"clusterIP": "None", "publishNotReadyAddresses": True}),
        _slice("hdls-publish-1", "testns", "hdls-publish", [_ep("10.244.1.10", ready=False)], []),
        _svc("external", "testns", {"type": "ExternalName", "externalName": "ext.example.test"}),
        _svc("ext-internal", "testns", {"type": "ExternalName",
                                        "externalName": "svc1.testns.svc.cluster.local"}),
    ]


SOA = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 0 7200 1800 86400 5"  # serial ignored
Z = "testns.svc.cluster.local."


@dataclass(frozen=True)
class Case:
    qname: str
    qtype: str
    rcode: str
    answer: tuple[str, ...] = ()
    authority: tuple[str, ...] = ()


CASES: tuple[Case, ...] = (
    # ClusterIP service: A, AAAA only when dual-stack, NODATA for other types
    Case(f"svc1.{Z}", "A", "NOERROR", (f"svc1.{Z} 5 IN A 10.96.0.100",)),
    Case("SVC1.TestNS.svc.Cluster.Local.", "A", "NOERROR", (f"svc1.{Z} 5 IN A 10.96.0.100",)),
    Case(f"svc1.{Z}", "AAAA", "NOERROR", (), (SOA,)),
    Case(f"svc1.{Z}", "TXT", "NOERROR", (), (SOA,)),
    Case(f"svc1.{Z}", "SOA", "NOERROR", (), (SOA,)),
    Case(f"svc6.{Z}", "A", "NOERROR", (f"svc6.{Z} 5 IN A 10.96.0.106",)),
    Case(f"svc6.{Z}", "AAAA", "NOERROR", (f"svc6.{Z} 5 IN AAAA fd00:10:96::6",)),
    Case("kubernetes.default.svc.cluster.local.", "A", "NOERROR",
         ("kubernetes.default.svc.cluster.local. 5 IN A 10.96.0.1",)),
    # SRV per named port; the protocol is part of the name
    Case(f"_http._tcp.svc1.{Z}", "SRV", "NOERROR", (f"_http._tcp.svc1.{Z} 5 IN SRV 0 100 80 svc1.{Z}",)),
    Case(f"_dns._udp.svc1.{Z}", "SRV", "NOERROR", (f"_dns._udp.svc1.{Z} 5 IN SRV 0 100 53 svc1.{Z}",)),
    Case(f"_HTTP._TCP.svc1.{Z}", "SRV", "NOERROR", (f"_http._tcp.svc1.{Z} 5 IN SRV 0 100 80 svc1.{Z}",)),
    Case(f"_http._udp.svc1.{Z}", "SRV", "NXDOMAIN", (), (SOA,)),
    Case(f"_https._tcp.svc1.{Z}", "SRV", "NXDOMAIN", (), (SOA,)),
    Case(f"_tcp.svc1.{Z}", "A", "NOERROR", (), (SOA,)),  # empty non-terminal
    Case("_dns._udp.kube-dns.kube-system.svc.cluster.local.", "SRV", "NOERROR",
         ("_dns._udp.kube-dns.kube-system.svc.cluster.local. 5 IN SRV 0 100 53 "
          "kube-dns.kube-system.svc.cluster.local.",)),
    # missing names: NXDOMAIN with the SOA; existing intermediate names: NODATA
    Case(f"svc0.{Z}", "A", "NXDOMAIN", (), (SOA,)),
    Case(f"svc0.{Z}", "AAAA", "NXDOMAIN", (), (SOA,)),
    Case("svc1.nonexistent.svc.cluster.local.", "A", "NXDOMAIN", (), (SOA,)),
    Case(f"bogus.svc1.{Z}", "A", "NXDOMAIN", (), (SOA,)),
    Case("foo.cluster.local.", "A", "NXDOMAIN", (), (SOA,)),
    Case(Z, "A", "NOERROR", (), (SOA,)),
    Case("emptyns.svc.cluster.local.", "A", "NOERROR", (), (SOA,)),
    Case("svc.cluster.local.", "A", "NOERROR", (), (SOA,)),
    Case("svc.cluster.local.", "NS", "NOERROR", (), (SOA,)),
    # the zone apex and the schema version
    Case("cluster.local.", "SOA", "NOERROR", (SOA,)),
    Case("cluster.local.", "NS", "NOERROR", ("cluster.local. 5 IN NS ns.dns.cluster.local.",)),
    Case("ns.dns.cluster.local.", "A", "NOERROR", ("ns.dns.cluster.local. 5 IN A 10.96.0.10",)),
    Case("dns-version.cluster.local.", "TXT", "NOERROR", ('dns-version.cluster.local. 28800 IN TXT "1.1.0"',)),
    # headless: one A per ready endpoint; a name per endpoint (hostname, else the IP id)
    Case(f"hdls1.{Z}", "A", "NOERROR", (f"hdls1.{Z} 5 IN A 10.244.1.5", f"hdls1.{Z} 5 IN A 10.244.2.6",
                                        f"hdls1.{Z} 5 IN A 10.244.3.8")),
    Case(f"hdls1.{Z}", "AAAA", "NOERROR", (f"hdls1.{Z} 5 IN AAAA fd00:10:244::5",)),
    Case(f"web-0.hdls1.{Z}", "A", "NOERROR", (f"web-0.hdls1.{Z} 5 IN A 10.244.1.5",)),
    Case(f"WEB-0.HDLS1.{Z}", "A", "NOERROR", (f"web-0.hdls1.{Z} 5 IN A 10.244.1.5",)),
    Case(f"10-244-2-6.hdls1.{Z}", "A", "NOERROR", (f"10-244-2-6.hdls1.{Z} 5 IN A 10.244.2.6",)),
    Case(f"10-244-2-7.hdls1.{Z}", "A", "NXDOMAIN", (), (SOA,)),  # not ready
    Case(f"fd00-10-244--5.hdls1.{Z}", "AAAA", "NOERROR", (f"fd00-10-244--5.hdls1.{Z} 5 IN AAAA fd00:10:244::5",)),
    Case(f"web-0.hdls1.{Z}", "AAAA", "NOERROR", (), (SOA,)),
    Case(f"_http._tcp.hdls1.{Z}", "SRV", "NOERROR", (
        f"_http._tcp.hdls1.{Z} 5 IN SRV 0 25 8080 10-244-2-6.hdls1.{Z}",
        f"_http._tcp.hdls1.{Z} 5 IN SRV 0 25 8080 10-244-3-8.hdls1.{Z}",
        f"_http._tcp.hdls1.{Z} 5 IN SRV 0 25 8080 fd00-10-244--5.hdls1.{Z}",
        f"_http._tcp.hdls1.{Z} 5 IN SRV 0 25 8080 web-0.hdls1.{Z}")),
    Case(f"hdls-none.{Z}", "A", "NXDOMAIN", (), (SOA,)),  # no ready endpoint
    Case(f"hdls-publish.{Z}", "A", "NOERROR", (f"hdls-publish.{Z} 5 IN A 10.244.1.10",)),
    # ExternalName: a CNAME, followed when it points into the zone
    Case(f"external.{Z}", "CNAME", "NOERROR", (f"external.{Z} 5 IN CNAME ext.example.test.",)),
    Case(f"external.{Z}", "A", "NOERROR", (f"external.{Z} 5 IN CNAME ext.example.test.",)),
    Case(f"ext-internal.{Z}", "A", "NOERROR", (f"ext-internal.{Z} 5 IN CNAME svc1.{Z}",
                                               f"svc1.{Z} 5 IN A 10.96.0.100")),
    Case(f"endpoint.external.{Z}", "CNAME", "NXDOMAIN", (), (SOA,)),
    # PTR: cluster IPs and ready headless endpoints
    Case("100.0.96.10.in-addr.arpa.", "PTR", "NOERROR", (f"100.0.96.10.in-addr.arpa. 5 IN PTR svc1.{Z}",)),
    Case("5.1.244.10.in-addr.arpa.", "PTR", "NOERROR", (f"5.1.244.10.in-addr.arpa. 5 IN PTR web-0.hdls1.{Z}",)),
    Case("6.2.244.10.in-addr.arpa.", "PTR", "NOERROR",
         (f"6.2.244.10.in-addr.arpa. 5 IN PTR 10-244-2-6.hdls1.{Z}",)),
    Case("6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.", "PTR", "NOERROR",
         (f"6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa. 5 IN PTR svc6.{Z}",)),
    # names we do not hold go upstream; with --upstream none they are REFUSED
    Case("7.2.244.10.in-addr.arpa.", "PTR", "REFUSED"),  # a not-ready endpoint has no PTR
    Case("example.com.", "A", "REFUSED"),
)


def normalize(line: str) -> str:
    """One RR as comparable text: single spaces, lower case, SOA serial dropped."""
    fields = line.split()
    if len(fields) >= 7 and fields[3].upper() == "SOA":
        del fields[6]
    return " ".join(fields).lower()


if __name__ == "__main__":  # print the objects as JSON, for --objects
    json.dump(example_objects(), sys.stdout, indent=1)
    sys.stdout.write("\n")
