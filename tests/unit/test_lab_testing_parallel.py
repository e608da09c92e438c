"""Test labs started at the same moment by parallel pytest workers never pick one subnet: each
worker draws from its own residue of the third octet (kubelab.lab.testing.free_subnet)."""

from __future__ import annotations

import ipaddress

from kubelab.lab import testing


def subnets(monkeypatch, worker: str | None, n: int = 400) -> set[int]:
    if worker is None:
        monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    else:
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    monkeypatch.setattr(testing.topology, "host_routes", lambda: [])
    got = {testing.free_subnet() for _ in range(n)}
    for s in got:
        net = ipaddress.ip_network(s)
        assert net.prefixlen == 24 and net.subnet_of(ipaddress.ip_network("10.213.0.0/16"))
    return {int(s.split(".")[2]) for s in got}


def test_workers_draw_from_disjoint_subnets(monkeypatch):
    per_worker = {w: subnets(monkeypatch, w) for w in ("gw0", "gw1", "gw2", "gw7")}
    for w, thirds in per_worker.items():
        slot = int(w[2:]) % testing.SUBNET_SLOTS
        assert thirds and all(t % testing.SUBNET_SLOTS == slot and 1 <= t <= 250 for t in thirds), (w, thirds)
    assert not per_worker["gw0"] & per_worker["gw1"]
    assert all(t % testing.SUBNET_SLOTS == 1 for t in subnets(monkeypatch, "gw9"))  # gw9 shares gw1's slot


def test_without_xdist_any_subnet_and_taken_ones_are_skipped(monkeypatch):
    thirds = subnets(monkeypatch, None)
    assert len({t % testing.SUBNET_SLOTS for t in thirds}) == testing.SUBNET_SLOTS
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    monkeypatch.setattr(testing.topology, "host_routes", lambda: [{"dst": "10.213.0.0/17"}])
    for _ in range(50):
        assert int(testing.free_subnet().split(".")[2]) >= 128


def test_residue_skips_processes_of_another_lab():
    """A pod netns inode of ours, freed mid-test, may be another (parallel) lab's by the time of
    our `down`: its holder names that lab's netns and is not ours."""
    lab = testing.Lab(name="tabcde", root_dir="/nonexistent/root", subnet="10.213.9.0/24")
    assert lab._names_other_lab("unshare --net=/run/netns/kl-tfffff-worker-2-3802 --uts --ipc --pid --fork")
    assert not lab._names_other_lab("unshare --net=/run/netns/kl-tabcde-worker-2-3802 --uts --ipc --pid --fork")
    assert not lab._names_other_lab("kubelab-pause")
