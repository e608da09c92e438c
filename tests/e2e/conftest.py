"""The one lab fixture of the e2e modules: `kubelab up` under a random name, `down` always, and no
residue afterwards (a residue fails the module's last test).

A module says which lab it needs with module-level settings instead of a fixture of its own:

    LAB_WORKERS = 1                      # default 2
    LAB_UP = ("--tls", "--demo")         # default ("--no-kubeconfig",)
    def lab_setup(lab): ...              # run once after `up` (objects every test expects)
    pytestmark = [..., pytest.mark.parametrize("lab", ["nftables", "iptables"], indirect=True)]
                                         # the proxy mode(s); default nftables

A lab start costs about a minute of a loaded machine, so modules whose tests leave the lab usable
for others share one (2 workers, nftables, no kubeconfig written): `XDIST_GROUP = "shared-lab"`,
which also keeps them on one worker under xdist (tests/conftest.py). Such
modules may only add objects with names of their own; the lab goes down after the group's last
module. Modules that break the lab on purpose (faults, scenarios) or look at `up` itself keep
their own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from kubelab.lab.testing import Lab

SHARED_GROUP = "shared-lab"


def running_lab(*up_args: str, workers: int = 2, proxy_mode: str = "nftables",
                setup: Callable[[Lab], object] | None = None) -> Iterator[Lab]:
    """Create and start a lab (then `setup` it), yield it, and always take it down; a residue
    is a failure."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    lab = Lab.create(workers=workers, proxy_mode=proxy_mode)
    try:
        lab.up(*up_args)
        if setup is not None:
            setup(lab)
        yield lab
    finally:
        left = lab.cleanup()
        assert not left, f"lab residue after down: {left}"


class _Shared:
    """The shared lab of this pytest session (one per xdist worker): started by the first module
    of the group that asks, taken down by the last one (or at session end if the run stops early)."""

    gen: Iterator[Lab] | None = None
    lab: Lab | None = None

    @classmethod
    def get(cls) -> Lab:
        if cls.lab is None:
            cls.gen = running_lab("--no-kubeconfig")
            cls.lab = next(cls.gen)
        return cls.lab

    @classmethod
    def close(cls) -> None:
        gen, cls.gen, cls.lab = cls.gen, None, None
        if gen is not None:
            next(gen, None)  # runs the finally: down + residue assertion


def _shares(module) -> bool:
    return getattr(module, "XDIST_GROUP", None) == SHARED_GROUP


@pytest.fixture(scope="module")
def lab(request) -> Iterator[Lab]:
    module = request.module
    if _shares(module):
        yield _Shared.get()
        last = [i.module for i in request.session.items if _shares(getattr(i, "module", None))][-1:]
        if last and last[0] is module:
            _Shared.close()
        return
    yield from running_lab(*getattr(module, "LAB_UP", ("--no-kubeconfig",)),
                           workers=getattr(module, "LAB_WORKERS", 2),
                           proxy_mode=getattr(request, "param", "nftables"),
                           setup=getattr(module, "lab_setup", None))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the modules of the shared lab one after another (serially too), from where the first
    of them is collected, so the lab is up only while they run."""
    first = next((i for i, item in enumerate(items) if _shares(getattr(item, "module", None))), None)
    if first is None:
        return
    shared = [item for item in items if _shares(getattr(item, "module", None))]
    rest = [item for item in items if not _shares(getattr(item, "module", None))]
    items[:] = rest[:first] + shared + rest[first:]


def pytest_sessionfinish(session) -> None:
    _Shared.close()
