"""Authorization decisions: the default roles' allow/deny matrix, bindings' scope, the Node
authorizer, denial messages, and how a request maps to (verb, resource)."""

from __future__ import annotations

import itertools

import pytest

from kubelab.apiserver.authn import parse_token_file, user_from_cert, with_authenticated
from kubelab.apiserver.authz import Authorizer, node_authorize, parse_modes, pod_references
from kubelab.apiserver.rbac import (Attributes, Policy, UserInfo, default_cluster_role_bindings,
                                    default_cluster_roles, forbidden_message, rule_allows)
from kubelab.apiserver.security import request_attributes

AUTH = "system:authenticated"


def rb(name, ns, role, subject, kind="ClusterRole"):
    return {"metadata": {"name": name, "namespace": ns}, "roleRef": {"kind": kind, "name": role},
            "subjects": [subject]}


def crb(name, role, subject):
    return {"metadata": {"name": name}, "roleRef": {"kind": "ClusterRole", "name": role}, "subjects": [subject]}


def user(name, *groups):
    return UserInfo(name, (*groups, AUTH))


POLICY = Policy.from_objects(
    cluster_roles=default_cluster_roles(),
    cluster_role_bindings=default_cluster_role_bindings() + [crb("viewers", "view", {"kind": "User", "name": "viewer"})],
    role_bindings=[rb("e", "team", "edit", {"kind": "User", "name": "editor"}),
                   rb("a", "team", "admin", {"kind": "Group", "name": "team-admins"}),
                   rb("sa", "team", "view", {"kind": "ServiceAccount", "name": "bot"}),
                   rb("own", "team", "pod-reader", {"kind": "User", "name": "reader"}, kind="Role")],
    roles=[{"metadata": {"name": "pod-reader", "namespace": "team"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["web"]}]}],
)

USERS = {
    "cluster-admin": user("root", "system:masters"),
    "view": user("viewer"),
    "edit": user("editor"),
    "admin": user("boss", "team-admins"),
    "nobody": user("stranger"),
    "sa-view": UserInfo("system:serviceaccount:team:bot", ("system:serviceaccounts", AUTH)),
}
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")
RESOURCES = {  # name -> (group, resource, subresource)
    "pods": ("", "pods", ""), "pods/log": ("", "pods", "log"), "pods/exec": ("", "pods", "exec"),
    "secrets": ("", "secrets", ""), "deployments": ("apps", "deployments", ""),
    "deployments/scale": ("apps", "deployments", "scale"), "configmaps": ("", "configmaps", ""),
    "rolebindings": ("rbac.authorization.k8s.io", "rolebindings", ""),
    "networkpolicies": ("networking.k8s.io", "networkpolicies", ""),
}
READ = {"get", "list", "watch"}


def expected(role: str, verb: str, res: str, namespace: str) -> bool:
    """The matrix, written from Kubernetes' documented default roles."""
    if role == "cluster-admin":
        return True
    if role == "nobody":
        return False
    if role in ("view", "sa-view"):
        if role == "sa-view" and namespace != "team":
            return False
        return verb in READ and res in ("pods", "pods/log", "deployments", "deployments/scale", "configmaps",
                                        "networkpolicies")
    if namespace != "team":
        return False
    if res == "pods/log":
        return verb in READ
    if res == "rolebindings":
        return role == "admin"
    return True  # edit and admin: read and write pods, exec, secrets, deployments, scale, configmaps


CASES = list(itertools.product(USERS, VERBS, RESOURCES, ("team", "other")))


@pytest.mark.parametrize("role,verb,res,ns", CASES, ids=["-".join(c) for c in CASES])
def test_default_role_matrix(role, verb, res, ns):
    group, resource, sub = RESOURCES[res]
    a = Attributes(USERS[role], verb, api_group=group, resource=resource, subresource=sub, namespace=ns,
                   name="" if verb in ("list", "watch", "create") else "x")
    assert POLICY.allows(a)[0] is expected(role, verb, res, ns)


def test_matrix_size_is_printed(capsys):
    print(f"authorization matrix: {len(CASES)} cases")
    assert len(CASES) >= 500


@pytest.mark.parametrize("verb,resource,group,allowed", [
    ("get", "nodes", "", True), ("watch", "endpointslices", "discovery.k8s.io", True),
    ("create", "events", "", True), ("update", "services", "", False), ("get", "secrets", "", False),
])
def test_kube_proxy_role(verb, resource, group, allowed):
    a = Attributes(user("system:kube-proxy"), verb, api_group=group, resource=resource)
    assert POLICY.allows(a)[0] is allowed


