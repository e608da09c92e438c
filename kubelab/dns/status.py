"""`/health`, `/ready` and `/metrics` over a deliberately tiny HTTP/1.0 server.

Probes and Prometheus only ever send a GET and read one response, so asyncio streams are
enough; the kubelet-style readiness probe gets 503 until the first snapshot is served.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Callable

# Seconds; CoreDNS's request duration histogram starts at 0.25 ms, we need finer.
BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
           0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Counters the server bumps per query; rendered in the Prometheus text format."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}  # (proto, qtype, rcode) → count
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.duration_sum = 0.0
        self.fast_hits = 0
        self.dropped = 0
        self.snapshot_builds = 0
        self.snapshot_names = 0
        self.extra: Callable[[], dict[str, float]] | None = None  # e.g. forwarder counters

    def count(self, proto: str, qtype: str, rcode: str) -> None:
        key = (proto, qtype, rcode)
        self.requests[key] = self.requests.get(key, 0) + 1

    def observe(self, seconds: float) -> None:
        self.buckets[bisect_left(BUCKETS, seconds)] += 1
        self.duration_sum += seconds

    def render(self) -> str:
        out = [
            "# HELP kubelab_dns_requests_total DNS queries answered, by transport, type and rcode.",
            "# TYPE kubelab_dns_requests_total counter",
        ]
        for (proto, qtype, rcode), n in sorted(self.requests.items()):
            out.append(f'kubelab_dns_requests_total{{proto="{proto}",type="{qtype}",rcode="{rcode}"}} {n}')
        out += [
            "# HELP kubelab_dns_request_duration_seconds Time from packet in to answer out.",
            "# TYPE kubelab_dns_request_duration_seconds histogram",
        ]
        total = 0
        for le, n in zip((*BUCKETS, float("inf")), self.buckets):
            total += n
            le_text = "+Inf" if le == float("inf") else repr(le)
            out.append(f'kubelab_dns_request_duration_seconds_bucket{{le="{le_text}"}} {total}')
        out.append(f"kubelab_dns_request_duration_seconds_sum {self.duration_sum:.6f}")
        out.append(f"kubelab_dns_request_duration_seconds_count {total}")
        gauges = {
            "kubelab_dns_cache_hits_total{cache=\"answers\"}": self.fast_hits,
            "kubelab_dns_dropped_total": self.dropped,
            "kubelab_dns_snapshot_builds_total": self.snapshot_builds,
            "kubelab_dns_snapshot_names": self.snapshot_names,
        }
        if self.extra is not None:
            gauges.update(self.extra())
        typed: set[str] = set()
        for name, value in sorted(gauges.items()):  # sorted: one family's samples stay together
            base = name.split("{", 1)[0]
            if base not in typed:  # one TYPE line per metric family
                typed.add(base)
                out.append(f"# TYPE {base} {'counter' if base.endswith('_total') else 'gauge'}")
            out.append(f"{name} {value}")
        return "\n".join(out) + "\n"


async def serve_http(host: str, port: int, *, metrics: Metrics, ready: Callable[[], bool]) -> asyncio.Server:
    """Start the status server; returns it (its socket tells the bound port when port is 0)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while await asyncio.wait_for(reader.readline(), 5) not in (b"\r\n", b"\n", b""):
                pass  # headers: nothing in them changes the answer
            parts = request.decode("latin-1").split()
            path = parts[1].split("?", 1)[0] if len(parts) >= 2 else ""
            if path in ("/health", "/healthz"):
                status, body = "200 OK", "OK\n"
            elif path == "/ready":
                status, body = ("200 OK", "OK\n") if ready() else ("503 Service Unavailable", "not ready\n")
            elif path == "/metrics":
                status, body = "200 OK", metrics.render()
            else:
                status, body = "404 Not Found", "not found\n"
            data = body.encode()
            writer.write(
                f"HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
