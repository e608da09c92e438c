"""The CNI protocol (containernetworking/cni SPEC.md 0.4.0, 1.0.0, 1.1.0), with no kernel work.

Everything a plugin shares with its runtime lives here: the CNI_* environment, the network
configuration on stdin, the result it prints, the error JSON with the spec's codes, and the
conversion of results between spec versions.  `plugin_main` is the "skel": it turns an
environment + stdin into one call of a command handler and turns whatever comes back (a
result or a CniError) into stdout + an exit code.  Keeping it free of netlink means the
whole protocol is unit-testable in-process.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, TextIO

SUPPORTED_VERSIONS: tuple[str, ...] = ("0.4.0", "1.0.0", "1.1.0")
LATEST_VERSION = "1.1.0"
COMMANDS = ("ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC")

# Well-known error codes (SPEC.md "Error" section).
ERR_INCOMPATIBLE_VERSION = 1
ERR_UNSUPPORTED_FIELD = 2
ERR_UNKNOWN_CONTAINER = 3
ERR_INVALID_ENV = 4
ERR_IO = 5
ERR_DECODE = 6
ERR_INVALID_CONFIG = 7
ERR_TRY_AGAIN = 11
ERR_NOT_AVAILABLE = 50          # STATUS: the plugin cannot service ADD requests
ERR_LIMITED_CONNECTIVITY = 51   # STATUS: ... and existing containers may be affected
# Plugin-specific codes (100+): kubelab's own.
ERR_INTERNAL = 100              # a netlink / nft / sysctl operation failed
ERR_NO_FREE_ADDRESS = 101       # IPAM: every address of the range set is taken
ERR_INTERFACE_EXISTS = 102      # ADD: CNI_IFNAME already exists in the container netns
ERR_CHECK_FAILED = 103          # CHECK: the container's networking differs from prevResult
ERR_DELEGATE = 104              # the delegated (IPAM) plugin was not found or did not answer
ERR_ADDRESS_UNAVAILABLE = 105   # IPAM: a requested address is taken or outside the ranges

ERROR_NAMES = {
    ERR_INCOMPATIBLE_VERSION: "incompatible CNI version",
    ERR_UNSUPPORTED_FIELD: "unsupported field in network configuration",
    ERR_UNKNOWN_CONTAINER: "container unknown or does not exist",
    ERR_INVALID_ENV: "invalid necessary environment variables",
    ERR_IO: "I/O failure",
    ERR_DECODE: "failed to decode content",
    ERR_INVALID_CONFIG: "invalid network config",
    ERR_TRY_AGAIN: "try again later",
    ERR_NOT_AVAILABLE: "plugin not available",
    ERR_LIMITED_CONNECTIVITY: "plugin not available, existing containers may lose connectivity",
    ERR_INTERNAL: "kernel operation failed",
    ERR_NO_FREE_ADDRESS: "no free address in range",
    ERR_INTERFACE_EXISTS: "interface already exists",
    ERR_CHECK_FAILED: "check failed",
    ERR_DELEGATE: "delegated plugin failed",
    ERR_ADDRESS_UNAVAILABLE: "requested address unavailable",
}

_CONTAINER_ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")
_NETWORK_NAME_RE = _CONTAINER_ID_RE


class CniError(Exception):
    """An error the plugin reports to the runtime as `{"code","msg","details"}` JSON."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_dict(self, cni_version: str = LATEST_VERSION) -> dict[str, Any]:
        out: dict[str, Any] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CniError":
        code = data.get("code")
        return cls(code if isinstance(code, int) else ERR_INTERNAL,
                   str(data.get("msg", "")), str(data.get("details", "")))

    def __str__(self) -> str:  # readable in logs and test failures
        return f"[{self.code}] {self.msg}" + (f": {self.details}" if self.details else "")


def version_tuple(version: str) -> tuple[int, ...]:
    """'1.0.0' -> (1, 0, 0); raises CniError(1) for garbage so callers need no try."""
    try:
        parts = tuple(int(p) for p in version.split("."))
    except (AttributeError, ValueError):
        raise CniError(ERR_INCOMPATIBLE_VERSION, f"malformed cniVersion {version!r}") from None
    if len(parts) != 3:
        raise CniError(ERR_INCOMPATIBLE_VERSION, f"malformed cniVersion {version!r}")
    return parts


