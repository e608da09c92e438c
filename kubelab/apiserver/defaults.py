"""Defaulting, as the Kubernetes API server fills in what a manifest leaves out.

`kubectl get -o yaml` after `kubectl create` shows `restartPolicy: Always`, `dnsPolicy:
ClusterFirst`, `imagePullPolicy: IfNotPresent`, `protocol: TCP`... because the server writes
them: SetDefaults_* of pkg/apis/{core,apps,discovery}/v1/defaults.go, plus what admission and
the registry add on create (serviceAccountName, default tolerations, status.phase, qosClass,
Service ipFamilies). Defaults are applied before validation, so validation sees them.

Everything here mutates the object in place and only sets what is unset: applying twice is
the same as once.
"""

from __future__ import annotations

from kubelab.resources import ResourceType

DEFAULT_TOLERATION_SECONDS = 300
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"


def _d(obj: dict, key: str) -> dict:
    """obj[key] as a dict, created if missing or null."""
    v = obj.get(key)
    if not isinstance(v, dict):
        v = obj[key] = {}
    return v


def _unset(obj: dict, key: str) -> bool:
    return obj.get(key) in (None, "")


def _default(obj: dict, key: str, value) -> None:
    # "" stands for unset only where a string belongs: `replicas: ""` is a type error, not 1
    if obj.get(key) is None or (obj.get(key) == "" and isinstance(value, str)):
        obj[key] = value


def _list(v) -> list:
    return v if isinstance(v, list) else []


