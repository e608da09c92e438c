"""Whole-ruleset comparisons for both renderers, table-driven like upstream's proxier tests.

Each case is a set of Service and EndpointSlice objects (as the API serves them); the test
renders the complete transaction and compares it to the expected text line for line. Chain
hashes are upstream's, e.g. `service-ULMVA6XW-ns1/svc1/tcp/p80`, `KUBE-SVC-XPGD46QRK7WJZT7O`.
Conventions (as upstream's tests): pods 10.0.0.0/8, ClusterIPs 172.30.0.0/16, this node
`node1` at 192.168.0.2.
"""

from __future__ import annotations

import pytest

from kubelab.proxy import iptables, nftables
from kubelab.proxy.model import Endpoint, ProxyConfig, ServicePortName, build_state

CFG = ProxyConfig(node_name="node1", node_ips=("192.168.0.2",), cluster_cidr="10.0.0.0/8",
                  service_cidr="172.30.0.0/16")


def svc(name, cluster_ip, ports, *, ns="ns1", type_="ClusterIP", **spec):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": ns, "name": name},
            "spec": {"type": type_, "clusterIP": cluster_ip, "ports": ports, **spec}}


def port(name, port, protocol="TCP", node_port=None):
    p = {"name": name, "port": port, "protocol": protocol}
    if node_port:
        p["nodePort"] = node_port
    return p


def slice_(svc_name, endpoints, ports, *, ns="ns1", name=None):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"namespace": ns, "name": name or f"{svc_name}-abc",
                         "labels": {"kubernetes.io/service-name": svc_name}},
            "endpoints": endpoints, "ports": ports}


def ep(ip, node="node1", ready=True, serving=None, terminating=None):
    cond = {"ready": ready}
    if serving is not None:
        cond["serving"] = serving
    if terminating is not None:
        cond["terminating"] = terminating
    return {"addresses": [ip], "nodeName": node, "conditions": cond}


def eport(name, port, protocol="TCP"):
    return {"name": name, "port": port, "protocol": protocol}


P80 = [port("p80", 80)]
EP80 = [eport("p80", 80)]


CASES = {
    "clusterip-1-endpoint": (
        [svc("svc1", "172.30.0.41", P80)],
        [slice_("svc1", [ep("10.180.0.1")], EP80)]),
    "clusterip-3-endpoints": (
        [svc("svc1", "172.30.0.41", P80)],
        [slice_("svc1", [ep("10.180.0.3"), ep("10.180.0.1"), ep("10.180.0.2", node="node2")], EP80)]),
    "no-endpoints-reject": (
        [svc("svc6", "172.30.0.46", [port("p80", 80, node_port=3001)], type_="NodePort")],
        []),
    "nodeport": (
        [svc("svc3", "172.30.0.43", [port("p80", 80, node_port=3003)], type_="NodePort")],
        [slice_("svc3", [ep("10.180.0.3")], EP80)]),
    "named-ports": (
        [svc("svc2", "172.30.0.42", [port("http", 80), port("https", 443)])],
        [slice_("svc2", [ep("10.180.0.1")], [eport("http", 8080), eport("https", 8443)])]),
    "udp": (
        [svc("dns", "172.30.0.10", [port("dns", 53, "UDP"), port("dns-tcp", 53, "TCP")], ns="kube-system")],
        [slice_("dns", [ep("10.180.0.7")], [eport("dns", 53, "UDP"), eport("dns-tcp", 53, "TCP")], ns="kube-system")]),
    "session-affinity": (
        [svc("svc5", "172.30.0.45", P80, sessionAffinity="ClientIP",
             sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}})],
        [slice_("svc5", [ep("10.180.0.3"), ep("10.180.0.4")], EP80)]),
    "external-traffic-policy-local": (
        [svc("svc2", "172.30.0.42", [port("p80", 80, node_port=3001)], type_="LoadBalancer",
             externalTrafficPolicy="Local")],
        [slice_("svc2", [ep("10.180.0.2"), ep("10.180.1.2", node="node2")], EP80)]),
    "external-traffic-policy-local-none-here": (
        [svc("svc2", "172.30.0.42", [port("p80", 80, node_port=3001)], type_="NodePort",
             externalTrafficPolicy="Local")],
        [slice_("svc2", [ep("10.180.1.2", node="node2")], EP80)]),
    "internal-traffic-policy-local": (
        [svc("svc4", "172.30.0.44", P80, internalTrafficPolicy="Local"),
         svc("svc7", "172.30.0.47", P80, internalTrafficPolicy="Local")],
        [slice_("svc4", [ep("10.180.0.4"), ep("10.180.1.4", node="node2")], EP80),
         slice_("svc7", [ep("10.180.1.7", node="node2")], EP80)]),
    "terminating-endpoints": (
        [svc("svc8", "172.30.0.48", P80), svc("svc9", "172.30.0.49", P80)],
        [slice_("svc8", [ep("10.180.0.8"), ep("10.180.0.9", ready=False, serving=True, terminating=True)], EP80),
         slice_("svc9", [ep("10.180.0.10", ready=False, serving=True, terminating=True),
                         ep("10.180.0.11", ready=False, serving=False, terminating=True)], EP80)]),
    # upstream's ns5/svc5 case: LB IP 5.6.7.8 open only to loadBalancerSourceRanges 203.0.113.0/25
    "loadbalancer-source-ranges": (
        [{**svc("svc5", "172.30.0.45", [port("p80", 80, node_port=3002)], ns="ns5", type_="LoadBalancer",
                loadBalancerSourceRanges=["203.0.113.0/25"]),
          "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8", "ipMode": "VIP"}]}}}],
        [slice_("svc5", [ep("10.180.0.3")], EP80, ns="ns5")]),
    "loadbalancer-local": (
        [{**svc("svc2", "172.30.0.42", [port("p80", 80, node_port=3001)], type_="LoadBalancer",
                externalTrafficPolicy="Local"),
          "status": {"loadBalancer": {"ingress": [{"ip": "192.168.0.200"}]}}}],
        [slice_("svc2", [ep("10.180.0.2"), ep("10.180.1.2", node="node2")], EP80)]),
    "headless-and-externalname-ignored": (
        [svc("headless", "None", P80), svc("ext", "", [], type_="ExternalName", externalName="example.com")],
        [slice_("headless", [ep("10.180.0.1")], EP80)]),
}


NFT_RESET = """\
add table ip kube-proxy
delete table ip kube-proxy
"""

