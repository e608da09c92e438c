"""The JSON types of the fields kubelab knows, checked before any other validation.

Kubernetes decodes a body into Go structs, so `"image": 5` or `"containers": {}` fail at
decoding with a type error. kubelab keeps objects as dicts; without this pass a wrong type
was silently read as empty (`containers: "x"` → no containers) or crashed a validator (a 500).
Unknown fields are not checked (Kubernetes drops them); `null` is allowed anywhere (Go
decodes it as the zero value). Pure: object in, StatusCauses out.
"""

from __future__ import annotations

import json

S, I, B, ANY = "string", "integer", "boolean", "any"
Q = "quantity"        # "100m", 1, 0.5
IOS = "int-or-string"
OBJ = {}              # an object whose fields are not described here


def L(item) -> tuple:  # noqa: N802 - a list of `item`
    return ("list", item)


def M(value) -> tuple:  # noqa: N802 - a map of string keys to `value`
    return ("map", value)


META = {"name": S, "generateName": S, "namespace": S, "labels": M(S), "annotations": M(S), "finalizers": L(S),
        "uid": S, "resourceVersion": S, "generation": I, "deletionGracePeriodSeconds": I, "selfLink": S,
        "ownerReferences": L({"apiVersion": S, "kind": S, "name": S, "uid": S, "controller": B,
                              "blockOwnerDeletion": B}),
        "managedFields": L(OBJ)}
CONTAINER = {
    "name": S, "image": S, "command": L(S), "args": L(S), "workingDir": S, "imagePullPolicy": S,
    "ports": L({"name": S, "containerPort": I, "hostPort": I, "protocol": S, "hostIP": S}),
    "env": L({"name": S, "value": S, "valueFrom": OBJ}), "envFrom": L(OBJ),
    "volumeMounts": L({"name": S, "mountPath": S, "readOnly": B, "subPath": S}),
    "resources": {"limits": M(Q), "requests": M(Q)}, "stdin": B, "stdinOnce": B, "tty": B,
    "readinessProbe": OBJ, "livenessProbe": OBJ, "startupProbe": OBJ, "securityContext": OBJ, "lifecycle": OBJ,
    "terminationMessagePath": S, "terminationMessagePolicy": S,
}
POD_SPEC = {
    "containers": L(CONTAINER), "initContainers": L(CONTAINER), "volumes": L({"name": S}),
    "restartPolicy": S, "nodeName": S, "nodeSelector": M(S), "serviceAccountName": S, "serviceAccount": S,
    "hostNetwork": B, "dnsPolicy": S, "hostname": S, "subdomain": S, "schedulerName": S, "priority": I,
    "terminationGracePeriodSeconds": I, "activeDeadlineSeconds": I, "enableServiceLinks": B,
    "automountServiceAccountToken": B, "imagePullSecrets": L({"name": S}), "affinity": OBJ, "dnsConfig": OBJ,
    "securityContext": OBJ, "priorityClassName": S,
    "tolerations": L({"key": S, "operator": S, "value": S, "effect": S, "tolerationSeconds": I}),
}
SELECTOR = {"matchLabels": M(S), "matchExpressions": L({"key": S, "operator": S, "values": L(S)})}
TEMPLATE = {"metadata": META, "spec": POD_SPEC}
RULE = {"apiGroups": L(S), "resources": L(S), "verbs": L(S), "resourceNames": L(S), "nonResourceURLs": L(S)}
BINDING = {"roleRef": {"apiGroup": S, "kind": S, "name": S},
           "subjects": L({"kind": S, "name": S, "namespace": S, "apiGroup": S})}

