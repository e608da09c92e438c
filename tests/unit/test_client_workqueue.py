"""The work queue's invariants (client-go semantics)."""

import asyncio

import pytest

from kubelab.client import ShutDown, WorkQueue
from kubelab.client.clock import FakeClock


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
    clock = FakeClock()
    q = WorkQueue(base_delay=0.01, max_delay=0.04, clock=clock)
    delays = []
    for _ in range(4):
        q.add_rate_limited("x")
        delays.append(clock.pending()[0] - clock.now())
        clock.step(delays[-1] - 0.001)
        assert len(q) == 0  # not before its delay...
        clock.step(0.001)
        assert await asyncio.wait_for(q.get(), 1) == "x"  # ...and right at it
        q.done("x")
    assert q.retries("x") == 4
    assert delays == pytest.approx([0.01, 0.02, 0.04, 0.04])  # doubling, then capped
    q.forget("x")
    assert q.retries("x") == 0
    q.add_rate_limited("x")
    assert clock.pending()[0] - clock.now() == pytest.approx(0.01)  # forgotten: back to the base delay


async def test_add_after_and_shutdown():
    clock = FakeClock()
    q = WorkQueue(clock=clock)
    q.add_after("later", 0.02)
    q.add_after("never", 5)
    clock.step(0.019)
    assert len(q) == 0
    clock.step(0.001)
    assert await asyncio.wait_for(q.get(), 1) == "later"
    q.done("later")
    waiter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.shutdown()  # cancels the pending timer: "never" is never added
    clock.step(10)
    with pytest.raises(ShutDown):
        await asyncio.wait_for(waiter, 1)
    assert len(q) == 0


async def test_the_real_clock_delays_on_the_event_loop():
    q = WorkQueue()
    q.add_after("k", 0.001)
    assert len(q) == 0
    assert await asyncio.wait_for(q.get(), 1) == "k"


def test_fake_clock_fires_due_timers_in_order_and_skips_cancelled_ones():
    clock, fired = FakeClock(start=0.0), []
    clock.call_later(2, lambda: fired.append(("b", clock.now())))
    clock.call_later(1, lambda: fired.append(("a", clock.now())))
    clock.call_later(1.5, lambda: fired.append(("x", clock.now()))).cancel()
    clock.step(5)
    assert fired == [("a", 1.0), ("b", 2.0)] and clock.now() == 5.0
