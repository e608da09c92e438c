"""Executing CNI plugins: the runtime's side of the protocol.

A plugin delegating to IPAM and a runtime (the node agent) running a conflist do the same
thing: find the executable named by `type` in CNI_PATH, run it with the CNI_* environment
and the config on stdin, and read a result or an error JSON back.  Both live here.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Mapping

from kubelab.cni import spec
from kubelab.cni.spec import CniError


def find_in_path(plugin_type: str, cni_path: list[str] | tuple[str, ...]) -> str:
    """The first executable named `plugin_type` in the CNI_PATH directories."""
    if not plugin_type or "/" in plugin_type:
        raise CniError(spec.ERR_INVALID_CONFIG, f"invalid plugin type {plugin_type!r}")
    for d in cni_path:
        candidate = os.path.join(d, plugin_type)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise CniError(spec.ERR_DELEGATE, f"failed to find plugin {plugin_type!r} in path",
                   f"CNI_PATH={os.pathsep.join(cni_path)}")


def exec_plugin(path: str, *, env: Mapping[str, str], stdin: bytes,
                timeout: float = 60.0) -> dict[str, Any] | None:
    """Run one plugin; return its decoded stdout (None if empty) or raise its CniError."""
    try:
        proc = subprocess.run([path], input=stdin, env=dict(env), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise CniError(spec.ERR_TRY_AGAIN, f"plugin {path} timed out after {timeout}s") from None
    except OSError as e:
        raise CniError(spec.ERR_DELEGATE, f"failed to execute plugin {path}", str(e)) from None
    out = proc.stdout.strip()
    if proc.returncode != 0:
        try:
            data = json.loads(out)
        except ValueError:
            data = None
        if isinstance(data, dict) and "code" in data:
            raise CniError.from_dict(data)
        raise CniError(spec.ERR_DELEGATE, f"plugin {path} failed with exit code {proc.returncode}",
                       (proc.stderr or proc.stdout).decode(errors="replace").strip()[-2000:])
    if not out:
        return None
    try:
        return json.loads(out)
    except ValueError as e:
        raise CniError(spec.ERR_DECODE, f"plugin {path} printed invalid JSON", str(e)) from None


def delegate(plugin_type: str, *, command: str, environ: Mapping[str, str], stdin: bytes,
             cni_path: tuple[str, ...]) -> dict[str, Any] | None:
    """What a main plugin does with IPAM: same env and stdin, maybe another command."""
    env = dict(environ)
    env["CNI_COMMAND"] = command
    return exec_plugin(find_in_path(plugin_type, cni_path), env=env, stdin=stdin)


def _runtime_env(command: str, *, container_id: str, netns: str, ifname: str,
                 cni_path: list[str], args: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    env.update({"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": netns,
                "CNI_IFNAME": ifname, "CNI_PATH": os.pathsep.join(cni_path), "CNI_ARGS": args})
    return env


def conflist_add(conflist: Mapping[str, Any], *, container_id: str, netns: str,
                 ifname: str = "eth0", cni_path: list[str], args: str = "") -> dict[str, Any]:
    """Runtime ADD of a whole network configuration list: each plugin in order, each one
    getting the previous plugin's result as `prevResult`.  Returns the last result."""
    prev: dict[str, Any] | None = None
    env = _runtime_env("ADD", container_id=container_id, netns=netns, ifname=ifname,
                       cni_path=cni_path, args=args)
    for conf in spec.plugin_configs(conflist):
        if prev is not None:
            conf["prevResult"] = prev
        prev = exec_plugin(find_in_path(conf["type"], cni_path), env=env,
                           stdin=json.dumps(conf).encode())
        if prev is None:
            raise CniError(spec.ERR_DECODE, f"plugin {conf['type']} returned no result for ADD")
    assert prev is not None
    return prev


def conflist_del(conflist: Mapping[str, Any], *, container_id: str, netns: str,
                 ifname: str = "eth0", cni_path: list[str], args: str = "",
                 prev_result: Mapping[str, Any] | None = None) -> None:
    """Runtime DEL: plugins in reverse order, each with the cached ADD result."""
    env = _runtime_env("DEL", container_id=container_id, netns=netns, ifname=ifname,
                       cni_path=cni_path, args=args)
    for conf in reversed(spec.plugin_configs(conflist)):
        if prev_result is not None:
            conf["prevResult"] = dict(prev_result)
        exec_plugin(find_in_path(conf["type"], cni_path), env=env, stdin=json.dumps(conf).encode())


def conflist_check(conflist: Mapping[str, Any], *, container_id: str, netns: str,
                   ifname: str = "eth0", cni_path: list[str], args: str = "",
                   prev_result: Mapping[str, Any]) -> None:
    """Runtime CHECK: every plugin in order against the cached ADD result."""
    env = _runtime_env("CHECK", container_id=container_id, netns=netns, ifname=ifname,
                       cni_path=cni_path, args=args)
    for conf in spec.plugin_configs(conflist):
        conf["prevResult"] = dict(prev_result)
        exec_plugin(find_in_path(conf["type"], cni_path), env=env, stdin=json.dumps(conf).encode())
