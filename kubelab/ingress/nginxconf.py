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

from kubelab.ingress import gateway as gw
from kubelab.ingress.model import CATCH_ALL, DEFAULT_BACKEND, Config, Location, Server, Upstream

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


# --- Gateway API servers ----------------------------------------------------------------------
# One `server` per (listener port, hostname). Each nginx location holds every match whose path
# can apply there (shorter prefixes included, so a request that fails a longer match's headers
# falls back, as the spec requires); a `map` per location picks the first match by precedence,
# and the chosen rule runs in an internal location (`/.kubelab-gw/<rule>`; the model refuses
# user paths there). Conditions are one `map` per match test (exact, case-sensitive regex of an
# escaped value), so a request header can never change how another one is read.
GW_INTERNAL = gw.INTERNAL_PREFIX + "/"
_BASE_HEADERS = ('proxy_set_header Connection "";', "proxy_set_header Host $host;",
                 "proxy_set_header X-Real-IP $remote_addr;",
                 "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                 "proxy_set_header X-Forwarded-Proto $scheme;", "proxy_set_header X-Forwarded-Host $host;")


def _re_exact(value: str) -> str:
    """A case-sensitive nginx regex matching exactly `value` (the model kept `$`, quotes and
    backslashes out): every other non-alphanumeric character goes in a one-character class."""
    body = "".join(c if c.isalnum() or c in " _-" else "\\" + c if c in "^]" else f"[{c}]" for c in value)
    return quote(f"~^{body}$")


def _gw_locations(s: gw.GwServer) -> list[tuple[str, str, bool]]:
    """(nginx modifier, location path, exact?) for each path the server's matches name:
    `= /p` and `^~ /p/` for a prefix (element-wise, as for Ingress), `= /p` for Exact, `/`."""
    locs: dict[tuple[str, str], bool] = {("", "/"): False}
    for m in s.matches:
        if m.exact:
            locs[("=", m.path)] = True
        elif m.path != "/":
            locs[("=", m.path)] = True
            locs[("^~", m.path + "/")] = False
    return [(mod, path, exact) for (mod, path), exact in sorted(locs.items(), key=lambda x: (x[0][1], x[0][0]))]


def _gw_server(s: gw.GwServer, idx: int, paths: Paths) -> tuple[list[str], list[str]]:
    """(http-level maps, the server block)."""
    maps: list[str] = []
    cond_var: dict[tuple[str, str], str] = {}

    def test(var: str, value: str) -> str:
        if (var, value) not in cond_var:
            name = cond_var[(var, value)] = f"$gw{idx}_c{len(cond_var)}"
            maps.append(f"    map {var} {name} {{ {_re_exact(value)} 1; default 0; }}")
        return cond_var[(var, value)]

    def tests(m: gw.Match) -> list[str]:
        return ([test("$request_method", m.method)] if m.method else []) + \
            [test("$http_" + n.replace("-", "_"), v) for n, v in m.headers] + \
            [test("$arg_" + n, v) for n, v in m.query]

    catch_all = s.host == gw.CATCH_ALL
    default = " default_server" if catch_all else ""
    out = [f"    # gateway listener on port {s.port}, hostname {s.host}", "    server {",
           f"        server_name {'_' if catch_all else quote(s.host)};"]
    if s.tls:
        out += [f"        listen {_addr(paths, s.port)} ssl{default};",
                f"        ssl_certificate {quote(f'{paths.cert_dir}/{s.tls.name}.crt')};",
                f"        ssl_certificate_key {quote(f'{paths.cert_dir}/{s.tls.name}.key')};"]
    else:
        out.append(f"        listen {_addr(paths, s.port)}{default};")
    for n, (mod, lpath, exact) in enumerate(_gw_locations(s)):
        cands = [m for m in s.matches if m.covers(lpath, exact)]
        out.append(f"        location {mod + ' ' if mod else ''}{quote(lpath)} {{")
        if not cands:
            out += ["            return 404;  # no rule matches this path", "        }"]
            continue
        # The map's key is every candidate's test results in precedence order; the first
        # candidate whose own slice is all 1s wins (map regexes are tried in file order).
        var, per = f"$gw{idx}_l{n}", [tests(m) for m in cands]
        key = "".join(v for t in per for v in t)
        lines, offset = [f"    map {quote(key)} {var} {{"], 0
        for m, t in zip(cands, per):
            if not t:
                lines.append(f"        default {m.target};")
                break
            lines.append(f"        {quote('~^' + '.' * offset + '1' * len(t))} {m.target};")
            offset += len(t)
        else:
            lines.append('        default "";')
        maps += [*lines, "    }"]
        out += [f'            if ({var} = "") {{ return 404; }}',
                f"            rewrite ^ {GW_INTERNAL}{var} last;", "        }"]
    for t in s.targets:
        out += _gw_target(t, idx, maps)
    out.append("    }")
    return maps, out


def _gw_target(t: gw.Target, idx: int, maps: list[str]) -> list[str]:
    out = [f"        # {t.route}", f"        location = {quote(GW_INTERNAL + t.name)} {{", "            internal;"]
    if t.redirect:
        code, url = t.redirect
        out += [f"            return {code} {quote(url)};", "        }"]
        return out
    live = [b for b in t.backends if b.weight > 0]
    if not live:
        out += ["            return 500;", "        }"]
        return out
    if len(live) == 1:
        up = live[0].upstream
        target = up
    else:
        var = f"$gw{idx}_s_{t.name}"
        total = sum(b.weight for b in live)
        lines = [f'    split_clients "$request_id" {var} {{']
        for b in live[:-1]:
            lines.append(f"        {100 * b.weight / total:.2f}% {quote(b.upstream or 'gw-invalid')};  # {b.service}")
        lines.append(f"        * {quote(live[-1].upstream or 'gw-invalid')};  # {live[-1].service}")
        lines.append("    }")
        maps += lines
        target = var
    if target == "":
        out += ["            return 500;", "        }"]
        return out
    if target.startswith("$"):
        out.append(f'            if ({target} = "gw-invalid") {{ return 500; }}')
    out += [f"            {h}" for h in _BASE_HEADERS if not any(
        h.lower().startswith(f"proxy_set_header {n.lower()} ") for n in
        [*(x for x, _ in t.set_headers), *(x for x, _ in t.add_headers), *t.remove_headers])]
    for n, v in t.set_headers:
        out.append(f"            proxy_set_header {n} {quote(v)};")
    for k, (n, v) in enumerate(t.add_headers):
        var = f"$gw{idx}_a_{t.name}_{k}"
        hvar = "$http_" + n.lower().replace("-", "_")
        maps.append(f'    map {hvar} {var} {{ "" {quote(v)}; default {quote(hvar + "," + v)}; }}')
        out.append(f"            proxy_set_header {n} {var};")
    for n in t.remove_headers:
        out.append(f'            proxy_set_header {n} "";')
    out += [f"            proxy_pass http://{target}$request_uri;", "        }"]
    return out


def _gw_render(config: gw.GwConfig, paths: Paths) -> tuple[list[str], list[str]]:
    maps: list[str] = []
    servers: list[str] = []
    for i, s in enumerate(config.servers):
        m, srv = _gw_server(s, i, paths)
        maps += m
        servers += srv
    # a port without a catch-all listener hostname: unknown hosts get 404 (TLS: no handshake),
    # not the first server nginx happens to list
    ports = {s.port: s.tls is not None for s in config.servers}
    for port in sorted(set(ports) - {s.port for s in config.servers if s.host == gw.CATCH_ALL}):
        servers += [f"    # gateway port {port}: hostnames no listener/route claims", "    server {",
                    f"        listen {_addr(paths, port)}{' ssl' if ports[port] else ''} default_server;",
                    *(["        ssl_reject_handshake on;"] if ports[port] else []),
                    "        return 404;", "    }"]
    return maps, servers


def render(config: Config, paths: Paths = Paths(), gateway: gw.GwConfig | None = None) -> str:
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
    gw_maps, gw_servers = _gw_render(gateway, paths) if gateway else ([], [])
    ups: dict[str, Upstream] = {u.name: u for u in config.upstreams}
    for u in gateway.upstreams if gateway else ():
        ups.setdefault(u.name, u)
    for up in (ups[k] for k in sorted(ups)):
        lines.append(f"    upstream {up.name} {{  # {up.service}")
        lines += [f"        server {e.ip}:{e.port};" for e in up.endpoints]
        lines += ["        keepalive 16;", "    }"]
    lines.append("")
    for s in config.servers:
        lines += _server(s, paths)
    if gw_servers:
        lines += ["", "    # Gateway API: per listener, the rule each request gets (precedence order in each map)",
                  *gw_maps, *gw_servers]
    lines.append("}")
    return "\n".join(lines) + "\n"
