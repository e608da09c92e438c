"""Object validation, reporting Kubernetes `StatusCause`s worded as upstream words them.

`validate()` returns causes `{"reason", "message", "field"}` that `status.invalid()` turns into
the 422 kubectl prints as `The Pod "bad-1" is invalid: spec.containers[0].image: Required
value`. Messages copy k8s.io/apimachinery's field.Error bodies and validation texts, so what
students see matches the real thing (and the docs they search). Validation runs on the
defaulted object (defaults.apply_defaults first), as upstream does.

Not done here: ClusterIP range / NodePort allocation (the allocator), cross-object checks
(does the namespace exist?), admission.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re

from kubelab import podfields, quantity
from kubelab.labels import selector_matches
from kubelab.resources import ResourceType

# --- formats (k8s.io/apimachinery/pkg/util/validation) -------------------------------------

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*"
_DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = rf"({_QUALIFIED_NAME})?"
_CONFIG_KEY = r"[-._a-zA-Z0-9]+"
_ENV_VAR_NAME = r"[-._a-zA-Z][-._a-zA-Z0-9]*"
_PERCENT = r"[0-9]+%"

MSG_DNS1123_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                     "or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  "
                     f"or '123-abc', regex used for validation is '{_DNS1123_LABEL}')")
MSG_DNS1123_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                         "characters, '-' or '.', and must start and end with an alphanumeric character "
                         f"(e.g. 'example.com', regex used for validation is '{_DNS1123_SUBDOMAIN}')")
MSG_DNS1035_LABEL = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                     "start with an alphabetic character, and end with an alphanumeric character "
                     f"(e.g. 'my-name',  or 'abc-123', regex used for validation is '{_DNS1035_LABEL}')")
MSG_QUALIFIED_NAME = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                      "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
                      f"or '123-abc', regex used for validation is '{_QUALIFIED_NAME}')")
MSG_LABEL_VALUE = ("a valid label must be an empty string or consist of alphanumeric characters, "
                   "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                   f"'MyValue',  or 'my_value',  or '12345', regex used for validation is '{_LABEL_VALUE}')")
MSG_CONFIG_KEY = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
                  f"(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '{_CONFIG_KEY}')")
MSG_ENV_VAR_NAME = ("a valid environment variable name must consist of alphabetic characters, "
                    "digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  "
                    f"or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '{_ENV_VAR_NAME}')")
MSG_PORT_RANGE = "must be between 1 and 65535, inclusive"
MSG_IMMUTABLE = "field is immutable"


def _full(pattern: str, s) -> bool:
    return isinstance(s, str) and re.fullmatch(pattern, s) is not None


def is_dns1123_label(s: str) -> bool:
    """RFC 1123 label: namespaces, container and port names (≤ 63 chars)."""
    return _full(_DNS1123_LABEL, s) and len(s) <= 63


def is_dns1123_subdomain(s: str) -> bool:
    """RFC 1123 subdomain: most object names (≤ 253 chars)."""
    return _full(_DNS1123_SUBDOMAIN, s) and len(s) <= 253


def is_dns1035_label(s: str) -> bool:
    """DNS-1035 label (starts with a letter): service names, so they can be DNS names."""
    return _full(_DNS1035_LABEL, s) and len(s) <= 63


def dns1123_label_errors(s: str) -> list[str]:
    out = ["must be no more than 63 characters"] if len(s) > 63 else []
    return out + ([] if _full(_DNS1123_LABEL, s) else [MSG_DNS1123_LABEL])


def dns1123_subdomain_errors(s: str) -> list[str]:
    out = ["must be no more than 253 characters"] if len(s) > 253 else []
    return out + ([] if _full(_DNS1123_SUBDOMAIN, s) else [MSG_DNS1123_SUBDOMAIN])


def dns1035_label_errors(s: str) -> list[str]:
    out = ["must be no more than 63 characters"] if len(s) > 63 else []
    return out + ([] if _full(_DNS1035_LABEL, s) else [MSG_DNS1035_LABEL])


def qualified_name_errors(s: str) -> list[str]:
    """Label and annotation keys: `[prefix/]name`, prefix a DNS subdomain, name ≤ 63."""
    parts = s.split("/")
    if len(parts) == 1:
        name, prefix = parts[0], None
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
    else:
        return ["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
                f"'123-abc', regex used for validation is '{_QUALIFIED_NAME}') with an optional DNS "
                "subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    out = []
    if prefix is not None:
        out += [f"prefix part {m}" for m in dns1123_subdomain_errors(prefix)]
    if not name:
        out.append("name part must be non-empty")
    elif len(name) > 63:
        out.append("name part must be no more than 63 characters")
    if name and not _full(_QUALIFIED_NAME, name):
        out.append(MSG_QUALIFIED_NAME)
    return out


def label_value_errors(s: str) -> list[str]:
    out = ["must be no more than 63 characters"] if len(s) > 63 else []
    return out + ([] if _full(_LABEL_VALUE, s) else [MSG_LABEL_VALUE])


def port_name_errors(s: str) -> list[str]:
    """IANA_SVC_NAME (container port names, named targetPorts)."""
    out = []
    if len(s) > 15:
        out.append("must be no more than 15 characters")
    if not re.fullmatch(r"[-a-z0-9]+", s):
        out.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in s:
        out.append("must not contain consecutive hyphens")
    if not re.search(r"[a-z]", s):
        out.append("must contain at least one letter (a-z)")
    if s.startswith("-") or s.endswith("-"):
        out.append("must not begin or end with a hyphen")
    return out


def _is_ip(s, version: int | None = None) -> bool:
    try:
        ip = ipaddress.ip_address(s)
    except (ValueError, TypeError):
        return False
    return version is None or ip.version == version


def _is_cidr(s) -> bool:
    try:
        ipaddress.ip_network(s, strict=False)
    except (ValueError, TypeError):
        return False
    return isinstance(s, str) and "/" in s


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# --- the cause collector -----------------------------------------------------------------------

def _fmt(value) -> str:
    """How field.Error prints a value: strings quoted, numbers bare, the rest as JSON."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_int(value) or isinstance(value, float):
        return str(value)
    if value is None:
        return "null"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class Causes(list):
    """A list of StatusCause dicts with the field.Error constructors of apimachinery."""

    def _add(self, reason: str, path: str, message: str) -> None:
        self.append({"reason": reason, "message": message, "field": path})

    def required(self, path: str, detail: str = "") -> None:
        self._add("FieldValueRequired", path, "Required value" + (f": {detail}" if detail else ""))

    def invalid(self, path: str, value, detail: str) -> None:
        self._add("FieldValueInvalid", path, f"Invalid value: {_fmt(value)}: {detail}")

    def not_supported(self, path: str, value, supported) -> None:
        values = ", ".join(json.dumps(s) for s in sorted(supported))
        self._add("FieldValueNotSupported", path,
                  f"Unsupported value: {_fmt(value)}: supported values: {values}")

    def duplicate(self, path: str, value) -> None:
        self._add("FieldValueDuplicate", path, f"Duplicate value: {_fmt(value)}")

    def forbidden(self, path: str, detail: str) -> None:
        self._add("FieldValueForbidden", path, f"Forbidden: {detail}")

    def not_found(self, path: str, value) -> None:
        self._add("FieldValueNotFound", path, f"Not found: {_fmt(value)}")

    def too_long(self, path: str, limit: int) -> None:
        self._add("FieldValueTooLong", path, f"Too long: must have at most {limit} bytes")

    def type_error(self, path: str, value, want: str) -> None:
        self._add("FieldValueTypeInvalid", path, f"Invalid value: {_fmt(value)}: must be {want}")

    def each(self, path: str, value, messages: list[str]) -> None:
        for m in messages:
            self.invalid(path, value, m)

    def enum(self, path: str, value, supported, *, required: bool = True) -> None:
        if value in (None, ""):
            if required:
                self.required(path)
        elif value not in supported:
            self.not_supported(path, value, supported)

    def nonneg(self, path: str, value) -> None:
        if value is None:
            return
        if not _is_int(value):
            self.type_error(path, value, "an integer")
        elif value < 0:
            self.invalid(path, value, "must be greater than or equal to 0")

    def port(self, path: str, value, *, required: bool = True) -> None:
        if value in (None, 0):
            if required:
                self.required(path)
        elif not _is_int(value):
            self.type_error(path, value, "an integer")
        elif not 1 <= value <= 65535:
            self.invalid(path, value, MSG_PORT_RANGE)


