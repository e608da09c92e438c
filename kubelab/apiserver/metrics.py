"""Prometheus metrics for the API server (`/metrics`): requests by verb, resource and code,
their latency, and how many watches are open."""

from __future__ import annotations

import bisect
from collections import defaultdict

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[tuple[str, str], list[float]] = {}  # bucket counts + [sum, count]

    def observe(self, verb: str, resource: str, code: int, seconds: float) -> None:
        self.requests[(verb, resource, code)] += 1
        h = self.latency.get((verb, resource))
        if h is None:
            h = self.latency[(verb, resource)] = [0.0] * (len(BUCKETS) + 2)
        i = bisect.bisect_left(BUCKETS, seconds)
        if i < len(BUCKETS):
            h[i] += 1
        h[-2] += seconds
        h[-1] += 1

    def render(self, *, watchers: int) -> str:
        lines = ["# HELP apiserver_request_total Requests by verb, resource and HTTP code.",
                 "# TYPE apiserver_request_total counter"]
        for (verb, res, code), n in sorted(self.requests.items()):
            lines.append(f'apiserver_request_total{{verb="{verb}",resource="{res}",code="{code}"}} {n}')
        lines += ["# HELP apiserver_request_duration_seconds Request latency by verb and resource.",
                  "# TYPE apiserver_request_duration_seconds histogram"]
        for (verb, res), h in sorted(self.latency.items()):
            cum = 0.0
            for b, c in zip(BUCKETS, h):
                cum += c
                lines.append(f'apiserver_request_duration_seconds_bucket{{verb="{verb}",resource="{res}",le="{b}"}} {int(cum)}')
            lines.append(f'apiserver_request_duration_seconds_bucket{{verb="{verb}",resource="{res}",le="+Inf"}} {int(h[-1])}')
            lines.append(f'apiserver_request_duration_seconds_sum{{verb="{verb}",resource="{res}"}} {h[-2]:.6f}')
            lines.append(f'apiserver_request_duration_seconds_count{{verb="{verb}",resource="{res}"}} {int(h[-1])}')
        lines += ["# HELP apiserver_registered_watchers Open watch streams.",
                  "# TYPE apiserver_registered_watchers gauge", f"apiserver_registered_watchers {watchers}"]
        return "\n".join(lines) + "\n"
