"""The lab's verbs in the `kubelab` CLI: up, down, status, logs, trace, timeline.

Thin: parse flags, call kubelab.lab, turn its LabError into the CLI's one-line error.
"""

from __future__ import annotations

import argparse

from kubelab.flags import duration_flag

from .context import CliError, Context


def _lab_flags(p: argparse.ArgumentParser) -> None:
    from kubelab.lab.lab import DEFAULT_ROOT
    p.add_argument("--name", default="lab", help="the lab's name (default: lab); part of every netns/link name")
    p.add_argument("--root-dir", default=DEFAULT_ROOT,
                   help=f"where labs keep their state (default: {DEFAULT_ROOT}, or $KUBELAB_ROOT)")


def register(sub) -> None:
    p = sub.add_parser("up", help="start a lab: a multi-node cluster in network namespaces on this host",
                       description="Build the node network (bridge + one netns per node), start etcd, the API "
                                   "server, controllers and scheduler on the control plane and a node agent + "
                                   "proxy on each worker, then the DNS add-on. Needs root.")
    _lab_flags(p)
    p.add_argument("--workers", type=int, default=2, help="number of worker nodes (default 2)")
    p.add_argument("--proxy-mode", choices=("nftables", "iptables"), default="nftables", help="proxy dataplane")
    p.add_argument("--demo", action="store_true",
                   help="also run an nginx Deployment with a ClusterIP and a NodePort Service (namespace demo)")
    p.add_argument("--no-kubeconfig", action="store_true",
                   help="do not merge the lab's context (kubelab-<lab>) into your kubeconfig")
    p.add_argument("--node-subnet", default="192.168.56.0/24", help="node network (default 192.168.56.0/24)")
    p.add_argument("--lb-pool", default="", metavar="FIRST-LAST",
                   help="LoadBalancer addresses, inside the node network (default .200-.250 of it)")
    p.add_argument("--node-monitor-grace-period", default="", metavar="DURATION",
                   type=lambda v: v if not v or duration_flag(v) >= 0 else v,
                   help="how long a silent node stays Ready (the controller manager's flag; default 40s)")
    p.add_argument("--no-dns", action="store_true", help="do not apply the DNS add-on")
    p.add_argument("--ingress", action="store_true",
                   help="also install the ingress add-on: nginx ingress controller pods (namespace ingress-nginx), "
                        "IngressClass nginx (default); see docs/ingress.md")
    p.add_argument("--tls", dest="tls", action="store_true", default=True,
                   help="(the default) a secure lab: a lab CA (kubelab pki), etcd and the API server on mutual "
                        "TLS, RBAC + Node authorization, each component with its own certificate, node agents on "
                        "HTTPS, service-account tokens in pods; your kubeconfig gets the admin certificate")
    p.add_argument("--insecure", dest="tls", action="store_false",
                   help="plain HTTP everywhere and everyone allowed (to watch the raw traffic with tcpdump)")
    p.add_argument("--timeout", type=duration_flag, default=120.0,
                   help="how long to wait for each boot phase: seconds or a Go duration such as 2m (default 2m)")
    p.add_argument("--etcd-storage", choices=("tmpfs", "disk"), default="tmpfs",
                   help="where etcd keeps its data: tmpfs (default: fast, lost at `down`) or disk (kept by "
                        "`down --keep-data`)")
    p.set_defaults(func=run_up)

    p = sub.add_parser("down", help="stop a lab and remove everything `up` made")
    _lab_flags(p)
    p.add_argument("--keep-data", action="store_true", help="keep the lab dir (etcd data, logs)")
    p.set_defaults(func=run_down)

    p = sub.add_parser("status", help="show each lab component's health")
    _lab_flags(p)
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=run_status)

    p = sub.add_parser("logs", help="show a lab component's log, or a pod's (like kubectl logs)",
                       description="kubelab logs COMPONENT [--node N]: a lab component's log (etcd, apiserver, "
                                   "controllers, scheduler, nodeagent, proxy, netpol, supervisor). Any other name, or "
                                   "pod/NAME, is a pod: its container's log, as `kubectl logs`.")
    _lab_flags(p)
    p.add_argument("component", metavar="COMPONENT|POD",
                   help="etcd, apiserver, controllers, scheduler, nodeagent, proxy, netpol, supervisor; else a pod")
    p.add_argument("--node", help="node name (control-plane, worker-1, ...), for components")
    p.add_argument("--tail", type=int, default=None, help="only the last N lines")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument("-c", "--container", default=None, help="pods: the container (default: the only one)")
    p.add_argument("-p", "--previous", action="store_true", help="pods: the previous container's log")
    p.set_defaults(func=run_logs)

    p = sub.add_parser("trace", help="show the path of a request from a pod, hop by hop",
                       description="Trace a request from POD to a Service (name or ClusterIP) or a pod IP: "
                                   "resolv.conf and search expansion, the live DNS answer, the node's proxy rules "
                                   "and the chosen endpoint, the route to the destination node, the veth into the "
                                   "destination pod; with the command that shows each hop.")
    _lab_flags(p)
    p.add_argument("pod", help="source pod name (namespace with -n)")
    p.add_argument("target", help="SERVICE[.NAMESPACE][:PORT], a ClusterIP[:PORT] or a pod IP[:PORT]")
    p.add_argument("--no-dns", action="store_true", help="do not ask the DNS server live")
    p.set_defaults(func=run_trace)

    p = sub.add_parser("get-kubeconfig", help="print a lab's kubeconfig (as `kind get kubeconfig`)",
                       description="Print the lab's admin kubeconfig (cluster, user and context kubelab-<lab>, "
                                   "credentials embedded) on stdout; `kubelab kubeconfig --export` merges it into "
                                   "your kubeconfig instead.")
    _lab_flags(p)
    p.set_defaults(func=run_get_kubeconfig)

    p = sub.add_parser("timeline", help="show the lab's boot sequence as it happened")
    _lab_flags(p)
    p.add_argument("--since-up", action="store_true", help="only events since the last `up`")
    p.set_defaults(func=run_timeline)


