"""The DNS server's metrics and its `/health`, `/ready`, `/metrics` app.

Counting stays plain Python (dict and int increments on the query path, which the DNS
benchmark measures); `prometheus_client` reads the numbers at scrape time through a
collector and writes the exposition. Names are CoreDNS's where CoreDNS has the metric
(`coredns_dns_requests_total`, `coredns_dns_responses_total`,
`coredns_dns_request_duration_seconds`, with its `server`/`zone`/`view` labels); the
`kubelab_dns_*` series are the fast path's, the snapshot's and the forwarder's own.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from starlette.responses import PlainTextResponse

from kubelab import serving

# Seconds; CoreDNS's request duration histogram starts at 0.25 ms, we need finer.
BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
           0.1, 0.25, 0.5, 1.0, 2.5)
SERVER, ZONE, VIEW = "dns://:53", ".", ""  # CoreDNS's labels for a `.:53 { ... }` server block
_EXTRA = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([a-zA-Z_]+)="([^"]*)"\})?')


class Metrics(Collector):
    """Counters the server bumps per query; a prometheus_client collector over them."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}  # (proto, qtype, rcode) → count
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.duration_sum = 0.0
        self.fast_hits = 0
        self.dropped = 0
        self.snapshot_builds = 0
        self.snapshot_names = 0
        self.extra: Callable[[], dict[str, float]] | None = None  # e.g. forwarder counters: 'name{label="v"}' → n
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self)

    def count(self, proto: str, qtype: str, rcode: str) -> None:
        key = (proto, qtype, rcode)
        self.requests[key] = self.requests.get(key, 0) + 1

    def observe(self, seconds: float) -> None:
        self.buckets[bisect_left(BUCKETS, seconds)] += 1
        self.duration_sum += seconds

    def describe(self):
        return []

    def collect(self):
        labels = ["server", "zone", "view"]
        requests = CounterMetricFamily("coredns_dns_requests", "Counter of DNS requests made per zone, protocol "
                                       "and family.", labels=[*labels, "proto", "family", "type"])
        responses = CounterMetricFamily("coredns_dns_responses", "Counter of response status codes.",
                                        labels=[*labels, "rcode", "plugin"])
        by_request: dict[tuple[str, str], int] = {}
        by_rcode: dict[str, int] = {}
        for (proto, qtype, rcode), n in sorted(self.requests.items()):
            by_request[(proto, qtype)] = by_request.get((proto, qtype), 0) + n
            by_rcode[rcode] = by_rcode.get(rcode, 0) + n
        for (proto, qtype), n in by_request.items():
            requests.add_metric([SERVER, ZONE, VIEW, proto, "1", qtype], n)
        for rcode, n in by_rcode.items():
            responses.add_metric([SERVER, ZONE, VIEW, rcode, ""], n)
        yield requests
        yield responses
        cumulative, buckets = 0, []
        for le, n in zip((*BUCKETS, float("inf")), self.buckets):
            cumulative += n
            buckets.append(("+Inf" if le == float("inf") else repr(le), cumulative))
        hist = HistogramMetricFamily("coredns_dns_request_duration_seconds",
                                     "Histogram of the time (in seconds) each request took.", labels=labels)
        hist.add_metric([SERVER, ZONE, VIEW], buckets, self.duration_sum)
        yield hist
        samples: dict[str, float] = {
            'kubelab_dns_cache_hits_total{cache="answers"}': self.fast_hits,
            "kubelab_dns_dropped_total": self.dropped,
            "kubelab_dns_snapshot_builds_total": self.snapshot_builds,
            "kubelab_dns_snapshot_names": self.snapshot_names,
        }
        if self.extra is not None:
            samples.update(self.extra())
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for key, value in sorted(samples.items()):
            m = _EXTRA.fullmatch(key)
            if m is None:
                continue
            name, label, label_value = m.groups()
            counter = name.endswith("_total")
            base = name[:-len("_total")] if counter else name
            fam = families.get(base)
            if fam is None:
                kind = CounterMetricFamily if counter else GaugeMetricFamily
                fam = families[base] = kind(base, f"kubelab DNS: {base.removeprefix('kubelab_dns_')}",
                                            labels=[label] if label else None)
            fam.add_metric([label_value] if label else [], value)
        yield from families.values()

    def render(self) -> str:
        return generate_latest(self.registry).decode()


def status_app(metrics: Metrics, ready: Callable[[], bool]):
    """CoreDNS's `health` (/health) and `ready` (/ready) plugins' answers, the upstream-style
    /healthz,/readyz,/livez, and /metrics, in one app served on both ports."""

    async def health(request) -> PlainTextResponse:
        return PlainTextResponse("OK\n")

    async def readiness(request) -> PlainTextResponse:
        return PlainTextResponse("OK\n") if ready() else PlainTextResponse("not ready\n", status_code=503)

    checks = serving.HealthChecks()
    checks.add("zone-synced", lambda: None if ready() else "no snapshot served yet", to=("readyz",))
    return serving.status_app(metrics.registry, checks, extra={"/health": health, "/ready": readiness})