KINDS: dict[str, dict] = {
    "Pod": {"spec": POD_SPEC},
    "Service": {"spec": {
        "type": S, "clusterIP": S, "clusterIPs": L(S), "selector": M(S), "sessionAffinity": S, "externalName": S,
        "externalIPs": L(S), "externalTrafficPolicy": S, "internalTrafficPolicy": S,
        "publishNotReadyAddresses": B, "ipFamilies": L(S), "ipFamilyPolicy": S, "loadBalancerIP": S,
        "ports": L({"name": S, "port": I, "targetPort": IOS, "nodePort": I, "protocol": S, "appProtocol": S})}},
    "Deployment": {"spec": {
        "replicas": I, "selector": SELECTOR, "template": TEMPLATE, "minReadySeconds": I, "revisionHistoryLimit": I,
        "paused": B, "progressDeadlineSeconds": I,
        "strategy": {"type": S, "rollingUpdate": {"maxSurge": IOS, "maxUnavailable": IOS}}}},
    "ReplicaSet": {"spec": {"replicas": I, "selector": SELECTOR, "template": TEMPLATE, "minReadySeconds": I}},
    "ConfigMap": {"data": M(S), "binaryData": M(S), "immutable": B},
    "Secret": {"data": M(S), "stringData": M(S), "type": S, "immutable": B},
    "ServiceAccount": {"secrets": L(OBJ), "imagePullSecrets": L({"name": S}), "automountServiceAccountToken": B},
    "Namespace": {"spec": {"finalizers": L(S)}},
    "Node": {"spec": {"podCIDR": S, "podCIDRs": L(S), "unschedulable": B, "providerID": S,
                      "taints": L({"key": S, "value": S, "effect": S})}},
    "Lease": {"spec": {"holderIdentity": S, "leaseDurationSeconds": I, "leaseTransitions": I}},
    "Role": {"rules": L(RULE)}, "ClusterRole": {"rules": L(RULE), "aggregationRule": OBJ},
    "RoleBinding": BINDING, "ClusterRoleBinding": BINDING,
}
_WANT = {S: "a string", I: "an integer", B: "a boolean", Q: "a quantity (string or number)",
         IOS: "an integer or a string"}


def _fmt(value) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) or (isinstance(v, float) and v.is_integer())


def _ok_scalar(kind: str, v) -> bool:
    if kind == S:
        return isinstance(v, str)
    if kind == I:
        return _is_int(v)
    if kind == B:
        return isinstance(v, bool)
    if kind == Q:
        return isinstance(v, str) or (isinstance(v, (int, float)) and not isinstance(v, bool))
    if kind == IOS:
        return isinstance(v, str) or _is_int(v)
    return True


def _check(schema, value, path: str, out: list[dict]) -> None:
    if value is None or len(out) >= 20:
        return
    if isinstance(schema, str):
        if not _ok_scalar(schema, value):
            out.append({"reason": "FieldValueTypeInvalid", "field": path,
                        "message": f"Invalid value: {_fmt(value)}: must be {_WANT[schema]}"})
        return
    if isinstance(schema, tuple):
        kind, item = schema
        if kind == "list":
            if not isinstance(value, list):
                out.append({"reason": "FieldValueTypeInvalid", "field": path,
                            "message": f"Invalid value: {_fmt(value)}: must be a list"})
                return
            for i, v in enumerate(value):
                _check(item, v, f"{path}[{i}]", out)
        else:
            if not isinstance(value, dict):
                out.append({"reason": "FieldValueTypeInvalid", "field": path,
                            "message": f"Invalid value: {_fmt(value)}: must be a map"})
                return
            for k, v in value.items():
                _check(item, v, f"{path}[{k}]", out)
        return
    if not isinstance(value, dict):
        out.append({"reason": "FieldValueTypeInvalid", "field": path,
                    "message": f"Invalid value: {_fmt(value)}: must be an object"})
        return
    for k, sub in schema.items():
        if k in value:
            _check(sub, value[k], f"{path}.{k}" if path else k, out)


MAX_DEPTH = 100  # far beyond any real object; deeper input would exhaust Python's recursion limit


def too_deep(obj, limit: int = MAX_DEPTH) -> bool:
    """Whether `obj` nests deeper than `limit` (iterative: safe on any input)."""
    stack = [(obj, 0)]
    while stack:
        v, d = stack.pop()
        if d > limit:
            return True
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return False


def type_causes(kind: str, obj: dict) -> list[dict]:
    """StatusCauses for fields of the wrong JSON type ([] when every known field is well-typed)."""
    out: list[dict] = []
    _check({"apiVersion": S, "kind": S, "metadata": META, **KINDS.get(kind, {})}, obj, "", out)
    return out
