"""RBAC privilege-escalation prevention on a real secured API server (HTTPS, client
certificates, RBAC+Node), driven by the real kubectl: a user allowed to write RoleBindings
or Roles cannot grant more than they hold, unless given `bind` / `escalate`; system:masters
can; the default roles the server writes at start are still there."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import httpx
import pytest

from kubelab.apiserver.rbac import default_cluster_roles
from kubelab.client.kubeconfig import render
from kubelab.testing import secure_apiserver, tls_client, wait_until

KUBECTL = shutil.which("kubectl")
RBAC = "/apis/rbac.authorization.k8s.io/v1"
SUFFIX = uuid.uuid4().hex[:6]
ALICE, FRANK = f"alice-{SUFFIX}", f"frank-{SUFFIX}"  # unique: the session's etcd is shared
NOT_HELD = "is attempting to grant RBAC permissions not currently held"

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")


class Secured:
    def __init__(self, api, d: str) -> None:
        self.api, self.dir = api, d

    def http(self, ident: str = "admin") -> httpx.Client:
        return tls_client(self.api, ident)

    def kubeconfig(self, ident: str) -> str:
        path = f"{self.dir}/{ident}.test.kubeconfig"
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(render(server=self.api.url, ca_file=f"{self.dir}/ca.crt",
                               client_cert=f"{self.dir}/{ident}.crt", client_key=f"{self.dir}/{ident}.key"))
        return path

    def kubectl(self, ident: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([KUBECTL, "--kubeconfig", self.kubeconfig(ident), "--request-timeout", "10s", *args],
                              capture_output=True, text=True, input=input, timeout=60)

    def can_i(self, ident: str, verb: str, resource: str, namespace: str = "", name: str = "",
              group: str = "rbac.authorization.k8s.io") -> bool:
        with self.http(ident) as h:
            r = h.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json={
                "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"verb": verb, "group": group, "resource": resource,
                                                "namespace": namespace, "name": name}}})
            r.raise_for_status()
            return r.json()["status"]["allowed"]

    def wait_can(self, ident: str, verb: str, resource: str, namespace: str = "", name: str = "",
                 group: str = "rbac.authorization.k8s.io") -> None:
        """RBAC changes reach the authorizer through the watch: wait for this one."""
        wait_until(lambda: self.can_i(ident, verb, resource, namespace, name, group), timeout=30, interval=0.1,
                   what=f"{ident} may {verb} {resource}/{name}")


@pytest.fixture(scope="module")
def secured(etcd):
    with secure_apiserver(etcd.url, users=(ALICE, FRANK), args=["--authorization-mode", "RBAC,Node"]) as a:
        yield Secured(a, a.extra["dir"])


def rule(groups, resources, verbs, names=None) -> dict:
    r = {"apiGroups": groups, "resources": resources, "verbs": verbs}
    if names:
        r["resourceNames"] = names
    return r


def role(name: str, ns: str, rules: list[dict]) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": ns}, "rules": rules}


def binding(name: str, ns: str | None, kind: str, role_name: str, user: str) -> dict:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding" if ns else "ClusterRoleBinding",
            "metadata": meta, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role_name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}


def aggregated(name: str) -> str:
    return (f"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {name}\n"
            "aggregationRule:\n  clusterRoleSelectors:\n  - matchLabels:\n      team: ops\nrules: []\n")


def admin_create(s: Secured, path: str, obj: dict) -> None:
    with s.http() as h:
        r = h.post(path, json=obj)
        assert r.status_code == 201, r.text


@pytest.fixture
def ns(secured):
    """A namespace where alice may create rolebindings and roles, and get/list pods: nothing more."""
    name = f"kl-esc-{uuid.uuid4().hex[:6]}"
    admin_create(secured, "/api/v1/namespaces", {"metadata": {"name": name}})
    try:
        admin_create(secured, f"{RBAC}/namespaces/{name}/roles", role("binder", name, [
            rule(["rbac.authorization.k8s.io"], ["rolebindings", "roles"], ["create", "get", "update", "patch"]),
            rule([""], ["pods"], ["get", "list"])]))
        admin_create(secured, f"{RBAC}/namespaces/{name}/rolebindings", binding("alice-binder", name, "Role", "binder",
                                                                                 ALICE))
        admin_create(secured, f"{RBAC}/namespaces/{name}/roles", role("pod-reader", name, [
            rule([""], ["pods"], ["get", "list"])]))
        secured.wait_can(f"user-{ALICE}", "create", "rolebindings", name)
        yield name
    finally:
        with secured.http() as h:
            h.delete(f"/api/v1/namespaces/{name}")


def exists(s: Secured, path: str) -> bool:
    with s.http() as h:
        r = h.get(path)
        assert r.status_code in (200, 404), r.text
        return r.status_code == 200


def test_cannot_bind_cluster_admin_but_can_bind_what_is_held(secured, ns):
    alice = f"user-{ALICE}"
    r = secured.kubectl(alice, "create", "rolebinding", "pwn", "-n", ns, "--clusterrole=cluster-admin",
                        f"--user={ALICE}")
    assert r.returncode != 0
    # kubectl's wording for a refused create: `error: failed to create rolebinding: <message>`
    assert f'rolebindings.rbac.authorization.k8s.io "pwn" is forbidden: user "{ALICE}" ' \
           f'(groups=["system:authenticated"]) {NOT_HELD}:\n' in r.stderr, r.stderr
    assert '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}' in r.stderr
    assert '{NonResourceURLs:["*"], Verbs:["*"]}' in r.stderr
    assert not exists(secured, f"{RBAC}/namespaces/{ns}/rolebindings/pwn")
    # the raw answer: upstream's Status shape
    with secured.http(alice) as h:
        r2 = h.post(f"{RBAC}/namespaces/{ns}/rolebindings", json=binding("pwn", ns, "ClusterRole", "cluster-admin",
                                                                          ALICE))
    assert r2.status_code == 403
    body = r2.json()
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Forbidden", 403)
    assert body["message"].startswith(f'rolebindings.rbac.authorization.k8s.io "pwn" is forbidden: user "{ALICE}"')
    assert body["details"] == {"name": "pwn", "group": "rbac.authorization.k8s.io", "kind": "rolebindings"}
    # a ClusterRole holding more than pods get/list (view) is refused too, listing only what is missing
    r = secured.kubectl(alice, "create", "rolebinding", "v", "-n", ns, "--clusterrole=view", "--user=x")
    assert r.returncode != 0 and NOT_HELD in r.stderr
    assert '{APIGroups:[""], Resources:["pods"], Verbs:["watch"]}' in r.stderr  # get, list: held
    assert 'Resources:["services"], Verbs:["get" "list" "watch"]' in r.stderr
    # a role granting only what alice holds: allowed
    r = secured.kubectl(alice, "create", "rolebinding", "ok", "-n", ns, "--role=pod-reader", "--user=someone")
    assert r.returncode == 0, r.stderr
    assert exists(secured, f"{RBAC}/namespaces/{ns}/rolebindings/ok")
    # re-pointing that binding at cluster-admin by PUT or PATCH: roleRef is immutable (as upstream)
    with secured.http(alice) as h:
        cur = h.get(f"{RBAC}/namespaces/{ns}/rolebindings/ok").json()
        cur["roleRef"] = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}
        r = h.put(f"{RBAC}/namespaces/{ns}/rolebindings/ok", json=cur)
        assert r.status_code == 422 and "cannot change roleRef" in r.json()["message"]
    r = secured.kubectl(alice, "patch", "rolebinding", "ok", "-n", ns, "--type=merge",
                        "-p", '{"roleRef":{"kind":"ClusterRole","name":"cluster-admin"}}')
    assert r.returncode != 0 and "cannot change roleRef" in r.stderr, r.stderr
    # a change that keeps roleRef (new subjects) is still escalation-checked: alice holds it, so allowed
    r = secured.kubectl(alice, "patch", "rolebinding", "ok", "-n", ns, "--type=merge",
                        "-p", '{"subjects":[{"kind":"User","name":"someone-else","apiGroup":"rbac.authorization.k8s.io"}]}')
    assert r.returncode == 0, r.stderr
    with secured.http() as h:
        assert h.get(f"{RBAC}/namespaces/{ns}/rolebindings/ok").json()["roleRef"]["name"] == "pod-reader"


def test_bind_verb_on_cluster_admin_lets_it_be_bound(secured, ns):
    alice = f"user-{ALICE}"
    admin_create(secured, f"{RBAC}/namespaces/{ns}/roles", role("may-bind", ns, [
        rule(["rbac.authorization.k8s.io"], ["clusterroles"], ["bind"], ["cluster-admin"])]))
    admin_create(secured, f"{RBAC}/namespaces/{ns}/rolebindings", binding("alice-may-bind", ns, "Role", "may-bind",
                                                                           ALICE))
    secured.wait_can(alice, "bind", "clusterroles", ns, "cluster-admin")
    r = secured.kubectl(alice, "create", "rolebinding", "admins", "-n", ns, "--clusterrole=cluster-admin",
                        "--user=teammate")
    assert r.returncode == 0, r.stderr
    assert exists(secured, f"{RBAC}/namespaces/{ns}/rolebindings/admins")
    # bind is for that role only
    r = secured.kubectl(alice, "create", "rolebinding", "editors", "-n", ns, "--clusterrole=edit", "--user=teammate")
    assert r.returncode != 0 and NOT_HELD in r.stderr
    assert not exists(secured, f"{RBAC}/namespaces/{ns}/rolebindings/editors")


def test_role_with_more_than_held_needs_the_rights_or_escalate(secured, ns):
    alice = f"user-{ALICE}"
    r = secured.kubectl(alice, "create", "role", "deleter", "-n", ns, "--verb=get,delete", "--resource=pods")
    assert r.returncode != 0
    assert f'roles.rbac.authorization.k8s.io "deleter" is forbidden: user "{ALICE}"' in r.stderr, r.stderr
    assert '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}' in r.stderr
    assert not exists(secured, f"{RBAC}/namespaces/{ns}/roles/deleter")
    r = secured.kubectl(alice, "create", "role", "reader2", "-n", ns, "--verb=get", "--resource=pods")
    assert r.returncode == 0, r.stderr
    # widening an existing role by patch: refused
    r = secured.kubectl(alice, "patch", "role", "reader2", "-n", ns, "--type=json",
                        "-p", '[{"op":"add","path":"/rules/0/verbs/-","value":"delete"}]')
    assert r.returncode != 0 and NOT_HELD in r.stderr, r.stderr
    # once alice holds delete pods herself, she may write it into a role
    admin_create(secured, f"{RBAC}/namespaces/{ns}/roles", role("pod-deleter", ns, [rule([""], ["pods"], ["delete"])]))
    admin_create(secured, f"{RBAC}/namespaces/{ns}/rolebindings", binding("alice-del", ns, "Role", "pod-deleter",
                                                                           ALICE))
    secured.wait_can(alice, "delete", "pods", ns, group="")
    r = secured.kubectl(alice, "create", "role", "deleter", "-n", ns, "--verb=get,delete", "--resource=pods")
    assert r.returncode == 0, r.stderr
    # secrets she does not hold: refused until she gets `escalate` on roles
    r = secured.kubectl(alice, "create", "role", "secrets", "-n", ns, "--verb=get", "--resource=secrets")
    assert r.returncode != 0 and NOT_HELD in r.stderr
    admin_create(secured, f"{RBAC}/namespaces/{ns}/roles", role("escalator", ns, [
        rule(["rbac.authorization.k8s.io"], ["roles"], ["escalate"])]))
    admin_create(secured, f"{RBAC}/namespaces/{ns}/rolebindings", binding("alice-esc", ns, "Role", "escalator", ALICE))
    secured.wait_can(alice, "escalate", "roles", ns)
    r = secured.kubectl(alice, "create", "role", "secrets", "-n", ns, "--verb=get", "--resource=secrets")
    assert r.returncode == 0, r.stderr
    # escalate is about roles, not bindings: binding cluster-admin is still refused
    r = secured.kubectl(alice, "create", "rolebinding", "pwn", "-n", ns, "--clusterrole=cluster-admin", "--user=x")
    assert r.returncode != 0 and NOT_HELD in r.stderr


def test_cluster_scope_clusterroles_and_clusterrolebindings(secured):
    frank = f"user-{FRANK}"
    writer, names = f"crb-writer-{SUFFIX}", []
    admin_create(secured, f"{RBAC}/clusterroles", {"metadata": {"name": writer}, "rules": [
        rule(["rbac.authorization.k8s.io"], ["clusterrolebindings", "clusterroles"], ["create"])]})
    admin_create(secured, f"{RBAC}/clusterrolebindings", binding(writer, None, "ClusterRole", writer, FRANK))
    try:
        secured.wait_can(frank, "create", "clusterrolebindings")
        pwn = f"pwn-{SUFFIX}"
        r = secured.kubectl(frank, "create", "clusterrolebinding", pwn, "--clusterrole=cluster-admin",
                            f"--user={FRANK}")
        assert r.returncode != 0 and NOT_HELD in r.stderr, r.stderr
        assert f'clusterrolebindings.rbac.authorization.k8s.io "{pwn}" is forbidden' in r.stderr
        assert not exists(secured, f"{RBAC}/clusterrolebindings/{pwn}")
        # a ClusterRole with what frank holds cluster-wide: allowed; pods get: not held
        same = f"same-{SUFFIX}"
        names.append(same)
        r = secured.kubectl(frank, "create", "clusterrole", same, "--verb=create", "--resource=clusterroles")
        assert r.returncode == 0, r.stderr
        r = secured.kubectl(frank, "create", "clusterrole", f"pods-{SUFFIX}", "--verb=get", "--resource=pods")
        assert r.returncode != 0 and NOT_HELD in r.stderr
        # an aggregationRule can gather anything: only with full authority, even with no rules
        agg = f"agg-{SUFFIX}"
        names += [f"pods-{SUFFIX}", agg]
        # (from a manifest: kubectl's `create clusterrole --aggregation-rule` sends protobuf, whose
        # decoding here does not carry aggregationRule yet)
        r = secured.kubectl(frank, "create", "-f", "-", input=aggregated(agg))
        assert r.returncode != 0 and "must have cluster-admin privileges to use the aggregationRule" in r.stderr
        assert not exists(secured, f"{RBAC}/clusterroles/{agg}")
    finally:
        with secured.http() as h:
            for n in (writer, *names):
                h.delete(f"{RBAC}/clusterroles/{n}")
            h.delete(f"{RBAC}/clusterrolebindings/{writer}")


def test_system_masters_may_grant_anything(secured, ns):
    name = f"admin-all-{SUFFIX}"
    try:
        r = secured.kubectl("admin", "create", "rolebinding", "root", "-n", ns, "--clusterrole=cluster-admin",
                            "--user=x")
        assert r.returncode == 0, r.stderr
        r = secured.kubectl("admin", "create", "role", "all", "-n", ns, "--verb=*", "--resource=*.*")
        assert r.returncode == 0, r.stderr
        r = secured.kubectl("admin", "create", "-f", "-", input=aggregated(name))
        assert r.returncode == 0, r.stderr
        with secured.http() as h:
            assert h.get(f"{RBAC}/clusterroles/{name}").json()["aggregationRule"]["clusterRoleSelectors"]
        r = secured.kubectl("admin", "create", "clusterrolebinding", name, "--clusterrole=cluster-admin", "--user=x")
        assert r.returncode == 0, r.stderr
        assert exists(secured, f"{RBAC}/clusterrolebindings/{name}")
    finally:
        with secured.http() as h:
            h.delete(f"{RBAC}/clusterroles/{name}")
            h.delete(f"{RBAC}/clusterrolebindings/{name}")


def test_default_roles_written_at_start_are_intact(secured):
    """bootstrap writes the default ClusterRoles with no request user: never checked."""
    with secured.http() as h:
        for want in default_cluster_roles():
            got = h.get(f"{RBAC}/clusterroles/{want['metadata']['name']}")
            assert got.status_code == 200, got.text
            assert got.json()["rules"] == want["rules"]
        assert h.get(f"{RBAC}/clusterrolebindings/cluster-admin").json()["subjects"][0]["name"] == "system:masters"


async def test_open_loopback_mode_is_not_restricted(api, namespace):
    """Without authentication (AlwaysAllow, the plain-HTTP loopback mode) `bind` and `escalate`
    are allowed like everything else, as upstream's check asks the same authorizer."""
    rb = await api.create("rolebindings", binding("anyone-admin", namespace, "ClusterRole", "cluster-admin", "x"),
                          namespace=namespace)
    assert rb["roleRef"]["name"] == "cluster-admin"
    r = await api.create("roles", role("all", namespace, [rule(["*"], ["*"], ["*"])]), namespace=namespace)
    assert r["rules"][0]["verbs"] == ["*"]
