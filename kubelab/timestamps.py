"""RFC 3339 timestamps as the API writes them (`2026-11-26T15:01:23Z`): one formatter, one parser.

Objects carry whole seconds in UTC (`metav1.Time`); leases and events may carry a fraction
(`MicroTime`), which parsing accepts. Every component, the API server and the CLI use these,
so a timestamp written by one is read the same way by all.
"""

from __future__ import annotations

import time
from datetime import datetime

RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


def format_time(ts: float | None = None) -> str:
    """Epoch seconds (now when None) as `metav1.Time`: UTC, whole seconds, `Z`."""
    return time.strftime(RFC3339, time.gmtime(ts))


def parse_datetime(ts) -> datetime | None:
    """An aware datetime, or None when absent or not an RFC 3339 string."""
    if not isinstance(ts, str) or not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_epoch(ts) -> float | None:
    """Epoch seconds, or None when absent or unparsable."""
    dt = parse_datetime(ts)
    return dt.timestamp() if dt is not None else None


def format_micro_time(ts: float | None = None) -> str:
    """Epoch seconds (now when None) as `metav1.MicroTime`: UTC, microseconds, `Z` (Lease
    renewTime/acquireTime, Event eventTime)."""
    ts = time.time() if ts is None else ts
    whole = int(ts // 1)
    micros = int(round((ts - whole) * 1e6))
    if micros == 1_000_000:
        whole, micros = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}Z"
