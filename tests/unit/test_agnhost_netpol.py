"""The agnhost subcommands the NetworkPolicy e2e model uses: `connect` (exit codes and reasons
as upstream), `porter` (SERVE_*_PORT_N env vars) and netexec's `/dial`, on loopback only."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import urllib.request

import pytest

from kubelab.nodeagent import agnhost
from kubelab.testing import _spawn, free_port, wait_until


def run(*args: str, env: dict | None = None, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubelab.nodeagent.agnhost", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_connect_ok_refused_and_bad_input():
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
        assert run("connect", f"127.0.0.1:{port}", "--timeout=1s").returncode == 0
    r = run("connect", f"127.0.0.1:{port}", "--timeout", "1s")
    assert (r.returncode, r.stderr) == (1, "REFUSED\n")
    r = run("connect", "127.0.0.1", "--timeout", "1s")
    assert r.returncode == 1 and r.stderr.startswith("Invalid destination: 127.0.0.1")
    r = run("connect", "no-such-host.invalid:80", "--timeout", "1s")
    assert r.returncode == 1 and r.stderr.startswith("DNS: no-such-host.invalid:80")
    r = run("connect", "127.0.0.1:80", "--protocol", "icmp")
    assert (r.returncode, r.stderr) == (1, "Unsupported protocol\n")
    assert "Traceback" not in r.stderr


def test_connect_udp_needs_an_answer():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

        def answer():
            data, peer = s.recvfrom(100)
            s.sendto(b"me", peer)
        t = threading.Thread(target=answer, daemon=True)
        t.start()
        assert run("connect", f"127.0.0.1:{port}", "--timeout=2s", "--protocol=udp").returncode == 0
    r = run("connect", f"127.0.0.1:{port}", "--timeout=1s", "--protocol=udp")
    assert r.returncode == 1 and r.stderr in ("REFUSED\n", "TIMEOUT\n")


def test_serve_hostname_refuses_http_with_tcp():
    r = run("serve-hostname", "--tcp", "--port", "1")
    assert r.returncode == 1 and "--http=false" in r.stderr


def test_porter_serves_env_values():
    http_port, udp_port = free_port(), free_port()
    env = {"PATH": "/usr/bin:/bin", f"SERVE_PORT_{http_port}": "foo", f"SERVE_UDP_PORT_{udp_port}": "bar"}
    p = _spawn([sys.executable, "-m", "kubelab.nodeagent.agnhost", "porter"], f"/tmp/porter-{http_port}.log", env=env)
    try:
        wait_until(lambda: socket.create_connection(("127.0.0.1", http_port), timeout=1).close() or True,
                   timeout=20, what="porter's HTTP port")
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/anything", timeout=5) as r:
            assert r.read() == b"foo"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(b"x", ("127.0.0.1", udp_port))
            assert s.recv(100) == b"bar"
    finally:
        p.cleanup()
    r = run("porter", env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 1 and "no SERVE_PORT_*" in r.stderr


def test_dial_reports_responses_and_errors():
    with socket.create_server(("127.0.0.1", 0)) as dead:
        dead_port = dead.getsockname()[1]
    code, body = agnhost.dial({"host": ["127.0.0.1"], "port": [str(dead_port)], "request": ["hostname"],
                               "protocol": ["http"], "tries": ["2"]})
    out = json.loads(body)
    assert code == 417 and out["responses"] == [] and len(out["errors"]) == 2
    assert agnhost.dial({"host": ["127.0.0.1"], "port": ["x"]})[0] == 400
    assert agnhost.dial({"host": ["127.0.0.1"], "port": ["80"], "protocol": ["sctp"]})[0] == 400


@pytest.mark.parametrize("text,seconds", [("1s", 1.0), ("500ms", 0.5), ("2m", 120.0)])
def test_go_durations(text, seconds):
    assert agnhost.go_duration(text) == seconds
