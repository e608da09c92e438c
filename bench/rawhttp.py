"""A minimal HTTP/1.1 keep-alive client for benchmarks.

httpx costs more CPU per request than the API server itself spends; on a 2-core machine
that would measure the client, not the server. One connection per concurrent worker, like
the etcd client's one channel, keeps the comparison with raw etcd fair.
"""

from __future__ import annotations

import asyncio
import json


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._r: asyncio.StreamReader | None = None
        self._w: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        if self._w is None:
            self._r, self._w = await asyncio.open_connection(self.host, self.port)
        data = json.dumps(body).encode() if body is not None else b""
        self._w.write(f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        status = int((await self._r.readline()).split()[1])
        length, chunked = 0, False
        while True:
            line = await self._r.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value:
                chunked = True
        if not chunked:
            return status, await self._r.readexactly(length)
        chunks = []
        while True:
            size = int((await self._r.readline()).strip(), 16)
            chunk = await self._r.readexactly(size + 2)
            if size == 0:
                return status, b"".join(chunks)
            chunks.append(chunk[:-2])

    async def close(self) -> None:
        if self._w is not None:
            self._w.close()


class Pool:
    """Connections handed out one per in-flight request."""

    def __init__(self, url: str) -> None:
        host, port = url.split("//", 1)[1].split(":")
        self.host, self.port = host, int(port)
        self._free: list[Connection] = []

    async def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        conn = self._free.pop() if self._free else Connection(self.host, self.port)
        try:
            result = await conn.request(method, path, body)
        except BaseException:
            await conn.close()
            raise
        self._free.append(conn)
        return result

    async def close(self) -> None:
        for c in self._free:
            await c.close()
