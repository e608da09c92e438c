"""`kubelab exercise list|show|check|answer|hint|reset|report`: the lab guide's exercises,
checked against the live lab. Every verb takes --json.

Thin: flags in, kubelab.lab.kit.run out; a failed check exits 1 with its reason on stdout.
Checks and answers enter pods' namespaces and so need root (like `kubelab trace`).
"""

from __future__ import annotations

import functools
import json
import os

from .context import CliError, Context


def lab_flags(p) -> None:
    from kubelab.lab.lab import DEFAULT_ROOT
    p.add_argument("--name", default="lab", help="the lab's name (default: lab)")
    p.add_argument("--root-dir", default=DEFAULT_ROOT, help=f"where labs keep their state (default: {DEFAULT_ROOT})")
    p.add_argument("--json", action="store_true", help="print one JSON document")


def kit_errors(fn):
    """The kit's and the lab's one-line errors become the CLI's (exit 1, no traceback)."""
    @functools.wraps(fn)
    async def run(ctx: Context) -> int:
        from kubelab.lab.kit.model import KitError
        from kubelab.lab.lab import LabError
        from kubelab.lab.topology import CommandError, PlanError
        try:
            return await fn(ctx)
        except (KitError, LabError, PlanError, CommandError) as e:
            raise CliError(str(e)) from None
    return run


def need_root(verb: str) -> None:
    if os.geteuid() != 0:
        raise CliError(f"kubelab {verb} needs root (it runs its probes inside the pods' and nodes' network "
                       f"namespaces): run `sudo kubelab {verb}`")


def emit(ctx: Context, doc, text: str) -> None:
    ctx.out((json.dumps(doc, indent=2) if ctx.args.json else text) + "\n")


def register(sub) -> None:
    p = sub.add_parser("exercise", help="the lab guide's exercises, checked on this lab",
                       description="List, show and check the exercises of docs/lab-guide.md against the live lab "
                                   "(real traffic and real state), answer its questions, reveal graded hints, and "
                                   "print a progress report for the instructor.")
    verbs = p.add_subparsers(dest="exercise_verb", metavar="VERB", required=True)
    # one row a verb: (name, help, handler, positional arguments)
    for verb, helptext, fn, positionals in (
            ("list", "every exercise with its status on this lab", run_list, ()),
            ("show", "an exercise's task, in the lab guide's words", run_show, ("id",)),
            ("check", "check an exercise on the live lab (exit 0 = done, 1 = not yet)", run_check, ("id",)),
            ("answer", "answer a question of the guide (checked against this lab)", run_answer, ("id", "value")),
            ("hint", "reveal the next hint of an exercise (one at a time)", run_hint, ("id",)),
            ("reset", "forget an exercise's progress (hints, passes) on this lab", run_reset, ("id",)),
            ("report", "this lab's progress as one JSON document (for the instructor)", run_report, ())):
        v = verbs.add_parser(verb, help=helptext)
        for name in positionals:
            v.add_argument(name)
        lab_flags(v)
        v.set_defaults(func=fn)


@kit_errors
async def run_list(ctx: Context) -> int:
    from kubelab.lab.kit import run
    rows = run.list_exercises(run.lab_dir_of(ctx.args.name, ctx.args.root_dir))
    text = [f"{'ID':<18} {'EX':<3} {'KIND':<7} {'STATUS':<26} TITLE"]
    text += [f"{r['id']:<18} {r['number']:<3} {r['kind']:<7} {r['status']:<26} {r['title']}" for r in rows]
    emit(ctx, {"exercises": rows}, "\n".join(text))
    return 0


@kit_errors
async def run_show(ctx: Context) -> int:
    from kubelab.lab.kit import run
    try:
        lab_dir = run.lab_dir_of(ctx.args.name, ctx.args.root_dir)
    except Exception:
        lab_dir = None  # the task reads the same without a lab
    d = run.show_exercise(ctx.args.id, lab_dir)
    text = (f"Exercise {d['number']} ({d['section']}): {d['title']}  [{d['id']}]\n\n{d['task']}\n\n"
            f"When done: {d['verb']}   ({d['hints']} hints: kubelab exercise hint {d['id']})")
    emit(ctx, d, text)
    return 0


@kit_errors
async def run_check(ctx: Context) -> int:
    from kubelab.lab.kit import run
    run.exercise(ctx.args.id)
    need_root(f"exercise check {ctx.args.id}")
    async with run.lab_probe(ctx.args.name, ctx.args.root_dir) as probe:
        r = await run.check_exercise(probe, ctx.args.id)
    emit(ctx, {"id": ctx.args.id, **r.to_dict()}, f"{'PASS' if r.ok else 'FAIL'} {ctx.args.id}: {r.reason}")
    return 0 if r.ok else 1


@kit_errors
async def run_answer(ctx: Context) -> int:
    from kubelab.lab.kit import run
    run.exercise(ctx.args.id)
    need_root(f"exercise answer {ctx.args.id} VALUE")
    async with run.lab_probe(ctx.args.name, ctx.args.root_dir) as probe:
        r = await run.answer_exercise(probe, ctx.args.id, ctx.args.value)
    emit(ctx, {"id": ctx.args.id, "answer": ctx.args.value, **r.to_dict()},
         f"{'RIGHT' if r.ok else 'WRONG'} {ctx.args.id}: {r.reason}")
    return 0 if r.ok else 1


@kit_errors
async def run_hint(ctx: Context) -> int:
    from kubelab.lab.kit import run
    run.exercise(ctx.args.id)
    need_root(f"exercise hint {ctx.args.id}")
    d = run.hint_exercise(run.lab_dir_of(ctx.args.name, ctx.args.root_dir), ctx.args.id)
    emit(ctx, d, hint_text(d, f"kubelab exercise hint {d['id']}"))
    return 0


def hint_text(d: dict, again: str) -> str:
    lines = [f"hint {i}/{d['of']}: {h}" for i, h in enumerate(d["hints"], 1)]
    lines.append(f"(`{again}` for the next one)" if d["more"] else "(no more hints)")
    return "\n".join(lines)


@kit_errors
async def run_reset(ctx: Context) -> int:
    from kubelab.lab.kit import run
    run.exercise(ctx.args.id)
    need_root(f"exercise reset {ctx.args.id}")
    d = run.reset_exercise(run.lab_dir_of(ctx.args.name, ctx.args.root_dir), ctx.args.id)
    emit(ctx, d, f"exercise {d['id']}: progress and hints forgotten" if d["reset"]
         else f"exercise {d['id']}: nothing recorded yet")
    return 0


@kit_errors
async def run_report(ctx: Context) -> int:
    from kubelab.lab.kit import run
    d = run.progress_report(ctx.args.name, run.lab_dir_of(ctx.args.name, ctx.args.root_dir))
    ctx.out(json.dumps(d, indent=2) + "\n")
    return 0