def _dict(v) -> dict:
    return v if isinstance(v, dict) else {}


def _list(v) -> list:
    return v if isinstance(v, list) else []


# --- metadata ----------------------------------------------------------------------------------

LABEL_NAMES = {"Namespace"}  # RFC 1123 label names; Service uses DNS-1035; others subdomains
PROTOCOLS = ("TCP", "UDP", "SCTP")
_TOTAL_ANNOTATION_SIZE = 256 * 1024


RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


def _name_errors(kind: str, name: str) -> list[str]:
    if kind in RBAC_KINDS:
        return []  # path-segment names (`system:node`), checked for '/', '%', '.', '..' above
    if kind == "Service":
        return dns1035_label_errors(name)
    if kind in LABEL_NAMES:
        return dns1123_label_errors(name)
    return dns1123_subdomain_errors(name)


def validate_labels(errs: Causes, labels, path: str) -> None:
    if labels is None:
        return
    if not isinstance(labels, dict):
        errs.type_error(path, labels, "a map of string keys to string values")
        return
    for k, v in labels.items():
        errs.each(path, k, qualified_name_errors(k))
        if not isinstance(v, str):
            errs.type_error(f"{path}[{k}]", v, "a string")
        else:
            errs.each(path, v, label_value_errors(v))


def validate_metadata(errs: Causes, rt: ResourceType, meta) -> None:
    meta = _dict(meta)
    name, gen = meta.get("name") or "", meta.get("generateName") or ""
    if not name and not gen:
        errs.required("metadata.name", "name or generateName is required")
    if name:
        if name in (".", ".."):
            errs.invalid("metadata.name", name, f"may not be '{name}'")
        elif "/" in name or "%" in name:
            errs.invalid("metadata.name", name, "may not contain '/'" if "/" in name else "may not contain '%'")
        else:
            errs.each("metadata.name", name, _name_errors(rt.kind, name))
    if gen:
        # generateName is a prefix: validated with its trailing '-' masked, like upstream.
        errs.each("metadata.generateName", gen, _name_errors(rt.kind, gen.rstrip("-") or "a"))
    ns = meta.get("namespace") or ""
    if rt.namespaced:
        if not ns:
            errs.required("metadata.namespace")
        else:
            errs.each("metadata.namespace", ns, dns1123_label_errors(ns))
    elif ns:
        errs.forbidden("metadata.namespace", "not allowed on this type")
    validate_labels(errs, meta.get("labels"), "metadata.labels")
    annotations = meta.get("annotations")
    if annotations is not None:
        if not isinstance(annotations, dict):
            errs.type_error("metadata.annotations", annotations, "a map of string keys to string values")
        else:
            size = 0
            for k, v in annotations.items():
                errs.each("metadata.annotations", k, qualified_name_errors(k))
                if not isinstance(v, str):
                    errs.type_error(f"metadata.annotations[{k}]", v, "a string")
                else:
                    size += len(k) + len(v)
            if size > _TOTAL_ANNOTATION_SIZE:
                errs.too_long("metadata.annotations", _TOTAL_ANNOTATION_SIZE)
    for i, f in enumerate(_list(meta.get("finalizers"))):
        errs.each(f"metadata.finalizers[{i}]", f, qualified_name_errors(f) if isinstance(f, str) else ["must be a string"])


# --- pod spec ----------------------------------------------------------------------------------

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
    spec, path = _pod_spec_path(obj)
    return podfields.warnings(spec, path) if isinstance(spec, dict) else []


# --- per kind -----------------------------------------------------------------------------------

def _validate_pod(errs: Causes, obj: dict) -> None:
    validate_pod_spec(errs, obj.get("spec"))


SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
NODE_PORT_RANGE = (30000, 32767)


def _validate_service(errs: Causes, obj: dict) -> None:
    spec = _dict(obj.get("spec"))
    stype = spec.get("type") or "ClusterIP"
    errs.enum("spec.type", spec.get("type"), SERVICE_TYPES, required=False)
    cluster_ip = spec.get("clusterIP")
    headless = cluster_ip == "None"
    if cluster_ip not in (None, "", "None") and not _is_ip(cluster_ip):
        errs.invalid("spec.clusterIPs[0]", cluster_ip,
                     "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
    if headless and stype in ("NodePort", "LoadBalancer"):
        errs.invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {stype} services")
    ips = _list(spec.get("clusterIPs"))
    if ips and cluster_ip and ips[0] != cluster_ip:
        errs.invalid("spec.clusterIPs", ips, "first value must match `clusterIP`")

    ports = _list(spec.get("ports"))
    if stype == "ExternalName":
        ext = spec.get("externalName")
        if not ext:
            errs.required("spec.externalName")
        else:
            errs.each("spec.externalName", ext.rstrip("."), dns1123_subdomain_errors(ext.rstrip(".")))
        if cluster_ip not in (None, ""):
            errs.forbidden("spec.clusterIPs", "may not be set for ExternalName services")
    elif not ports and not headless:
        errs.required("spec.ports")

    names: set[str] = set()
    seen: set[tuple] = set()
    for i, p in enumerate(ports):
        pp = f"spec.ports[{i}]"
        p = _dict(p)
        name = p.get("name")
        if len(ports) > 1 and not name:
            errs.required(f"{pp}.name")
        elif name:
            errs.each(f"{pp}.name", name, dns1123_label_errors(name))
            if name in names:
                errs.duplicate(f"{pp}.name", name)
            names.add(name)
        errs.port(f"{pp}.port", p.get("port"))
        errs.enum(f"{pp}.protocol", p.get("protocol"), PROTOCOLS)
        key = (p.get("port"), p.get("protocol"))
        if key in seen:
            errs.duplicate(pp, {"port": key[0], "protocol": key[1]})
        seen.add(key)
        if p.get("targetPort") not in (None, 0, ""):
            _port_or_name(errs, f"{pp}.targetPort", p["targetPort"])
        node_port = p.get("nodePort")
        if node_port not in (None, 0):
            if stype not in ("NodePort", "LoadBalancer"):
                errs.forbidden(f"{pp}.nodePort", f"may not be used when `type` is '{stype}'")
            elif not _is_int(node_port) or not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
                errs.invalid(f"{pp}.nodePort", node_port,
                             "provided port is not in the valid range. The range of valid ports is "
                             f"{NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}")
    if stype != "ExternalName":
        validate_labels(errs, spec.get("selector"), "spec.selector")
    errs.enum("spec.sessionAffinity", spec.get("sessionAffinity"), ("ClientIP", "None"), required=False)
    for f in ("externalTrafficPolicy", "internalTrafficPolicy"):
        errs.enum(f"spec.{f}", spec.get(f), ("Cluster", "Local"), required=False)
    if spec.get("externalTrafficPolicy") and stype not in ("NodePort", "LoadBalancer"):
        errs.invalid("spec.externalTrafficPolicy", spec["externalTrafficPolicy"],
                     "may only be set for externally-accessible services")
    for i, ip in enumerate(_list(spec.get("externalIPs"))):
        if not _is_ip(ip):
            errs.invalid(f"spec.externalIPs[{i}]", ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")


SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(errs: Causes, selector, path: str) -> None:
    selector = _dict(selector)
    validate_labels(errs, selector.get("matchLabels"), f"{path}.matchLabels")
    for i, r in enumerate(_list(selector.get("matchExpressions"))):
        r = _dict(r)
        rp = f"{path}.matchExpressions[{i}]"
        op = r.get("operator")
        errs.enum(f"{rp}.operator", op, SELECTOR_OPERATORS)
        values = _list(r.get("values"))
        if op in ("In", "NotIn") and not values:
            errs.required(f"{rp}.values", "must be specified when `operator` is 'In' or 'NotIn'")
        if op in ("Exists", "DoesNotExist") and values:
            errs.forbidden(f"{rp}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        errs.each(f"{rp}.key", r.get("key") or "", qualified_name_errors(r.get("key") or ""))


def _validate_replicated(errs: Causes, obj: dict, kind: str) -> None:
    spec = _dict(obj.get("spec"))
    replicas = spec.get("replicas")
    if replicas is not None:
        errs.nonneg("spec.replicas", replicas)
    errs.nonneg("spec.minReadySeconds", spec.get("minReadySeconds"))
    selector = spec.get("selector")
    template = spec.get("template")
    if selector is None:
        errs.required("spec.selector")
    elif not _dict(selector).get("matchLabels") and not _dict(selector).get("matchExpressions"):
        errs.invalid("spec.selector", selector, f"empty selector is invalid for {kind}")
    else:
        validate_label_selector(errs, selector, "spec.selector")
    if not isinstance(template, dict):
        errs.required("spec.template")
        return
    tmeta = _dict(template.get("metadata"))
    labels = tmeta.get("labels") or {}
    validate_labels(errs, tmeta.get("labels"), "spec.template.metadata.labels")
    if isinstance(selector, dict) and (selector.get("matchLabels") or selector.get("matchExpressions")) \
            and not selector_matches(selector, labels):
        errs.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
    pod_spec = template.get("spec")
    validate_pod_spec(errs, pod_spec, "spec.template.spec")
    rp = _dict(pod_spec).get("restartPolicy")
    if rp not in (None, "", "Always"):
        errs.not_supported("spec.template.spec.restartPolicy", rp, ("Always",))
    if _dict(pod_spec).get("activeDeadlineSeconds") is not None:
        errs.forbidden("spec.template.spec.activeDeadlineSeconds", "activeDeadlineSeconds in ReplicaSet is not Supported")


def _int_or_percent(errs: Causes, path: str, v) -> int | None:
    """Returns the value when it is a plain number or a percentage (number part), else None."""
    if v is None:
        return None
    if _is_int(v):
        if v < 0:
            errs.invalid(path, v, "must be greater than or equal to 0")
        return v
    if isinstance(v, str) and _full(_PERCENT, v):
        n = int(v[:-1])
        if n > 100 and path.endswith("maxUnavailable"):
            errs.invalid(path, v, "must not be greater than 100%")
        return n
    errs.invalid(path, v, "a valid percent string must be a numeric string followed by an ending '%' "
                          "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")
    return None


def _validate_deployment(errs: Causes, obj: dict) -> None:
    _validate_replicated(errs, obj, "deployment")
    spec = _dict(obj.get("spec"))
    strategy = _dict(spec.get("strategy"))
    stype = strategy.get("type")
    errs.enum("spec.strategy.type", stype, ("Recreate", "RollingUpdate"), required=False)
    ru = strategy.get("rollingUpdate")
    if stype == "Recreate" and ru is not None:
        errs.forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
    elif ru is not None:
        ru = _dict(ru)
        unavailable = _int_or_percent(errs, "spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"))
        surge = _int_or_percent(errs, "spec.strategy.rollingUpdate.maxSurge", ru.get("maxSurge"))
        if unavailable == 0 and surge == 0:
            errs.invalid("spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"),
                         "may not be 0 when `maxSurge` is 0")
    errs.nonneg("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    pds = spec.get("progressDeadlineSeconds")
    if pds is not None:
        mrs = spec.get("minReadySeconds") or 0
        if not _is_int(pds) or pds <= 0:
            errs.invalid("spec.progressDeadlineSeconds", pds, "must be greater than 0")
        elif _is_int(mrs) and pds <= mrs:
            errs.invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds")


def _validate_daemonset(errs: Causes, obj: dict) -> None:
    _validate_replicated(errs, obj, "daemonset")
    strategy = _dict(_dict(obj.get("spec")).get("updateStrategy"))
    stype = strategy.get("type")
    errs.enum("spec.updateStrategy.type", stype, ("OnDelete", "RollingUpdate"), required=False)
    ru = strategy.get("rollingUpdate")
    if stype == "OnDelete" and ru is not None:
        errs.forbidden("spec.updateStrategy.rollingUpdate", "may not be specified when strategy `type` is 'OnDelete'")
    elif ru is not None:
        ru = _dict(ru)
        unavailable = _int_or_percent(errs, "spec.updateStrategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"))
        surge = ru.get("maxSurge")
        if surge not in (None, 0, "0%"):
            errs.forbidden("spec.updateStrategy.rollingUpdate.maxSurge",
                           "not supported by kubelab's daemonset controller (must be 0)")
        elif unavailable == 0:
            errs.invalid("spec.updateStrategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"),
                         "cannot be 0 when maxSurge is 0")
    errs.nonneg("spec.revisionHistoryLimit", _dict(obj.get("spec")).get("revisionHistoryLimit"))


