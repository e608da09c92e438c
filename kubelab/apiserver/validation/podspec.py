"""The pod spec (containers, probes, volumes, tolerations, ...), shared by Pod and by every
workload template (apps, batch); and the pod-field warnings (podfields.py).
"""

from __future__ import annotations

from kubelab import podfields
from kubelab import quantity

from .causes import Causes, _dict, _list
from .formats import (
    dns1123_label_errors, dns1123_subdomain_errors, _ENV_VAR_NAME, _full, _is_int, MSG_ENV_VAR_NAME,
    port_name_errors, qualified_name_errors,
)
from .meta import PROTOCOLS, validate_labels


RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")


def _port_or_name(errs: Causes, path: str, value) -> None:
    """IntOrString ports: numbers in 1-65535, strings IANA service names (so "80" is not)."""
    if isinstance(value, str):
        errs.each(path, value, port_name_errors(value))
    else:
        errs.port(path, value)


def _validate_probe(errs: Causes, probe, path: str, *, liveness_like: bool) -> None:
    if probe is None:
        return
    if not isinstance(probe, dict):
        errs.type_error(path, probe, "an object")
        return
    handlers = [h for h in _HANDLERS if probe.get(h) is not None]
    if not handlers:
        errs.required(path, "must specify a handler type")
    elif len(handlers) > 1:
        errs.forbidden(f"{path}.{handlers[1]}", "may not specify more than 1 handler type")
    for h in handlers[:1]:
        action = _dict(probe.get(h))
        if h == "exec" and not _list(action.get("command")):
            errs.required(f"{path}.exec.command")
        if h in ("httpGet", "tcpSocket"):
            if action.get("port") in (None, ""):
                errs.required(f"{path}.{h}.port")
            else:
                _port_or_name(errs, f"{path}.{h}.port", action["port"])
        if h == "httpGet" and action.get("scheme") not in (None, "HTTP", "HTTPS"):
            errs.not_supported(f"{path}.httpGet.scheme", action["scheme"], ("HTTP", "HTTPS"))
        if h == "grpc":
            errs.port(f"{path}.grpc.port", action.get("port"))
    for f in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
              "failureThreshold", "terminationGracePeriodSeconds"):
        errs.nonneg(f"{path}.{f}", probe.get(f))
    if liveness_like and probe.get("successThreshold") not in (None, 1):
        errs.invalid(f"{path}.successThreshold", probe["successThreshold"], "must be 1")