def _wrap(coro_fn):
    async def run(ctx: Context) -> int:
        from kubelab.lab.lab import LabError
        from kubelab.lab.topology import CommandError, PlanError
        try:
            return await coro_fn(ctx)
        except (LabError, PlanError, CommandError) as e:
            raise CliError(str(e)) from None
    return run


@_wrap
async def run_up(ctx: Context) -> int:
    from kubelab.lab.lab import UpOptions, up
    a = ctx.args
    return await up(UpOptions(name=a.name, workers=a.workers, proxy_mode=a.proxy_mode, root_dir=a.root_dir,
                              demo=a.demo, write_kubeconfig=not a.no_kubeconfig, node_subnet=a.node_subnet,
                              timeout=a.timeout, dns=not a.no_dns, ingress=a.ingress,
                              etcd_storage=a.etcd_storage, tls=a.tls, lb_pool=a.lb_pool,
                              node_monitor_grace_period=a.node_monitor_grace_period))


@_wrap
async def run_down(ctx: Context) -> int:
    from kubelab.lab.lab import down
    return await down(name=ctx.args.name, root_dir=ctx.args.root_dir, keep_data=ctx.args.keep_data)


@_wrap
async def run_get_kubeconfig(ctx: Context) -> int:
    from kubelab.lab.lab import lab_kubeconfig
    ctx.out(lab_kubeconfig(ctx.args.name, ctx.args.root_dir))
    return 0


@_wrap
async def run_export_kubeconfig(ctx: Context) -> int:
    from kubelab.lab.lab import export_kubeconfig, lab_kubeconfig
    a = ctx.args
    if a.output == "-":
        ctx.out(lab_kubeconfig(a.name, a.root_dir))
        return 0
    if a.output:
        raise CliError("--export writes into your kubeconfig ($KUBECONFIG's first file or ~/.kube/config): "
                       "use KUBECONFIG=FILE, or -o - to print it")
    return export_kubeconfig(a.name, a.root_dir, write=ctx.line)


@_wrap
async def run_status(ctx: Context) -> int:
    from kubelab.lab.lab import status
    return await status(name=ctx.args.name, root_dir=ctx.args.root_dir, as_json=ctx.args.output == "json")


LAB_COMPONENTS = ("etcd", "apiserver", "controllers", "scheduler", "nodeagent", "proxy", "netpol", "loadbalancer",
                  "speaker", "supervisor")


async def run_logs(ctx: Context) -> int:
    a = ctx.args
    if a.component not in LAB_COMPONENTS:
        from kubelab.client import NotFound

        from .podio import run_pod_logs
        try:
            return await run_pod_logs(ctx, a.component, container=a.container, follow=a.follow, tail=a.tail,
                                      previous=a.previous)
        except NotFound:
            raise CliError(f"no log for {a.component!r}: not a lab component ({', '.join(LAB_COMPONENTS)}) "
                           f"nor a pod in namespace {ctx.namespace!r}") from None
    return await _run_component_logs(ctx)


@_wrap
async def _run_component_logs(ctx: Context) -> int:
    from kubelab.lab.lab import logs
    a = ctx.args
    return await logs(name=a.name, root_dir=a.root_dir, component=a.component, node=a.node, tail=a.tail,
                      follow=a.follow)


@_wrap
async def run_trace(ctx: Context) -> int:
    from kubelab.lab.trace import trace
    a = ctx.args
    return await trace(name=a.name, root_dir=a.root_dir, pod=a.pod, target=a.target,
                       namespace=getattr(a, "namespace", None) or "default", ask_dns=not a.no_dns)


@_wrap
async def run_timeline(ctx: Context) -> int:
    from kubelab.lab.timeline import timeline
    return await timeline(name=ctx.args.name, root_dir=ctx.args.root_dir)
