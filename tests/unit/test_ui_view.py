"""kubelab.ui.view: objects -> map model -> DOT/SVG, trace highlight, rules tagging, timeline
chart, query validation (pure; the SVG tests run Debian's `dot`)."""

from __future__ import annotations

import html
import re
import shutil

import pytest

from kubelab.lab import trace
from kubelab.lab.timeline import Row
from kubelab.ui import graphviz, view
from kubelab.ui.server import allowed_host, fit, format_routes

from test_lab_trace import NFT_TABLE, captured

INFO = {"control-plane": view.NodeInfo("kl-lab-control-plane", "192.168.56.10", "control-plane"),
        "worker-1": view.NodeInfo("kl-lab-worker-1", "192.168.56.11", "worker"),
        "worker-2": view.NodeInfo("kl-lab-worker-2", "192.168.56.12", "worker")}


def node(name: str, cidr: str | None, ready: bool = True) -> dict:
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr} if cidr else {},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "addresses": [{"type": "InternalIP", "address": INFO[name].ip}]}}


def pod(name: str, ns: str, node_name: str | None, ip: str | None, phase: str = "Running", ready: bool = True,
        deleting: bool = False) -> dict:
    m = {"name": name, "namespace": ns}
    if deleting:
        m["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": m, "spec": {"nodeName": node_name} if node_name else {},
            "status": {"phase": phase, **({"podIP": ip} if ip else {}),
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def svc(name: str, ns: str, ip: str, *, type_: str = "ClusterIP", node_port: int | None = None,
        external: list[str] | None = None, lb: str | None = None) -> dict:
    port = {"port": 80, "protocol": "TCP", **({"nodePort": node_port} if node_port else {})}
    s = {"metadata": {"name": name, "namespace": ns}, "spec": {"type": type_, "clusterIP": ip, "ports": [port]}}
    if external:
        s["spec"]["externalIPs"] = external
    if lb:
        s["status"] = {"loadBalancer": {"ingress": [{"ip": lb}]}}
    return s


def slice_(svc_name: str, ns: str, eps: list[tuple[str, str | None, bool]]) -> dict:
    return {"metadata": {"name": f"{svc_name}-abc", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc_name}},
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready},
                           **({"targetRef": {"kind": "Pod", "name": p, "namespace": ns}} if p else {})}
                          for ip, p, ready in eps]}


def lab_objects() -> dict:
    return dict(
        nodes=[node("worker-1", "10.244.1.0/24"), node("worker-2", "10.244.2.0/24", ready=False)],
        pods=[pod("client", "default", "worker-1", "10.244.1.5"),
              pod("nginx-7d9-abcde", "default", "worker-2", "10.244.2.7"),
              pod("nginx-7d9-fghij", "default", "worker-1", "10.244.1.9", ready=False),
              pod("pending-1", "default", None, None, phase="Pending", ready=False),
              pod("old", "default", "worker-1", "10.244.1.3", deleting=True),
              pod("coredns-1", "kube-system", "worker-2", "10.244.2.2")],
        services=[svc("nginx", "default", "10.110.101.9"),
                  svc("kubernetes", "default", "10.96.0.1"),
                  svc("kube-dns", "kube-system", "10.96.0.10"),
                  svc("web", "default", "10.96.5.5", type_="NodePort", node_port=30080, external=["192.168.56.50"]),
                  svc("lb", "default", "10.96.6.6", type_="LoadBalancer", node_port=30090)],
        slices=[slice_("nginx", "default", [("10.244.2.7", "nginx-7d9-abcde", True),
                                            ("10.244.1.9", "nginx-7d9-fghij", False)]),
                slice_("kubernetes", "default", [("192.168.56.10", None, True)]),
                slice_("kube-dns", "kube-system", [("10.244.2.2", None, True)]),
                slice_("ghost", "default", [("10.244.9.9", "gone", True)])])


def the_map() -> view.MapModel:
    return view.build_map(**lab_objects(), info=INFO)


