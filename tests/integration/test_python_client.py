"""The official Python `kubernetes` client lists, reads, creates and watches pods."""

from __future__ import annotations

import threading

import pytest

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, config, watch  # noqa: E402


@pytest.fixture
def core(apiserver):
    api_client = config.new_client_from_config(config_file=apiserver.kubeconfig)
    yield client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    api_client.close()


def test_create_list_read_watch_pods(core, namespace):
    v1, apps = core
    body = client.V1Pod(metadata=client.V1ObjectMeta(name="pyw", labels={"app": "py"}),
                        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")]))
    created = v1.create_namespaced_pod(namespace, body)
    assert created.metadata.uid and created.spec.restart_policy == "Always"
    assert [p.metadata.name for p in v1.list_namespaced_pod(namespace).items] == ["pyw"]
    assert v1.read_namespaced_pod("pyw", namespace).status.phase == "Pending"
    assert any(p.metadata.name == "pyw" for p in v1.list_pod_for_all_namespaces(label_selector="app=py").items)

    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def consume() -> None:
        for ev in w.stream(v1.list_namespaced_pod, namespace, timeout_seconds=20):
            seen.append((ev["type"], ev["object"].metadata.name))
            if ("ADDED", "second") in seen:
                w.stop()

    t = threading.Thread(target=consume)
    t.start()
    v1.create_namespaced_pod(namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name="second"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")])))
    t.join(25)
    assert ("ADDED", "pyw") in seen and ("ADDED", "second") in seen

    dep = apps.create_namespaced_deployment(namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "pyd"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    assert dep.spec.strategy.type == "RollingUpdate"
    apps.patch_namespaced_deployment_scale("pyd", namespace, {"spec": {"replicas": 2}})
    assert apps.read_namespaced_deployment("pyd", namespace).spec.replicas == 2
    v1.delete_namespaced_pod("pyw", namespace)
