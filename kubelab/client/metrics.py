"""client-go's workqueue metrics for Prometheus: `workqueue_depth`, `workqueue_adds_total`,
`workqueue_retries_total`, `workqueue_queue_duration_seconds`, `workqueue_work_duration_seconds`,
`workqueue_unfinished_work_seconds`, `workqueue_longest_running_processor_seconds`, each
labelled `name` as upstream (the controller's or the scheduler's queue name).

Why a collector rather than counters bumped inside the queue: `WorkQueue` stays a pure data
structure that keeps plain numbers (`adds`, `retries`, who is waiting since when) and this
module reads them at scrape time; only the two latency histograms are fed by the queue's
`on_get`/`on_done` hooks.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .workqueue import WorkQueue

# upstream: ExponentialBuckets(10e-9, 10, 12) → 10 ns … 1000 s
DURATION_BUCKETS = tuple(10e-9 * 10**i for i in range(12))


class WorkqueueMetrics(Collector):
    """Register queues with `track(queue)`; the collector reports every tracked queue."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.queues: list[WorkQueue] = []
        self.queue_duration = Histogram("workqueue_queue_duration_seconds",
                                        "How long in seconds an item stays in workqueue before being requested.",
                                        ["name"], buckets=DURATION_BUCKETS, registry=registry)
        self.work_duration = Histogram("workqueue_work_duration_seconds",
                                       "How long in seconds processing an item from workqueue takes.",
                                       ["name"], buckets=DURATION_BUCKETS, registry=registry)
        registry.register(self)

    def track(self, queue: WorkQueue) -> WorkQueue:
        if not queue.name:
            raise ValueError("a tracked work queue needs a name (the metrics' `name` label)")
        self.queues.append(queue)
        queue.on_get = self.queue_duration.labels(queue.name).observe
        queue.on_done = self.work_duration.labels(queue.name).observe
        return queue

    def describe(self):
        return []  # described at collect time: the queues come and go with the controllers

    def collect(self):
        depth = GaugeMetricFamily("workqueue_depth", "Current depth of workqueue", labels=["name"])
        adds = CounterMetricFamily("workqueue_adds", "Total number of adds handled by workqueue", labels=["name"])
        retries = CounterMetricFamily("workqueue_retries", "Total number of retries handled by workqueue",
                                      labels=["name"])
        unfinished = GaugeMetricFamily(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been observed by "
            "work_duration.", labels=["name"])
        longest = GaugeMetricFamily("workqueue_longest_running_processor_seconds",
                                    "How many seconds has the longest running processor for workqueue been running.",
                                    labels=["name"])
        for q in self.queues:
            depth.add_metric([q.name], len(q))
            adds.add_metric([q.name], q.adds_total)
            retries.add_metric([q.name], q.retries_total)
            total, most = q.unfinished_seconds()
            unfinished.add_metric([q.name], total)
            longest.add_metric([q.name], most)
        yield from (depth, adds, retries, unfinished, longest)
