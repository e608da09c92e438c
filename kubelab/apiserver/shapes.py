"""The JSON types and field names of the API objects kubelab serves, checked before any other validation.

Kubernetes decodes a body into Go structs, so `"image": 5` or `"containers": {}` fail at
decoding with a type error. kubelab keeps objects as dicts; without this pass a wrong type
was silently read as empty (`containers: "x"` → no containers) or crashed a validator (a 500).
`null` is allowed anywhere (Go decodes it as the zero value).

Go decoding also drops fields the struct does not have, and since 1.27 the server reports
them (`fieldValidation`: Strict fails the request, Warn answers with a warning, Ignore stays
silent): that is how a typo such as `readinesProbe:` reaches the student instead of being
lost. A field can only be called unknown where the struct's field list is complete, so two
kinds of struct live here: a `Struct` lists EVERY json field of the upstream v1.32 Go type
(k8s.io/api core/v1, apps/v1, rbac/v1, coordination/v1, discovery/v1, networking/v1; cross-checked against
the release-1.32 OpenAPI), and any other key in it is unknown; a plain dict lists only the
fields whose types kubelab checks, and its other keys pass unseen (`OBJ = {}`: an object not
described here, e.g. `status`). A valid upstream field is therefore never reported.
Pure: object in, StatusCauses / field paths out.
"""

from __future__ import annotations

import json

S, I, B, ANY = "string", "integer", "boolean", "any"
Q = "quantity"        # "100m", 1, 0.5
IOS = "int-or-string"
OBJ = {}              # an object whose fields are not described here


class Struct(dict):
    """A Go struct whose json fields are ALL listed (upstream v1.32): other keys are unknown."""


def L(item) -> tuple:  # noqa: N802 - a list of `item`
    return ("list", item)


def M(value) -> tuple:  # noqa: N802 - a map of string keys to `value`
    return ("map", value)


def _also(base: Struct, **more) -> Struct:
    return Struct(base, **more)


NAME_REF = Struct({"name": S})                                       # LocalObjectReference
OBJECT_REF = Struct({"kind": S, "namespace": S, "name": S, "uid": S, "apiVersion": S, "resourceVersion": S,
                     "fieldPath": S})
SELECTOR = Struct({"matchLabels": M(S), "matchExpressions": L(Struct({"key": S, "operator": S, "values": L(S)}))})
META = Struct({
    "name": S, "generateName": S, "namespace": S, "selfLink": S, "uid": S, "resourceVersion": S, "generation": I,
    "creationTimestamp": S, "deletionTimestamp": S, "deletionGracePeriodSeconds": I, "labels": M(S),
    "annotations": M(S), "finalizers": L(S),
    "ownerReferences": L(Struct({"apiVersion": S, "kind": S, "name": S, "uid": S, "controller": B,
                                 "blockOwnerDeletion": B})),
    "managedFields": L(Struct({"manager": S, "operation": S, "apiVersion": S, "time": S, "fieldsType": S,
                               "fieldsV1": ANY, "subresource": S})),
})

# ---- containers -------------------------------------------------------------------------
KEY_SELECTOR = Struct({"name": S, "key": S, "optional": B})          # ConfigMapKeySelector, SecretKeySelector
FIELD_REF = Struct({"apiVersion": S, "fieldPath": S})
RESOURCE_FIELD_REF = Struct({"containerName": S, "resource": S, "divisor": Q})
RESOURCES = Struct({"limits": M(Q), "requests": M(Q), "claims": L(Struct({"name": S, "request": S}))})
EXEC = Struct({"command": L(S)})
HTTP_GET = Struct({"path": S, "port": IOS, "host": S, "scheme": S,
                   "httpHeaders": L(Struct({"name": S, "value": S}))})
TCP_SOCKET = Struct({"port": IOS, "host": S})
PROBE = Struct({"exec": EXEC, "httpGet": HTTP_GET, "tcpSocket": TCP_SOCKET, "grpc": Struct({"port": I, "service": S}),
                "initialDelaySeconds": I, "timeoutSeconds": I, "periodSeconds": I, "successThreshold": I,
                "failureThreshold": I, "terminationGracePeriodSeconds": I})
