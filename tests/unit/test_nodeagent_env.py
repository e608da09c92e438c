"""A container's environment as the kubelet builds it: envFrom with prefix, env in order with
$(VAR) expansion, valueFrom (configMapKeyRef, secretKeyRef, fieldRef, resourceFieldRef), and
the kubelet's refusals for what is missing."""

import base64
import os

import pytest

from kubelab.nodeagent import containers as ctr
from kubelab.nodeagent import volumes

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "x"}},
       "spec": {"nodeName": "n1", "containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi"},
                                                                              "requests": {"cpu": "250m"}}}]}}
CM = {"data": {"A": "1", "B": "2", "bad key": "x"}}
SEC = {"data": {"PW": base64.b64encode(b"s3cret").decode()}}
OBJS = {("configmaps", "cm"): CM, ("secrets", "sec"): SEC, ("configmaps", "gone"): None}


def env(container, objects=OBJS):
    return ctr.container_env(POD, {"name": "c", **container}, pod_ip="10.0.0.5", host_ip="192.168.1.1",
                             hostname="p", objects=objects,
                             resource=lambda ref, c: volumes.resource_value(POD, ref, node_cpus=2,
                                                                            node_memory=2**30, default_container=c))


def test_env_from_with_prefix_then_env_overrides_and_expands():
    e = env({"envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}, {"secretRef": {"name": "sec"}}],
             "env": [{"name": "CM_A", "value": "override"}, {"name": "X", "value": "$(CM_B)-$(PW)-$(NOPE)-$$(CM_B)"},
                     {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                     {"name": "LBL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}}]})
    assert e["CM_A"] == "override" and e["CM_B"] == "2" and e["PW"] == "s3cret"
    assert "CM_bad key" not in e   # not a valid variable name: skipped, as upstream
    assert e["X"] == "2-s3cret-$(NOPE)-$(CM_B)" and e["IP"] == "10.0.0.5" and e["LBL"] == "x"


def test_key_refs_and_resource_field_refs():
    e = env({"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "A"}}},
                     {"name": "P", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "PW"}}},
                     {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k", "optional": True}}},
                     {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                     {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
                     {"name": "LCPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]})
    assert (e["A"], e["P"], e["MEM"], e["CPU"], e["LCPU"]) == ("1", "s3cret", "64", "250", "2")
    assert "OPT" not in e


@pytest.mark.parametrize("container,message", [
    ({"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "Z"}}}]},
     "couldn't find key Z in ConfigMap ns/cm"),
    ({"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "Z"}}}]},
     "couldn't find key Z in Secret ns/sec"),
    ({"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k"}}}]},
     'configmap "gone" not found'),
    ({"envFrom": [{"secretRef": {"name": "nosuch"}}]}, 'secret "nosuch" not found'),
])
def test_missing_values_refuse_to_start(container, message):
    with pytest.raises(ctr.ConfigError) as e:
        env(container)
    assert str(e.value) == message and e.value.reason == "CreateContainerConfigError"


def test_env_sources_lists_what_to_read():
    assert ctr.env_sources({"envFrom": [{"configMapRef": {"name": "a"}}],
                            "env": [{"name": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}) \
        == {("configmaps", "a"), ("secrets", "s")}


def test_atomic_writer_swaps_data_and_keeps_links(tmp_path):
    w = volumes.AtomicWriter(str(tmp_path / "v"))
    assert w.write({"a": (b"1", 0o644), "d/b": (b"2", 0o400)})
    assert (tmp_path / "v" / "a").read_text() == "1" and (tmp_path / "v" / "d" / "b").read_text() == "2"
    assert (tmp_path / "v" / "a").is_symlink() and (tmp_path / "v" / "..data").is_symlink()
    first = (tmp_path / "v" / "..data").readlink()
    assert not w.write({"a": (b"1", 0o644), "d/b": (b"2", 0o400)})   # unchanged: nothing written
    assert w.write({"a": (b"one", 0o644)})
    assert (tmp_path / "v" / "a").read_text() == "one" and not (tmp_path / "v" / "d").exists()
    assert not (tmp_path / "v" / first).exists()
    with pytest.raises(volumes.VolumeError):
        w.write({"../escape": (b"x", 0o644)})


def test_projections():
    assert volumes.project_configmap({"name": "cm", "items": [{"key": "A", "path": "x/a", "mode": 0o600}]},
                                     CM, 0o644) == {"x/a": (b"1", 0o600)}
    assert volumes.project_configmap({"name": "nope", "optional": True}, None, 0o644) == {}
    with pytest.raises(volumes.VolumeError, match='configmap "nope" not found'):
        volumes.project_configmap({"name": "nope"}, None, 0o644)
    assert volumes.project_secret({"secretName": "sec"}, SEC, 0o400) == {"PW": (b"s3cret", 0o400)}
    assert volumes.labels_text({"b": "2", "a": "1"}) == 'a="1"\nb="2"'
    assert volumes.validate_subpath("../x") and volumes.validate_subpath("/x") and not volumes.validate_subpath("a/b")


def test_log_rotation_keeps_at_most_max_files(tmp_path):
    p = str(tmp_path / "0.log")
    for i in range(7):
        with open(p, "ab") as f:
            f.write(str(i).encode() * 20)
        assert ctr.rotate_log(p, max_size=10, max_files=3)
    assert sorted(os.listdir(tmp_path)) == ["0.log", "0.log.1", "0.log.2"]
    assert open(p, "rb").read() == b"" and open(p + ".1").read() == "6" * 20 and open(p + ".2").read() == "5" * 20
    assert not ctr.rotate_log(p, max_size=10, max_files=3)


async def _collect(gen):
    return b"".join([c async for c in gen])


def test_tail_reads_backwards_in_chunks(tmp_path):
    import asyncio
    from kubelab.nodeagent import server
    p = tmp_path / "log"
    lines = [f"line {i}\n".encode() for i in range(5000)]
    p.write_bytes(b"".join(lines))
    with open(p, "rb") as f:
        assert server.tail_offset(f, 3, chunk=7) == len(b"".join(lines[:-3]))
        assert server.tail_offset(f, 0) == len(b"".join(lines)) and server.tail_offset(f, None) == 0
        assert server.tail_offset(f, 10 ** 6, chunk=64) == 0
    out = asyncio.run(_collect(server.follow_file(str(p), tail=2, follow=False, limit=None, running=lambda: False)))
    assert out == b"line 4998\nline 4999\n"
    out = asyncio.run(_collect(server.follow_file(str(p), tail=None, follow=False, limit=10, running=lambda: False)))
    assert out == b"line 0\nlin"
    p.write_bytes(b"a\nb")   # no final newline: the last line still counts
    with open(p, "rb") as f:
        assert server.tail_offset(f, 1) == 2
