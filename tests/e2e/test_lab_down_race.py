"""`kubelab down` races pod creation and still leaves nothing; `up` clears a stale pod first.

A pod mid-creation has a netns (/run/netns/kl-<lab>-<node>-<uid>) held by its `unshare` +
pause pair *before* the CNI plugin gives it a veth: `down` used to find pod namespaces only
through the nodes' veths, so such a pair survived, orphaned, with its netns bind mount. Here a
Deployment is scaled up and down while `down` runs, and two such sandboxes are planted by hand
(the exact state, deterministically): two before `up` (stale, from a lab that is gone; one
with its netns name already deleted, as a half-done `down` leaves it), one just before `down`
(mid-creation).
"""

from __future__ import annotations

import os
import subprocess
import threading
import uuid

import pytest

from kubelab.lab import topology
from kubelab.lab.testing import Lab
from kubelab.testing import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.root]


def host_nft_tables() -> set[str]:
    return set(subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout.splitlines())


def plant_sandbox(lab: Lab, node: str = "worker-1") -> tuple[str, subprocess.Popen]:
    """What the node agent has made of a pod just before CNI ADD: the netns file bound by an
    `unshare` holder with the pause program as its child, and no veth."""
    name = f"kl-{lab.name}-{node}-{uuid.uuid4()}"
    path = f"/run/netns/{name}"
    os.makedirs("/run/netns", exist_ok=True)
    open(path, "a").close()
    p = subprocess.Popen(["unshare", f"--net={path}", "--uts", "--ipc", "--pid", "--fork", "--kill-child",
                          "perl", "-e", '$0 = "kubelab-pause"; sleep while 1'],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    wait_until(lambda: topology.netns_inode(name) and subprocess.run(
        ["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split(), timeout=10,
        what=f"the planted sandbox {name} to hold its netns")
    return name, p


def gone(p: subprocess.Popen) -> bool:
    return p.poll() is not None  # also reaps it: it is our child


def procs_naming(fragment: str) -> list[str]:
    """Processes whose command line names the lab's namespaces (components' nsenter, pause holders)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if fragment in cmd and st not in ("Z", "X"):
            found.append(f"{pid} {cmd[:100]}")
    return found


def test_down_during_pod_creation_leaves_nothing_and_up_clears_stale_pods():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    lab = Lab.create(workers=2)
    tables_before = host_nft_tables()
    planted: list[subprocess.Popen] = []
    stop = threading.Event()
    scaler = None
    try:
        stale_ns, stale = plant_sandbox(lab)
        nameless_ns, nameless = plant_sandbox(lab, "worker-2")  # its name deleted: only its holder is left
        planted += [stale, nameless]
        subprocess.run(["ip", "netns", "del", nameless_ns], check=True)
        p = lab.up("--no-dns")
        assert "found leftovers" in p.stdout and stale_ns in p.stdout, p.stdout
        assert f"process {nameless.pid} (a pod's netns holder)" in p.stdout, p.stdout
        wait_until(lambda: gone(stale) and gone(nameless), timeout=10, what="up to stop the stale pause pairs")
        assert stale_ns not in topology.existing_netns()

        lab.kubectl("create", "deployment", "race", "--image=nginx", "--replicas=1")
        rounds = {"n": 0}

        def scale() -> None:  # until the API server is gone: up to 4, back to 0, again
            while not stop.is_set():
                n = 4 if rounds["n"] % 2 == 0 else 0
                if lab.kubectl("scale", "deployment", "race", f"--replicas={n}", timeout=20,
                               check=False).returncode != 0:
                    return
                rounds["n"] += 1
        scaler = threading.Thread(target=scale, daemon=True)
        scaler.start()
        wait_until(lambda: topology.lab_pod_netns(lab.name, topology.existing_netns()) and rounds["n"] >= 2,
                   timeout=120, interval=0.2, what="pods being created and deleted")
        mid_ns, mid = plant_sandbox(lab, "worker-2")
        planted.append(mid)

        p = lab.down()
        stop.set()
        assert p.returncode == 0, p.stdout + p.stderr
        assert "nothing of it is left" in p.stdout
        wait_until(lambda: gone(mid), timeout=10, what="down to stop the mid-creation pause pair")
        left = lab.residue()
        assert not left, f"residue after down: {left}"
        assert not [n for n in topology.existing_netns() if n.startswith(f"kl-{lab.name}-")]
        assert not procs_naming(f"/run/netns/kl-{lab.name}-"), procs_naming(f"/run/netns/kl-{lab.name}-")
        assert not [m for m in open("/proc/self/mountinfo").read().splitlines() if f"kl-{lab.name}-" in m]
        new_tables = host_nft_tables() - tables_before
        assert not any("kube-proxy" in t or "kubelab" in t for t in new_tables), new_tables
    finally:
        stop.set()
        if scaler is not None:
            scaler.join(timeout=60)
        left = lab.cleanup()
        for q in planted:
            if q.poll() is None:
                q.kill()
                q.wait(5)
        for n in topology.existing_netns():
            if n.startswith(f"kl-{lab.name}-"):
                subprocess.run(["ip", "netns", "del", n], capture_output=True)
        assert not left, f"lab residue after the final cleanup: {left}"