NFT_BASE = """\
add table ip kube-proxy { comment "rules for kube-proxy" ; }

add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }

add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }

add chain ip kube-proxy cluster-ips-check
add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; }
add chain ip kube-proxy filter-input { type filter hook input priority 0 ; }
add chain ip kube-proxy filter-output { type filter hook output priority 0 ; }
add chain ip kube-proxy filter-output-pre-dnat { type filter hook output priority -110 ; }
add chain ip kube-proxy filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }
add chain ip kube-proxy firewall-check
add chain ip kube-proxy mark-for-masquerade
add chain ip kube-proxy masquerading
add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip kube-proxy nodeport-endpoints-check
add chain ip kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
add chain ip kube-proxy services
add chain ip kube-proxy service-endpoints-check

add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
add rule ip kube-proxy cluster-ips-check ip daddr { 172.30.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"
add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
add rule ip kube-proxy filter-input ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output ct state new jump cluster-ips-check
add rule ip kube-proxy filter-output-pre-dnat ct state new jump firewall-check
add rule ip kube-proxy filter-prerouting-pre-dnat ct state new jump firewall-check
add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
add rule ip kube-proxy masquerading mark and 0x4000 == 0 return
add rule ip kube-proxy masquerading mark set mark xor 0x4000
add rule ip kube-proxy masquerading masquerade fully-random
add rule ip kube-proxy nat-output jump services
add rule ip kube-proxy nat-postrouting jump masquerading
add rule ip kube-proxy nat-prerouting jump services
add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
add rule ip kube-proxy reject-chain reject
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
add element ip kube-proxy nodeport-ips { 192.168.0.2 }
"""

