"""`kubelab netpol reach`: predicted vs measured reachability between pods (kubelab.lab.reach)."""

from __future__ import annotations

from .context import CliError, Context
from .lab import _lab_flags


def register(sub) -> None:
    p = sub.add_parser("netpol", help="NetworkPolicy tools for the lab (reach)")
    verbs = p.add_subparsers(dest="netpol_verb", metavar="VERB", required=True)
    r = verbs.add_parser("reach", help="reachability matrix between pods: predicted from the policies and measured",
                         description="Predict, from the NetworkPolicies, which pod can open a connection to which "
                                     "(port/protocol), then measure it by probing from inside every pod; print both "
                                     "truth tables side by side and mark the disagreements with !. Exit 1 when they "
                                     "disagree. Needs root (it enters the pods' network namespaces).")
    _lab_flags(r)
    r.add_argument("-n", "--namespace", dest="reach_namespaces", action="append", metavar="NS",
                   help="only the pods of this namespace (repeat for more; default: every namespace but kube-system)")
    r.add_argument("--port", type=int, default=80, help="destination port (default 80)")
    r.add_argument("--protocol", type=str.upper, choices=("TCP", "UDP", "SCTP"), default="TCP")
    r.add_argument("--timeout", type=float, default=1.0, help="seconds per probe (default 1)")
    r.set_defaults(func=run_reach)


async def run_reach(ctx: Context) -> int:
    from kubelab.lab.lab import LabError
    from kubelab.lab.reach import reach
    from kubelab.lab.topology import CommandError, PlanError
    a = ctx.args
    if not 0 < a.port < 65536:
        raise CliError(f"--port {a.port}: must be between 1 and 65535, inclusive")
    if not 0 < a.timeout <= 30:
        raise CliError(f"--timeout {a.timeout}: must be more than 0 and at most 30 seconds")
    namespaces = a.reach_namespaces or ([a.namespace] if getattr(a, "namespace", None) else None)
    try:
        return await reach(name=a.name, root_dir=a.root_dir, namespaces=namespaces, port=a.port,
                           protocol=a.protocol, timeout=a.timeout)
    except (LabError, PlanError, CommandError) as e:
        raise CliError(str(e)) from None
