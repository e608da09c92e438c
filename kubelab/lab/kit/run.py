"""The kit's verbs over a lab: what `kubelab exercise ...` and `kubelab scenario ...` do,
returning plain data the CLI prints as text or JSON.

Progress edits are short (never held across a scenario's start, which takes a minute): a
second terminal can check while the first one starts.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import time
from typing import AsyncIterator

from kubelab.timestamps import format_time

from .. import components
from ..lab import load_plan
from . import progress
from .exercises import BY_ID, EXERCISES
from .model import (KitError, Result, entry, fail, forget, judge_answer, record_result, render_text, report,
                    reveal_hint, status_of)
from .probe import Probe
from .scenarios import BY_NAME, SCENARIOS, facts

EX, SC = "exercises", "scenarios"
MAX_ANSWER = 100  # answers are a name, a number or a CIDR; the reason quoting one goes to the progress file


@contextlib.asynccontextmanager
async def lab_probe(name: str, root_dir: str) -> AsyncIterator[Probe]:
    plan, _ = load_plan(name, root_dir)
    api = components.api_client(plan)
    probe = Probe(plan, api, plan.lab_dir)

    def save(record: dict) -> None:
        with progress.editing(plan.lab_dir) as p:
            p["active_scenario"] = record
    probe.save = save
    try:
        yield probe
    finally:
        await api.aclose()


def lab_dir_of(name: str, root_dir: str) -> str:
    return load_plan(name, root_dir)[0].lab_dir


def exercise(ex_id: str):
    try:
        return BY_ID[ex_id]
    except KeyError:
        raise KitError(f"no exercise {ex_id!r}; `kubelab exercise list` shows them: {', '.join(BY_ID)}") from None


def scenario(name: str):
    try:
        return BY_NAME[name]
    except KeyError:
        raise KitError(f"no scenario {name!r}; one of: {', '.join(BY_NAME)}") from None


# ---- exercises ----------------------------------------------------------------------------------

def list_exercises(lab_dir: str) -> list[dict]:
    p = progress.load(lab_dir)
    return [{**e.summary(), "status": status_of(p, EX, e.id),
             "verb": f"kubelab exercise {'answer ' + e.id + ' VALUE' if e.expected else 'check ' + e.id}"}
            for e in EXERCISES]


def show_exercise(ex_id: str, lab_dir: str | None) -> dict:
    e = exercise(ex_id)
    out = {**e.summary(), "task": e.task, "hints": len(e.hints),
           "verb": f"kubelab exercise {'answer ' + e.id + ' VALUE' if e.expected else 'check ' + e.id}"}
    if lab_dir:
        out["status"] = status_of(progress.load(lab_dir), EX, e.id)
    return out


async def _needs(probe: Probe, group: str | None) -> Result | None:
    if group and not await probe.serves_group(group):
        return fail(f"this lab's API server does not serve {group} (NetworkPolicy): the exercise needs it")
    return None


async def check_exercise(probe: Probe, ex_id: str) -> Result:
    e = exercise(ex_id)
    if e.expected:
        raise KitError(f"exercise {e.id} is a question: answer it with `kubelab exercise answer {e.id} VALUE`")
    result = await _needs(probe, e.needs_group) or await e.check(probe)
    with progress.editing(probe.lab_dir) as p:
        record_result(p, EX, e.id, result, now=time.time())
    return result


async def answer_exercise(probe: Probe, ex_id: str, value: str) -> Result:
    e = exercise(ex_id)
    if len(value) > MAX_ANSWER or not value.isprintable():
        raise KitError(f"an answer is one short printable value (at most {MAX_ANSWER} characters)")
    if not e.expected:
        raise KitError(f"exercise {e.id} has no single answer: check it with `kubelab exercise check {e.id}`")
    try:
        expected = await e.expected(probe)
    except LookupError as err:
        raise KitError(f"cannot work out this lab's answer yet: {err}") from None
    result = judge_answer(value, expected, e.answer_kind)
    with progress.editing(probe.lab_dir) as p:
        record_result(p, EX, e.id, result, now=time.time())
    return result


def _hint(lab_dir: str, kind: str, key: str, hints: tuple[str, ...], fill: dict) -> dict:
    with progress.editing(lab_dir) as p:
        shown, revealed = reveal_hint(p, kind, key, hints)
    return {"id": key, "hint": shown, "of": len(hints), "hints": [render_text(h, fill) for h in revealed],
            "more": shown < len(hints)}


def hint_exercise(lab_dir: str, ex_id: str) -> dict:
    e = exercise(ex_id)
    return _hint(lab_dir, EX, e.id, e.hints, {})


def reset_exercise(lab_dir: str, ex_id: str) -> dict:
    e = exercise(ex_id)
    with progress.editing(lab_dir) as p:
        had = forget(p, EX, e.id)
    return {"id": e.id, "reset": had}


def student() -> str | None:
    user = os.environ.get("SUDO_USER")
    if user:
        return user
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return None


def progress_report(name: str, lab_dir: str) -> dict:
    return report(progress.load(lab_dir), EXERCISES, SCENARIOS, lab=name, student=student(), now=time.time(),
                  format_time=lambda t: format_time(t))


# ---- scenarios ----------------------------------------------------------------------------------

def active(lab_dir: str) -> dict | None:
    return progress.load(lab_dir).get("active_scenario")


def _which(lab_dir: str, name: str | None) -> tuple[object, dict]:
    rec = active(lab_dir)
    if name is None:
        if not rec:
            raise KitError("no scenario is running (`kubelab scenario list`, then `kubelab scenario start NAME`)")
        return scenario(rec["name"]), rec
    s = scenario(name)
    if not rec or rec.get("name") != s.name:
        raise KitError(f"scenario {s.name} is not running" + (f" ({rec['name']} is)" if rec else "")
                       + f": `kubelab scenario start {s.name}`")
    return s, rec


def list_scenarios(lab_dir: str) -> list[dict]:
    p = progress.load(lab_dir)
    running = (p.get("active_scenario") or {}).get("name")
    return [{**s.summary(), "running": s.name == running, "status": status_of(p, SC, s.name)} for s in SCENARIOS]


async def start_scenario(probe: Probe, name: str) -> dict:
    s = scenario(name)
    rec = active(probe.lab_dir)
    if rec:
        raise KitError(f"scenario {rec['name']} is running: `kubelab scenario reset` first")
    plan = probe.plan
    if len(plan.workers) < s.min_workers:
        raise KitError(f"scenario {s.name} needs {s.min_workers} workers; this lab has {len(plan.workers)}")
    if s.needs_tls and not plan.tls:
        raise KitError(f"scenario {s.name} needs a lab with TLS (`kubelab up` without --insecure)")
    if s.needs_group and not await probe.serves_group(s.needs_group):
        raise KitError(f"scenario {s.name} needs NetworkPolicy: this lab's API server does not serve "
                       f"{s.needs_group}")
    from .scenarios import NS, namespace
    if await probe.get("namespaces", NS) is not None:
        raise KitError(f"namespace {NS} exists already; scenarios make their own (delete it: kubectl delete ns {NS})")
    record = {"name": s.name, "started_at": time.time(), "data": {}}
    probe.save(record)
    try:
        await probe.api.create("namespaces", namespace(s.name))
        await s.start(probe, record)
    except BaseException as e:
        try:  # leave the lab as it was; the start's own error is the one to report
            await reset_scenario(probe, s.name)
        except Exception as undo:
            raise KitError(f"{e or type(e).__name__}; and undoing the start failed too: {undo} "
                           f"(`kubelab scenario reset` tries again)") from e
        raise
    probe.save(record)
    with progress.editing(probe.lab_dir) as p:
        entry(p, SC, s.name)
    return {"name": s.name, "symptom": render_text(s.symptom, facts(plan, record))}


async def check_scenario(probe: Probe, name: str | None) -> tuple[str, Result]:
    s, rec = _which(probe.lab_dir, name)
    result = await s.check(probe, rec)
    with progress.editing(probe.lab_dir) as p:
        record_result(p, SC, s.name, result, now=time.time())
    return s.name, result


def hint_scenario(plan, name: str | None) -> dict:
    s, rec = _which(plan.lab_dir, name)
    return _hint(plan.lab_dir, SC, s.name, s.hints, facts(plan, rec))


def solution(plan, name: str | None) -> dict:
    if name is None:
        s, rec = _which(plan.lab_dir, None)
    else:
        s = scenario(name)
        rec = active(plan.lab_dir) if os.path.isdir(plan.lab_dir) else None
        rec = rec if rec and rec.get("name") == s.name else {"name": s.name, "data": {}}
    return {"name": s.name, "title": s.title, "solution": render_text(s.solution, facts(plan, rec))}


async def reset_scenario(probe: Probe, name: str | None) -> dict:
    """Undo: the scenario's own reset, then its namespace (waited for: the next start needs
    the name), then forget the running record."""
    from .scenarios import LABEL, NS, wait_for
    rec = active(probe.lab_dir)
    if name is not None:
        scenario(name)
        if not rec or rec.get("name") != name:
            raise KitError(f"scenario {name} is not running" + (f" ({rec['name']} is)" if rec else ""))
    if not rec:
        raise KitError("no scenario is running: nothing to reset")
    s = scenario(rec["name"])
    await s.reset(probe, rec)
    ns = await probe.get("namespaces", NS)
    if ns is not None and ((ns.get("metadata") or {}).get("labels") or {}).get(LABEL):
        for pod in await probe.list("pods", NS):  # their grace period would only slow the reset down
            await probe.api.delete("pods", pod["metadata"]["name"], namespace=NS, grace_period_seconds=0)
        await probe.api.delete("namespaces", NS)

        async def gone() -> bool:
            return await probe.get("namespaces", NS) is None
        await wait_for(gone, timeout=120, what=f"namespace {NS} to be deleted")
    with progress.editing(probe.lab_dir) as p:
        p["active_scenario"] = None
    return {"name": s.name, "reset": True}
