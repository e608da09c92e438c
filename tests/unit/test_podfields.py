"""Every field of PodSpec and Container is implemented, refused or warned (kubelab/podfields.py),
walked from the strict-decoding field lists, so a new upstream field cannot slip through."""

from kubelab import podfields
from kubelab.apiserver import shapes


def _nested_names(table: dict, shape) -> list[str]:
    """Every top-level field of `shape` that the table does not classify."""
    return [k for k in shape if k not in table]


def test_every_pod_spec_field_is_classified():
    assert _nested_names(podfields.POD_SPEC, shapes.POD_SPEC) == []
    assert set(podfields.POD_SPEC) - set(shapes.POD_SPEC) <= {k for k in podfields.POD_SPEC if "." in k}


def test_every_container_field_is_classified():
    ephemeral = shapes.POD_SPEC["ephemeralContainers"][1]
    assert _nested_names(podfields.CONTAINER, ephemeral) == []
    assert _nested_names(podfields.CONTAINER, shapes.CONTAINER) == []


def test_every_security_context_and_volume_field_is_classified():
    assert _nested_names(podfields.SECURITY_CONTEXT, shapes.SECURITY_CONTEXT) == []
    assert _nested_names(podfields.POD_SECURITY_CONTEXT, shapes.POD_SECURITY_CONTEXT) == []
    assert _nested_names(podfields.VOLUME_SOURCES, shapes.VOLUME) == []


def test_each_entry_says_what_happens():
    for table in (podfields.POD_SPEC, podfields.CONTAINER, podfields.SECURITY_CONTEXT,
                  podfields.POD_SECURITY_CONTEXT, podfields.VOLUME_SOURCES):
        for name, f in table.items():
            assert f.how in (podfields.IMPLEMENTED, podfields.REFUSED, podfields.WARNED), name
            assert f.how == podfields.IMPLEMENTED or f.note, f"{name}: a refusal or warning must say why"


def test_check_finds_refused_and_warned_fields_and_skips_defaults():
    spec = {"containers": [{"name": "c", "image": "busybox", "terminationMessagePath": "/dev/termination-log",
                            "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "1"}},
                            "securityContext": {"privileged": True, "runAsUser": 1},
                            "lifecycle": {"preStop": {"exec": {"command": ["true"]}}}, "stdin": False}],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "x"}}, {"name": "e", "emptyDir": {}}],
            "enableServiceLinks": True, "priority": 0, "hostPID": False, "activeDeadlineSeconds": 30}
    got = {(how, path) for how, path, _ in podfields.check(spec)}
    assert got == {(podfields.WARNED, "spec.containers[0].resources.limits"),
                   (podfields.REFUSED, "spec.containers[0].securityContext.privileged"),
                   (podfields.REFUSED, "spec.volumes[0].persistentVolumeClaim"),
                   (podfields.WARNED, "spec.activeDeadlineSeconds")}
    w = podfields.warnings(spec)
    assert "spec.activeDeadlineSeconds: ignored by kubelab: activeDeadlineSeconds is not enforced" in w[0]
    assert podfields.check({"containers": [{"name": "c", "securityContext": {"privileged": False}}]}) == []
    assert podfields.check({"os": {"name": "windows"}, "containers": []})[0][:2] == (podfields.REFUSED, "spec.os.name")
    assert podfields.check({"hostNetwork": True, "containers": [{"ports": [{"containerPort": 80, "hostPort": 80}]}]}) == []
