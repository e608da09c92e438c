"""The I/O edge of the ingress controller: informers in, nginx.conf + reload + status + Events out.

Why it is shaped like this: every change (an Ingress, a Service, an EndpointSlice, a TLS
Secret, an IngressClass) only marks the controller dirty; one debounced sync rebuilds the
whole model (model.build), renders the whole file (nginxconf.render), and acts only if the
text changed. A reload is nginx's own graceful one: `nginx -t` on the new file first (a
config nginx refuses never replaces the running one), then SIGHUP to the master, which
starts new workers and lets the old ones finish their in-flight requests — so an endpoint
change (upstreams are pod IPs) drops no request. ingress-nginx avoids even the reload for
endpoint-only changes with Lua; a full graceful reload keeps this readable and is measured
in tests/integration/test_ingress_controller.py (no failed request during a rollout).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
from datetime import datetime, timezone
from typing import Any, Callable

from kubelab.ingress import gateway, model, nginxconf

log = logging.getLogger("kubelab.ingress")

RESOURCES = ("ingresses", "ingressclasses", "services", "endpointslices", "secrets",
             "gatewayclasses", "gateways", "httproutes", "referencegrants")
DEBOUNCE = 0.1  # seconds: a rollout's burst of EndpointSlice updates becomes one reload
COMPONENT = "nginx-ingress-controller"


class NginxError(Exception):
    """nginx refused a config (`nginx -t`) or could not be started."""


class Nginx:
    """The data plane: one nginx master process, its config file, its certificates."""

    def __init__(self, paths: nginxconf.Paths, binary: str = "nginx") -> None:
        self.paths = paths
        self.binary = binary
        self.proc: subprocess.Popen | None = None
        self.reloads = 0
        self.conf = os.path.join(paths.conf_dir, "nginx.conf")

    def _write(self, path: str, text: str, mode: int) -> None:
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)

    def apply(self, config: model.Config, text: str, extra_certs: tuple[model.TlsCert, ...] = ()) -> None:
        """Certificates, `nginx -t` on the new file, then swap it in and (re)load."""
        os.makedirs(self.paths.cert_dir, mode=0o700, exist_ok=True)
        os.makedirs(self.paths.run_dir, exist_ok=True)
        wanted = set()
        for c in (*config.certs, *extra_certs):
            for ext, pem in (("crt", c.cert), ("key", c.key)):
                self._write(os.path.join(self.paths.cert_dir, f"{c.name}.{ext}"), pem, 0o600)
                wanted.add(f"{c.name}.{ext}")
        candidate = self.conf + ".new"
        self._write(candidate, text, 0o644)
        test = subprocess.run([self.binary, "-t", "-q", "-e", "stderr", "-c", candidate],
                              capture_output=True, text=True, timeout=30)
        if test.returncode != 0:
            raise NginxError(test.stderr.strip()[-2000:])
        os.replace(candidate, self.conf)
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([self.binary, "-e", "stderr", "-c", self.conf, "-g", "daemon off;"])
            log.info("nginx started (pid %d)", self.proc.pid)
        else:
            self.proc.send_signal(signal.SIGHUP)  # graceful: old workers finish in-flight requests
            self.reloads += 1
            log.info("nginx reloaded (%d)", self.reloads)
        for name in os.listdir(self.paths.cert_dir):
            if name not in wanted:
                os.unlink(os.path.join(self.paths.cert_dir, name))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful shutdown
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Controller:
    def __init__(self, client: Any, nginx: Nginx, *, controller: str = model.CONTROLLER,
                 publish_service: str | None = None, recorder: Any = None,
                 gateway_controller: str = gateway.CONTROLLER_NAME) -> None:
        self.client = client
        self.nginx = nginx
        self.controller = controller
        self.publish_service = publish_service
        self.recorder = recorder
        self.gateway_controller = gateway_controller
        self.informers: dict[str, Any] = {}
        self.text = ""
        self.syncs = 0
        self._reported: set[model.Notice] = set()
        self._dirty = asyncio.Event()

    def mark(self, *_: Any) -> None:
        self._dirty.set()

    def objects(self) -> dict[str, list[dict]]:
        return {res: list(inf.store.list()) for res, inf in self.informers.items()}

    async def sync(self) -> None:
        objs = self.objects()
        config, notices = model.build(ingresses=objs["ingresses"], classes=objs["ingressclasses"],
                                      services=objs["services"], endpointslices=objs["endpointslices"],
                                      secrets=objs["secrets"], controller=self.controller)
        p = self.nginx.paths
        gw = gateway.build(gatewayclasses=objs["gatewayclasses"], gateways=objs["gateways"],
                           httproutes=objs["httproutes"], services=objs["services"],
                           endpointslices=objs["endpointslices"], secrets=objs["secrets"],
                           referencegrants=objs["referencegrants"],
                           reserved_ports=(p.http_port, p.https_port, p.health_port, p.default_backend_port),
                           controller=self.gateway_controller)
        text = nginxconf.render(config, p, gw.config)
        applied = text == self.text
        if text != self.text:
            try:
                await asyncio.to_thread(self.nginx.apply, config, text, gw.config.certs)
                self.text = text
                applied = True
            except NginxError as e:
                log.error("nginx refused the new configuration, keeping the running one: %s", e)
        self.syncs += 1
        self._events(notices, objs["ingresses"])
        await self._status(objs)
        await self._gateway_status(objs, gw, applied)

    def _events(self, notices: list[model.Notice], ingresses: list[dict]) -> None:
        if self.recorder is None:
            return
        by_key = {f"{i['metadata'].get('namespace')}/{i['metadata'].get('name')}": i for i in ingresses}
        if len(self._reported) > 10000:  # bounded memory; at worst an Event is recorded again
            self._reported.clear()
        for n in notices:
            if n in self._reported:
                continue
            self._reported.add(n)
            ing = by_key.get(f"{n.namespace}/{n.name}")
            if ing is not None:
                self.recorder.event(ing, n.type, n.reason, n.message)

    async def _status(self, objs: dict[str, list[dict]]) -> None:
        if not self.publish_service:
            return
        svc = self.informers["services"].store.get(self.publish_service)
        addresses = model.status_addresses(svc)
        names, default = model.our_classes(objs["ingressclasses"], self.controller)
        for ing in objs["ingresses"]:
            if not model.is_ours(ing, names, default):
                continue
            current = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            if current == addresses:
                continue
            meta = ing["metadata"]
            try:
                await self.client.patch("ingresses", meta["name"], namespace=meta["namespace"], subresource="status",
                                        patch={"status": {"loadBalancer": {"ingress": addresses or None}}})
            except Exception as e:  # noqa: BLE001 - the next change retries
                log.warning("updating the status of ingress %s/%s: %s", meta["namespace"], meta["name"], e)

    async def _gateway_status(self, objs: dict[str, list[dict]], gw: gateway.Result, applied: bool) -> None:
        """Write the status the model computed, keeping each condition's lastTransitionTime
        while its status is unchanged (as metav1.Conditions are kept); patch only on change."""
        svc = self.informers["services"].store.get(self.publish_service) if self.publish_service else None
        addresses = gateway.status_addresses(svc)
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

        def merged(new: list[dict], old: list) -> list[dict]:
            before = {c.get("type"): c for c in old if isinstance(c, dict)}
            out = []
            for c in new:
                prev = before.get(c["type"], {})
                out.append({**c, "lastTransitionTime": prev.get("lastTransitionTime", now)
                            if prev.get("status") == c["status"] else now})
            return out

        def same(a, b) -> bool:
            return _no_times(a) == _no_times(b)

        todo: list[tuple[str, dict, dict]] = []
        for gc in objs["gatewayclasses"]:
            st = gw.class_status.get(gc["metadata"]["name"])
            if st is not None:
                old = gc.get("status") or {}
                new = {"conditions": merged(st["conditions"], old.get("conditions") or [])}
                if not same(new.get("conditions"), old.get("conditions")):
                    todo.append(("gatewayclasses", gc, new))
        for g in objs["gateways"]:
            st = gw.gateway_status.get(f"{g['metadata'].get('namespace')}/{g['metadata']['name']}")
            if st is None:
                continue
            old = g.get("status") or {}
            conds = st["conditions"]
            if not applied:
                conds = [c if c["type"] != "Programmed" else {**c, "status": "False", "reason": "Pending",
                                                              "message": "nginx refused the configuration"}
                         for c in conds]
            old_ls = {x.get("name"): x for x in old.get("listeners") or [] if isinstance(x, dict)}
            new = {"addresses": addresses or None, "conditions": merged(conds, old.get("conditions") or []),
                   "listeners": [{**ls, "conditions": merged(ls["conditions"],
                                                              old_ls.get(ls["name"], {}).get("conditions") or [])}
                                 for ls in st["listeners"]]}
            if not same(new, {k: old.get(k) for k in new}):
                todo.append(("gateways", g, new))
        for r in objs["httproutes"]:
            parents = gw.route_status.get(f"{r['metadata'].get('namespace')}/{r['metadata']['name']}")
            old_parents = [p for p in (r.get("status") or {}).get("parents") or [] if isinstance(p, dict)]
            mine = [p for p in old_parents if p.get("controllerName") == self.gateway_controller]
            others = [p for p in old_parents if p.get("controllerName") != self.gateway_controller]
            new_mine = []
            for p in parents or []:
                prev = next((o for o in mine if o.get("parentRef") == p["parentRef"]), {})
                new_mine.append({**p, "conditions": merged(p["conditions"], prev.get("conditions") or [])})
            if not same(new_mine, mine):
                todo.append(("httproutes", r, {"parents": others + new_mine}))
        for plural, obj, status in todo:
            meta = obj["metadata"]
            try:
                await self.client.patch(plural, meta["name"], namespace=meta.get("namespace"), subresource="status",
                                        patch={"status": status})
            except Exception as e:  # noqa: BLE001 - the next change retries
                log.warning("updating the status of %s %s: %s", plural, meta["name"], e)

    async def run(self, *, on_synced: Callable[[], None] | None = None, sync_timeout: float = 60) -> None:
        from kubelab.client import Informer

        self.informers = {res: Informer(self.client, res) for res in RESOURCES}
        for inf in self.informers.values():
            inf.add_handler(on_add=self.mark, on_update=self.mark, on_delete=self.mark)
        tasks = [asyncio.create_task(inf.run(), name=f"informer-{res}") for res, inf in self.informers.items()]
        try:
            for inf in self.informers.values():
                await inf.wait_synced(timeout=sync_timeout)
            self._dirty.clear()
            await self.sync()
            if on_synced:
                on_synced()
            tasks.append(asyncio.create_task(self._loop(), name="ingress-sync"))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                t.result()
        finally:
            for t in tasks:
                t.cancel()

    async def _loop(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(DEBOUNCE)  # a debounce window, not synchronisation
            self._dirty.clear()
            if self.nginx.proc is not None and self.nginx.proc.poll() is not None:
                raise NginxError(f"nginx exited with {self.nginx.proc.returncode}")
            try:
                await self.sync()
            except Exception:  # noqa: BLE001 - keep serving the previous config
                log.exception("sync failed; nginx keeps the previous configuration")


def _no_times(x: Any) -> Any:
    """`x` without lastTransitionTime keys (what decides whether a status changed)."""
    if isinstance(x, dict):
        return {k: _no_times(v) for k, v in x.items() if k != "lastTransitionTime"}
    if isinstance(x, list):
        return [_no_times(v) for v in x]
    return x