HANDLER = Struct({"exec": EXEC, "httpGet": HTTP_GET, "tcpSocket": TCP_SOCKET, "sleep": Struct({"seconds": I})})
SE_LINUX = Struct({"user": S, "role": S, "type": S, "level": S})
WINDOWS = Struct({"gmsaCredentialSpecName": S, "gmsaCredentialSpec": S, "runAsUserName": S, "hostProcess": B})
PROFILE = Struct({"type": S, "localhostProfile": S})                 # SeccompProfile, AppArmorProfile
SECURITY_CONTEXT = Struct({
    "capabilities": Struct({"add": L(S), "drop": L(S)}), "privileged": B, "seLinuxOptions": SE_LINUX,
    "windowsOptions": WINDOWS, "runAsUser": I, "runAsGroup": I, "runAsNonRoot": B, "readOnlyRootFilesystem": B,
    "allowPrivilegeEscalation": B, "procMount": S, "seccompProfile": PROFILE, "appArmorProfile": PROFILE,
})
CONTAINER = Struct({
    "name": S, "image": S, "command": L(S), "args": L(S), "workingDir": S,
    "ports": L(Struct({"name": S, "hostPort": I, "containerPort": I, "protocol": S, "hostIP": S})),
    "envFrom": L(Struct({"prefix": S, "configMapRef": Struct({"name": S, "optional": B}),
                         "secretRef": Struct({"name": S, "optional": B})})),
    "env": L(Struct({"name": S, "value": S, "valueFrom": Struct({
        "fieldRef": FIELD_REF, "resourceFieldRef": RESOURCE_FIELD_REF, "configMapKeyRef": KEY_SELECTOR,
        "secretKeyRef": KEY_SELECTOR})})),
    "resources": RESOURCES, "resizePolicy": L(Struct({"resourceName": S, "restartPolicy": S})),
    "restartPolicy": S,
    "volumeMounts": L(Struct({"name": S, "readOnly": B, "recursiveReadOnly": S, "mountPath": S, "subPath": S,
                              "mountPropagation": S, "subPathExpr": S})),
    "volumeDevices": L(Struct({"name": S, "devicePath": S})),
    "livenessProbe": PROBE, "readinessProbe": PROBE, "startupProbe": PROBE,
    "lifecycle": Struct({"postStart": HANDLER, "preStop": HANDLER}),
    "terminationMessagePath": S, "terminationMessagePolicy": S, "imagePullPolicy": S,
    "securityContext": SECURITY_CONTEXT, "stdin": B, "stdinOnce": B, "tty": B,
})

# ---- pods ---------------------------------------------------------------------------------
KEY_TO_PATH = Struct({"key": S, "path": S, "mode": I})
DOWNWARD_FILE = Struct({"path": S, "fieldRef": FIELD_REF, "resourceFieldRef": RESOURCE_FIELD_REF, "mode": I})
VOLUME = Struct({  # the common sources are described; the others are checked no deeper
    "name": S,
    "hostPath": Struct({"path": S, "type": S}),
    "emptyDir": Struct({"medium": S, "sizeLimit": Q}),
    "secret": Struct({"secretName": S, "items": L(KEY_TO_PATH), "defaultMode": I, "optional": B}),
    "configMap": Struct({"name": S, "items": L(KEY_TO_PATH), "defaultMode": I, "optional": B}),
    "persistentVolumeClaim": Struct({"claimName": S, "readOnly": B}),
    "downwardAPI": Struct({"items": L(DOWNWARD_FILE), "defaultMode": I}),
    "projected": Struct({"defaultMode": I, "sources": L(Struct({
        "secret": Struct({"name": S, "items": L(KEY_TO_PATH), "optional": B}),
        "configMap": Struct({"name": S, "items": L(KEY_TO_PATH), "optional": B}),
        "downwardAPI": Struct({"items": L(DOWNWARD_FILE)}),
        "serviceAccountToken": Struct({"audience": S, "expirationSeconds": I, "path": S}),
        "clusterTrustBundle": OBJ}))}),
    **{k: OBJ for k in ("gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi", "glusterfs", "rbd",
                        "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile", "vsphereVolume", "quobyte",
                        "azureDisk", "photonPersistentDisk", "portworxVolume", "scaleIO", "storageos", "csi",
                        "ephemeral", "image")},
})
NODE_SELECTOR_TERM = Struct({"matchExpressions": L(Struct({"key": S, "operator": S, "values": L(S)})),
                             "matchFields": L(Struct({"key": S, "operator": S, "values": L(S)}))})
