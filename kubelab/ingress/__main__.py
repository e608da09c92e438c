"""`python -m kubelab.ingress`: the ingress controller (what the ingress-nginx pods run).

Examples:
  python -m kubelab.ingress --publish-service ingress-nginx/ingress-nginx-controller   # in a pod
  python -m kubelab.ingress --kubeconfig ~/.kube/config --conf-dir /tmp/ing --listen 127.0.0.1 \\
      --http-port 8080 --https-port 8443
  python -m kubelab.ingress --render objects.yaml    # print the nginx.conf these objects give
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

import yaml

from kubelab import flags
from kubelab.ingress import gateway, model, nginxconf
from kubelab.ingress.controller import Controller, Nginx

log = logging.getLogger("kubelab.ingress")


def build_parser() -> argparse.ArgumentParser:
    from kubelab.client.kubeconfig import add_connection_args

    p = argparse.ArgumentParser(
        prog="python -m kubelab.ingress",
        description="Ingress controller: Ingresses, Services, EndpointSlices and TLS Secrets → nginx.conf → "
                    "nginx -t → graceful reload; fills each Ingress's status.loadBalancer.")
    add_connection_args(p)
    p.add_argument("--controller-class", default=model.CONTROLLER,
                   help=f"IngressClass spec.controller handled (default {model.CONTROLLER})")
    p.add_argument("--gateway-controller-name", default=gateway.CONTROLLER_NAME,
                   help=f"GatewayClass spec.controllerName handled (default {gateway.CONTROLLER_NAME})")
    p.add_argument("--publish-service", metavar="NS/NAME",
                   help="the Service whose load balancer addresses go into each Ingress's status")
    p.add_argument("--conf-dir", default="/etc/nginx", help="nginx.conf and certs/ (default /etc/nginx)")
    p.add_argument("--run-dir", default="/tmp/nginx", help="pid and temp files (default /tmp/nginx)")
    p.add_argument("--listen", default="", help="address nginx binds (default: all)")
    p.add_argument("--http-port", type=int, default=80)
    p.add_argument("--https-port", type=int, default=443)
    p.add_argument("--health-port", type=int, default=nginxconf.HEALTH_PORT, help="/healthz (default 10254)")
    p.add_argument("--default-backend-port", type=int, default=nginxconf.DEFAULT_BACKEND_PORT)
    p.add_argument("--nginx", default="nginx", help="the nginx binary (default: nginx on PATH)")
    p.add_argument("--render", metavar="FILE",
                   help="print the nginx.conf for the objects of a YAML file and exit (no cluster, no nginx)")
    flags.add_verbosity_flag(p)
    return p


def _paths(args: argparse.Namespace) -> nginxconf.Paths:
    return nginxconf.Paths(conf_dir=args.conf_dir, run_dir=args.run_dir, listen=args.listen,
                           http_port=args.http_port, https_port=args.https_port, health_port=args.health_port,
                           default_backend_port=args.default_backend_port)


def render_file(path: str, paths: nginxconf.Paths, controller: str,
                controller_name: str = gateway.CONTROLLER_NAME) -> str:
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]
    items = [i for d in docs for i in (d.get("items") or [] if d.get("kind", "").endswith("List") else [d])]
    kinds: dict[str, list] = {k: [] for k in ("Ingress", "IngressClass", "Service", "EndpointSlice", "Secret",
                                              "GatewayClass", "Gateway", "HTTPRoute", "ReferenceGrant")}
    for o in items:
        kinds.get(o.get("kind", ""), []).append(o)
    config, notices = model.build(ingresses=kinds["Ingress"], classes=kinds["IngressClass"],
                                  services=kinds["Service"], endpointslices=kinds["EndpointSlice"],
                                  secrets=kinds["Secret"], controller=controller)
    for n in notices:
        print(f"{n.type} {n.reason} ingress/{n.name} -n {n.namespace}: {n.message}", file=sys.stderr)
    gw = gateway.build(gatewayclasses=kinds["GatewayClass"], gateways=kinds["Gateway"], httproutes=kinds["HTTPRoute"],
                       services=kinds["Service"], endpointslices=kinds["EndpointSlice"], secrets=kinds["Secret"],
                       referencegrants=kinds["ReferenceGrant"],
                       reserved_ports=(paths.http_port, paths.https_port, paths.health_port,
                                       paths.default_backend_port), controller=controller_name)
    return nginxconf.render(config, paths, gw.config)


async def _main(args: argparse.Namespace) -> int:
    from kubelab.client import connect
    from kubelab.client.record import EventRecorder

    try:
        client = await connect(args, user_agent="kubelab-ingress")
    except Exception as e:  # noqa: BLE001 - a clear message, not a traceback
        print(f"error: cannot connect to the API server: {e}", file=sys.stderr)
        return 2
    nginx = Nginx(_paths(args), args.nginx)
    ctl = Controller(client, nginx, controller=args.controller_class, publish_service=args.publish_service,
                     recorder=EventRecorder(client, "nginx-ingress-controller"),
                     gateway_controller=args.gateway_controller_name)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def synced() -> None:
        print(f"kubelab-ingress synced: nginx.conf at {nginx.conf}, http={args.listen or '*'}:{args.http_port} "
              f"https={args.listen or '*'}:{args.https_port} health={args.health_port}", file=sys.stderr, flush=True)

    run = asyncio.create_task(ctl.run(on_synced=synced))
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({run, stopper}, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if run.done() and not run.cancelled() and run.exception() is not None:
        print(f"error: {run.exception()}", file=sys.stderr)
        code = 1
    run.cancel()
    stopper.cancel()
    nginx.stop()
    return code


def main(argv: list[str] | None = None) -> int:
    args = flags.parse_args(build_parser(), argv, "ingress-nginx")
    logging.basicConfig(level=flags.log_level(args.v), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.render:
        try:
            sys.stdout.write(render_file(args.render, _paths(args), args.controller_class, args.gateway_controller_name))
        except (OSError, yaml.YAMLError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0
    try:
        return asyncio.run(_main(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
