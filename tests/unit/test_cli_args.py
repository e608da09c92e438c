"""The CLI's argument handling, error lines and pure pieces that need no server."""

from __future__ import annotations


import pytest
import yaml

from kubelab.cli import main as cli_main
from kubelab.cli.context import CliError, api_error_line
from kubelab.cli.describe import describe_object
from kubelab.cli.targets import parse_targets
from kubelab.client.errors import error_for
from kubelab.testing import free_port


def run(argv, capsys):
    code = cli_main.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_help_exits_zero(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "apply" in out and "kubeconfig" in out


@pytest.mark.parametrize("argv", [["get", "po", "--bogus"], ["scale", "deploy/x"], ["apply"],
                                  ["delete", "po", "x", "--grace-period", "soon"], ["nosuchverb"]])
def test_bad_flags_are_usage_errors(argv, capsys):
    code, _, err = run(argv, capsys)
    assert code == 1 and "usage:" in err  # kubectl's exit code for usage errors


def test_unknown_resource_type(capsys):
    code, out, err = run(["--server", "http://127.0.0.1:1", "get", "foo"], capsys)
    assert code == 1 and out == ""
    assert err == 'error: the server doesn\'t have a resource type "foo"\n'


def test_missing_type(capsys):
    code, _, err = run(["--server", "http://127.0.0.1:1", "get"], capsys)
    assert code == 1 and err.startswith("error: you must specify the type of resource to get")


def test_connection_refused_line(capsys):
    port = free_port()  # nothing listens there
    code, _, err = run(["--server", f"http://127.0.0.1:{port}", "get", "pods"], capsys)
    assert code == 1
    assert err == (f"The connection to the server 127.0.0.1:{port} was refused - "
                   f"did you specify the right host or port?\n")
    assert "Traceback" not in err


def test_every_verb_group_registers(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for verb in ("get", "apply", "exec", "logs", "up", "down", "status", "trace", "timeline", "pki", "auth"):
        assert verb in out


def test_global_flags_before_or_after_the_verb():
    p = cli_main.build_parser()
    a = p.parse_args(["-n", "before", "get", "pods"])
    assert a.namespace == "before"
    a = p.parse_args(["get", "pods", "-n", "after", "-A"])
    assert a.namespace == "after" and a.all_namespaces
    a = p.parse_args(["--server", "http://x:1", "create", "deployment", "d", "--image", "i", "-n", "deep"])
    assert a.server == "http://x:1" and a.namespace == "deep"


def test_parse_targets_forms():
    t = parse_targets(["po", "a", "b"])
    assert [(x.rt.plural, x.names) for x in t] == [("pods", ["a", "b"])]
    t = parse_targets(["deploy/x", "deploy/y", "svc/z"])
    assert [(x.rt.plural, x.names) for x in t] == [("deployments", ["x", "y"]), ("services", ["z"])]
    t = parse_targets(["po,svc"])
    assert [x.rt.plural for x in t] == ["pods", "services"]
    assert {x.rt.plural for x in parse_targets(["all"])} == {"pods", "services", "deployments", "replicasets",
                                                           "daemonsets", "statefulsets", "jobs", "cronjobs"}
    assert parse_targets(["deployments.apps"])[0].rt.plural == "deployments"
    assert parse_targets(["deployment.apps/x"])[0].names == ["x"]
    with pytest.raises(CliError, match="only one resource type"):
        parse_targets(["po,svc", "a"])
    with pytest.raises(CliError, match="resource/name form"):
        parse_targets(["po", "po/a"])
    with pytest.raises(CliError, match='resource type "bogus"'):
        parse_targets(["bogus/a"])


def test_api_error_lines_match_kubectl():
    nf = error_for({"kind": "Status", "code": 404, "reason": "NotFound", "message": 'pods "x" not found'}, 404)
    assert api_error_line(nf) == 'Error from server (NotFound): pods "x" not found'
    inv = error_for({"code": 422, "reason": "Invalid", "message": "...",
                     "details": {"kind": "Pod", "name": "bad", "causes": [
                         {"field": "spec.containers[0].image", "message": "Required value"}]}}, 422)
    assert api_error_line(inv) == 'The Pod "bad" is invalid: spec.containers[0].image: Required value'
    two = error_for({"code": 422, "reason": "Invalid", "details": {"kind": "Service", "name": "s", "causes": [
        {"field": "a", "message": "x"}, {"field": "b", "message": "y"}]}}, 422)
    assert api_error_line(two) == 'The Service "s" is invalid: \n* a: x\n* b: y'


def test_create_generators_dry_run_need_no_server(capsys):
    code, out, _ = run(["--server", "http://127.0.0.1:1", "create", "deployment", "web",
                        "--image", "registry.local:5000/team/nginx:1.25", "--replicas", "3", "--port", "80",
                        "--dry-run=client", "-o", "yaml"], capsys)
    assert code == 0
    d = yaml.safe_load(out)
    assert d["spec"]["replicas"] == 3 and d["metadata"]["namespace"] == "default"
    assert d["spec"]["selector"]["matchLabels"] == {"app": "web"} == d["spec"]["template"]["metadata"]["labels"]
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert c == {"name": "nginx", "image": "registry.local:5000/team/nginx:1.25", "ports": [{"containerPort": 80}]}
    code, out, _ = run(["--server", "http://127.0.0.1:1", "create", "configmap", "cfg", "--from-literal", "a=1",
                        "--from-literal=b=x=y", "--dry-run=client", "-o", "json"], capsys)
    assert code == 0 and '"b": "x=y"' in out


def test_kubeconfig_verb_writes_a_loadable_file(tmp_path, capsys):
    from kubelab.client.kubeconfig import load
    path = tmp_path / "kc"
    code, out, _ = run(["kubeconfig", "--server", "http://127.0.0.1:7443", "-o", str(path)], capsys)
    assert code == 0 and str(path) in out
    assert load(str(path)).server == "http://127.0.0.1:7443"
    other = tmp_path / "theirs"
    other.write_text("apiVersion: v1\nkind: Config\ncurrent-context: prod\n")
    code, _, err = run(["kubeconfig", "--server", "http://x:1", "-o", str(other)], capsys)
    assert code == 1 and "not a kubelab kubeconfig" in err
    assert "prod" in other.read_text()


def test_describe_page_pure():
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web", "tier": "fe"},
                        "annotations": {"note": "hi"}, "uid": "u1", "creationTimestamp": "2026-01-01T00:00:00Z"},
           "spec": {"nodeName": "node-1", "containers": [{"name": "nginx", "image": "nginx:1.25",
                                                          "ports": [{"containerPort": 80, "protocol": "TCP"}]}]},
           "status": {"phase": "Running", "podIP": "10.244.1.7", "hostIP": "192.168.56.11",
                      "conditions": [{"type": "Ready", "status": "True"}],
                      "containerStatuses": [{"name": "nginx", "ready": True, "restartCount": 2,
                                             "state": {"running": {"startedAt": "2026-01-01T00:00:05Z"}}}]}}
    events = [{"type": "Normal", "reason": "Scheduled", "message": "Successfully assigned shop/web to node-1",
               "source": {"component": "default-scheduler"}, "lastTimestamp": "2026-01-01T00:00:01Z"}]
    from datetime import datetime, timezone
    text = describe_object(pod, namespaced=True, events=events,
                           now=datetime(2026, 1, 1, 0, 1, 1, tzinfo=timezone.utc))
    lines = text.splitlines()
    assert lines[0].split() == ["Name:", "web"] and lines[1].split() == ["Namespace:", "shop"]
    assert "Labels:" in lines[2] and "app=web" in lines[2] and lines[3].strip() == "tier=fe"
    assert "Node:" in text and "node-1/192.168.56.11" in text
    assert "Restart Count:  2" in text and "Running" in text
    assert any(line.split()[:2] == ["Ready", "True"] for line in lines)
    ev = lines[lines.index("Events:") + 3].split()
    assert ev[:4] == ["Normal", "Scheduled", "60s", "default-scheduler"]
    empty = describe_object({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}},
                            namespaced=True, events=[])
    assert "Events:" in empty and "<none>" in empty.splitlines()[-1]


def test_describe_deployment_names_new_and_old_replicasets():
    d = {"kind": "Deployment", "metadata": {"name": "demo", "namespace": "x", "uid": "U"},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}},
                  "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "w", "image": "i"}]}}}}

    def rs(name, rev, n, owner="U"):
        return {"metadata": {"name": name, "ownerReferences": [{"uid": owner, "controller": True}],
                             "annotations": {"deployment.kubernetes.io/revision": str(rev)}},
                "spec": {"replicas": n}, "status": {"replicas": n}}

    text = describe_object(d, namespaced=True, events=[],
                           replicasets=[rs("demo-b", 2, 2), rs("demo-a", 1, 1), rs("demo-0", 0, 0),
                                        rs("other", 9, 1, owner="V")])
    lines = {line.split(":")[0]: line.split(":", 1)[1].strip() for line in text.splitlines() if ":" in line}
    assert lines["NewReplicaSet"] == "demo-b (2/2 replicas created)"
    assert lines["OldReplicaSets"] == "demo-a (1/1 replicas created)"
