"""The asyncio -> trio hand-off is batched per turn of the asyncio loop (issue 17, idle cost).

ib_async decodes every message of one socket read in one turn of its loop, and each decoded
event used to wake the trio thread on its own. These tests run a real asyncio loop on its own
thread under a real trio run, as GatewayLink does.
"""

from __future__ import annotations

import trio

from runtime.gateway.aio_bridge import open_asyncio_loop


async def test_events_of_one_asyncio_turn_reach_trio_in_one_handoff_and_in_order() -> None:
    got: list[int] = []
    with trio.fail_after(10):
        async with open_asyncio_loop("batching") as aio:
            def emit_five() -> None:          # on the loop thread, in one turn
                for i in range(5):
                    aio.to_trio(got.append, i)

            before = aio.handoffs
            await aio.call(emit_five)
            # the batch leaves at the end of the turn, before the call's own completion: an
            # event handed over during a call is seen in trio before the call returns
            assert got == [0, 1, 2, 3, 4]
            assert aio.handoffs - before == 1


async def test_events_of_separate_turns_are_separate_handoffs() -> None:
    got: list[str] = []
    with trio.fail_after(10):
        async with open_asyncio_loop("batching") as aio:
            before = aio.handoffs
            await aio.call(aio.to_trio, got.append, "first")
            await aio.call(aio.to_trio, got.append, "second")
            assert got == ["first", "second"]
            assert aio.handoffs - before == 2


async def test_a_failing_callback_in_a_batch_does_not_stop_the_rest() -> None:
    got: list[int] = []

    def boom() -> None:
        raise RuntimeError("a handler bug")

    with trio.fail_after(10):
        async with open_asyncio_loop("batching") as aio:
            def emit() -> None:
                aio.to_trio(got.append, 1)
                aio.to_trio(boom)
                aio.to_trio(got.append, 2)

            await aio.call(emit)
            assert got == [1, 2]
