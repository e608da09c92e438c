"""The proxy's model: API objects → service ports and endpoints, and endpoint selection."""

from __future__ import annotations

import pytest

from kubelab.proxy.model import (
    Endpoint,
    ProxyConfig,
    ServicePort,
    ServicePortName,
    build_state,
    categorize,
    merge_endpoints,
    node_internal_ips,
    service_ports,
    slice_endpoints,
)


def svc(spec: dict, name: str = "web", ns: str = "default") -> dict:
    return {"metadata": {"namespace": ns, "name": name}, "spec": spec}


def es(endpoints: list, ports: list, svc_name: str = "web", name: str = "web-1", ns: str = "default") -> dict:
    return {"metadata": {"namespace": ns, "name": name, "labels": {"kubernetes.io/service-name": svc_name}},
            "addressType": "IPv4", "endpoints": endpoints, "ports": ports}


def test_clusterip_service_ports_keep_names_protocols_and_defaults():
    ports = service_ports(svc({"clusterIP": "10.96.0.5", "ports": [
        {"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]}))
    assert [(p.port_name, p.protocol, p.port, p.node_port) for p in ports] == [
        ("http", "TCP", 80, 0), ("dns", "UDP", 53, 0)]
    assert ports[0].key == ServicePortName("default", "web", "http", "TCP")
    assert str(ports[0].key) == "default/web:http"
    assert not ports[0].session_affinity_client_ip and ports[0].affinity_timeout_seconds == 10800


@pytest.mark.parametrize("spec", [
    {"clusterIP": "None", "ports": [{"port": 80}]},  # headless
    {"type": "ExternalName", "externalName": "example.com", "clusterIP": "", "ports": [{"port": 80}]},
    {"ports": [{"port": 80}]},  # no ClusterIP allocated yet
    {"clusterIP": "fd00::1", "ports": [{"port": 80}]},  # IPv6: the lab is single-stack IPv4
])
def test_services_the_proxy_ignores(spec):
    assert service_ports(svc(spec)) == []


def test_nodeport_and_loadbalancer_get_node_ports_clusterip_does_not():
    for stype, want in (("NodePort", 30080), ("LoadBalancer", 30080), ("ClusterIP", 0)):
        [p] = service_ports(svc({"type": stype, "clusterIP": "10.96.0.5",
                                 "ports": [{"port": 80, "nodePort": 30080}]}))
        assert p.node_port == want


def test_traffic_policies_and_affinity_are_read():
    [p] = service_ports(svc({"type": "NodePort", "clusterIP": "10.96.0.5", "ports": [{"port": 80, "nodePort": 30001}],
                             "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Local",
                             "sessionAffinity": "ClientIP",
                             "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}))
    assert p.external_traffic_local and p.internal_traffic_local
    assert p.session_affinity_client_ip and p.affinity_timeout_seconds == 60
    assert p.uses_local_endpoints and not p.uses_cluster_endpoints


def test_slice_conditions_default_as_the_api_says():
    got = slice_endpoints(es([
        {"addresses": ["10.244.1.5"]},  # no conditions: ready (and so serving)
        {"addresses": ["10.244.1.6"], "conditions": {"ready": False, "serving": True, "terminating": True},
         "nodeName": "n1"},
        {"addresses": []},  # no address: skipped
    ], [{"name": "http", "port": 8080}]))
    key = ServicePortName("default", "web", "http", "TCP")
    assert got[key] == [Endpoint("10.244.1.5", 8080, True, True, False, None),
                        Endpoint("10.244.1.6", 8080, False, True, True, "n1")]


def test_slice_without_service_label_or_ipv6_is_ignored():
    plain = es([{"addresses": ["10.244.1.5"]}], [{"port": 80}])
    del plain["metadata"]["labels"]
    assert slice_endpoints(plain) == {}
    v6 = es([{"addresses": ["fd00::5"]}], [{"port": 80}])
    v6["addressType"] = "IPv6"
    assert slice_endpoints(v6) == {}


def test_endpoints_from_several_slices_are_merged_deduplicated_and_sorted():
    a = es([{"addresses": ["10.244.1.20"]}, {"addresses": ["10.244.1.3"]}], [{"port": 80}], name="a")
    b = es([{"addresses": ["10.244.1.3"]}, {"addresses": ["10.244.1.100"]}], [{"port": 80}], name="b")
    key = ServicePortName("default", "web", "", "TCP")
    assert [e.ip for e in merge_endpoints([a, b])[key]] == ["10.244.1.3", "10.244.1.20", "10.244.1.100"]
    assert merge_endpoints([a, b]) == merge_endpoints([b, a])  # order of slices does not matter


def test_build_state_drops_endpoints_of_unknown_services():
    st = build_state(services=[svc({"clusterIP": "10.96.0.5", "ports": [{"port": 80}]})],
                     slices=[es([{"addresses": ["10.244.1.3"]}], [{"port": 80}]),
                             es([{"addresses": ["10.244.1.4"]}], [{"port": 80}], svc_name="other", name="o")],
                     config=ProxyConfig())
    assert list(st.endpoints) == [ServicePortName("default", "web", "", "TCP")]


def test_node_internal_ips():
    node = {"status": {"addresses": [{"type": "Hostname", "address": "w1"},
                                     {"type": "InternalIP", "address": "192.168.56.11"},
                                     {"type": "InternalIP", "address": "fd00::11"}]}}
    assert node_internal_ips(node) == ("192.168.56.11",)
    assert node_internal_ips(None) == ()


SP = ServicePort("ns", "s", "", "TCP", "10.96.0.5", 80)
READY_HERE = Endpoint("10.244.1.2", 80, node_name="n1")
READY_THERE = Endpoint("10.244.2.2", 80, node_name="n2")
TERM_HERE = Endpoint("10.244.1.3", 80, ready=False, serving=True, terminating=True, node_name="n1")
TERM_THERE = Endpoint("10.244.2.3", 80, ready=False, serving=True, terminating=True, node_name="n2")
DEAD = Endpoint("10.244.1.4", 80, ready=False, serving=False, terminating=True, node_name="n1")


@pytest.mark.parametrize("sp,eps,cluster,local,has_any", [
    (SP, [READY_HERE, READY_THERE, TERM_HERE], [READY_HERE, READY_THERE], [], True),
    (SP, [TERM_HERE, DEAD], [TERM_HERE], [], True),  # no ready ones: fall back to serving-terminating
    (SP, [DEAD], [], [], False),
    (SP, [], [], [], False),
    (SP.__class__(**{**SP.__dict__, "internal_traffic_local": True}), [READY_HERE, READY_THERE], [], [READY_HERE], True),
    (SP.__class__(**{**SP.__dict__, "internal_traffic_local": True}), [READY_THERE], [], [], True),
    (SP.__class__(**{**SP.__dict__, "internal_traffic_local": True}), [READY_THERE, TERM_HERE], [], [TERM_HERE], True),
    (SP.__class__(**{**SP.__dict__, "node_port": 30001, "external_traffic_local": True}),
     [READY_HERE, READY_THERE], [READY_HERE, READY_THERE], [READY_HERE], True),
])
def test_categorize(sp, eps, cluster, local, has_any):
    got = categorize(sp, eps, "n1")
    assert list(got.cluster) == cluster
    assert list(got.local) == local
    assert got.has_any is has_any
    assert set(got.reachable) == set(cluster) | set(local)
