"""`kubelab trace`: parsers on real captured output, and the rendering of a captured state."""

from __future__ import annotations

import pytest

from kubelab.lab import trace

# captured from a lab: `ip netns exec kl-t1-worker-1 nft -s list map ip kube-proxy service-ips`
NFT_MAP = """table ip kube-proxy {
	map service-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		comment "ClusterIP, ExternalIP and LoadBalancer IP traffic"
		elements = { 10.110.101.9 . tcp . 80 : goto service-ECO34HEO-default/nginx/tcp/,
			     10.96.0.1 . tcp . 443 : goto service-2QRHZV4L-default/kubernetes/tcp/https }
	}
}"""

# ... and `nft -s list table ip kube-proxy` (the part that matters)
NFT_TABLE = """table ip kube-proxy {
	chain service-ECO34HEO-default/nginx/tcp/ {
		ip daddr 10.110.101.9 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
		numgen random mod 2 vmap { 0 : goto endpoint-65PLL4TQ-default/nginx/tcp/__10.244.1.9/80, 1 : goto endpoint-IC7OYYG6-default/nginx/tcp/__10.244.2.7/80 }
	}

	chain endpoint-65PLL4TQ-default/nginx/tcp/__10.244.1.9/80 {
		ip saddr 10.244.1.9 jump mark-for-masquerade
		meta l4proto tcp dnat to 10.244.1.9:80
	}
}"""

IPTABLES_SAVE = """*nat
:KUBE-SERVICES - [0:0]
-A KUBE-SERVICES -d 10.110.101.9/32 -p tcp -m comment --comment "default/nginx cluster IP" -m tcp --dport 80 -j KUBE-SVC-2CMXP7HKUVJN7L6M
-A KUBE-SVC-2CMXP7HKUVJN7L6M -m comment --comment "default/nginx -> 10.244.1.9:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-AAAA
-A KUBE-SVC-2CMXP7HKUVJN7L6M -m comment --comment "default/nginx -> 10.244.2.7:80" -j KUBE-SEP-BBBB
-A KUBE-SEP-AAAA -p tcp -m tcp -j DNAT --to-destination 10.244.1.9:80
-A KUBE-SEP-BBBB -p tcp -m tcp -j DNAT --to-destination 10.244.2.7:80
COMMIT"""

DIG = """; <<>> DiG 9.18.28-1~deb12u2-Debian <<>> @10.96.0.10 nginx.default.svc.cluster.local. A
;; global options: +cmd
;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4242
;; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1

;; QUESTION SECTION:
;nginx.default.svc.cluster.local. IN	A

;; ANSWER SECTION:
nginx.default.svc.cluster.local. 30 IN	A	10.110.101.9

;; Query time: 1 msec
"""

RESOLV = "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"


def test_resolv_conf_and_search_expansion():
    r = trace.parse_resolv_conf(RESOLV)
    assert r.nameservers == ("10.96.0.10",) and r.ndots == 5
    assert trace.search_candidates("nginx", r) == [
        "nginx.default.svc.cluster.local.", "nginx.svc.cluster.local.", "nginx.cluster.local.", "nginx."]
    # enough dots: tried as is first; a trailing dot: only as is
    many = "a.b.c.d.e.f"
    assert trace.search_candidates(many, r)[0] == "a.b.c.d.e.f."
    assert trace.search_candidates("nginx.default.svc.cluster.local.", r) == ["nginx.default.svc.cluster.local."]


def test_target_parsing():
    assert trace.parse_target("nginx") == ("nginx", None)
    assert trace.parse_target("10.96.0.1:443") == ("10.96.0.1", 443)
    with pytest.raises(ValueError):
        trace.parse_target("nginx:http")


def test_dig_parsing():
    assert trace.parse_dig(DIG) == ("NOERROR", ["10.110.101.9"])
    assert trace.parse_dig(";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 1\n") == ("NXDOMAIN", [])


