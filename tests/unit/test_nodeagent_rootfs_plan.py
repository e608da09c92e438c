"""The container's root and privileges, pure parts: symlinks resolved inside the root,
the setpriv line (capabilities, user), securityContext precedence and runAsNonRoot."""

import os

import pytest

from kubelab.nodeagent import containers as ctr
from kubelab.nodeagent import rootfs


def test_resolve_in_follows_symlinks_inside_the_root(tmp_path):
    root = str(tmp_path)
    os.makedirs(tmp_path / "run")
    os.makedirs(tmp_path / "var")
    os.symlink("/run", tmp_path / "var" / "run")          # absolute: the container's /run
    os.symlink("../../etc", tmp_path / "var" / "up")       # relative, climbing above the root
    assert rootfs.resolve_in(root, "/var/run/secrets/x") == f"{root}/run/secrets/x"
    assert rootfs.resolve_in(root, "/var/up/passwd") == f"{root}/etc/passwd"
    assert rootfs.resolve_in(root, "/../../../etc/shadow") == f"{root}/etc/shadow"
    os.symlink("/loop", tmp_path / "loop")
    with pytest.raises(OSError):
        rootfs.resolve_in(root, "/loop/x")


def test_spec_json_round_trip():
    rs = rootfs.RootSpec(root="/r", hide=("/a",), mounts=(rootfs.Mount("/s", "/cfg", read_only=False),),
                         workdir="/w", read_only_root=True, env_file="/e")
    assert rootfs.RootSpec.from_json(rs.to_json()) == rs


def test_setpriv_default_caps_and_user():
    argv = rootfs.setpriv_argv(uid=None, gid=None)
    bounding = argv[argv.index("--bounding-set") + 1]
    assert bounding.startswith("-all,") and "+chown" in bounding and "sys_admin" not in bounding
    assert "--reuid" not in argv and argv[-1] == "--"
    argv = rootfs.setpriv_argv(uid=1000, gid=3000, groups=[4000], add_caps=["NET_ADMIN"], drop_caps=["CHOWN"],
                               no_new_privs=True)
    bounding = argv[argv.index("--bounding-set") + 1]
    assert "+net_admin" in bounding and "chown" not in bounding
    assert argv[argv.index("--reuid") + 1] == "1000" and argv[argv.index("--regid") + 1] == "3000"
    assert argv[argv.index("--groups") + 1] == "4000" and "--no-new-privs" in argv
    assert rootfs.setpriv_argv(uid=None, gid=None, drop_caps=["ALL"])[2] == "-all"


POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
       "spec": {"securityContext": {"runAsUser": 1000, "runAsGroup": 2000, "supplementalGroups": [5],
                                    "fsGroup": 6}}}


def test_privileges_container_wins_field_by_field():
    p = ctr.privileges(POD, {"name": "c", "securityContext": {"runAsUser": 1001, "readOnlyRootFilesystem": True,
                                                               "allowPrivilegeEscalation": False}})
    assert (p.uid, p.gid, p.groups, p.read_only_root, p.no_new_privs) == (1001, 2000, (5, 6), True, True)
    assert ctr.privileges({"metadata": POD["metadata"], "spec": {}}, {"name": "c"}).uid is None


def test_run_as_non_root_refusals_use_the_kubelets_words():
    pod = {"metadata": POD["metadata"], "spec": {"securityContext": {"runAsNonRoot": True}}}
    with pytest.raises(ctr.ConfigError, match=r'container has runAsNonRoot and image will run as root '
                                              r'\(pod: "p_ns\(u1\)", container: c\)'):
        ctr.privileges(pod, {"name": "c"})
    with pytest.raises(ctr.ConfigError, match="container's runAsUser breaks non-root policy"):
        ctr.privileges(pod, {"name": "c", "securityContext": {"runAsUser": 0}})
    assert ctr.privileges(pod, {"name": "c", "securityContext": {"runAsUser": 7}}).uid == 7
