"""An agnhost-compatible test server (the `agnhost` image of the catalogue), in Python.

  netexec [--http-port 8080] [--udp-port 8081]   /hostname /clientip /echo?msg= /healthz
                                                  /exit?code= /header?key= /shutdown
  serve-hostname [--port 9376] [--udp] [--http]  answers every request with the hostname
"""

from __future__ import annotations

import argparse
import os
import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def netexec_handler(hostname: str):
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
            if u.path in ("/", "/hostname"):
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="agnhost", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    ne = sub.add_parser("netexec")
    ne.add_argument("--http-port", type=int, default=8080)
    ne.add_argument("--udp-port", type=int, default=8081)
    sh = sub.add_parser("serve-hostname")
    sh.add_argument("--port", type=int, default=9376)
    sh.add_argument("--udp", action="store_true")
    sh.add_argument("--http", action="store_true", default=True)
    sh.add_argument("--tcp", action="store_true")
    args = p.parse_args(argv)
    hostname = socket.gethostname()
    if args.cmd == "netexec":
        if args.udp_port > 0:
            udp_echo(args.udp_port, hostname)
        print(f"Started HTTP server on port {args.http_port}", flush=True)
        _Server(("0.0.0.0", args.http_port), netexec_handler(hostname)).serve_forever()
        return 0
    if args.udp:
        udp_echo(args.port, hostname)
    print(f"Serving hostname {hostname} on port {args.port}", flush=True)
    if args.tcp and not args.http:
        with socket.create_server(("0.0.0.0", args.port)) as s:
            while True:
                conn, _ = s.accept()
                with conn:
                    conn.sendall(hostname.encode())
    _Server(("0.0.0.0", args.port), netexec_handler(hostname)).serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
