"""RBAC privilege-escalation prevention: which requested rules the owner's rules do not
cover (upstream's Covers), the 403 wording, and the decisions of `EscalationCheck` for
roles and bindings (escalate, bind, system:masters, aggregationRule, GC-only updates)."""

from __future__ import annotations

import pytest

from kubelab.apiserver import status as st
from kubelab.apiserver.authz import Authorizer, EscalationCheck
from kubelab.apiserver.rbac import (FULL_AUTHORITY, Attributes, Policy, UserInfo, breakdown_rule, compact_rules,
                                    compact_string, default_cluster_role_bindings, default_cluster_roles,
                                    escalation_message, only_gc_fields_changed, rule_covers, uncovered_rules)


def R(groups, resources, verbs, names=None) -> dict:
    r = {"apiGroups": list(groups), "resources": list(resources), "verbs": list(verbs)}
    if names:
        r["resourceNames"] = list(names)
    return r


def U(urls, verbs) -> dict:
    return {"nonResourceURLs": list(urls), "verbs": list(verbs)}


PODS_READ = R([""], ["pods"], ["get", "list"])

# (case id, owner rules, requested rules, the pieces left uncovered)
CASES = [
    ("nothing requested", [], [], []),
    ("exact", [PODS_READ], [PODS_READ], []),
    ("subset of verbs", [PODS_READ], [R([""], ["pods"], ["get"])], []),
    ("extra verb", [PODS_READ], [R([""], ["pods"], ["get", "delete"])], [R([""], ["pods"], ["delete"])]),
    ("no owner rules", [], [R([""], ["pods"], ["get"])], [R([""], ["pods"], ["get"])]),
    ("verb star covers all", [R([""], ["pods"], ["*"])], [R([""], ["pods"], ["delete", "escalate"])], []),
    ("star verb not covered by named verbs", [PODS_READ], [R([""], ["pods"], ["*"])], [R([""], ["pods"], ["*"])]),
    ("group star", [R(["*"], ["pods"], ["get"])], [R(["", "apps"], ["pods"], ["get"])], []),
    ("other group", [R([""], ["deployments"], ["get"])], [R(["apps"], ["deployments"], ["get"])],
     [R(["apps"], ["deployments"], ["get"])]),
    ("resource star", [R([""], ["*"], ["get"])], [R([""], ["pods", "secrets", "pods/log"], ["get"])], []),
    ("subresource needs its own grant", [PODS_READ], [R([""], ["pods/log"], ["get"])],
     [R([""], ["pods/log"], ["get"])]),
    ("subresource granted", [R([""], ["pods", "pods/log"], ["get"])], [R([""], ["pods/log"], ["get"])], []),
    ("*/subresource covers any resource's", [R([""], ["*/scale"], ["update"])],
     [R([""], ["deployments/scale", "replicasets/scale"], ["update"])], []),
    ("*/subresource does not cover the resource", [R([""], ["*/scale"], ["update"])],
     [R([""], ["deployments"], ["update"])], [R([""], ["deployments"], ["update"])]),
    ("owner without names covers named", [PODS_READ], [R([""], ["pods"], ["get"], ["web"])], []),
    ("named owner covers the same names", [R([""], ["pods"], ["get"], ["web", "db"])],
     [R([""], ["pods"], ["get"], ["web"])], []),
    ("named owner does not cover other names", [R([""], ["pods"], ["get"], ["web"])],
     [R([""], ["pods"], ["get"], ["web", "db"])], [R([""], ["pods"], ["get"], ["db"])]),
    ("named owner does not cover every name", [R([""], ["pods"], ["get"], ["web"])],
     [R([""], ["pods"], ["get"])], [R([""], ["pods"], ["get"])]),
    ("pieces from several owner rules", [R([""], ["pods"], ["get"]), R([""], ["pods"], ["list"])],
     [PODS_READ], []),
    ("url exact", [U(["/healthz"], ["get"])], [U(["/healthz"], ["get"])], []),
    ("url trailing star", [U(["/api/*"], ["get"])], [U(["/api/v1", "/api/v1/x"], ["get"])], []),
    ("url star does not cover its parent", [U(["/api/*"], ["get"])], [U(["/api"], ["get"])],
     [U(["/api"], ["get"])]),
    ("url all", [U(["*"], ["*"])], [U(["/metrics", "/logs/x"], ["get", "post"])], []),
    ("url verb missing", [U(["/metrics"], ["get"])], [U(["/metrics"], ["post"])], [U(["/metrics"], ["post"])]),
    ("resource rules do not cover urls", [R(["*"], ["*"], ["*"])], [U(["/metrics"], ["get"])],
     [U(["/metrics"], ["get"])]),
    ("url rules do not cover resources", [U(["*"], ["*"])], [R([""], ["pods"], ["get"])],
     [R([""], ["pods"], ["get"])]),
    ("cluster-admin covers full authority", FULL_AUTHORITY, FULL_AUTHORITY + [R(["x"], ["y/z"], ["bind"], ["n"])],
     []),
    ("edit does not hold full authority", [r for r in default_cluster_roles() if r["metadata"]["name"] == "edit"][0]
     ["rules"], FULL_AUTHORITY, FULL_AUTHORITY),
    ("junk owner rules are ignored", [None, "x", {"verbs": "get"}], [R([""], ["pods"], ["get"])],
     [R([""], ["pods"], ["get"])]),
    ("rule without groups grants nothing", [], [{"resources": ["pods"], "verbs": ["get"]}], []),
]