def require_supported(version: str) -> str:
    if version not in SUPPORTED_VERSIONS:
        raise CniError(ERR_INCOMPATIBLE_VERSION,
                       f"incompatible CNI versions; config is {version!r}, "
                       f"plugin supports {list(SUPPORTED_VERSIONS)}")
    return version


# ---------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Env:
    """The CNI_* variables of one invocation, validated for its command."""

    command: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: dict[str, str] = field(default_factory=dict)
    path: tuple[str, ...] = ()
    raw_args: str = ""
    # The whole environment, for delegating to IPAM "with the same env".
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)


def parse_cni_args(text: str) -> dict[str, str]:
    """CNI_ARGS 'K=V;K2=V2' -> dict.  A pair without '=' is an error (code 4)."""
    out: dict[str, str] = {}
    if not text:
        return out
    for pair in text.split(";"):
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CniError(ERR_INVALID_ENV, "invalid CNI_ARGS", f"pair {pair!r} is not KEY=VALUE")
        out[key] = value
    return out


def validate_ifname(name: str) -> None:
    if not name:
        raise CniError(ERR_INVALID_ENV, "required env variable CNI_IFNAME missing")
    if (name in (".", "..") or len(name) > 15 or "/" in name or ":" in name
            or any(c.isspace() for c in name)):
        raise CniError(ERR_INVALID_ENV, f"invalid CNI_IFNAME {name!r}",
                       "must be 1-15 characters, not '.' or '..', without '/', ':' or spaces")


def validate_container_id(cid: str) -> None:
    if not cid:
        raise CniError(ERR_INVALID_ENV, "required env variable CNI_CONTAINERID missing")
    if not _CONTAINER_ID_RE.match(cid):
        raise CniError(ERR_INVALID_ENV, f"invalid CNI_CONTAINERID {cid!r}",
                       "must start with an alphanumeric, then alphanumerics, '_', '.' or '-'")


# Which variables each command needs (SPEC.md "Parameters"; DEL may omit the netns).
_REQUIRED = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
    "STATUS": ("CNI_PATH",),
    "GC": ("CNI_PATH",),
    "VERSION": (),
}


def parse_env(environ: Mapping[str, str]) -> Env:
    """Validate the CNI_* variables for the requested command (every failure is code 4)."""
    command = environ.get("CNI_COMMAND", "")
    if not command:
        raise CniError(ERR_INVALID_ENV, "required env variable CNI_COMMAND missing")
    if command not in COMMANDS:
        raise CniError(ERR_INVALID_ENV, f"unknown CNI_COMMAND {command!r}",
                       f"expected one of {', '.join(COMMANDS)}")
    for var in _REQUIRED[command]:
        if not environ.get(var):
            raise CniError(ERR_INVALID_ENV, f"required env variable {var} missing",
                           f"{command} needs {', '.join(_REQUIRED[command])}")
    cid = environ.get("CNI_CONTAINERID", "")
    ifname = environ.get("CNI_IFNAME", "")
    if "CNI_CONTAINERID" in _REQUIRED[command]:
        validate_container_id(cid)
    if "CNI_IFNAME" in _REQUIRED[command]:
        validate_ifname(ifname)
    netns = environ.get("CNI_NETNS", "")
    if netns and not os.path.isabs(netns):
        raise CniError(ERR_INVALID_ENV, f"CNI_NETNS must be an absolute path, got {netns!r}")
    raw_args = environ.get("CNI_ARGS", "")
    return Env(
        command=command,
        container_id=cid,
        netns=netns,
        ifname=ifname,
        args=parse_cni_args(raw_args),
        path=tuple(p for p in environ.get("CNI_PATH", "").split(os.pathsep) if p),
        raw_args=raw_args,
        environ=dict(environ),
    )


# ---------------------------------------------------------------------------------------
# Network configuration
# ---------------------------------------------------------------------------------------

def decode_json(data: bytes | str, what: str = "network configuration") -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise CniError(ERR_DECODE, f"failed to decode {what}", str(e)) from None


def highest_common_version(candidates: list[str]) -> str | None:
    """1.1 `cniVersions`: the runtime picks the highest version both sides support."""
    ours = [v for v in candidates if v in SUPPORTED_VERSIONS]
    return max(ours, key=version_tuple) if ours else None


