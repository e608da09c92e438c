"""The proxy's metrics, in a `prometheus_client` registry of its own, and its /healthz body.

Names follow upstream kube-proxy (pkg/proxy/metrics) so dashboards and docs carry over:
`kubeproxy_sync_proxy_rules_duration_seconds` (with upstream's buckets),
`kubeproxy_sync_proxy_rules_last_timestamp_seconds`, `kubeproxy_network_programming_duration_seconds`.
The two `kubelab_proxy_*` series have no upstream equivalent (they show what a sync sent to
the kernel). Served on --metrics-bind-address by kubelab.serving.
"""

from __future__ import annotations

import datetime
import json
import math

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

SYNC_BUCKETS = tuple(0.001 * 2**i for i in range(15))  # 1 ms … 16 s (upstream ExponentialBuckets(0.001, 2, 15))
NETPROG_BUCKETS = (0.25, 0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                   25, 30, 35, 40, 45, 50, 55, 60, 90, 120, 180, 240, 300)


class Metrics:
    """All kube-proxy metrics we export, in `self.registry`."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.sync_duration = Histogram("kubeproxy_sync_proxy_rules_duration_seconds",
                                       "SyncProxyRules latency in seconds", buckets=SYNC_BUCKETS, registry=r)
        self.network_programming = Histogram(
            "kubeproxy_network_programming_duration_seconds",
            "In Cluster Network Programming Latency in seconds (EndpointSlice change seen → rules applied)",
            buckets=NETPROG_BUCKETS, registry=r)
        self.last_sync_timestamp = Gauge("kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                                         "The last time proxy rules were successfully synced", registry=r)
        self.last_queued_timestamp = Gauge("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
                                           "The last time a sync of proxy rules was queued", registry=r)
        self.rules_bytes = Gauge("kubelab_proxy_last_transaction_bytes",
                                 "Size of the last ruleset transaction sent to the kernel", registry=r)
        self.syncs_applied = Counter("kubelab_proxy_syncs_applied", "Syncs that applied a transaction", registry=r)
        self.sync_failures = Counter("kubeproxy_sync_proxy_rules_iptables_restore_failures",
                                     "Failed transactions (nft -f or iptables-restore)", registry=r)

    def value(self, name: str, labels: dict | None = None) -> float:
        """One sample's value (0 when absent): for tests and `kubelab` summaries."""
        return self.registry.get_sample_value(name, labels or {}) or 0.0


def healthz_body(*, healthy: bool, last_updated: float, now: float) -> tuple[int, str, str]:
    """kube-proxy's /healthz JSON: 200 when healthy, 503 when not."""
    def ts(t: float) -> str | None:
        if not t or math.isinf(t):
            return None
        return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat()

    body = json.dumps({"lastUpdated": ts(last_updated), "currentTime": ts(now), "healthy": healthy})
    return (200 if healthy else 503), "application/json", body + "\n"
