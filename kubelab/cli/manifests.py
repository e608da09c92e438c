"""Reading `-f FILE|DIR|-`: YAML (multi-document) or JSON, `kind: List` flattened."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

import yaml

from .context import CliError

EXTENSIONS = (".yaml", ".yml", ".json")


@dataclass
class Manifest:
    obj: dict
    source: str  # file name (or "STDIN"), for error lines


def _files(path: str, recursive: bool) -> list[str]:
    if path == "-":
        return ["-"]
    if os.path.isdir(path):
        out = []
        for root, dirs, files in os.walk(path):
            dirs.sort()
            out.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(EXTENSIONS))
            if not recursive:
                break
        return out
    if not os.path.exists(path):
        raise CliError(f'the path "{path}" does not exist')
    return [path]


def _json_stream(text: str) -> list | None:
    """One or more concatenated JSON values (kubectl reads JSON streams); None if not JSON."""
    dec = json.JSONDecoder()
    docs, i = [], 0
    while i < len(text):
        try:
            value, i = dec.raw_decode(text, i)
        except ValueError:
            return None
        docs.append(value)
        while i < len(text) and text[i].isspace():
            i += 1
    return docs


def parse_documents(text: str, source: str) -> list[dict]:
    """All objects in one file's text; `List` kinds contribute their items."""
    stripped = text.lstrip()
    docs = _json_stream(stripped) if stripped.startswith(("{", "[")) else None
    if docs is None:
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise CliError(f"error parsing {source}: {problem}{where}") from None
    out: list[dict] = []

    def add(doc) -> None:
        if doc is None:
            return
        if isinstance(doc, list):
            for d in doc:
                add(d)
            return
        if not isinstance(doc, dict):
            raise CliError(f"error validating data in {source}: expected an object, got {type(doc).__name__}")
        if doc.get("kind", "").endswith("List") and isinstance(doc.get("items"), list):
            for d in doc["items"]:
                add(d)
            return
        if not doc.get("kind") or not doc.get("apiVersion"):
            missing = "kind" if not doc.get("kind") else "apiVersion"
            raise CliError(f'error validating data in {source}: {missing} not set')
        out.append(doc)

    for d in docs:
        add(d)
    return out


def read(paths: list[str], *, recursive: bool = False) -> list[Manifest]:
    result: list[Manifest] = []
    for p in paths:
        for f in _files(p, recursive):
            if f == "-":
                text, source = sys.stdin.read(), "STDIN"
            else:
                try:
                    with open(f, encoding="utf-8") as fh:
                        text = fh.read()
                except OSError as e:
                    raise CliError(f"cannot read {f}: {e.strerror}") from None
                source = f
            result.extend(Manifest(o, source) for o in parse_documents(text, source))
    if not result:
        raise CliError("no objects passed to apply" if paths else "must specify -f")
    return result