POD_AFFINITY_TERM = Struct({"labelSelector": SELECTOR, "namespaces": L(S), "topologyKey": S,
                            "namespaceSelector": SELECTOR, "matchLabelKeys": L(S), "mismatchLabelKeys": L(S)})
POD_AFFINITY = Struct({
    "requiredDuringSchedulingIgnoredDuringExecution": L(POD_AFFINITY_TERM),
    "preferredDuringSchedulingIgnoredDuringExecution": L(Struct({"weight": I, "podAffinityTerm": POD_AFFINITY_TERM})),
})
AFFINITY = Struct({
    "nodeAffinity": Struct({
        "requiredDuringSchedulingIgnoredDuringExecution": Struct({"nodeSelectorTerms": L(NODE_SELECTOR_TERM)}),
        "preferredDuringSchedulingIgnoredDuringExecution": L(Struct({"weight": I,
                                                                       "preference": NODE_SELECTOR_TERM}))}),
    "podAffinity": POD_AFFINITY, "podAntiAffinity": POD_AFFINITY,
})
POD_SECURITY_CONTEXT = Struct({
    "seLinuxOptions": SE_LINUX, "windowsOptions": WINDOWS, "runAsUser": I, "runAsGroup": I, "runAsNonRoot": B,
    "supplementalGroups": L(I), "supplementalGroupsPolicy": S, "fsGroup": I,
    "sysctls": L(Struct({"name": S, "value": S})), "fsGroupChangePolicy": S, "seccompProfile": PROFILE,
    "appArmorProfile": PROFILE, "seLinuxChangePolicy": S,
})
TOLERATION = Struct({"key": S, "operator": S, "value": S, "effect": S, "tolerationSeconds": I})
POD_SPEC = Struct({
    "volumes": L(VOLUME), "initContainers": L(CONTAINER), "containers": L(CONTAINER),
    "ephemeralContainers": L(_also(CONTAINER, targetContainerName=S)),
    "restartPolicy": S, "terminationGracePeriodSeconds": I, "activeDeadlineSeconds": I, "dnsPolicy": S,
    "nodeSelector": M(S), "serviceAccountName": S, "serviceAccount": S, "automountServiceAccountToken": B,
    "nodeName": S, "hostNetwork": B, "hostPID": B, "hostIPC": B, "shareProcessNamespace": B,
    "securityContext": POD_SECURITY_CONTEXT, "imagePullSecrets": L(NAME_REF), "hostname": S, "subdomain": S,
    "affinity": AFFINITY, "schedulerName": S, "tolerations": L(TOLERATION),
    "hostAliases": L(Struct({"ip": S, "hostnames": L(S)})), "priorityClassName": S, "priority": I,
    "dnsConfig": Struct({"nameservers": L(S), "searches": L(S), "options": L(Struct({"name": S, "value": S}))}),
    "readinessGates": L(Struct({"conditionType": S})), "runtimeClassName": S, "enableServiceLinks": B,
    "preemptionPolicy": S, "overhead": M(Q),
    "topologySpreadConstraints": L(Struct({
        "maxSkew": I, "topologyKey": S, "whenUnsatisfiable": S, "labelSelector": SELECTOR, "minDomains": I,
        "nodeAffinityPolicy": S, "nodeTaintsPolicy": S, "matchLabelKeys": L(S)})),
    "setHostnameAsFQDN": B, "os": Struct({"name": S}), "hostUsers": B, "schedulingGates": L(NAME_REF),
    "resourceClaims": L(Struct({"name": S, "resourceClaimName": S, "resourceClaimTemplateName": S})),
    "resources": RESOURCES,
})
TEMPLATE = Struct({"metadata": META, "spec": POD_SPEC})

# ---- the kinds ------------------------------------------------------------------------------
RULE = Struct({"verbs": L(S), "apiGroups": L(S), "resources": L(S), "resourceNames": L(S), "nonResourceURLs": L(S)})
BINDING = {"subjects": L(Struct({"kind": S, "apiGroup": S, "name": S, "namespace": S})),
           "roleRef": Struct({"apiGroup": S, "kind": S, "name": S})}