@pytest.mark.parametrize("verb,resource,group,allowed", [
    ("watch", "networkpolicies", "networking.k8s.io", True), ("list", "pods", "", True),
    ("list", "namespaces", "", True), ("create", "networkpolicies", "networking.k8s.io", False),
    ("delete", "networkpolicies", "networking.k8s.io", False), ("update", "pods", "", False),
    ("get", "secrets", "", False), ("create", "pods", "", False),
])
def test_netpol_agent_only_reads(verb, resource, group, allowed):
    a = Attributes(user("system:kubelab-netpol"), verb, api_group=group, resource=resource, namespace="team")
    assert POLICY.allows(a)[0] is allowed


def test_scheduler_binds_but_cannot_edit_deployments():
    s = user("system:kube-scheduler")
    assert POLICY.allows(Attributes(s, "create", resource="pods", subresource="binding", namespace="d", name="p"))[0]
    assert POLICY.allows(Attributes(s, "patch", resource="pods", subresource="status", namespace="d", name="p"))[0]
    assert not POLICY.allows(Attributes(s, "update", api_group="apps", resource="deployments", namespace="d"))[0]
    assert not POLICY.allows(Attributes(s, "get", resource="secrets", namespace="d", name="x"))[0]


def test_controller_manager_manages_workloads_but_not_rbac():
    cm = user("system:kube-controller-manager")
    assert POLICY.allows(Attributes(cm, "create", api_group="apps", resource="replicasets", namespace="d"))[0]
    assert POLICY.allows(Attributes(cm, "delete", resource="pods", namespace="d", name="x"))[0]
    assert not POLICY.allows(Attributes(cm, "create", api_group="rbac.authorization.k8s.io",
                                        resource="clusterrolebindings"))[0]
    # the namespace controller must empty a terminating namespace of every kind, RBAC included
    assert POLICY.allows(Attributes(cm, "delete", api_group="rbac.authorization.k8s.io", resource="rolebindings",
                                    namespace="d", name="x"))[0]
    assert POLICY.allows(Attributes(cm, "delete", api_group="networking.k8s.io", resource="networkpolicies",
                                    namespace="d", name="x"))[0]
    for verb in ("create", "update", "patch", "escalate", "bind"):
        assert not POLICY.allows(Attributes(cm, verb, api_group="rbac.authorization.k8s.io", resource="rolebindings",
                                            namespace="d", name="x"))[0], verb


def test_resource_names_and_roles():
    reader = user("reader")
    assert POLICY.allows(Attributes(reader, "get", resource="pods", namespace="team", name="web"))[0]
    assert not POLICY.allows(Attributes(reader, "get", resource="pods", namespace="team", name="db"))[0]
    assert not POLICY.allows(Attributes(reader, "get", resource="pods", namespace="other", name="web"))[0]


def test_discovery_paths_for_every_authenticated_user_only():
    for path, ok in (("/api", True), ("/apis/apps/v1", True), ("/openapi/v3", True), ("/version", True),
                     ("/metrics", False)):
        assert POLICY.allows(Attributes(user("x"), "get", resource_request=False, path=path))[0] is ok, path
    anon = UserInfo("system:anonymous", ("system:unauthenticated",))
    assert not POLICY.allows(Attributes(anon, "get", resource_request=False, path="/api"))[0]


def test_malformed_rules_never_allow():
    a = Attributes(user("x"), "get", resource="pods", namespace="d")
    for rule in ({"verbs": "get", "apiGroups": [""], "resources": ["pods"]},
                 {"verbs": ["get"], "apiGroups": "", "resources": "pods"}, "x", None,
                 {"verbs": ["get"], "nonResourceURLs": ["*"]}):
        assert not rule_allows(rule, a)


def test_forbidden_message_is_kubernetes_wording():
    a = Attributes(UserInfo("jane"), "delete", resource="pods", namespace="default", name="x")
    assert forbidden_message(a) == ('pods "x" is forbidden: User "jane" cannot delete resource "pods" in API group "" '
                                    'in the namespace "default"')
    b = Attributes(UserInfo("jane"), "list", api_group="apps", resource="deployments")
    assert forbidden_message(b) == ('deployments.apps is forbidden: User "jane" cannot list resource "deployments" '
                                    'in API group "apps" at the cluster scope')


# ---- Node authorizer ---------------------------------------------------------------------

class Graph:
    def __init__(self, pods):
        self.pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}

    async def pod(self, ns, name):
        return self.pods.get((ns, name))

    async def pods_on_node(self, node):
        return [p for p in self.pods.values() if p["spec"].get("nodeName") == node]


def _pod(name, node, **spec):
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {"nodeName": node, **spec}}


GRAPH = Graph([
    _pod("mine", "n1", volumes=[{"name": "s", "secret": {"secretName": "db-pass"}}],
         containers=[{"name": "c", "envFrom": [{"configMapRef": {"name": "settings"}}]}]),
    _pod("theirs", "n2", volumes=[{"name": "s", "secret": {"secretName": "other-pass"}}]),
])
N1 = UserInfo("system:node:n1", ("system:nodes", AUTH))