def test_nft_map_entry_and_endpoint_chains():
    assert trace.nft_service_entry(NFT_MAP, "10.110.101.9", "tcp", 80) == "service-ECO34HEO-default/nginx/tcp/"
    assert trace.nft_service_entry(NFT_MAP, "10.96.0.1", "tcp", 443) == "service-2QRHZV4L-default/kubernetes/tcp/https"
    assert trace.nft_service_entry(NFT_MAP, "0.110.101.9", "tcp", 80) is None  # no partial-address match
    assert trace.nft_service_entry(NFT_MAP, "10.110.101.9", "udp", 80) is None
    rule, eps = trace.nft_chain_endpoints(NFT_TABLE, "service-ECO34HEO-default/nginx/tcp/")
    assert rule.startswith("numgen random mod 2 vmap")
    assert eps == [("endpoint-65PLL4TQ-default/nginx/tcp/__10.244.1.9/80", "10.244.1.9:80"),
                   ("endpoint-IC7OYYG6-default/nginx/tcp/__10.244.2.7/80", "10.244.2.7:80")]


def test_iptables_service_chains():
    svc, eps = trace.iptables_service(IPTABLES_SAVE, "10.110.101.9", "tcp", 80)
    assert svc == "KUBE-SVC-2CMXP7HKUVJN7L6M"
    assert eps == [("KUBE-SEP-AAAA", "10.244.1.9:80"), ("KUBE-SEP-BBBB", "10.244.2.7:80")]
    assert trace.iptables_service(IPTABLES_SAVE, "10.110.101.9", "tcp", 81) == (None, [])


def test_route_get_parsing():
    r = trace.parse_route_get("10.244.2.7 via 192.168.56.12 dev eth0 src 192.168.56.11 uid 0 \n    cache \n")
    assert r == {"dst": "10.244.2.7", "via": "192.168.56.12", "dev": "eth0", "src": "192.168.56.11"}


def captured() -> dict:
    """What `capture` produces on a lab: client on worker-1 -> nginx, endpoint on worker-2."""
    return {
        "pod": {"name": "client", "namespace": "default", "node": "worker-1", "ip": "10.244.1.5",
                "netns": "kl-lab-pod-abc"},
        "target": "nginx",
        "resolv_conf": RESOLV, "resolv_error": None,
        "resolv_cmd": "kubectl exec -n default client -- cat /etc/resolv.conf",
        "dns": {"name": "nginx", "server": "10.96.0.10",
                "candidates": trace.search_candidates("nginx", trace.parse_resolv_conf(RESOLV)),
                "queries": [{"name": "nginx.default.svc.cluster.local.", "status": "NOERROR",
                             "answers": ["10.110.101.9"],
                             "cmd": "sudo ip netns exec kl-lab-pod-abc dig @10.96.0.10 nginx.default.svc.cluster.local. A"}],
                "resolv": {"ndots": 5, "search": ["default.svc.cluster.local", "svc.cluster.local",
                                                  "cluster.local"]}},
        "service": {"name": "nginx", "namespace": "default", "clusterIP": "10.110.101.9"},
        "service_cmd": "kubectl get svc -n default nginx", "port": 80, "proto": "tcp",
        "rules": {"node": "worker-1", "mode": "nftables", "entry": "service-ECO34HEO-default/nginx/tcp/",
                  "map_cmd": "sudo ip netns exec kl-lab-worker-1 nft -s list map ip kube-proxy service-ips",
                  "chain_cmd": "sudo ip netns exec kl-lab-worker-1 nft -s list chain ip kube-proxy service-ECO34HEO-default/nginx/tcp/",
                  "lb_rule": "numgen random mod 2 vmap { ... }",
                  "endpoints": [("endpoint-65PLL4TQ-default/nginx/tcp/__10.244.1.9/80", "10.244.1.9:80"),
                                ("endpoint-IC7OYYG6-default/nginx/tcp/__10.244.2.7/80", "10.244.2.7:80")],
                  "chosen": "10.244.2.7:80", "chosen_how": "from conntrack: the pod's last connection"},
        "destination": {"ip": "10.244.2.7", "name": "nginx-7d9-abcde", "namespace": "default", "node": "worker-2"},
        "route": {"node": "worker-1", "dst": "10.244.2.7", "cmd": "sudo ip -n kl-lab-worker-1 route get 10.244.2.7",
                  "output": "10.244.2.7 via 192.168.56.12 dev eth0 src 192.168.56.11",
                  "parsed": {"dst": "10.244.2.7", "via": "192.168.56.12", "dev": "eth0"}},
        "arrival": {"node": "worker-2", "route_cmd": "sudo ip -n kl-lab-worker-2 route get 10.244.2.7",
                    "route_output": "10.244.2.7 dev cni0 src 10.244.2.1", "pod_netns": "kl-lab-pod-def",
                    "veth": "veth1a2b3c4d", "bridge": "cni0",
                    "veth_cmd": "sudo ip -n kl-lab-worker-2 link show master cni0"},
        "notes": [],
    }


