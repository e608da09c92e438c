"""The work queue's invariants (client-go semantics)."""

import asyncio

import pytest

from kubelab.client import ShutDown, WorkQueue


async def test_dedup_while_waiting():
    q = WorkQueue()
    q.add("a"); q.add("a"); q.add("b")  # noqa: E702
    assert len(q) == 2
    assert await q.get() == "a"
    assert await q.get() == "b"


async def test_never_processed_twice_at_once_and_requeued_when_dirty():
    q = WorkQueue()
    q.add("k")
    k = await q.get()
    q.add("k")  # changed while processing: must not be handed out now...
    assert len(q) == 0
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.done(k)  # ...but right after done()
    assert await asyncio.wait_for(getter, 1) == "k"
    q.done("k")
    assert len(q) == 0


async def test_rate_limited_backoff_and_forget():
    q = WorkQueue(base_delay=0.01, max_delay=0.04)
    loop = asyncio.get_running_loop()
    delays = []
    for _ in range(4):
        t0 = loop.time()
        q.add_rate_limited("x")
        await asyncio.wait_for(q.get(), 1)
        delays.append(loop.time() - t0)
        q.done("x")
    assert q.retries("x") == 4
    assert delays[1] >= 0.018 and delays[3] < 0.2  # 0.01, 0.02, then capped at 0.04
    q.forget("x")
    assert q.retries("x") == 0


async def test_add_after_and_shutdown():
    q = WorkQueue()
    q.add_after("later", 0.02)
    assert len(q) == 0
    assert await asyncio.wait_for(q.get(), 1) == "later"
    q.done("later")
    waiter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.shutdown()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(waiter, 1)