NFT_EXPECTED = {
    "clusterip-1-endpoint": """\

# ns1/svc1:p80
add element ip kube-proxy cluster-ips { 172.30.0.41 }
add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
add chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 ip saddr 10.180.0.1 jump mark-for-masquerade
add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80
add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
""",
    "clusterip-3-endpoints": """\

# ns1/svc1:p80
add element ip kube-proxy cluster-ips { 172.30.0.41 }
add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
add chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
add chain ip kube-proxy endpoint-2ZNDXFAB-ns1/svc1/tcp/p80__10.180.0.2/80
add chain ip kube-proxy endpoint-WUHIZN2H-ns1/svc1/tcp/p80__10.180.0.3/80
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 3 0 goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 2 0 goto endpoint-2ZNDXFAB-ns1/svc1/tcp/p80__10.180.0.2/80
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 goto endpoint-WUHIZN2H-ns1/svc1/tcp/p80__10.180.0.3/80
add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 ip saddr 10.180.0.1 jump mark-for-masquerade
add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80
add rule ip kube-proxy endpoint-2ZNDXFAB-ns1/svc1/tcp/p80__10.180.0.2/80 ip saddr 10.180.0.2 jump mark-for-masquerade
add rule ip kube-proxy endpoint-2ZNDXFAB-ns1/svc1/tcp/p80__10.180.0.2/80 meta l4proto tcp dnat to 10.180.0.2:80
add rule ip kube-proxy endpoint-WUHIZN2H-ns1/svc1/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
add rule ip kube-proxy endpoint-WUHIZN2H-ns1/svc1/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80
add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
""",
    "no-endpoints-reject": """\

# ns1/svc6:p80
add element ip kube-proxy cluster-ips { 172.30.0.46 }
add element ip kube-proxy no-endpoint-services { 172.30.0.46 . tcp . 80 comment "ns1/svc6:p80" : goto reject-chain }
add element ip kube-proxy no-endpoint-nodeports { tcp . 3001 comment "ns1/svc6:p80" : goto reject-chain }
""",
    "nodeport": """\

# ns1/svc3:p80
add element ip kube-proxy cluster-ips { 172.30.0.43 }
add chain ip kube-proxy service-WP5PG6SI-ns1/svc3/tcp/p80
add chain ip kube-proxy external-WP5PG6SI-ns1/svc3/tcp/p80
add chain ip kube-proxy endpoint-VCXGADND-ns1/svc3/tcp/p80__10.180.0.3/80
add rule ip kube-proxy service-WP5PG6SI-ns1/svc3/tcp/p80 ip daddr 172.30.0.43 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-WP5PG6SI-ns1/svc3/tcp/p80 goto endpoint-VCXGADND-ns1/svc3/tcp/p80__10.180.0.3/80
add rule ip kube-proxy external-WP5PG6SI-ns1/svc3/tcp/p80 jump mark-for-masquerade
add rule ip kube-proxy external-WP5PG6SI-ns1/svc3/tcp/p80 goto service-WP5PG6SI-ns1/svc3/tcp/p80
add rule ip kube-proxy endpoint-VCXGADND-ns1/svc3/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
add rule ip kube-proxy endpoint-VCXGADND-ns1/svc3/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80
add element ip kube-proxy service-ips { 172.30.0.43 . tcp . 80 : goto service-WP5PG6SI-ns1/svc3/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 3003 : goto external-WP5PG6SI-ns1/svc3/tcp/p80 }
""",
    "named-ports": """\

# ns1/svc2:http
add element ip kube-proxy cluster-ips { 172.30.0.42 }
add chain ip kube-proxy service-RHGUFKZQ-ns1/svc2/tcp/http
add chain ip kube-proxy endpoint-KADRJ6PI-ns1/svc2/tcp/http__10.180.0.1/8080
add rule ip kube-proxy service-RHGUFKZQ-ns1/svc2/tcp/http ip daddr 172.30.0.42 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-RHGUFKZQ-ns1/svc2/tcp/http goto endpoint-KADRJ6PI-ns1/svc2/tcp/http__10.180.0.1/8080
add rule ip kube-proxy endpoint-KADRJ6PI-ns1/svc2/tcp/http__10.180.0.1/8080 ip saddr 10.180.0.1 jump mark-for-masquerade
add rule ip kube-proxy endpoint-KADRJ6PI-ns1/svc2/tcp/http__10.180.0.1/8080 meta l4proto tcp dnat to 10.180.0.1:8080
add element ip kube-proxy service-ips { 172.30.0.42 . tcp . 80 : goto service-RHGUFKZQ-ns1/svc2/tcp/http }

# ns1/svc2:https
add chain ip kube-proxy service-RPUSMXTQ-ns1/svc2/tcp/https
add chain ip kube-proxy endpoint-5LFBVDOC-ns1/svc2/tcp/https__10.180.0.1/8443
add rule ip kube-proxy service-RPUSMXTQ-ns1/svc2/tcp/https ip daddr 172.30.0.42 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-RPUSMXTQ-ns1/svc2/tcp/https goto endpoint-5LFBVDOC-ns1/svc2/tcp/https__10.180.0.1/8443
add rule ip kube-proxy endpoint-5LFBVDOC-ns1/svc2/tcp/https__10.180.0.1/8443 ip saddr 10.180.0.1 jump mark-for-masquerade
add rule ip kube-proxy endpoint-5LFBVDOC-ns1/svc2/tcp/https__10.180.0.1/8443 meta l4proto tcp dnat to 10.180.0.1:8443
add element ip kube-proxy service-ips { 172.30.0.42 . tcp . 443 : goto service-RPUSMXTQ-ns1/svc2/tcp/https }
""",
    "udp": """\

# kube-system/dns:dns
add element ip kube-proxy cluster-ips { 172.30.0.10 }
add chain ip kube-proxy service-2YY5BS5C-kube-system/dns/udp/dns
add chain ip kube-proxy endpoint-RXE566EX-kube-system/dns/udp/dns__10.180.0.7/53
add rule ip kube-proxy service-2YY5BS5C-kube-system/dns/udp/dns ip daddr 172.30.0.10 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-2YY5BS5C-kube-system/dns/udp/dns goto endpoint-RXE566EX-kube-system/dns/udp/dns__10.180.0.7/53
add rule ip kube-proxy endpoint-RXE566EX-kube-system/dns/udp/dns__10.180.0.7/53 ip saddr 10.180.0.7 jump mark-for-masquerade
add rule ip kube-proxy endpoint-RXE566EX-kube-system/dns/udp/dns__10.180.0.7/53 meta l4proto udp dnat to 10.180.0.7:53
add element ip kube-proxy service-ips { 172.30.0.10 . udp . 53 : goto service-2YY5BS5C-kube-system/dns/udp/dns }

# kube-system/dns:dns-tcp
add chain ip kube-proxy service-PXHAI4EJ-kube-system/dns/tcp/dns-tcp
add chain ip kube-proxy endpoint-EYKFK3SS-kube-system/dns/tcp/dns-tcp__10.180.0.7/53
add rule ip kube-proxy service-PXHAI4EJ-kube-system/dns/tcp/dns-tcp ip daddr 172.30.0.10 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-PXHAI4EJ-kube-system/dns/tcp/dns-tcp goto endpoint-EYKFK3SS-kube-system/dns/tcp/dns-tcp__10.180.0.7/53
add rule ip kube-proxy endpoint-EYKFK3SS-kube-system/dns/tcp/dns-tcp__10.180.0.7/53 ip saddr 10.180.0.7 jump mark-for-masquerade
add rule ip kube-proxy endpoint-EYKFK3SS-kube-system/dns/tcp/dns-tcp__10.180.0.7/53 meta l4proto tcp dnat to 10.180.0.7:53
add element ip kube-proxy service-ips { 172.30.0.10 . tcp . 53 : goto service-PXHAI4EJ-kube-system/dns/tcp/dns-tcp }
""",
    "session-affinity": """\

# ns1/svc5:p80
add element ip kube-proxy cluster-ips { 172.30.0.45 }
add set ip kube-proxy affinity-TIZPXWTK-ns1/svc5/tcp/p80__10.180.0.3/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 600s ; }
add set ip kube-proxy affinity-7BF3MAFA-ns1/svc5/tcp/p80__10.180.0.4/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 600s ; }
add chain ip kube-proxy service-ZJ5FP4N2-ns1/svc5/tcp/p80
add chain ip kube-proxy endpoint-TIZPXWTK-ns1/svc5/tcp/p80__10.180.0.3/80
add chain ip kube-proxy endpoint-7BF3MAFA-ns1/svc5/tcp/p80__10.180.0.4/80
add rule ip kube-proxy service-ZJ5FP4N2-ns1/svc5/tcp/p80 ip daddr 172.30.0.45 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-ZJ5FP4N2-ns1/svc5/tcp/p80 ip saddr @affinity-TIZPXWTK-ns1/svc5/tcp/p80__10.180.0.3/80 goto endpoint-TIZPXWTK-ns1/svc5/tcp/p80__10.180.0.3/80
add rule ip kube-proxy service-ZJ5FP4N2-ns1/svc5/tcp/p80 ip saddr @affinity-7BF3MAFA-ns1/svc5/tcp/p80__10.180.0.4/80 goto endpoint-7BF3MAFA-ns1/svc5/tcp/p80__10.180.0.4/80
add rule ip kube-proxy service-ZJ5FP4N2-ns1/svc5/tcp/p80 numgen random mod 2 0 goto endpoint-TIZPXWTK-ns1/svc5/tcp/p80__10.180.0.3/80
add rule ip kube-proxy service-ZJ5FP4N2-ns1/svc5/tcp/p80 goto endpoint-7BF3MAFA-ns1/svc5/tcp/p80__10.180.0.4/80
add rule ip kube-proxy endpoint-TIZPXWTK-ns1/svc5/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
add rule ip kube-proxy endpoint-TIZPXWTK-ns1/svc5/tcp/p80__10.180.0.3/80 update @affinity-TIZPXWTK-ns1/svc5/tcp/p80__10.180.0.3/80 { ip saddr }
add rule ip kube-proxy endpoint-TIZPXWTK-ns1/svc5/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80
add rule ip kube-proxy endpoint-7BF3MAFA-ns1/svc5/tcp/p80__10.180.0.4/80 ip saddr 10.180.0.4 jump mark-for-masquerade
add rule ip kube-proxy endpoint-7BF3MAFA-ns1/svc5/tcp/p80__10.180.0.4/80 update @affinity-7BF3MAFA-ns1/svc5/tcp/p80__10.180.0.4/80 { ip saddr }
add rule ip kube-proxy endpoint-7BF3MAFA-ns1/svc5/tcp/p80__10.180.0.4/80 meta l4proto tcp dnat to 10.180.0.4:80
add element ip kube-proxy service-ips { 172.30.0.45 . tcp . 80 : goto service-ZJ5FP4N2-ns1/svc5/tcp/p80 }
""",
    "external-traffic-policy-local": """\

# ns1/svc2:p80
add element ip kube-proxy cluster-ips { 172.30.0.42 }
add chain ip kube-proxy service-QCIBCZ4I-ns1/svc2/tcp/p80
add chain ip kube-proxy local-QCIBCZ4I-ns1/svc2/tcp/p80
add chain ip kube-proxy external-QCIBCZ4I-ns1/svc2/tcp/p80
add chain ip kube-proxy endpoint-C2BCGEH2-ns1/svc2/tcp/p80__10.180.0.2/80
add chain ip kube-proxy endpoint-3X3Y6QM2-ns1/svc2/tcp/p80__10.180.1.2/80
add rule ip kube-proxy service-QCIBCZ4I-ns1/svc2/tcp/p80 ip daddr 172.30.0.42 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-QCIBCZ4I-ns1/svc2/tcp/p80 numgen random mod 2 0 goto endpoint-C2BCGEH2-ns1/svc2/tcp/p80__10.180.0.2/80
add rule ip kube-proxy service-QCIBCZ4I-ns1/svc2/tcp/p80 goto endpoint-3X3Y6QM2-ns1/svc2/tcp/p80__10.180.1.2/80
add rule ip kube-proxy local-QCIBCZ4I-ns1/svc2/tcp/p80 goto endpoint-C2BCGEH2-ns1/svc2/tcp/p80__10.180.0.2/80
add rule ip kube-proxy external-QCIBCZ4I-ns1/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto service-QCIBCZ4I-ns1/svc2/tcp/p80 comment "short-circuit pod traffic"
add rule ip kube-proxy external-QCIBCZ4I-ns1/svc2/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
add rule ip kube-proxy external-QCIBCZ4I-ns1/svc2/tcp/p80 fib saddr type local goto service-QCIBCZ4I-ns1/svc2/tcp/p80 comment "short-circuit local traffic"
add rule ip kube-proxy external-QCIBCZ4I-ns1/svc2/tcp/p80 goto local-QCIBCZ4I-ns1/svc2/tcp/p80
add rule ip kube-proxy endpoint-C2BCGEH2-ns1/svc2/tcp/p80__10.180.0.2/80 ip saddr 10.180.0.2 jump mark-for-masquerade
add rule ip kube-proxy endpoint-C2BCGEH2-ns1/svc2/tcp/p80__10.180.0.2/80 meta l4proto tcp dnat to 10.180.0.2:80
add rule ip kube-proxy endpoint-3X3Y6QM2-ns1/svc2/tcp/p80__10.180.1.2/80 ip saddr 10.180.1.2 jump mark-for-masquerade
add rule ip kube-proxy endpoint-3X3Y6QM2-ns1/svc2/tcp/p80__10.180.1.2/80 meta l4proto tcp dnat to 10.180.1.2:80
add element ip kube-proxy service-ips { 172.30.0.42 . tcp . 80 : goto service-QCIBCZ4I-ns1/svc2/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 3001 : goto external-QCIBCZ4I-ns1/svc2/tcp/p80 }
""",
    "external-traffic-policy-local-none-here": """\

# ns1/svc2:p80
add element ip kube-proxy cluster-ips { 172.30.0.42 }
add chain ip kube-proxy service-QCIBCZ4I-ns1/svc2/tcp/p80
add chain ip kube-proxy external-QCIBCZ4I-ns1/svc2/tcp/p80
add chain ip kube-proxy endpoint-3X3Y6QM2-ns1/svc2/tcp/p80__10.180.1.2/80
add rule ip kube-proxy service-QCIBCZ4I-ns1/svc2/tcp/p80 ip daddr 172.30.0.42 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-QCIBCZ4I-ns1/svc2/tcp/p80 goto endpoint-3X3Y6QM2-ns1/svc2/tcp/p80__10.180.1.2/80
add rule ip kube-proxy external-QCIBCZ4I-ns1/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto service-QCIBCZ4I-ns1/svc2/tcp/p80 comment "short-circuit pod traffic"
add rule ip kube-proxy external-QCIBCZ4I-ns1/svc2/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
add rule ip kube-proxy external-QCIBCZ4I-ns1/svc2/tcp/p80 fib saddr type local goto service-QCIBCZ4I-ns1/svc2/tcp/p80 comment "short-circuit local traffic"
add rule ip kube-proxy endpoint-3X3Y6QM2-ns1/svc2/tcp/p80__10.180.1.2/80 ip saddr 10.180.1.2 jump mark-for-masquerade
add rule ip kube-proxy endpoint-3X3Y6QM2-ns1/svc2/tcp/p80__10.180.1.2/80 meta l4proto tcp dnat to 10.180.1.2:80
add element ip kube-proxy service-ips { 172.30.0.42 . tcp . 80 : goto service-QCIBCZ4I-ns1/svc2/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 3001 : goto external-QCIBCZ4I-ns1/svc2/tcp/p80 }
add element ip kube-proxy no-endpoint-nodeports { tcp . 3001 comment "ns1/svc2:p80" : drop }
""",
    "internal-traffic-policy-local": """\

# ns1/svc4:p80
add element ip kube-proxy cluster-ips { 172.30.0.44 }
add chain ip kube-proxy local-F4TB4HDV-ns1/svc4/tcp/p80
add chain ip kube-proxy endpoint-JZVXGQMM-ns1/svc4/tcp/p80__10.180.0.4/80
add rule ip kube-proxy local-F4TB4HDV-ns1/svc4/tcp/p80 ip daddr 172.30.0.44 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy local-F4TB4HDV-ns1/svc4/tcp/p80 goto endpoint-JZVXGQMM-ns1/svc4/tcp/p80__10.180.0.4/80
add rule ip kube-proxy endpoint-JZVXGQMM-ns1/svc4/tcp/p80__10.180.0.4/80 ip saddr 10.180.0.4 jump mark-for-masquerade
add rule ip kube-proxy endpoint-JZVXGQMM-ns1/svc4/tcp/p80__10.180.0.4/80 meta l4proto tcp dnat to 10.180.0.4:80
add element ip kube-proxy service-ips { 172.30.0.44 . tcp . 80 : goto local-F4TB4HDV-ns1/svc4/tcp/p80 }

# ns1/svc7:p80
add element ip kube-proxy cluster-ips { 172.30.0.47 }
add element ip kube-proxy no-endpoint-services { 172.30.0.47 . tcp . 80 comment "ns1/svc7:p80" : drop }
""",
    "terminating-endpoints": """\

# ns1/svc8:p80
add element ip kube-proxy cluster-ips { 172.30.0.48 }
add chain ip kube-proxy service-WBUBATLE-ns1/svc8/tcp/p80
add chain ip kube-proxy endpoint-A2R37H3D-ns1/svc8/tcp/p80__10.180.0.8/80
add rule ip kube-proxy service-WBUBATLE-ns1/svc8/tcp/p80 ip daddr 172.30.0.48 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-WBUBATLE-ns1/svc8/tcp/p80 goto endpoint-A2R37H3D-ns1/svc8/tcp/p80__10.180.0.8/80
add rule ip kube-proxy endpoint-A2R37H3D-ns1/svc8/tcp/p80__10.180.0.8/80 ip saddr 10.180.0.8 jump mark-for-masquerade
add rule ip kube-proxy endpoint-A2R37H3D-ns1/svc8/tcp/p80__10.180.0.8/80 meta l4proto tcp dnat to 10.180.0.8:80
add element ip kube-proxy service-ips { 172.30.0.48 . tcp . 80 : goto service-WBUBATLE-ns1/svc8/tcp/p80 }

# ns1/svc9:p80
add element ip kube-proxy cluster-ips { 172.30.0.49 }
add chain ip kube-proxy service-B7L4NXCL-ns1/svc9/tcp/p80
add chain ip kube-proxy endpoint-DEHIX7LG-ns1/svc9/tcp/p80__10.180.0.10/80
add rule ip kube-proxy service-B7L4NXCL-ns1/svc9/tcp/p80 ip daddr 172.30.0.49 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-B7L4NXCL-ns1/svc9/tcp/p80 goto endpoint-DEHIX7LG-ns1/svc9/tcp/p80__10.180.0.10/80
add rule ip kube-proxy endpoint-DEHIX7LG-ns1/svc9/tcp/p80__10.180.0.10/80 ip saddr 10.180.0.10 jump mark-for-masquerade
add rule ip kube-proxy endpoint-DEHIX7LG-ns1/svc9/tcp/p80__10.180.0.10/80 meta l4proto tcp dnat to 10.180.0.10:80
add element ip kube-proxy service-ips { 172.30.0.49 . tcp . 80 : goto service-B7L4NXCL-ns1/svc9/tcp/p80 }
""",
    "loadbalancer-source-ranges": """\

# ns5/svc5:p80
add element ip kube-proxy cluster-ips { 172.30.0.45 }
add chain ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80
add chain ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80
add chain ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80
add chain ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
add rule ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr != { 203.0.113.0/25 } drop
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip daddr 172.30.0.45 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 jump mark-for-masquerade
add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 goto service-HVFWP5L3-ns5/svc5/tcp/p80
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80
add element ip kube-proxy service-ips { 172.30.0.45 . tcp . 80 : goto service-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kube-proxy service-ips { 5.6.7.8 . tcp . 80 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kube-proxy firewall-ips { 5.6.7.8 . tcp . 80 comment "ns5/svc5:p80" : goto firewall-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 3002 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
""",
    "loadbalancer-local": """\

# ns1/svc2:p80
add element ip kube-proxy cluster-ips { 172.30.0.42 }
add chain ip kube-proxy service-QCIBCZ4I-ns1/svc2/tcp/p80
add chain ip kube-proxy local-QCIBCZ4I-ns1/svc2/tcp/p80
add chain ip kube-proxy external-QCIBCZ4I-ns1/svc2/tcp/p80
add chain ip kube-proxy endpoint-C2BCGEH2-ns1/svc2/tcp/p80__10.180.0.2/80
add chain ip kube-proxy endpoint-3X3Y6QM2-ns1/svc2/tcp/p80__10.180.1.2/80
add rule ip kube-proxy service-QCIBCZ4I-ns1/svc2/tcp/p80 ip daddr 172.30.0.42 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-QCIBCZ4I-ns1/svc2/tcp/p80 numgen random mod 2 0 goto endpoint-C2BCGEH2-ns1/svc2/tcp/p80__10.180.0.2/80
add rule ip kube-proxy service-QCIBCZ4I-ns1/svc2/tcp/p80 goto endpoint-3X3Y6QM2-ns1/svc2/tcp/p80__10.180.1.2/80
add rule ip kube-proxy local-QCIBCZ4I-ns1/svc2/tcp/p80 goto endpoint-C2BCGEH2-ns1/svc2/tcp/p80__10.180.0.2/80
add rule ip kube-proxy external-QCIBCZ4I-ns1/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto service-QCIBCZ4I-ns1/svc2/tcp/p80 comment "short-circuit pod traffic"
add rule ip kube-proxy external-QCIBCZ4I-ns1/svc2/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
add rule ip kube-proxy external-QCIBCZ4I-ns1/svc2/tcp/p80 fib saddr type local goto service-QCIBCZ4I-ns1/svc2/tcp/p80 comment "short-circuit local traffic"
add rule ip kube-proxy external-QCIBCZ4I-ns1/svc2/tcp/p80 goto local-QCIBCZ4I-ns1/svc2/tcp/p80
add rule ip kube-proxy endpoint-C2BCGEH2-ns1/svc2/tcp/p80__10.180.0.2/80 ip saddr 10.180.0.2 jump mark-for-masquerade
add rule ip kube-proxy endpoint-C2BCGEH2-ns1/svc2/tcp/p80__10.180.0.2/80 meta l4proto tcp dnat to 10.180.0.2:80
add rule ip kube-proxy endpoint-3X3Y6QM2-ns1/svc2/tcp/p80__10.180.1.2/80 ip saddr 10.180.1.2 jump mark-for-masquerade
add rule ip kube-proxy endpoint-3X3Y6QM2-ns1/svc2/tcp/p80__10.180.1.2/80 meta l4proto tcp dnat to 10.180.1.2:80
add element ip kube-proxy service-ips { 172.30.0.42 . tcp . 80 : goto service-QCIBCZ4I-ns1/svc2/tcp/p80 }
add element ip kube-proxy service-ips { 192.168.0.200 . tcp . 80 : goto external-QCIBCZ4I-ns1/svc2/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 3001 : goto external-QCIBCZ4I-ns1/svc2/tcp/p80 }
""",
    "headless-and-externalname-ignored": """\
""",
}

