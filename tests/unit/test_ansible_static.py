"""The Ansible tree and the Vagrantfile, checked without VMs: syntax, lint, conventions.

ansible-playbook / ansible-lint / vagrant are looked up on PATH and next to this Python (a
venv's bin); a check whose tool is missing is skipped with the install command.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE = os.path.join(ROOT, "ansible")
ROLES = ("kubelab", "common", "pki", "etcd", "control_plane", "node", "addons")


def tool(name: str) -> str | None:
    return shutil.which(name, path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))


def run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": os.path.join(ANSIBLE, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "NO_COLOR": "1", "VAGRANT_CHECKPOINT_DISABLE": "1", "ANSIBLE_LOCAL_TEMP": "/tmp/kl-ansible-tmp"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=240, env=env, stdin=subprocess.DEVNULL, **kw)


def test_syntax_check():
    exe = tool("ansible-playbook")
    if not exe:
        pytest.skip("ansible-playbook not installed (pip install ansible-core)")
    p = run([exe, "--syntax-check", "-i", "inventories/example/hosts.ini", "site.yml"], cwd=ANSIBLE)
    assert p.returncode == 0, p.stdout + p.stderr


def test_ansible_lint_production_profile():
    exe = tool("ansible-lint")
    if not exe:
        pytest.skip("ansible-lint not installed (pip install ansible-lint)")
    p = run([exe, "--profile", "production", "--offline", "-q", "site.yml", "roles"], cwd=ANSIBLE)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]


def test_vagrant_validate():
    exe = tool("vagrant")
    if not exe:
        pytest.skip("vagrant not installed (apt-get install vagrant)")
    p = run([exe, "validate", "--ignore-provider"], cwd=ROOT)
    assert p.returncode == 0 and "validated successfully" in p.stdout, p.stdout + p.stderr


def role_vars_used(role: str) -> set[str]:
    text = ""
    for path in glob.glob(os.path.join(ANSIBLE, "roles", role, "**", "*"), recursive=True):
        if os.path.isfile(path) and not path.endswith("defaults/main.yml"):
            with open(path) as f:
                text += f.read()
    return set(re.findall(rf"\b({role}_[a-z0-9_]+)\b", text)) if role != "kubelab" else set()


@pytest.mark.parametrize("role", ROLES)
def test_every_role_variable_has_a_default(role):
    """`defaults/main.yml for every variable`: a role's own variables (prefixed with its name)
    are all defaulted, so an inventory never has to set them."""
    with open(os.path.join(ANSIBLE, "roles", role, "defaults", "main.yml")) as f:
        defaults = yaml.safe_load(f) or {}
    registered = set()
    for path in glob.glob(os.path.join(ANSIBLE, "roles", role, "tasks", "*.yml")):
        with open(path) as f:
            for task in yaml.safe_load(f) or []:
                for t in [task, *task.get("block", [])]:
                    if "register" in t:
                        registered.add(t["register"])
                    registered |= set((t.get("ansible.builtin.set_fact") or {}).keys())
                    registered |= set((t.get("vars") or {}).keys())
    missing = role_vars_used(role) - set(defaults) - registered - {"node_ip"}  # per host, in the inventory
    assert not missing, f"{role}: variables without a default: {sorted(missing)}"


def test_units_restart_on_failure_and_use_fqcn():
    units = glob.glob(os.path.join(ANSIBLE, "roles", "*", "templates", "*.service.j2"))
    assert {os.path.basename(u) for u in units} >= {
        "kubelab-apiserver.service.j2", "kubelab-controllers.service.j2", "kubelab-scheduler.service.j2",
        "kubelab-nodeagent.service.j2", "kubelab-proxy.service.j2", "kubelab-netpol.service.j2"}
    for u in units:
        with open(u) as f:
            assert "Restart=on-failure" in f.read(), u
    for path in glob.glob(os.path.join(ANSIBLE, "roles", "*", "*", "*.yml")) + [os.path.join(ANSIBLE, "site.yml")]:
        with open(path) as f:
            docs = yaml.safe_load(f) or []
        if not isinstance(docs, list):
            continue
        for task in docs:
            for t in [task, *task.get("block", [])]:
                modules = [k for k in t if "." in k and k.split(".")[0] in ("ansible", "community")]
                bare = [k for k in t if k in ("command", "copy", "template", "file", "apt", "uri", "systemd",
                                              "service", "shell", "fetch", "debug", "set_fact")]
                assert not bare, f"{path}: non-FQCN module {bare}"
                assert len(modules) <= 1


def test_vmlab_inventory_pins_node_ips():
    sys.path.insert(0, os.path.join(ROOT, "tests", "vm"))
    import vmlab
    vms = [vmlab.VM(name=n, index=i, ssh_port=2200 + i) for i, n in enumerate(vmlab.vm_names(2))]
    inv = vmlab.inventory_ini(vms, key="/k", repo_url="http://10.0.2.100/")
    assert "control-plane ansible_host=127.0.0.1 ansible_port=2200 node_ip=192.168.56.10" in inv
    assert "worker-2 ansible_host=127.0.0.1 ansible_port=2202 node_ip=192.168.56.12" in inv
    assert "[etcd:children]\ncontrol_plane" in inv
    files = vmlab.image_files("ssh-ed25519 AAA test")
    assert "Address=192.168.56.11/24" in files["etc/systemd/network/20-node-1.network"]
    assert "UseDNS=no" in files["etc/systemd/network/10-mgmt.network"]


def render_admin_artifact(tmp_path, pki_dir: str, server: str, tls: bool = True) -> str:
    """control_plane's admin.kubeconfig.j2 rendered by the real ansible-playbook on localhost,
    as the role does on the controller."""
    exe = tool("ansible-playbook")
    if not exe:
        pytest.skip("ansible-playbook not installed (pip install ansible-core)")
    out = os.path.join(str(tmp_path), "admin.kubeconfig")
    play = os.path.join(str(tmp_path), "render.yml")
    with open(play, "w") as f:
        yaml.safe_dump([{"name": "Render the admin artifact", "hosts": "localhost", "connection": "local",
                         "gather_facts": False, "tasks": [{"name": "Template", "ansible.builtin.template": {
                             "src": os.path.join(ANSIBLE, "roles", "control_plane", "templates", "admin.kubeconfig.j2"),
                             "dest": out, "mode": "0600"}}]}], f)
    extra = {"kubelab_tls": tls, "kubelab_pki_controller_dir": pki_dir, "ansible_python_interpreter": sys.executable,
             "control_plane_admin_kubeconfig_server": server, "control_plane_admin_kubeconfig_name": "kubelab"}
    p = run([exe, "-i", "localhost,", play, "-e", json.dumps(extra)], cwd=str(tmp_path))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return out


def test_admin_kubeconfig_artifact_embeds_the_certificates(tmp_path):
    """Issue 22: ansible/artifacts/admin.kubeconfig works on the instructor's machine as it is:
    the CA, certificate and key embedded (no VM path), 0600, read alike by kubelab and kubectl."""
    from kubelab.client.kubeconfig import load, ssl_context
    from kubelab.pki import certs
    d = os.path.join(str(tmp_path), "pki")
    certs.init(d, apiserver_ips=["192.168.56.10"])
    out = render_admin_artifact(tmp_path, d, "https://127.0.0.1:16443")
    with open(out) as f:
        text = f.read()
    cfg = yaml.safe_load(text)
    assert "/etc/kubelab" not in text and d not in text
    assert oct(os.stat(out).st_mode & 0o777) == oct(0o600)
    user = cfg["users"][0]["user"]
    assert set(user) == {"client-certificate-data", "client-key-data"}
    assert set(cfg["clusters"][0]["cluster"]) == {"server", "certificate-authority-data"}
    conn = load(out)
    assert conn.server == "https://127.0.0.1:16443"
    for field, name in (("ca_data", "ca.crt"), ("client_cert_data", "admin.crt"), ("client_key_data", "admin.key")):
        with open(os.path.join(d, name), "rb") as f:
            assert getattr(conn, field) == f.read(), field
    assert ssl_context(conn).get_ca_certs()[0]["subject"] == ((("commonName", "kubelab-ca"),),)
    kubectl = shutil.which("kubectl")
    if kubectl:
        p = subprocess.run([kubectl, "--kubeconfig", out, "config", "view", "--raw", "-o",
                            "jsonpath={.users[0].user.client-key-data}"], capture_output=True, text=True, timeout=30)
        assert p.stdout == user["client-key-data"], p.stderr
    # without TLS: no certificates, a plain URL
    plain = yaml.safe_load(open(render_admin_artifact(tmp_path, d, "http://192.168.56.10:6443", tls=False)))
    assert plain["users"][0]["user"] == {} and "certificate-authority-data" not in plain["clusters"][0]["cluster"]


def test_controller_secrets_are_git_ignored():
    """The controller's PKI (every key) and the admin kubeconfig never land in a commit."""
    if not os.path.isdir(os.path.join(ROOT, ".git")) and not os.path.isfile(os.path.join(ROOT, ".git")):
        pytest.skip("not a git checkout")
    p = subprocess.run(["git", "check-ignore", "ansible/files/pki/ca.key", "ansible/artifacts/admin.kubeconfig"],
                       capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert p.stdout.split() == ["ansible/files/pki/ca.key", "ansible/artifacts/admin.kubeconfig"], p.stderr


def test_vm_suite_uses_the_artifact_unmodified():
    with open(os.path.join(ROOT, "tests", "vm", "vmlab.py")) as f:
        src = f.read()
    assert "control_plane_admin_kubeconfig_server" in src
    assert ".replace(" not in src.split("def kubeconfig(self)")[1].split("\n    def ")[0]
