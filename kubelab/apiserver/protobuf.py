"""Decode the protobuf bodies `kubectl create <generator>` POSTs, into the JSON dict REST expects.

kubectl's generators (`create namespace|configmap|secret|service|deployment|serviceaccount`)
send `application/vnd.kubernetes.protobuf`: the magic `k8s\\x00`, then a `runtime.Unknown`
{typeMeta{apiVersion, kind}, raw, contentEncoding, contentType} whose `raw` is the object
message of k8s.io/api's generated.proto. Answering 415 is not retried as JSON, so we decode.

The descriptors are built at import time from the table below (no protoc at build time).
Field numbers are upstream's (k8s.io/api core/v1 + apps/v1, apimachinery meta/v1, runtime,
util/intstr, api/resource generated.proto): the wire format only knows numbers, so one wrong
number silently misreads a field. Only the fields generators set (and a few obvious
neighbours) are described; unknown fields are ignored.

Go's gogo-protobuf writes every non-pointer field, even when zero, so presence on the wire
says nothing for those: we drop zero values as `encoding/json`'s omitempty would. Fields that
are pointers in Go (`*int32 replicas`, `*bool immutable`, `*LabelSelector selector`) are
written only when set, so for them presence is kept, zero or not (marked `ptr` below).
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

_PKG = "kubelab.k8s"

# name -> [(json name, number, type, flags)]; type: scalar name, message name, "map:<value type>",
# flags: "repeated", "ptr" (Go pointer: keep when present even if zero).
_S, _I32, _I64, _B, _BYTES = "string", "int32", "int64", "bool", "bytes"

_MESSAGES: dict[str, list[tuple]] = {
    # runtime/generated.proto
    "TypeMeta": [("apiVersion", 1, _S, ""), ("kind", 2, _S, "")],
    "Unknown": [("typeMeta", 1, "TypeMeta", ""), ("raw", 2, _BYTES, ""),
                ("contentEncoding", 3, _S, ""), ("contentType", 4, _S, "")],
    # util/intstr, api/resource, meta/v1
    "IntOrString": [("type", 1, _I64, ""), ("intVal", 2, _I32, ""), ("strVal", 3, _S, "")],
    "Quantity": [("string", 1, _S, "")],
    "Time": [("seconds", 1, _I64, ""), ("nanos", 2, _I32, "")],
    "OwnerReference": [("kind", 1, _S, ""), ("name", 3, _S, ""), ("uid", 4, _S, ""),
                       ("apiVersion", 5, _S, ""), ("controller", 6, _B, "ptr"),
                       ("blockOwnerDeletion", 7, _B, "ptr")],
    "ObjectMeta": [("name", 1, _S, ""), ("generateName", 2, _S, ""), ("namespace", 3, _S, ""),
                   ("selfLink", 4, _S, ""), ("uid", 5, _S, ""), ("resourceVersion", 6, _S, ""),
                   ("generation", 7, _I64, ""), ("creationTimestamp", 8, "Time", ""),
                   ("deletionTimestamp", 9, "Time", ""),
                   ("deletionGracePeriodSeconds", 10, _I64, "ptr"),
                   ("labels", 11, "map:string", ""), ("annotations", 12, "map:string", ""),
                   ("ownerReferences", 13, "OwnerReference", "repeated"),
                   ("finalizers", 14, _S, "repeated")],
    "LabelSelectorRequirement": [("key", 1, _S, ""), ("operator", 2, _S, ""),
                                 ("values", 3, _S, "repeated")],
    "LabelSelector": [("matchLabels", 1, "map:string", ""),
                      ("matchExpressions", 2, "LabelSelectorRequirement", "repeated")],
    # core/v1
    "ObjectReference": [("kind", 1, _S, ""), ("namespace", 2, _S, ""), ("name", 3, _S, ""),
                        ("uid", 4, _S, ""), ("apiVersion", 5, _S, ""),
                        ("resourceVersion", 6, _S, ""), ("fieldPath", 7, _S, "")],
    "LocalObjectReference": [("name", 1, _S, "")],
    "NamespaceSpec": [("finalizers", 1, _S, "repeated")],
    "NamespaceStatus": [("phase", 1, _S, "")],
    "Namespace": [("metadata", 1, "ObjectMeta", ""), ("spec", 2, "NamespaceSpec", ""),
                  ("status", 3, "NamespaceStatus", "")],
    "ConfigMap": [("metadata", 1, "ObjectMeta", ""), ("data", 2, "map:string", ""),
                  ("binaryData", 3, "map:bytes", ""), ("immutable", 4, _B, "ptr")],
    "Secret": [("metadata", 1, "ObjectMeta", ""), ("data", 2, "map:bytes", ""),
               ("type", 3, _S, ""), ("stringData", 4, "map:string", ""),
               ("immutable", 5, _B, "ptr")],
    "ServiceAccount": [("metadata", 1, "ObjectMeta", ""),
                       ("secrets", 2, "ObjectReference", "repeated"),
                       ("imagePullSecrets", 3, "LocalObjectReference", "repeated"),
                       ("automountServiceAccountToken", 4, _B, "ptr")],
    "ServicePort": [("name", 1, _S, ""), ("protocol", 2, _S, ""), ("port", 3, _I32, ""),
                    ("targetPort", 4, "IntOrString", ""), ("nodePort", 5, _I32, ""),
                    ("appProtocol", 6, _S, "ptr")],
    "ServiceSpec": [("ports", 1, "ServicePort", "repeated"), ("selector", 2, "map:string", ""),
                    ("clusterIP", 3, _S, ""), ("type", 4, _S, ""),
                    ("externalIPs", 5, _S, "repeated"), ("sessionAffinity", 7, _S, ""),
                    ("loadBalancerIP", 8, _S, ""),
                    ("loadBalancerSourceRanges", 9, _S, "repeated"),
                    ("externalName", 10, _S, ""), ("externalTrafficPolicy", 11, _S, ""),
                    ("healthCheckNodePort", 12, _I32, ""),
                    ("publishNotReadyAddresses", 13, _B, ""),
                    ("ipFamilyPolicy", 17, _S, "ptr"), ("clusterIPs", 18, _S, "repeated"),
                    ("ipFamilies", 19, _S, "repeated"),
                    ("allocateLoadBalancerNodePorts", 20, _B, "ptr"),
                    ("loadBalancerClass", 21, _S, "ptr"),
                    ("internalTrafficPolicy", 22, _S, "ptr")],
    "Service": [("metadata", 1, "ObjectMeta", ""), ("spec", 2, "ServiceSpec", "")],
    "ContainerPort": [("name", 1, _S, ""), ("hostPort", 2, _I32, ""),
                      ("containerPort", 3, _I32, ""), ("protocol", 4, _S, ""),
                      ("hostIP", 5, _S, "")],
    "EnvVar": [("name", 1, _S, ""), ("value", 2, _S, "")],
    "ResourceRequirements": [("limits", 1, "map:Quantity", ""),
                             ("requests", 2, "map:Quantity", "")],
    "Container": [("name", 1, _S, ""), ("image", 2, _S, ""), ("command", 3, _S, "repeated"),
                  ("args", 4, _S, "repeated"), ("workingDir", 5, _S, ""),
                  ("ports", 6, "ContainerPort", "repeated"), ("env", 7, "EnvVar", "repeated"),
                  ("resources", 8, "ResourceRequirements", ""),
                  ("terminationMessagePath", 13, _S, ""), ("imagePullPolicy", 14, _S, ""),
                  ("stdin", 16, _B, ""), ("stdinOnce", 17, _B, ""), ("tty", 18, _B, ""),
                  ("terminationMessagePolicy", 20, _S, "")],
    "PodSpec": [("containers", 2, "Container", "repeated"), ("restartPolicy", 3, _S, ""),
                ("terminationGracePeriodSeconds", 4, _I64, "ptr"),
                ("activeDeadlineSeconds", 5, _I64, "ptr"), ("dnsPolicy", 6, _S, ""),
                ("nodeSelector", 7, "map:string", ""), ("serviceAccountName", 8, _S, ""),
                ("serviceAccount", 9, _S, ""), ("nodeName", 10, _S, ""),
                ("hostNetwork", 11, _B, ""), ("hostPID", 12, _B, ""), ("hostIPC", 13, _B, ""),
                ("imagePullSecrets", 15, "LocalObjectReference", "repeated"),
                ("hostname", 16, _S, ""), ("subdomain", 17, _S, ""),
                ("schedulerName", 19, _S, ""), ("initContainers", 20, "Container", "repeated"),
                ("automountServiceAccountToken", 21, _B, "ptr"),
                ("priorityClassName", 24, _S, ""), ("enableServiceLinks", 30, _B, "ptr")],
    "PodTemplateSpec": [("metadata", 1, "ObjectMeta", ""), ("spec", 2, "PodSpec", "")],
    "Pod": [("metadata", 1, "ObjectMeta", ""), ("spec", 2, "PodSpec", "")],
    # apps/v1
    "RollingUpdateDeployment": [("maxUnavailable", 1, "IntOrString", "ptr"),
                                ("maxSurge", 2, "IntOrString", "ptr")],
    "DeploymentStrategy": [("type", 1, _S, ""),
                           ("rollingUpdate", 2, "RollingUpdateDeployment", "ptr")],
    "DeploymentSpec": [("replicas", 1, _I32, "ptr"), ("selector", 2, "LabelSelector", "ptr"),
                       ("template", 3, "PodTemplateSpec", ""),
                       ("strategy", 4, "DeploymentStrategy", ""),
                       ("minReadySeconds", 5, _I32, ""),
                       ("revisionHistoryLimit", 6, _I32, "ptr"), ("paused", 7, _B, ""),
                       ("progressDeadlineSeconds", 9, _I32, "ptr")],
    "Deployment": [("metadata", 1, "ObjectMeta", ""), ("spec", 2, "DeploymentSpec", "")],
    "ReplicaSetSpec": [("replicas", 1, _I32, "ptr"), ("selector", 2, "LabelSelector", "ptr"),
                       ("template", 3, "PodTemplateSpec", ""),
                       ("minReadySeconds", 4, _I32, "")],
    "ReplicaSet": [("metadata", 1, "ObjectMeta", ""), ("spec", 2, "ReplicaSetSpec", "")],
    "RollingUpdateDaemonSet": [("maxUnavailable", 1, "IntOrString", "ptr"), ("maxSurge", 2, "IntOrString", "ptr")],
    "DaemonSetUpdateStrategy": [("type", 1, _S, ""), ("rollingUpdate", 2, "RollingUpdateDaemonSet", "ptr")],
    "DaemonSetSpec": [("selector", 1, "LabelSelector", "ptr"), ("template", 2, "PodTemplateSpec", ""),
                      ("updateStrategy", 3, "DaemonSetUpdateStrategy", ""), ("minReadySeconds", 4, _I32, ""),
                      ("revisionHistoryLimit", 6, _I32, "ptr")],
    "DaemonSet": [("metadata", 1, "ObjectMeta", ""), ("spec", 2, "DaemonSetSpec", "")],
    # batch/v1 (`kubectl create job`)
    "JobSpec": [("parallelism", 1, _I32, "ptr"), ("completions", 2, _I32, "ptr"),
                ("activeDeadlineSeconds", 3, _I64, "ptr"), ("selector", 4, "LabelSelector", "ptr"),
                ("manualSelector", 5, _B, "ptr"), ("template", 6, "PodTemplateSpec", ""),
                ("backoffLimit", 7, _I32, "ptr"), ("ttlSecondsAfterFinished", 8, _I32, "ptr"),
                ("completionMode", 9, _S, "ptr"), ("suspend", 10, _B, "ptr")],
    "Job": [("metadata", 1, "ObjectMeta", ""), ("spec", 2, "JobSpec", "")],
    "JobTemplateSpec": [("metadata", 1, "ObjectMeta", ""), ("spec", 2, "JobSpec", "")],
    "CronJobSpec": [("schedule", 1, _S, ""), ("startingDeadlineSeconds", 2, _I64, "ptr"),
                    ("concurrencyPolicy", 3, _S, ""), ("suspend", 4, _B, "ptr"),
                    ("jobTemplate", 5, "JobTemplateSpec", ""), ("successfulJobsHistoryLimit", 6, _I32, "ptr"),
                    ("failedJobsHistoryLimit", 7, _I32, "ptr"), ("timeZone", 8, _S, "ptr")],
    "CronJob": [("metadata", 1, "ObjectMeta", ""), ("spec", 2, "CronJobSpec", "")],
    # authorization/v1 (`kubectl auth can-i` posts a SelfSubjectAccessReview)
    "ResourceAttributes": [("namespace", 1, _S, ""), ("verb", 2, _S, ""), ("group", 3, _S, ""),
                           ("version", 4, _S, ""), ("resource", 5, _S, ""), ("subresource", 6, _S, ""),
                           ("name", 7, _S, "")],
    "NonResourceAttributes": [("path", 1, _S, ""), ("verb", 2, _S, "")],
    "SelfSubjectAccessReviewSpec": [("resourceAttributes", 1, "ResourceAttributes", "ptr"),
                                    ("nonResourceAttributes", 2, "NonResourceAttributes", "ptr")],
    "SelfSubjectAccessReview": [("metadata", 1, "ObjectMeta", ""), ("spec", 2, "SelfSubjectAccessReviewSpec", "")],
    "SelfSubjectRulesReviewSpec": [("namespace", 1, _S, "")],
    "SelfSubjectRulesReview": [("metadata", 1, "ObjectMeta", ""), ("spec", 2, "SelfSubjectRulesReviewSpec", "")],
    # rbac/v1 (`kubectl create role|clusterrole|rolebinding|clusterrolebinding`)
    "PolicyRule": [("verbs", 1, _S, "repeated"), ("apiGroups", 2, _S, "repeated"), ("resources", 3, _S, "repeated"),
                   ("resourceNames", 4, _S, "repeated"), ("nonResourceURLs", 5, _S, "repeated")],
    "Role": [("metadata", 1, "ObjectMeta", ""), ("rules", 2, "PolicyRule", "repeated")],
    "ClusterRole": [("metadata", 1, "ObjectMeta", ""), ("rules", 2, "PolicyRule", "repeated"),
                    ("aggregationRule", 3, "AggregationRule", "ptr")],
    "AggregationRule": [("clusterRoleSelectors", 1, "LabelSelector", "repeated")],
    "Subject": [("kind", 1, _S, ""), ("apiGroup", 2, _S, ""), ("name", 3, _S, ""), ("namespace", 4, _S, "")],
    "RoleRef": [("apiGroup", 1, _S, ""), ("kind", 2, _S, ""), ("name", 3, _S, "")],
    "RoleBinding": [("metadata", 1, "ObjectMeta", ""), ("subjects", 2, "Subject", "repeated"),
                    ("roleRef", 3, "RoleRef", "")],
    "ClusterRoleBinding": [("metadata", 1, "ObjectMeta", ""), ("subjects", 2, "Subject", "repeated"),
                           ("roleRef", 3, "RoleRef", "")],
    # networking/v1 (NetworkPolicy; no status since 1.28)
    "IPBlock": [("cidr", 1, _S, ""), ("except", 2, _S, "repeated")],
    "NetworkPolicyPeer": [("podSelector", 1, "LabelSelector", "ptr"),
                          ("namespaceSelector", 2, "LabelSelector", "ptr"), ("ipBlock", 3, "IPBlock", "ptr")],
    "NetworkPolicyPort": [("protocol", 1, _S, "ptr"), ("port", 2, "IntOrString", "ptr"), ("endPort", 3, _I32, "ptr")],
    "NetworkPolicyIngressRule": [("ports", 1, "NetworkPolicyPort", "repeated"),
                                 ("from", 2, "NetworkPolicyPeer", "repeated")],
    "NetworkPolicyEgressRule": [("ports", 1, "NetworkPolicyPort", "repeated"),
                                ("to", 2, "NetworkPolicyPeer", "repeated")],
    "NetworkPolicySpec": [("podSelector", 1, "LabelSelector", ""),
                          ("ingress", 2, "NetworkPolicyIngressRule", "repeated"),
                          ("egress", 3, "NetworkPolicyEgressRule", "repeated"),
                          ("policyTypes", 4, _S, "repeated")],
    "NetworkPolicy": [("metadata", 1, "ObjectMeta", ""), ("spec", 2, "NetworkPolicySpec", "")],
    # networking/v1 Ingress (`kubectl create ingress`), IngressClass; IngressRule's `http` is an
    # inlined IngressRuleValue on the wire (field 2), flattened back by _inline_rule_values.
    "TypedLocalObjectReference": [("apiGroup", 1, _S, "ptr"), ("kind", 2, _S, ""), ("name", 3, _S, "")],
    "ServiceBackendPort": [("name", 1, _S, ""), ("number", 2, _I32, "")],
    "IngressServiceBackend": [("name", 1, _S, ""), ("port", 2, "ServiceBackendPort", "")],
    "IngressBackend": [("resource", 3, "TypedLocalObjectReference", "ptr"),
                       ("service", 4, "IngressServiceBackend", "ptr")],
    "HTTPIngressPath": [("path", 1, _S, ""), ("backend", 2, "IngressBackend", ""), ("pathType", 3, _S, "ptr")],
    "HTTPIngressRuleValue": [("paths", 1, "HTTPIngressPath", "repeated")],
    "IngressRuleValue": [("http", 1, "HTTPIngressRuleValue", "ptr")],
    "IngressRule": [("host", 1, _S, ""), ("ingressRuleValue", 2, "IngressRuleValue", "")],
    "IngressTLS": [("hosts", 1, _S, "repeated"), ("secretName", 2, _S, "")],
    "IngressSpec": [("defaultBackend", 1, "IngressBackend", "ptr"), ("tls", 2, "IngressTLS", "repeated"),
                    ("rules", 3, "IngressRule", "repeated"), ("ingressClassName", 4, _S, "ptr")],
    "Ingress": [("metadata", 1, "ObjectMeta", ""), ("spec", 2, "IngressSpec", "")],
    "IngressClassParametersReference": [("apiGroup", 1, _S, "ptr"), ("kind", 2, _S, ""), ("name", 3, _S, ""),
                                        ("scope", 4, _S, "ptr"), ("namespace", 5, _S, "ptr")],
    "IngressClassSpec": [("controller", 1, _S, ""), ("parameters", 2, "IngressClassParametersReference", "ptr")],
    "IngressClass": [("metadata", 1, "ObjectMeta", ""), ("spec", 2, "IngressClassSpec", "")],
    # policy/v1 (`kubectl create poddisruptionbudget`; the Eviction `kubectl drain` posts)
    "PodDisruptionBudgetSpec": [("minAvailable", 1, "IntOrString", "ptr"), ("selector", 2, "LabelSelector", "ptr"),
                                ("maxUnavailable", 3, "IntOrString", "ptr"),
                                ("unhealthyPodEvictionPolicy", 4, _S, "ptr")],
    "PodDisruptionBudget": [("metadata", 1, "ObjectMeta", ""), ("spec", 2, "PodDisruptionBudgetSpec", "")],
    "Preconditions": [("uid", 1, _S, "ptr"), ("resourceVersion", 2, _S, "ptr")],
    "DeleteOptions": [("gracePeriodSeconds", 1, _I64, "ptr"), ("preconditions", 2, "Preconditions", "ptr"),
                      ("orphanDependents", 3, _B, "ptr"), ("propagationPolicy", 4, _S, "ptr"),
                      ("dryRun", 5, _S, "repeated")],
    "Eviction": [("metadata", 1, "ObjectMeta", ""), ("deleteOptions", 2, "DeleteOptions", "ptr")],
    # authentication/v1 (`kubectl create token`)
    "BoundObjectReference": [("kind", 1, _S, ""), ("apiVersion", 2, _S, ""), ("name", 3, _S, ""),
                             ("uid", 4, _S, "")],
    "TokenRequestSpec": [("audiences", 1, _S, "repeated"), ("boundObjectRef", 3, "BoundObjectReference", "ptr"),
                         ("expirationSeconds", 4, _I64, "ptr")],
    "TokenRequest": [("metadata", 1, "ObjectMeta", ""), ("spec", 2, "TokenRequestSpec", "")],
}

# (apiVersion, kind) -> message name of the object inside `raw`.
KINDS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Secret"): "Secret",
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("v1", "Service"): "Service",
    ("v1", "Pod"): "Pod",
    ("apps/v1", "Deployment"): "Deployment",
    ("apps/v1", "ReplicaSet"): "ReplicaSet",
    ("apps/v1", "DaemonSet"): "DaemonSet",
    ("batch/v1", "Job"): "Job",
    ("batch/v1", "CronJob"): "CronJob",
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "SelfSubjectAccessReview",
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): "SelfSubjectRulesReview",
    ("rbac.authorization.k8s.io/v1", "Role"): "Role",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "ClusterRole",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "ClusterRoleBinding",
    ("authentication.k8s.io/v1", "TokenRequest"): "TokenRequest",
    ("networking.k8s.io/v1", "NetworkPolicy"): "NetworkPolicy",
    ("networking.k8s.io/v1", "Ingress"): "Ingress",
    ("networking.k8s.io/v1", "IngressClass"): "IngressClass",
    ("policy/v1", "PodDisruptionBudget"): "PodDisruptionBudget",
    ("policy/v1", "Eviction"): "Eviction",
}

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {_S: _F.TYPE_STRING, _I32: _F.TYPE_INT32, _I64: _F.TYPE_INT64, _B: _F.TYPE_BOOL,
            _BYTES: _F.TYPE_BYTES}


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The table above as one proto2 file; map fields get their nested `*Entry` types."""
    fdp = descriptor_pb2.FileDescriptorProto(name="kubelab/k8s.proto", package=_PKG,
                                             syntax="proto2")
    for mname, fields in _MESSAGES.items():
        m = fdp.message_type.add(name=mname)
        for jname, number, ftype, flags in fields:
            f = m.field.add(name=jname, number=number, json_name=jname)
            f.label = _F.LABEL_REPEATED if "repeated" in flags else _F.LABEL_OPTIONAL
            if ftype.startswith("map:"):
                vtype = ftype[4:]
                entry = m.nested_type.add(name=jname[0].upper() + jname[1:] + "Entry")
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
                v = entry.field.add(name="value", number=2, label=_F.LABEL_OPTIONAL)
                _set_type(v, vtype)
                f.label = _F.LABEL_REPEATED
                f.type = _F.TYPE_MESSAGE
                f.type_name = f".{_PKG}.{mname}.{entry.name}"
            else:
                _set_type(f, ftype)
    return fdp


