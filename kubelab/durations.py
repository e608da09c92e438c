"""Go durations (`1m30s`, `500ms`, `1h2m3s4ms5us6ns`): one parser for every flag and the CLI.

Kubernetes components and kubectl take their durations through Go's `time.ParseDuration`,
so a student who types `--timeout 1m30s` or `--node-monitor-grace-period=40s` from a Hard Way
guide must get the same answer here. The grammar is Go's: an optional sign, then one or more
`<decimal number><unit>` terms, units `ns`, `us` (or `µs`/`μs`), `ms`, `s`, `m`, `h`; the
bare `0` is the only number allowed without a unit. The result is a float of seconds (what
asyncio and `time` want) computed exactly in nanoseconds first, as Go does, and refused past
Go's int64 range so a value Go would reject is rejected here too.

`parse_flag_duration` is the one kubelab extension: older lab scripts pass a bare number of
seconds (`--min-sync-period 0.5`), which keeps working for flags.
"""

from __future__ import annotations

import re

# nanoseconds per unit (Go's unitMap)
UNITS: dict[str, int] = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
                         "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
MAX_NANOS = 2**63 - 1  # time.Duration is an int64 of nanoseconds
_TERM = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")


def parse_duration_ns(text: str) -> int:
    """Go's time.ParseDuration: nanoseconds (int), or ValueError naming the text."""
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r}")
    s = text
    neg = False
    if s[:1] in ("+", "-"):
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0
    pos = 0
    while pos < len(s):
        m = _TERM.match(s, pos)
        number, unit = m.group(1), m.group(2)
        if number in ("", "."):
            raise ValueError(f'time: invalid duration "{text}"')
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        if unit not in UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        total += _term_nanos(number, UNITS[unit], text)
        pos = m.end()
        if total > MAX_NANOS + 1:
            raise ValueError(f'time: invalid duration "{text}"')
    if total > MAX_NANOS + (1 if neg else 0):
        raise ValueError(f'time: invalid duration "{text}"')
    return -total if neg else total


def _term_nanos(number: str, unit: int, text: str) -> int:
    """One `<number><unit>` term as Go computes it: the integer part exactly, the fraction
    (digits kept while they fit an int64) through a float64, truncated."""
    whole, _, frac = number.partition(".")
    v = int(whole or "0") * unit
    if v > MAX_NANOS + 1:
        raise ValueError(f'time: invalid duration "{text}"')
    f, scale = 0, 1
    for d in frac:
        if f > MAX_NANOS // 10:
            break  # Go stops taking digits once they would overflow
        f, scale = f * 10 + int(d), scale * 10
    if f:
        v += int(float(f) * (unit / scale))
    return v


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration as seconds (float)."""
    return parse_duration_ns(text) / 1e9


def parse_flag_duration(text: str) -> float:
    """A component flag's duration: Go's grammar, or (kubelab's older form) a bare number of
    seconds such as `0.5`."""
    t = str(text).strip()
    if re.fullmatch(r"[0-9]+(\.[0-9]*)?|\.[0-9]+", t):
        return float(t)
    return parse_duration(t)
