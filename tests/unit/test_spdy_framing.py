"""kubelab.client.spdy: the SPDY/3.1 frames kubectl's port-forward sends, and what a hostile
peer could send instead (oversized frames, a header zip bomb, truncation)."""

from __future__ import annotations

import struct
import zlib

import pytest

from kubelab.client import spdy


def test_roundtrip_in_any_chunking():
    enc, dec = spdy.Encoder(), spdy.Decoder()
    wire = (enc.syn_stream(1, {"streamtype": "error", "port": "80", "requestid": "0"}) + enc.data(1, fin=True)
            + enc.syn_stream(3, {"streamtype": "data", "port": "80", "requestid": "0"}) + enc.data(3, b"GET /")
            + enc.ping(5) + enc.rst_stream(3, spdy.CANCEL) + enc.goaway(3) + enc.window_update(3, 100))
    frames = []
    for i in range(len(wire)):           # one byte at a time: frames come out whole, in order
        frames += dec.feed(wire[i:i + 1])
    assert frames[0] == spdy.ControlFrame(spdy.SYN_STREAM, 0, 1, {"streamtype": "error", "port": "80",
                                                                 "requestid": "0"})
    assert frames[1] == spdy.DataFrame(1, b"", True)
    assert frames[2].headers["streamtype"] == "data" and frames[3] == spdy.DataFrame(3, b"GET /", False)
    assert [(f.type, f.stream_id, f.value) for f in frames[4:]] == [
        (spdy.PING, 0, 5), (spdy.RST_STREAM, 3, spdy.CANCEL), (spdy.GOAWAY, 3, 0), (spdy.WINDOW_UPDATE, 3, 100)]


def test_header_blocks_share_one_zlib_stream_primed_with_the_dictionary():
    enc = spdy.Encoder()
    first = enc.syn_reply(1)
    # zlib header with FDICT set and the dictionary's Adler-32: what Go's reader checks
    block = first[12:]
    assert block[1] & 0x20 and struct.unpack(">I", block[2:6])[0] == zlib.adler32(spdy.SPDY3_DICTIONARY)
    second = enc.syn_reply(3)
    assert second[12:14] != block[:2]    # no new zlib header: the same stream goes on
    dec = spdy.Decoder()
    assert [f.stream_id for f in dec.feed(first + second)] == [1, 3]


def test_oversized_frame_is_refused_before_its_payload():
    dec = spdy.Decoder(max_frame=1024)
    with pytest.raises(spdy.ProtocolError, match="exceeds"):
        dec.feed(struct.pack(">II", 1, 1025))


def test_header_zip_bomb_is_bounded():
    deflate = zlib.compressobj(zdict=spdy.SPDY3_DICTIONARY)
    raw = struct.pack(">I", 1) + struct.pack(">I", 1) + b"a" + struct.pack(">I", 1 << 20) + b"x" * (1 << 20)
    block = deflate.compress(raw) + deflate.flush(zlib.Z_SYNC_FLUSH)
    assert len(block) < 4096
    frame = struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, 10 + len(block)) + struct.pack(">IIH", 1, 0, 0) + block
    with pytest.raises(spdy.ProtocolError, match="larger than"):
        spdy.Decoder().feed(frame)


@pytest.mark.parametrize("payload", [b"", b"\x00\x00\x00\x01"])
def test_truncated_control_frames_are_protocol_errors(payload):
    frame = struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, len(payload)) + payload
    with pytest.raises(spdy.ProtocolError):
        spdy.Decoder().feed(frame)


def test_truncated_header_block_and_wrong_version():
    enc = spdy.Encoder()
    deflate = zlib.compressobj(zdict=spdy.SPDY3_DICTIONARY)
    block = deflate.compress(struct.pack(">I", 3) + struct.pack(">I", 200)) + deflate.flush(zlib.Z_SYNC_FLUSH)
    bad = struct.pack(">HHI", 0x8003, spdy.SYN_REPLY, 4 + len(block)) + struct.pack(">I", 1) + block
    with pytest.raises(spdy.ProtocolError, match="truncated"):
        spdy.Decoder().feed(bad)
    v2 = bytearray(enc.ping(1))
    v2[1] = 2
    with pytest.raises(spdy.ProtocolError, match="version"):
        spdy.Decoder().feed(bytes(v2))