def image_pull_policy(image: str) -> str:
    """Always for `:latest` or untagged images, else IfNotPresent (digests count as tags)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _probe(probe) -> None:
    if not isinstance(probe, dict):
        return
    for k, v in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                 ("failureThreshold", 3)):
        _default(probe, k, v)
    if isinstance(probe.get("httpGet"), dict):
        _default(probe["httpGet"], "path", "/")
        _default(probe["httpGet"], "scheme", "HTTP")


def _container(c) -> None:
    if not isinstance(c, dict):
        return
    if isinstance(c.get("image"), str) and c["image"]:
        _default(c, "imagePullPolicy", image_pull_policy(c["image"]))
    _default(c, "terminationMessagePath", "/dev/termination-log")
    _default(c, "terminationMessagePolicy", "File")
    for p in _list(c.get("ports")):
        if isinstance(p, dict):
            _default(p, "protocol", "TCP")
    for e in _list(c.get("env")):
        value_from = e.get("valueFrom") if isinstance(e, dict) else None
        ref = value_from.get("fieldRef") if isinstance(value_from, dict) else None
        if isinstance(ref, dict):
            _default(ref, "apiVersion", "v1")
    for f in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(c.get(f))


def default_pod_spec(spec: dict) -> None:
    """SetDefaults_PodSpec + SetDefaults_Container: shared by pods and pod templates."""
    _default(spec, "restartPolicy", "Always")
    _default(spec, "dnsPolicy", "ClusterFirst")
    _default(spec, "terminationGracePeriodSeconds", 30)
    _default(spec, "schedulerName", "default-scheduler")
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    for f in ("containers", "initContainers"):
        for c in _list(spec.get(f)):
            _container(c)
            if spec.get("hostNetwork") is True:
                for p in _list(c.get("ports") if isinstance(c, dict) else None):
                    if isinstance(p, dict) and p.get("containerPort"):
                        _default(p, "hostPort", p["containerPort"])
    for v in _list(spec.get("volumes")):
        if not isinstance(v, dict):
            continue
        for src in ("configMap", "secret", "downwardAPI", "projected"):
            if isinstance(v.get(src), dict):
                _default(v[src], "defaultMode", 420)


_COMPUTE = ("cpu", "memory")


def qos_class(spec: dict) -> str:
    """GetPodQOS: Guaranteed when every container limits cpu and memory with requests equal to
    limits; BestEffort when none asks for cpu or memory at all; Burstable otherwise."""
    containers = [c for f in ("containers", "initContainers") for c in _list(spec.get(f))
                  if isinstance(c, dict)]
    any_set, guaranteed = False, True
    for c in containers:
        res = c.get("resources") if isinstance(c.get("resources"), dict) else {}
        req = {k: str(v) for k, v in (res.get("requests") or {}).items() if k in _COMPUTE}
        lim = {k: str(v) for k, v in (res.get("limits") or {}).items() if k in _COMPUTE}
        if req or lim:
            any_set = True
        if set(lim) != set(_COMPUTE) or any(req.get(k, lim[k]) != lim[k] for k in _COMPUTE):
            guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _pod(pod: dict) -> None:
    spec = _d(pod, "spec")
    default_pod_spec(spec)
    _default(spec, "enableServiceLinks", True)
    # ServiceAccount admission: every pod runs as a service account.
    _default(spec, "serviceAccountName", "default")
    _default(spec, "serviceAccount", spec["serviceAccountName"])
    _default(spec, "priority", 0)
    # SetDefaults_Pod: requests default to limits.
    for f in ("containers", "initContainers"):
        for c in _list(spec.get(f)):
            res = c.get("resources") if isinstance(c, dict) else None
            if isinstance(res, dict) and isinstance(res.get("limits"), dict):
                if res.get("requests") is None:
                    res["requests"] = {}
                if isinstance(res["requests"], dict):
                    for k, v in res["limits"].items():
                        res["requests"].setdefault(k, v)
    # DefaultTolerationSeconds admission: ride out a short node outage before eviction.
    tolerations = spec.get("tolerations") if isinstance(spec.get("tolerations"), list) else []
    for key in (NOT_READY_TAINT, UNREACHABLE_TAINT):
        if not any(isinstance(t, dict) and t.get("key") == key and t.get("effect") in (None, "", "NoExecute")
                   for t in tolerations):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS})
    spec["tolerations"] = tolerations
    status = _d(pod, "status")
    _default(status, "phase", "Pending")
    _default(status, "qosClass", qos_class(spec))


def _service(svc: dict) -> None:
    spec = _d(svc, "spec")
    _default(spec, "type", "ClusterIP")
    _default(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "ClientIP":
        cfg = _d(_d(spec, "sessionAffinityConfig"), "clientIP")
        _default(cfg, "timeoutSeconds", 10800)
    for p in _list(spec.get("ports")):
        if not isinstance(p, dict):
            continue
        _default(p, "protocol", "TCP")
        if p.get("targetPort") in (None, "", 0) and p.get("port") is not None:
            p["targetPort"] = p["port"]
    stype = spec["type"]
    if stype != "ExternalName":
        _default(spec, "ipFamilies", ["IPv4"])
        _default(spec, "ipFamilyPolicy", "SingleStack")
        _default(spec, "internalTrafficPolicy", "Cluster")
        if spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]
    if stype in ("NodePort", "LoadBalancer"):
        _default(spec, "externalTrafficPolicy", "Cluster")
    if stype == "LoadBalancer":
        _default(spec, "allocateLoadBalancerNodePorts", True)
    _d(_d(svc, "status"), "loadBalancer")


def _template(spec: dict) -> None:
    template = _d(spec, "template")
    default_pod_spec(_d(template, "spec"))


def _deployment(dep: dict) -> None:
    spec = _d(dep, "spec")
    _default(spec, "replicas", 1)
    strategy = _d(spec, "strategy")
    _default(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = _d(strategy, "rollingUpdate")
        _default(ru, "maxUnavailable", "25%")
        _default(ru, "maxSurge", "25%")
    _default(spec, "revisionHistoryLimit", 10)
    _default(spec, "progressDeadlineSeconds", 600)
    _template(spec)


def _replicaset(rs: dict) -> None:
    spec = _d(rs, "spec")
    _default(spec, "replicas", 1)
    _template(spec)


def _job(job: dict) -> None:
    """As SetDefaults_Job: neither completions nor parallelism means one pod to one success."""
    spec = _d(job, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    _default(spec, "parallelism", 1)
    _default(spec, "backoffLimit", 6)
    _default(spec, "completionMode", "NonIndexed")
    _default(spec, "suspend", False)
    _default(spec, "podReplacementPolicy", "TerminatingOrFailed")
    _template(spec)


def _cronjob(cj: dict) -> None:
    spec = _d(cj, "spec")
    _default(spec, "concurrencyPolicy", "Allow")
    _default(spec, "suspend", False)
    _default(spec, "successfulJobsHistoryLimit", 3)
    _default(spec, "failedJobsHistoryLimit", 1)
    _job(_d(spec, "jobTemplate"))


# The labels a Job stamps on its pods (the legacy unprefixed pair too, as upstream still does).
JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"


def after_uid(rt: ResourceType, obj: dict) -> None:
    """Defaults that need the new object's uid: a Job's generated selector (unless
    spec.manualSelector), as the Job registry's PrepareForCreate. The uid makes the selector
    unique, so two Jobs of the same name over time never adopt each other's pods."""
    if rt.kind != "Job" or not isinstance(obj.get("spec"), dict) or obj["spec"].get("manualSelector") is True:
        return
    spec, meta = obj["spec"], obj["metadata"]
    tmeta = _d(_d(spec, "template"), "metadata")
    labels = _d(tmeta, "labels")
    for key, value in ((LEGACY_JOB_NAME_LABEL, meta["name"]), (JOB_NAME_LABEL, meta["name"]),
                       (LEGACY_JOB_UID_LABEL, meta["uid"]), (JOB_UID_LABEL, meta["uid"])):
        labels.setdefault(key, value)
    selector = _d(spec, "selector")
    _d(selector, "matchLabels").setdefault(JOB_UID_LABEL, meta["uid"])