def test_render_trace_tree_names_every_hop_and_its_command():
    text = trace.render_trace(captured())
    lines = text.splitlines()
    assert lines[0] == "trace default/client (10.244.1.5 on worker-1) -> nginx"
    hops = [line for line in lines if line.startswith(("├─", "└─"))]
    assert [h.split(". ", 1)[0][3:] for h in hops] == ["1", "2", "3", "4", "5", "6", "7"]
    assert hops[-1].startswith("└─ 7. arrives at default/nginx-7d9-abcde 10.244.2.7:80 on worker-2")
    assert "$ kubectl exec -n default client -- cat /etc/resolv.conf" in hops[0]
    assert "options ndots:5" in text
    assert ("'nginx' has 0 dot(s), fewer than ndots:5: each of the 3 search domain(s) is tried first, in order, "
            "then the name as it is; up to 4 names, stopping at the first answer, asking 10.96.0.10") in hops[1]
    assert "nginx.svc.cluster.local.                      (not tried: an earlier name answered)" in text
    assert "10.110.101.9 . tcp . 80 : goto service-ECO34HEO-default/nginx/tcp/" in text
    assert "$ sudo ip netns exec kl-lab-worker-1 nft -s list map ip kube-proxy service-ips" in text
    chosen = [line for line in lines if "<- chosen" in line]
    assert len(chosen) == 1 and "10.244.2.7:80" in chosen[0] and "conntrack" in chosen[0]
    assert "route on worker-1 to 10.244.2.7: via 192.168.56.12 dev eth0" in text
    assert "cni0 -> veth1a2b3c4d -> eth0 in netns kl-lab-pod-def" in text
    # tree drawing: every body line hangs under its hop
    assert all(line.startswith(("├─", "└─", "│  ", "   ", "trace ")) for line in lines)


def test_render_trace_without_rules_or_dns():
    c = captured()
    c["rules"] = {"node": "worker-1", "mode": "nftables", "entry": None, "map_cmd": "M", "endpoints": []}
    c["dns"]["queries"] = []
    c["notes"] = ["no live DNS answer"]
    text = trace.render_trace(c)
    assert "not asked live" in text
    assert "no element for this address/port" in text
    assert text.splitlines()[-1].startswith("└─") and "note: no live DNS answer" in text.splitlines()[-1]


def test_render_trace_iptables_mode():
    c = captured()
    c["rules"] = {"node": "worker-1", "mode": "iptables", "entry": "KUBE-SVC-2CMXP7HKUVJN7L6M",
                  "map_cmd": "sudo ip netns exec kl-lab-worker-1 iptables-save -t nat | grep 10.110.101.9",
                  "endpoints": [("KUBE-SEP-AAAA", "10.244.1.9:80"), ("KUBE-SEP-BBBB", "10.244.2.7:80")],
                  "chosen": "10.244.1.9:80", "chosen_how": "e.g."}
    text = trace.render_trace(c)
    assert "KUBE-SERVICES -d 10.110.101.9/32 --dport 80 -> KUBE-SVC-2CMXP7HKUVJN7L6M" in text
    assert "-> KUBE-SEP-AAAA  DNAT to 10.244.1.9:80  <- chosen (e.g.)" in text