def _set_type(f: descriptor_pb2.FieldDescriptorProto, ftype: str) -> None:
    if ftype in _SCALARS:
        f.type = _SCALARS[ftype]
    else:
        f.type = _F.TYPE_MESSAGE
        f.type_name = f".{_PKG}.{ftype}"


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file_descriptor())
_FLAGS = {(m, j): flags for m, fields in _MESSAGES.items() for j, _, _, flags in fields}


def message_class(name: str) -> type[Message]:
    """The generated class for one message of the table (tests encode with it)."""
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PKG}.{name}"))


def decode(body: bytes) -> dict:
    """Protobuf request body -> the JSON object REST would have received. ValueError if not."""
    if not isinstance(body, (bytes, bytearray)) or not body.startswith(MAGIC):
        raise ValueError("protobuf body does not start with the k8s\\x00 magic prefix")
    unknown = message_class("Unknown")()
    try:
        unknown.ParseFromString(bytes(body[len(MAGIC):]))
    except DecodeError as e:
        raise ValueError(f"malformed protobuf envelope: {e}") from None
    api_version, kind = unknown.typeMeta.apiVersion, unknown.typeMeta.kind
    if not kind or not api_version:
        raise ValueError("protobuf envelope has no apiVersion/kind")
    if unknown.contentEncoding:
        raise ValueError(f"unsupported protobuf contentEncoding {unknown.contentEncoding!r}")
    mname = KINDS.get((api_version, kind))
    if mname is None:
        raise ValueError(f"protobuf decoding of {api_version}/{kind} is not supported; send JSON")
    obj = message_class(mname)()
    try:
        obj.ParseFromString(unknown.raw)
    except DecodeError as e:
        raise ValueError(f"malformed protobuf {kind}: {e}") from None
    return {"apiVersion": api_version, "kind": kind, **_to_json(obj)}


