"""`-o go-template=...`: a small, documented subset of Go's text/template, evaluated over the
object (or the List) as kubectl does.

No maintained Python library speaks Go templates, so this module implements the part people
use with kubectl and refuses the rest with a one-line error naming the construct (never a
silently wrong output). Supported:

- text, and actions `{{ ... }}` with the trim markers `{{-` / `-}}`;
- `.`, field chains `.metadata.name`, `$` and `$.spec` (the top object);
- string (`"..."` with Go escapes, and raw back-quoted), integer and `true`/`false` literals;
- `{{range PIPELINE}} ... {{else}} ... {{end}}` over lists (in order) and maps (sorted keys),
  `{{if PIPELINE}} ... {{else}} ... {{end}}` (Go's truth: empty/zero/missing is false);
- the functions `index X KEY...`, `len X`, `printf FORMAT ARGS...` (`%s %d %v %q %%`), `eq`,
  `ne`, `not`, `and`, `or`.

Refused: variables (`$x :=`), pipes `|`, parentheses, `with`, `define`/`template`/`block`,
comments, and any other function. A missing key prints `<no value>`, as Go's default.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field


class TemplateError(ValueError):
    pass


@dataclass
class Node:
    kind: str                      # text | action | range | if
    text: str = ""
    args: list = field(default_factory=list)   # the pipeline's tokens
    body: list = field(default_factory=list)
    orelse: list = field(default_factory=list)


_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|`[^`]*`|\$[A-Za-z_][A-Za-z0-9_]*|\$?(?:\.[A-Za-z0-9_\-]*)+|\$|-?[0-9]+|[A-Za-z_][A-Za-z0-9_]*|\S)')
FUNCTIONS = ("index", "len", "printf", "eq", "ne", "not", "and", "or")
_REFUSED = {"with": "{{with}}", "define": "{{define}}", "template": "{{template}}", "block": "{{block}}",
            "break": "{{break}}", "continue": "{{continue}}"}


def parse(template: str) -> list[Node]:
    items: list = []
    pos = 0
    for m in _ACTION.finditer(template):
        text = template[pos:m.start()]
        if m.group(1):
            text = text.rstrip()
        items.append(("text", text))
        items.append(("action", m.group(2).strip()))
        pos = m.end()
        if m.group(3):
            rest = template[pos:]
            pos += len(rest) - len(rest.lstrip())
    items.append(("text", template[pos:]))
    if "{{" in "".join(t for k, t in items if k == "text"):
        raise TemplateError("unclosed action (a `{{` without `}}`)")
    nodes, i, end = _parse_block(items, 0, top=True)
    return nodes


def _parse_block(items: list, i: int, *, top: bool) -> tuple[list[Node], int, str]:
    nodes: list[Node] = []
    while i < len(items):
        kind, text = items[i]
        i += 1
        if kind == "text":
            if text:
                nodes.append(Node("text", text))
            continue
        if text.startswith("/*"):
            raise TemplateError("comments ({{/* */}}) are not supported by kubelab's go-template subset")
        words = text.split(None, 1)
        head = words[0] if words else ""
        if head in ("end", "else"):
            if top:
                raise TemplateError(f"unexpected {{{{{head}}}}}")
            return nodes, i, head
        if head in ("range", "if"):
            node = Node(head, args=_tokens(words[1] if len(words) > 1 else "", text))
            node.body, i, how = _parse_block(items, i, top=False)
            if how == "else":
                node.orelse, i, how = _parse_block(items, i, top=False)
                if how != "end":
                    raise TemplateError(f"{{{{else}}}} may appear once in {{{{{head}}}}}")
            nodes.append(node)
            continue
        if head in _REFUSED:
            raise TemplateError(f"{_REFUSED[head]} is not supported by kubelab's go-template subset")
        nodes.append(Node("action", args=_tokens(text, text)))
    if not top:
        raise TemplateError("missing {{end}}")
    return nodes, i, ""


def _tokens(text: str, action: str) -> list:
    if not text.strip():
        raise TemplateError(f"missing value in {{{{{action}}}}}")
    out: list = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            break
        tok = m.group(1)
        pos = m.end()
        if tok in ("|", "(", ")"):
            raise TemplateError(f"{tok!r} (pipes and parentheses) is not supported by kubelab's go-template subset")
        if tok in (":=", ":", "=") or re.fullmatch(r"\$[A-Za-z_][A-Za-z0-9_]*", tok):
            raise TemplateError("variables ($x := ...) are not supported by kubelab's go-template subset")
        if tok[0] == '"':
            out.append(("str", json.loads(tok)))
        elif tok[0] == "`":
            out.append(("str", tok[1:-1]))
        elif tok[0] in ".$":
            out.append(("path", tok))
        elif re.fullmatch(r"-?[0-9]+", tok):
            out.append(("int", int(tok)))
        elif tok in ("true", "false"):
            out.append(("bool", tok == "true"))
        elif tok == "nil":
            out.append(("nil", None))
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", tok):
            if tok not in FUNCTIONS:
                raise TemplateError(f'function "{tok}" not defined (kubelab supports: {", ".join(FUNCTIONS)})')
            out.append(("func", tok))
        else:
            raise TemplateError(f"unexpected {tok!r} in {{{{{action}}}}}")
    if out[0][0] != "func" and len(out) > 1:
        raise TemplateError(f"can't give argument to non-function in {{{{{action}}}}}")
    return out


_MISSING = object()


def _path(tok: str, dot, root):
    base, rest = (root, tok[1:]) if tok.startswith("$") else (dot, tok)
    v = base
    for name in [p for p in rest.split(".") if p]:
        if isinstance(v, dict):
            v = v.get(name, _MISSING)
        else:
            return _MISSING
        if v is _MISSING:
            return _MISSING
    return v


def _value(tok, dot, root):
    kind, v = tok
    return _path(v, dot, root) if kind == "path" else v


def _truth(v) -> bool:
    return v is not _MISSING and v is not None and v is not False and v != 0 and v != "" and v != [] and v != {}


def _call(name: str, args: list):
    if name == "index":
        if not args:
            raise TemplateError("index needs a value")
        v = args[0]
        for k in args[1:]:
            if v is _MISSING or v is None:
                return _MISSING  # a missing map (no labels at all) indexes to <no value>
            if isinstance(v, dict):
                v = v.get(k, _MISSING) if isinstance(k, str) else _MISSING
            elif isinstance(v, list) and isinstance(k, int):
                if not 0 <= k < len(v):
                    raise TemplateError(f"index out of range: {k}")
                v = v[k]
            else:
                raise TemplateError(f"can't index item of type {type(v).__name__}")
        return v
    if name == "len":
        if len(args) != 1 or not isinstance(args[0], (str, list, dict)):
            raise TemplateError("len of a value that has no length")
        return len(args[0])
    if name == "printf":
        if not args or not isinstance(args[0], str):
            raise TemplateError("printf needs a format string")
        return _printf(args[0], args[1:])
    if name in ("eq", "ne"):
        if len(args) < 2:
            raise TemplateError(f"{name} needs two values")
        same = any(args[0] == b for b in args[1:])
        return same if name == "eq" else not same
    if name == "not":
        return not _truth(args[0]) if args else True
    if name == "and":
        for a in args:
            if not _truth(a):
                return a
        return args[-1] if args else True
    if name == "or":
        for a in args:
            if _truth(a):
                return a
        return args[-1] if args else False
    raise TemplateError(f'function "{name}" not defined')


def _printf(fmt: str, args: list) -> str:
    out, i, n = [], 0, 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        verb = fmt[i + 1:i + 2]
        i += 2
        if verb == "%":
            out.append("%")
            continue
        if verb not in ("s", "d", "v", "q"):
            raise TemplateError(f"printf verb %{verb} is not supported (use %s %d %v %q)")
        a = args[n] if n < len(args) else _MISSING
        n += 1
        out.append(json.dumps(_text(a)) if verb == "q" else _text(a))
    return "".join(out)


def _eval(tokens: list, dot, root):
    if tokens[0][0] == "func":
        return _call(tokens[0][1], [_value(t, dot, root) for t in tokens[1:]])
    return _value(tokens[0], dot, root)


def _text(v) -> str:
    """Go's fmt %v for decoded JSON values."""
    if v is _MISSING or v is None:
        return "<no value>" if v is _MISSING else "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(int(v)) if v.is_integer() and abs(v) < 1e21 else repr(v)
    if isinstance(v, list):
        return "[" + " ".join(_text(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_text(v[k])}" for k in sorted(v)) + "]"
    return str(v)


def _render(nodes: list[Node], dot, root, out: list[str]) -> None:
    for n in nodes:
        if n.kind == "text":
            out.append(n.text)
        elif n.kind == "action":
            out.append(_text(_eval(n.args, dot, root)))
        elif n.kind == "if":
            _render(n.body if _truth(_eval(n.args, dot, root)) else n.orelse, dot, root, out)
        elif n.kind == "range":
            v = _eval(n.args, dot, root)
            items = [v[k] for k in sorted(v)] if isinstance(v, dict) else v if isinstance(v, list) else []
            if v is not _MISSING and v is not None and not isinstance(v, (list, dict)):
                raise TemplateError(f"range can't iterate over {_text(v)}")
            if not items:
                _render(n.orelse, dot, root, out)
            for item in items:
                _render(n.body, item, root, out)


def render(template: str, data) -> str:
    out: list[str] = []
    _render(parse(template), data, data, out)
    return "".join(out)
