"""The API server's Prometheus metrics (`/metrics`), under kube-apiserver's names: requests by
verb, resource and code (`apiserver_request_total`), their latency
(`apiserver_request_duration_seconds`, upstream's buckets), and the open watches
(`apiserver_registered_watchers`). One `prometheus_client` registry per app, so several API
servers in one test process never share numbers.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# kube-apiserver's request-duration buckets
BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60)


class Metrics:
    def __init__(self, *, watchers: Callable[[], int] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("apiserver_request_total",
                                "Counter of apiserver requests broken out for each verb, resource and HTTP "
                                "response code.", ["verb", "resource", "code"], registry=self.registry)
        self.latency = Histogram("apiserver_request_duration_seconds",
                                 "Response latency distribution in seconds for each verb and resource.",
                                 ["verb", "resource"], buckets=BUCKETS, registry=self.registry)
        self.watchers = Gauge("apiserver_registered_watchers", "Number of currently registered watchers.",
                              registry=self.registry)
        if watchers is not None:
            self.watchers.set_function(watchers)
        # the labelled children, looked up once: `.labels()` costs more than the update itself
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._histograms: dict[tuple[str, str], Histogram] = {}

    def observe(self, verb: str, resource: str, code: int, seconds: float) -> None:
        c = self._counters.get((verb, resource, code))
        if c is None:
            c = self._counters[(verb, resource, code)] = self.requests.labels(verb, resource, str(code))
        c.inc()
        h = self._histograms.get((verb, resource))
        if h is None:
            h = self._histograms[(verb, resource)] = self.latency.labels(verb, resource)
        h.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