@pytest.mark.parametrize("name, expect, first_words", [
    # the trailing dot makes it absolute: one query, whatever its dot count (4 dots, not "5")
    ("nginx.default.svc.cluster.local.", ["nginx.default.svc.cluster.local."], "ends with a dot: an absolute name"),
    ("a.", ["a."], "ends with a dot"),
    # the same name without the dot has 4 dots < ndots:5: the search list first, the name itself last
    ("nginx.default.svc.cluster.local", ["nginx.default.svc.cluster.local.default.svc.cluster.local.",
                                         "nginx.default.svc.cluster.local.svc.cluster.local.",
                                         "nginx.default.svc.cluster.local.cluster.local.",
                                         "nginx.default.svc.cluster.local."], "has 4 dot(s), fewer than ndots:5"),
    ("nginx.demo", ["nginx.demo.default.svc.cluster.local.", "nginx.demo.svc.cluster.local.",
                    "nginx.demo.cluster.local.", "nginx.demo."], "has 1 dot(s), fewer than ndots:5"),
    # 5 dots >= ndots:5: as it is first, then the search list
    ("a.b.c.d.e.f", ["a.b.c.d.e.f.", "a.b.c.d.e.f.default.svc.cluster.local.", "a.b.c.d.e.f.svc.cluster.local.",
                     "a.b.c.d.e.f.cluster.local."], "has 5 dot(s), at least ndots:5: asked as it is first"),
])
def test_resolver_rules_and_their_wording(name, expect, first_words):
    r = trace.parse_resolv_conf(RESOLV)
    assert trace.search_candidates(name, r) == expect
    rule = trace.resolver_rule(name, r.ndots, r.search)
    assert rule.startswith(f"{name!r} {first_words}"), rule
    if name.endswith("."):
        assert "dot(s)" not in rule and "ndots do not apply" in rule


def test_ndots_1_and_no_search_list():
    r = trace.parse_resolv_conf("nameserver 10.96.0.10\n")  # resolv.conf(5) default: ndots 1, no search
    assert r.ndots == 1 and r.search == ()
    assert trace.search_candidates("nginx", r) == ["nginx."]
    assert trace.resolver_rule("nginx", r.ndots, r.search) == "'nginx' has 0 dot(s) and there is no search list: asked once as nginx."
    r1 = trace.parse_resolv_conf("search default.svc.cluster.local\noptions ndots:1\n")
    assert trace.search_candidates("nginx.default", r1) == ["nginx.default.", "nginx.default.default.svc.cluster.local."]
    assert "at least ndots:1" in trace.resolver_rule("nginx.default", r1.ndots, r1.search)


def test_render_trace_of_an_absolute_name_says_why_one_query():
    c = captured()
    c["target"] = "nginx.default.svc.cluster.local."
    c["dns"]["name"] = "nginx.default.svc.cluster.local."
    c["dns"]["candidates"] = ["nginx.default.svc.cluster.local."]
    text = trace.render_trace(c)
    head = next(line for line in text.splitlines() if "DNS:" in line)
    assert "ends with a dot: an absolute name, asked once as it is" in head and "; one query to 10.96.0.10" in head
    assert "5 dot" not in text and "not tried" not in text
def test_policy_hop_names_policy_chain_rule_and_node():
    from kubelab.lab.trace import policy_hop, render_trace
    from kubelab.netpol.examples import netpol, ns_obj, pod_ip, pod_obj
    from kubelab.netpol.model import cluster_from_objects
    pods = [pod_obj("x", "a"), pod_obj("x", "b"), pod_obj("x", "c")]
    pols = [netpol("from-b", podSelector={"matchLabels": {"pod": "a"}},
                   ingress=[{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}], "ports": [{"port": 80,
                                                                                                  "protocol": "TCP"}]}])]
    cluster = cluster_from_objects(pods, [ns_obj("x")], pols)
    hop = policy_hop(cluster, pod_ip("x", "b"), pod_ip("x", "a"), 80, "TCP")
    egress, ingress = hop["steps"]
    assert hop["allowed"] and egress["chain"] == "" and "not isolated" in egress["explain"]
    assert (ingress["node"], ingress["chain"]) == ("worker-1", "ingress-x/from-b")
    assert ingress["rule"].startswith("ip saddr @peer-x/from-b/ingress0/from0 meta l4proto tcp th dport 80 counter accept")
    hop = policy_hop(cluster, pod_ip("x", "c"), pod_ip("x", "a"), 80, "TCP")
    assert not hop["allowed"] and hop["steps"][1]["chain"] == "ingress"
    assert 'comment "default deny ingress"' in hop["steps"][1]["rule"]
    text = render_trace({"pod": {"name": "c", "namespace": "x", "ip": pod_ip("x", "c"), "node": "worker-1"},
                         "target": "10.244.1.10", "policy": {**hop, "port": 80, "protocol": "TCP"}})
    assert "NetworkPolicy: DROPPED (80/TCP, judged after DNAT)" in text and "default deny" in text
