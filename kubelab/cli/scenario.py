"""`kubelab scenario list|start|check|hint|reset|solution`: break the lab, then fix it.

`check` exits 0 when the cluster works again, 1 while it is still broken (the reason on
stdout). Every verb takes --json. Starting, checking and resetting need root (they freeze
processes by PID, delete routes, run probes inside pods).
"""

from __future__ import annotations

from .context import Context
from .exercise import emit, hint_text, kit_errors, lab_flags, need_root


def register(sub) -> None:
    p = sub.add_parser("scenario", help="break-and-fix scenarios: start one, find the cause, fix it, check",
                       description="Scenarios break the running lab the way real clusters break (a wrong selector, "
                                   "DNS scaled to zero, a frozen proxy, a missing route, an expired certificate, "
                                   "...). `start` prints only the symptom; `check` passes when it works again, "
                                   "whatever the fix; `reset` undoes it. docs/scenarios.md lists them.")
    verbs = p.add_subparsers(dest="scenario_verb", metavar="VERB", required=True)
    v = verbs.add_parser("list", help="the scenarios, and which one is running")
    lab_flags(v)
    v.set_defaults(func=run_list)
    for verb, helptext, fn, nargs in (
            ("start", "break the lab (prints the symptom)", run_start, None),
            ("check", "exit 0 if it works again, 1 with the reason if not", run_check, "?"),
            ("hint", "reveal the next hint for the running scenario", run_hint, "?"),
            ("reset", "undo the running scenario (its namespace, frozen processes, routes, files)", run_reset, "?"),
            ("solution", "the cause, with the commands that show it, and a fix", run_solution, "?")):
        v = verbs.add_parser(verb, help=helptext)
        if nargs:
            v.add_argument("scenario", nargs="?", default=None, help="default: the running one")
        else:
            v.add_argument("scenario")
        lab_flags(v)
        v.set_defaults(func=fn)


@kit_errors
async def run_list(ctx: Context) -> int:
    from kubelab.lab.kit import run
    rows = run.list_scenarios(run.lab_dir_of(ctx.args.name, ctx.args.root_dir))
    text = [f"{'NAME':<18} {'RUNNING':<8} {'STATUS':<26} TITLE"]
    text += [f"{r['name']:<18} {'yes' if r['running'] else '':<8} {r['status']:<26} {r['title']}" for r in rows]
    emit(ctx, {"scenarios": rows}, "\n".join(text))
    return 0


@kit_errors
async def run_start(ctx: Context) -> int:
    from kubelab.lab.kit import run
    run.scenario(ctx.args.scenario)
    need_root(f"scenario start {ctx.args.scenario}")
    async with run.lab_probe(ctx.args.name, ctx.args.root_dir) as probe:
        d = await run.start_scenario(probe, ctx.args.scenario)
    emit(ctx, d, d["symptom"])
    return 0


@kit_errors
async def run_check(ctx: Context) -> int:
    from kubelab.lab.kit import run
    need_root("scenario check")
    async with run.lab_probe(ctx.args.name, ctx.args.root_dir) as probe:
        name, r = await run.check_scenario(probe, ctx.args.scenario)
    emit(ctx, {"name": name, **r.to_dict()}, f"{'FIXED' if r.ok else 'BROKEN'} {name}: {r.reason}")
    return 0 if r.ok else 1


@kit_errors
async def run_hint(ctx: Context) -> int:
    from kubelab.lab.kit import run
    from kubelab.lab.lab import load_plan
    need_root("scenario hint")
    plan, _ = load_plan(ctx.args.name, ctx.args.root_dir)
    d = run.hint_scenario(plan, ctx.args.scenario)
    emit(ctx, d, hint_text(d, "kubelab scenario hint"))
    return 0


@kit_errors
async def run_reset(ctx: Context) -> int:
    from kubelab.lab.kit import run
    need_root("scenario reset")
    async with run.lab_probe(ctx.args.name, ctx.args.root_dir) as probe:
        d = await run.reset_scenario(probe, ctx.args.scenario)
    emit(ctx, d, f"scenario {d['name']} reset: the lab is as before it started")
    return 0


@kit_errors
async def run_solution(ctx: Context) -> int:
    from kubelab.lab import topology
    from kubelab.lab.kit import run
    from kubelab.lab.lab import LabError, load_plan
    try:
        plan, _ = load_plan(ctx.args.name, ctx.args.root_dir)
    except LabError:
        if ctx.args.scenario is None:
            raise
        # an instructor reading solutions without a lab: the default lab's names
        plan = topology.plan_lab(name=ctx.args.name, workers=2, root_dir=ctx.args.root_dir)
    d = run.solution(plan, ctx.args.scenario)
    emit(ctx, d, f"{d['name']}: {d['title']}\n\n{d['solution']}")
    return 0
