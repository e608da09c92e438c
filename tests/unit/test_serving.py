"""kubelab.serving (every component's /metrics, /healthz, /readyz, /livez) and the client-go
workqueue metrics: upstream's wording for health checks, the Prometheus exposition, and the
HTTPS status port that refuses callers without a lab-CA client certificate."""

from __future__ import annotations

import ssl

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from kubelab import serving
from kubelab.pki import ca as pki
from kubelab.client import WorkQueue
from kubelab.client.clock import FakeClock
from kubelab.client.metrics import WorkqueueMetrics


def test_health_report_wording():
    checks = {"ping": lambda: None, "informer-sync": lambda: "caches not synced yet"}
    assert serving.health_report("/livez", {"ping": lambda: None}, verbose=False) == (200, "ok")
    assert serving.health_report("/livez", {"ping": lambda: None}, verbose=True) == \
        (200, "[+]ping ok\nlivez check passed\n")
    status, body = serving.health_report("/readyz", checks, verbose=False)
    assert status == 500 and body == "[+]ping ok\n[-]informer-sync failed: reason withheld\nreadyz check failed\n"
    assert serving.health_report("/readyz", checks, verbose=True, exclude=("informer-sync",))[0] == 200
    assert serving.health_report("/readyz", checks, verbose=False, only="informer-sync") == \
        (500, "internal server error: informer-sync failed: caches not synced yet\n")
    assert serving.health_report("/readyz", checks, verbose=False, only="nope")[0] == 404

    def broken():
        raise RuntimeError("boom")
    assert serving.health_report("/healthz", {"b": broken}, verbose=True)[0] == 500  # a failing check, not a crash


async def test_workqueue_metrics_follow_the_queue():
    registry = CollectorRegistry()
    wq = WorkqueueMetrics(registry)
    t = FakeClock(start=100.0)
    q = wq.track(WorkQueue(name="deployment", clock=t))
    q.add("a")
    q.add("a")  # de-duplicated: one add
    q.add("b")
    t.step(2)
    key = await q.get()
    t.step(3)
    text = generate_latest(registry).decode()
    assert 'workqueue_depth{name="deployment"} 1.0' in text
    assert 'workqueue_adds_total{name="deployment"} 2.0' in text
    assert 'workqueue_longest_running_processor_seconds{name="deployment"} 3.0' in text
    assert 'workqueue_queue_duration_seconds_count{name="deployment"} 1.0' in text
    q.done(key)
    q.add_rate_limited("c")
    text = generate_latest(registry).decode()
    assert 'workqueue_work_duration_seconds_sum{name="deployment"} 3.0' in text
    assert 'workqueue_retries_total{name="deployment"} 1.0' in text
    assert 'workqueue_unfinished_work_seconds{name="deployment"} 0.0' in text
    q.shutdown()
    with pytest.raises(ValueError):
        wq.track(WorkQueue())  # the `name` label is required


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = pki.create_ca("status-ca")
    pki.write_pair(str(d), "ca", ca)
    pki.write_pair(str(d), "server", pki.issue(ca, cn="kube-scheduler", ips=["127.0.0.1"], server=True, client=False))
    pki.write_pair(str(d), "admin", pki.issue(ca, cn="admin", orgs=("system:masters",)))
    other = pki.create_ca("someone-else")
    pki.write_pair(str(d), "stranger", pki.issue(other, cn="admin", orgs=("system:masters",)))
    return d


async def test_https_status_port_needs_a_client_certificate_from_the_ca(tls_files):
    d = tls_files
    registry = CollectorRegistry()
    checks = serving.HealthChecks()
    tls = serving.tls_from_flags(f"{d}/server.crt", f"{d}/server.key", f"{d}/ca.crt")
    server = serving.StatusServer(serving.status_app(registry, checks), "127.0.0.1", 0, tls=tls)
    port = await server.start()
    url = f"https://127.0.0.1:{port}"

    def ctx(client: str | None) -> ssl.SSLContext:
        c = ssl.create_default_context(cafile=f"{d}/ca.crt")
        if client:
            c.load_cert_chain(f"{d}/{client}.crt", f"{d}/{client}.key")
        return c
    try:
        async with httpx.AsyncClient(verify=ctx("admin")) as h:
            assert (await h.get(f"{url}/healthz")).text == "ok"
            assert (await h.get(f"{url}/readyz?verbose")).text == "[+]ping ok\nreadyz check passed\n"
            assert (await h.get(f"{url}/metrics")).status_code == 200
            assert (await h.get(f"{url}/../../etc/passwd")).status_code == 404
        for who in (None, "stranger"):  # no certificate, or one from another CA: no TLS session at all
            async with httpx.AsyncClient(verify=ctx(who)) as h:
                # TLS 1.3: the server's refusal may surface as the alert itself, on the first read
                with pytest.raises((httpx.HTTPError, ssl.SSLError)):
                    await h.get(f"{url}/metrics")
        async with httpx.AsyncClient(verify=False) as h:  # plain HTTP on the TLS port gets nothing either
            with pytest.raises(httpx.HTTPError):
                await h.get(f"http://127.0.0.1:{port}/metrics")
    finally:
        await server.stop()


def test_tls_flags_go_together(tls_files):
    with pytest.raises(ValueError, match="go together"):
        serving.tls_from_flags(f"{tls_files}/server.crt", None, None)
    with pytest.raises(ValueError, match="needs --tls-cert-file"):
        serving.tls_from_flags(None, None, f"{tls_files}/ca.crt")
    with pytest.raises(ValueError, match="cannot load"):
        serving.tls_from_flags(f"{tls_files}/server.crt", f"{tls_files}/admin.key", None)


async def test_a_taken_port_is_an_error_at_start():
    a = serving.StatusServer(serving.status_app(None, serving.HealthChecks()), "127.0.0.1", 0)
    port = await a.start()
    try:
        with pytest.raises(OSError):
            await serving.StatusServer(serving.status_app(None, None), "127.0.0.1", port).start()
    finally:
        await a.stop()


async def test_plain_http_status_port_stays_on_loopback_unless_asked():
    import argparse
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = argparse.Namespace(secure_port=port, bind_address=None, tls_cert_file=None, tls_private_key_file=None,
                              client_ca_file=None)
    server = await serving.start_from_args(args, serving.status_app(None, serving.HealthChecks()))
    try:
        assert server.host == "127.0.0.1"
    finally:
        await server.stop()
    args.secure_port = 0
    assert await serving.start_from_args(args, serving.status_app(None, None)) is None  # 0 turns it off