IPT_EXPECTED = {
    "clusterip-1-endpoint": """\
*filter
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
COMMIT
*nat
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
:KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS
COMMIT
""",
    "clusterip-3-endpoints": """\
*filter
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
COMMIT
*nat
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
:KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
:KUBE-SEP-LXVODXWDISEETFEF - [0:0]
:KUBE-SEP-ICDUIKC33SFI6ZPR - [0:0]
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-SXIVWICOYRO3J4NJ
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-LXVODXWDISEETFEF
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.3:80" -j KUBE-SEP-ICDUIKC33SFI6ZPR
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
-A KUBE-SEP-LXVODXWDISEETFEF -m comment --comment ns1/svc1:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-LXVODXWDISEETFEF -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
-A KUBE-SEP-ICDUIKC33SFI6ZPR -m comment --comment ns1/svc1:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-ICDUIKC33SFI6ZPR -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS
COMMIT
""",
    "no-endpoints-reject": """\
*filter
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
-A KUBE-SERVICES -m comment --comment "ns1/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT
-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc6:p80 has no endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j REJECT
COMMIT
*nat
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS
COMMIT
""",
    "nodeport": """\
*filter
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
COMMIT
*nat
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-S2BCUQRGOEMMWFLE - [0:0]
:KUBE-EXT-S2BCUQRGOEMMWFLE - [0:0]
:KUBE-SEP-T74ISCBKVOPLLDTA - [0:0]
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -m comment --comment "ns1/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-S2BCUQRGOEMMWFLE
-A KUBE-NODEPORTS -m comment --comment ns1/svc3:p80 -m tcp -p tcp --dport 3003 -j KUBE-EXT-S2BCUQRGOEMMWFLE
-A KUBE-SVC-S2BCUQRGOEMMWFLE -m comment --comment "ns1/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-EXT-S2BCUQRGOEMMWFLE -m comment --comment "masquerade traffic for ns1/svc3:p80 external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-S2BCUQRGOEMMWFLE -j KUBE-SVC-S2BCUQRGOEMMWFLE
-A KUBE-SVC-S2BCUQRGOEMMWFLE -m comment --comment "ns1/svc3:p80 -> 10.180.0.3:80" -j KUBE-SEP-T74ISCBKVOPLLDTA
-A KUBE-SEP-T74ISCBKVOPLLDTA -m comment --comment ns1/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-T74ISCBKVOPLLDTA -m comment --comment ns1/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS
COMMIT
""",
    "named-ports": """\
*filter
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
COMMIT
*nat
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-Q6V5AMLK4Z4OJ5FU - [0:0]
:KUBE-SEP-EOIF4CV5RWQCLLLY - [0:0]
:KUBE-SVC-NMRGDCCLLARS5G52 - [0:0]
:KUBE-SEP-W7LD6XXTZWYXO2LS - [0:0]
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -m comment --comment "ns1/svc2:http cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-Q6V5AMLK4Z4OJ5FU
-A KUBE-SVC-Q6V5AMLK4Z4OJ5FU -m comment --comment "ns1/svc2:http cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-Q6V5AMLK4Z4OJ5FU -m comment --comment "ns1/svc2:http -> 10.180.0.1:8080" -j KUBE-SEP-EOIF4CV5RWQCLLLY
-A KUBE-SEP-EOIF4CV5RWQCLLLY -m comment --comment ns1/svc2:http -s 10.180.0.1 -j KUBE-MARK-MASQ
-A KUBE-SEP-EOIF4CV5RWQCLLLY -m comment --comment ns1/svc2:http -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:8080
-A KUBE-SERVICES -m comment --comment "ns1/svc2:https cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 443 -j KUBE-SVC-NMRGDCCLLARS5G52
-A KUBE-SVC-NMRGDCCLLARS5G52 -m comment --comment "ns1/svc2:https cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 443 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-NMRGDCCLLARS5G52 -m comment --comment "ns1/svc2:https -> 10.180.0.1:8443" -j KUBE-SEP-W7LD6XXTZWYXO2LS
-A KUBE-SEP-W7LD6XXTZWYXO2LS -m comment --comment ns1/svc2:https -s 10.180.0.1 -j KUBE-MARK-MASQ
-A KUBE-SEP-W7LD6XXTZWYXO2LS -m comment --comment ns1/svc2:https -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:8443
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS
COMMIT
""",
    "udp": """\
*filter
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
COMMIT
*nat
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-2KKYJRIGYGQNRODB - [0:0]
:KUBE-SEP-XZDK64UQATMM2IJW - [0:0]
:KUBE-SVC-3RVWGMRXZPMMAFG6 - [0:0]
:KUBE-SEP-XVM74GLYE75J54JF - [0:0]
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -m comment --comment "kube-system/dns:dns cluster IP" -m udp -p udp -d 172.30.0.10 --dport 53 -j KUBE-SVC-2KKYJRIGYGQNRODB
-A KUBE-SVC-2KKYJRIGYGQNRODB -m comment --comment "kube-system/dns:dns cluster IP" -m udp -p udp -d 172.30.0.10 --dport 53 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-2KKYJRIGYGQNRODB -m comment --comment "kube-system/dns:dns -> 10.180.0.7:53" -j KUBE-SEP-XZDK64UQATMM2IJW
-A KUBE-SEP-XZDK64UQATMM2IJW -m comment --comment kube-system/dns:dns -s 10.180.0.7 -j KUBE-MARK-MASQ
-A KUBE-SEP-XZDK64UQATMM2IJW -m comment --comment kube-system/dns:dns -m udp -p udp -j DNAT --to-destination 10.180.0.7:53
-A KUBE-SERVICES -m comment --comment "kube-system/dns:dns-tcp cluster IP" -m tcp -p tcp -d 172.30.0.10 --dport 53 -j KUBE-SVC-3RVWGMRXZPMMAFG6
-A KUBE-SVC-3RVWGMRXZPMMAFG6 -m comment --comment "kube-system/dns:dns-tcp cluster IP" -m tcp -p tcp -d 172.30.0.10 --dport 53 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-3RVWGMRXZPMMAFG6 -m comment --comment "kube-system/dns:dns-tcp -> 10.180.0.7:53" -j KUBE-SEP-XVM74GLYE75J54JF
-A KUBE-SEP-XVM74GLYE75J54JF -m comment --comment kube-system/dns:dns-tcp -s 10.180.0.7 -j KUBE-MARK-MASQ
-A KUBE-SEP-XVM74GLYE75J54JF -m comment --comment kube-system/dns:dns-tcp -m tcp -p tcp -j DNAT --to-destination 10.180.0.7:53
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS
COMMIT
""",
    "session-affinity": """\
*filter
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
COMMIT
*nat
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-7NLCIPNPQQ6RDVMZ - [0:0]
:KUBE-SEP-GWHCHK4KHZ6KW2QO - [0:0]
:KUBE-SEP-6ORZEAHSVOPCD3Z3 - [0:0]
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -m comment --comment "ns1/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 -j KUBE-SVC-7NLCIPNPQQ6RDVMZ
-A KUBE-SVC-7NLCIPNPQQ6RDVMZ -m comment --comment "ns1/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-7NLCIPNPQQ6RDVMZ -m comment --comment "ns1/svc5:p80 -> 10.180.0.3:80" -m recent --name KUBE-SEP-GWHCHK4KHZ6KW2QO --rcheck --seconds 600 --reap -j KUBE-SEP-GWHCHK4KHZ6KW2QO
-A KUBE-SVC-7NLCIPNPQQ6RDVMZ -m comment --comment "ns1/svc5:p80 -> 10.180.0.4:80" -m recent --name KUBE-SEP-6ORZEAHSVOPCD3Z3 --rcheck --seconds 600 --reap -j KUBE-SEP-6ORZEAHSVOPCD3Z3
-A KUBE-SVC-7NLCIPNPQQ6RDVMZ -m comment --comment "ns1/svc5:p80 -> 10.180.0.3:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-GWHCHK4KHZ6KW2QO
-A KUBE-SVC-7NLCIPNPQQ6RDVMZ -m comment --comment "ns1/svc5:p80 -> 10.180.0.4:80" -j KUBE-SEP-6ORZEAHSVOPCD3Z3
-A KUBE-SEP-GWHCHK4KHZ6KW2QO -m comment --comment ns1/svc5:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-GWHCHK4KHZ6KW2QO -m comment --comment ns1/svc5:p80 -m recent --name KUBE-SEP-GWHCHK4KHZ6KW2QO --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
-A KUBE-SEP-6ORZEAHSVOPCD3Z3 -m comment --comment ns1/svc5:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ
-A KUBE-SEP-6ORZEAHSVOPCD3Z3 -m comment --comment ns1/svc5:p80 -m recent --name KUBE-SEP-6ORZEAHSVOPCD3Z3 --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS
COMMIT
""",
    "external-traffic-policy-local": """\
*filter
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
COMMIT
*nat
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-IP2NFBUX2EWVD722 - [0:0]
:KUBE-SVL-IP2NFBUX2EWVD722 - [0:0]
:KUBE-EXT-IP2NFBUX2EWVD722 - [0:0]
:KUBE-SEP-F4BZC55XMT23ZGEP - [0:0]
:KUBE-SEP-E7NLDKXCGO4627DD - [0:0]
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -m comment --comment "ns1/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-IP2NFBUX2EWVD722
-A KUBE-NODEPORTS -m comment --comment ns1/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-IP2NFBUX2EWVD722
-A KUBE-SVC-IP2NFBUX2EWVD722 -m comment --comment "ns1/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-EXT-IP2NFBUX2EWVD722 -m comment --comment "pod traffic for ns1/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-IP2NFBUX2EWVD722
-A KUBE-EXT-IP2NFBUX2EWVD722 -m comment --comment "masquerade LOCAL traffic for ns1/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
-A KUBE-EXT-IP2NFBUX2EWVD722 -m comment --comment "route LOCAL traffic for ns1/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-IP2NFBUX2EWVD722
-A KUBE-EXT-IP2NFBUX2EWVD722 -j KUBE-SVL-IP2NFBUX2EWVD722
-A KUBE-SVC-IP2NFBUX2EWVD722 -m comment --comment "ns1/svc2:p80 -> 10.180.0.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-F4BZC55XMT23ZGEP
-A KUBE-SVC-IP2NFBUX2EWVD722 -m comment --comment "ns1/svc2:p80 -> 10.180.1.2:80" -j KUBE-SEP-E7NLDKXCGO4627DD
-A KUBE-SVL-IP2NFBUX2EWVD722 -m comment --comment "ns1/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-F4BZC55XMT23ZGEP
-A KUBE-SEP-F4BZC55XMT23ZGEP -m comment --comment ns1/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-F4BZC55XMT23ZGEP -m comment --comment ns1/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
-A KUBE-SEP-E7NLDKXCGO4627DD -m comment --comment ns1/svc2:p80 -s 10.180.1.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-E7NLDKXCGO4627DD -m comment --comment ns1/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.1.2:80
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS
COMMIT
""",
    "external-traffic-policy-local-none-here": """\
*filter
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP
COMMIT
*nat
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-IP2NFBUX2EWVD722 - [0:0]
:KUBE-EXT-IP2NFBUX2EWVD722 - [0:0]
:KUBE-SEP-E7NLDKXCGO4627DD - [0:0]
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -m comment --comment "ns1/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-IP2NFBUX2EWVD722
-A KUBE-NODEPORTS -m comment --comment ns1/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-IP2NFBUX2EWVD722
-A KUBE-SVC-IP2NFBUX2EWVD722 -m comment --comment "ns1/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-EXT-IP2NFBUX2EWVD722 -m comment --comment "pod traffic for ns1/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-IP2NFBUX2EWVD722
-A KUBE-EXT-IP2NFBUX2EWVD722 -m comment --comment "masquerade LOCAL traffic for ns1/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
-A KUBE-EXT-IP2NFBUX2EWVD722 -m comment --comment "route LOCAL traffic for ns1/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-IP2NFBUX2EWVD722
-A KUBE-SVC-IP2NFBUX2EWVD722 -m comment --comment "ns1/svc2:p80 -> 10.180.1.2:80" -j KUBE-SEP-E7NLDKXCGO4627DD
-A KUBE-SEP-E7NLDKXCGO4627DD -m comment --comment ns1/svc2:p80 -s 10.180.1.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-E7NLDKXCGO4627DD -m comment --comment ns1/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.1.2:80
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS
COMMIT
""",
    "internal-traffic-policy-local": """\
*filter
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
-A KUBE-SERVICES -m comment --comment "ns1/svc7:p80 has no local endpoints" -m tcp -p tcp -d 172.30.0.47 --dport 80 -j DROP
COMMIT
*nat
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVL-U2UUHMX37GBKLMVT - [0:0]
:KUBE-SEP-6XXNE4X3BQXBVTGF - [0:0]
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -m comment --comment "ns1/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVL-U2UUHMX37GBKLMVT
-A KUBE-SVL-U2UUHMX37GBKLMVT -m comment --comment "ns1/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVL-U2UUHMX37GBKLMVT -m comment --comment "ns1/svc4:p80 -> 10.180.0.4:80" -j KUBE-SEP-6XXNE4X3BQXBVTGF
-A KUBE-SEP-6XXNE4X3BQXBVTGF -m comment --comment ns1/svc4:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ
-A KUBE-SEP-6XXNE4X3BQXBVTGF -m comment --comment ns1/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS
COMMIT
""",
    "terminating-endpoints": """\
*filter
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
COMMIT
*nat
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-UEQDWVHF64EC375Z - [0:0]
:KUBE-SEP-TKO4K3LXB6FHXH42 - [0:0]
:KUBE-SVC-HBIIXVJYGQTX4TH3 - [0:0]
:KUBE-SEP-WBK5JTDXV66ZW4KA - [0:0]
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -m comment --comment "ns1/svc8:p80 cluster IP" -m tcp -p tcp -d 172.30.0.48 --dport 80 -j KUBE-SVC-UEQDWVHF64EC375Z
-A KUBE-SVC-UEQDWVHF64EC375Z -m comment --comment "ns1/svc8:p80 cluster IP" -m tcp -p tcp -d 172.30.0.48 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-UEQDWVHF64EC375Z -m comment --comment "ns1/svc8:p80 -> 10.180.0.8:80" -j KUBE-SEP-TKO4K3LXB6FHXH42
-A KUBE-SEP-TKO4K3LXB6FHXH42 -m comment --comment ns1/svc8:p80 -s 10.180.0.8 -j KUBE-MARK-MASQ
-A KUBE-SEP-TKO4K3LXB6FHXH42 -m comment --comment ns1/svc8:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.8:80
-A KUBE-SERVICES -m comment --comment "ns1/svc9:p80 cluster IP" -m tcp -p tcp -d 172.30.0.49 --dport 80 -j KUBE-SVC-HBIIXVJYGQTX4TH3
-A KUBE-SVC-HBIIXVJYGQTX4TH3 -m comment --comment "ns1/svc9:p80 cluster IP" -m tcp -p tcp -d 172.30.0.49 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-HBIIXVJYGQTX4TH3 -m comment --comment "ns1/svc9:p80 -> 10.180.0.10:80" -j KUBE-SEP-WBK5JTDXV66ZW4KA
-A KUBE-SEP-WBK5JTDXV66ZW4KA -m comment --comment ns1/svc9:p80 -s 10.180.0.10 -j KUBE-MARK-MASQ
-A KUBE-SEP-WBK5JTDXV66ZW4KA -m comment --comment ns1/svc9:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.10:80
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS
COMMIT
""",
    "loadbalancer-source-ranges": """\
*filter
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
-A KUBE-PROXY-FIREWALL -m comment --comment "ns5/svc5:p80 traffic not accepted by KUBE-FW-NUKIZ6OKUXPJNT4C" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP
COMMIT
*nat
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-EXT-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-FW-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-SEP-I77PXRDZVX7PMWMN - [0:0]
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 -j KUBE-SVC-NUKIZ6OKUXPJNT4C
-A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 loadbalancer IP" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j KUBE-FW-NUKIZ6OKUXPJNT4C
-A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp --dport 3002 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 203.0.113.0/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL"
-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-EXT-NUKIZ6OKUXPJNT4C -m comment --comment "masquerade traffic for ns5/svc5:p80 external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-NUKIZ6OKUXPJNT4C -j KUBE-SVC-NUKIZ6OKUXPJNT4C
-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -j KUBE-SEP-I77PXRDZVX7PMWMN
-A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS
COMMIT
""",
    "loadbalancer-local": """\
*filter
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
COMMIT
*nat
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-IP2NFBUX2EWVD722 - [0:0]
:KUBE-SVL-IP2NFBUX2EWVD722 - [0:0]
:KUBE-EXT-IP2NFBUX2EWVD722 - [0:0]
:KUBE-SEP-F4BZC55XMT23ZGEP - [0:0]
:KUBE-SEP-E7NLDKXCGO4627DD - [0:0]
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -m comment --comment "ns1/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-IP2NFBUX2EWVD722
-A KUBE-SERVICES -m comment --comment "ns1/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 192.168.0.200 --dport 80 -j KUBE-EXT-IP2NFBUX2EWVD722
-A KUBE-NODEPORTS -m comment --comment ns1/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-IP2NFBUX2EWVD722
-A KUBE-SVC-IP2NFBUX2EWVD722 -m comment --comment "ns1/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-EXT-IP2NFBUX2EWVD722 -m comment --comment "pod traffic for ns1/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-IP2NFBUX2EWVD722
-A KUBE-EXT-IP2NFBUX2EWVD722 -m comment --comment "masquerade LOCAL traffic for ns1/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
-A KUBE-EXT-IP2NFBUX2EWVD722 -m comment --comment "route LOCAL traffic for ns1/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-IP2NFBUX2EWVD722
-A KUBE-EXT-IP2NFBUX2EWVD722 -j KUBE-SVL-IP2NFBUX2EWVD722
-A KUBE-SVC-IP2NFBUX2EWVD722 -m comment --comment "ns1/svc2:p80 -> 10.180.0.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-F4BZC55XMT23ZGEP
-A KUBE-SVC-IP2NFBUX2EWVD722 -m comment --comment "ns1/svc2:p80 -> 10.180.1.2:80" -j KUBE-SEP-E7NLDKXCGO4627DD
-A KUBE-SVL-IP2NFBUX2EWVD722 -m comment --comment "ns1/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-F4BZC55XMT23ZGEP
-A KUBE-SEP-F4BZC55XMT23ZGEP -m comment --comment ns1/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-F4BZC55XMT23ZGEP -m comment --comment ns1/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
-A KUBE-SEP-E7NLDKXCGO4627DD -m comment --comment ns1/svc2:p80 -s 10.180.1.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-E7NLDKXCGO4627DD -m comment --comment ns1/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.1.2:80
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS
COMMIT
""",
    "headless-and-externalname-ignored": """\
*filter
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
COMMIT
*nat
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS
COMMIT
""",
}


