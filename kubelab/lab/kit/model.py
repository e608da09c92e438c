"""Pure core of the lab kit: exercises and scenarios as data, results, progress, hints, report.

Nothing here does I/O. A check is `async (probe) -> Result`; the probe is the only way a
check sees the lab (probe.py), so checks run against a fake probe in unit tests.

Invariants:
- an id is stable (instructors put ids in their courses): lower-case words joined by `-`;
- a `Result` always carries a reason a student can act on (a failure says what was tried and
  what happened, not just "wrong");
- progress only ever grows while an exercise is not reset: `first_pass` is set once, `hints`
  counts the hints revealed (never more than the exercise has).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from ..resolver import Resolv, parse_resolv_conf, search_candidates  # noqa: F401  (parse_resolv_conf: for exercises)

ID_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Result:
    ok: bool
    reason: str

    def to_dict(self) -> dict:
        return {"ok": self.ok, "reason": self.reason}


def ok(reason: str) -> Result:
    return Result(True, reason)


def fail(reason: str) -> Result:
    return Result(False, reason)


Check = Callable[[Any], Awaitable[Result]]
Expected = Callable[[Any], Awaitable[str]]  # the live lab's answer, as text


@dataclass(frozen=True)
class Exercise:
    """One exercise of docs/lab-guide.md. `check` for an outcome the lab can test; `expected`
    for a question with one answer (computed from the live lab, so it differs per lab)."""
    id: str
    number: str          # the lab guide's exercise number ("3", "4")
    section: str         # the lab guide's section title
    title: str
    task: str            # the task, in the lab guide's words
    hints: tuple[str, ...]
    check: Check | None = None
    expected: Expected | None = None
    answer_kind: str = "text"   # text | int | cidr: how an answer is compared
    needs_group: str | None = None  # an API group the exercise needs (networking.k8s.io)

    @property
    def kind(self) -> str:
        return "answer" if self.expected else "check"

    def summary(self) -> dict:
        return {"id": self.id, "number": self.number, "section": self.section, "title": self.title,
                "kind": self.kind}


@dataclass(frozen=True)
class Scenario:
    """A break-and-fix scenario. `start` breaks the lab after making its app; `check` passes
    when the app works again whatever the fix; `reset` undoes both (idempotent)."""
    name: str
    title: str
    symptom: str          # all `start` prints: what a user would report
    hints: tuple[str, ...]
    solution: str         # the cause, with the commands that show it, and a fix
    start: Callable[[Any, dict], Awaitable[None]]   # (probe, record) — may store data in record
    check: Callable[[Any, dict], Awaitable[Result]]
    reset: Callable[[Any, dict], Awaitable[None]]
    needs_group: str | None = None
    needs_tls: bool = False
    min_workers: int = 1

    def summary(self) -> dict:
        return {"name": self.name, "title": self.title}


# ---- answers -----------------------------------------------------------------------------------

def normalize_answer(value: str, kind: str) -> str | None:
    """The canonical text of an answer, or None when it is not even of the right kind."""
    value = value.strip()
    if kind == "int":
        return str(int(value)) if re.fullmatch(r"[+-]?\d+", value) else None
    if kind == "cidr":
        try:
            return str(ipaddress.ip_network(value, strict=True))
        except ValueError:
            return None
    return value.lower() or None


def judge_answer(given: str, expected: str, kind: str) -> Result:
    norm = normalize_answer(given, kind)
    if norm is None:
        shape = {"int": "a whole number", "cidr": "a network like 10.244.1.0/24"}.get(kind, "an answer")
        return fail(f"{given!r} is not {shape}")
    if norm == normalize_answer(expected, kind):
        return ok(f"{given.strip()} is right (on this lab)")
    return fail(f"{given.strip()} is not what this lab shows; look again (`kubelab exercise hint` helps)")


# ---- progress ---------------------------------------------------------------------------------

def empty_progress() -> dict:
    return {"version": 1, "exercises": {}, "scenarios": {}, "active_scenario": None}


def entry(progress: dict, kind: str, key: str) -> dict:
    """The record of one exercise ("exercises") or scenario ("scenarios"), created on demand."""
    return progress.setdefault(kind, {}).setdefault(
        key, {"attempts": 0, "first_pass": None, "last_pass": None, "last_result": None, "hints": 0})


def record_result(progress: dict, kind: str, key: str, result: Result, *, now: float) -> dict:
    e = entry(progress, kind, key)
    e["attempts"] += 1
    e["last_result"] = {"ok": result.ok, "reason": result.reason, "at": now}
    if result.ok:
        e["last_pass"] = now
        if e["first_pass"] is None:
            e["first_pass"] = now
    return e


def reveal_hint(progress: dict, kind: str, key: str, hints: tuple[str, ...]) -> tuple[int, list[str]]:
    """Reveal the next hint (never past the last). Returns (number revealed now, all revealed)."""
    e = entry(progress, kind, key)
    e["hints"] = min(len(hints), e["hints"] + 1)
    return e["hints"], list(hints[: e["hints"]])


def forget(progress: dict, kind: str, key: str) -> bool:
    return progress.get(kind, {}).pop(key, None) is not None


def status_of(progress: dict, kind: str, key: str) -> str:
    e = progress.get(kind, {}).get(key)
    if not e or not e.get("last_result"):
        return "not tried"
    if e.get("first_pass"):
        return "passed" if e["last_result"]["ok"] else "passed before, failing now"
    return "failing"


def report(progress: dict, exercises: list[Exercise], scenarios: list[Scenario], *, lab: str, student: str | None,
           now: float, format_time: Callable[[float], str]) -> dict:
    """The instructor's document: one row per exercise and scenario, in the guide's order."""
    def row(kind: str, key: str, extra: dict) -> dict:
        e = progress.get(kind, {}).get(key) or {}
        first = e.get("first_pass")
        return {**extra, "passed": bool(first), "first_pass": format_time(first) if first else None,
                "attempts": e.get("attempts", 0), "hints_used": e.get("hints", 0),
                "last_result": (e.get("last_result") or {}).get("reason")}
    ex = [row("exercises", x.id, {"id": x.id, "number": x.number, "title": x.title, "kind": x.kind})
          for x in exercises]
    sc = [row("scenarios", s.name, {"id": s.name, "title": s.title}) for s in scenarios]
    return {"kind": "KubelabProgressReport", "lab": lab, "student": student, "generated": format_time(now),
            "exercises": ex, "scenarios": sc,
            "summary": {"exercises_passed": sum(r["passed"] for r in ex), "exercises": len(ex),
                        "scenarios_passed": sum(r["passed"] for r in sc), "scenarios": len(sc),
                        "hints_used": sum(r["hints_used"] for r in ex + sc)}}


# ---- resolver arithmetic (exercise dns-search): the same rules `kubelab trace` shows ----------
ResolvConf = Resolv
candidate_names = search_candidates


class KitError(Exception):
    """A failure shown as one line (a scenario that cannot start here, an unknown id)."""


def render_text(template: str, facts: dict) -> str:
    """Fill {placeholders} of a symptom/solution with this lab's facts (node names, netns,
    paths); an unknown placeholder stays as written."""
    class Keep(dict):
        def __missing__(self, key: str) -> str:
            return "{" + key + "}"
    return template.format_map(Keep(facts))
