"""Requests/s through the ingress's nginx vs the same backend nginx hit directly, same run.

No lab and no root: the backend is Debian's nginx on 127.0.0.1 answering a fixed body (what
a pod's nginx does at its pod IP), and the ingress is nginx running the config kubelab's
controller renders (kubelab.ingress.model + nginxconf) for one Ingress whose EndpointSlice
points at that backend. One keep-alive client (raw asyncio streams, N connections) measures
both, one after the other; the figure is the ratio (issue 18's target: >= 0.8).

The client is Python: on a 2-core machine it may be the limit for the direct run, which
makes the ratio look better than it is; the absolute req/s are printed so that shows.

    .venv/bin/python bench/bench_ingress.py --seconds 5 --connections 8
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from kubelab.ingress import model, nginxconf  # noqa: E402
from kubelab.testing import free_port, wait_until  # noqa: E402

BACKEND_CONF = """worker_processes 1;
pid {run}/backend.pid;
error_log stderr error;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {run}/b1; proxy_temp_path {run}/b2; fastcgi_temp_path {run}/b3;
    uwsgi_temp_path {run}/b4; scgi_temp_path {run}/b5;
    server {{ listen 127.0.0.1:{port}; location / {{ return 200 "hello from the pod\\n"; }} }}
}}
"""


def ingress_conf(backend_port: int, paths: nginxconf.Paths) -> str:
    objs = dict(
        classes=[{"metadata": {"name": "nginx", "annotations": {model.DEFAULT_CLASS_ANNOTATION: "true"}},
                  "spec": {"controller": model.CONTROLLER}}],
        ingresses=[{"metadata": {"namespace": "bench", "name": "web"}, "spec": {"rules": [{
            "host": "bench.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                "service": {"name": "app", "port": {"number": 80}}}}]}}]}}],
        services=[{"metadata": {"namespace": "bench", "name": "app"}, "spec": {"ports": [{"port": 80}]}}],
        endpointslices=[{"metadata": {"namespace": "bench", "name": "app-1",
                                      "labels": {model.SERVICE_NAME_LABEL: "app"}},
                         "ports": [{"port": backend_port}],
                         "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]}],
        secrets=[])
    config, _ = model.build(**objs)
    # the benchmark measures proxying, not logging to a terminal
    return nginxconf.render(config, paths).replace("access_log /dev/stdout;", "access_log off;")


async def _worker(port: int, host: str, stop: float, counts: list[int]) -> None:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    req = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    n = 0
    try:
        while time.monotonic() < stop:
            w.write(req)
            status = await r.readline()
            if not status:  # nginx closes a keep-alive connection after keepalive_requests (1000)
                w.close()
                r, w = await asyncio.open_connection("127.0.0.1", port)
                continue
            length = 0
            while True:
                line = await r.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await r.readexactly(length)
            if b" 200 " not in status:
                raise RuntimeError(f"unexpected answer {status!r}")
            n += 1
    finally:
        counts.append(n)
        w.close()


async def measure(port: int, host: str, seconds: float, connections: int) -> float:
    counts: list[int] = []
    t0 = time.monotonic()
    await asyncio.gather(*(_worker(port, host, t0 + seconds, counts) for _ in range(connections)))
    return sum(counts) / (time.monotonic() - t0)


def _nginx(conf: str) -> subprocess.Popen:
    return subprocess.Popen(["nginx", "-e", "stderr", "-c", conf, "-g", "daemon off;"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--connections", type=int, default=8)
    a = p.parse_args()
    if shutil.which("nginx") is None:
        print("error: nginx is not installed", file=sys.stderr)
        return 1
    work = tempfile.mkdtemp(prefix="kubelab-bench-ingress-")
    procs: list[subprocess.Popen] = []
    try:
        bport = free_port()
        with open(f"{work}/backend.conf", "w") as f:
            f.write(BACKEND_CONF.format(run=work, port=bport))
        paths = nginxconf.Paths(conf_dir=work, run_dir=f"{work}/run", listen="127.0.0.1", http_port=free_port(),
                                https_port=free_port(), health_port=free_port(), default_backend_port=free_port())
        os.makedirs(paths.run_dir)
        with open(f"{work}/nginx.conf", "w") as f:
            f.write(ingress_conf(bport, paths))
        procs += [_nginx(f"{work}/backend.conf"), _nginx(f"{work}/nginx.conf")]
        wait_until(lambda: subprocess.run(["curl", "-sf", "--noproxy", "*", "-H", "Host: bench.test",
                                           f"http://127.0.0.1:{paths.http_port}/"], capture_output=True).returncode == 0,
                   timeout=20, what="nginx answering")
        direct = asyncio.run(measure(bport, "pod", a.seconds, a.connections))
        via = asyncio.run(measure(paths.http_port, "bench.test", a.seconds, a.connections))
        print(f"direct to the backend nginx: {direct:,.0f} req/s")
        print(f"through the ingress nginx:   {via:,.0f} req/s")
        print(f"ratio ingress/direct: {via / direct:.2f} (target >= 0.8; keep-alive, "
              f"{a.connections} connections, {a.seconds:g} s each, load {os.getloadavg()[0]:.1f})")
        return 0
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
