"""The real proxy process against the real API server, programming a lab node namespace.

Hand-made Service + EndpointSlice objects (no controllers needed): the proxy's informers see
them, it programs the node namespace, and a client namespace's packets follow every change.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import socket
import subprocess
import sys
import time

import httpx
import pytest

from kubelab.proxy.testbed import HTTP_PORT, NODE_IP, Testbed, in_netns, http_get, sh

pytestmark = pytest.mark.root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_until(probe, *, timeout: float = 15.0, interval: float = 0.1):
    """Await `probe()` (sync, run in a thread) until it returns truthy without raising."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = await asyncio.to_thread(probe)
            if result:
                return result
        except (OSError, AssertionError) as e:
            last = e
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last error: {last!r})")


@pytest.fixture
def lab():
    with Testbed(backends=3) as tb:
        yield tb


@pytest.mark.parametrize("mode", ["nftables", "iptables"])
async def test_proxy_process_follows_service_and_endpointslice_changes(apiserver, api, namespace, lab, mode):
    node_name = f"node-{lab.id}"
    cluster_ip = f"10.96.{random.randint(100, 250)}.{random.randint(2, 250)}"
    await api.create("nodes", {"metadata": {"name": node_name}})
    try:
        await api.patch("nodes", node_name, {"status": {"addresses": [{"type": "InternalIP", "address": NODE_IP}]}},
                        subresource="status", patch_type="merge")
    except Exception:  # noqa: BLE001 - without node IPs the proxy falls back to any local address
        pass
    svc = await api.create("services", {
        "metadata": {"name": "web"},
        "spec": {"clusterIP": cluster_ip, "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": HTTP_PORT, "protocol": "TCP"}]}},
        namespace=namespace)
    cluster_ip = svc["spec"]["clusterIP"]

    def slice_body(ips):
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "web-abc", "labels": {"kubernetes.io/service-name": "web"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": node_name}
                              for ip in ips],
                "ports": [{"name": "http", "port": HTTP_PORT, "protocol": "TCP"}]}

    await api.create("endpointslices", slice_body(lab.backend_ips), namespace=namespace)

    healthz, metrics = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubelab.proxy", "--server", apiserver.url, "--node-name", node_name,
         "--mode", mode, "--netns", lab.node, "--min-sync-period", "100ms", "--sync-period", "30s",
         "--healthz-bind-address", f"127.0.0.1:{healthz}", "--metrics-bind-address", f"127.0.0.1:{metrics}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        def backends_seen():
            return collections.Counter(
                in_netns(lab.client, lambda: http_get(cluster_ip, 80, timeout=1)).split()[0] for _ in range(30))

        seen = await wait_until(lambda: len(backends_seen()) == 3)
        assert seen

        # one endpoint left: traffic follows
        cur = await api.get("endpointslices", "web-abc", namespace=namespace)
        await api.replace("endpointslices", "web-abc", {**slice_body(lab.backend_ips[:1]),
                                                         "metadata": cur["metadata"]}, namespace=namespace)
        await wait_until(lambda: set(backends_seen()) == {"b0"})

        # no endpoints: refused at once
        cur = await api.get("endpointslices", "web-abc", namespace=namespace)
        await api.replace("endpointslices", "web-abc", {**slice_body([]), "metadata": cur["metadata"]},
                          namespace=namespace)

        def refused():
            try:
                in_netns(lab.client, lambda: http_get(cluster_ip, 80, timeout=2))
            except ConnectionRefusedError:
                return True
            return False

        await wait_until(refused)

        # service deleted: its rules go away (the ClusterIP stops answering)
        await api.delete("services", "web", namespace=namespace)
        if mode == "nftables":
            await wait_until(lambda: cluster_ip not in lab.ns(lab.node, "nft", "list", "table", "ip",
                                                               "kube-proxy").stdout)
        else:
            await wait_until(lambda: cluster_ip not in lab.ns(lab.node, "iptables-save").stdout)

        async with httpx.AsyncClient() as c:
            h = await c.get(f"http://127.0.0.1:{healthz}/healthz")
            m = await c.get(f"http://127.0.0.1:{metrics}/metrics")
            mode_reply = await c.get(f"http://127.0.0.1:{metrics}/proxyMode")
        assert h.status_code == 200 and h.json()["healthy"]
        assert mode_reply.text == mode
        counts = {line.split()[0]: float(line.split()[1]) for line in m.text.splitlines()
                  if line and not line.startswith("#")}
        assert counts["kubeproxy_network_programming_duration_seconds_count"] >= 2
        assert counts["kubelab_proxy_syncs_applied_total"] >= 4
        assert proc.poll() is None
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        try:
            await api.delete("nodes", node_name)
        except Exception:  # noqa: BLE001
            pass
        cleanup = sh(sys.executable, "-m", "kubelab.proxy", "--cleanup", "--netns", lab.node, check=False)
    assert proc.returncode in (0, -15), out
    assert cleanup.returncode == 0, cleanup.stderr
    listing = lab.ns(lab.node, "nft", "list", "ruleset").stdout
    assert "kube-proxy" not in listing and "KUBE-" not in listing