def test_nodes_carry_netns_ip_cidr_bridge_and_routes_to_the_others():
    m = the_map()
    assert [n.name for n in m.nodes] == ["control-plane", "worker-1", "worker-2"]
    cp, w1, w2 = m.nodes
    assert not cp.registered and cp.pods == () and cp.netns == "kl-lab-control-plane"
    assert cp.routes == ("10.244.1.0/24 via 192.168.56.11", "10.244.2.0/24 via 192.168.56.12")
    assert (w1.netns, w1.ip, w1.pod_cidr, w1.bridge) == ("kl-lab-worker-1", "192.168.56.11", "10.244.1.0/24", "cni0")
    assert w1.routes == ("10.244.2.0/24 via 192.168.56.12",)
    assert w1.ready and not w2.ready
    live = view.build_map(**lab_objects(), info=INFO, routes={"worker-1": ("10.244.2.0/24 via 192.168.56.99",)})
    assert live.nodes[1].routes == ("10.244.2.0/24 via 192.168.56.99",)


def test_pods_sit_in_their_node_with_ip_and_phase():
    m = the_map()
    w1 = {p.name: p for p in m.nodes[1].pods}
    assert set(w1) == {"client", "nginx-7d9-fghij", "old"}
    assert (w1["client"].ip, w1["client"].phase, w1["client"].ready) == ("10.244.1.5", "Running", True)
    assert w1["old"].phase == "Terminating"
    assert [p.name for p in m.unscheduled] == ["pending-1"]
    assert m.pod_count == 6


def test_services_show_clusterip_nodeport_and_external_ip_like_kubectl():
    s = {b.name: b for b in the_map().services}
    assert (s["nginx"].cluster_ip, s["nginx"].external_ip, s["nginx"].ports) == ("10.110.101.9", "<none>", ("80/TCP",))
    assert s["web"].node_ports == (30080,) and s["web"].ports == ("80:30080/TCP",)
    assert s["web"].external_ip == "192.168.56.50"
    assert s["lb"].external_ip == "<pending>"
    assert view.service_box(svc("lb", "default", "10.96.6.6", type_="LoadBalancer", lb="192.168.56.200")).external_ip \
        == "192.168.56.200"


def test_endpoint_lines_follow_slices_ready_or_not_and_reach_nodes():
    lines = {(line.service, line.target): line.ready for line in the_map().lines}
    assert lines == {("default/nginx", "pod:default/nginx-7d9-abcde"): True,
                     ("default/nginx", "pod:default/nginx-7d9-fghij"): False,
                     ("default/kubernetes", "node:control-plane"): True,
                     ("kube-system/kube-dns", "pod:kube-system/coredns-1"): True}   # by IP; the ghost is dropped


def test_dot_draws_every_object_with_a_clickable_id_and_styles_endpoints():
    dot = view.map_dot(the_map())
    for oid in ("svc:default/nginx", "pod:default/client", "nodeinfo:worker-1", "pod:default/pending-1"):
        assert f'id="{oid}"' in dot
    assert 'subgraph "cluster_worker-1"' in dot and 'id="node:worker-1"' in dot
    ready = re.search(r'"svc:default/nginx" -> "pod:default/nginx-7d9-abcde" \[([^]]*)\]', dot).group(1)
    not_ready = re.search(r'"svc:default/nginx" -> "pod:default/nginx-7d9-fghij" \[([^]]*)\]', dot).group(1)
    assert view.READY_EDGE in ready and "dashed" not in ready
    assert "dashed" in not_ready
    assert '"svc:default/kubernetes" -> "nodeinfo:control-plane"' in dot
    assert "ClusterIP 10.110.101.9" in dot and "NodePort 30080" in dot and "EXTERNAL-IP 192.168.56.50" in dot


def test_dot_strings_are_escaped_so_hostile_text_cannot_break_out():
    assert view.q('a"b\\N\nc') == '"a\\"b\\\\N\\nc"'
    hostile = pod('x"] ; evil [label="', "default", "worker-1", "10.244.1.77")
    m = view.build_map(nodes=[node("worker-1", "10.244.1.0/24")], pods=[hostile], services=[], slices=[], info=INFO)
    dot = view.map_dot(m)
    assert '\\"] ; evil [label=\\"' in dot
    if shutil.which("dot"):
        svg = graphviz.render_svg(dot)   # still one valid graph
        assert "evil" in svg and svg.startswith("<svg")


