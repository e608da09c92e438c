"""kubelab netpol reach, the pure part: prediction from the model, the side-by-side tables and
the disagreement marks (the probing itself runs in tests/e2e/test_netpol.py)."""

from __future__ import annotations

from kubelab.lab import reach
from kubelab.netpol.examples import netpol, ns_obj, pod_obj
from kubelab.netpol.model import cluster_from_objects


def test_predict_render_and_mark_disagreements():
    pods = [pod_obj("x", "a"), pod_obj("x", "b")]
    cluster = cluster_from_objects(pods, [ns_obj("x")], [netpol("deny", podSelector={"matchLabels": {"pod": "a"}})])
    targets = [reach.Target(p.key, p.ip, p.ip) for p in cluster.pods]
    predicted = reach.predict(cluster, list(cluster.pods), targets, 80, "TCP")
    assert predicted.cells == {("x/a", "x/a"): True, ("x/a", "x/b"): True, ("x/b", "x/a"): False, ("x/b", "x/b"): True}
    measured = reach.Matrix(predicted.sources, predicted.targets, {**predicted.cells, ("x/b", "x/a"): True})
    assert reach.disagreements(predicted, measured) == [("x/b", "x/a")]
    text = reach.render(predicted, measured, title="t")
    lines = text.splitlines()
    assert lines[0] == "t" and lines[4].split() == ["x/b", "X", ".", "x/b", ".!", "."]
    assert "x/b -> x/a: predicted blocked, measured allowed" in text
    assert reach.render(predicted, predicted, title="t").rstrip().endswith("predicted and measured agree")


def test_probe_once_on_loopback():
    import socket
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
        assert reach.probe_once("127.0.0.1", port, "TCP", 1.0)
    assert not reach.probe_once("127.0.0.1", port, "TCP", 1.0)
