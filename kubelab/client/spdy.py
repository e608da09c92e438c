"""SPDY/3.1 framing, the part kubectl's port-forward speaks: a pure encoder/decoder.

Why SPDY at all: `kubectl port-forward` multiplexes one pair of streams (error + data) per
local connection over SPDY/3.1 (`portforward.k8s.io`). kubectl 1.31+ first tunnels those
SPDY bytes inside WebSocket binary messages (KEP-4006, subprotocol
`SPDY/3.1+portforward.k8s.io`), which an ASGI server can accept; older kubectls upgrade the
HTTP connection to raw SPDY. Either way the frames are the same, so this module only turns
bytes into frames and frames into bytes; the I/O (WebSocket, sockets) lives with the caller.

Invariants:
- `Decoder.feed` never buffers more than one frame beyond `max_frame` bytes: a larger frame
  raises `ProtocolError` before its payload is read (a hostile peer cannot grow memory);
- each direction's header blocks share ONE zlib stream primed with the SPDY/3 dictionary
  (the spec's rule), so a `HeaderCodec` belongs to one connection and one direction;
- a decompressed header block larger than `max_headers` bytes is an error, never a
  zip bomb (decompression is bounded with `max_length`).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from spdy.dictionary import zdict as SPDY3_DICTIONARY  # the spec's constant (spdy-py ships it)

VERSION = 3
# control frame types
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL, INTERNAL_ERROR = 1, 2, 3, 5, 6

MAX_FRAME = 1 << 20          # kubectl's frames are ≤ 32 KiB (Go's io.Copy buffer)
MAX_HEADER_BYTES = 64 << 10  # decompressed header block


class ProtocolError(Exception):
    """The peer broke the framing: the connection must end (GOAWAY)."""


@dataclass(frozen=True)
class DataFrame:
    stream_id: int
    data: bytes
    fin: bool = False


@dataclass(frozen=True)
class ControlFrame:
    type: int
    flags: int = 0
    stream_id: int = 0                       # SYN_STREAM/SYN_REPLY/RST/HEADERS/WINDOW_UPDATE; GOAWAY's last id
    headers: dict[str, str] = field(default_factory=dict)   # SYN_STREAM/SYN_REPLY/HEADERS
    value: int = 0                           # RST/GOAWAY status, PING id, WINDOW_UPDATE delta

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


Frame = DataFrame | ControlFrame


class HeaderCodec:
    """One direction's header compression context (see the invariants above)."""

    def __init__(self, *, max_headers: int = MAX_HEADER_BYTES) -> None:
        self._inflate = zlib.decompressobj(zdict=SPDY3_DICTIONARY)
        self._deflate = zlib.compressobj(zdict=SPDY3_DICTIONARY)
        self.max_headers = max_headers

    def encode(self, headers: dict[str, str]) -> bytes:
        raw = bytearray(struct.pack(">I", len(headers)))
        for k, v in headers.items():
            kb, vb = k.lower().encode(), v.encode()
            raw += struct.pack(">I", len(kb)) + kb + struct.pack(">I", len(vb)) + vb
        return self._deflate.compress(bytes(raw)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def decode(self, block: bytes) -> dict[str, str]:
        try:
            raw = self._inflate.decompress(block, self.max_headers + 1)
        except zlib.error as e:
            raise ProtocolError(f"bad header block: {e}") from None
        if len(raw) > self.max_headers or self._inflate.unconsumed_tail:
            raise ProtocolError(f"header block larger than {self.max_headers} bytes")
        out: dict[str, str] = {}
        try:
            (n,), pos = struct.unpack_from(">I", raw), 4
            for _ in range(n):
                (kl,) = struct.unpack_from(">I", raw, pos)
                k = raw[pos + 4:pos + 4 + kl]
                pos += 4 + kl
                (vl,) = struct.unpack_from(">I", raw, pos)
                v = raw[pos + 4:pos + 4 + vl]
                pos += 4 + vl
                if pos > len(raw):
                    raise struct.error("truncated")
                out[k.decode("latin-1").lower()] = v.decode("latin-1")
        except struct.error:
            raise ProtocolError("truncated header block") from None
        return out


class Decoder:
    """Bytes in (in any chunks), frames out."""

    def __init__(self, *, max_frame: int = MAX_FRAME, max_headers: int = MAX_HEADER_BYTES) -> None:
        self._buf = bytearray()
        self.max_frame = max_frame
        self.headers = HeaderCodec(max_headers=max_headers)

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while len(self._buf) >= 8:
            w0, w1 = struct.unpack_from(">II", self._buf)
            flags, length = w1 >> 24, w1 & 0xFFFFFF
            if length > self.max_frame:
                raise ProtocolError(f"frame of {length} bytes exceeds the limit of {self.max_frame}")
            if len(self._buf) < 8 + length:
                break
            payload = bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            if not w0 & 0x80000000:
                frames.append(DataFrame(w0 & 0x7FFFFFFF, payload, bool(flags & FLAG_FIN)))
                continue
            version, ftype = (w0 >> 16) & 0x7FFF, w0 & 0xFFFF
            if version != VERSION:
                raise ProtocolError(f"unsupported SPDY version {version}")
            frames.append(self._control(ftype, flags, payload))
        return frames

    def _control(self, ftype: int, flags: int, p: bytes) -> ControlFrame:
        need = {SYN_STREAM: 10, SYN_REPLY: 4, RST_STREAM: 8, PING: 4, GOAWAY: 8, HEADERS: 4, WINDOW_UPDATE: 8}
        if len(p) < need.get(ftype, 0):
            raise ProtocolError(f"control frame type {ftype} too short ({len(p)} bytes)")
        sid = (struct.unpack_from(">I", p)[0] & 0x7FFFFFFF) if len(p) >= 4 else 0
        if ftype == SYN_STREAM:
            return ControlFrame(ftype, flags, sid, self.headers.decode(p[10:]))
        if ftype in (SYN_REPLY, HEADERS):
            return ControlFrame(ftype, flags, sid, self.headers.decode(p[4:]))
        if ftype in (RST_STREAM, GOAWAY):
            return ControlFrame(ftype, flags, sid, value=struct.unpack_from(">I", p, 4)[0])
        if ftype == WINDOW_UPDATE:
            return ControlFrame(ftype, flags, sid, value=struct.unpack_from(">I", p, 4)[0] & 0x7FFFFFFF)
        if ftype == PING:
            return ControlFrame(ftype, flags, value=sid | (p[0] & 0x80) << 24)
        return ControlFrame(ftype, flags)   # SETTINGS and unknown types: nothing we act on


class Encoder:
    """Frames to bytes; owns this direction's header compression."""

    def __init__(self) -> None:
        self.headers = HeaderCodec()

    @staticmethod
    def _control(ftype: int, flags: int, payload: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload)) + payload

    def data(self, stream_id: int, data: bytes = b"", *, fin: bool = False) -> bytes:
        return struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data

    def syn_stream(self, stream_id: int, headers: dict[str, str], *, fin: bool = False) -> bytes:
        body = struct.pack(">IIH", stream_id, 0, 0) + self.headers.encode(headers)
        return self._control(SYN_STREAM, FLAG_FIN if fin else 0, body)

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None) -> bytes:
        return self._control(SYN_REPLY, 0, struct.pack(">I", stream_id) + self.headers.encode(headers or {}))

    def rst_stream(self, stream_id: int, status: int) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack(">II", stream_id, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack(">I", ping_id))

    def goaway(self, last_stream_id: int, status: int = 0) -> bytes:
        return self._control(GOAWAY, 0, struct.pack(">II", last_stream_id, status))

    def window_update(self, stream_id: int, delta: int) -> bytes:
        return self._control(WINDOW_UPDATE, 0, struct.pack(">II", stream_id, delta))
