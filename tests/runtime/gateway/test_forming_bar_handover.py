"""keepUpToDate updates of a bar still forming reach trio sparingly (issue 17, idle cost).

A real asyncio loop on its own thread (as GatewayLink runs ib_async) and ib_async's own BarData:
the versions of a forming bar go to trio on the next tick of an `every` grid, the latest only,
all symbols in the same turn of the loop; a new bar goes at once, with the completed bar in its
final version first. That BarFeed still
publishes the same bars is tests/system/integration (every bar, exactly once, across restarts).
"""

from __future__ import annotations

import datetime as dt
import gc
from dataclasses import dataclass
from typing import Any

import trio
from ib_async import BarData, BarDataList

from messages.base import Message
from messages.link import BarUpdate
from runtime.gateway.aio_bridge import AsyncioLoop, open_asyncio_loop
from runtime.gateway.ib_market import _FormingBar, follow_forming

T0 = dt.datetime(2024, 2, 21, 15, 0, tzinfo=dt.UTC)


@dataclass
class _Session:
    """What the hand-over uses of a session: its loop and its id."""

    aio: AsyncioLoop
    session_id: int = 1


def _bar(minute: int, close: float) -> BarData:
    return BarData(date=T0 + dt.timedelta(minutes=minute), open=100.0, high=101.0, low=99.0,
                   close=close, volume=10.0)


async def _take(receive: trio.MemoryReceiveChannel[Message], n: int) -> list[tuple[Any, ...]]:
    out = []
    with trio.fail_after(10):
        for _ in range(n):
            msg = await receive.receive()
            assert isinstance(msg, BarUpdate)
            out.append((msg.ts.minute, msg.close))
    return out


async def test_versions_of_a_forming_bar_are_handed_over_sparingly_the_latest_always() -> None:
    send, receive = trio.open_memory_channel[Message](100)
    async with open_asyncio_loop("forming") as aio:
        forming = _FormingBar(_Session(aio), send, "SPY", every=0.3)  # type: ignore[arg-type]
        data = [_bar(0, 1.0)]

        def burst() -> None:                  # ten versions within one turn of the loop
            for i in range(10):
                data[-1] = _bar(0, 1.0 + i)
                forming.on_update(list(data), False)

        await aio.call(burst)
        # only the last version, at the next tick of the grid
        assert await _take(receive, 1) == [(0, 10.0)]
        await trio.sleep(0.5)
        assert receive.statistics().current_buffer_used == 0    # nothing else, no repeats


async def test_the_symbols_forming_bars_reach_trio_in_one_handoff() -> None:
    send, receive = trio.open_memory_channel[Message](100)
    async with open_asyncio_loop("forming") as aio:
        feeds = [_FormingBar(_Session(aio), send, symbol, every=2.0)  # type: ignore[arg-type]
                 for symbol in ("SPY", "QQQ", "IWM", "VIX")]

        def versions(close: float, which: slice) -> None:
            for feed in feeds[which]:
                feed.on_update([_bar(0, close)], False)

        before = aio.handoffs
        await aio.call(versions, 1.0, slice(0, 2))        # one packet: SPY, QQQ
        await aio.call(versions, 2.0, slice(0, 4))        # the next: all four
        # one grid for all: the four wait for the same tick, so they leave in one turn
        ticks = await aio.call(lambda: {feed.timer.when() for feed in feeds if feed.timer})
        assert len(ticks) == 1
        assert await _take(receive, 4) == [(0, 2.0)] * 4
        assert aio.handoffs - before == 1


async def test_a_new_bar_goes_at_once_after_the_final_version_of_the_completed_one() -> None:
    send, receive = trio.open_memory_channel[Message](100)
    async with open_asyncio_loop("forming") as aio:
        forming = _FormingBar(_Session(aio), send, "SPY", every=60.0)  # type: ignore[arg-type]
        data = [_bar(0, 1.0)]

        def first_versions() -> None:
            forming.on_update(list(data), True)         # a new bar: handed over at once
            data[-1] = _bar(0, 2.0)
            forming.on_update(list(data), False)        # held: the grid is a minute

        def final_then_new_bar() -> None:
            data[-1] = _bar(0, 3.0)                     # the completed bar's final version
            forming.on_update(list(data), False)
            data.append(_bar(1, 4.0))
            forming.on_update(list(data), True)

        await aio.call(first_versions)
        assert await _take(receive, 1) == [(0, 1.0)]
        await aio.call(final_then_new_bar)
        # no minute-long wait: the new bar carries the old one's final version with it
        assert await _take(receive, 2) == [(0, 3.0), (1, 4.0)]
        assert forming.timer is None and forming.latest is None


async def test_a_followed_bar_list_keeps_handing_over_after_garbage_collection() -> None:
    """eventkit holds a bound method only weakly: the follower must not vanish with the
    call that attached it (it did once: live bars stopped after the first minute)."""
    send, receive = trio.open_memory_channel[Message](100)
    async with open_asyncio_loop("forming") as aio:
        bars = BarDataList()
        bars.append(_bar(0, 1.0))
        await aio.call(follow_forming, bars, _Session(aio), send, "SPY", 60.0)
        gc.collect()

        def new_bar() -> None:
            bars.append(_bar(1, 2.0))
            bars.updateEvent.emit(bars, True)

        await aio.call(new_bar)
        assert await _take(receive, 2) == [(0, 1.0), (1, 2.0)]