@pytest.mark.parametrize("owner,requested,missing", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_uncovered_rules(owner, requested, missing):
    assert uncovered_rules(owner, requested) == missing


def test_breakdown_is_one_verb_group_resource_name_each():
    pieces = breakdown_rule(R(["", "apps"], ["pods", "deployments"], ["get", "list"], ["a", "b"]))
    assert len(pieces) == 16
    assert all(len(p["verbs"]) == len(p["apiGroups"]) == len(p["resources"]) == len(p["resourceNames"]) == 1
               for p in pieces)
    assert breakdown_rule(U(["/a", "/b"], ["get"])) == [U(["/a"], ["get"]), U(["/b"], ["get"])]
    assert rule_covers(R(["*"], ["*"], ["*"]), R([""], ["pods"], ["get"], ["x"]))


def test_compact_merges_verbs_and_prints_like_upstream():
    missing = uncovered_rules([], [R([""], ["pods"], ["get", "list"]), U(["/metrics"], ["get"]),
                                   R([""], ["pods"], ["delete"], ["web"])])
    compacted = compact_rules(missing)
    strings = sorted(compact_string(r) for r in compacted)
    assert strings == [
        '{APIGroups:[""], Resources:["pods"], ResourceNames:["web"], Verbs:["delete"]}',
        '{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}',
        '{NonResourceURLs:["/metrics"], Verbs:["get"]}',
    ]


def test_escalation_message_wording():
    user = UserInfo("system:serviceaccount:rbac:privesc",
                    ("system:serviceaccounts", "system:serviceaccounts:rbac", "system:authenticated"))
    msg = escalation_message(user, uncovered_rules([], [R([""], ["pods"], ["delete"])]))
    assert msg == ('user "system:serviceaccount:rbac:privesc" (groups=["system:serviceaccounts" '
                   '"system:serviceaccounts:rbac" "system:authenticated"]) is attempting to grant RBAC permissions '
                   'not currently held:\n{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}')


def test_only_gc_fields_changed():
    old = {"metadata": {"name": "r", "resourceVersion": "5", "finalizers": ["x"]}, "rules": [PODS_READ]}
    assert only_gc_fields_changed({"metadata": {"name": "r", "ownerReferences": [{"uid": "u"}]},
                                   "rules": [PODS_READ]}, old)
    assert only_gc_fields_changed({"metadata": {"name": "r", "labels": {}}, "rules": [PODS_READ]}, old)
    assert not only_gc_fields_changed({"metadata": {"name": "r"}, "rules": [R([""], ["pods"], ["*"])]}, old)
    assert not only_gc_fields_changed({"metadata": {"name": "r", "labels": {"a": "b"}}, "rules": [PODS_READ]}, old)


# ---- EscalationCheck decisions on a policy snapshot, without a server -----------------------

AUTH = "system:authenticated"
NS = "team"


def role(name, rules, ns=NS):
    return {"metadata": {"name": name, "namespace": ns}, "rules": rules}


def rb(name, role_name, user, kind="Role", ns=NS):
    return {"metadata": {"name": name, "namespace": ns}, "roleRef": {"kind": kind, "name": role_name},
            "subjects": [{"kind": "User", "name": user}]}


ROLES = [
    role("binder", [R(["rbac.authorization.k8s.io"], ["rolebindings", "roles"], ["create", "update", "patch"]),
                    PODS_READ]),
    role("pod-reader", [PODS_READ]),
    role("pod-deleter", [R([""], ["pods"], ["delete"])]),
    role("may-bind-admin", [R(["rbac.authorization.k8s.io"], ["clusterroles"], ["bind"], ["cluster-admin"])]),
    role("may-bind-evil-group", [R(["evil"], ["clusterroles"], ["bind"])]),
    role("may-escalate", [R(["rbac.authorization.k8s.io"], ["roles"], ["escalate"])]),
]
BINDINGS = [rb("b1", "binder", "bob"), rb("b2", "binder", "carol"), rb("b3", "may-bind-admin", "carol"),
            rb("b4", "binder", "dave"), rb("b5", "may-escalate", "dave"),
            rb("b6", "binder", "eve"), rb("b7", "may-bind-evil-group", "eve")]
POLICY = Policy.from_objects(cluster_roles=default_cluster_roles(),
                             cluster_role_bindings=default_cluster_role_bindings(), roles=ROLES, role_bindings=BINDINGS)


def make_check(snapshot: Policy = POLICY) -> EscalationCheck:
    async def policy():
        return snapshot

    async def get_role(plural, namespace, name):
        src = snapshot.roles.get(f"{namespace}/{name}") if plural == "roles" else snapshot.cluster_roles.get(name)
        if src is None:
            raise st.StatusError(404, f'{plural}.rbac.authorization.k8s.io "{name}" not found')
        return src
    return EscalationCheck(Authorizer(("RBAC",), policy=policy), policy=policy, get_role=get_role)


def req(user: str, resource: str, verb: str = "create", name: str = "", *groups: str) -> Attributes:
    return Attributes(UserInfo(user, (*groups, AUTH)), verb, api_group="rbac.authorization.k8s.io",
                      resource=resource, namespace=NS, name=name)


def binding(role_name, kind="ClusterRole", plural="rolebindings") -> dict:
    meta = {"name": "x", "namespace": NS} if plural == "rolebindings" else {"name": "x"}
    return {"metadata": meta, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role_name},
            "subjects": [{"kind": "User", "name": "mallory"}]}


