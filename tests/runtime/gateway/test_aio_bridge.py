"""The asyncio bridge: results, errors, cancellation that waits, events into trio, teardown."""

from __future__ import annotations

import asyncio
import threading

import pytest
import trio

from runtime.gateway.aio_bridge import LoopClosed, open_asyncio_loop


async def test_run_returns_results_and_raises_errors_from_the_loop_thread() -> None:
    async def add(a: int, b: int) -> tuple[int, str]:
        await asyncio.sleep(0.01)
        return a + b, threading.current_thread().name

    async def boom() -> None:
        raise ValueError("from asyncio")

    with trio.fail_after(10):
        async with open_asyncio_loop("ib-test") as aio:
            assert await aio.run(add, 2, 3) == (5, "ib-test")
            with pytest.raises(ValueError, match="from asyncio"):
                await aio.run(boom)
            assert await aio.call(lambda: threading.current_thread().name) == "ib-test"


async def test_trio_cancellation_cancels_the_asyncio_task_and_waits_until_it_is_done() -> None:
    log: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            log.append("cancelled")
            await asyncio.sleep(0.05)         # cleanup that takes time
            log.append("cleaned up")
            raise

    with trio.fail_after(10):
        async with open_asyncio_loop() as aio:
            with trio.move_on_after(0.1):
                await aio.run(slow)
            # by the time trio's cancellation completes, the asyncio side is really done
            assert log == ["cancelled", "cleaned up"]
            tasks = await aio.call(lambda: [t for t in asyncio.all_tasks(aio.loop)
                                            if not t.done()])
            assert len(tasks) == 1                      # only the call() wrapper itself


async def test_events_from_the_loop_thread_reach_trio_and_never_raise_there() -> None:
    send, receive = trio.open_memory_channel[int](1)
    with trio.fail_after(10):
        async with open_asyncio_loop() as aio:
            def handler(n: int) -> None:         # an ib_async event handler, on the loop thread
                aio.to_trio(send.send_nowait, n)

            await aio.call(handler, 1)
            await aio.call(handler, 2)           # channel full: logged in trio, not raised
            assert await receive.receive() == 1
            await trio.sleep(0.05)
            assert receive.statistics().current_buffer_used == 0


async def test_leaving_the_block_cancels_leftover_tasks_and_ends_the_thread() -> None:
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with trio.fail_after(10):
        async with open_asyncio_loop() as aio:
            await aio.call(lambda: aio.loop.create_task(forever()))
            thread = aio.thread
        assert cancelled.is_set()
        assert not thread.is_alive()
        assert aio.loop.is_closed()
        with pytest.raises(LoopClosed):
            await aio.call(lambda: None)


async def test_a_fresh_loop_and_thread_per_incarnation() -> None:
    handles = []
    with trio.fail_after(10):
        for _ in range(3):
            async with open_asyncio_loop() as aio:
                handles.append((aio.loop, aio.thread))
    loops, threads = zip(*handles, strict=True)
    assert len({id(x) for x in loops}) == 3      # all three kept alive, so ids are distinct
    assert len({id(x) for x in threads}) == 3
    assert all(loop.is_closed() for loop in loops)