ENDPOINT_ADDRESS = Struct({"ip": S, "hostname": S, "nodeName": S, "targetRef": OBJECT_REF})
ENDPOINT_PORT = Struct({"name": S, "port": I, "protocol": S, "appProtocol": S})

# networking/v1 (v1.32: NetworkPolicy has no status; it was removed in 1.28)
NETPOL_PORT = Struct({"protocol": S, "port": IOS, "endPort": I})
NETPOL_PEER = Struct({"podSelector": SELECTOR, "namespaceSelector": SELECTOR,
                      "ipBlock": Struct({"cidr": S, "except": L(S)})})
INGRESS_BACKEND = Struct({
    "service": Struct({"name": S, "port": Struct({"name": S, "number": I})}),
    "resource": Struct({"apiGroup": S, "kind": S, "name": S})})
LB_INGRESS_PORT = Struct({"port": I, "protocol": S, "error": S})
# Gateway API v1 (standard channel, v1.2): every json field of the Go types is listed, so a typo
# is reported; fields the controller does not implement are answered in status (UnsupportedValue).
GW_PARENT_REF = Struct({"group": S, "kind": S, "namespace": S, "name": S, "sectionName": S, "port": I})
GW_SECRET_REF = Struct({"group": S, "kind": S, "name": S, "namespace": S})
GW_HEADER = Struct({"name": S, "value": S})
GW_HEADER_MOD = Struct({"set": L(GW_HEADER), "add": L(GW_HEADER), "remove": L(S)})
GW_PATH_MOD = Struct({"type": S, "replaceFullPath": S, "replacePrefixMatch": S})
GW_MATCH_VALUE = Struct({"type": S, "name": S, "value": S})
GW_FILTER = Struct({
    "type": S, "requestHeaderModifier": GW_HEADER_MOD, "responseHeaderModifier": GW_HEADER_MOD,
    "requestMirror": Struct({"backendRef": Struct({"group": S, "kind": S, "name": S, "namespace": S, "port": I}),
                             "percent": I, "fraction": Struct({"numerator": I, "denominator": I})}),
    "requestRedirect": Struct({"scheme": S, "hostname": S, "path": GW_PATH_MOD, "port": I, "statusCode": I}),
    "urlRewrite": Struct({"hostname": S, "path": GW_PATH_MOD}),
    "extensionRef": Struct({"group": S, "kind": S, "name": S}), "cors": OBJ})
GW_CONDITIONS = L(Struct({"type": S, "status": S, "observedGeneration": I, "lastTransitionTime": S,
                          "reason": S, "message": S}))
JOB_SPEC = Struct({
    "parallelism": I, "completions": I, "activeDeadlineSeconds": I, "backoffLimit": I, "selector": SELECTOR,
    "manualSelector": B, "template": TEMPLATE, "ttlSecondsAfterFinished": I, "completionMode": S, "suspend": B,
    "podFailurePolicy": OBJ, "successPolicy": OBJ, "backoffLimitPerIndex": I, "maxFailedIndexes": I,
    "podReplacementPolicy": S, "managedBy": S})

