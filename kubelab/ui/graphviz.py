"""Graphviz as the map's layout engine: DOT text in, SVG out, via Debian's `dot` binary.

Why Graphviz on the server rather than layout code of our own or a JS library: it is a
well-kept, packaged layout engine (clusters = node boxes, ranks = rows), it works offline, and
the browser receives plain SVG it only has to insert. The one call is a fixed argv with the DOT
text on stdin, never a shell: nothing a user types reaches a command line (view.q escapes
every string that goes into the DOT text).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess

DOT = "dot"
TIMEOUT = 20.0          # seconds; a 200-pod map takes well under one
MAX_DOT_BYTES = 4 << 20  # refuse absurd inputs instead of feeding them to the layout engine


class RenderError(RuntimeError):
    pass


def available() -> bool:
    return shutil.which(DOT) is not None


def _clean(svg: str) -> str:
    """Drop the XML prolog, DOCTYPE and comments: the SVG is inlined into an HTML page."""
    svg = re.sub(r"<\?xml[^>]*\?>", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    return svg.strip()


def render_svg(dot_text: str) -> str:
    if len(dot_text) > MAX_DOT_BYTES:
        raise RenderError("graph too large to draw")
    if not available():
        raise RenderError("Graphviz `dot` is not installed (apt-get install graphviz; `make install` does it)")
    try:
        p = subprocess.run([DOT, "-Tsvg"], input=dot_text, capture_output=True, text=True, timeout=TIMEOUT,
                           stdin=None)
    except subprocess.TimeoutExpired:
        raise RenderError(f"dot took more than {TIMEOUT:.0f}s") from None
    if p.returncode != 0:
        raise RenderError(f"dot failed: {p.stderr.strip()[:300]}")
    return _clean(p.stdout)


async def render_svg_async(dot_text: str) -> str:
    return await asyncio.to_thread(render_svg, dot_text)
