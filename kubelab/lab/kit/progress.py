"""The progress file, `<lab dir>/kit/progress.json`: what each exercise and scenario has been
through on this lab (attempts, first pass, hints revealed) and the running scenario.

Read-modify-write under an exclusive flock, so two terminals checking at once do not lose an
update. It lives in the lab's state dir: `kubelab down` removes it with the lab.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import Iterator

from .. import state
from .model import empty_progress

DIR = "kit"
FILE = "progress.json"


def path(lab_dir: str) -> str:
    return os.path.join(lab_dir, DIR, FILE)


def load(lab_dir: str) -> dict:
    data = state.read_json(path(lab_dir))
    if not isinstance(data, dict) or data.get("version") != 1:
        return empty_progress()
    return data


@contextlib.contextmanager
def editing(lab_dir: str) -> Iterator[dict]:
    """Yields the progress; written back when the block ends (also after an exception: what
    happened before it, e.g. a scenario's record, must not be lost)."""
    os.makedirs(os.path.join(lab_dir, DIR), exist_ok=True)
    with open(os.path.join(lab_dir, DIR, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = load(lab_dir)
        try:
            yield data
        finally:
            state.write_json(path(lab_dir), data)


def save(lab_dir: str, data: dict) -> None:
    os.makedirs(os.path.join(lab_dir, DIR), exist_ok=True)
    state.write_json(path(lab_dir), data)
