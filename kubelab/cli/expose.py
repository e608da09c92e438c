"""`kubelab expose deployment NAME --port P`: a Service selecting the workload's pods (the
selector is taken from the deployment/replicaset selector, a service's selector, or a pod's
labels, as kubectl does)."""

from __future__ import annotations

from kubelab.resources import ResourceType, lookup

from .apply import _report
from .context import CliError, Context
from .targets import parse_targets


def register(sub) -> None:
    p = sub.add_parser("expose", help="create a Service for a deployment, replicaset, service or pod",
                       description="Expose a resource as a new Service: expose deployment NAME --port P "
                                   "[--target-port T] [--type ClusterIP|NodePort] [--name N].")
    p.add_argument("args", nargs="+", metavar="TYPE[/NAME]")
    p.add_argument("--port", type=int, default=None, help="the service port (default: the pods' first port)")
    p.add_argument("--target-port", default=None, help="the container port (number or name; default: --port)")
    p.add_argument("--type", dest="service_type", default="ClusterIP",
                   choices=("ClusterIP", "NodePort", "LoadBalancer"), help="service type")
    p.add_argument("--name", dest="service_name", default=None, help="service name (default: the resource's)")
    p.add_argument("--protocol", default="TCP", choices=("TCP", "UDP", "SCTP"))
    p.add_argument("--port-name", default=None, help="name of the service port")
    p.add_argument("--selector", default=None, help="use this selector instead of the resource's (k=v,...)")
    p.add_argument("--cluster-ip", default=None, help="a chosen ClusterIP (or None for headless)")
    p.add_argument("-o", "--output", default=None, help="name|yaml|json")
    p.add_argument("--dry-run", choices=("none", "client", "server"), default="none", nargs="?", const="client")
    p.set_defaults(func=run)


def selector_of(rt: ResourceType, obj: dict) -> dict:
    """The pods' labels a service for `obj` must select (kubectl's introspection)."""
    spec = obj.get("spec") or {}
    if rt.plural in ("deployments", "replicasets"):
        sel = spec.get("selector") or {}
        if sel.get("matchExpressions"):
            raise CliError("couldn't retrieve selectors via --selector flag or introspection: "
                           "the selector has matchExpressions, which a Service cannot express")
        return dict(sel.get("matchLabels") or {})
    if rt.plural == "services":
        return dict(spec.get("selector") or {})
    if rt.plural == "pods":
        return dict((obj.get("metadata") or {}).get("labels") or {})
    raise CliError(f"cannot expose a {rt.kind}")


def first_port(rt: ResourceType, obj: dict) -> int | None:
    spec = obj.get("spec") or {}
    if rt.plural == "services":
        ports = spec.get("ports") or []
        return ports[0].get("port") if ports else None
    pod_spec = spec if rt.plural == "pods" else ((spec.get("template") or {}).get("spec") or {})
    for c in pod_spec.get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("containerPort"):
                return p["containerPort"]
    return None


def service_object(*, name: str, namespace: str, selector: dict, labels: dict, port: int, target_port,
                   protocol: str = "TCP", service_type: str = "ClusterIP", port_name: str | None = None,
                   cluster_ip: str | None = None) -> dict:
    sp: dict = {"port": port, "protocol": protocol, "targetPort": target_port}
    if port_name:
        sp["name"] = port_name
    spec: dict = {"ports": [sp], "selector": selector, "type": service_type}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    meta: dict = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def _target_port(value: str | None, port: int):
    if value is None:
        return port
    return int(value) if value.isdigit() else value


async def run(ctx: Context) -> int:
    args = ctx.args
    targets = parse_targets(args.args, verb="expose")
    if len(targets) != 1 or len(targets[0].names) != 1:
        raise CliError("expose needs exactly one resource: TYPE NAME or TYPE/NAME")
    rt, name = targets[0].rt, targets[0].names[0]
    obj = await ctx.client.get(rt, name, namespace=ctx.ns_for(rt))
    if args.selector:
        selector = dict(kv.split("=", 1) for kv in args.selector.split(",") if "=" in kv)
    else:
        selector = selector_of(rt, obj)
    if not selector:
        raise CliError(f"couldn't find a selector for {rt.plural}/{name}: give --selector")
    port = args.port or first_port(rt, obj)
    if not port:
        raise CliError("couldn't find port via --port flag or introspection")
    svc = service_object(name=args.service_name or name, namespace=obj["metadata"].get("namespace") or ctx.namespace,
                         selector=selector, labels=(obj.get("metadata") or {}).get("labels") or {},
                         port=port, target_port=_target_port(args.target_port, port), protocol=args.protocol,
                         service_type=args.service_type, port_name=args.port_name, cluster_ip=args.cluster_ip)
    svc_rt = lookup("services")
    dry = args.dry_run or "none"
    if dry != "client":
        svc = await ctx.client.create(svc_rt, svc, namespace=svc["metadata"]["namespace"], dry_run=dry == "server")
    _report(ctx, svc_rt, svc, "exposed", args.output, dry)
    return 0