def _daemonset(ds: dict) -> None:
    spec = _d(ds, "spec")
    strategy = _d(spec, "updateStrategy")
    _default(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = _d(strategy, "rollingUpdate")
        _default(ru, "maxUnavailable", 1)
        _default(ru, "maxSurge", 0)
    _default(spec, "revisionHistoryLimit", 10)
    _template(spec)
METADATA_NAME_LABEL = "kubernetes.io/metadata.name"


def _statefulset(sts: dict) -> None:
    spec = _d(sts, "spec")
    _default(spec, "replicas", 1)
    _default(spec, "podManagementPolicy", "OrderedReady")
    strategy = _d(spec, "updateStrategy")
    _default(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        _default(_d(strategy, "rollingUpdate"), "partition", 0)
    _default(spec, "revisionHistoryLimit", 10)
    policy = _d(spec, "persistentVolumeClaimRetentionPolicy")
    _default(policy, "whenDeleted", "Retain")
    _default(policy, "whenScaled", "Retain")
    _template(spec)


def _namespace(ns: dict) -> None:
    # Upstream (1.21+) always sets this label to the name, overwriting any other value, so a
    # NetworkPolicy namespaceSelector can pick a namespace by name.
    meta = ns.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if isinstance(name, str) and name and isinstance(meta.get("labels"), (dict, type(None))):
        _d(meta, "labels")[METADATA_NAME_LABEL] = name
    _default(_d(ns, "spec"), "finalizers", ["kubernetes"])
    _default(_d(ns, "status"), "phase", "Active")


def _endpointslice(es: dict) -> None:
    for p in _list(es.get("ports")):
        if isinstance(p, dict):
            _default(p, "protocol", "TCP")


def _endpoints(ep: dict) -> None:
    for s in _list(ep.get("subsets")):
        for p in _list(s.get("ports") if isinstance(s, dict) else None):
            if isinstance(p, dict):
                _default(p, "protocol", "TCP")


def _secret(secret: dict) -> None:
    _default(secret, "type", "Opaque")


def _networkpolicy(np: dict) -> None:
    """Upstream's SetDefaults_NetworkPolicy: no policyTypes means Ingress, plus Egress when
    egress rules exist; a port without protocol is TCP."""
    spec = _d(np, "spec")
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if _list(spec.get("egress")) else [])
    for direction in ("ingress", "egress"):
        for rule in _list(spec.get(direction)):
            if isinstance(rule, dict):
                for p in _list(rule.get("ports")):
                    if isinstance(p, dict):
                        _default(p, "protocol", "TCP")


_DEFAULTERS = {
    "Pod": _pod, "Service": _service, "Deployment": _deployment, "ReplicaSet": _replicaset,
    "Namespace": _namespace, "EndpointSlice": _endpointslice, "Endpoints": _endpoints,
    "Secret": _secret, "NetworkPolicy": _networkpolicy, "Job": _job, "CronJob": _cronjob, "DaemonSet": _daemonset,
    "StatefulSet": _statefulset,
}


def apply_defaults(rt: ResourceType, obj: dict) -> None:
    """Fill in the defaults of `rt`'s kind, in place; fields already set are kept."""
    if not isinstance(obj, dict):
        return
    fill = _DEFAULTERS.get(rt.kind)
    if fill:
        fill(obj)


def preserve_allocations(rt: ResourceType, obj: dict, old: dict) -> None:
    """On update (PUT/apply), keep what the server allocated when the client left it out, as
    the Service registry does: clusterIP(s), nodePorts, healthCheckNodePort. Without this,
    `kubectl replace -f svc.yaml` would try to change an immutable clusterIP to ""."""
    if rt.kind != "Service" or not isinstance(obj, dict) or not isinstance(old, dict):
        return
    spec, ospec = _d(obj, "spec"), old.get("spec") or {}
    if "ExternalName" in (spec.get("type") or "ClusterIP", ospec.get("type") or "ClusterIP"):
        return
    if _unset(spec, "clusterIP") and ospec.get("clusterIP"):
        spec["clusterIP"] = ospec["clusterIP"]
        if not spec.get("clusterIPs") and ospec.get("clusterIPs"):
            spec["clusterIPs"] = list(ospec["clusterIPs"])
    if (spec.get("type") or "ClusterIP") in ("NodePort", "LoadBalancer"):
        old_ports = {(p.get("port"), p.get("protocol") or "TCP"): p.get("nodePort")
                     for p in _list(ospec.get("ports")) if isinstance(p, dict)}
        for p in _list(spec.get("ports")):
            if isinstance(p, dict) and not p.get("nodePort"):
                np = old_ports.get((p.get("port"), p.get("protocol") or "TCP"))
                if np:
                    p["nodePort"] = np
        if not spec.get("healthCheckNodePort") and ospec.get("healthCheckNodePort") \
                and spec.get("externalTrafficPolicy") == "Local":
            spec["healthCheckNodePort"] = ospec["healthCheckNodePort"]
