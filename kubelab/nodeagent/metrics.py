"""The node agent's `/metrics` (port 10250, reached as the kubelet's through the API server's
node proxy: `kubectl get --raw /api/v1/nodes/NODE/proxy/metrics`), under the kubelet's names:
`kubelet_running_pods`, `kubelet_running_containers{container_state}`, `kubelet_node_name`;
plus `kubelab_nodeagent_container_restarts` (the sum of the restart counts the pods show),
which has no kubelet equivalent.

Read from the agent's pod workers at scrape time: nothing to keep in step on the pod path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .agent import NodeAgent

STATES = ("running", "waiting", "terminated")  # kubelet_running_containers' container_state values (+created)


class AgentCollector(Collector):
    def __init__(self, agent: "NodeAgent") -> None:
        self.agent = agent

    def describe(self):
        return []

    def collect(self):
        workers = [w for w in self.agent.workers.values() if not w.done]
        pods = GaugeMetricFamily("kubelet_running_pods", "Number of pods that have a running pod sandbox")
        pods.add_metric([], sum(1 for w in workers if getattr(w, "sandbox", None) is not None))
        yield pods
        by_state = dict.fromkeys(STATES, 0)
        restarts = 0
        for w in workers:
            for c in w.containers.values():
                by_state[c.state if c.state in by_state else "waiting"] += 1
                restarts += c.restart_count
        containers = GaugeMetricFamily("kubelet_running_containers", "Number of containers currently running",
                                       labels=["container_state"])
        for state, n in by_state.items():
            containers.add_metric([state], n)
        yield containers
        node = GaugeMetricFamily("kubelet_node_name", "The node's name. The count is always 1.", labels=["node"])
        node.add_metric([self.agent.cfg.node_name], 1)
        yield node
        r = GaugeMetricFamily("kubelab_nodeagent_container_restarts",
                              "Restarts of the containers of the pods this node runs (sum)")
        r.add_metric([], restarts)
        yield r


def registry_for(agent: "NodeAgent") -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(AgentCollector(agent))
    return registry