@pytest.mark.skipif(not shutil.which("dot"), reason="Graphviz not installed (make install does it)")
def test_svg_has_the_ids_the_page_clicks_and_css_sizes_it():
    svg = html.unescape(fit(graphviz.render_svg(view.map_dot(the_map()))))
    assert svg.startswith("<svg") and "<?xml" not in svg and "<!--" not in svg
    head = svg.split(">", 1)[0]
    assert "viewBox" in head and " width=" not in head
    for oid in ("pod:default/client", "svc:default/nginx", "node:worker-1", "nodeinfo:control-plane"):
        assert f'id="{oid}"' in svg
    xs = [float(re.search(rf'<g id="nodeinfo:{n}".*?points="([\d.\-]+),', svg, re.S).group(1))
          for n in ("control-plane", "worker-1", "worker-2")]
    assert xs == sorted(xs)   # nodes left to right: control plane, worker-1, worker-2
    assert 'pod running"' in svg and 'class="cluster labnode"' in svg


def test_trace_path_draws_dns_clusterip_and_chosen_pod():
    c = captured()
    model = view.build_map(nodes=[node("worker-1", "10.244.1.0/24"), node("worker-2", "10.244.2.0/24")],
                           pods=lab_objects()["pods"], services=lab_objects()["services"], slices=[], info=INFO)
    path = view.trace_path(model, "default/client", trace.trace_hops(c))
    assert path.edges == (("pod:default/client", "svc:kube-system/kube-dns", "1. DNS nginx?"),
                          ("pod:default/client", "svc:default/nginx", "2. to 10.110.101.9:80"),
                          ("svc:default/nginx", "pod:default/nginx-7d9-abcde", "3. DNAT to 10.244.2.7"))
    assert path.objects == {"pod:default/client", "svc:kube-system/kube-dns", "svc:default/nginx",
                            "pod:default/nginx-7d9-abcde"}
    dot = view.map_dot(model, path)
    assert dot.count('class="trace"') == 3 and "constraint=false" in dot


def test_trace_hops_are_data_with_facts_and_render_trace_is_built_on_them():
    c = captured()
    hops = trace.trace_hops(c)
    assert [h.kind for h in hops] == ["resolv", "dns", "service", "rules", "route", "arrival", "destination"]
    assert all(h.kind in trace.HOP_KINDS for h in hops)
    by = {h.kind: h for h in hops}
    assert by["dns"].fact("server") == "10.96.0.10" and by["dns"].fact("answer") == "10.110.101.9"
    assert by["service"].fact("clusterIP") == "10.110.101.9"
    assert by["rules"].fact("chosen") == "10.244.2.7:80"
    assert by["destination"].fact("pod") == "default/nginx-7d9-abcde"
    text = trace.render_trace(c)
    assert all(h.title in text for h in hops)


@pytest.mark.parametrize("value,expected", [
    ("client", ("default", "client")), ("demo/nginx-7d9-abcde", ("demo", "nginx-7d9-abcde"))])
def test_source_parameter(value, expected):
    assert view.parse_source(value) == expected


@pytest.mark.parametrize("value", [
    None, "", "Client", "a/b/c", "../etc/passwd", "x; rm -rf /", "$(id)", "a b", "-n", "x" * 300, "ns/",
    "pod\nname", "pod%00"])
def test_hostile_source_is_refused_naming_the_parameter(value):
    with pytest.raises(view.QueryError, match="^from:"):
        view.parse_source(value)


@pytest.mark.parametrize("value,expected", [
    ("nginx", ("nginx", None)), ("kube-dns.kube-system:53", ("kube-dns.kube-system", 53)),
    ("10.96.0.10", ("10.96.0.10", None)), ("10.244.1.9:8080", ("10.244.1.9", 8080)),
    ("nginx.default.svc.cluster.local.", ("nginx.default.svc.cluster.local.", None))])
def test_destination_parameter(value, expected):
    assert view.parse_destination(value) == expected


@pytest.mark.parametrize("value", [
    None, "", "nginx:0", "nginx:65536", "nginx:http", "-x", "@10.96.0.10", "nginx;id", "$(reboot)", "a..b",
    "::1", "fe80::1:80", "x" * 300, "nginx +short", "nginx\n", "`id`", "a_b"])
def test_hostile_destination_is_refused_naming_the_parameter(value):
    with pytest.raises(view.QueryError, match="^to:"):
        view.parse_destination(value)