async def outcome(user, plural, obj, old=None, *groups) -> int:
    try:
        await make_check().check(req(user, plural, "update" if old else "create", "", *groups), plural, obj, old)
    except st.StatusError as e:
        return e.code
    return 201


BINDING_CASES = [
    ("bob", "cluster-admin", "ClusterRole", "rolebindings", 403),     # holds only pods get/list + rbac writes
    ("bob", "pod-reader", "Role", "rolebindings", 201),               # holds all of it
    ("bob", "view", "ClusterRole", "rolebindings", 403),              # view has more than pods
    ("bob", "pod-deleter", "Role", "rolebindings", 403),
    ("bob", "ghost", "Role", "rolebindings", 404),                    # no bind, role missing: upstream's NotFound
    ("carol", "cluster-admin", "ClusterRole", "rolebindings", 201),   # bind on clusterroles/cluster-admin
    ("carol", "edit", "ClusterRole", "rolebindings", 403),            # ... on that name only
    ("carol", "cluster-admin", "ClusterRole", "clusterrolebindings", 403),  # ... in that namespace only
    ("eve", "cluster-admin", "ClusterRole", "rolebindings", 403),     # bind on another API group: no
    ("root", "cluster-admin", "ClusterRole", "clusterrolebindings", 201),
]


@pytest.mark.parametrize("user,role_name,kind,plural,code", BINDING_CASES)
async def test_binding_decisions(user, role_name, kind, plural, code):
    groups = ("system:masters",) if user == "root" else ()
    assert await outcome(user, plural, binding(role_name, kind, plural), None, *groups) == code


async def test_role_decisions_and_message():
    deleter = role("new", [R([""], ["pods"], ["get", "delete"])])
    with pytest.raises(st.StatusError) as e:
        await make_check().check(req("bob", "roles"), "roles", deleter, None)
    assert e.value.code == 403 and e.value.reason == "Forbidden"
    assert e.value.message == ('roles.rbac.authorization.k8s.io "new" is forbidden: user "bob" '
                               '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not '
                               'currently held:\n{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}')
    assert e.value.details == {"name": "new", "group": "rbac.authorization.k8s.io", "kind": "roles"}
    assert await outcome("bob", "roles", role("new", [PODS_READ])) == 201
    assert await outcome("dave", "roles", deleter) == 201                 # escalate on roles
    assert await outcome("root", "roles", deleter, None, "system:masters") == 201
    # a Role's rules are judged in its namespace: bob holds nothing in "other"
    assert await outcome("bob", "roles", role("new", [PODS_READ], ns="other")) == 403
    # a ClusterRole against cluster-wide rules: bob's RoleBinding does not count
    assert await outcome("bob", "clusterroles", {"metadata": {"name": "c"}, "rules": [PODS_READ]}) == 403
    # the update of a role bob could not write, touching only finalizers: the garbage collector's case
    old = role("dangerous", [R(["*"], ["*"], ["*"])])
    assert await outcome("bob", "roles", {**old, "metadata": {**old["metadata"], "finalizers": []}}, old) == 201
    assert await outcome("bob", "roles", {**old, "rules": [R([""], ["secrets"], ["get"])]}, old) == 403


async def test_aggregation_rule_needs_full_authority():
    agg = {"metadata": {"name": "agg"}, "rules": [],
           "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}}
    # a user holding every rule of the role but not * on *.*: upstream's special message
    policy = Policy.from_objects(cluster_roles=[{"metadata": {"name": "ro"}, "rules": [PODS_READ]}],
                                 cluster_role_bindings=[{"metadata": {"name": "ro"},
                                                         "roleRef": {"kind": "ClusterRole", "name": "ro"},
                                                         "subjects": [{"kind": "User", "name": "bob"}]}])
    check = make_check(policy)
    with pytest.raises(st.StatusError) as e:
        await check.check(req("bob", "clusterroles"), "clusterroles", agg, None)
    assert e.value.message.endswith("must have cluster-admin privileges to use the aggregationRule")
    await check.check(req("bob", "clusterroles"), "clusterroles", {"metadata": {"name": "c"}, "rules": [PODS_READ]},
                      None)
    await check.check(req("root", "clusterroles", "create", "", "system:masters"), "clusterroles", agg, None)