def _validate_replicaset(errs: Causes, obj: dict) -> None:
    _validate_replicated(errs, obj, "replicaset")


# Job fields whose feature the job controller does not implement: refused, never ignored.
JOB_UNIMPLEMENTED = ("podFailurePolicy", "successPolicy", "backoffLimitPerIndex", "maxFailedIndexes")
JOB_MANAGED_BY = "kubernetes.io/job-controller"


def _validate_job(errs: Causes, obj: dict) -> None:
    """As upstream's ValidateJob: counts non-negative, pods that terminate (restartPolicy
    OnFailure or Never), a selector that matches the template."""
    _validate_job_spec(errs, _dict(obj.get("spec")), "spec", uid=_dict(obj.get("metadata")).get("uid"))


def _validate_job_spec(errs: Causes, spec: dict, at: str, *, uid: str | None,
                       selector_required: bool = True) -> None:
    for f in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"):
        errs.nonneg(f"{at}.{f}", spec.get(f))
    mode = spec.get("completionMode")
    errs.enum(f"{at}.completionMode", mode, ("NonIndexed", "Indexed"), required=False)
    if mode == "Indexed":
        errs.forbidden(f"{at}.completionMode", "Indexed is not supported by kubelab's job controller yet")
        if spec.get("completions") is None:
            errs.required(f"{at}.completions", "when completion mode is Indexed")
        elif _is_int(spec["completions"]) and spec["completions"] > 100000:
            errs.invalid(f"{at}.completions", spec["completions"],
                         "must be less than or equal to 100000 when completion mode is Indexed")
    for f in JOB_UNIMPLEMENTED:
        if spec.get(f) is not None:
            errs.forbidden(f"{at}.{f}", "not supported by kubelab's job controller")
    errs.enum(f"{at}.podReplacementPolicy", spec.get("podReplacementPolicy"), ("TerminatingOrFailed",),
              required=False)
    if spec.get("managedBy") not in (None, JOB_MANAGED_BY):
        errs.not_supported(f"{at}.managedBy", spec.get("managedBy"), (JOB_MANAGED_BY,))
    selector = spec.get("selector")
    template = spec.get("template")
    if selector is None:
        if selector_required:
            errs.required(f"{at}.selector")
    else:
        validate_label_selector(errs, selector, f"{at}.selector")
    if not isinstance(template, dict):
        errs.required(f"{at}.template")
        return
    labels = _dict(template.get("metadata")).get("labels") or {}
    validate_labels(errs, labels, f"{at}.template.metadata.labels")
    if isinstance(selector, dict) and not selector_matches(selector, labels):
        errs.invalid(f"{at}.template.metadata.labels", labels, "`selector` does not match template `labels`")
    if spec.get("manualSelector") is not True and uid and \
            _dict(_dict(selector).get("matchLabels")).get("batch.kubernetes.io/controller-uid") != uid:
        errs.invalid(f"{at}.selector", selector, "`selector` not auto-generated")
    pod_spec = template.get("spec")
    validate_pod_spec(errs, pod_spec, f"{at}.template.spec")
    rp = _dict(pod_spec).get("restartPolicy")
    if rp not in ("OnFailure", "Never"):
        errs.not_supported(f"{at}.template.spec.restartPolicy", rp, ("OnFailure", "Never"))


