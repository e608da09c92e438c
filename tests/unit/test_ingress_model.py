"""kubelab.ingress's pure core: the model's routing rules (which Ingresses are ours, who owns a
path, ready endpoints only, TLS Secrets, hostile input refused) and the whole nginx.conf for a
small shop, compared line by line (as proxy's whole-ruleset tests do)."""

from __future__ import annotations

import datetime
from base64 import b64encode

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubelab.ingress import model, nginxconf


def b(s: str) -> str:
    return b64encode(s.encode()).decode()


def _pair() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shop.example.com")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


CERT, KEY = _pair()
OTHER_CERT, _ = _pair()


CLS = {"metadata": {"name": "nginx", "annotations": {model.DEFAULT_CLASS_ANNOTATION: "true"}},
       "spec": {"controller": model.CONTROLLER}}


def svc(name: str, port: int = 80, pname: str = "http") -> dict:
    return {"metadata": {"namespace": "shop", "name": name},
            "spec": {"ports": [{"name": pname, "port": port, "targetPort": 8080}]}}


def sl(name: str, *ips: str, ready: bool = True, pname: str = "http") -> dict:
    return {"metadata": {"namespace": "shop", "name": name + "-x", "labels": {model.SERVICE_NAME_LABEL: name}},
            "ports": [{"name": pname, "port": 8080}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}} for ip in ips]}


def be(name: str, n: int = 80) -> dict:
    return {"service": {"name": name, "port": {"number": n}}}


def ing(name: str, rules: list, *, ts: str = "2026-01-01T00:00:00Z", cls: str | None = None, **spec) -> dict:
    return {"metadata": {"namespace": "shop", "name": name, "creationTimestamp": ts},
            "spec": {"rules": rules, **({"ingressClassName": cls} if cls else {}), **spec}}


def rule(host: str, *paths: tuple[str, str, str]) -> dict:
    return {"host": host, "http": {"paths": [{"path": p, "pathType": t, "backend": be(s)} for p, t, s in paths]}}


WEB = ing("web", [rule("shop.example.com", ("/", "Prefix", "front"), ("/api/", "Prefix", "api"),
                       ("/health", "Exact", "down")),
                  rule("*.dev.example.com", ("/static", "ImplementationSpecific", "front"))],
          defaultBackend=be("fallback"), tls=[{"hosts": ["shop.example.com"], "secretName": "shop-tls"}])
SECRET = {"metadata": {"namespace": "shop", "name": "shop-tls"}, "type": "kubernetes.io/tls",
          "data": {"tls.crt": b(CERT), "tls.key": b(KEY)}}
SERVICES = [svc("front"), svc("api"), svc("down"), svc("fallback")]
SLICES = [sl("front", "10.244.1.5", "10.244.2.7"), sl("api", "10.244.1.9"), sl("down", "10.244.1.3", ready=False),
          sl("fallback", "10.244.2.2")]


def build(*ingresses: dict, classes=(CLS,), services=SERVICES, slices=SLICES, secrets=(SECRET,)):
    return model.build(ingresses=ingresses, classes=classes, services=services, endpointslices=slices,
                       secrets=secrets)


