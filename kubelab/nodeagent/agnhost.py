"""An agnhost-compatible test server (the `agnhost` image of the catalogue), in Python.

  netexec [--http-port 8080] [--udp-port 8081]   /hostname /clientip /echo?msg= /healthz
                                                  /exit?code= /header?key= /shutdown
                                                  /dial?host=&port=&request=&protocol=&tries=
  serve-hostname [--port 9376] [--tcp] [--udp] [--http[=false]]
                                                  answers every request with the hostname
  connect HOST:PORT [--timeout 1s] [--protocol tcp|udp|sctp]
                                                  exit 0 when connected; else TIMEOUT, REFUSED,
                                                  DNS: ... or OTHER: ... on stderr, exit 1
  porter                                          serves each SERVE_PORT_N (HTTP),
                                                  SERVE_UDP_PORT_N, SERVE_SCTP_PORT_N env var's
                                                  value on port N

Flags, outputs and exit codes follow upstream agnhost (test/images/agnhost); the NetworkPolicy
e2e model (kubelab.netpol.examples) runs `serve-hostname --tcp/--udp --http=false` per port
and probes with `connect`, as upstream's test/e2e/network/netpol does.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import socketserver
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def netexec_handler(hostname: str, *, every_path: bool = False):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # access log on stdout, as agnhost does
            sys.stdout.write("%s %s\n" % (self.address_string(), fmt % args))
            sys.stdout.flush()

        def reply(self, body: str, code: int = 200) -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802
            u = urlparse(self.path)
            q = parse_qs(u.query)
            if every_path or u.path in ("/", "/hostname"):  # serve-hostname: any path
                self.reply(hostname)
            elif u.path == "/clientip":
                self.reply(f"{self.client_address[0]}:{self.client_address[1]}")
            elif u.path == "/echo":
                self.reply((q.get("msg") or [""])[0])
            elif u.path == "/healthz":
                self.reply("ok")
            elif u.path == "/header":
                self.reply(self.headers.get((q.get("key") or [""])[0], ""))
            elif u.path == "/exit":
                code = int((q.get("code") or ["0"])[0])
                self.reply("")
                self.wfile.flush()
                os._exit(code)
            elif u.path == "/dial":
                code, body = dial(q)
                self.reply(body, code)
            elif u.path == "/shutdown":
                self.reply("")
                threading.Thread(target=self.server.shutdown, daemon=True).start()
            else:
                self.reply("404 page not found\n", 404)

        do_POST = do_GET

    return Handler


def udp_echo(port: int, hostname: str) -> None:
    class H(socketserver.BaseRequestHandler):
        def handle(self):
            data, sock = self.request
            text = data.decode(errors="replace").strip()
            if text == "hostname":
                out = hostname
            elif text.startswith("echo "):
                out = text[5:]
            elif text == "clientip":
                out = f"{self.client_address[0]}:{self.client_address[1]}"
            else:
                out = text
            sock.sendto(out.encode(), self.client_address)
    srv = socketserver.ThreadingUDPServer(("0.0.0.0", port), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()


DIAL_TIMEOUT = 5.0  # per try, as upstream's netexec


def dial(q: dict) -> tuple[int, str]:
    """netexec /dial: `tries` requests to host:port, JSON {"responses": [...], "errors": [...]};
    200 when the last try answered, 417 when it did not, 400 on bad parameters."""
    host, port = (q.get("host") or [""])[0], (q.get("port") or [""])[0]
    request, protocol = (q.get("request") or [""])[0], (q.get("protocol") or ["http"])[0]
    try:
        tries = int((q.get("tries") or ["1"])[0])
        port_n = int(port)
    except ValueError:
        return 400, "tries and port must be integers\n"
    if not host or not 0 < port_n < 65536 or protocol not in ("http", "udp") or not 0 < tries <= 100:
        return 400, "bad parameters: host, port (1-65535), protocol (http|udp), tries (1-100)\n"
    responses, errors, last_ok = [], [], False
    for _ in range(tries):
        try:
            if protocol == "http":
                path = request if request.startswith("/") else "/" + request
                with urllib.request.urlopen(f"http://{host}:{port_n}{path}", timeout=DIAL_TIMEOUT) as r:
                    responses.append(r.read().decode(errors="replace"))
            else:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.settimeout(DIAL_TIMEOUT)
                    s.sendto(request.encode(), (host, port_n))
                    responses.append(s.recv(65535).decode(errors="replace"))
            last_ok = True
        except (OSError, ValueError) as e:
            errors.append(str(e))
            last_ok = False
    return (200 if last_ok else 417), json.dumps({"responses": responses, "errors": errors})


def go_duration(text: str) -> float:
    """`1s`, `500ms`, `2m`: the Go durations agnhost's flags take."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for suffix in ("ms", "s", "m", "h"):
        if text.endswith(suffix):
            try:
                return float(text[: -len(suffix)]) * units[suffix]
            except ValueError:
                break
    raise argparse.ArgumentTypeError(f"invalid duration {text!r}")