def plugin_configs(conflist: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Split a network configuration list into the single-plugin configs a runtime passes
    on stdin: each `plugins[i]` with the list's `name` and `cniVersion` injected."""
    if not isinstance(conflist, Mapping):
        raise CniError(ERR_INVALID_CONFIG, "network configuration list must be a JSON object")
    name = conflist.get("name")
    if not isinstance(name, str) or not _NETWORK_NAME_RE.match(name):
        raise CniError(ERR_INVALID_CONFIG, f"invalid or missing network name {name!r}")
    version = conflist.get("cniVersion")
    versions = conflist.get("cniVersions")
    if versions is not None:
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            raise CniError(ERR_INVALID_CONFIG, "cniVersions must be a list of strings")
        picked = highest_common_version(versions)
        if picked is None:
            raise CniError(ERR_INCOMPATIBLE_VERSION,
                           f"none of cniVersions {versions} is supported")
        version = picked
    if not isinstance(version, str):
        raise CniError(ERR_INVALID_CONFIG, "network configuration has no cniVersion")
    require_supported(version)
    plugins = conflist.get("plugins")
    if not isinstance(plugins, list) or not plugins:
        raise CniError(ERR_INVALID_CONFIG, "network configuration list needs a non-empty 'plugins'")
    out = []
    for i, p in enumerate(plugins):
        if not isinstance(p, Mapping) or not isinstance(p.get("type"), str) or not p["type"]:
            raise CniError(ERR_INVALID_CONFIG, f"plugins[{i}] has no type")
        conf = dict(p)
        conf["name"] = name
        conf["cniVersion"] = version
        out.append(conf)
    return out


def load_config(data: bytes | str, *, plugin_type: str | None = None) -> dict[str, Any]:
    """Decode + validate the stdin configuration common to every plugin.

    A whole conflist (a `plugins` list) is accepted too, for hand use: the entry whose
    type is `plugin_type` (else the first) is picked, with name + cniVersion injected.
    """
    conf = decode_json(data)
    if not isinstance(conf, dict):
        raise CniError(ERR_INVALID_CONFIG, "network configuration must be a JSON object")
    if "plugins" in conf:
        configs = plugin_configs(conf)
        mine = [c for c in configs if plugin_type and c["type"] == plugin_type]
        conf = (mine or configs)[0]
    version = conf.get("cniVersion")
    if not isinstance(version, str) or not version:
        raise CniError(ERR_INVALID_CONFIG, "network configuration has no cniVersion")
    version_tuple(version)
    require_supported(version)
    name = conf.get("name")
    if not isinstance(name, str) or not _NETWORK_NAME_RE.match(name):
        raise CniError(ERR_INVALID_CONFIG, f"invalid or missing network name {name!r}",
                       "alphanumeric start, then alphanumerics, '_', '.' or '-'")
    if not isinstance(conf.get("type"), str) or not conf["type"]:
        raise CniError(ERR_INVALID_CONFIG, "network configuration has no type")
    return conf


def valid_attachments(conf: Mapping[str, Any]) -> set[tuple[str, str]]:
    """GC input: `cni.dev/valid-attachments` (libcni also sends `cni.dev/attachments`)."""
    raw = conf.get("cni.dev/valid-attachments", conf.get("cni.dev/attachments", []))
    if not isinstance(raw, list):
        raise CniError(ERR_INVALID_CONFIG, "cni.dev/valid-attachments must be a list")
    out = set()
    for a in raw:
        if not isinstance(a, Mapping) or not isinstance(a.get("containerID"), str):
            raise CniError(ERR_INVALID_CONFIG, f"bad valid-attachment entry {a!r}")
        out.add((a["containerID"], str(a.get("ifname", ""))))
    return out


# ---------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------

# Fields that appeared in 1.1.0 (dropped when printing an older version).
_IFACE_11_FIELDS = ("mtu", "socketPath", "pciID")
_ROUTE_11_FIELDS = ("mtu", "advmss", "priority", "table", "scope")


@dataclass
class Interface:
    name: str
    mac: str = ""
    sandbox: str = ""
    mtu: int = 0

    def to_dict(self, version: str) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name}
        if self.mac:
            d["mac"] = self.mac
        if self.mtu and version_tuple(version) >= (1, 1, 0):
            d["mtu"] = self.mtu
        if self.sandbox:
            d["sandbox"] = self.sandbox
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Interface":
        return cls(name=str(d.get("name", "")), mac=str(d.get("mac", "")),
                   sandbox=str(d.get("sandbox", "")), mtu=int(d.get("mtu") or 0))


