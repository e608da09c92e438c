"""nginx.conf from a `model.Config`: a pure renderer (no I/O), one string out.

Why a renderer and not nginx's own templating: the whole file is then a function of the
cluster's objects, so a test can compare it line by line (tests/unit/test_ingress_nginxconf.py)
and a student reads exactly what runs (`kubectl exec -n ingress-nginx POD -- cat
/etc/nginx/nginx.conf`). Each block is a named piece below, explained in docs/ingress.md.

Every value that comes from an API object is either an identifier the model built
(upstream names, cert file names) or a host/path the model checked against an allow-list;
paths and hosts are still written as quoted nginx strings (`quote`), so even a character
the checks missed could not end a directive.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubelab.ingress.model import CATCH_ALL, DEFAULT_BACKEND, Config, Location, Server

DEFAULT_BACKEND_PORT = 8181   # ingress-nginx's own default backend listens here too
HEALTH_PORT = 10254           # ingress-nginx's /healthz port


@dataclass(frozen=True)
class Paths:
    """Where the controller keeps its files (in the pod: an emptyDir on /etc/nginx, a tmpfs /tmp)."""

    conf_dir: str = "/etc/nginx"
    run_dir: str = "/tmp/nginx"
    listen: str = ""              # "" = all addresses; tests bind 127.0.0.1
    http_port: int = 80
    https_port: int = 443
    health_port: int = HEALTH_PORT
    default_backend_port: int = DEFAULT_BACKEND_PORT

    @property
    def cert_dir(self) -> str:
        return f"{self.conf_dir}/certs"


def quote(s: str) -> str:
    """An nginx double-quoted string: backslash and quote escaped."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _addr(paths: Paths, port: int) -> str:
    return f"{paths.listen}:{port}" if paths.listen else str(port)


def _server_name(host: str) -> str:
    if host == CATCH_ALL:
        return CATCH_ALL
    if host.startswith("*."):  # Kubernetes: `*` is exactly one label (nginx's `*.` would match more)
        return quote("~^[^.]+" + host[1:].replace(".", r"\.") + "$")
    return quote(host)


def _location(loc: Location) -> list[str]:
    head = f"location {loc.modifier + ' ' if loc.modifier else ''}{quote(loc.path)}"
    comment = f"        # ingress {loc.ingress} -> {loc.service}" if loc.ingress else \
        "        # no Ingress claims it: the controller's default backend"
    if loc.upstream == "":
        body = ["return 503;"]
    else:
        body = [f"proxy_pass http://{loc.upstream};"]
    return [comment, f"        {head} {{", *(f"            {b}" for b in body), "        }"]


def _server(s: Server, paths: Paths) -> list[str]:
    default = " default_server" if s.host == CATCH_ALL else ""
    out = [f"    # host {s.host}" + (" (catch-all: unknown hosts and rules without a host)" if default else ""),
           "    server {",
           f"        server_name {_server_name(s.host)};",
           f"        listen {_addr(paths, paths.http_port)}{default};"]
    if s.tls:
        out += [f"        listen {_addr(paths, paths.https_port)} ssl;",
                f"        ssl_certificate {quote(f'{paths.cert_dir}/{s.tls.name}.crt')};",
                f"        ssl_certificate_key {quote(f'{paths.cert_dir}/{s.tls.name}.key')};",
                '        if ($scheme = "http") { return 308 https://$host$request_uri; }']
    elif default:
        out += [f"        listen {_addr(paths, paths.https_port)} ssl default_server;",
                "        ssl_reject_handshake on;  # no certificate for an unknown SNI name"]
    for loc in s.locations:
        out += _location(loc)
    out.append("    }")
    return out


def render(config: Config, paths: Paths = Paths()) -> str:
    lines = [
        "# Rendered by kubelab's ingress controller (python -m kubelab.ingress): do not edit,",
        "# every change of an Ingress, Service, EndpointSlice or TLS Secret rewrites it.",
        "worker_processes 1;",
        f"pid {paths.run_dir}/nginx.pid;",
        "error_log stderr notice;",
        "events { worker_connections 1024; }",
        "http {",
        "    default_type application/octet-stream;",
        "    access_log /dev/stdout;",
        "    server_tokens off;",
        "    server_names_hash_bucket_size 128;",
        f"    client_body_temp_path {paths.run_dir}/client_body;",
        f"    proxy_temp_path {paths.run_dir}/proxy;",
        f"    fastcgi_temp_path {paths.run_dir}/fastcgi;",
        f"    uwsgi_temp_path {paths.run_dir}/uwsgi;",
        f"    scgi_temp_path {paths.run_dir}/scgi;",
        "    # what every proxied request carries (ingress-nginx sets the same headers)",
        "    proxy_http_version 1.1;",
        '    proxy_set_header Connection "";',
        "    proxy_set_header Host $host;",
        "    proxy_set_header X-Real-IP $remote_addr;",
        "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "    proxy_set_header X-Forwarded-Proto $scheme;",
        "    proxy_set_header X-Forwarded-Host $host;",
        "    proxy_connect_timeout 5s;",
        "    proxy_next_upstream error timeout;",
        "",
        "    # the controller's default backend: unknown hosts and unclaimed paths get its 404",
        f"    upstream {DEFAULT_BACKEND} {{ server 127.0.0.1:{paths.default_backend_port}; }}",
        "    server {",
        f"        listen 127.0.0.1:{paths.default_backend_port};",
        '        location / { return 404 "default backend - 404\\n"; }',
        "    }",
        "    # readiness/liveness: answers once the first config is loaded",
        "    server {",
        f"        listen {_addr(paths, paths.health_port)};",
        '        location = /healthz { return 200 "ok\\n"; }',
        "    }",
        "",
        "    # one upstream per Service port: its ready endpoints, by pod IP",
    ]
    for up in config.upstreams:
        lines.append(f"    upstream {up.name} {{  # {up.service}")
        lines += [f"        server {e.ip}:{e.port};" for e in up.endpoints]
        lines += ["        keepalive 16;", "    }"]
    lines.append("")
    for s in config.servers:
        lines += _server(s, paths)
    lines.append("}")
    return "\n".join(lines) + "\n"
