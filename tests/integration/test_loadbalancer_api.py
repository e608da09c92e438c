"""The LoadBalancer controller against a real API server and etcd, driven by the real kubectl.

One controller process for the module (pool of 4 addresses from TEST-NET-2, never routed):
a burst of concurrent creates gets distinct addresses and the rest stays `<pending>` with an
Event saying why; kubectl's EXTERNAL-IP column and `describe` show both; a freed address goes
to a waiting Service; bad load-balancer fields are refused with the field named.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile

import httpx
import pytest

from kubelab.client import NotFound
from kubelab.loadbalancer import pool as lbpool
from kubelab.testing import Proc, eventually, free_port, wait_until

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

POOL = "198.51.100.10-198.51.100.13"


@pytest.fixture(scope="module")
def controller(apiserver):
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="kubelab-lb-", suffix=".log", delete=False)
    proc = Proc(subprocess.Popen(
        [sys.executable, "-m", "kubelab.loadbalancer", "controller", "--server", apiserver.url, "--pool", POOL,
         "--bind-address", "127.0.0.1", "--secure-port", str(port), "--v=2"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True), log.name)
    log.close()
    try:
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200,
                   timeout=30, what="the controller's /readyz")
        proc.port = port
        yield proc
    finally:
        proc.cleanup()


@pytest.fixture
def kubectl(apiserver, namespace):
    home = tempfile.mkdtemp(prefix="kubelab-kubectl-")
    env = {**os.environ, "HOME": home, "KUBECONFIG": apiserver.kubeconfig, "KUBECACHEDIR": f"{home}/cache"}

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([KUBECTL, "-n", namespace, *args], env=env, capture_output=True, text=True,
                              input=input, timeout=60)
    yield run
    shutil.rmtree(home, ignore_errors=True)


def lb(name: str, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "selector": {"app": name}, "ports": [{"port": 80}], **spec}}


def ips(svc: dict) -> tuple[str, ...]:
    return lbpool.service_lb(svc).current_ips


async def test_burst_of_creates_distinct_addresses_pending_explained_and_freed(controller, api, namespace, kubectl):
    # the pool may hold addresses of other modules' Services: count what is free now
    names = [f"burst-{i}" for i in range(7)]
    await asyncio.gather(*(api.create("services", lb(n), namespace=namespace) for n in names))

    async def settled():
        items = (await api.list("services", namespace=namespace))["items"]
        got = {s["metadata"]["name"]: ips(s) for s in items}
        return got if sum(1 for v in got.values() if v) == 4 else None
    got = await eventually(settled, timeout=30, what="4 of 7 Services with an address")
    assigned = [v[0] for v in got.values() if v]
    assert sorted(assigned) == sorted(lbpool.parse_pool(POOL).addresses())  # distinct, all from the pool
    pending = sorted(n for n, v in got.items() if not v)

    table = kubectl("get", "svc", "-o", "wide").stdout.splitlines()
    assert table[0].split()[:5] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"]
    rows = {r.split()[0]: r.split() for r in table[1:]}
    for n, v in got.items():
        assert rows[n][1] == "LoadBalancer" and rows[n][3] == (v[0] if v else "<pending>"), table

    async def explained():
        evs = (await api.list("events", namespace=namespace))["items"]
        return {e["involvedObject"]["name"] for e in evs if e["reason"] == "AllocationFailed"} >= set(pending)
    await eventually(explained, timeout=20, what="an AllocationFailed Event for each pending Service")
    text = kubectl("describe", "svc", pending[0]).stdout
    assert "AllocationFailed" in text and "no available IPs in the pool" in text, text
    text = kubectl("describe", "svc", next(n for n, v in got.items() if v)).stdout
    assert "IPAllocated" in text and "LoadBalancer Ingress:" in text, text

    # free one: a waiting Service gets exactly that address
    victim = next(n for n, v in got.items() if v)
    await api.delete("services", victim, namespace=namespace)

    async def moved():
        items = (await api.list("services", namespace=namespace))["items"]
        now = {s["metadata"]["name"]: ips(s) for s in items}
        return now if any(now.get(p) == got[victim] for p in pending) else None
    now = await eventually(moved, timeout=20, what="the freed address going to a pending Service")
    taken = [v[0] for v in now.values() if v]
    assert len(taken) == len(set(taken)) == 4

    # a type change frees the address and clears the status
    owner = next(n for n, v in now.items() if v)
    await api.patch("services", owner, {"spec": {"type": "ClusterIP"}}, namespace=namespace)

    async def cleared():
        return not ips(await api.get("services", owner, namespace=namespace))
    await eventually(cleared, timeout=20, what="status.loadBalancer cleared after the type change")
    metrics = httpx.get(f"http://127.0.0.1:{controller.port}/metrics", timeout=5).text
    assert "kubelab_lb_addresses_total 4.0" in metrics and "kubelab_lb_addresses_in_use_total" in metrics
    for n in names:
        try:
            await api.delete("services", n, namespace=namespace)
        except Exception:
            pass


async def test_requested_address_honoured_or_pending_with_reason(controller, api, namespace):
    await api.create("services", lb("outside", loadBalancerIP="203.0.113.7"), namespace=namespace)

    async def reason():
        evs = (await api.list("events", namespace=namespace))["items"]
        return [e["message"] for e in evs if e["involvedObject"]["name"] == "outside"
                and e["reason"] == "AllocationFailed"]
    (msg, *_) = await eventually(reason, timeout=20, what="an Event for the address outside the pool")
    assert "203.0.113.7 is not in the pool 198.51.100.10-198.51.100.13" in msg
    assert not ips(await api.get("services", "outside", namespace=namespace))
    # another controller's class is left alone (no status, no Event)
    await api.create("services", lb("foreign", loadBalancerClass="example.com/other"), namespace=namespace)
    # (nothing to wait for: its absence is checked once the next Service, created after it, settled)
    await api.create("services", lb("mine", loadBalancerClass=lbpool.DEFAULT_CLASS,
                                    allocateLoadBalancerNodePorts=False), namespace=namespace)

    async def mine():
        return ips(await api.get("services", "mine", namespace=namespace))
    await eventually(mine, timeout=30, what="an address for the Service of the lab's class")
    got = await api.get("services", "mine", namespace=namespace)
    assert "nodePort" not in got["spec"]["ports"][0]  # allocateLoadBalancerNodePorts: false is honoured
    assert not ips(await api.get("services", "foreign", namespace=namespace))


BAD = [
    ({"loadBalancerIP": "300.1.2.3"}, "spec.loadBalancerIP", "must be a valid IPv4 address"),
    ({"loadBalancerIP": "fd00::1"}, "spec.loadBalancerIP", "IPv4 only"),
    ({"loadBalancerSourceRanges": ["10.0.0.0/8", "nonsense"]}, "spec.loadBalancerSourceRanges[1]",
     "must be a list of IP ranges"),
    ({"loadBalancerSourceRanges": ["10.1.2.3"]}, "spec.loadBalancerSourceRanges[0]", "must be a list of IP ranges"),
    ({"loadBalancerClass": "not a/class/at all"}, "spec.loadBalancerClass", "Invalid value"),
    ({"type": "ClusterIP", "loadBalancerSourceRanges": ["10.0.0.0/8"]}, "spec.loadBalancerSourceRanges",
     "may only be used when `type` is 'LoadBalancer'"),
    ({"type": "NodePort", "loadBalancerIP": "198.51.100.10"}, "spec.loadBalancerIP",
     "may only be used when `type` is 'LoadBalancer'"),
    ({"type": "ClusterIP", "loadBalancerClass": "kubelab.io/l2"}, "spec.loadBalancerClass", "may only be used"),
]


@pytest.mark.parametrize("spec, field, message", BAD)
async def test_bad_load_balancer_fields_are_refused_naming_the_field(api, namespace, spec, field, message):
    import json
    async with httpx.AsyncClient(base_url=api.server, timeout=10) as h:
        r = await h.post(f"/api/v1/namespaces/{namespace}/services", json=lb("bad", **spec))
    assert r.status_code == 422, r.text
    body = json.loads(r.text)
    causes = body["details"]["causes"]
    assert any(c["field"] == field and message in c["message"] for c in causes), causes
    with pytest.raises(NotFound):
        await api.get("services", "bad", namespace=namespace)  # nothing was stored


async def test_load_balancer_class_is_fixed_once_set(api, namespace):
    await api.create("services", lb("fixed", loadBalancerClass="example.com/a"), namespace=namespace)
    async with httpx.AsyncClient(base_url=api.server, timeout=10) as h:
        r = await h.patch(f"/api/v1/namespaces/{namespace}/services/fixed",
                          json={"spec": {"loadBalancerClass": "example.com/b"}},
                          headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 422 and "spec.loadBalancerClass" in r.text and "may not change once set" in r.text


def test_kubectl_shows_the_warning_for_health_check_node_port(kubectl):
    p = kubectl("create", "-f", "-", input="apiVersion: v1\nkind: Service\nmetadata: {name: hc}\nspec:\n"
                "  type: LoadBalancer\n  externalTrafficPolicy: Local\n  healthCheckNodePort: 32000\n"
                "  selector: {app: hc}\n  ports: [{port: 80}]\n")
    assert p.returncode == 0, p.stderr
    assert "Warning: spec.healthCheckNodePort: not served by kubelab" in p.stderr


async def test_status_is_written_only_through_the_status_subresource(api, namespace):
    """An editor may write Services but not services/status (RBAC: only the controller and
    admins): a status in a write of the Service itself is dropped, so no address can be
    smuggled in that way."""
    await api.create("services", {**lb("smuggle", allocateLoadBalancerNodePorts=False),
                                  "status": {"loadBalancer": {"ingress": [{"ip": "10.96.0.1"}]}}},
                     namespace=namespace)
    await api.patch("services", "smuggle", {"status": {"loadBalancer": {"ingress": [{"ip": "10.96.0.1"}]}}},
                    namespace=namespace)
    got = await api.get("services", "smuggle", namespace=namespace)
    assert "10.96.0.1" not in ips(got)
    async with httpx.AsyncClient(base_url=api.server, timeout=10) as h:
        r = await h.patch(f"/api/v1/namespaces/{namespace}/services/smuggle/status",
                          json={"status": {"loadBalancer": {"ingress": [{"ip": "not-an-ip", "ipMode": "Tunnel"}]}}},
                          headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 422, r.text
    assert "status.loadBalancer.ingress[0].ip" in r.text and "status.loadBalancer.ingress[0].ipMode" in r.text