WHOLE = r'''
# Rendered by kubelab's ingress controller (python -m kubelab.ingress): do not edit,
# every change of an Ingress, Service, EndpointSlice or TLS Secret rewrites it.
worker_processes 1;
pid /tmp/nginx/nginx.pid;
error_log stderr notice;
events { worker_connections 1024; }
http {
    default_type application/octet-stream;
    access_log /dev/stdout;
    server_tokens off;
    server_names_hash_bucket_size 128;
    client_body_temp_path /tmp/nginx/client_body;
    proxy_temp_path /tmp/nginx/proxy;
    fastcgi_temp_path /tmp/nginx/fastcgi;
    uwsgi_temp_path /tmp/nginx/uwsgi;
    scgi_temp_path /tmp/nginx/scgi;
    # what every proxied request carries (ingress-nginx sets the same headers)
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-Host $host;
    proxy_connect_timeout 5s;
    proxy_next_upstream error timeout;

    # the controller's default backend: unknown hosts and unclaimed paths get its 404
    upstream upstream-default-backend { server 127.0.0.1:8181; }
    server {
        listen 127.0.0.1:8181;
        location / { return 404 "default backend - 404\n"; }
    }
    # readiness/liveness: answers once the first config is loaded
    server {
        listen 10254;
        location = /healthz { return 200 "ok\n"; }
    }

    # one upstream per Service port: its ready endpoints, by pod IP
    upstream shop_api_80 {  # shop/api:80
        server 10.244.1.9:8080;
        keepalive 16;
    }
    upstream shop_fallback_80 {  # shop/fallback:80
        server 10.244.2.2:8080;
        keepalive 16;
    }
    upstream shop_front_80 {  # shop/front:80
        server 10.244.1.5:8080;
        server 10.244.2.7:8080;
        keepalive 16;
    }

    # host _ (catch-all: unknown hosts and rules without a host)
    server {
        server_name _;
        listen 80 default_server;
        listen 443 ssl default_server;
        ssl_reject_handshake on;  # no certificate for an unknown SNI name
        # ingress shop/web -> shop/fallback:80
        location "/" {
            proxy_pass http://shop_fallback_80;
        }
    }
    # host *.dev.example.com
    server {
        server_name "~^[^.]+\\.dev\\.example\\.com$";
        listen 80;
        # ingress shop/web -> shop/front:80
        location "/static" {
            proxy_pass http://shop_front_80;
        }
    }
    # host shop.example.com
    server {
        server_name "shop.example.com";
        listen 80;
        listen 443 ssl;
        ssl_certificate "/etc/nginx/certs/shop_shop-tls.crt";
        ssl_certificate_key "/etc/nginx/certs/shop_shop-tls.key";
        if ($scheme = "http") { return 308 https://$host$request_uri; }
        # ingress shop/web -> shop/front:80
        location ^~ "/" {
            proxy_pass http://shop_front_80;
        }
        # ingress shop/web -> shop/api:80
        location = "/api" {
            proxy_pass http://shop_api_80;
        }
        # ingress shop/web -> shop/api:80
        location ^~ "/api/" {
            proxy_pass http://shop_api_80;
        }
        # ingress shop/web -> shop/down:80
        location = "/health" {
            return 503;
        }
    }
}

'''


def test_whole_config():
    config, notices = build(WEB)
    assert notices == []
    assert nginxconf.render(config).splitlines() == WHOLE.strip("\n").splitlines()


def _locs(config: model.Config, host: str) -> dict[tuple[str, str], model.Location]:
    server = next(s for s in config.servers if s.host == host)
    return {(loc.modifier, loc.path): loc for loc in server.locations}


def test_class_selection_default_legacy_and_ignored():
    other = ing("other", [rule("o.example.com", ("/", "Prefix", "front"))], cls="traefik")
    plain = ing("plain", [rule("p.example.com", ("/", "Prefix", "front"))])
    legacy = ing("legacy", [rule("l.example.com", ("/", "Prefix", "front"))])
    legacy["metadata"]["annotations"] = {model.LEGACY_CLASS_ANNOTATION: "nginx"}
    config, notices = build(other, plain, legacy)
    hosts = {s.host for s in config.servers}
    assert hosts == {"_", "p.example.com", "l.example.com"}
    assert [(n.name, n.reason) for n in notices] == [("other", "Ignored")]
    not_default = {**CLS, "metadata": {"name": "nginx"}}
    config, notices = build(plain, classes=[not_default])
    assert {s.host for s in config.servers} == {"_"} and notices[0].reason == "Ignored"


