"""`kubelab restart COMPONENT [--node NODE]`: restart one of the lab's components, as
`systemctl restart` would on a VM (a stopped one is resumed and restarted). Needs root."""

from __future__ import annotations

from .context import Context
from .exercise import emit, kit_errors, lab_flags, need_root


def register(sub) -> None:
    from kubelab.lab.kit.control import RESTARTABLE
    p = sub.add_parser("restart", help="restart a lab component (e.g. nodeagent --node worker-1)",
                       description="Stop the component by the PID the lab's supervisor recorded (resuming it first "
                                   "if it is stopped), let the supervisor start a new one, and wait until it is "
                                   "healthy.")
    p.add_argument("component", choices=RESTARTABLE)
    p.add_argument("--node", default=None, help="the node it runs on (needed when it runs on several)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for it to be healthy again")
    lab_flags(p)
    p.set_defaults(func=run_restart)


@kit_errors
async def run_restart(ctx: Context) -> int:
    from kubelab.lab.kit.control import restart
    a = ctx.args
    need_root(f"restart {a.component}")
    d = await restart(name=a.name, root_dir=a.root_dir, component=a.component, node=a.node, timeout=a.timeout)
    emit(ctx, d, f"{d['node']}/{d['component']} restarted: was {d['was']}, now pid {d['pid']} (healthy)")
    return 0