# Per kind, its top-level fields besides apiVersion, kind and metadata (all of them: the
# top level of every kind is a complete struct).
KINDS: dict[str, dict] = {
    "Pod": {"spec": POD_SPEC, "status": OBJ},
    "Service": {"spec": Struct({
        "ports": L(Struct({"name": S, "protocol": S, "appProtocol": S, "port": I, "targetPort": IOS,
                           "nodePort": I})),
        "selector": M(S), "clusterIP": S, "clusterIPs": L(S), "type": S, "externalIPs": L(S),
        "sessionAffinity": S, "loadBalancerIP": S, "loadBalancerSourceRanges": L(S), "externalName": S,
        "externalTrafficPolicy": S, "healthCheckNodePort": I, "publishNotReadyAddresses": B,
        "sessionAffinityConfig": Struct({"clientIP": Struct({"timeoutSeconds": I})}), "ipFamilies": L(S),
        "ipFamilyPolicy": S, "allocateLoadBalancerNodePorts": B, "loadBalancerClass": S,
        "internalTrafficPolicy": S, "trafficDistribution": S}), "status": OBJ},
    "Deployment": {"spec": Struct({
        "replicas": I, "selector": SELECTOR, "template": TEMPLATE,
        "strategy": Struct({"type": S, "rollingUpdate": Struct({"maxUnavailable": IOS, "maxSurge": IOS})}),
        "minReadySeconds": I, "revisionHistoryLimit": I, "paused": B, "progressDeadlineSeconds": I}),
        "status": OBJ},
    "ReplicaSet": {"spec": Struct({"replicas": I, "minReadySeconds": I, "selector": SELECTOR,
                                   "template": TEMPLATE}), "status": OBJ},
    "Job": {"spec": JOB_SPEC, "status": OBJ},
    "DaemonSet": {"spec": Struct({
        "selector": SELECTOR, "template": TEMPLATE, "minReadySeconds": I, "revisionHistoryLimit": I,
        "updateStrategy": Struct({"type": S, "rollingUpdate": Struct({"maxUnavailable": IOS, "maxSurge": IOS})})}),
        "status": OBJ},
    "StatefulSet": {"spec": Struct({
        "replicas": I, "selector": SELECTOR, "template": TEMPLATE, "volumeClaimTemplates": L(OBJ),
        "serviceName": S, "podManagementPolicy": S, "minReadySeconds": I, "revisionHistoryLimit": I,
        "updateStrategy": Struct({"type": S, "rollingUpdate": Struct({"partition": I, "maxUnavailable": IOS})}),
        "persistentVolumeClaimRetentionPolicy": Struct({"whenDeleted": S, "whenScaled": S}),
        "ordinals": Struct({"start": I})}), "status": OBJ},
    "PodDisruptionBudget": {"spec": Struct({
        "minAvailable": IOS, "maxUnavailable": IOS, "selector": SELECTOR, "unhealthyPodEvictionPolicy": S}),
        "status": OBJ},
    "CronJob": {"spec": Struct({
        "schedule": S, "timeZone": S, "startingDeadlineSeconds": I, "concurrencyPolicy": S, "suspend": B,
        "jobTemplate": Struct({"metadata": META, "spec": JOB_SPEC}), "successfulJobsHistoryLimit": I,
        "failedJobsHistoryLimit": I}), "status": OBJ},
    "ConfigMap": {"immutable": B, "data": M(S), "binaryData": M(S)},
    "Secret": {"immutable": B, "data": M(S), "stringData": M(S), "type": S},
    "ServiceAccount": {"secrets": L(OBJECT_REF), "imagePullSecrets": L(NAME_REF), "automountServiceAccountToken": B},
    "Namespace": {"spec": Struct({"finalizers": L(S)}), "status": OBJ},
    "Node": {"spec": Struct({"podCIDR": S, "podCIDRs": L(S), "providerID": S, "unschedulable": B,
                             "taints": L(Struct({"key": S, "value": S, "effect": S, "timeAdded": S})),
                             "configSource": OBJ, "externalID": S}), "status": OBJ},
    "Endpoints": {"subsets": L(Struct({"addresses": L(ENDPOINT_ADDRESS), "notReadyAddresses": L(ENDPOINT_ADDRESS),
                                       "ports": L(ENDPOINT_PORT)}))},
    "EndpointSlice": {"addressType": S, "ports": L(ENDPOINT_PORT), "endpoints": L(Struct({
        "addresses": L(S), "conditions": Struct({"ready": B, "serving": B, "terminating": B}), "hostname": S,
        "targetRef": OBJECT_REF, "deprecatedTopology": M(S), "nodeName": S, "zone": S,
        "hints": Struct({"forZones": L(Struct({"name": S}))})}))},
    "Event": {"involvedObject": OBJECT_REF, "reason": S, "message": S, "source": Struct({"component": S, "host": S}),
              "firstTimestamp": S, "lastTimestamp": S, "count": I, "type": S, "eventTime": S,
              "series": Struct({"count": I, "lastObservedTime": S}), "action": S, "related": OBJECT_REF,
              "reportingComponent": S, "reportingInstance": S},
    "Lease": {"spec": Struct({"holderIdentity": S, "leaseDurationSeconds": I, "acquireTime": S, "renewTime": S,
                              "leaseTransitions": I, "strategy": S, "preferredHolder": S})},
    "Role": {"rules": L(RULE)},
    "ClusterRole": {"rules": L(RULE), "aggregationRule": Struct({"clusterRoleSelectors": L(SELECTOR)})},
    "RoleBinding": BINDING, "ClusterRoleBinding": BINDING,
    "NetworkPolicy": {"spec": Struct({
        "podSelector": SELECTOR, "policyTypes": L(S),
        "ingress": L(Struct({"ports": L(NETPOL_PORT), "from": L(NETPOL_PEER)})),
        "egress": L(Struct({"ports": L(NETPOL_PORT), "to": L(NETPOL_PEER)}))})},
    "Ingress": {"spec": Struct({
        "ingressClassName": S, "defaultBackend": INGRESS_BACKEND,
        "tls": L(Struct({"hosts": L(S), "secretName": S})),
        "rules": L(Struct({"host": S, "http": Struct({"paths": L(Struct({
            "path": S, "pathType": S, "backend": INGRESS_BACKEND}))})}))}),
        "status": Struct({"loadBalancer": Struct({"ingress": L(Struct({
            "ip": S, "hostname": S, "ports": L(LB_INGRESS_PORT)}))})})},
    "IngressClass": {"spec": Struct({"controller": S, "parameters": Struct({
        "apiGroup": S, "kind": S, "name": S, "scope": S, "namespace": S})})},
    "GatewayClass": {"spec": Struct({"controllerName": S, "description": S, "parametersRef": GW_SECRET_REF}),
                     "status": Struct({"conditions": GW_CONDITIONS, "supportedFeatures": L(ANY)})},
    "Gateway": {"spec": Struct({
        "gatewayClassName": S, "addresses": L(Struct({"type": S, "value": S})), "infrastructure": OBJ,
        "backendTLS": OBJ,
        "listeners": L(Struct({
            "name": S, "hostname": S, "port": I, "protocol": S,
            "tls": Struct({"mode": S, "certificateRefs": L(GW_SECRET_REF), "options": M(S),
                           "frontendValidation": OBJ}),
            "allowedRoutes": Struct({"namespaces": Struct({"from": S, "selector": SELECTOR}),
                                     "kinds": L(Struct({"group": S, "kind": S}))})}))}),
        "status": Struct({"addresses": L(Struct({"type": S, "value": S})), "conditions": GW_CONDITIONS,
                          "listeners": L(Struct({"name": S, "supportedKinds": L(Struct({"group": S, "kind": S})),
                                                 "attachedRoutes": I, "conditions": GW_CONDITIONS}))})},
    "HTTPRoute": {"spec": Struct({
        "parentRefs": L(GW_PARENT_REF), "hostnames": L(S),
        "rules": L(Struct({
            "name": S,
            "matches": L(Struct({"path": Struct({"type": S, "value": S}), "headers": L(GW_MATCH_VALUE),
                                 "queryParams": L(GW_MATCH_VALUE), "method": S})),
            "filters": L(GW_FILTER),
            "backendRefs": L(Struct({"group": S, "kind": S, "name": S, "namespace": S, "port": I, "weight": I,
                                     "filters": L(GW_FILTER)})),
            "timeouts": Struct({"request": S, "backendRequest": S}), "retry": OBJ, "sessionPersistence": OBJ}))}),
        "status": Struct({"parents": L(Struct({"parentRef": GW_PARENT_REF, "controllerName": S,
                                               "conditions": GW_CONDITIONS}))})},
    "ReferenceGrant": {"spec": Struct({"from": L(Struct({"group": S, "kind": S, "namespace": S})),
                                       "to": L(Struct({"group": S, "kind": S, "name": S}))})},
    "Scale": {"spec": Struct({"replicas": I}), "status": OBJ},   # autoscaling/v1, the /scale subresource
}
_TOP: dict[str, Struct] = {kind: Struct({"apiVersion": S, "kind": S, "metadata": META, **fields})
                           for kind, fields in KINDS.items()}
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
                if v is not None and not (type(item) is str and _ok_scalar(item, v)):
                    _check(item, v, f"{path}[{i}]", out)
        else:
            if not isinstance(value, dict):
                out.append({"reason": "FieldValueTypeInvalid", "field": path,
                            "message": f"Invalid value: {_fmt(value)}: must be a map"})
                return
            for k, v in value.items():
                if v is not None and not (type(item) is str and _ok_scalar(item, v)):
                    _check(item, v, f"{path}[{k}]", out)
        return
    if not isinstance(value, dict):
        out.append({"reason": "FieldValueTypeInvalid", "field": path,
                    "message": f"Invalid value: {_fmt(value)}: must be an object"})
        return
    for k, v in value.items():  # the object's keys, not the schema's: most fields are unset
        sub = schema.get(k)
        # well-typed scalars are settled here: no call, no path string (this runs on every write)
        if sub is not None and v is not None and not (type(sub) is str and _ok_scalar(sub, v)):
            _check(sub, v, f"{path}.{k}" if path else k, out)


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


