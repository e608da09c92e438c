"""`kubelab ui`: serve the live, read-only web view of a lab (kubelab.ui)."""

from __future__ import annotations

from .context import CliError, Context
from .lab import _lab_flags


def register(sub) -> None:
    p = sub.add_parser("ui", help="serve a live, read-only web view of the lab (map, packet path, timeline, rules)",
                       description="A web view of the running lab: the cluster map (live from watches), the packet "
                                   "path of `kubelab trace`, the boot timeline, each node's proxy rules. Read-only; "
                                   "listens on 127.0.0.1 unless --address says otherwise. Run with sudo for the "
                                   "packet path and the rules (they read the nodes' namespaces).")
    _lab_flags(p)
    p.add_argument("--port", type=int, default=8001, help="TCP port (default 8001)")
    p.add_argument("--address", default=None,
                   help="IP address to listen on (default 127.0.0.1; another one is reachable from other machines "
                        "and prints a warning)")
    p.add_argument("--open", action="store_true", help="open the page in a browser")
    p.set_defaults(func=run_ui)


async def run_ui(ctx: Context) -> int:
    from kubelab.lab.lab import LabError
    from kubelab.lab.topology import PlanError
    from kubelab.ui.lab import serve
    a = ctx.args
    try:
        return await serve(name=a.name, root_dir=a.root_dir, port=a.port, address=a.address, open_browser=a.open)
    except (LabError, PlanError) as e:
        raise CliError(str(e)) from None
