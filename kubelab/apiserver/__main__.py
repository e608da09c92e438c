"""`python -m kubelab.apiserver`: the API server, the only component that talks to etcd."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import ssl
import sys
from dataclasses import asdict

import uvicorn

from kubelab import flags

from . import nodeproxy
from .app import SETTINGS_ENV, Settings, create_app
from .externalips import parse_cidrs
from .flags import add_security_args, security_settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m kubelab.apiserver",
        description="The kubelab API server: Kubernetes REST paths, objects, list+watch, on etcd.")
    p.add_argument("--etcd-servers", default="http://127.0.0.1:2379",
                   help="etcd client URL(s), comma-separated (default: %(default)s)")
    p.add_argument("--bind-address", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", "--secure-port", dest="port", type=int, default=6443,
                   help="port to listen on (default: %(default)s)")
    p.add_argument("--advertise-address", default=None,
                   help="address published in the `kubernetes` Endpoints (default: the bind address, "
                        "or 127.0.0.1 when binding to 0.0.0.0)")
    p.add_argument("--service-cluster-ip-range", default="10.96.0.0/12", help="(default: %(default)s)")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16", help="pod network, published in kubeadm-config")
    p.add_argument("--service-external-ip-cidrs", default="",
                   help="comma-separated CIDRs Services may claim as spec.externalIPs (default: none; node, "
                        "API server, service and pod addresses are refused regardless)")
    p.add_argument("--cluster-domain", default="cluster.local", help="(default: %(default)s)")
    p.add_argument("--bookmark-interval", type=float, default=5.0,
                   help="seconds between BOOKMARK events on quiet watches (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1,
                   help="server processes sharing the port (each with its own watch cache; default: %(default)s)")
    flags.add_verbosity_flag(p, extra=("--verbose",))  # --v=3 and up: log every request, as kube-apiserver
    add_security_args(p)
    g = p.add_argument_group("node agents (as kube-apiserver's --kubelet-*)")
    g.add_argument("--kubelet-client-certificate", default=None,
                   help="client certificate for node agents' logs/exec API; with it, HTTPS to port 10250")
    g.add_argument("--kubelet-client-key", default=None, help="its key")
    g.add_argument("--kubelet-certificate-authority", default=None,
                   help="CA verifying the node agents' serving certificates (default: not verified)")
    return flags.parse_args(p, argv, "kube-apiserver")

KEEP_ALIVE_SECONDS = 60


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        ipaddress.ip_network(args.service_cluster_ip_range)
        ipaddress.ip_network(args.cluster_cidr)
        external_ip_cidrs = [str(n) for n in parse_cidrs(args.service_external_ip_cidrs)]
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    advertise = args.advertise_address or (args.bind_address if args.bind_address != "0.0.0.0" else "127.0.0.1")
    logging.basicConfig(level=flags.log_level(args.v), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings(etcd_servers=args.etcd_servers, advertise_address=advertise, secure_port=args.port,
                        service_cidr=args.service_cluster_ip_range, pod_cidr=args.cluster_cidr,
                        dns_domain=args.cluster_domain, bookmark_interval=args.bookmark_interval,
                        service_external_ip_cidrs=external_ip_cidrs)
    # Open watches never end by themselves: on SIGTERM give requests 3 s, then close them
    # (clients reconnect to the next API server, as from kube-apiserver).
    verbose = args.v >= 3
    common = dict(host=args.bind_address, port=args.port, log_level="info" if verbose else "warning",
                  access_log=verbose, timeout_graceful_shutdown=3,
                  # uvicorn's default (5 s) is exactly kubectl drain's eviction retry interval: the idle
                  # connection is closed as the retry reuses it, and a POST is not retried by Go's client
                  timeout_keep_alive=KEEP_ALIVE_SECONDS,
                  # wsproto: the `websockets` handshake refuses kubectl's port-forward subprotocol
                  # `SPDY/3.1+portforward.k8s.io` ('/' is not a token character); wsproto accepts it
                  ws="wsproto")
    try:
        settings.security, tls = security_settings(args)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    common.update(tls)
    if bool(args.kubelet_client_certificate) != bool(args.kubelet_client_key):
        print("error: --kubelet-client-certificate and --kubelet-client-key go together", file=sys.stderr)
        return 2
    if args.kubelet_client_certificate:
        settings.kubelet_client = {"cert_file": os.path.abspath(args.kubelet_client_certificate),
                                   "key_file": os.path.abspath(args.kubelet_client_key),
                                   "ca_file": os.path.abspath(args.kubelet_certificate_authority)
                                   if args.kubelet_certificate_authority else None}
        try:
            nodeproxy.kubelet_ssl_context(**settings.kubelet_client)  # fail at start, not at the first logs
        except (ssl.SSLError, OSError) as e:
            print(f"error: cannot load the kubelet client TLS files: {e}", file=sys.stderr)
            return 2
    if args.workers > 1:
        # Worker processes import the app by name; they read the settings from the environment.
        os.environ[SETTINGS_ENV] = json.dumps(asdict(settings))
        uvicorn.run("kubelab.apiserver.app:app_from_env", factory=True, workers=args.workers, **common)
    else:
        uvicorn.run(create_app(settings), **common)
    return 0


if __name__ == "__main__":
    sys.exit(main())
