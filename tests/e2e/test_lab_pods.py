"""Pods as the spec says, on a real lab with the real kubectl: what a container can see (the
attack of issue 13: reading the cluster CA key from a pod), securityContext, and volumes.

The lab is the shared one (tests/e2e/conftest.py): every test here is about the agent of the
node its pod lands on.
"""

from __future__ import annotations

import json
import os

import pytest

from kubelab.lab import components
from kubelab.lab.testing import Lab
from kubelab.testing import kubectl as run_kubectl
from kubelab.testing import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.root]


XDIST_GROUP = "shared-lab"  # the shared lab (tests/e2e/conftest.py): the pods here have names of their own


def apply(lab: Lab, *objs: dict) -> None:
    for o in objs:
        run_kubectl(lab.kubeconfig, "apply", "-f", "-", input=json.dumps(o))


def get_pod(lab: Lab, name: str) -> dict:
    return json.loads(lab.kubectl("get", "pod", name, "-o", "json").stdout)


def phase(lab: Lab, name: str, *want: str, timeout: float = 90) -> dict:
    def ok():
        p = get_pod(lab, name)
        return p if p.get("status", {}).get("phase") in want else None
    return wait_until(ok, timeout=timeout, interval=0.5, what=f"pod {name} phase in {want}")


def running(lab: Lab, name: str) -> dict:
    def ok():
        p = get_pod(lab, name)
        cs = (p.get("status") or {}).get("containerStatuses") or []
        return p if cs and all(c.get("ready") for c in cs) else None
    return wait_until(ok, timeout=90, interval=0.5, what=f"pod {name} ready")


def waiting_reason(lab: Lab, name: str, reason: str) -> dict:
    def ok():
        cs = ((get_pod(lab, name).get("status") or {}).get("containerStatuses") or [{}])[0]
        w = (cs.get("state") or {}).get("waiting") or {}
        return w if w.get("reason") == reason else None
    return wait_until(ok, timeout=60, interval=0.5, what=f"pod {name} waiting with {reason}")


