"""Channel policies, and clones that survive the restart of either side."""

from __future__ import annotations

import trio
import trio.testing

from runtime.supervision.channels import Channel, DropOldest, Latest, Ports


async def test_consumer_keeps_its_channel_across_producer_restarts() -> None:
    ch: Channel[int] = Channel("bars", 16)
    got: list[int] = []

    async def consumer(task_status: trio.TaskStatus[None]) -> None:
        with Ports() as ports:
            rx = ports.receiver(ch)
            task_status.started()
            async for item in rx:
                got.append(item)

    async def producer_incarnation(first: int) -> None:
        with Ports() as ports:          # closes only this incarnation's clone
            tx = ports.sender(ch)
            for i in range(first, first + 3):
                await tx.send(i)

    with trio.fail_after(5):
        async with trio.open_nursery() as n:
            await n.start(consumer)
            for k in range(3):                  # three producer incarnations
                await producer_incarnation(k * 10)
            await trio.testing.wait_all_tasks_blocked()
            assert got == [0, 1, 2, 10, 11, 12, 20, 21, 22]
            n.cancel_scope.cancel()


async def test_buffered_items_wait_for_the_next_consumer_incarnation() -> None:
    ch: Channel[str] = Channel("orders", 8)
    with Ports() as ports:
        ports.sender(ch).send_nowait("intent-1")
    with Ports() as ports:
        rx = ports.receiver(ch)
        rx.close()                      # the consumer dies before reading
    with Ports() as ports:
        assert ports.receiver(ch).receive_nowait() == "intent-1"
    assert ch.depth() == 0


async def test_full_backpressure_channel_blocks_the_sender() -> None:
    ch: Channel[int] = Channel("events", 2)
    with Ports() as ports:
        tx = ports.sender(ch)
        tx.send_nowait(1)
        tx.send_nowait(2)
        with trio.move_on_after(0.05) as cs:
            await tx.send(3)
        assert cs.cancelled_caught
        assert ch.depth() == 2


async def test_drop_oldest_counts_drops_and_never_drops_kept_items() -> None:
    q: DropOldest[str] = DropOldest("alerts", 3, keep=lambda s: s.startswith("critical"))
    for item in ["critical-1", "info-1", "info-2", "info-3", "info-4", "critical-2"]:
        q.send_nowait(item)
    assert q.dropped == 3
    drained = [q.receive_nowait() for _ in range(q.depth())]
    assert drained == ["critical-1", "info-4", "critical-2"]


async def test_drop_oldest_grows_past_capacity_rather_than_drop_a_kept_item() -> None:
    q: DropOldest[str] = DropOldest("alerts", 2, keep=lambda s: True)
    for i in range(5):
        q.send_nowait(f"critical-{i}")
    assert q.dropped == 0
    assert q.depth() == 5


async def test_drop_oldest_wakes_a_waiting_receiver() -> None:
    q: DropOldest[int] = DropOldest("alerts", 4)
    got: list[int] = []

    async def reader() -> None:
        got.append(await q.receive())

    with trio.fail_after(5):
        async with trio.open_nursery() as n:
            n.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            q.send_nowait(7)
    assert got == [7]


async def test_latest_value_readers_see_the_newest_value() -> None:
    v: Latest[int] = Latest("link_state", 0)
    with trio.fail_after(5):
        async with trio.open_nursery() as n:
            seen: list[int] = []

            async def waiter() -> None:
                seen.append(await v.wait_value(lambda x: x >= 3))

            n.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            for i in range(1, 5):
                v.set(i)
    assert seen and seen[0] >= 3
    assert v.value == 4