@dataclass
class IPConfig:
    address: str                     # CIDR: "10.244.1.5/24"
    gateway: str = ""
    interface: int | None = None     # index into Result.interfaces

    @property
    def interface_address(self) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        return ipaddress.ip_interface(self.address)

    def to_dict(self, version: str) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if version_tuple(version) < (1, 0, 0):
            d["version"] = str(self.interface_address.version)
        if self.interface is not None:
            d["interface"] = self.interface
        d["address"] = self.address
        if self.gateway:
            d["gateway"] = self.gateway
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "IPConfig":
        try:
            ipaddress.ip_interface(d["address"])
        except (KeyError, ValueError, TypeError):
            raise CniError(ERR_DECODE, f"bad ips entry {dict(d)!r}") from None
        iface = d.get("interface")
        return cls(address=str(d["address"]), gateway=str(d.get("gateway") or ""),
                   interface=iface if isinstance(iface, int) else None)


@dataclass
class Route:
    dst: str
    gw: str = ""
    extra: dict[str, Any] = field(default_factory=dict)   # 1.1 mtu/advmss/priority/table/scope

    def to_dict(self, version: str) -> dict[str, Any]:
        d: dict[str, Any] = {"dst": self.dst}
        if self.gw:
            d["gw"] = self.gw
        if version_tuple(version) >= (1, 1, 0):
            d.update({k: v for k, v in self.extra.items() if k in _ROUTE_11_FIELDS})
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Route":
        try:
            ipaddress.ip_network(d["dst"], strict=False)
            if d.get("gw"):
                ipaddress.ip_address(d["gw"])
        except (KeyError, ValueError, TypeError):
            raise CniError(ERR_INVALID_CONFIG, f"bad route {d!r}") from None
        return cls(dst=str(d["dst"]), gw=str(d.get("gw") or ""),
                   extra={k: d[k] for k in _ROUTE_11_FIELDS if k in d})


@dataclass
class DNS:
    nameservers: list[str] = field(default_factory=list)
    domain: str = ""
    search: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    def is_set(self) -> bool:
        return bool(self.nameservers or self.domain or self.search or self.options)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.nameservers:
            d["nameservers"] = list(self.nameservers)
        if self.domain:
            d["domain"] = self.domain
        if self.search:
            d["search"] = list(self.search)
        if self.options:
            d["options"] = list(self.options)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "DNS":
        d = d or {}
        if not isinstance(d, Mapping):
            raise CniError(ERR_INVALID_CONFIG, "dns must be an object")
        return cls(nameservers=list(d.get("nameservers") or []), domain=str(d.get("domain") or ""),
                   search=list(d.get("search") or []), options=list(d.get("options") or []))


@dataclass
class Result:
    """One result in memory, printable as any supported spec version."""

    interfaces: list[Interface] = field(default_factory=list)
    ips: list[IPConfig] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    dns: DNS = field(default_factory=DNS)

    def to_dict(self, version: str) -> dict[str, Any]:
        require_supported(version)
        d: dict[str, Any] = {"cniVersion": version}
        if self.interfaces:
            d["interfaces"] = [i.to_dict(version) for i in self.interfaces]
        d["ips"] = [ip.to_dict(version) for ip in self.ips]
        if self.routes:
            d["routes"] = [r.to_dict(version) for r in self.routes]
        d["dns"] = self.dns.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Result":
        """Parse a result of any supported version (0.4.0 `ips[].version` is just dropped)."""
        if not isinstance(d, Mapping):
            raise CniError(ERR_DECODE, "result must be a JSON object")
        version = d.get("cniVersion")
        if not isinstance(version, str):
            raise CniError(ERR_DECODE, "result has no cniVersion")
        require_supported(version)
        try:
            return cls(
                interfaces=[Interface.from_dict(i) for i in d.get("interfaces") or []],
                ips=[IPConfig.from_dict(i) for i in d.get("ips") or []],
                routes=[Route.from_dict(r) for r in d.get("routes") or []],
                dns=DNS.from_dict(d.get("dns")),
            )
        except (AttributeError, TypeError, ValueError) as e:
            raise CniError(ERR_DECODE, "malformed result", str(e)) from None