_BASE = Struct({"apiVersion": S, "kind": S, "metadata": META})


def type_causes(kind: str, obj: dict) -> list[dict]:
    """StatusCauses for fields of the wrong JSON type ([] when every known field is well-typed)."""
    out: list[dict] = []
    _check(_TOP.get(kind, _BASE), obj, "", out)
    return out


# ---- unknown fields (fieldValidation) ------------------------------------------------------

FIELD_VALIDATION = ("Ignore", "Strict", "Warn")  # the query parameter's values; unset means Warn


def _unknown(schema, value, trail: list, out: list[list], drop: bool) -> None:
    """Collect (as trails) the keys of `value` that its complete structs do not have.
    Recurses only where the schema has structure, so a typical Pod costs one dict lookup
    per field; the path is built only for what is reported."""
    if type(schema) is tuple:
        kind, item = schema
        if type(item) is str:
            return
        if kind == "list":
            if type(value) is list:
                for i, v in enumerate(value):
                    if v is not None:
                        trail.append(i)
                        _unknown(item, v, trail, out, drop)
                        trail.pop()
        elif type(value) is dict:
            for k, v in value.items():
                if v is not None:
                    trail.append((k,))
                    _unknown(item, v, trail, out, drop)
                    trail.pop()
        return
    if type(value) is not dict or not schema:
        return
    strict = type(schema) is Struct
    extra = None
    for k, v in value.items():
        sub = schema.get(k)
        if sub is None:
            if strict:
                out.append([*trail, k])  # in document order, as Go's decoder reports them
                if drop:
                    extra = [k] if extra is None else [*extra, k]
            continue
        if v is None or type(sub) is str:
            continue
        trail.append(k)
        _unknown(sub, v, trail, out, drop)
        trail.pop()
    if extra:
        for k in extra:
            del value[k]


