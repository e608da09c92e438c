"""kubectl's JSONPath templates (`-o jsonpath=...`, custom-columns), as a small pure evaluator.

Why not a PyPI JSONPath library: kubectl's syntax is a template language (`{...}` actions
between literal text, `{range ...}{end}`, `{"\\n"}` literals) and its filters are written
`[?(@.type=="Ready")]`; jsonpath-ng covers neither, so a wrapper would be as large as this.

Supported (kubectl's documented subset): `$`, `@`, `.field`, `['field']`, `..field`
(recursive descent), `*`/`[*]`, `[n]` (negative too), `[start:end:step]`, `[a,b]` unions,
filters `[?(@.a.b == "x")]` with `== != < <= > >=` or bare existence `[?(@.a)]`,
`{range EXPR}...{end}`, quoted literals, `\\.` for a dot inside a field name
(`{.metadata.labels.app\\.kubernetes\\.io/name}`), and missing keys printing nothing (kubectl's
`--allow-missing-template-keys=true`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field


class JSONPathError(ValueError):
    pass


# --- AST ------------------------------------------------------------------------------------

@dataclass
class Text:
    text: str


@dataclass
class Expr:
    steps: list
    source: str = ""


@dataclass
class Range:
    steps: list
    body: list = field(default_factory=list)


_MISSING = object()


# --- template parsing -------------------------------------------------------------------------

def _unquoted(text: str, start: int):
    """(index, char) of each character from `start` on that is outside a quoted string: the
    one scanner under both closing-bracket searches (a `}` or `]` inside quotes closes nothing)."""
    i, quote = start, None
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        else:
            yield i, c
        i += 1


def _find_close(text: str, start: int) -> int:
    """Index of the `}` closing the action opened at `start` (skipping quoted strings)."""
    depth = 0
    for i, c in _unquoted(text, start + 1):
        if c in "[(":
            depth += 1
        elif c in "])":
            depth -= 1
        elif c == "}" and depth <= 0:
            return i
    raise JSONPathError(f"unclosed action in {text!r}")


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


def _unquote(s: str) -> str:
    body = s[1:-1]
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def parse(template: str) -> list:
    """Template text → list of Text/Expr/Range nodes."""
    root: list = []
    stack: list[list] = [root]
    i, buf = 0, []
    while i < len(template):
        c = template[i]
        if c != "{":
            buf.append(c)
            i += 1
            continue
        if buf:
            stack[-1].append(Text("".join(buf)))
            buf = []
        close = _find_close(template, i)
        action = template[i + 1:close].strip()
        i = close + 1
        if action == "end":
            if len(stack) == 1:
                raise JSONPathError(f"not in range, nothing to end in {template!r}")
            stack.pop()
        elif action.startswith("range ") or action == "range":
            node = Range(parse_expr(action[5:].strip()))
            stack[-1].append(node)
            stack.append(node.body)
        elif len(action) >= 2 and action[0] in "\"'" and action[-1] == action[0]:
            stack[-1].append(Text(_unquote(action)))
        elif action == "":
            continue
        else:
            stack[-1].append(Expr(parse_expr(action), action))
    if buf:
        stack[-1].append(Text("".join(buf)))
    if len(stack) > 1:
        raise JSONPathError(f"unclosed range in {template!r}")
    return root


# --- expression parsing -----------------------------------------------------------------------

# a field name; `\.` is a literal dot in it, as kubectl's (`.metadata.labels.app\.kubernetes\.io/name`)
_IDENT = re.compile(r"(?:[A-Za-z0-9_\-/$]|\\\.)+|\*")


def _field_name(token: str) -> str:
    return token.replace("\\.", ".")


def parse_expr(expr: str) -> list:
    """`.items[*].metadata.name` → steps. The first step says where to start."""
    s = expr.strip()
    if not s:
        raise JSONPathError("empty JSONPath expression")
    steps: list = []
    i = 0
    if s[0] == "$":
        steps.append(("root",))
        i = 1
    elif s[0] == "@":
        steps.append(("current",))
        i = 1
    else:
        steps.append(("current",))
        if s[0] not in ".[":
            s = "." + s  # relaxed: `metadata.name`
    while i < len(s):
        c = s[i]
        if c == ".":
            if s.startswith("..", i):
                i += 2
                m = _IDENT.match(s, i)
                name = _field_name(m.group(0)) if m else "*"
                if m:
                    i = m.end()
                steps.append(("recursive", None if name == "*" else name))
                continue
            i += 1
            if i >= len(s):
                break  # `{.}` is the current object
            m = _IDENT.match(s, i)
            if not m:
                if s[i] == "[":
                    continue
                raise JSONPathError(f"invalid field name at {s[i:]!r} in {expr!r}")
            name = _field_name(m.group(0))
            i = m.end()
            steps.append(("wildcard",) if name == "*" else ("field", name))
        elif c == "[":
            close = _bracket_close(s, i)
            steps.append(_parse_bracket(s[i + 1:close].strip(), expr))
            i = close + 1
        elif c.isspace():
            i += 1
        else:
            raise JSONPathError(f"unrecognized character {c!r} in {expr!r}")
    return steps


def _bracket_close(s: str, start: int) -> int:
    """Index of the `]` closing the `[` at `start` (skipping quoted strings)."""
    depth = 0
    for i, c in _unquoted(s, start):
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return i
    raise JSONPathError(f"unterminated [ in {s!r}")


_FILTER = re.compile(r"^\?\((.*)\)$", re.S)
_CMP = re.compile(r"(==|!=|<=|>=|<|>|=~)")


def _parse_bracket(inner: str, expr: str):
    if inner in ("*", ""):
        return ("wildcard",)
    m = _FILTER.match(inner)
    if m:
        return _parse_filter(m.group(1).strip(), expr)
    if inner[0] in "\"'":
        names = [_unquote(p.strip()) for p in _split_top(inner, ",")]
        return ("fields", names)
    if ":" in inner:
        parts = inner.split(":")
        if len(parts) > 3:
            raise JSONPathError(f"invalid slice [{inner}] in {expr!r}")
        try:
            nums = [int(p) if p.strip() else None for p in parts] + [None] * (3 - len(parts))
        except ValueError:
            raise JSONPathError(f"invalid slice [{inner}] in {expr!r}") from None
        return ("slice", *nums)
    try:
        return ("index", [int(p) for p in inner.split(",")])
    except ValueError:
        return ("fields", [p.strip() for p in inner.split(",")])


def _split_top(s: str, sep: str) -> list[str]:
    out, buf, quote = [], [], None
    for c in s:
        if quote:
            buf.append(c)
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
            buf.append(c)
        elif c == sep:
            out.append("".join(buf))
            buf = []
        else:
            buf.append(c)
    out.append("".join(buf))
    return out


def _parse_operand(text: str, expr: str):
    t = text.strip()
    if not t:
        raise JSONPathError(f"empty operand in filter of {expr!r}")
    if t[0] in "\"'" and t[-1] == t[0] and len(t) >= 2:
        return ("lit", _unquote(t))
    if t[0] in "@$":
        return ("path", parse_expr(t))
    if t in ("true", "false"):
        return ("lit", t == "true")
    try:
        return ("lit", int(t))
    except ValueError:
        pass
    try:
        return ("lit", float(t))
    except ValueError:
        raise JSONPathError(f"unrecognized filter operand {t!r} in {expr!r}") from None


def _parse_filter(body: str, expr: str):
    # split on the first comparison operator outside quotes
    quote = None
    for i, c in enumerate(body):
        if quote:
            if c == quote:
                quote = None
            continue
        if c in "\"'":
            quote = c
            continue
        m = _CMP.match(body, i)
        if m:
            return ("filter", _parse_operand(body[:i], expr), m.group(1),
                    _parse_operand(body[m.end():], expr))
    return ("filter", _parse_operand(body, expr), None, None)


# --- evaluation -----------------------------------------------------------------------------

def _recurse(value, name):
    """Every value under `value` (depth first, `value` included when name is None)."""
    out = []
    if isinstance(value, dict):
        if name is not None and name in value:
            out.append(value[name])
        elif name is None:
            out.append(value)
        for v in value.values():
            out.extend(_recurse(v, name))
    elif isinstance(value, list):
        if name is None:
            out.append(value)
        for v in value:
            out.extend(_recurse(v, name))
    return out


def _compare(a, op: str, b) -> bool:
    if op == "==":
        return _loose(a) == _loose(b)
    if op == "!=":
        return _loose(a) != _loose(b)
    if op == "=~":
        return isinstance(a, str) and isinstance(b, str) and re.search(b, a) is not None
    try:
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    except TypeError:
        return False


def _loose(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def _operand(op, item, root):
    kind, val = op
    if kind == "lit":
        return [val]
    return evaluate(val, root=root, current=item)


def _step(values: list, step: tuple, root) -> list:
    kind = step[0]
    out: list = []
    for v in values:
        if kind == "field":
            if isinstance(v, dict) and step[1] in v:
                out.append(v[step[1]])
        elif kind == "fields":
            if isinstance(v, dict):
                out.extend(v[n] for n in step[1] if n in v)
        elif kind == "wildcard":
            if isinstance(v, dict):
                out.extend(v[k] for k in sorted(v))
            elif isinstance(v, list):
                out.extend(v)
        elif kind == "recursive":
            out.extend(_recurse(v, step[1]))
        elif kind == "index":
            if isinstance(v, list):
                for n in step[1]:
                    if -len(v) <= n < len(v):
                        out.append(v[n])
        elif kind == "slice":
            if isinstance(v, list):
                out.extend(v[slice(step[1], step[2], step[3])])
        elif kind == "filter":
            items = v if isinstance(v, list) else list(v.values()) if isinstance(v, dict) else []
            _, left, op, right = step
            for item in items:
                lv = _operand(left, item, root)
                if op is None:
                    if lv and lv[0] is not None:
                        out.append(item)
                    continue
                rv = _operand(right, item, root)
                if lv and rv and _compare(lv[0], op, rv[0]):
                    out.append(item)
    return out


def evaluate(steps: list, *, root, current=_MISSING) -> list:
    """All values an expression selects (empty when nothing matches)."""
    start = steps[0][0]
    values = [root if start == "root" or current is _MISSING else current]
    for st in steps[1:]:
        values = _step(values, st, root)
        if not values:
            break
    return values


def go_scalar(v) -> str:
    """Go's `%v` of a decoded JSON scalar: booleans lower-case, null `<nil>`, whole floats
    without `.0` (encoding/json decodes every number as float64)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "<nil>"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def format_value(v) -> str:
    """How kubectl's jsonpath prints one result: scalars bare, objects as JSON."""
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return go_scalar(v)


def _render(nodes: list, root, current, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, Text):
            out.append(node.text)
        elif isinstance(node, Expr):
            out.append(" ".join(format_value(v) for v in evaluate(node.steps, root=root, current=current)))
        else:
            results = evaluate(node.steps, root=root, current=current)
            if len(results) == 1 and isinstance(results[0], list):
                results = results[0]
            for item in results:
                _render(node.body, root, item, out)


def render(template: str, data) -> str:
    """Execute a kubectl JSONPath template against `data` (an object or a List)."""
    nodes = parse(template)
    out: list[str] = []
    _render(nodes, data, data, out)
    return "".join(out)


def find(expr: str, data) -> list:
    """Values selected by one expression (`{.a.b}`, `.a.b` or `a.b`): for custom columns."""
    e = expr.strip()
    if e.startswith("{") and e.endswith("}"):
        e = e[1:-1]
    return evaluate(parse_expr(e), root=data, current=data)