@pytest.mark.parametrize("verb,resource,sub,ns,name,group,allowed", [
    ("patch", "pods", "status", "default", "mine", "", True),
    ("patch", "pods", "status", "default", "theirs", "", False),
    ("update", "pods", "", "default", "theirs", "", False),
    ("delete", "pods", "", "default", "mine", "", True),
    ("delete", "pods", "", "default", "theirs", "", False),
    ("patch", "pods", "status", "default", "ghost", "", False),
    ("create", "pods", "", "default", "", "", False),
    ("create", "pods", "exec", "default", "mine", "", False),
    ("patch", "nodes", "status", "", "n1", "", True),
    ("patch", "nodes", "", "", "n2", "", False),
    ("delete", "nodes", "", "", "n2", "", False),
    ("list", "nodes", "", "", "", "", True),
    ("watch", "pods", "", "", "", "", True),
    ("update", "leases", "", "kube-node-lease", "n1", "coordination.k8s.io", True),
    ("update", "leases", "", "kube-node-lease", "n2", "coordination.k8s.io", False),
    ("update", "leases", "", "kube-system", "n1", "coordination.k8s.io", False),
    ("get", "secrets", "", "default", "db-pass", "", True),
    ("get", "secrets", "", "default", "other-pass", "", False),
    ("list", "secrets", "", "default", "", "", False),
    ("get", "configmaps", "", "default", "settings", "", True),
    ("get", "serviceaccounts", "", "default", "default", "", True),
    ("create", "events", "", "default", "", "", True),
    ("list", "endpointslices", "", "", "", "discovery.k8s.io", True),
    ("create", "deployments", "", "default", "", "apps", False),
])
async def test_node_authorizer(verb, resource, sub, ns, name, group, allowed):
    a = Attributes(N1, verb, api_group=group, resource=resource, subresource=sub, namespace=ns, name=name)
    assert (await node_authorize(a, GRAPH)).allowed is allowed


async def test_node_authorizer_ignores_other_users():
    a = Attributes(user("system:node:n1"), "patch", resource="nodes", name="n1")  # not in system:nodes
    assert (await node_authorize(a, GRAPH)).verdict == "no-opinion"


async def test_chain_first_allow_wins_and_denial_carries_reasons():
    async def policy():
        return POLICY
    chain = Authorizer(parse_modes("Node,RBAC"), policy=policy, graph=GRAPH)
    ok = await chain.authorize(Attributes(N1, "patch", resource="pods", subresource="status", namespace="default",
                                          name="mine"))
    assert ok.allowed
    no = await chain.authorize(Attributes(N1, "patch", resource="pods", subresource="status", namespace="default",
                                          name="theirs"))
    assert not no.allowed and "bound to it" in no.reason
    assert (await Authorizer(("AlwaysDeny",)).authorize(Attributes(N1, "get", resource="pods"))).allowed is False
    with pytest.raises(ValueError):
        parse_modes("RBAC,Foo")


def test_pod_references_covers_volumes_env_and_pull_secrets():
    refs = pod_references({"spec": {"serviceAccountName": "sa", "imagePullSecrets": [{"name": "reg"}],
                                    "volumes": [{"projected": {"sources": [{"configMap": {"name": "p"}}]}}],
                                    "containers": [{"env": [{"valueFrom": {"secretKeyRef": {"name": "k"}}}]}]}})
    assert refs == {"secrets": {"reg", "k"}, "configmaps": {"p"}, "serviceaccounts": {"sa"}}


# ---- authentication helpers and request mapping ------------------------------------------

def test_token_file_parses_kubernetes_csv():
    users = parse_token_file('t1,alice,u1,"dev,ops"\n# comment\nt2,bob,u2\n')
    assert users["t1"] == UserInfo("alice", ("dev", "ops"), "u1")
    assert users["t2"] == UserInfo("bob", (), "u2")
    with pytest.raises(ValueError):
        parse_token_file("only-a-token\n")


def test_cert_subject_is_user_and_groups():
    peer = {"subject": ((("organizationName", "system:nodes"),), (("commonName", "system:node:n1"),))}
    u = with_authenticated(user_from_cert(peer))
    assert u.name == "system:node:n1" and u.groups == ("system:nodes", AUTH)