def pod(name: str, containers: list[dict], **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": containers, **spec}}


# ---- what a container can see (issue 13) ---------------------------------------------------

def test_a_pod_cannot_read_the_cluster_ca_key(lab):
    """The attack itself: anyone who may create pods asks one to print the CA key."""
    key = os.path.join(components.pki_dir(lab.plan), "ca.key")
    assert os.path.exists(key)
    lab.kubectl("run", "thief", "--image=busybox", "--restart=Never", "--command", "--", "cat", key)
    p = phase(lab, "thief", "Succeeded", "Failed")
    out = lab.kubectl("logs", "thief").stdout
    assert p["status"]["phase"] == "Failed" and "PRIVATE KEY" not in out and "No such file" in out, out
    # nor by unmounting what hides it, nor through the lab directory, the node agent's state,
    # the user's kubeconfig or the node's /run (netns files)
    script = (f"umount -l /root 2>&1; mount -t tmpfs x /mnt 2>&1; cat {key} 2>&1; ls -A {lab.plan.root_dir} {lab.plan.lab_dir} "
              f"/root /home /run 2>&1; cat /proc/1/root{key} 2>&1; ls /dev; echo END")
    lab.kubectl("run", "thief2", "--image=busybox", "--restart=Never", "--command", "--", "sh", "-c", script)
    phase(lab, "thief2", "Succeeded", "Failed")
    out = lab.kubectl("logs", "thief2").stdout
    assert "END" in out and "PRIVATE KEY" not in out and "must be superuser" in out and "mount: /mnt: permission denied" in out, out
    assert "kubeconfig" not in out and "ca.crt" not in out and "netns" not in out, out
    assert "sda" not in out and "null" in out, out   # /dev: a few devices, never the node's disks
    # the pod's own files are there: its resolv.conf and service-account token
    lab.kubectl("run", "own", "--image=busybox", "--restart=Never", "--command", "--", "sh", "-c",
                "cat /etc/resolv.conf /var/run/secrets/kubernetes.io/serviceaccount/namespace; touch /etc/x 2>&1; true")
    phase(lab, "own", "Succeeded")
    out = lab.kubectl("logs", "own").stdout
    assert "nameserver 10.96.0.10" in out and "default" in out and "Read-only file system" in out, out


def test_security_context_user_and_read_only_root(lab):
    apply(lab, pod("who", [{"name": "c", "image": "busybox", "command": ["sh", "-c",
                                                                         "id -u; id -g; touch /x 2>&1; touch /tmp/y 2>&1; echo done"],
                            "securityContext": {"runAsUser": 1000, "readOnlyRootFilesystem": True}}],
                   restartPolicy="Never", securityContext={"runAsGroup": 3000}))
    phase(lab, "who", "Succeeded")
    out = lab.kubectl("logs", "who").stdout.splitlines()
    assert out[:2] == ["1000", "3000"] and "Read-only file system" in out[2] and "Read-only" in out[3], out
    # runAsNonRoot with an image that runs as root: refused, never started
    apply(lab, pod("nonroot", [{"name": "c", "image": "busybox", "command": ["sleep", "infinity"]}],
                   securityContext={"runAsNonRoot": True}))
    w = waiting_reason(lab, "nonroot", "CreateContainerConfigError")
    assert w["message"].startswith("container has runAsNonRoot and image will run as root (pod: \"nonroot_default(")


# ---- volumes (issue 15) ---------------------------------------------------------------------

def test_configmap_secret_downward_emptydir_volumes(lab):
    lab.kubectl("create", "configmap", "cfg", "--from-literal=a=one", "--from-literal=b=two")
    lab.kubectl("create", "secret", "generic", "pw", "--from-literal=password=s3cret")
    apply(lab, pod("vols", [{
        "name": "c", "image": "busybox", "command": ["sleep", "infinity"],
        "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}, {"name": "pw", "mountPath": "/etc/pw"},
                         {"name": "sub", "mountPath": "/sub/a", "subPath": "a"},
                         {"name": "info", "mountPath": "/info"}, {"name": "mem", "mountPath": "/scratch"},
                         {"name": "all", "mountPath": "/all"}]}],
        volumes=[{"name": "cfg", "configMap": {"name": "cfg"}},
                 {"name": "sub", "configMap": {"name": "cfg"}},
                 {"name": "pw", "secret": {"secretName": "pw", "defaultMode": 0o400,
                                           "items": [{"key": "password", "path": "pw.txt"}]}},
                 {"name": "info", "downwardAPI": {"items": [
                     {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                     {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                 {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                 {"name": "all", "projected": {"sources": [
                     {"configMap": {"name": "cfg", "items": [{"key": "b", "path": "b"}]}},
                     {"secret": {"name": "pw"}},
                     {"serviceAccountToken": {"path": "token", "audience": "vault", "expirationSeconds": 3600}}]}}]))
    running(lab, "vols")

    def sh(cmd: str) -> str:
        return lab.kubectl("exec", "vols", "--", "sh", "-c", cmd).stdout

    assert sh("cat /cfg/a /cfg/b /sub/a") == "onetwoone"
    assert sh("cat /etc/pw/pw.txt; stat -L -c %a /etc/pw/pw.txt") == "s3cret400\n"
    assert sh("cat /info/name; echo; cat /info/labels") == 'vols\napp="vols"'
    assert sh("cat /all/b /all/password; test -s /all/token && echo token") == "twos3crettoken\n"
    assert "Read-only file system" in sh("touch /cfg/x 2>&1 || true")
    assert "No space left" in sh("dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>&1 || true")
    # nothing of it on the node's own filesystem
    assert not any(os.path.exists(p) for p in ("/cfg", "/sub", "/info", "/scratch", "/all", "/etc/pw"))
    # an update reaches the mounted files (not the subPath one, as upstream)
    run_kubectl(lab.kubeconfig, "patch", "configmap", "cfg", "-p", '{"data":{"a":"uno"}}')
    wait_until(lambda: sh("cat /cfg/a") == "uno", timeout=60, interval=1, what="configMap update in the volume")
    assert sh("cat /sub/a") == "one"


def test_missing_configmap_keeps_the_pod_creating_until_it_exists(lab):
    apply(lab, pod("waits", [{"name": "c", "image": "busybox", "command": ["sleep", "infinity"],
                              "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
                   volumes=[{"name": "v", "configMap": {"name": "later"}}]))
    waiting_reason(lab, "waits", "ContainerCreating")
    wait_until(lambda: 'configmap "later" not found' in lab.kubectl("describe", "pod", "waits").stdout,
               timeout=30, interval=1, what="FailedMount event")
    lab.kubectl("create", "configmap", "later", "--from-literal=k=v")
    running(lab, "waits")
    assert lab.kubectl("exec", "waits", "--", "cat", "/v/k").stdout == "v"


# ---- env (issue 15) ---------------------------------------------------------------------------

def test_env_from_configmaps_and_secrets_and_a_missing_key(lab):
    lab.kubectl("create", "configmap", "envcm", "--from-literal=LEVEL=debug")
    lab.kubectl("create", "secret", "generic", "envsec", "--from-literal=PW=hunter2")
    apply(lab, pod("envs", [{"name": "c", "image": "busybox", "command": ["sleep", "infinity"],
                             "envFrom": [{"configMapRef": {"name": "envcm"}, "prefix": "APP_"}],
                             "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "envsec", "key": "PW"}}},
                                     {"name": "MSG", "value": "level=$(APP_LEVEL)"},
                                     {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}]))
    running(lab, "envs")
    out = lab.kubectl("exec", "envs", "--", "sh", "-c", 'echo "$APP_LEVEL $PW $MSG $NODE"').stdout.split()
    assert out[:3] == ["debug", "hunter2", "level=debug"] and out[3] == get_pod(lab, "envs")["spec"]["nodeName"]
    # a key that does not exist: the container waits, never starts without it
    apply(lab, pod("nokey", [{"name": "c", "image": "busybox", "command": ["sleep", "infinity"],
                              "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "envcm",
                                                                                       "key": "MISSING"}}}]}]))
    w = waiting_reason(lab, "nokey", "CreateContainerConfigError")
    assert w["message"] == "couldn't find key MISSING in ConfigMap default/envcm"
    assert "CreateContainerConfigError" in lab.kubectl("get", "pod", "nokey").stdout
    run_kubectl(lab.kubeconfig, "patch", "configmap", "envcm", "-p", '{"data":{"MISSING":"here"}}')
    running(lab, "nokey")
    assert lab.kubectl("exec", "nokey", "--", "sh", "-c", "echo $X").stdout == "here\n"


# ---- every field implemented, refused or warned (issue 15) -------------------------------------

def test_unimplemented_fields_are_refused_or_warned(lab):
    bad = pod("pvc", [{"name": "c", "image": "busybox", "volumeMounts": [{"name": "d", "mountPath": "/d"}]}],
              volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}])
    p = run_kubectl(lab.kubeconfig, "apply", "-f", "-", input=json.dumps(bad), check=False)
    assert p.returncode == 1 and "spec.volumes[0].persistentVolumeClaim: Forbidden: not supported by kubelab" \
        in p.stderr, p.stderr
    priv = pod("priv", [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}])
    p = run_kubectl(lab.kubeconfig, "apply", "-f", "-", input=json.dumps(priv), check=False)
    assert p.returncode == 1 and "spec.containers[0].securityContext.privileged: Forbidden" in p.stderr, p.stderr
    assert "NotFound" in lab.kubectl("get", "pod", "pvc", check=False).stderr
    hooks = pod("hooks", [{"name": "c", "image": "busybox", "command": ["sleep", "infinity"],
                           "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "echo ran > /tmp/hook"]}}},
                           "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}]}])
    p = run_kubectl(lab.kubeconfig, "apply", "-f", "-", input=json.dumps(hooks))
    assert "lifecycle" not in p.stderr, p.stderr   # hooks are run now (tests/integration/test_pod_streams.py)
    assert "Warning: spec.containers[0].resizePolicy: ignored by kubelab" in p.stderr, p.stderr
    running(lab, "hooks")
    wait_until(lambda: "FieldIgnored" in lab.kubectl("describe", "pod", "hooks").stdout, timeout=30, interval=1,
               what="a FieldIgnored event on the pod")
    wait_until(lambda: lab.kubectl("exec", "hooks", "--", "cat", "/tmp/hook", check=False).stdout == "ran\n",
               timeout=30, interval=1, what="the postStart hook's file")


# ---- lifecycle details (issue 15) --------------------------------------------------------------

def test_restart_policies_exit_codes_and_working_dir(lab):
    lab.kubectl("run", "fails", "--image=busybox", "--restart=Never", "--command", "--", "sh", "-c", "exit 3")
    lab.kubectl("run", "works", "--image=busybox", "--restart=OnFailure", "--command", "--", "sh", "-c", "pwd")
    p = phase(lab, "fails", "Failed")
    assert p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    phase(lab, "works", "Succeeded")
    assert lab.kubectl("logs", "works").stdout == "/\n"
    apply(lab, pod("wd", [{"name": "c", "image": "busybox", "workingDir": "/srv/app/here",
                           "command": ["sh", "-c", "pwd; sleep infinity"],
                           "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1,
                                             "failureThreshold": 1}}]))

    def killed():
        cs = ((get_pod(lab, "wd").get("status") or {}).get("containerStatuses") or [{}])[0]
        return cs.get("lastState", {}).get("terminated")
    t = wait_until(killed, timeout=60, interval=0.5, what="the liveness probe kills the container")
    assert t["exitCode"] == 137, t   # sleep as PID 1 ignores SIGTERM: SIGKILLed after the grace period
    assert lab.kubectl("logs", "wd", "--previous").stdout.startswith("/srv/app/here\n")
    assert not os.path.exists("/srv/app/here")
