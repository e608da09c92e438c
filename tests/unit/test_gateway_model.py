"""kubelab.ingress.gateway (pure): GatewayClass/Gateway/HTTPRoute → GwConfig + status, and the
nginx.conf nginxconf renders from it, checked whole and by `nginx -t`."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from kubelab.ingress import gateway as gw
from kubelab.ingress import model, nginxconf

NS = "shop"
PATHS = nginxconf.Paths(conf_dir="/etc/nginx", run_dir="/tmp/nginx", http_port=80, https_port=443)


def svc(name: str, ip: str = "10.0.0.1", port: int = 8000) -> list[dict]:
    return [{"metadata": {"name": name, "namespace": NS}, "spec": {"ports": [{"name": "http", "port": 80}]}},
            {"metadata": {"name": f"{name}-1", "namespace": NS, "labels": {model.SERVICE_NAME_LABEL: name}},
             "ports": [{"name": "http", "port": port}],
             "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}]}]


GC = {"metadata": {"name": "kubelab", "generation": 1}, "spec": {"controllerName": gw.CONTROLLER_NAME}}
OTHER_GC = {"metadata": {"name": "other"}, "spec": {"controllerName": "example.com/other"}}


def gateway(*listeners: dict, name: str = "gw", cls: str = "kubelab", ts: str = "2026-01-01T00:00:00Z") -> dict:
    return {"metadata": {"name": name, "namespace": NS, "generation": 1, "creationTimestamp": ts},
            "spec": {"gatewayClassName": cls, "listeners": list(listeners)}}


def route(name: str, *rules: dict, hostnames=(), parent: dict | None = None, ns: str = NS,
          ts: str = "2026-01-01T00:00:00Z") -> dict:
    return {"metadata": {"name": name, "namespace": ns, "generation": 3, "creationTimestamp": ts},
            "spec": {"parentRefs": [parent or {"name": "gw", "namespace": NS}], "hostnames": list(hostnames),
                     "rules": list(rules)}}


def rule(*matches: dict, backends=(("a", 1),), filters=()) -> dict:
    return {"matches": list(matches), "filters": list(filters),
            "backendRefs": [{"name": n, "port": 80, "weight": w} for n, w in backends]}


HTTP = {"name": "http", "port": 8080, "protocol": "HTTP"}


def build(gateways, routes, services=("a", "b"), secrets=()):
    objs = [o for n in services for o in svc(n, port=8000 + len(n))]
    return gw.build(gatewayclasses=[GC, OTHER_GC], gateways=gateways, httproutes=routes,
                    services=[o for o in objs if "spec" in o], endpointslices=[o for o in objs if "spec" not in o],
                    secrets=list(secrets))


def cond(conds: list[dict], t: str) -> tuple[str, str]:
    c = next(c for c in conds if c["type"] == t)
    return c["status"], c["reason"]


def test_class_and_gateway_status():
    r = build([gateway(HTTP, {"name": "ing", "port": 80, "protocol": "HTTP"},
                       {"name": "tcp", "port": 9000, "protocol": "TCP"},
                       {"name": "clash", "port": 8080, "protocol": "HTTPS", "hostname": "x.test",
                        "tls": {"certificateRefs": [{"name": "c"}]}}),
               gateway(HTTP, name="theirs", cls="other")], [])
    assert cond(r.class_status["kubelab"]["conditions"], "Accepted") == ("True", "Accepted")
    assert "other" not in r.class_status and f"{NS}/theirs" not in r.gateway_status
    st = r.gateway_status[f"{NS}/gw"]
    assert cond(st["conditions"], "Accepted") == ("True", "Accepted")
    assert cond(st["conditions"], "Programmed") == ("True", "Programmed")
    ls = {x["name"]: x for x in st["listeners"]}
    assert cond(ls["http"]["conditions"], "Programmed") == ("True", "Programmed")
    assert cond(ls["ing"]["conditions"], "Accepted") == ("False", "PortUnavailable")
    assert cond(ls["tcp"]["conditions"], "Accepted") == ("False", "UnsupportedProtocol")
    assert cond(ls["clash"]["conditions"], "Conflicted") == ("True", "ProtocolConflict")
    assert ls["http"]["supportedKinds"] == [{"group": gw.GROUP, "kind": "HTTPRoute"}]


def test_unsupported_class_parameters_and_addresses_are_refused_in_status():
    gc = {"metadata": {"name": "kubelab"}, "spec": {"controllerName": gw.CONTROLLER_NAME,
                                                    "parametersRef": {"group": "x", "kind": "Y", "name": "z"}}}
    r = gw.build(gatewayclasses=[gc], gateways=[gateway(HTTP)], httproutes=[], services=[], endpointslices=[],
                 secrets=[])
    assert cond(r.class_status["kubelab"]["conditions"], "Accepted") == ("False", "InvalidParameters")
    assert r.gateway_status == {}
    g = gateway(HTTP)
    g["spec"]["addresses"] = [{"type": "IPAddress", "value": "192.0.2.1"}]
    st = build([g], [route("r", rule())]).gateway_status[f"{NS}/gw"]
    assert cond(st["conditions"], "Accepted") == ("False", "UnsupportedAddress")
    assert cond(st["conditions"], "Programmed") == ("False", "Invalid")
    assert cond(st["listeners"][0]["conditions"], "Programmed") == ("False", "Invalid")


def test_https_certificate_refs():
    secret_ok = {"metadata": {"name": "c", "namespace": "elsewhere"}, "type": "kubernetes.io/tls",
                 "data": {"tls.crt": "eA==", "tls.key": "eA=="}}
    https = {"name": "s", "port": 8443, "protocol": "HTTPS", "tls": {"certificateRefs": [
        {"name": "c", "namespace": "elsewhere"}]}}
    missing = {"name": "m", "port": 8444, "protocol": "HTTPS", "tls": {"certificateRefs": [{"name": "nope"}]}}
    st = build([gateway(https, missing)], [], secrets=[secret_ok]).gateway_status[f"{NS}/gw"]
    ls = {x["name"]: x for x in st["listeners"]}
    assert cond(ls["s"]["conditions"], "ResolvedRefs") == ("False", "RefNotPermitted")   # no ReferenceGrant
    assert cond(ls["m"]["conditions"], "ResolvedRefs") == ("False", "InvalidCertificateRef")
    assert cond(st["conditions"], "Programmed") == ("False", "Invalid")


def test_reference_grants_allow_cross_namespace_refs():
    cert = {"metadata": {"name": "c", "namespace": "certs"}, "type": "kubernetes.io/tls",
            "data": {"tls.crt": "eA==", "tls.key": "eA=="}}
    https = {"name": "s", "port": 8443, "protocol": "HTTPS",
             "tls": {"certificateRefs": [{"name": "c", "namespace": "certs"}]}}
    backend = {"metadata": {"name": "b", "namespace": "apps"}, "spec": {"ports": [{"port": 80}]}}
    r = route("r", {"backendRefs": [{"name": "b", "namespace": "apps", "port": 80}]})

    def grant(ns: str, from_kind: str, to_kind: str, name: str | None = None) -> dict:
        return {"metadata": {"name": "g", "namespace": ns}, "spec": {
            "from": [{"group": gw.GROUP, "kind": from_kind, "namespace": NS}],
            "to": [{"group": "", "kind": to_kind, **({"name": name} if name else {})}]}}

    def reasons(grants: list[dict]) -> tuple:
        res = gw.build(gatewayclasses=[GC], gateways=[gateway(https)], httproutes=[r], services=[backend],
                       endpointslices=[], secrets=[cert], referencegrants=grants)
        listener = res.gateway_status[f"{NS}/gw"]["listeners"][0]["conditions"]
        return cond(listener, "ResolvedRefs")[1], cond(res.route_status[f"{NS}/r"][0]["conditions"], "ResolvedRefs")[1]
    assert reasons([]) == ("RefNotPermitted", "RefNotPermitted")
    # the cert's check stops at the (dummy) PEM: the grant itself was accepted
    assert reasons([grant("certs", "Gateway", "Secret", "c"), grant("apps", "HTTPRoute", "Service")]) == \
        ("InvalidCertificateRef", "ResolvedRefs")
    assert reasons([grant("certs", "Gateway", "Secret", "other"), grant("apps", "Gateway", "Service"),
                    grant(NS, "HTTPRoute", "Service")]) == ("RefNotPermitted", "RefNotPermitted")


def test_hostname_intersection():
    assert gw.intersect(None, []) == [gw.CATCH_ALL]
    assert gw.intersect("*.example.com", []) == ["*.example.com"]
    assert gw.intersect("*.example.com", ["a.example.com", "a.b.example.com", "example.com", "x.org"]) == \
        ["a.b.example.com", "a.example.com"]
    assert gw.intersect("a.example.com", ["*.example.com"]) == ["a.example.com"]
    assert gw.intersect(None, ["x.org"]) == ["x.org"]


def test_route_parent_status_reasons():
    g = gateway(dict(HTTP, hostname="*.shop.test"))
    routes = [route("ok", rule(), hostnames=["www.shop.test"]),
              route("nohost", rule(), hostnames=["www.other.test"]),
              route("missing", rule(backends=(("ghost", 1),))),
              route("xns", {"backendRefs": [{"name": "a", "namespace": "other", "port": 80}]}),
              route("foreign", rule(), ns="other", parent={"name": "gw", "namespace": NS}),
              route("section", rule(), parent={"name": "gw", "namespace": NS, "sectionName": "nope"}),
              route("regex", rule({"path": {"type": "RegularExpression", "value": "/a.*"}})),
              route("rewrite", rule(filters=[{"type": "URLRewrite", "urlRewrite": {"hostname": "x"}}]))]
    r = build([g], routes)

    def parent(name: str, ns: str = NS) -> dict:
        return r.route_status[f"{ns}/{name}"][0]
    assert cond(parent("ok")["conditions"], "Accepted") == ("True", "Accepted")
    assert cond(parent("ok")["conditions"], "ResolvedRefs") == ("True", "ResolvedRefs")
    assert parent("ok")["controllerName"] == gw.CONTROLLER_NAME
    assert parent("ok")["parentRef"] == {"group": gw.GROUP, "kind": "Gateway", "name": "gw", "namespace": NS}
    assert cond(parent("ok")["conditions"], "Accepted")[0] == "True"
    assert cond(parent("nohost")["conditions"], "Accepted") == ("False", "NoMatchingListenerHostname")
    assert cond(parent("missing")["conditions"], "ResolvedRefs") == ("False", "BackendNotFound")
    assert cond(parent("xns")["conditions"], "ResolvedRefs") == ("False", "RefNotPermitted")
    assert cond(parent("foreign", "other")["conditions"], "Accepted") == ("False", "NotAllowedByListeners")
    assert cond(parent("section")["conditions"], "Accepted") == ("False", "NoMatchingParent")
    for name, field in (("regex", "spec.rules[0].matches[0].path.type"), ("rewrite", "spec.rules[0].filters[0].type")):
        c = next(c for c in parent(name)["conditions"] if c["type"] == "Accepted")
        assert (c["status"], c["reason"]) == ("False", "UnsupportedValue") and field in c["message"]
    assert r.gateway_status[f"{NS}/gw"]["listeners"][0]["attachedRoutes"] == 3   # ok, missing, xns
    assert all(c["observedGeneration"] == 3 for c in parent("ok")["conditions"])


def test_precedence_across_routes():
    """Exact > longest prefix > method > more headers > more query params > oldest route."""
    g = gateway(HTTP)
    newer = route("newer", rule({"path": {"type": "PathPrefix", "value": "/api"}}, backends=(("b", 1),)),
                  ts="2026-02-01T00:00:00Z")
    older = route("older", rule({"path": {"type": "PathPrefix", "value": "/api"}}),
                  rule({"path": {"type": "PathPrefix", "value": "/api"}, "headers": [{"name": "X-A", "value": "1"}]}),
                  rule({"path": {"type": "PathPrefix", "value": "/api"}, "method": "POST"}),
                  rule({"path": {"type": "PathPrefix", "value": "/api/v1"}}),
                  rule({"path": {"type": "Exact", "value": "/api"}}))
    s = build([g], [newer, older]).config.servers[0]
    order = [(m.path, m.method, len(m.headers), m.target) for m in s.matches]
    assert order == [("/api", "", 0, f"{NS}__older__4"), ("/api/v1", "", 0, f"{NS}__older__3"),
                     ("/api", "POST", 0, f"{NS}__older__2"), ("/api", "", 1, f"{NS}__older__1"),
                     ("/api", "", 0, f"{NS}__older__0"), ("/api", "", 0, f"{NS}__newer__0")]


def test_hostile_values_are_refused_in_status():
    bad = [rule({"headers": [{"name": "X-A", "value": "$http_authorization"}]}),
           rule({"path": {"type": "PathPrefix", "value": "/a;b"}}),
           rule({"path": {"type": "PathPrefix", "value": "/.kubelab-gw/x"}}),
           rule(filters=[{"type": "RequestHeaderModifier", "requestHeaderModifier": {
               "set": [{"name": "X-A", "value": 'a"; return 200 "pwned'}]}}])]
    r = build([gateway(HTTP)], [route(f"r{i}", b) for i, b in enumerate(bad)])
    for i in range(len(bad)):
        assert cond(r.route_status[f"{NS}/r{i}"][0]["conditions"], "Accepted") == ("False", "UnsupportedValue")
    assert r.config.servers == ()


def _render(gateways, routes) -> str:
    empty, _ = model.build(ingresses=[], classes=[], services=[], endpointslices=[], secrets=[])
    return nginxconf.render(empty, PATHS, build(gateways, routes).config)


def test_whole_gateway_config():
    r = route("r", rule({"path": {"type": "PathPrefix", "value": "/"}}, backends=(("a", 90), ("b", 10))),
              rule({"path": {"type": "Exact", "value": "/h"}, "headers": [{"name": "X-Env", "value": "a.b"}]},
                   filters=[{"type": "RequestHeaderModifier", "requestHeaderModifier": {
                       "set": [{"name": "X-S", "value": "1"}], "add": [{"name": "X-Add", "value": "2"}],
                       "remove": ["X-Rm"]}}]),
              rule({"path": {"type": "Exact", "value": "/old"}}, backends=(),
                   filters=[{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]),
              hostnames=["shop.test"])
    text = _render([gateway(HTTP)], [r])
    gw_part = text[text.index("    # Gateway API"):]
    assert gw_part == '''    # Gateway API: per listener, the rule each request gets (precedence order in each map)
    map "" $gw0_l0 {
        default shop__r__0;
    }
    map $http_x_env $gw0_c0 { "~^a[.]b$" 1; default 0; }
    map "$gw0_c0" $gw0_l1 {
        "~^1" shop__r__1;
        default shop__r__0;
    }
    map "" $gw0_l2 {
        default shop__r__2;
    }
    split_clients "$request_id" $gw0_s_shop__r__0 {
        90.00% "shop_a_80";  # shop/a:80
        * "shop_b_80";  # shop/b:80
    }
    map $http_x_add $gw0_a_shop__r__1_0 { "" "2"; default "$http_x_add,2"; }
    # gateway listener on port 8080, hostname shop.test
    server {
        server_name "shop.test";
        listen 8080;
        location "/" {
            if ($gw0_l0 = "") { return 404; }
            rewrite ^ /.kubelab-gw/$gw0_l0 last;
        }
        location = "/h" {
            if ($gw0_l1 = "") { return 404; }
            rewrite ^ /.kubelab-gw/$gw0_l1 last;
        }
        location = "/old" {
            if ($gw0_l2 = "") { return 404; }
            rewrite ^ /.kubelab-gw/$gw0_l2 last;
        }
        # shop/r#0
        location = "/.kubelab-gw/shop__r__0" {
            internal;
            if ($gw0_s_shop__r__0 = "gw-invalid") { return 500; }
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_pass http://$gw0_s_shop__r__0$request_uri;
        }
        # shop/r#1
        location = "/.kubelab-gw/shop__r__1" {
            internal;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-S "1";
            proxy_set_header X-Add $gw0_a_shop__r__1_0;
            proxy_set_header X-Rm "";
            proxy_pass http://shop_a_80$request_uri;
        }
        # shop/r#2
        location = "/.kubelab-gw/shop__r__2" {
            internal;
            return 301 "https://$host$request_uri";
        }
    }
    # gateway port 8080: hostnames no listener/route claims
    server {
        listen 8080 default_server;
        return 404;
    }
}
'''
    assert "upstream shop_a_80 {  # shop/a:80\n        server 10.0.0.1:8001;" in text


@pytest.mark.skipif(shutil.which("nginx") is None, reason="needs nginx")
def test_nginx_accepts_the_rendered_file(tmp_path):
    r = route("r", rule({"path": {"type": "PathPrefix", "value": "/a"}, "method": "GET",
                         "queryParams": [{"name": "v", "value": "x^]y"}]}, backends=(("a", 3), ("b", 1), ("ghost", 1))),
              rule({"path": {"type": "PathPrefix", "value": "/a/b"}}))
    paths = nginxconf.Paths(conf_dir=str(tmp_path), run_dir=str(tmp_path), listen="127.0.0.1", http_port=1,
                            https_port=2, health_port=3, default_backend_port=4)
    empty, _ = model.build(ingresses=[], classes=[], services=[], endpointslices=[], secrets=[])
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginxconf.render(empty, paths, build([gateway(HTTP)], [r]).config))
    p = subprocess.run(["nginx", "-t", "-q", "-e", "stderr", "-c", str(conf)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr


def test_controller_writes_status_once_and_keeps_transition_times():
    """The controller patches a status only when it changed (a patch is a watch event, which
    is a sync: writing every time would loop), keeping lastTransitionTime of unchanged conditions."""
    import asyncio

    from kubelab.ingress.controller import Controller

    class Client:
        def __init__(self) -> None:
            self.patches: list[tuple[str, str, dict]] = []

        async def patch(self, plural, name, *, namespace=None, subresource=None, patch=None):
            self.patches.append((plural, name, patch))

    objs = {"gatewayclasses": [dict(GC)], "gateways": [gateway(HTTP)],
            "httproutes": [route("r", rule(), hostnames=["a.test"])]}
    client = Client()
    ctl = Controller(client, None)
    result = build(objs["gateways"], objs["httproutes"])
    asyncio.run(ctl._gateway_status(objs, result, True))
    assert sorted(p[0] for p in client.patches) == ["gatewayclasses", "gateways", "httproutes"]
    for plural, _, patch in client.patches:   # what the API server now stores
        obj = objs[plural][0]
        obj["status"] = patch["status"]
    client.patches.clear()
    asyncio.run(ctl._gateway_status(objs, result, True))
    assert client.patches == []
    # a route's backend disappears: only its ResolvedRefs condition gets a new time
    old_accepted = next(c for c in objs["httproutes"][0]["status"]["parents"][0]["conditions"]
                        if c["type"] == "Accepted")
    asyncio.run(ctl._gateway_status(objs, build(objs["gateways"], objs["httproutes"], services=("b",)), True))
    (plural, _, patch), = client.patches
    conds = {c["type"]: c for c in patch["status"]["parents"][0]["conditions"]}
    assert conds["Accepted"]["lastTransitionTime"] == old_accepted["lastTransitionTime"]
    assert conds["ResolvedRefs"]["reason"] == "BackendNotFound"
