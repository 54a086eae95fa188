"""The never-drop, never-reorder `send_nowait` the money path's actors use on full channels."""

from __future__ import annotations

import trio
import trio.lowlevel

from runtime.supervision.ordered import OrderedDelivery, OrderedSender


async def test_a_full_channel_delays_messages_but_never_drops_or_reorders_them() -> None:
    send, receive = trio.open_memory_channel[int](1)
    out = OrderedSender(send)
    got: list[int] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(out.pump)
        for i in range(50):             # synchronous bursts, as a ledger commit sends them
            out.send_nowait(i)
        assert out.backlog == 49
        for i in range(50, 60):
            out.send_nowait(i)
            await trio.lowlevel.checkpoint()
        with trio.fail_after(5):
            while len(got) < 60:
                got.append(await receive.receive())
        nursery.cancel_scope.cancel()
    assert got == list(range(60))
    assert out.backlog == 0


async def test_a_closed_receiver_ends_the_backlog_quietly() -> None:
    send, receive = trio.open_memory_channel[int](1)
    out = OrderedSender(send)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(out.pump)
        out.send_nowait(1)
        out.send_nowait(2)
        await receive.aclose()
        with trio.fail_after(5):
            while not out.closed:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    out.send_nowait(3)
    assert out.backlog == 0


async def test_order_events_from_the_gateway_thread_keep_their_order_on_a_full_channel() -> None:
    """ib_orders' delivery of broker events: a task per message (the old fallback) let two
    waiting sends swap; the drainer delivers in the order of the calls, and exists only while
    something waits."""
    send, receive = trio.open_memory_channel[int](1)
    out = OrderedDelivery(send)
    got: list[int] = []
    for i in range(30):                 # a burst of fills and statuses: most do not fit
        out.deliver(i)
    assert out.backlog == 29
    for i in range(30, 40):
        out.deliver(i)
        await trio.lowlevel.checkpoint()
    with trio.fail_after(5):
        while len(got) < 40:
            got.append(await receive.receive())
            await trio.lowlevel.checkpoint()
    assert got == list(range(40))
    with trio.fail_after(5):
        while out.backlog:
            await trio.sleep(0.01)
    out.deliver(40)                     # room again: straight through, no task
    assert await receive.receive() == 40

