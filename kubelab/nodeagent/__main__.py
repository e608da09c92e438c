"""`python -m kubelab.nodeagent`: kubelab's kubelet for one node.

Several agents can share a host (the lab runs each inside its own node network namespace,
e.g. `nsenter --net=/run/netns/<node> python -m kubelab.nodeagent ...`): every path is per
node (root dir, netns name prefix, CNI conf dir, IPAM data dir). Stopping the agent leaves
its pods running; the next agent re-adopts them.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import sys

from kubelab import flags, quantity
from kubelab.client import KubeconfigError, add_connection_args, connect

from . import tls
from .agent import Config, NodeAgent
from .sandbox import DnsSettings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m kubelab.nodeagent", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_connection_args(p)
    p.add_argument("--node-name", "--hostname-override", dest="node_name", required=True,
                   help="this node's name (the Node object)")
    p.add_argument("--node-ip", required=True, help="this node's InternalIP (other nodes route pods via it)")
    p.add_argument("--root-dir", default=None, help="state dir (default /var/lib/kubelab/nodeagent/<node>)")
    p.add_argument("--cni-conf-dir", default=None, help="CNI conf dir (default <root-dir>/cni/net.d; "
                   "/etc/cni/net.d on VMs); the node's conflist is (re)written there from its podCIDR")
    p.add_argument("--cni-bin-dir", default=None, help="CNI plugin dir (default <root-dir>/cni/bin; "
                   "kubelab-bridge and kubelab-ipam are linked in if missing)")
    p.add_argument("--pod-cidr-from-node", action="store_true", default=True,
                   help="take the pod CIDR from the Node's spec.podCIDR, waiting for it (the default)")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16", help="pod network, not masqueraded")
    p.add_argument("--cluster-dns", default="10.96.0.10", help="nameserver for dnsPolicy ClusterFirst")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--resolv-conf", default="/etc/resolv.conf", help="the node's resolv.conf (dnsPolicy Default)")
    p.add_argument("--address", default="0.0.0.0", help="address of the logs/exec API")
    p.add_argument("--port", type=int, default=10250, help="port of the logs/exec API")
    p.add_argument("--tls-cert-file", default=None, help="serving certificate of the logs/exec API (PEM; its "
                   "SANs must hold the node IP); with the two below, HTTPS instead of plain HTTP")
    p.add_argument("--tls-private-key-file", default=None, help="its private key (PEM)")
    p.add_argument("--client-ca-file", default=None, help="CA of the client certificates; only the API "
                   "server's kubelet client (or system:masters) may call logs/exec")
    p.add_argument("--insecure", action="store_true",
                   help="allow the logs/exec API over plain HTTP on a non-loopback --address (without TLS "
                        "flags anyone who reaches the node could exec into its pods)")
    p.add_argument("--netns-prefix", default=None, help="pod netns name prefix (default '<node>-')")
    p.add_argument("--backoff-base", type=float, default=10.0, help="CrashLoopBackOff initial delay, seconds")
    p.add_argument("--lease-seconds", type=float, default=10.0, help="Lease renewal interval")
    p.add_argument("--hide-path", action="append", default=[], metavar="PATH",
                   help="a node path no container may see (repeatable; the lab passes its directory). "
                        "Always hidden: the root dir, the directories of --kubeconfig and the TLS files, "
                        "/root, /home, /etc/kubelab, /var/lib/kubelab, /var/lib/etcd ... (docs/security.md)")
    p.add_argument("--container-log-max-size", default="10Mi", type=_size,
                   help="rotate a container's log once it is over this size (as the kubelet; default 10Mi)")
    p.add_argument("--container-log-max-files", default=5, type=int,
                   help="log files kept per container, the current one included (default 5)")
    flags.add_verbosity_flag(p, extra=("--verbose",))
    args = flags.parse_args(p, argv, "kubelet")
    try:
        ipaddress.ip_address(args.node_ip)
    except ValueError:
        p.error(f"--node-ip {args.node_ip!r} is not an IP address")
    try:
        args.tls = tls.from_flags(args.tls_cert_file, args.tls_private_key_file, args.client_ca_file)
    except ValueError as e:
        p.error(str(e))
    if args.tls is None and not args.insecure and not _loopback(args.address):
        p.error(f"refusing to serve logs and exec over plain HTTP on {args.address}: give --tls-cert-file, "
                "--tls-private-key-file and --client-ca-file, or --address 127.0.0.1, or --insecure")
    return args


def _size(text: str) -> int:
    """A byte size as the kubelet's flag takes it: a resource quantity (`10Mi`, `1G`, `512Ki`)."""
    try:
        size = quantity.value(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 10Mi") from None
    if size <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the size must be positive")
    return size


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def hidden_paths(args: argparse.Namespace, root: str) -> tuple[str, ...]:
    """What containers must not see: the given paths, the agent's state, the directories of
    every credential it was handed (kubeconfig, serving certificate, client CA)."""
    paths = [os.path.abspath(p) for p in getattr(args, "hide_path", None) or []]
    paths.append(os.path.abspath(root))
    for f in (getattr(args, "kubeconfig", None), args.tls_cert_file, args.tls_private_key_file,
              args.client_ca_file):
        if f:
            paths.append(os.path.dirname(os.path.abspath(f)))
    return tuple(dict.fromkeys(p for p in paths if p != "/"))


def config_from_args(args: argparse.Namespace) -> Config:
    root = args.root_dir or os.path.join("/var/lib/kubelab/nodeagent", args.node_name)
    return Config(node_name=args.node_name, node_ip=args.node_ip, root_dir=os.path.abspath(root),
                  cni_conf_dir=args.cni_conf_dir or os.path.join(root, "cni", "net.d"),
                  cni_bin_dir=args.cni_bin_dir or os.path.join(root, "cni", "bin"), port=args.port,
                  address=args.address,
                  netns_prefix=args.netns_prefix if args.netns_prefix is not None else f"{args.node_name}-",
                  cluster_cidr=args.cluster_cidr or None, backoff_base=args.backoff_base,
                  lease_seconds=args.lease_seconds, tls=getattr(args, "tls", None),
                  hide_paths=hidden_paths(args, root),
                  container_log_max_size=args.container_log_max_size,
                  container_log_max_files=max(args.container_log_max_files, 2),
                  dns=DnsSettings(cluster_dns=args.cluster_dns, cluster_domain=args.cluster_domain,
                                  node_resolv=args.resolv_conf))


async def amain(args: argparse.Namespace) -> int:
    client = await connect(args, user_agent=f"kubelab-nodeagent/{args.node_name}")
    agent = NodeAgent(client, config_from_args(args))
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, main.cancel)
    try:
        await agent.run()
    except asyncio.CancelledError:
        logging.getLogger("kubelab.nodeagent").info("stopping (pods keep running)")
    finally:
        await agent.close()
        await client.aclose()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=flags.log_level(args.v),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if os.geteuid() != 0:
        print("kubelab.nodeagent: must run as root (network namespaces, mounts)", file=sys.stderr)
        return 1
    try:
        return asyncio.run(amain(args))
    except KubeconfigError as e:
        print(f"kubelab.nodeagent: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