def connect(dest: str, timeout: float, protocol: str) -> int:
    """agnhost connect: 0 when the connection is made; else one reason line on stderr and 1."""
    def fail(msg: str) -> int:
        sys.stderr.write(msg + "\n")
        return 1
    host, sep, port = dest.rpartition(":")
    if not sep or not host or not port.isdigit():
        return fail(f"Invalid destination: {dest}: missing port in address")
    try:
        addr = socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)[0][4]
    except (socket.gaierror, UnicodeError) as e:
        return fail(f"DNS: {dest}: {e}")
    kind = {"tcp": (socket.SOCK_STREAM, 0), "sctp": (socket.SOCK_STREAM, socket.IPPROTO_SCTP),
            "udp": (socket.SOCK_DGRAM, 0)}.get(protocol)
    if kind is None:
        return fail("Unsupported protocol")
    try:
        s = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET, *kind)
    except OSError as e:
        return fail(f"OTHER: {e}")
    with s:
        s.settimeout(timeout)
        try:
            s.connect(addr)
            if protocol == "udp":  # no handshake: a datagram must come back
                s.send(b"hostname\n")
                s.recv(1024)
            return 0
        except (socket.timeout, TimeoutError):
            return fail("TIMEOUT")
        except ConnectionRefusedError:
            return fail("REFUSED")
        except OSError as e:
            return fail(f"OTHER: {e}")


def porter(environ: dict[str, str], json_response: bool = False) -> int:
    """Serve each SERVE_PORT_N / SERVE_UDP_PORT_N / SERVE_SCTP_PORT_N value on port N."""
    started = 0
    for key, value in sorted(environ.items()):
        for prefix in ("SERVE_PORT_", "SERVE_UDP_PORT_", "SERVE_SCTP_PORT_", "SERVE_TLS_PORT_"):
            if key.startswith(prefix) and key[len(prefix):].isdigit():
                port = int(key[len(prefix):])
                try:
                    _porter_serve(prefix, port, value, json_response)
                    started += 1
                except OSError as e:
                    print(f"porter: cannot serve {key}: {e}", file=sys.stderr, flush=True)
    if not started:
        print("porter: no SERVE_PORT_*, SERVE_UDP_PORT_* or SERVE_SCTP_PORT_* variable to serve", file=sys.stderr)
        return 1
    while True:
        time.sleep(3600)


def _porter_serve(prefix: str, port: int, value: str, json_response: bool) -> None:
    if prefix == "SERVE_TLS_PORT_":
        raise OSError("TLS ports are not supported by kubelab's agnhost")
    if prefix == "SERVE_PORT_":
        class H(BaseHTTPRequestHandler):
            def log_message(self, fmt, *args):
                pass

            def do_GET(self):  # noqa: N802
                body = json.dumps({"Method": self.command, "Body": value}) if json_response else value
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            do_POST = do_GET
        srv = _Server(("0.0.0.0", port), H)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    elif prefix == "SERVE_UDP_PORT_":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", port))

        def udp() -> None:
            while True:
                _, peer = sock.recvfrom(65535)
                sock.sendto(value.encode(), peer)
        threading.Thread(target=udp, daemon=True).start()
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
        sock.listen(64)

        def sctp() -> None:
            while True:
                conn, _ = sock.accept()
                with conn:
                    conn.sendall(value.encode())
        threading.Thread(target=sctp, daemon=True).start()
    print(f"porter: serving {prefix}{port}", flush=True)


def _go_bool(text: str) -> bool:
    if text.lower() in ("true", "1", "t"):
        return True
    if text.lower() in ("false", "0", "f"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="agnhost", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    ne = sub.add_parser("netexec")
    ne.add_argument("--http-port", type=int, default=8080)
    ne.add_argument("--udp-port", type=int, default=8081)
    sh = sub.add_parser("serve-hostname")
    sh.add_argument("--port", type=int, default=9376)
    # Go bool flags: `--udp`, `--http=false`
    for flag, default in (("--udp", False), ("--http", True), ("--tcp", False)):
        sh.add_argument(flag, nargs="?", const=True, default=default, type=_go_bool)
    co = sub.add_parser("connect")
    co.add_argument("dest", metavar="HOST:PORT")
    co.add_argument("--timeout", type=go_duration, default=0.0, help="e.g. 1s (default: no timeout)")
    co.add_argument("--protocol", default="tcp", help="tcp (default), udp or sctp")
    po = sub.add_parser("porter")
    po.add_argument("--json-response", nargs="?", const=True, default=False, type=_go_bool)
    args = p.parse_args(argv)
    if args.cmd == "connect":
        return connect(args.dest, args.timeout or None, args.protocol)
    if args.cmd == "porter":
        return porter(dict(os.environ), args.json_response)
    hostname = socket.gethostname()
    if args.cmd == "netexec":
        if args.udp_port > 0:
            udp_echo(args.udp_port, hostname)
        print(f"Started HTTP server on port {args.http_port}", flush=True)
        _Server(("0.0.0.0", args.http_port), netexec_handler(hostname)).serve_forever()
        return 0
    if args.http and (args.tcp or args.udp):
        sys.stderr.write("Can't serve HTTP and TCP or UDP at the same time; use --http=false\n")
        return 1
    if args.udp:
        udp_echo(args.port, hostname)
    print(f"Serving hostname {hostname} on port {args.port}", flush=True)
    if args.udp and not args.tcp and not args.http:
        while True:
            time.sleep(3600)
    if args.tcp and not args.http:
        with socket.create_server(("0.0.0.0", args.port)) as s:
            while True:
                conn, _ = s.accept()
                with conn:
                    conn.sendall(hostname.encode())
    _Server(("0.0.0.0", args.port), netexec_handler(hostname, every_path=True)).serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
