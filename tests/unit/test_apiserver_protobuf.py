"""Protobuf request bodies: real kubectl 1.32 captures decode to the JSON REST would get."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubelab.apiserver.protobuf import MAGIC, decode, encode, message_class

DATA = Path(__file__).parent / "data"
REFERENCE_LOG = Path("/work/shared/reference/kubectl-1.32-requests.jsonl")


def fixture(name: str) -> bytes:
    return (DATA / f"kubectl-create-{name}.bin").read_bytes()


# Captured by pointing `kubectl create ...` at a logging stub (see the fixture names).
CAPTURED = {
    "namespace": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns1"}},
    "configmap-literals": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm1"},
                           "data": {"a": "b", "c": "d"}},
    "configmap-binary": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm2"},
                         "data": {"k": "v"}, "binaryData": {"bin.dat": "YmluAAH/"}},
    "secret-generic": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1"},
                       "data": {"user": "YWRtaW4="}, "type": "Opaque"},
    "serviceaccount": {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa1"}},
    "service-clusterip": {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc1", "labels": {"app": "svc1"}},
                          "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080},
                                             {"name": "443-https", "protocol": "TCP", "port": 443, "targetPort": "https"}],
                                   "selector": {"app": "svc1"}, "type": "ClusterIP"}},
    "service-nodeport": {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np1", "labels": {"app": "np1"}},
                         "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080,
                                             "nodePort": 30080}],
                                  "selector": {"app": "np1"}, "type": "NodePort"}},
    "service-externalname": {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext1", "labels": {"app": "ext1"}},
                             "spec": {"selector": {"app": "ext1"}, "type": "ExternalName", "externalName": "example.com"}},
    "service-headless": {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hl1", "labels": {"app": "hl1"}},
                         "spec": {"selector": {"app": "hl1"}, "clusterIP": "None", "type": "ClusterIP"}},
    "service-loadbalancer": {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb1", "labels": {"app": "lb1"}},
                             "spec": {"ports": [{"name": "53-53", "protocol": "TCP", "port": 53, "targetPort": 53}],
                                      "selector": {"app": "lb1"}, "type": "LoadBalancer"}},
    "deployment-command": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d1", "labels": {"app": "d1"}},
                           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "d1"}},
                                    "template": {"metadata": {"labels": {"app": "d1"}},
                                                 "spec": {"containers": [{"name": "nginx", "image": "nginx:1.26",
                                                                          "command": ["sh", "-c", "sleep 1"],
                                                                          "ports": [{"containerPort": 80}]}]}}}},
    "deployment-two-images": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d2", "labels": {"app": "d2"}},
                              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d2"}},
                                       "template": {"metadata": {"labels": {"app": "d2"}},
                                                    "spec": {"containers": [{"name": "busybox", "image": "busybox"},
                                                                            {"name": "nginx", "image": "nginx"}]}}}},
}


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_captured_kubectl_bodies(name):
    assert decode(fixture(name)) == CAPTURED[name]


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_captured_bodies_have_no_unknown_fields_below_the_status(name):
    """A wrong field number would surface here as an unknown field."""
    from google.protobuf.unknown_fields import UnknownFieldSet

    def unknown(msg, path):
        out = [(path, f.field_number) for f in UnknownFieldSet(msg)]
        for fd, value in msg.ListFields():
            if fd.message_type is None or fd.message_type.GetOptions().map_entry:
                continue
            for i, v in enumerate(value if not hasattr(value, "ListFields") else [value]):
                out += unknown(v, f"{path}.{fd.name}")
        return out

    env = message_class("Unknown")()
    env.ParseFromString(fixture(name)[len(MAGIC):])
    assert not list(UnknownFieldSet(env))
    obj = message_class(env.typeMeta.kind)()
    obj.ParseFromString(env.raw)
    # Only `status` (field 3 of Service/Deployment) is deliberately not described.
    assert all(path == env.typeMeta.kind and num == 3 for path, num in unknown(obj, env.typeMeta.kind))


def test_reference_log_deployment_matches_its_decoded_form():
    """The reference log decoded `kubectl create deployment x --image=nginx` (status and
    zero values included); ours is the same object with JSON's omissions."""
    lines = [json.loads(line) for line in REFERENCE_LOG.read_text().splitlines()]
    ref = next(line["decoded_protobuf"] for line in lines if "decoded_protobuf" in line)
    body = encode({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "labels": {"app": "x"}},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "x"}},
                            "template": {"metadata": {"labels": {"app": "x"}},
                                         "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}})
    got = decode(body)
    assert got["metadata"] == {"name": ref["metadata"]["name"], "labels": ref["metadata"]["labels"]}
    assert got["spec"]["replicas"] == ref["spec"]["replicas"]
    assert got["spec"]["selector"] == ref["spec"]["selector"]
    c = ref["spec"]["template"]["spec"]["containers"][0]
    assert got["spec"]["template"]["spec"]["containers"] == [{"name": c["name"], "image": c["image"]}]


@pytest.mark.parametrize("obj", [
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default", "generateName": "p-",
                                                     "annotations": {"a": "b"}, "creationTimestamp": "2025-01-02T03:04:05Z",
                                                     "finalizers": ["x/y"]},
     "spec": {"containers": [{"name": "c", "image": "i", "args": ["-v"], "env": [{"name": "A", "value": "1"}],
                              "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "100m"}},
                              "ports": [{"containerPort": 53, "protocol": "UDP", "name": "dns"}]}],
              "restartPolicy": "Never", "terminationGracePeriodSeconds": 0, "nodeSelector": {"d": "e"},
              "enableServiceLinks": False, "hostNetwork": True}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
     "spec": {"replicas": 0, "selector": {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
              "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%", "maxUnavailable": 0}},
              "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}, "revisionHistoryLimit": 0}},
    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r"},
     "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}}, "minReadySeconds": 5}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "immutable": False},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
     "spec": {"ports": [{"port": 80, "targetPort": "http", "appProtocol": "http"}], "ipFamilyPolicy": "SingleStack",
              "ipFamilies": ["IPv4"], "internalTrafficPolicy": "Cluster", "sessionAffinity": "ClientIP"}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "agg"},
     "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/aggregate-to-agg": "true"}}]}},
])
def test_round_trip_keeps_pointer_zeroes(obj):
    """Fields that are pointers in Go keep explicit zeroes/false (replicas: 0, immutable: false)."""
    assert decode(encode(obj)) == obj


