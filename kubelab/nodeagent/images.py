"""The image catalogue: there is no registry, so an image name maps to a program on the node.

Pure: an image reference and a container spec in, an argv out (`resolve`). The real
Kubernetes splits a container's command into the image's ENTRYPOINT + CMD, overridden by
`command` + `args`; each catalogue entry has the same two parts, so the usual rules apply:
`command` replaces the entrypoint (and drops the default args), `args` replaces the args.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass


class ImageError(Exception):
    """An image the catalogue does not know (status: waiting, reason ErrImagePull)."""

    reason = "ErrImagePull"


@dataclass(frozen=True)
class Image:
    name: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    description: str


def _py(module: str) -> tuple[str, ...]:
    return (sys.executable, "-m", module)


NGINX_MARKER = "@nginx"  # replaced by the runtime with the per-pod config (see containers.nginx_argv)

CATALOGUE: dict[str, Image] = {
    "nginx": Image("nginx", (), (NGINX_MARKER,),
                   "Debian's nginx serving its default page on port 80 (per-pod prefix and config)"),
    "busybox": Image("busybox", (), ("sleep", "infinity"), "a shell with the node's tools"),
    "debian": Image("debian", (), ("sleep", "infinity"), "a shell with the node's tools"),
    "ubuntu": Image("ubuntu", (), ("sleep", "infinity"), "a shell with the node's tools"),
    "alpine": Image("alpine", (), ("sleep", "infinity"), "a shell with the node's tools"),
    "agnhost": Image("agnhost", _py("kubelab.nodeagent.agnhost"), ("netexec",),
                     "agnhost-compatible: netexec (/hostname, /clientip, /echo, /dial), serve-hostname, connect, porter"),
    "ingress-nginx/controller": Image("ingress-nginx/controller", _py("kubelab.ingress"), (),
                                      "the ingress controller (python -m kubelab.ingress) with Debian's nginx"),
    "kubelab/dns": Image("kubelab/dns", _py("kubelab.dns"), (), "the cluster DNS server (python -m kubelab.dns)"),
}


def repository(image: str) -> str:
    """`registry.k8s.io/e2e-test-images/agnhost:2.39` → `e2e-test-images/agnhost`;
    `docker.io/library/nginx:1.25@sha256:..` → `library/nginx`."""
    ref = image.split("@", 1)[0]
    parts = ref.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    last = parts[-1].split(":", 1)[0]
    return "/".join(parts[:-1] + [last])


def lookup(image: str) -> Image | None:
    """The catalogue entry for an image reference: whole repository first, then its last part."""
    repo = repository(image)
    if repo in CATALOGUE:
        return CATALOGUE[repo]
    if repo.startswith("library/") and repo[8:] in CATALOGUE:
        return CATALOGUE[repo[8:]]
    return CATALOGUE.get(repo.rsplit("/", 1)[-1])


def image_id(image: str) -> str:
    """A stable imageID (the catalogue has no digests; hash what the name maps to)."""
    entry = lookup(image)
    basis = f"{entry.name}:{entry.entrypoint}:{entry.cmd}" if entry else image
    return f"kubelab.local/{repository(image)}@sha256:{hashlib.sha256(basis.encode()).hexdigest()}"


def resolve(image: str, command: list[str] | None, args: list[str] | None) -> list[str]:
    """The argv a container runs. An explicit `command` runs whatever the image is."""
    command = list(command or [])
    args = list(args or [])
    if command:
        return command + args
    entry = lookup(image)
    if entry is None:
        known = ", ".join(sorted(CATALOGUE))
        raise ImageError(f'image "{image}" is not in kubelab\'s image catalogue (no registry here); '
                         f"known images: {known}; or give the container a command")
    if args:
        if not entry.entrypoint:
            return args  # like an image with only a CMD: args replace it
        return list(entry.entrypoint) + args
    argv = list(entry.entrypoint) + list(entry.cmd)
    if not argv:
        raise ImageError(f'image "{image}" has no default command; give the container args')
    return argv
