"""What a pod's stub resolver does with a name: resolv.conf parsed, the names it asks in order,
and why. Pure; shared by `kubelab trace` (the DNS hop) and the lab kit (the dns-search answer).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resolv:
    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    ndots: int = 1   # resolv.conf(5): the default is 1; glibc caps the option at 15


def parse_resolv_conf(text: str) -> Resolv:
    ns: list[str] = []
    search: list[str] = []
    ndots = 1
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            ns.append(parts[1])
        elif parts[0] in ("search", "domain"):
            search = parts[1:]
        elif parts[0] == "options":
            for opt in parts[1:]:
                if opt.startswith("ndots:") and opt[6:].isdigit():
                    ndots = min(15, int(opt[6:]))
    return Resolv(tuple(ns), tuple(search), ndots)


def search_candidates(name: str, resolv: Resolv) -> list[str]:
    """The names a glibc resolver tries, in order (resolv.conf(5), res_search):
    - a name ending in a dot is absolute: asked once, as it is; no search list, ndots plays no part;
    - a name with at least `ndots` dots: asked as it is first, then with each search domain;
    - otherwise: with each search domain first, then as it is.
    It stops at the first answer (NXDOMAIN or an empty answer moves on to the next name)."""
    if name.endswith("."):
        return [name]
    expanded = [f"{name}.{d.rstrip('.')}." for d in resolv.search]
    if name.count(".") >= resolv.ndots:
        return [f"{name}."] + expanded
    return expanded + [f"{name}."]


def resolver_rule(name: str, ndots: int, search: tuple[str, ...] | list[str]) -> str:
    """Why the resolver asks the names of `search_candidates` in that order, in one sentence."""
    if name.endswith("."):
        return (f"{name!r} ends with a dot: an absolute name, asked once as it is "
                "(the search list and ndots do not apply)")
    dots = name.count(".")
    if not search:
        return f"{name!r} has {dots} dot(s) and there is no search list: asked once as {name}."
    if dots >= ndots:
        return (f"{name!r} has {dots} dot(s), at least ndots:{ndots}: asked as it is first, then with each of "
                f"the {len(search)} search domain(s)")
    return (f"{name!r} has {dots} dot(s), fewer than ndots:{ndots}: each of the {len(search)} search domain(s) "
            f"is tried first, in order, then the name as it is")