def _validate_container(errs: Causes, c, path: str, volumes: set[str], *, init: bool) -> None:
    if not isinstance(c, dict):
        errs.type_error(path, c, "an object")
        return
    name = c.get("name")
    if not name:
        errs.required(f"{path}.name")
    elif isinstance(name, str):
        errs.each(f"{path}.name", name, dns1123_label_errors(name))
    image = c.get("image")
    if not image or (isinstance(image, str) and not image.strip()):
        errs.required(f"{path}.image")
    elif isinstance(image, str) and image != image.strip():
        errs.invalid(f"{path}.image", image, "must not have leading or trailing whitespace")
    for f in ("command", "args"):
        v = c.get(f)
        if v is not None and (not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
            errs.type_error(f"{path}.{f}", v, "a list of strings")

    port_names: set[str] = set()
    for i, p in enumerate(_list(c.get("ports"))):
        pp = f"{path}.ports[{i}]"
        p = _dict(p)
        errs.port(f"{pp}.containerPort", p.get("containerPort"))
        errs.port(f"{pp}.hostPort", p.get("hostPort"), required=False)
        errs.enum(f"{pp}.protocol", p.get("protocol"), PROTOCOLS)
        pname = p.get("name")
        if pname:
            errs.each(f"{pp}.name", pname, port_name_errors(pname))
            if pname in port_names:
                errs.duplicate(f"{pp}.name", pname)
            port_names.add(pname)

    env_names = set()
    for i, e in enumerate(_list(c.get("env"))):
        e = _dict(e)
        ep = f"{path}.env[{i}]"
        if not e.get("name"):
            errs.required(f"{ep}.name")
        else:
            errs.each(f"{ep}.name", e["name"], [] if _full(_ENV_VAR_NAME, e["name"]) else [MSG_ENV_VAR_NAME])
            env_names.add(e["name"])
        if e.get("value") is not None and e.get("valueFrom") is not None:
            errs.invalid(f"{ep}.valueFrom", "", "may not be specified when `value` is not empty")

    mount_paths = set()
    for i, m in enumerate(_list(c.get("volumeMounts"))):
        m = _dict(m)
        mp = f"{path}.volumeMounts[{i}]"
        if not m.get("name"):
            errs.required(f"{mp}.name")
        elif m["name"] not in volumes:
            errs.not_found(f"{mp}.name", m["name"])
        if not m.get("mountPath"):
            errs.required(f"{mp}.mountPath")
        elif m["mountPath"] in mount_paths:
            errs.invalid(f"{mp}.mountPath", m["mountPath"], "must be unique")
        else:
            mount_paths.add(m["mountPath"])

    if not init or c.get("restartPolicy") == "Always":
        _validate_probe(errs, c.get("livenessProbe"), f"{path}.livenessProbe", liveness_like=True)
        _validate_probe(errs, c.get("readinessProbe"), f"{path}.readinessProbe", liveness_like=False)
        _validate_probe(errs, c.get("startupProbe"), f"{path}.startupProbe", liveness_like=True)
    else:
        for f in ("livenessProbe", "readinessProbe", "startupProbe"):
            if c.get(f) is not None:
                errs.forbidden(f"{path}.{f}", "may not be set for init containers without restartPolicy=Always")
    errs.enum(f"{path}.imagePullPolicy", c.get("imagePullPolicy"), PULL_POLICIES, required=False)
    errs.enum(f"{path}.terminationMessagePolicy", c.get("terminationMessagePolicy"),
              TERMINATION_MESSAGE_POLICIES, required=False)
    resources = _dict(c.get("resources"))
    for kind in ("limits", "requests"):
        for rname, q in _dict(resources.get(kind)).items():
            try:
                negative = quantity.parse_quantity(q) < 0
            except ValueError as e:
                errs.invalid(f"{path}.resources.{kind}[{rname}]", q, str(e))
                continue
            if negative:
                errs.invalid(f"{path}.resources.{kind}[{rname}]", q, "must be greater than or equal to 0")


def validate_pod_spec(errs: Causes, spec, path: str = "spec") -> None:
    """Everything ValidatePodSpec checks that matters here; `path` prefixes every field."""
    if not isinstance(spec, dict):
        errs.required(path) if spec is None else errs.type_error(path, spec, "an object")
        return
    volumes: set[str] = set()
    for i, v in enumerate(_list(spec.get("volumes"))):
        v = _dict(v)
        vp = f"{path}.volumes[{i}]"
        vname = v.get("name")
        if not vname:
            errs.required(f"{vp}.name")
            continue
        errs.each(f"{vp}.name", vname, dns1123_label_errors(vname))
        if vname in volumes:
            errs.duplicate(f"{vp}.name", vname)
        volumes.add(vname)
        sources = [k for k in v if k != "name" and v[k] is not None]
        if len(sources) > 1:
            errs.forbidden(f"{vp}.{sources[1]}", "may not specify more than 1 volume type")

    containers = spec.get("containers")
    if not _list(containers):
        errs.required(f"{path}.containers")
    names: set[str] = set()
    for field, init in (("initContainers", True), ("containers", False)):
        for i, c in enumerate(_list(spec.get(field))):
            cp = f"{path}.{field}[{i}]"
            _validate_container(errs, c, cp, volumes, init=init)
            cname = _dict(c).get("name")
            if cname:
                if cname in names:
                    errs.duplicate(f"{cp}.name", cname)
                names.add(cname)

    errs.enum(f"{path}.restartPolicy", spec.get("restartPolicy"), RESTART_POLICIES)
    errs.enum(f"{path}.dnsPolicy", spec.get("dnsPolicy"), DNS_POLICIES)
    if spec.get("dnsPolicy") == "None" and not spec.get("dnsConfig"):
        errs.required(f"{path}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None")
    tgps = spec.get("terminationGracePeriodSeconds")
    errs.nonneg(f"{path}.terminationGracePeriodSeconds", tgps)
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and (not _is_int(ads) or ads < 1):
        errs.invalid(f"{path}.activeDeadlineSeconds", ads, "must be between 1 and 2147483647, inclusive")
    node = spec.get("nodeName")
    if node:
        errs.each(f"{path}.nodeName", node, dns1123_subdomain_errors(node))
    sa = spec.get("serviceAccountName")
    if sa:
        errs.each(f"{path}.serviceAccountName", sa, dns1123_subdomain_errors(sa))
    for f in ("hostname",):
        if spec.get(f):
            errs.each(f"{path}.{f}", spec[f], dns1123_label_errors(spec[f]))
    if spec.get("subdomain"):
        errs.each(f"{path}.subdomain", spec["subdomain"], dns1123_label_errors(spec["subdomain"]))
    validate_labels(errs, spec.get("nodeSelector"), f"{path}.nodeSelector")
    for i, t in enumerate(_list(spec.get("tolerations"))):
        t = _dict(t)
        tp = f"{path}.tolerations[{i}]"
        op = t.get("operator") or "Equal"
        errs.enum(f"{tp}.operator", t.get("operator"), TOLERATION_OPERATORS, required=False)
        if t.get("key"):
            errs.each(f"{tp}.key", t["key"], qualified_name_errors(t["key"]))
        elif op != "Exists":
            errs.invalid(f"{tp}.operator", op, "operator must be Exists when `key` is empty, which means \"match all values and all keys\"")
        if op == "Exists" and t.get("value"):
            errs.invalid(f"{tp}.operator", t["value"], "value must be empty when `operator` is 'Exists'")
        errs.enum(f"{tp}.effect", t.get("effect"), TAINT_EFFECTS, required=False)
    validate_pod_fields(errs, spec, path)


def validate_pod_fields(errs: Causes, spec: dict, path: str) -> None:
    """The fields kubelab's node agent cannot run and upstream would: a 422 naming each
    (kubelab/podfields.py has the table; the warned ones are in `pod_field_warnings`)."""
    for how, field_path, note in podfields.check(spec, path):
        if how == podfields.REFUSED:
            errs.forbidden(field_path, f"not supported by kubelab: {note}")


def _pod_spec_path(obj: dict) -> tuple[object, str]:
    spec = _dict(obj.get("spec"))
    kind = obj.get("kind")
    if kind == "Pod":
        return spec, "spec"
    if kind == "CronJob":
        tpl = _dict(_dict(_dict(spec.get("jobTemplate")).get("spec")).get("template"))
        return tpl.get("spec"), "spec.jobTemplate.spec.template.spec"
    if isinstance(spec.get("template"), dict):
        return spec["template"].get("spec"), "spec.template.spec"
    return None, ""


def pod_field_warnings(obj: dict) -> list[str]:
    """`Warning:` headers for the fields of a pod (or a pod template) kubelab ignores."""
    if obj.get("kind") == "Service":
        from . import loadbalancer  # a Service's warnings (healthCheckNodePort) share this entry point
        return loadbalancer.warnings(obj)
    spec, path = _pod_spec_path(obj)
    return podfields.warnings(spec, path) if isinstance(spec, dict) else []
