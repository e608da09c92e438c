"""YAML request bodies, decoded without letting aliases explode (CVE-2019-11253's class).

Why this exists: a YAML alias (`*a`) refers to an anchored node (`&a [...]`) without copying
it, so nine lines of nine aliases each describe 9^9 nodes in 400 bytes. PyYAML builds that
as shared Python objects, cheaply; everything after it (depth checks, unknown-field pruning,
`json.dumps`, deep copies) walks the *expanded* tree and blocks the event loop for hours.

So before any tree is built, one pass over the parser's events (libyaml's, in C) counts how
many nodes the document expands to: an anchored node records its expanded size, each alias
adds it again. Aliases may add at most `MAX_ALIAS_NODES` nodes in all (legitimate manifests
with a shared block or two fit easily); an alias to a node still open (a recursive
structure, which JSON cannot represent) is refused too. Only then is the document loaded.

Invariant: `load` either returns plain JSON-compatible data whose expanded size is at most
the number of parser events plus MAX_ALIAS_NODES, or raises `YamlBodyError` (a 400).
"""

from __future__ import annotations

import yaml

MAX_ALIAS_NODES = 10_000  # nodes that aliases may add beyond the ones written out
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlBodyError(ValueError):
    """The body is not YAML we will decode; `str(e)` is the message for the 400 Status."""


def check_aliases(body: bytes | str, *, limit: int = MAX_ALIAS_NODES) -> None:
    """Raise YamlBodyError when aliases in `body` would expand to more than `limit` extra
    nodes, or refer to a node that is not complete. Pure; one pass over the events."""
    anchors: dict[str, int] = {}
    stack: list[list] = [[None, 0]]  # open collections: [anchor, expanded node count]
    extra = 0
    try:
        for ev in yaml.parse(body, Loader=_Loader):
            if isinstance(ev, yaml.ScalarEvent):
                if ev.anchor:
                    anchors[ev.anchor] = 1
                stack[-1][1] += 1
            elif isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                stack.append([ev.anchor, 1])
            elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                anchor, n = stack.pop()
                if anchor:
                    anchors[anchor] = n
                stack[-1][1] += n
            elif isinstance(ev, yaml.AliasEvent):
                n = anchors.get(ev.anchor)
                if n is None:
                    raise YamlBodyError(f"error decoding YAML: alias *{ev.anchor} does not refer to a "
                                        f"complete anchored node")
                extra += n
                if extra > limit:
                    raise YamlBodyError(f"error decoding YAML: document contains excessive aliasing "
                                        f"(aliases expand to more than {limit} nodes)")
                stack[-1][1] += n
    except yaml.YAMLError as e:
        raise YamlBodyError(f"error decoding YAML: {e}") from None


def load(body: bytes | str):
    """The one document in `body`, as plain data; YamlBodyError for bad or bombing YAML."""
    check_aliases(body)
    try:
        return yaml.load(body, Loader=_Loader)
    except RecursionError:
        raise YamlBodyError("error decoding YAML: nested too deeply") from None
    except yaml.YAMLError as e:
        raise YamlBodyError(f"error decoding YAML: {e}") from None
    except ValueError as e:  # e.g. an integer with more digits than Python converts
        raise YamlBodyError(f"error decoding YAML: {e}") from None