def convert_result(result: Mapping[str, Any], to_version: str) -> dict[str, Any]:
    """Re-express a result dict in another spec version (0.4.0 <-> 1.0.0 <-> 1.1.0)."""
    return Result.from_dict(result).to_dict(to_version)


# ---------------------------------------------------------------------------------------
# The skel: environment + stdin -> handler -> stdout + exit code
# ---------------------------------------------------------------------------------------

Handler = Callable[[Env, dict[str, Any], bytes], "Result | dict | None"]


@dataclass
class Plugin:
    """A plugin's command handlers.  ADD returns a Result; others return None (or, for
    IPAM ADD, a Result without interfaces)."""

    name: str
    about: str
    add: Handler
    delete: Handler
    check: Handler
    status: Handler
    gc: Handler


def version_info(stdin: bytes) -> dict[str, Any]:
    """VERSION: stdin may carry the runtime's cniVersion (1.0+); echo it if we support it."""
    version = LATEST_VERSION
    if stdin.strip():
        conf = decode_json(stdin)
        if isinstance(conf, dict) and isinstance(conf.get("cniVersion"), str):
            version = require_supported(conf["cniVersion"])
    return {"cniVersion": version, "supportedVersions": list(SUPPORTED_VERSIONS)}


def dispatch(plugin: Plugin, environ: Mapping[str, str], stdin: bytes) -> dict[str, Any] | None:
    """Run one command; returns the JSON to print (None = print nothing) or raises CniError."""
    env = parse_env(environ)
    if env.command == "VERSION":
        return version_info(stdin)
    conf = load_config(stdin, plugin_type=plugin.name)
    version = conf["cniVersion"]
    if env.command == "CHECK" and version_tuple(version) < (0, 4, 0):
        raise CniError(ERR_INCOMPATIBLE_VERSION, f"config version {version} does not allow CHECK")
    if env.command in ("STATUS", "GC") and version_tuple(version) < (1, 1, 0):
        raise CniError(ERR_INCOMPATIBLE_VERSION,
                       f"config version {version} does not allow {env.command} (needs 1.1.0)")
    handler = {"ADD": plugin.add, "DEL": plugin.delete, "CHECK": plugin.check,
               "STATUS": plugin.status, "GC": plugin.gc}[env.command]
    out = handler(env, conf, stdin)
    if env.command != "ADD":
        return None
    if isinstance(out, Result):
        return out.to_dict(version)
    return out


def plugin_main(plugin: Plugin, *, argv: list[str] | None = None,
                environ: Mapping[str, str] | None = None, stdin: bytes | None = None,
                stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """The executable's body: never raises, never prints a traceback to the runtime."""
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    if argv and argv[0] in ("-h", "--help", "help"):
        stdout.write(plugin.about.rstrip() + "\n")
        return 0
    if argv and argv[0] in ("--version", "version"):
        stdout.write(json.dumps(version_info(b"")) + "\n")
        return 0
    # Best guess at the version to report errors in, before the config is parsed.
    err_version = LATEST_VERSION
    try:
        if stdin is None:
            try:
                stdin = b"" if sys.stdin is None or sys.stdin.isatty() \
                    else sys.stdin.buffer.read()
            except OSError as e:
                raise CniError(ERR_IO, "failed to read network configuration from stdin", str(e)) from None
        try:
            guess = json.loads(stdin)
            if isinstance(guess, dict) and guess.get("cniVersion") in SUPPORTED_VERSIONS:
                err_version = guess["cniVersion"]
        except (ValueError, UnicodeDecodeError):
            pass
        out = dispatch(plugin, environ, stdin)
    except CniError as e:
        stdout.write(json.dumps(e.to_dict(err_version)) + "\n")
        stdout.flush()
        return 1
    except Exception as e:  # noqa: BLE001 - a plugin must answer in JSON, not a traceback
        err = CniError(ERR_INTERNAL, f"{plugin.name}: unexpected error", f"{type(e).__name__}: {e}")
        stdout.write(json.dumps(err.to_dict(err_version)) + "\n")
        stdout.flush()
        return 1
    if out is not None:
        stdout.write(json.dumps(out) + "\n")
    stdout.flush()
    return 0
