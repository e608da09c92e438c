"""Discovery documents: how kubectl learns which resources exist (`kubectl api-resources`).

Served as the plain (non-aggregated) lists; kubectl asks for aggregated discovery first and
falls back to these when answered with plain `application/json`.
"""

from __future__ import annotations

from kubelab.resources import RESOURCES, ResourceType, groups

from . import metricsapi

VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.0-kubelab", "gitCommit": "kubelab",
    "gitTreeState": "clean", "buildDate": "2026-11-26T00:00:00Z", "goVersion": "python3",
    "compiler": "cpython", "platform": "linux/amd64",
}

_SUB_VERBS = {
    "status": ["get", "patch", "update"], "scale": ["get", "patch", "update"], "binding": ["create"],
    "log": ["get"], "exec": ["create", "get"], "attach": ["create", "get"], "portforward": ["create", "get"],
    "ephemeralcontainers": ["get", "patch", "update"], "finalize": ["update"], "token": ["create"],
    "eviction": ["create"],
}
_SUB_KIND = {"scale": ("autoscaling", "v1", "Scale"), "binding": ("", "v1", "Binding"),
             "token": ("authentication.k8s.io", "v1", "TokenRequest"),
             "eviction": ("policy", "v1", "Eviction")}


def api_versions(server_address: str) -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_group_list() -> dict:
    out = []
    for group in groups():
        if not group:
            continue
        # a group may serve several versions (gateway.networking.k8s.io: v1 and v1beta1 for
        # ReferenceGrant); the first in the table is the preferred one
        versions = list(dict.fromkeys(r.version for r in RESOURCES if r.group == group))
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        out.append({"name": group, "versions": gvs, "preferredVersion": gvs[0]})
    out.append(metricsapi.group_entry())   # served by the API server itself (metricsapi.py)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": out}


def _entry(rt: ResourceType) -> dict:
    e = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced, "kind": rt.kind,
         "verbs": list(rt.verbs)}
    if rt.short_names:
        e["shortNames"] = list(rt.short_names)
    if rt.categories:
        e["categories"] = list(rt.categories)
    return e


def resource_list(group: str, version: str) -> dict | None:
    if (group, version) == (metricsapi.GROUP, metricsapi.VERSION):
        return metricsapi.resource_list()
    rts = [r for r in RESOURCES if r.group == group and r.version == version]
    if not rts:
        return None
    resources = []
    for rt in rts:
        resources.append(_entry(rt))
        for sub in rt.subresources:
            e = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced,
                 "kind": rt.kind, "verbs": _SUB_VERBS.get(sub, ["get"])}
            if sub in _SUB_KIND:
                g, v, k = _SUB_KIND[sub]
                e.update({"kind": k, "version": v} | ({"group": g} if g else {}))
            if sub in ("log", "exec", "attach", "portforward"):
                e["kind"] = {"exec": "PodExecOptions", "attach": "PodAttachOptions",
                             "portforward": "PodPortForwardOptions"}.get(sub, "Pod")
            resources.append(e)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
