"""`python -m kubelab.cni`: explains the CNI plugins and prints an example config.

The plugins themselves are `kubelab-bridge` and `kubelab-ipam` (or
`python -m kubelab.cni.bridge` / `python -m kubelab.cni.ipam`): executables driven by
environment variables, not by command-line flags, as the CNI spec requires.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from kubelab.cni import spec

EXAMPLE = {
    "cniVersion": "1.1.0",
    "name": "kubelab",
    "plugins": [{
        "type": "kubelab-bridge",
        "bridge": "cni0",
        "isGateway": True,
        "isDefaultGateway": True,
        "ipMasq": True,
        "hairpinMode": True,
        "clusterCIDR": "10.244.0.0/16",
        "ipam": {
            "type": "kubelab-ipam",
            "ranges": [[{"subnet": "10.244.1.0/24"}]],
            "dataDir": "/var/lib/cni/networks",
        },
    }],
}

DESCRIPTION = f"""\
kubelab's CNI plugins: how a pod gets its network.

The runtime (kubelab's node agent, like kubelet + containerd) creates the pod's network
namespace, then runs the plugin named by the config's `type`, found in CNI_PATH:

  CNI_COMMAND      ADD | DEL | CHECK | VERSION | STATUS | GC
  CNI_CONTAINERID  the pod sandbox id           (ADD, DEL, CHECK)
  CNI_NETNS        e.g. /run/netns/<pod netns>   (ADD, CHECK; optional for DEL)
  CNI_IFNAME       interface in the pod, eth0   (ADD, DEL, CHECK)
  CNI_ARGS         K=V;K=V (e.g. IP=10.244.1.9 asks IPAM for that address)
  CNI_PATH         directories holding plugin executables
  stdin            the network config (one plugin's entry, name + cniVersion injected;
                   a whole conflist is accepted too)

It prints a result (ADD) or nothing, and exits 0; or prints
{{"cniVersion", "code", "msg", "details"}} and exits 1.  Codes: 1 incompatible version,
2 unsupported field, 3 unknown container, 4 invalid env vars, 5 I/O, 6 decode,
7 invalid network config, 11 try again later, 50/51 not available (STATUS),
100 kernel operation failed, 101 no free address, 102 interface exists, 103 CHECK
mismatch, 104 delegated plugin failed, 105 requested address unavailable.

kubelab-bridge (ADD): IPAM reserves an address -> ip_forward on -> bridge cni0 with the
gateway (first address of the node's pod CIDR) -> veth pair, node end veth<hash> on the
bridge (hairpin on), pod end eth0 -> address + default route in the pod -> masquerade
(nft table `ip kubelab-cni`) for pod traffic leaving the pod network.
kubelab-ipam: host-local style; one file per address under <dataDir>/<network name>.

Supported spec versions: {", ".join(spec.SUPPORTED_VERSIONS)}.

Try it (as root, in a scratch namespace):
  ip netns add demo
  CNI_COMMAND=ADD CNI_CONTAINERID=demo1 CNI_NETNS=/run/netns/demo CNI_IFNAME=eth0 \\
    CNI_PATH=$(dirname $(command -v kubelab-ipam)) kubelab-bridge < kubelab.conflist
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kubelab.cni", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--example-config", action="store_true",
                        help="print an example network configuration list (JSON)")
    args = parser.parse_args(argv)
    try:
        if args.example_config:
            sys.stdout.write(json.dumps(EXAMPLE, indent=2) + "\n")
        else:
            parser.print_help()
        sys.stdout.flush()
    except BrokenPipeError:          # `... | head` closed the pipe: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
