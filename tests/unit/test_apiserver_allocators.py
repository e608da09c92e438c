"""ClusterIP/NodePort choice (the reservation itself is an etcd transaction, tested in integration)."""

import ipaddress
import random

import pytest

from kubelab.apiserver import allocators as a


def test_random_ip_avoids_static_band_and_taken():
    rng = random.Random(1)
    cidr = ipaddress.ip_network("10.96.0.0/28")  # 16 addresses: band 16 -> falls back inside
    taken = {str(ip) for ip in list(cidr.hosts())[:-1]}
    assert a.random_cluster_ip(taken, cidr, rng) == str(list(cidr.hosts())[-1])
    big = a.SERVICE_CIDR
    for _ in range(50):
        ip = ipaddress.ip_address(a.random_cluster_ip(set(), big, rng))
        assert int(ip) - int(big.network_address) >= a.static_band(big.num_addresses)


def test_range_full():
    cidr = ipaddress.ip_network("10.96.0.0/30")
    with pytest.raises(a.RangeError, match="range is full"):
        a.random_cluster_ip({"10.96.0.1", "10.96.0.2"}, cidr)


@pytest.mark.parametrize("ip,ok", [("10.96.0.10", True), ("10.111.255.254", True), ("10.96.0.0", False),
                                   ("10.112.0.1", False), ("nonsense", False)])
def test_check_cluster_ip(ip, ok):
    if ok:
        a.check_cluster_ip(ip)
    else:
        with pytest.raises(a.RangeError):
            a.check_cluster_ip(ip)


def test_node_ports():
    assert a.random_node_port(set(range(30000, 32767))) == 32767
    with pytest.raises(a.RangeError):
        a.check_node_port(80)
    with pytest.raises(a.RangeError):
        a.random_node_port(set(range(30000, 32768)))


def test_service_reservations():
    svc = {"spec": {"clusterIP": "10.96.0.10", "ports": [{"nodePort": 30080, "protocol": "UDP"}, {"port": 1}]}}
    assert a.service_reservations(svc) == {"/registry/ranges/serviceips/10.96.0.10",
                                           "/registry/ranges/servicenodeports/udp/30080"}
    assert a.service_reservations({"spec": {"clusterIP": "None"}}) == set()