def _state(case: str):
    services, slices = CASES[case]
    return build_state(services=services, slices=slices, config=CFG)


def _diff(got: str, want: str) -> str:
    import difflib

    return "\n".join(difflib.unified_diff(want.splitlines(), got.splitlines(), "expected", "rendered", lineterm=""))


def test_nftables_base_ruleset_of_empty_cluster():
    got = nftables.render_full(build_state(services=[], slices=[], config=CFG))
    assert got == NFT_RESET + NFT_BASE, _diff(got, NFT_RESET + NFT_BASE)


@pytest.mark.parametrize("case", list(CASES))
def test_nftables_whole_ruleset(case):
    got = nftables.render_full(_state(case))
    want = NFT_RESET + NFT_BASE + NFT_EXPECTED[case]
    assert got == want, _diff(got, want)


@pytest.mark.parametrize("case", list(CASES))
def test_iptables_whole_ruleset(case):
    got = iptables.render(_state(case))
    assert got == IPT_EXPECTED[case], _diff(got, IPT_EXPECTED[case])


def test_chain_names_match_upstream():
    """Values from kubernetes pkg/proxy/{nftables,iptables}/proxier_test.go."""
    k = ServicePortName("ns1", "svc1", "p80", "TCP")
    assert nftables.service_chain(k) == "service-ULMVA6XW-ns1/svc1/tcp/p80"
    assert nftables.endpoint_chain(k, Endpoint("10.180.0.1", 80)) == "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
    assert nftables.service_chain(ServicePortName("ns2", "svc2", "p80", "TCP")) == "service-42NFTM6N-ns2/svc2/tcp/p80"
    k5 = ServicePortName("ns5", "svc5", "p80", "TCP")
    assert nftables.endpoint_chain(k5, Endpoint("10.180.0.3", 80)) == "endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"
    assert iptables.service_chain(k) == "KUBE-SVC-XPGD46QRK7WJZT7O"
    assert iptables.endpoint_chain(k, Endpoint("10.180.0.1", 80)) == "KUBE-SEP-SXIVWICOYRO3J4NJ"
    assert iptables.endpoint_chain(k, Endpoint("10.180.0.2", 80)) == "KUBE-SEP-LXVODXWDISEETFEF"
    assert iptables.external_chain(ServicePortName("ns2", "svc2", "p80", "TCP")) == "KUBE-EXT-GNZBNJ2PO5MGZ6GT"


