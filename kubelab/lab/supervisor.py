"""The lab's supervisor: one small daemon per lab that plays systemd for the nodes.

Starts the components stage by stage (etcd -> API server -> controllers/scheduler -> node
agents/proxies), each inside its node's network namespace with its own log file, waits for each
stage to be healthy before the next, restarts a component that dies (with back-off), and on
SIGTERM stops them in reverse order by PID. Every step is appended to events.jsonl, which is
both `up`'s progress feed and `timeline`'s raw material.

Run by `kubelab up` as `python -m kubelab.lab.supervisor --lab-dir DIR`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time

import httpx

from . import state
from .components import API_STAGE, ComponentSpec, nsenter_argv

HEALTH_TIMEOUT = 60.0
BACKOFF_MAX = 30.0
CRASHLOOP = 2  # exits during boot before `up` is told the component is crash-looping


class Child:
    def __init__(self, spec: ComponentSpec, lab_dir: str) -> None:
        self.spec = spec
        self.lab_dir = lab_dir
        self.popen: subprocess.Popen | None = None
        self.pid: state.ProcId | None = None
        self.restarts = 0
        self.started_at = 0.0
        self.healthy_at: float | None = None
        self.backoff = 1.0
        self.next_start = 0.0
        self.last_exit: int | None = None
        self.crashloop_reported = False

    @property
    def log(self) -> str:
        return state.log_path(self.lab_dir, self.spec.node, self.spec.name)

    def start(self) -> None:
        os.makedirs(os.path.dirname(self.log), exist_ok=True)
        with open(self.log, "ab") as out:
            out.write(f"--- kubelab supervisor: starting {self.spec.key} at "
                      f"{time.strftime('%H:%M:%S')} (start #{self.restarts + 1})\n".encode())
            out.flush()
            env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
            env.update({"PYTHONUNBUFFERED": "1", **self.spec.env})
            cwd = os.path.join(self.lab_dir, self.spec.node)
            os.makedirs(cwd, exist_ok=True)
            self.popen = subprocess.Popen(nsenter_argv(self.spec), stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, cwd=cwd, env=env, start_new_session=True)
        self.pid = state.proc_id(self.popen.pid)
        self.started_at = time.time()
        self.healthy_at = None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def record(self) -> dict:
        return {"spec": self.spec.to_dict(), "pid": self.pid.to_dict() if self.pid and self.running() else None,
                "restarts": self.restarts, "started_at": self.started_at, "healthy_at": self.healthy_at,
                "log": self.log, "last_exit": self.last_exit}


async def healthy(client: httpx.AsyncClient, child: Child) -> bool:
    if not child.running():
        return False
    if not child.spec.health:
        return time.time() - child.started_at >= 1.0  # alive for a second: the best we can say
    try:
        r = await client.get(child.spec.health, timeout=2.0)
        return r.status_code == 200
    except httpx.HTTPError:
        return False


class Supervisor:
    def __init__(self, lab_dir: str, specs: list[ComponentSpec]) -> None:
        self.lab_dir = lab_dir
        self.children = [Child(s, lab_dir) for s in specs]
        self.stopping = asyncio.Event()
        self.me = state.proc_id(os.getpid())
        self.etcd_probe: httpx.AsyncClient | None = None  # etcd's health client (its own CA), set by run()

    def health_tls(self, *, etcd: bool = False):
        """`kubelab up --tls`: health probes verify the lab CA and present a client certificate
        (etcd's own CA and client for etcd; the admin certificate for the node agents)."""
        d = os.path.join(self.lab_dir, "pki")
        if not os.path.exists(os.path.join(d, "admin.crt")):
            return True
        from .components import health_tls
        return health_tls(d, etcd=etcd)

    def probe(self, client: httpx.AsyncClient, child: Child) -> httpx.AsyncClient:
        """etcd is probed with its own client (its CA differs from everyone else's)."""
        return self.etcd_probe if self.etcd_probe is not None and child.spec.name == "etcd" else client

    def event(self, kind: str, child: Child | None = None, **kw) -> None:
        ev = {"source": "supervisor", "event": kind, **kw}
        if child is not None:
            ev.update(component=child.spec.name, node=child.spec.node,
                      pid=child.pid.pid if child.pid else None)
        state.append_event(self.lab_dir, ev)

    def save(self, phase: str) -> None:
        state.write_json(os.path.join(self.lab_dir, state.SUPERVISOR_FILE), {
            "supervisor": self.me.to_dict() if self.me else None, "phase": phase,
            "components": [c.record() for c in self.children]})

    async def boot(self, client: httpx.AsyncClient) -> bool:
        for stage in sorted({c.spec.stage for c in self.children}):
            group = [c for c in self.children if c.spec.stage == stage]
            t0 = time.monotonic()
            for c in group:
                c.start()
                self.event("started", c, argv=list(c.spec.argv), netns=c.spec.netns, log=c.log)
            self.save("booting")
            pending = list(group)
            while pending:
                if self.stopping.is_set():
                    return False
                for c in list(pending):
                    if await healthy(self.probe(client, c), c):
                        c.healthy_at = time.time()
                        pending.remove(c)
                        self.event("healthy", c, seconds=round(time.time() - c.started_at, 2))
                    elif not c.running():
                        self.revive(c, time.time())
                        if c.restarts >= CRASHLOOP and c.next_start and not c.crashloop_reported:
                            c.crashloop_reported = True
                            self.event("crashloop", c, code=c.last_exit, restarts=c.restarts)
                if time.monotonic() - t0 > HEALTH_TIMEOUT:
                    for c in pending:
                        self.event("unhealthy", c, seconds=HEALTH_TIMEOUT)
                    self.save("booting")
                    pending = []
                    break
                await asyncio.sleep(0.1)
            self.save("booting")
        self.event("ready")
        self.save("running")
        return True

    async def watch(self, client: httpx.AsyncClient) -> None:
        """Restart what dies, with exponential back-off (reset after a minute of good health)."""
        while not self.stopping.is_set():
            now = time.time()
            changed = False
            for c in self.children:
                if c.running():
                    if c.started_at and now - c.started_at > 60:
                        c.backoff = 1.0
                    if c.healthy_at is None and await healthy(self.probe(client, c), c):
                        c.healthy_at = now
                        self.event("healthy", c, seconds=round(now - c.started_at, 2))
                        changed = True
                    continue
                changed = self.revive(c, now) or changed
            if changed:
                self.save("running")
            try:
                await asyncio.wait_for(self.stopping.wait(), 0.5)
            except asyncio.TimeoutError:
                pass

    def revive(self, c: Child, now: float) -> bool:
        """A dead child: note the exit and schedule a restart after its back-off (1 s, doubling
        to 30 s); restart it when that time has come. Returns whether anything changed."""
        if c.next_start == 0.0:
            c.last_exit = c.popen.returncode if c.popen else None
            self.event("exited", c, code=c.last_exit)
            c.next_start = now + c.backoff
            c.backoff = min(c.backoff * 2, BACKOFF_MAX)
            return True
        if now >= c.next_start:
            c.restarts += 1
            c.next_start = 0.0
            c.start()
            self.event("restarted", c, restarts=c.restarts)
            return True
        return False

    def stop_all(self) -> None:
        """Stage by stage in reverse start order (node agents and proxies first, etcd last);
        within a stage all at once: SIGTERM, SIGKILL after 5 s; then reap."""
        for stage in sorted({c.spec.stage for c in self.children}, reverse=True):
            group = [c for c in self.children if c.spec.stage == stage and c.running() and c.pid]
            # the API server waits for open watches (the pods' DNS servers still have theirs) before
            # exiting on SIGTERM: it gets 2 s, the others 5 s
            state.stop_many([c.pid for c in group], timeout=2.0 if stage == API_STAGE else 5.0)
            for c in group:
                try:
                    c.popen.wait(2)
                except subprocess.TimeoutExpired:
                    pass
                self.event("stopped", c)
        self.save("stopped")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        self.event("supervisor-started", pid=os.getpid())
        async with httpx.AsyncClient(trust_env=False, verify=self.health_tls()) as client, \
                httpx.AsyncClient(trust_env=False, verify=self.health_tls(etcd=True)) as etcd_client:
            self.etcd_probe = etcd_client
            try:
                if await self.boot(client):
                    await self.watch(client)
            finally:
                self.stop_all()
                self.event("supervisor-stopped")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kubelab.lab.supervisor",
                                description="Run a kubelab lab's components (started by `kubelab up`).")
    p.add_argument("--lab-dir", required=True, help="the lab's state dir (holds lab.json)")
    args = p.parse_args(argv)
    record = state.load_record(args.lab_dir)
    if not record or "components" not in record:
        print(f"error: no lab record with components in {args.lab_dir}", file=sys.stderr)
        return 1
    specs = [ComponentSpec.from_dict(d) for d in record["components"]]
    asyncio.run(Supervisor(args.lab_dir, specs).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