def test_oldest_ingress_owns_a_path_and_exact_beats_prefix():
    old = ing("old", [rule("a.example.com", ("/x", "Prefix", "front"))], ts="2026-01-01T00:00:00Z")
    new = ing("new", [rule("a.example.com", ("/x", "Prefix", "api"), ("/x", "Exact", "api"))],
              ts="2026-01-02T00:00:00Z")
    config, notices = build(new, old)
    locs = _locs(config, "a.example.com")
    assert locs[("^~", "/x/")].ingress == "shop/old"
    assert locs[("=", "/x")].ingress == "shop/new"  # the Exact rule wins its `=` location
    assert {(n.name, n.reason) for n in notices} == {("old", "PathConflict"), ("new", "PathConflict")}


def test_ready_endpoints_only_named_ports_and_503():
    config, _ = build(ing("w", [rule("a.example.com", ("/", "Prefix", "down"), ("/f", "Exact", "front"),
                                      ("/m", "Exact", "missing"))]))
    locs = _locs(config, "a.example.com")
    assert locs[("^~", "/")].upstream == "" and locs[("=", "/m")].upstream == ""
    front = next(u for u in config.upstreams if u.name == locs[("=", "/f")].upstream)
    assert front.endpoints == (model.Endpoint("10.244.1.5", 8080), model.Endpoint("10.244.2.7", 8080))
    by_name = ing("n", [rule("a.example.com", ("/", "Prefix", "front"))])
    by_name["spec"]["rules"][0]["http"]["paths"][0]["backend"] = {"service": {"name": "front", "port": {"name": "http"}}}
    config, _ = build(by_name)
    assert config.upstreams[0].name == "shop_front_http" and len(config.upstreams[0].endpoints) == 2


def test_default_backend_is_the_controllers_404_without_one():
    config, _ = build(ing("w", [rule("a.example.com", ("/", "Prefix", "front"))]))
    assert _locs(config, "_")[("", "/")].upstream == model.DEFAULT_BACKEND


def test_bad_tls_secret_serves_http_with_a_warning():
    """A Secret nginx could not load would make `nginx -t` refuse every later change: refused here."""
    for bad, why in (({**SECRET, "type": "Opaque"}, "not of type"),
                     ({**SECRET, "data": {"tls.crt": b("-----BEGIN CERTIFICATE-----\nX\n"), "tls.key": b(KEY)}},
                      "not a PEM certificate"),
                     ({**SECRET, "data": {"tls.crt": b(CERT), "tls.key": b("junk")}}, "private key"),
                     ({**SECRET, "data": {"tls.crt": b(OTHER_CERT), "tls.key": b(KEY)}}, "does not match")):
        config, notices = build(WEB, secrets=[bad])
        assert next(s for s in config.servers if s.host == "shop.example.com").tls is None
        assert [n.reason for n in notices] == ["InvalidTLSSecret"] and why in notices[0].message, notices


def test_hostile_hosts_and_paths_are_refused():
    evil = ing("evil", [rule("a.example.com", ('/x";} server { listen 1; } #', "ImplementationSpecific", "front"),
                             ("/a;b", "ImplementationSpecific", "front"), ("/$uri", "Prefix", "front"),
                             ("/ok", "Prefix", "front")),
                        rule('a.com"; include /etc/passwd; #', ("/", "Prefix", "front"))])
    evil["metadata"]["annotations"] = {"nginx.ingress.kubernetes.io/configuration-snippet": "deny all;"}
    config, notices = build(evil)
    text = nginxconf.render(config)
    assert "listen 1;" not in text and "/etc/passwd" not in text and "$uri" not in text and "deny all" not in text
    assert sorted(n.reason for n in notices) == ["InvalidHost", "InvalidPath", "InvalidPath", "InvalidPath",
                                                 "UnsupportedAnnotation"]
    assert ("=", "/ok") in _locs(config, "a.example.com")


def test_quote_escapes():
    assert nginxconf.quote('a"b\\c') == '"a\\"b\\\\c"'


def test_status_addresses():
    svc_ = {"status": {"loadBalancer": {"ingress": [{"ip": "192.168.56.200"}, {"hostname": "lb.example.com"},
                                                     {"ip": "192.168.56.200"}]}}}
    assert model.status_addresses(svc_) == [{"ip": "192.168.56.200"}, {"hostname": "lb.example.com"}]
    assert model.status_addresses(None) == []
