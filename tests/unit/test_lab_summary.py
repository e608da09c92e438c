"""`kubelab up`'s closing summary: its next commands work as printed (no `sudo` for plain root)."""

from __future__ import annotations

from kubelab.lab import components, topology
from kubelab.lab.lab import summary


def text(monkeypatch, sudo_user: str | None) -> str:
    if sudo_user:
        monkeypatch.setenv("SUDO_USER", sudo_user)
    else:
        monkeypatch.delenv("SUDO_USER", raising=False)
    plan = topology.plan_lab(name="lab", workers=2, root_dir="/tmp/kl-summary-test")
    return summary(plan, components.lab_specs(plan), {"kubeconfig": {"path": "/root/.kube/config"}}, [], seconds=9.5)


def test_root_without_sudo_gets_commands_without_sudo(monkeypatch):
    out = text(monkeypatch, None)
    assert "\n  kubelab down" in out and "\n  ip netns exec kl-lab-worker-1 nft list ruleset" in out
    assert "sudo" not in out


def test_a_sudo_user_gets_sudo(monkeypatch):
    out = text(monkeypatch, "student")
    assert "\n  sudo kubelab down" in out and "\n  sudo ip netns exec kl-lab-worker-1" in out
