"""The kit's only window on the lab: the API (as the lab's admin), commands run inside a pod's
network and mount namespaces (what `kubectl exec` does, but straight from the host so it still
works when a node agent is frozen), commands in a node's namespace, and curl from the host.

Every command has a short timeout: a check must answer in seconds even when the cluster is
broken (a frozen proxy, a missing route, DNS scaled to zero).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from dataclasses import dataclass

import httpx

from kubelab.client import ApiClient, ApiError, NotFound

from .. import components, state
from ..topology import LabPlan

NGINX_PAGE = "Welcome to nginx!"
CURL_TIMEOUT = 4


@dataclass(frozen=True)
class Fetch:
    ok: bool
    detail: str   # curl's own error line, or the HTTP status and the page title


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"timed out after {timeout:.0f}s")


def curl_argv(url: str, timeout: int = CURL_TIMEOUT) -> list[str]:
    return ["curl", "-sS", "--noproxy", "*", "-m", str(timeout), "-o", "-", "-w", "\n%{http_code}", url]


def fetch_result(p: subprocess.CompletedProcess) -> Fetch:
    """curl's outcome: ok when nginx's page came back; otherwise curl's own words
    ("Failed to connect to 10.96.3.4 port 80 after 0 ms: Connection refused")."""
    if p.returncode != 0:
        err = (p.stderr or "").strip().splitlines()
        line = err[-1] if err else f"curl exited {p.returncode}"
        return Fetch(False, re.sub(r"^curl: \(\d+\) ", "", line))
    body, _, code = p.stdout.rpartition("\n")
    if NGINX_PAGE in body:
        return Fetch(True, f"HTTP {code.strip()}, nginx's welcome page")
    return Fetch(False, f"HTTP {code.strip()} but not nginx's page")


class Probe:
    def __init__(self, plan: LabPlan, api: ApiClient, lab_dir: str) -> None:
        self.plan = plan
        self.api = api
        self.lab_dir = lab_dir
        # set by the runner: persists a scenario's record *before* it breaks something
        self.save = lambda record: None

    # ---- API ------------------------------------------------------------------------------

    async def get(self, resource: str, name: str, namespace: str | None = None) -> dict | None:
        try:
            return await self.api.get(resource, name, namespace=namespace)
        except NotFound:
            return None

    async def list(self, resource: str, namespace: str | None = None, selector: str | None = None) -> list[dict]:
        return (await self.api.list(resource, namespace=namespace, label_selector=selector))["items"]

    async def serves_group(self, group: str) -> bool:
        """Discovery: does the API server serve this group at all?"""
        try:
            body = await self.api.request("GET", "/apis")
        except (ApiError, httpx.HTTPError):
            return False
        return any(g.get("name") == group for g in body.get("groups") or [])

    async def running_pods(self, namespace: str, selector: str) -> list[dict]:
        """Running, not terminating pods with an IP, oldest first."""
        pods = [p for p in await self.list("pods", namespace, selector)
                if (p.get("status") or {}).get("phase") == "Running" and p["status"].get("podIP")
                and not p["metadata"].get("deletionTimestamp")]
        return sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "")

    async def ready_endpoints(self, namespace: str, service: str) -> list[str]:
        slices = await self.list("endpointslices", namespace, f"kubernetes.io/service-name={service}")
        return sorted({a for s in slices for e in s.get("endpoints") or []
                       if (e.get("conditions") or {}).get("ready", True) for a in e.get("addresses") or []})

    # ---- inside a pod ----------------------------------------------------------------------

    def pod_netns(self, pod: dict) -> str | None:
        from ..trace import pod_netns_with_ip
        node = (pod.get("spec") or {}).get("nodeName")
        ip = (pod.get("status") or {}).get("podIP")
        if not node or not ip:
            return None
        try:
            return pod_netns_with_ip(self.plan.node(node).netns, ip)
        except (KeyError, ValueError):
            return None

    async def pod_exec(self, pod: dict, argv: list[str], *, timeout: float = 15) -> subprocess.CompletedProcess:
        ns = await asyncio.to_thread(self.pod_netns, pod)
        pid = await asyncio.to_thread(state.container_pid, ns) if ns else None
        name = f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']}"
        if not pid:
            return subprocess.CompletedProcess(argv, 125, "", f"pod {name} has no running container on its node")
        return await asyncio.to_thread(_run, ["nsenter", "-t", str(pid), "-n", "-m", "--", *argv], timeout)

    async def fetch_from_pod(self, pod: dict, url: str) -> Fetch:
        return fetch_result(await self.pod_exec(pod, curl_argv(url)))

    async def pod_file(self, pod: dict, path: str) -> str | None:
        p = await self.pod_exec(pod, ["cat", path])
        return p.stdout if p.returncode == 0 else None

    async def dig_from_pod(self, pod: dict, name: str, *, server: str | None = None, search: bool = False,
                           rtype: str = "A") -> tuple[str, list[str]]:
        """(rcode or error, answers) for one query from inside the pod."""
        argv = ["dig", "+time=2", "+tries=1", "+noall", "+comments", "+answer"]
        argv += ["+search"] if search else []
        argv += [f"@{server}"] if server else []
        p = await self.pod_exec(pod, [*argv, name, rtype], timeout=10)
        m = re.search(r"status: (\w+)", p.stdout)
        if not m:
            text = (p.stdout + p.stderr).strip().splitlines()
            return (text[-1].lstrip(";").strip() if text else "no answer"), []
        answers = [line.split()[-1] for line in p.stdout.splitlines()
                   if line and not line.startswith(";") and len(line.split()) >= 5]
        return m.group(1), answers

    # ---- nodes and host ----------------------------------------------------------------------

    async def node_run(self, node: str, argv: list[str], *, timeout: float = 15) -> subprocess.CompletedProcess:
        return await asyncio.to_thread(_run, ["ip", "netns", "exec", self.plan.node(node).netns, *argv], timeout)

    async def fetch_from_node(self, node: str, url: str) -> Fetch:
        return fetch_result(await self.node_run(node, curl_argv(url)))

    async def fetch_from_host(self, url: str) -> Fetch:
        return fetch_result(await asyncio.to_thread(_run, curl_argv(url), CURL_TIMEOUT + 3))

    async def node_agent_answers(self, node: str) -> tuple[bool, str]:
        """The node agent's /healthz, from the host, as the supervisor asks it."""
        n = self.plan.node(node)
        scheme = "https" if self.plan.tls else "http"
        url = f"{scheme}://{n.ip}:10250/healthz"
        try:
            async with httpx.AsyncClient(trust_env=False, verify=components.health_verify(self.plan)) as c:
                r = await c.get(url, timeout=3.0)
            return r.status_code == 200, f"{url} answered HTTP {r.status_code}"
        except httpx.HTTPError as e:
            return False, f"{url} does not answer ({type(e).__name__})"

    async def proxy_backends(self, node: str, namespace: str, service: str) -> list[str]:
        """ip:port every DNAT rule of that Service's endpoints on a node, from the live ruleset
        (nftables or iptables, whichever the lab runs)."""
        if self.plan.proxy_mode == "nftables":
            p = await self.node_run(node, ["nft", "list", "table", "ip", "kube-proxy"])
            return parse_nft_backends(p.stdout, namespace, service)
        p = await self.node_run(node, ["iptables-save", "-t", "nat"])
        return parse_iptables_backends(p.stdout, namespace, service)

    def supervised(self, node: str, component: str) -> dict | None:
        s = state.read_json(os.path.join(self.lab_dir, state.SUPERVISOR_FILE)) or {}
        return next((c for c in s.get("components", [])
                     if c["spec"]["node"] == node and c["spec"]["name"] == component), None)

    def events(self) -> list[dict]:
        return state.read_events(self.lab_dir)[0]


def parse_nft_backends(text: str, namespace: str, service: str) -> list[str]:
    """Pure: the `dnat to` targets of the endpoint chains of ns/service in `nft list table`."""
    out, chain = [], None
    mark = f"-{namespace}/{service}/"
    for line in text.splitlines():
        s = line.strip()
        m = re.match(r"chain (\S+) \{", s)
        if m:
            chain = m.group(1)
            continue
        if chain and chain.startswith("endpoint-") and mark in chain:
            d = re.search(r"dnat to (\S+)", s)
            if d:
                out.append(d.group(1))
    return sorted(set(out))


def parse_iptables_backends(text: str, namespace: str, service: str) -> list[str]:
    """Pure: the DNAT targets of the KUBE-SEP chains commented ns/service[:port]."""
    out = []
    rx = re.compile(rf'-A KUBE-SEP-\S+ -m comment --comment "?{re.escape(namespace)}/{re.escape(service)}(:\S*?)?"? '
                    rf'.*-j DNAT --to-destination (\S+)')
    for line in text.splitlines():
        m = rx.search(line)
        if m:
            out.append(m.group(2))
    return sorted(set(out))
