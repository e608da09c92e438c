"""kubelab.dns on the real API server: informers turn object changes into answers (dig)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from kubelab.testing import eventually

from test_dns_server import DnsProcess, dig  # noqa: E402 - sibling test module (pytest rootdir import)

pytestmark = pytest.mark.skipif(shutil.which("dig") is None, reason="dig (dnsutils) not installed")


async def _dig(port: int, name: str, qtype: str = "A", *opts: str):
    return await asyncio.to_thread(dig, port, name, qtype, *opts)


def _slice(name: str, svc: str, endpoints: list[tuple[str, bool, str | None]]) -> dict:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}, **({"hostname": h} if h else {})}
                      for ip, ready, h in endpoints],
    }


async def test_objects_on_the_api_server_become_answers(apiserver, api, namespace, tmp_path: Path) -> None:
    proc = await asyncio.to_thread(DnsProcess.start, tmp_path, None, "--server", apiserver.url)
    try:
        zone = f"{namespace}.svc.cluster.local."
        # the namespace alone: its name exists (NODATA), a service in it does not (NXDOMAIN)
        await eventually(lambda: _status(proc, zone, "NOERROR"), what="namespace known")
        assert (await _dig(proc.port, f"web.{zone}")).status == "NXDOMAIN"

        svc = await api.create("services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
        }, namespace=namespace)
        ip = svc["spec"]["clusterIP"]

        async def web_answers() -> bool:
            r = await _dig(proc.port, f"web.{zone}")
            return r.answer == {f"web.{zone} 5 in a {ip}"}

        await eventually(web_answers, what="service A record")
        srv = await _dig(proc.port, f"_http._tcp.web.{zone}", "SRV")
        assert srv.answer == {f"_http._tcp.web.{zone} 5 in srv 0 100 80 web.{zone}"}

        await api.create("services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
            "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"name": "http", "port": 8080}]},
        }, namespace=namespace)
        assert (await _dig(proc.port, f"db.{zone}")).status == "NXDOMAIN"  # headless, no endpoints yet
        await api.create("endpointslices", _slice("db-1", "db", [("10.244.1.5", True, "db-0"),
                                                                  ("10.244.2.6", True, None)]),
                         namespace=namespace)

        async def db_ips() -> set[str]:
            return {line.split()[-1] for line in (await _dig(proc.port, f"db.{zone}")).answer}

        await eventually(lambda: _eq(db_ips(), {"10.244.1.5", "10.244.2.6"}), what="headless A records")
        assert (await _dig(proc.port, f"db-0.db.{zone}")).answer == {f"db-0.db.{zone} 5 in a 10.244.1.5"}

        # an endpoint turns not ready: it leaves the answers
        await api.replace("endpointslices", "db-1", _slice("db-1", "db", [("10.244.1.5", False, "db-0"),
                                                                         ("10.244.2.6", True, None)]),
                          namespace=namespace)
        await eventually(lambda: _eq(db_ips(), {"10.244.2.6"}), what="not-ready endpoint gone")
        assert (await _dig(proc.port, f"db-0.db.{zone}")).status == "NXDOMAIN"

        # a deleted service is NXDOMAIN
        await api.delete("services", "web", namespace=namespace)
        await eventually(lambda: _status(proc, f"web.{zone}", "NXDOMAIN"), what="deleted service NXDOMAIN")
        assert (await _dig(proc.port, f"_http._tcp.web.{zone}", "SRV")).status == "NXDOMAIN"
    finally:
        await asyncio.to_thread(proc.stop)


async def _status(proc: DnsProcess, name: str, status: str) -> bool:
    return (await _dig(proc.port, name)).status == status


async def _eq(value, expected) -> bool:
    return (await value) == expected