def test_node_parameter_only_names_a_lab_node():
    assert view.parse_node("worker-1", ["worker-1", "worker-2"]) == "worker-1"
    for bad in (None, "worker-9", "kl-lab-worker-1", "../x", "worker-1;id", "WORKER-1"):
        with pytest.raises(view.QueryError, match="^node:"):
            view.parse_node(bad, ["worker-1", "worker-2"])


def test_rule_lines_tag_each_service_by_ip_chain_and_nodeport():
    services = [view.service_box(s) for s in lab_objects()["services"]]
    table = NFT_TABLE + "\n\t\telements = { tcp . 30080 : goto external-X-default/web/tcp/ }\n" \
        "\t\telements = { 10.110.101.90 . tcp . 80 : goto service-Y-default/nginxish/tcp/ }"
    lines = view.rule_lines(table, services)
    def tags(prefix: str) -> tuple[str, ...]:
        return next(ln.services for ln in lines if ln.text.strip().startswith(prefix))
    assert tags("chain service-ECO34HEO-default/nginx/tcp/ {") == ("default/nginx",)
    assert tags("ip daddr 10.110.101.9 ip saddr != 10.244.0.0/") == ("default/nginx",)
    assert tags("elements = { tcp . 30080 : goto external-X-") == ("default/web",)
    assert tags("elements = { 10.110.101.90 . tcp . 80 : goto se") == ()   # neither a longer IP nor a longer name
    assert tags("table ip kube-proxy {") == ()
    assert tags("meta l4proto tcp dnat to 10.244.1.9:80") == ("default/nginx",)  # inside its endpoint chain
    ipt = view.rule_lines('-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns '
                          'cluster IP" -j KUBE-SVC-X', services)
    assert ipt[0].services == ("kube-system/kube-dns",)


def test_timeline_lanes_bars_and_replayable_markers():
    rows = [Row(100.0, "up", "kubelab up started", "supervisor"),
            Row(100.5, "control-plane/etcd", "process started (pid 1) in netns x", "supervisor"),
            Row(101.5, "control-plane/etcd", "healthy after 1.0s", "supervisor"),
            Row(101.6, "control-plane/apiserver", "process started (pid 2) in netns x", "supervisor"),
            Row(102.0, "worker-1/proxy", "WATCH services from resourceVersion 3", "log"),
            Row(103.0, "node/worker-1", "registered by its node agent", "api"),
            Row(103.5, "node-ipam-controller", "CIDRAssignmentSucceeded: node/worker-1", "event"),
            Row(110.0, "up", "kubelab up done (10.0s)", "supervisor"),
            Row(4000.0, "node/worker-1", "Ready", "api")]
    lanes, span = view.timeline_lanes(rows, 100.0)
    names = [lane.name for lane in lanes]
    assert names == ["control-plane/etcd", "control-plane/apiserver", "worker-1/proxy", "lab", "API: nodes", "Events"]
    by = {lane.name: lane for lane in lanes}
    assert by["control-plane/etcd"].bars == ((0.5, 1.5),)
    assert by["control-plane/apiserver"].bars == (pytest.approx((1.6, 3900.0)),)   # never healthy: open to the end
    assert span == pytest.approx(12.0)                                 # the boot, not the hour after
    svg = view.timeline_svg(lanes, span)
    assert svg.count('class="marker"') == len(rows)
    assert sorted(int(i) for i in re.findall(r'data-i="(\d+)"', svg)) == list(range(len(rows)))
    assert ">later<" in svg and "control-plane/etcd" in svg
    assert view.timeline_lanes([], None) == ([], 0.0)


def test_host_header_must_be_an_ip_literal_or_localhost():
    for ok in ("127.0.0.1:8001", "localhost:8001", "LOCALHOST", "[::1]:8001", "192.168.56.1:8001", "127.0.0.1"):
        assert allowed_host(ok), ok
    for bad in (None, "", "evil.example:8001", "127.0.0.1.nip.io:8001", "localhost.evil.example"):
        assert not allowed_host(bad), bad


def test_routes_with_a_gateway_are_the_routes_to_other_nodes():
    assert format_routes([{"dst": "10.244.2.0/24", "gateway": "192.168.56.12", "dev": "eth0"},
                          {"dst": "10.244.1.0/24", "dev": "cni0"}]) == ("10.244.2.0/24 via 192.168.56.12",)
