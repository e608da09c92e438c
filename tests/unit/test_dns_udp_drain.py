"""The UDP listener answers a burst of queued datagrams in one wake-up (the drain), and each
query still gets its own answer (id, question) whether it came through asyncio or the drain."""

from __future__ import annotations

import asyncio
import socket

import dns.message
import dns.rcode
import dns.rdatatype

from kubelab.dns import records
from kubelab.dns.examples import example_objects
from kubelab.dns.server import UDP_DRAIN_MAX, DnsCore, DnsServer


def test_burst_is_drained_in_one_wakeup_and_every_query_answered() -> None:
    snap = records.build_snapshot(**records.objects_by_kind(example_objects()))
    n = UDP_DRAIN_MAX + 1 + 10  # more than one drain's worth: the rest waits for the next wake-up

    async def go() -> tuple[dict[int, dns.message.Message], int]:
        server = DnsServer(DnsCore(snap), "127.0.0.1", 0)
        await server.start()
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.setblocking(False)
        try:
            # queued while the loop is not running this listener: all in the socket buffer at once
            names = [f"{'kubernetes' if i % 2 else 'nope-' + str(i)}.default.svc.cluster.local" for i in range(n)]
            for i, name in enumerate(names):
                client.sendto(dns.message.make_query(name, "A", id=1000 + i).to_wire(), ("127.0.0.1", server.port))
            loop = asyncio.get_running_loop()
            got: dict[int, dns.message.Message] = {}
            while len(got) < n:
                data = await asyncio.wait_for(loop.sock_recv(client, 65535), 30)
                m = dns.message.from_wire(data)
                got[m.id] = m
            assert server._udp_proto is not None
            return got, server._udp_proto.drained
        finally:
            client.close()
            await server.close()

    got, drained = asyncio.run(go())
    assert sorted(got) == [1000 + i for i in range(n)]
    for i in range(n):
        m = got[1000 + i]
        if i % 2:
            assert m.rcode() == dns.rcode.NOERROR and m.answer[0].rdtype == dns.rdatatype.A
            assert str(m.question[0].name) == "kubernetes.default.svc.cluster.local."
        else:
            assert m.rcode() == dns.rcode.NXDOMAIN and str(m.question[0].name).startswith(f"nope-{i}.")
    assert UDP_DRAIN_MAX <= drained < n  # at least one full drain; the first datagram came through asyncio