def schedule_error(schedule: str) -> str | None:
    """Why a CronJob schedule is refused (None when fine): five cron fields or a predefined
    `@hourly`-style macro, as upstream's parser takes; the time zone goes in spec.timeZone."""
    from croniter import croniter
    if len(schedule) > 256:
        return "must be no more than 256 characters"
    text = schedule.strip()
    if "TZ=" in text:
        return "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
    if text.startswith("@"):
        if text not in ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"):
            return f"unrecognized descriptor: {text}"
        return None
    fields = text.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: {text}"
    if any("H" in f or "?" in f or "L" in f or "#" in f for f in fields) or not croniter.is_valid(text):
        return f"unparseable cron schedule: {text}"
    return None


def time_zone_error(tz: str) -> str | None:
    import zoneinfo
    if len(tz) > 64 or tz.startswith("/") or ".." in tz:
        return f"unknown time zone {tz}"
    try:
        zoneinfo.ZoneInfo(tz)
    except Exception:
        return f"unknown time zone {tz}"
    return None


def _validate_cronjob(errs: Causes, obj: dict) -> None:
    spec = _dict(obj.get("spec"))
    name = _dict(obj.get("metadata")).get("name")
    if isinstance(name, str) and len(name) > 52:
        errs.invalid("metadata.name", name, "must be no more than 52 characters")
    schedule = spec.get("schedule")
    if not schedule:
        errs.required("spec.schedule")
    elif (why := schedule_error(schedule)) is not None:
        errs.invalid("spec.schedule", schedule, why)
    tz = spec.get("timeZone")
    if tz is not None and (why := time_zone_error(tz)) is not None:
        errs.invalid("spec.timeZone", tz, why)
    errs.enum("spec.concurrencyPolicy", spec.get("concurrencyPolicy"), ("Allow", "Forbid", "Replace"))
    for f in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        errs.nonneg(f"spec.{f}", spec.get(f))
    template = spec.get("jobTemplate")
    if not isinstance(template, dict):
        errs.required("spec.jobTemplate")
        return
    validate_labels(errs, _dict(template.get("metadata")).get("labels"), "spec.jobTemplate.metadata.labels")
    _validate_job_spec(errs, _dict(template.get("spec")), "spec.jobTemplate.spec", uid=None, selector_required=False)


def _validate_job_update(errs: Causes, obj: dict, old: dict) -> None:
    """A Job's pods are its template's: selector, template, completions and mode are fixed."""
    spec, ospec = _dict(obj.get("spec")), _dict(old.get("spec"))
    for f in ("selector", "template", "completions", "completionMode", "manualSelector"):
        _immutable(errs, f"spec.{f}", spec.get(f), ospec.get(f))


def _validate_namespace(errs: Causes, obj: dict) -> None:
    for i, f in enumerate(_list(_dict(obj.get("spec")).get("finalizers"))):
        errs.each(f"spec.finalizers[{i}]", f, qualified_name_errors(f) if isinstance(f, str) else ["must be a string"])
    errs.enum("status.phase", _dict(obj.get("status")).get("phase"), ("Active", "Terminating"), required=False)