def test_zero_values_of_plain_fields_are_omitted():
    pod = message_class("Pod")()
    pod.metadata.name = "p"
    pod.metadata.generation = 0
    pod.metadata.creationTimestamp.seconds = 0
    c = pod.spec.containers.add()
    c.name, c.image, c.stdin, c.workingDir = "c", "i", False, ""
    c.resources.SetInParent()
    env = message_class("Unknown")()
    env.typeMeta.apiVersion, env.typeMeta.kind, env.raw = "v1", "Pod", pod.SerializeToString()
    assert decode(MAGIC + env.SerializeToString()) == {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i"}]}}


@pytest.mark.parametrize("body,match", [
    (b"", "magic"),
    (b'{"kind":"Pod"}', "magic"),
    (MAGIC + b"\xff\xff\xff", "malformed protobuf envelope"),
    (MAGIC, "no apiVersion/kind"),
    (MAGIC + b"\n\x0a\n\x02v1\x12\x04Node\x12\x00", "v1/Node is not supported"),
    (MAGIC + b"\n\x0f\n\x02v1\x12\tNamespace\x12\x03\x0a\x05x", "malformed protobuf Namespace"),
    (MAGIC + b"\n\x0f\n\x02v1\x12\tNamespace\x1a\x04gzip", "contentEncoding"),
])
def test_garbage_raises_value_error(body, match):
    with pytest.raises(ValueError, match=match):
        decode(body)


def test_encode_rejects_unknown_kinds():
    with pytest.raises(ValueError):
        encode({"apiVersion": "v1", "kind": "Node"})