@pytest.mark.parametrize("method,path,query,verb,res,sub,ns,name", [
    ("GET", "/api/v1/namespaces/d/pods", b"", "list", "pods", "", "d", ""),
    ("GET", "/api/v1/pods", b"watch=true", "watch", "pods", "", "", ""),
    ("GET", "/api/v1/namespaces/d/pods/p", b"", "get", "pods", "", "d", "p"),
    ("POST", "/api/v1/namespaces/d/pods", b"", "create", "pods", "", "d", ""),
    ("PATCH", "/api/v1/namespaces/d/pods/p/status", b"", "patch", "pods", "status", "d", "p"),
    ("DELETE", "/api/v1/namespaces/d/pods", b"", "deletecollection", "pods", "", "d", ""),
    ("GET", "/api/v1/namespaces/d/pods/p/exec", b"command=sh", "create", "pods", "exec", "d", "p"),
    ("GET", "/api/v1/namespaces/d/pods/p/portforward", b"", "create", "pods", "portforward", "d", "p"),
    ("POST", "/api/v1/namespaces/d/pods/p/portforward", b"", "create", "pods", "portforward", "d", "p"),
    ("PUT", "/apis/apps/v1/namespaces/d/deployments/x/scale", b"", "update", "deployments", "scale", "d", "x"),
])
def test_request_attributes(method, path, query, verb, res, sub, ns, name):
    scope = {"type": "http", "method": method, "path": path, "query_string": query}
    a = request_attributes(scope, UserInfo("u"))
    assert (a.verb, a.resource, a.subresource, a.namespace, a.name) == (verb, res, sub, ns, name)
    assert a.resource_request


def test_non_resource_request_attributes():
    a = request_attributes({"type": "http", "method": "GET", "path": "/apis/apps/v1", "query_string": b""},
                           UserInfo("u"))
    assert not a.resource_request and a.path == "/apis/apps/v1" and a.verb == "get"


def test_rules_for_lists_cluster_and_namespace_grants():
    rules = POLICY.rules_for(USERS["edit"], "team")
    assert any("secrets" in r.get("resources", []) and "create" in r["verbs"] for r in rules)
    assert not any("secrets" in r.get("resources", []) for r in POLICY.rules_for(USERS["edit"], "other"))
    assert any(r.get("nonResourceURLs") for r in POLICY.rules_for(USERS["nobody"], "team"))  # discovery


@pytest.mark.parametrize("group,resource", [("batch", "jobs"), ("batch", "cronjobs"), ("apps", "daemonsets")])
def test_workload_authz_matrix(group, resource):
    """view reads, edit/admin write, a stranger nothing, in the bound namespace only; the
    controller-manager manages them cluster-wide; the scheduler and node proxier do not."""
    for who, may_write in (("view", False), ("edit", True), ("admin", True), ("nobody", None)):
        for verb in VERBS:
            ns = "team" if who in ("edit", "admin") else "d"
            a = Attributes(USERS[who], verb, api_group=group, resource=resource, namespace=ns, name="x")
            want = may_write is not None and (verb in READ or may_write)
            assert POLICY.allows(a)[0] is want, (who, verb)
    assert not POLICY.allows(Attributes(USERS["edit"], "create", api_group=group, resource=resource,
                                        namespace="other"))[0]
    cm = user("system:kube-controller-manager")
    assert POLICY.allows(Attributes(cm, "patch", api_group=group, resource=resource, subresource="status",
                                    namespace="d", name="x"))[0]
    for system in ("system:kube-scheduler", "system:kube-proxy"):
        assert not POLICY.allows(Attributes(user(system), "create", api_group=group, resource=resource,
                                            namespace="d"))[0]


@pytest.mark.parametrize("verb,resource,sub,group,allowed", [
    ("watch", "services", "", "", True), ("patch", "services", "status", "", True),
    ("update", "services", "status", "", True), ("create", "events", "", "", True),
    ("patch", "services", "", "", False), ("update", "services", "", "", False),  # never the spec
    ("create", "services", "", "", False), ("delete", "services", "", "", False),
    ("get", "secrets", "", "", False), ("patch", "nodes", "status", "", False), ("list", "pods", "", "", False),
])
def test_lb_controller_writes_only_service_status(verb, resource, sub, group, allowed):
    a = Attributes(user("system:kubelab-lb-controller"), verb, api_group=group, resource=resource,
                   subresource=sub, namespace="team", name="web" if verb not in ("watch", "list", "create") else "")
    assert POLICY.allows(a)[0] is allowed


@pytest.mark.parametrize("verb,resource,sub,group,allowed", [
    ("watch", "services", "", "", True), ("list", "nodes", "", "", True),
    ("watch", "endpointslices", "", "discovery.k8s.io", True), ("create", "events", "", "", True),
    ("patch", "services", "status", "", False), ("patch", "services", "", "", False),
    ("patch", "nodes", "status", "", False), ("get", "secrets", "", "", False), ("create", "pods", "", "", False),
])
def test_lb_speaker_only_reads(verb, resource, sub, group, allowed):
    a = Attributes(user("system:kubelab-lb-speaker"), verb, api_group=group, resource=resource, subresource=sub,
                   namespace="team")
    assert POLICY.allows(a)[0] is allowed