def _validate_node(errs: Causes, obj: dict) -> None:
    spec = _dict(obj.get("spec"))
    cidr = spec.get("podCIDR")
    if cidr and not _is_cidr(cidr):
        errs.invalid("spec.podCIDR", cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")
    cidrs = _list(spec.get("podCIDRs"))
    for i, c in enumerate(cidrs):
        if not _is_cidr(c):
            errs.invalid(f"spec.podCIDRs[{i}]", c, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")
    if cidr and cidrs and cidrs[0] != cidr:
        errs.invalid("spec.podCIDRs", cidrs, "first value must match `podCIDR`")
    for i, t in enumerate(_list(spec.get("taints"))):
        t = _dict(t)
        if not t.get("key"):
            errs.required(f"spec.taints[{i}].key")
        else:
            errs.each(f"spec.taints[{i}].key", t["key"], qualified_name_errors(t["key"]))
        errs.enum(f"spec.taints[{i}].effect", t.get("effect"), TAINT_EFFECTS)
    for i, a in enumerate(_list(_dict(obj.get("status")).get("addresses"))):
        errs.enum(f"status.addresses[{i}].type", _dict(a).get("type"),
                  ("Hostname", "InternalIP", "ExternalIP", "InternalDNS", "ExternalDNS"))


ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")


def _validate_endpointslice(errs: Causes, obj: dict) -> None:
    atype = obj.get("addressType")
    errs.enum("addressType", atype, ADDRESS_TYPES)
    endpoints = _list(obj.get("endpoints"))
    if len(endpoints) > 1000:
        errs.too_long("endpoints", 1000)
    for i, ep in enumerate(endpoints):
        ep = _dict(ep)
        addrs = _list(ep.get("addresses"))
        ap = f"endpoints[{i}].addresses"
        if not addrs:
            errs.required(ap, "must contain at least 1 address")
        elif len(addrs) > 100:
            errs.too_long(ap, 100)
        for j, a in enumerate(addrs):
            if atype == "IPv4" and not _is_ip(a, 4):
                errs.invalid(f"{ap}[{j}]", a, "must be a valid IPv4 address")
            elif atype == "IPv6" and not _is_ip(a, 6):
                errs.invalid(f"{ap}[{j}]", a, "must be a valid IPv6 address")
            elif atype == "FQDN":
                errs.each(f"{ap}[{j}]", a, dns1123_subdomain_errors(a if isinstance(a, str) else ""))
        if ep.get("hostname"):
            errs.each(f"endpoints[{i}].hostname", ep["hostname"], dns1123_label_errors(ep["hostname"]))
        if ep.get("nodeName"):
            errs.each(f"endpoints[{i}].nodeName", ep["nodeName"], dns1123_subdomain_errors(ep["nodeName"]))
        for cond in ("ready", "serving", "terminating"):
            v = _dict(ep.get("conditions")).get(cond)
            if v is not None and not isinstance(v, bool):
                errs.type_error(f"endpoints[{i}].conditions.{cond}", v, "a boolean")
    names = set()
    for i, p in enumerate(_list(obj.get("ports"))):
        p = _dict(p)
        pp = f"ports[{i}]"
        name = p.get("name") or ""
        if name:
            errs.each(f"{pp}.name", name, dns1123_label_errors(name))
        if name in names:
            errs.duplicate(f"{pp}.name", name)
        names.add(name)
        errs.port(f"{pp}.port", p.get("port"), required=False)
        errs.enum(f"{pp}.protocol", p.get("protocol"), PROTOCOLS)


def _validate_endpoints(errs: Causes, obj: dict) -> None:
    for i, s in enumerate(_list(obj.get("subsets"))):
        s = _dict(s)
        for field in ("addresses", "notReadyAddresses"):
            for j, a in enumerate(_list(s.get(field))):
                ip = _dict(a).get("ip")
                if not ip:
                    errs.required(f"subsets[{i}].{field}[{j}].ip")
                elif not _is_ip(ip):
                    errs.invalid(f"subsets[{i}].{field}[{j}].ip", ip,
                                 "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
        ports = _list(s.get("ports"))
        for j, p in enumerate(ports):
            p = _dict(p)
            pp = f"subsets[{i}].ports[{j}]"
            if len(ports) > 1 and not p.get("name"):
                errs.required(f"{pp}.name")
            elif p.get("name"):
                errs.each(f"{pp}.name", p["name"], dns1123_label_errors(p["name"]))
            errs.port(f"{pp}.port", p.get("port"))
            errs.enum(f"{pp}.protocol", p.get("protocol"), PROTOCOLS)


_MAX_DATA = 1024 * 1024


def _validate_data(errs: Causes, obj: dict, fields: tuple[str, ...]) -> None:
    seen: dict[str, str] = {}
    size = 0
    for f in fields:
        data = obj.get(f)
        if data is None:
            continue
        if not isinstance(data, dict):
            errs.type_error(f, data, "a map of string keys to string values")
            continue
        for k, v in data.items():
            path = f"{f}[{k}]"
            if len(k) > 253:
                errs.invalid(path, k, "must be no more than 253 characters")
            if not _full(_CONFIG_KEY, k):
                errs.invalid(path, k, MSG_CONFIG_KEY)
            if k in (".", "..") or k.startswith(".."):
                errs.invalid(path, k, "must not be '.' or '..'" if k in (".", "..") else "must not start with '..'")
            if k in seen:
                errs.invalid(path, k, f"duplicate of key present in {seen[k]}")
            seen[k] = f
            if not isinstance(v, str):
                errs.type_error(path, v, "a string")
            else:
                size += len(v)
    if size > _MAX_DATA:
        errs.too_long("data", _MAX_DATA)


def _validate_configmap(errs: Causes, obj: dict) -> None:
    _validate_data(errs, obj, ("data", "binaryData"))


def _validate_secret(errs: Causes, obj: dict) -> None:
    _validate_data(errs, obj, ("data", "stringData"))
    for k, v in _dict(obj.get("data")).items():
        if isinstance(v, str):
            try:
                base64.b64decode(v, validate=True)
            except (binascii.Error, ValueError):
                errs.invalid(f"data[{k}]", v, "illegal base64 data")
    stype = obj.get("type")
    if stype == "kubernetes.io/service-account-token":
        if not _dict(_dict(obj.get("metadata")).get("annotations")).get("kubernetes.io/service-account.name"):
            errs.required("metadata.annotations[kubernetes.io/service-account.name]")
    if stype == "kubernetes.io/tls":
        for k in ("tls.crt", "tls.key"):
            if k not in _dict(obj.get("data")) and k not in _dict(obj.get("stringData")):
                errs.required(f"data[{k}]")


def _validate_serviceaccount(errs: Causes, obj: dict) -> None:
    for i, s in enumerate(_list(obj.get("imagePullSecrets"))):
        if not _dict(s).get("name"):
            errs.required(f"imagePullSecrets[{i}].name")


def _validate_lease(errs: Causes, obj: dict) -> None:
    spec = _dict(obj.get("spec"))
    d = spec.get("leaseDurationSeconds")
    if d is not None and (not _is_int(d) or d <= 0):
        errs.invalid("spec.leaseDurationSeconds", d, "must be greater than 0")
    errs.nonneg("spec.leaseTransitions", spec.get("leaseTransitions"))


def _validate_event(errs: Causes, obj: dict) -> None:
    involved = _dict(obj.get("involvedObject"))
    ns = _dict(obj.get("metadata")).get("namespace")
    if involved.get("namespace") and ns and involved["namespace"] != ns:
        errs.invalid("involvedObject.namespace", involved["namespace"], "does not match event.namespace")
    errs.enum("type", obj.get("type"), ("Normal", "Warning"), required=False)
    if obj.get("count") is not None:
        errs.nonneg("count", obj["count"])


def _string_list(errs: Causes, value, path: str, *, required: bool = False) -> None:
    if value is None:
        if required:
            errs.required(path)
        return
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errs.type_error(path, value, "a list of strings")
    elif required and not value:
        errs.required(path)


def _validate_rules(errs: Causes, obj: dict) -> None:
    rules = obj.get("rules")
    if rules is None:
        return
    if not isinstance(rules, list):
        errs.type_error("rules", rules, "a list of PolicyRules")
        return
    for i, r in enumerate(rules):
        p = f"rules[{i}]"
        if not isinstance(r, dict):
            errs.type_error(p, r, "a PolicyRule object")
            continue
        _string_list(errs, r.get("verbs"), f"{p}.verbs", required=True)
        for f in ("apiGroups", "resources", "resourceNames", "nonResourceURLs"):
            _string_list(errs, r.get(f), f"{p}.{f}")
        if r.get("nonResourceURLs") and obj.get("kind") == "Role":
            errs.invalid(f"{p}.nonResourceURLs", r["nonResourceURLs"], "namespaced rules cannot apply to "
                                                                     "non-resource URLs")
        elif not r.get("nonResourceURLs") and not r.get("resources"):
            errs.required(f"{p}.resources", "resource rules must supply at least one resource")


def _validate_binding(errs: Causes, obj: dict) -> None:
    ref = obj.get("roleRef")
    if not isinstance(ref, dict):
        errs.required("roleRef") if ref is None else errs.type_error("roleRef", ref, "a RoleRef object")
    else:
        kinds = ("Role", "ClusterRole") if obj.get("kind") == "RoleBinding" else ("ClusterRole",)
        errs.enum("roleRef.kind", ref.get("kind"), kinds)
        if not isinstance(ref.get("name"), str) or not ref.get("name"):
            errs.required("roleRef.name")
    subjects = obj.get("subjects")
    if subjects is None:
        return
    if not isinstance(subjects, list):
        errs.type_error("subjects", subjects, "a list of Subjects")
        return
    for i, sj in enumerate(subjects):
        if not isinstance(sj, dict):
            errs.type_error(f"subjects[{i}]", sj, "a Subject object")
            continue
        errs.enum(f"subjects[{i}].kind", sj.get("kind"), ("User", "Group", "ServiceAccount"))
        if not isinstance(sj.get("name"), str) or not sj.get("name"):
            errs.required(f"subjects[{i}].name")


# --- networking/v1 NetworkPolicy (pkg/apis/networking/validation) ----------------------------

MSG_CIDR = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
POLICY_TYPES = ("Ingress", "Egress")  # upstream lists them in this order (not sorted)


def _port_num_errors(v) -> list[str]:
    return [] if _is_int(v) and 1 <= v <= 65535 else [MSG_PORT_RANGE]


def _validate_netpol_port(errs: Causes, port: dict, path: str) -> None:
    proto = port.get("protocol")
    if proto is not None and proto not in PROTOCOLS:
        errs._add("FieldValueNotSupported", f"{path}.protocol",
                  f"Unsupported value: {_fmt(proto)}: supported values: \"TCP\", \"UDP\", \"SCTP\"")
    p, end = port.get("port"), port.get("endPort")
    if p is None:
        if end is not None:
            errs.invalid(f"{path}.endPort", end, "may not be specified when `port` is not specified")
    elif _is_int(p):
        errs.each(f"{path}.port", p, _port_num_errors(p))
        if end is not None:
            if end < p:
                errs.invalid(f"{path}.endPort", p, "must be greater than or equal to `port`")
            errs.each(f"{path}.endPort", end, _port_num_errors(end))
    else:
        if end is not None:
            errs.invalid(f"{path}.endPort", end, "may not be specified when `port` is non-numeric")
        errs.each(f"{path}.port", p, port_name_errors(p))


def _validate_ip_block(errs: Causes, ipb: dict, path: str) -> None:
    cidr = ipb.get("cidr") or ""
    if not cidr:
        errs.required(f"{path}.cidr")
        return
    if not _is_cidr(cidr):
        errs.invalid(f"{path}.cidr", cidr, MSG_CIDR)
        return
    net = ipaddress.ip_network(cidr, strict=False)
    for i, ex in enumerate(_list(ipb.get("except"))):
        epath = f"{path}.except[{i}]"
        if not _is_cidr(ex):
            errs.invalid(epath, ex, MSG_CIDR)
            continue
        exn = ipaddress.ip_network(ex, strict=False)
        if exn.version != net.version or exn.network_address not in net or net.prefixlen >= exn.prefixlen:
            errs.invalid(epath, ex, "must be a strict subset of `cidr`")


def _validate_netpol_peer(errs: Causes, peer: dict, path: str) -> None:
    n = 0
    for key in ("podSelector", "namespaceSelector"):
        if peer.get(key) is not None:
            n += 1
            validate_label_selector(errs, peer[key], f"{path}.{key}")
    if peer.get("ipBlock") is not None:
        n += 1
        _validate_ip_block(errs, _dict(peer["ipBlock"]), f"{path}.ipBlock")
    if n == 0:
        errs.required(path, "must specify a peer")
    elif n > 1 and peer.get("ipBlock") is not None:
        errs.forbidden(path, "may not specify both ipBlock and another peer")


def _validate_networkpolicy(errs: Causes, obj: dict) -> None:
    spec = _dict(obj.get("spec"))
    validate_label_selector(errs, spec.get("podSelector"), "spec.podSelector")
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(_list(spec.get(direction))):
            rule, rpath = _dict(rule), f"spec.{direction}[{i}]"
            for j, port in enumerate(_list(rule.get("ports"))):
                _validate_netpol_port(errs, _dict(port), f"{rpath}.ports[{j}]")
            for j, peer in enumerate(_list(rule.get(peers))):
                _validate_netpol_peer(errs, _dict(peer), f"{rpath}.{peers}[{j}]")
    types = _list(spec.get("policyTypes"))
    if len(types) > len(POLICY_TYPES):
        errs.invalid("spec.policyTypes", types, "may not specify more than two policyTypes")
        return
    for i, t in enumerate(types):
        if t not in POLICY_TYPES:
            errs._add("FieldValueNotSupported", f"spec.policyTypes[{i}]",
                      f"Unsupported value: {_fmt(t)}: supported values: \"Ingress\", \"Egress\"")


_VALIDATORS = {
    "Role": _validate_rules, "ClusterRole": _validate_rules,
    "RoleBinding": _validate_binding, "ClusterRoleBinding": _validate_binding,
    "Pod": _validate_pod, "Service": _validate_service, "Deployment": _validate_deployment,
    "ReplicaSet": _validate_replicaset, "Namespace": _validate_namespace, "Node": _validate_node,
    "EndpointSlice": _validate_endpointslice, "Endpoints": _validate_endpoints,
    "ConfigMap": _validate_configmap, "Secret": _validate_secret,
    "ServiceAccount": _validate_serviceaccount, "Lease": _validate_lease, "Event": _validate_event,
    "NetworkPolicy": _validate_networkpolicy,
    "Job": _validate_job, "CronJob": _validate_cronjob, "DaemonSet": _validate_daemonset,
}


# --- updates ------------------------------------------------------------------------------------

POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


def _immutable(errs: Causes, path: str, new, old) -> None:
    if new != old:
        errs.invalid(path, new, MSG_IMMUTABLE)


def _validate_meta_update(errs: Causes, obj: dict, old: dict) -> None:
    meta, ometa = _dict(obj.get("metadata")), _dict(old.get("metadata"))
    for f in ("name", "namespace", "uid", "creationTimestamp"):
        if ometa.get(f) and meta.get(f) and meta.get(f) != ometa.get(f):
            errs.invalid(f"metadata.{f}", meta.get(f), MSG_IMMUTABLE)


def _validate_pod_update(errs: Causes, obj: dict, old: dict) -> None:
    spec, ospec = _dict(obj.get("spec")), _dict(old.get("spec"))
    if ospec.get("nodeName") and spec.get("nodeName") != ospec.get("nodeName"):
        errs.invalid("spec.nodeName", spec.get("nodeName") or "", MSG_IMMUTABLE)

    ads, oads = spec.get("activeDeadlineSeconds"), ospec.get("activeDeadlineSeconds")
    if oads is not None and (ads is None or (_is_int(ads) and ads > oads)):
        errs.invalid("spec.activeDeadlineSeconds", ads, "must be less than or equal to previous value")
    otol, tol = _list(ospec.get("tolerations")), _list(spec.get("tolerations"))
    if any(t not in tol for t in otol):
        errs.forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds")

    def masked(s: dict) -> dict:
        s = json.loads(json.dumps(s))
        for f in ("containers", "initContainers"):
            for c in _list(s.get(f)):
                if isinstance(c, dict):
                    c.pop("image", None)
        for f in ("activeDeadlineSeconds", "tolerations", "nodeName"):
            s.pop(f, None)
        tg = s.get("terminationGracePeriodSeconds")
        if _is_int(tg) and tg < 0 or tg == 1:
            s.pop("terminationGracePeriodSeconds", None)
        return s

    if masked(spec) != masked(ospec):
        errs.forbidden("spec", POD_UPDATE_FORBIDDEN)


def _validate_service_update(errs: Causes, obj: dict, old: dict) -> None:
    spec, ospec = _dict(obj.get("spec")), _dict(old.get("spec"))
    if "ExternalName" in (spec.get("type"), ospec.get("type")):
        return  # clusterIP is cleared/allocated when switching to/from ExternalName
    if ospec.get("clusterIP"):
        _immutable(errs, "spec.clusterIP", spec.get("clusterIP") or "", ospec["clusterIP"])


def _validate_replicated_update(errs: Causes, obj: dict, old: dict) -> None:
    _immutable(errs, "spec.selector", _dict(obj.get("spec")).get("selector"),
               _dict(old.get("spec")).get("selector"))


def _validate_node_update(errs: Causes, obj: dict, old: dict) -> None:
    spec, ospec = _dict(obj.get("spec")), _dict(old.get("spec"))
    for f in ("podCIDR", "podCIDRs"):
        if ospec.get(f) and spec.get(f) != ospec.get(f):
            errs.forbidden(f"spec.{f}", "node updates may not change podCIDR except from \"\" to valid")
    if ospec.get("providerID") and spec.get("providerID") != ospec.get("providerID"):
        errs.forbidden("spec.providerID", "node updates may not change providerID except from \"\" to valid")


def _validate_data_update(errs: Causes, obj: dict, old: dict) -> None:
    if old.get("immutable"):
        if not obj.get("immutable"):
            errs.forbidden("immutable", "field is immutable when `immutable` is set")
        for f in ("data", "binaryData", "stringData"):
            if obj.get(f) != old.get(f) and (f != "stringData" or obj.get(f)):
                errs.forbidden(f, "field is immutable when `immutable` is set")
    if old.get("kind") == "Secret" or obj.get("kind") == "Secret":
        if old.get("type") and obj.get("type") and obj["type"] != old["type"]:
            _immutable(errs, "type", obj["type"], old["type"])


def _validate_endpointslice_update(errs: Causes, obj: dict, old: dict) -> None:
    if old.get("addressType"):
        _immutable(errs, "addressType", obj.get("addressType"), old["addressType"])


def _validate_binding_update(errs: Causes, obj: dict, old: dict) -> None:
    """Upstream: a binding's roleRef never changes (delete and recreate to point elsewhere)."""
    if old.get("roleRef") and obj.get("roleRef") != old["roleRef"]:
        errs.invalid("roleRef", obj.get("roleRef"), "cannot change roleRef")


_UPDATE_VALIDATORS = {
    "Pod": _validate_pod_update, "Service": _validate_service_update,
    "Deployment": _validate_replicated_update, "ReplicaSet": _validate_replicated_update,
    "Node": _validate_node_update, "ConfigMap": _validate_data_update,
    "Secret": _validate_data_update, "EndpointSlice": _validate_endpointslice_update,
    "RoleBinding": _validate_binding_update, "ClusterRoleBinding": _validate_binding_update,
    "Job": _validate_job_update, "DaemonSet": _validate_replicated_update,
}
# networking/v1 Ingress and IngressClass live in their own module, which registers itself here.
from kubelab.apiserver import validation_ingress  # noqa: E402,F401
from kubelab.apiserver import validation_gateway  # noqa: E402,F401


def validate(rt: ResourceType, obj: dict, *, old: dict | None = None) -> list[dict]:
    """StatusCauses for `obj` of type `rt` ([] when valid); with `old`, also update rules."""
    errs = Causes()
    if not isinstance(obj, dict):
        errs.type_error("", obj, "an object")
        return errs
    from .shapes import type_causes
    wrong = type_causes(rt.kind, obj)
    if wrong:  # the checks below assume the JSON types (as Go's decoder guarantees upstream)
        return wrong
    validate_metadata(errs, rt, obj.get("metadata"))
    check = _VALIDATORS.get(rt.kind)
    if check:
        check(errs, obj)
    if old is not None:
        _validate_meta_update(errs, obj, old)
        update = _UPDATE_VALIDATORS.get(rt.kind)
        if update:
            update(errs, obj, old)
    return list(errs)
