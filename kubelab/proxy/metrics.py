"""The proxy's metrics (Prometheus text format) and its tiny HTTP endpoints.

Names follow upstream kube-proxy (pkg/proxy/metrics) so dashboards and docs carry over:
`kubeproxy_sync_proxy_rules_duration_seconds`, `kubeproxy_sync_proxy_rules_last_timestamp_seconds`,
`kubeproxy_network_programming_duration_seconds`. The HTTP server is plain asyncio streams:
two GET paths do not need a web framework.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import math
from typing import Callable

log = logging.getLogger(__name__)

SYNC_BUCKETS = tuple(0.001 * 2**i for i in range(15))  # 1 ms … 16 s (upstream ExponentialBuckets(0.001, 2, 15))
NETPROG_BUCKETS = (0.25, 0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                   25, 30, 35, 40, 45, 50, 55, 60, 90, 120, 180, 240, 300)


class Histogram:
    def __init__(self, name: str, help_: str, buckets: tuple[float, ...]) -> None:
        self.name, self.help, self.buckets = name, help_, buckets
        self.counts = [0] * len(buckets)
        self.sum = 0.0
        self.count = 0

    def observe(self, v: float) -> None:
        self.sum += v
        self.count += 1
        for i, b in enumerate(self.buckets):
            if v <= b:
                self.counts[i] += 1

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for b, c in zip(self.buckets, self.counts):
            out.append(f'{self.name}_bucket{{le="{b:g}"}} {c}')
        out.append(f'{self.name}_bucket{{le="+Inf"}} {self.count}')
        out.append(f"{self.name}_sum {self.sum}")
        out.append(f"{self.name}_count {self.count}")
        return out


class Metrics:
    """All kube-proxy metrics we export."""

    def __init__(self) -> None:
        self.sync_duration = Histogram(
            "kubeproxy_sync_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds", SYNC_BUCKETS)
        self.network_programming = Histogram(
            "kubeproxy_network_programming_duration_seconds",
            "In Cluster Network Programming Latency in seconds (EndpointSlice change seen → rules applied)",
            NETPROG_BUCKETS)
        self.last_sync_timestamp = 0.0
        self.last_queued_timestamp = 0.0
        self.syncs_applied = 0  # syncs that sent a transaction to the kernel
        self.sync_failures = 0
        self.rules_bytes = 0

    def render(self) -> str:
        out = self.sync_duration.render() + self.network_programming.render()
        gauges = [
            ("kubeproxy_sync_proxy_rules_last_timestamp_seconds", "The last time proxy rules were successfully synced",
             self.last_sync_timestamp),
            ("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
             "The last time a sync of proxy rules was queued", self.last_queued_timestamp),
            ("kubelab_proxy_last_transaction_bytes", "Size of the last ruleset transaction sent to the kernel",
             self.rules_bytes),
        ]
        for name, help_, v in gauges:
            out += [f"# HELP {name} {help_}", f"# TYPE {name} gauge", f"{name} {v}"]
        counters = [
            ("kubelab_proxy_syncs_applied_total", "Syncs that applied a transaction", self.syncs_applied),
            ("kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
             "Failed transactions (nft -f or iptables-restore)", self.sync_failures),
        ]
        for name, help_, v in counters:
            out += [f"# HELP {name} {help_}", f"# TYPE {name} counter", f"{name} {v}"]
        return "\n".join(out) + "\n"


Handler = Callable[[], tuple[int, str, str]]  # → (status, content type, body)


def parse_bind(addr: str, default_port: int) -> tuple[str, int]:
    """`0.0.0.0:10256`, `127.0.0.1`, `:10249` → (host, port)."""
    host, sep, port = addr.rpartition(":")
    if not sep:
        return addr or "0.0.0.0", default_port
    return host or "0.0.0.0", int(port) if port else default_port


async def serve(host: str, port: int, routes: dict[str, Handler]) -> asyncio.AbstractServer:
    """A minimal HTTP/1.0-style GET server: one request per connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await asyncio.wait_for(reader.readline(), 10)).decode("latin-1")
            while (await asyncio.wait_for(reader.readline(), 10)) not in (b"\r\n", b"\n", b""):
                pass
            parts = line.split()
            path = parts[1].split("?")[0] if len(parts) >= 2 else "/"
            handler = routes.get(path)
            if handler is None:
                status, ctype, body = 404, "text/plain", "404 page not found\n"
            else:
                status, ctype, body = handler()
            data = body.encode()
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}.get(status, "")
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(data)}\r\n"
                f"Connection: close\r\n\r\n".encode() + data
            )
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)


def healthz_body(*, healthy: bool, last_updated: float, now: float) -> tuple[int, str, str]:
    def ts(t: float) -> str | None:
        if not t or math.isinf(t):
            return None
        return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat()

    body = json.dumps({"lastUpdated": ts(last_updated), "currentTime": ts(now), "healthy": healthy})
    return (200 if healthy else 503), "application/json", body + "\n"
