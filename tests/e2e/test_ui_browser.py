"""kubelab ui on a real lab, driven by headless Chromium (Debian's chromium + chromium-driver,
through Selenium): the map shows the lab, a new deployment appears live, the packet path shows
DNS -> ClusterIP -> chosen pod, the timeline has every component, the rules highlight a Service.

Screenshots of every page go to test-artifacts/ui/ (git-ignored; CI keeps them as artifacts).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from kubelab.lab.testing import kubelab_cmd
from kubelab.testing import free_port, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.root]

ARTIFACTS = Path(os.environ.get("KUBELAB_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")) / "ui"
COMPONENTS = ("etcd", "apiserver", "controllers", "scheduler", "nodeagent", "proxy")


XDIST_GROUP = "shared-lab"  # the shared lab (tests/e2e/conftest.py): the deployment here (web) has a name of its own


@pytest.fixture(scope="module", autouse=True)
def chromium_installed():
    from kubelab.ui.browser import binaries
    if not binaries():
        pytest.fail("Debian's chromium and chromium-driver are required (make install installs them)")


@pytest.fixture(scope="module")
def ui(lab):
    port = free_port()
    log = open(os.path.join(lab.root_dir, "ui.log"), "w+")
    p = subprocess.Popen(kubelab_cmd("ui", *lab.lab_args(), "--port", str(port)), stdout=log, stderr=subprocess.STDOUT,
                         env=lab.env, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        def up():
            log.seek(0)
            return base + "/" in log.read()
        wait_until(up, timeout=60, interval=0.2, what="kubelab ui to print its URL")
        yield base
    finally:
        p.terminate()  # the one process this fixture started, by its PID
        try:
            p.wait(15)
            stopped = True
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
            stopped = False
        log.seek(0)
        out = log.read()
        log.close()
    # browsers still hold SSE streams: SIGTERM must end them and the server, quietly
    assert stopped, "kubelab ui did not stop within 15 s of SIGTERM"
    assert "Traceback" not in out and "ERROR" not in out, out


@pytest.fixture(scope="module")
def browser(ui):
    from kubelab.ui.browser import chromium, close
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    d = chromium()
    d.set_page_load_timeout(120)
    try:
        yield d
    finally:
        close(d)


def shot(browser, name: str) -> None:
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def until(browser, js: str, *, timeout: float = 60, what: str):
    """Wait on a condition evaluated in the page (a JS expression)."""
    return wait_until(lambda: browser.execute_script(f"return ({js});"), timeout=timeout, interval=0.1, what=what)


def map_ids(browser) -> set[str]:
    return set(browser.execute_script(
        "return Array.from(document.querySelectorAll('#map g[id]')).map(g => g.id);"))


def test_up_prints_the_web_views_command_and_url(lab):
    assert f"kubelab ui --name {lab.name}" in lab.up_output and "http://127.0.0.1:8001/" in lab.up_output


def test_map_shows_the_labs_nodes_and_pods(lab, ui, browser):
    browser.get(ui + "/")
    until(browser, "document.querySelector('#map svg') && document.getElementById('live').className === 'on'",
          what="the map and its live stream")
    pods = json.loads(lab.kubectl("get", "pods", "-A", "-o", "json").stdout)["items"]
    ids = map_ids(browser)
    for n in ("control-plane", "worker-1", "worker-2"):
        assert f"nodeinfo:{n}" in ids
    assert "node:worker-1" in ids and "svc:kube-system/kube-dns" in ids
    for p in pods:
        assert f"pod:{p['metadata']['namespace']}/{p['metadata']['name']}" in ids
    text = browser.find_element("css selector", "#map svg").text
    w1 = lab.plan.node("worker-1")
    assert w1.netns in text and w1.ip in text and "cni0" in text and "route 10.244." in text
    assert "10.96.0.10" in text  # the DNS Service's ClusterIP
    assert "In a shell:" in browser.find_element("css selector", ".shell").text
    shot(browser, "map")


def test_a_new_deployment_appears_live_and_joins_its_service(lab, ui, browser):
    browser.get(ui + "/")
    until(browser, "document.getElementById('live').className === 'on'", what="the live stream")
    browser.execute_script("window.__noReload = 1;")
    lab.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2")
    lab.kubectl("expose", "deployment", "web", "--port", "80")

    def ready_pods():
        items = json.loads(lab.kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
        ok = [p["metadata"]["name"] for p in items if any(
            c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))]
        return ok if len(ok) == 2 else None
    names = wait_until(ready_pods, timeout=120, interval=0.2, what="2 Ready web pods")
    t_ready = time.monotonic()
    edges = [f"ep:default/web>pod:default/{n}" for n in names]
    cond = " && ".join(f"(document.getElementById({json.dumps(e)}) !== null)" for e in edges) + \
        " && " + " && ".join(f"/Running, Ready/.test(document.getElementById({json.dumps('pod:default/' + n)})"
                             f".textContent)" for n in names)
    until(browser, cond, timeout=30, what="both web pods Ready and joined to Service web on the map")
    seconds = time.monotonic() - t_ready
    print(f"\nmap shows the Ready pods joined to the Service {seconds:.2f}s after kubectl saw them Ready")
    assert browser.execute_script("return window.__noReload;") == 1, "the page reloaded"
    assert seconds <= 10, f"{seconds:.1f}s from Ready to the map"
    assert "svc:default/web" in map_ids(browser)
    shot(browser, "map-live")

    # clicking a pod shows its YAML and events
    browser.execute_script(
        f"document.getElementById({json.dumps('pod:default/' + names[0])}).dispatchEvent("
        "new MouseEvent('click', {bubbles: true}));")
    until(browser, f"document.querySelector('#detail pre.yaml') && "
                   f"document.querySelector('#detail pre.yaml').textContent.includes({json.dumps('name: ' + names[0])})",
          timeout=20, what="the pod's YAML in the side panel")
    detail = browser.find_element("css selector", "#detail").text
    assert "events" in detail and f"kubectl get pod {names[0]} -o yaml -n default" in detail
    shot(browser, "map-detail")


def test_trace_pod_to_service_name_shows_dns_clusterip_and_chosen_pod(lab, ui, browser):
    web = json.loads(lab.kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
    svc = json.loads(lab.kubectl("get", "svc", "web", "-o", "json").stdout)
    src = web[0]["metadata"]["name"]
    browser.get(f"{ui}/trace?from=default/{src}&to=web")
    until(browser, "document.querySelector('#hops li.hop-destination')", timeout=90, what="the trace's hops")
    facts = browser.execute_script(
        "return Array.from(document.querySelectorAll('#hops .fact')).map(f => f.dataset.fact + '=' + "
        "f.querySelector('b').textContent);")
    assert f"server={lab.plan.dns_ip}" in facts
    assert f"clusterIP={svc['spec']['clusterIP']}" in facts
    web_ips = {p["status"]["podIP"] for p in web}
    chosen = [f.split("=", 1)[1] for f in facts if f.startswith("chosen=")]
    assert chosen and chosen[0].split(":")[0] in web_ips, facts
    dest = [f.split("=", 1)[1] for f in facts if f.startswith("pod=")]
    assert dest and dest[0].startswith("default/web-"), facts
    # drawn on the map: numbered red edges DNS -> ClusterIP -> DNAT
    labels = browser.execute_script(
        "return Array.from(document.querySelectorAll('#trace-map g.trace text')).map(t => t.textContent);")
    assert any(x.startswith("1. DNS web") for x in labels), labels
    assert any(svc["spec"]["clusterIP"] in x for x in labels), labels
    assert any("DNAT to" in x for x in labels), labels
    assert "kubelab trace" in browser.find_element("css selector", ".shell").text
    shot(browser, "trace")
    # a hostile query gets a clear error, not a trace
    browser.get(f"{ui}/trace?from=default/{src}&to=web;reboot")
    assert browser.find_element("css selector", ".error").text.startswith("to:")


def test_timeline_lists_every_component_and_replays(lab, ui, browser):
    browser.get(ui + "/timeline")
    until(browser, "document.querySelector('#timeline svg')", what="the timeline chart")
    lanes = browser.execute_script(
        "return Array.from(document.querySelectorAll('#timeline text.lane')).map(t => t.textContent);")
    for comp in COMPONENTS:
        assert any(x.endswith("/" + comp) for x in lanes), (comp, lanes)
    for w in ("worker-1", "worker-2"):
        assert f"{w}/nodeagent" in lanes and f"{w}/proxy" in lanes
    bars = browser.execute_script("return document.querySelectorAll('#timeline rect.bar').length;")
    assert bars >= len(COMPONENTS)
    markers = browser.execute_script("return document.querySelectorAll('circle.marker').length;")
    browser.find_element("id", "tl-first").click()
    assert browser.execute_script("return document.querySelectorAll('circle.marker:not(.future)').length;") == 1
    assert browser.execute_script("return document.querySelectorAll('rect.bar:not(.future)').length;") == 0
    browser.find_element("id", "tl-next").click()
    browser.find_element("id", "tl-next").click()
    assert browser.execute_script("return document.querySelectorAll('circle.marker:not(.future)').length;") == 3
    assert "step 3/" in browser.find_element("id", "tl-now").text
    browser.find_element("id", "tl-last").click()
    assert browser.execute_script("return document.querySelectorAll('circle.marker:not(.future)').length;") == markers
    assert browser.execute_script("return document.querySelectorAll('rect.bar:not(.future)').length;") == bars
    shot(browser, "timeline")


def test_rules_page_highlights_a_services_entries_and_shows_routes(lab, ui, browser):
    svc = json.loads(lab.kubectl("get", "svc", "web", "-o", "json").stdout)
    ip = svc["spec"]["clusterIP"]
    browser.get(ui + "/rules?node=worker-1")
    until(browser, "document.querySelector('#rules-table')", what="the rules table")
    browser.find_element("css selector", 'button.chip[data-svc="default/web"]').click()
    lit = browser.execute_script(
        "return Array.from(document.querySelectorAll('#rules-table .rl.hl')).map(l => l.textContent);")
    assert any(ip in x for x in lit), lit
    assert any("default/web/" in x for x in lit), lit
    assert any("dnat to 10.244." in x for x in lit), lit    # the endpoint chains' DNAT rules belong to it
    assert not any(lab.plan.dns_ip in x and ip not in x for x in lit), lit  # another Service's entries do not
    routes = browser.find_element("id", "routes").text
    assert re.search(r"10\.244\.\d+\.0/24 via ", routes), routes
    assert "nft list table ip kube-proxy" in browser.find_element("css selector", ".shell").text
    shot(browser, "rules")
    browser.get(ui + "/rules?node=../../etc")
    assert browser.find_element("css selector", ".error").text.startswith("node:")


def test_one_watch_per_resource_with_several_browsers(lab, ui, browser):
    from kubelab.ui.browser import chromium, close
    other = chromium()
    try:
        other.get(ui + "/")
        until(other, "document.getElementById('live').className === 'on'", what="a second browser's stream")
        browser.get(ui + "/")
        until(browser, "document.getElementById('live').className === 'on'", what="the first browser's stream")
        import httpx
        stats = httpx.get(ui + "/api/stats", timeout=20).json()
        assert stats["subscribers"] >= 1
        assert stats["watches_open"] == {r: 1 for r in ("nodes", "pods", "services", "endpointslices", "events")}
    finally:
        close(other)


def test_busy_port_is_a_clear_error_and_another_address_warns(lab, ui):
    port = int(ui.rsplit(":", 1)[1])
    p = subprocess.run(kubelab_cmd("ui", *lab.lab_args(), "--port", str(port)), capture_output=True, text=True,
                       timeout=60, env=lab.env, stdin=subprocess.DEVNULL)
    assert p.returncode == 1 and p.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}"), p.stderr
    # the lab bridge's address: not loopback, but an address the lab made (reachable from this host only)
    addr, port2 = lab.plan.bridge_ip, free_port()
    proc = subprocess.Popen(kubelab_cmd("ui", *lab.lab_args(), "--address", addr, "--port", str(port2)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=lab.env,
                            stdin=subprocess.DEVNULL)
    try:
        warning = proc.stderr.readline()
        assert warning.startswith(f"warning: kubelab ui on {addr} is reachable from other machines"), warning
        assert f"http://{addr}:{port2}/" in proc.stdout.readline()
        import httpx
        r = httpx.get(f"http://{addr}:{port2}/api/stats", timeout=20)
        assert r.status_code == 200 and r.json()["informers"]
    finally:
        proc.terminate()  # by its PID: the process this test started
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()
        proc.stderr.close()