def encode(obj: dict) -> bytes:
    """JSON object -> protobuf request body (the inverse of decode; for tests and tools)."""
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    if key not in KINDS:
        raise ValueError(f"protobuf encoding of {key[0]}/{key[1]} is not supported")
    msg = message_class(KINDS[key])()
    _from_json(msg, {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")})
    env = message_class("Unknown")()
    env.typeMeta.apiVersion, env.typeMeta.kind = key
    env.raw = msg.SerializeToString()
    return MAGIC + env.SerializeToString()


def _to_json(msg: Message) -> dict:
    mname = msg.DESCRIPTOR.name
    out: dict = {}
    for fd, value in msg.ListFields():
        keep = "ptr" in _FLAGS.get((mname, fd.name), "")
        j = _value_to_json(fd, value)
        if j is _OMIT or (not keep and _is_empty(j)):
            continue
        out[fd.name] = j
    return _inline_rule_values(mname, out)


# Go's `json:",inline"` embedded structs: on the wire a field of their own, in JSON their
# fields sit in the parent (IngressRule{host, IngressRuleValue{http}} is {host, http}).
_INLINE = {"IngressRule": "ingressRuleValue"}


def _inline_rule_values(mname: str, out: dict) -> dict:
    inner = _INLINE.get(mname)
    if inner and isinstance(out.get(inner), dict):
        out.update(out.pop(inner))
    return out


_OMIT = object()


def _value_to_json(fd, value):
    if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
        vfd = fd.message_type.fields_by_name["value"]
        return {k: _scalar_or_message(vfd, v) for k, v in value.items()}
    if _repeated(fd):
        return [_scalar_or_message(fd, v) for v in value]
    return _scalar_or_message(fd, value)


def _repeated(fd) -> bool:
    """`is_repeated` on protobuf >= 6, `label` before (it was removed in 7)."""
    flag = getattr(fd, "is_repeated", None)
    return flag if flag is not None else fd.label == fd.LABEL_REPEATED


def _scalar_or_message(fd, value):
    if fd.message_type is None:
        if fd.type == fd.TYPE_BYTES:
            return base64.b64encode(value).decode()
        return value
    name = fd.message_type.name
    if name == "IntOrString":
        return value.strVal if value.type == 1 else value.intVal
    if name == "Quantity":
        return value.string
    if name == "Time":
        if not value.seconds:
            return _OMIT  # Go's zero time marshals as null
        t = datetime.fromtimestamp(value.seconds, tz=timezone.utc)
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    return _to_json(value)


def _is_empty(v) -> bool:
    return v is None or v is False or v in ("", {}, []) or (type(v) is int and v == 0)


def _from_json(msg: Message, obj: dict) -> None:
    inner = _INLINE.get(msg.DESCRIPTOR.name)
    if inner:
        nested_fields = msg.DESCRIPTOR.fields_by_name[inner].message_type.fields_by_name
        nested = {k: obj[k] for k in obj if k in nested_fields}
        obj = {k: val for k, val in obj.items() if k not in nested}
        if nested:
            obj[inner] = nested
    for key, value in obj.items():
        fd = msg.DESCRIPTOR.fields_by_name.get(key)
        if fd is None or value is None:
            continue  # fields the table does not describe are dropped, as decode drops them
        field = getattr(msg, key)
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            vfd = fd.message_type.fields_by_name["value"]
            for k, v in value.items():
                if vfd.message_type is not None:
                    _set_message(field[k], vfd.message_type.name, v)
                else:
                    field[k] = base64.b64decode(v) if vfd.type == vfd.TYPE_BYTES else v
        elif _repeated(fd):
            for v in value:
                if fd.message_type is not None:
                    _set_message(field.add(), fd.message_type.name, v)
                else:
                    field.append(v)
        elif fd.message_type is not None:
            _set_message(field, fd.message_type.name, value)
        else:
            setattr(msg, key, base64.b64decode(value) if fd.type == fd.TYPE_BYTES else value)


def _set_message(target: Message, name: str, value) -> None:
    if name == "IntOrString":
        if isinstance(value, str):
            target.type, target.strVal = 1, value
        else:
            target.type, target.intVal = 0, int(value)
    elif name == "Quantity":
        target.string = str(value)
    elif name == "Time":
        t = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        target.seconds = int(t.timestamp())
    else:
        target.SetInParent()
        _from_json(target, value)