def test_long_names_are_truncated_but_distinct():
    a = nftables.hash_and_truncate("x" * 300 + "a")
    b = nftables.hash_and_truncate("x" * 300 + "b")
    assert len(a) == nftables.CHAIN_NAME_BASE_LENGTH_MAX and a.endswith("...")
    assert a != b


def test_iptables_probabilities_use_upstream_formatting():
    assert [iptables.probability(n) for n in (4, 3, 2)] == ["0.2500000000", "0.3333333333", "0.5000000000"]


def test_iptables_deletes_chains_that_went_away():
    before = _state("clusterip-3-endpoints")
    after = _state("clusterip-1-endpoint")
    prev_chains = iptables.chains_in(iptables.render(before))
    text = iptables.render(after, previous_chains=prev_chains)
    gone = {"KUBE-SEP-LXVODXWDISEETFEF", "KUBE-SEP-ICDUIKC33SFI6ZPR"}
    assert {line[3:] for line in text.splitlines() if line.startswith("-X ")} == gone
    for chain in gone:  # declared (which flushes it) before being deleted
        assert f":{chain} - [0:0]" in text
    assert "-X KUBE-SVC-XPGD46QRK7WJZT7O" not in text


def test_iptables_without_node_ips_matches_any_local_address():
    state = build_state(services=CASES["nodeport"][0], slices=CASES["nodeport"][1],
                        config=ProxyConfig(node_name="node1", cluster_cidr="10.0.0.0/8"))
    text = iptables.render(state)
    assert "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS" in text
    nft_text = nftables.render_full(state)
    assert "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports" in nft_text
    assert "nodeport-ips" not in nft_text


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_nftables_endpoint_choice_is_uniform(n):
    """The chained `numgen random mod N-i 0 goto` rules give every endpoint exactly 1/N."""
    from fractions import Fraction

    from kubelab.proxy.model import ServicePort

    sp = ServicePort("ns1", "svc", "p", "TCP", "172.30.0.9", 80)
    eps = tuple(Endpoint(f"10.0.0.{i + 1}", 80, node_name="node1") for i in range(n))
    chain = nftables.service_chain(sp.key)
    rules = nftables.service_fragment(sp, eps, CFG).chains[chain]
    lb = [r for r in rules if "endpoint-" in r]
    assert len(lb) == n and all("vmap" not in r for r in lb)  # no anonymous maps (nft 1.0.6: quadratic)
    left, probs = Fraction(1), {}
    for r in lb:
        target = r.rsplit("goto ", 1)[1]
        if r.startswith("numgen random mod "):
            mod = int(r.split()[3])
            assert r.split()[4] == "0"
            p = left / mod
        else:
            assert r == lb[-1], "only the last rule is unconditional"
            p = left
        probs[target] = p
        left -= p
    assert left == 0 and set(probs.values()) == {Fraction(1, n)}
    assert set(probs) == {nftables.endpoint_chain(sp.key, e) for e in eps}