def _render(trail: list) -> str:
    """`spec.containers[0].readinesProbe`, as Go's strict decoder names a field."""
    parts: list[str] = []
    for t in trail:
        if type(t) is int:
            parts.append(f"[{t}]")
        elif type(t) is tuple:
            parts.append(f"[{t[0]}]")
        else:
            parts.append(f".{t}" if parts else str(t))
    return "".join(parts)


def unknown_fields(kind: str, obj: dict) -> list[str]:
    """Paths of the fields in `obj` that the upstream v1.32 type of `kind` does not have
    (only inside complete structs: see the module docstring). `obj` is not changed."""
    out: list[list] = []
    _unknown(_TOP.get(kind, _BASE), obj, [], out, False)
    return [_render(t) for t in out]


def drop_unknown(kind: str, obj: dict) -> list[str]:
    """Remove the unknown fields from `obj` in place, as Go decoding drops them; their paths.
    The one mutating function here: the registry calls it on the body it is about to store."""
    out: list[list] = []
    _unknown(_TOP.get(kind, _BASE), obj, [], out, True)
    return [_render(t) for t in out]


def go_quote(s: str) -> str:
    """`s` as Go's %q prints it (quotes and backslashes escaped, non-printables as \\x/\\u):
    upstream quotes field names this way in its messages, and it keeps control characters a
    client put in a key out of the response headers."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                        "\v": "\\v"}[ch])
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def unknown_field_message(path: str) -> str:
    """`unknown field "spec.x"`: one strict decoding error, and the text of one warning."""
    return f"unknown field {go_quote(path)}"


MAX_LISTED = 100  # a body of thousands of unknown keys must not make a megabyte error message


def strict_decoding_error(paths: list[str]) -> str:
    """`strict decoding error: unknown field "a", unknown field "b"` (runtime.StrictDecodingError)."""
    listed = ", ".join(unknown_field_message(p) for p in paths[:MAX_LISTED])
    if len(paths) > MAX_LISTED:
        listed += f", and {len(paths) - MAX_LISTED} more"
    return f"strict decoding error: {listed}"
