"""BarFeed's option-quote staleness watchdog sleeps on deadlines, not on a tick: through the
night until the open, in session until the quietest line would turn stale (or a line is added,
or the session closes). A silent line is resubscribed when its limit passes; a streaming one
never is. (It used to wake every 30 s, day and night.)"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio
import trio.testing

from actors import bar_feed
from actors.bar_feed import QUOTE_STALE_AFTER_MARKET_S, _QuoteLine, _QuoteLines
from config.market_calendar import ET
from tests.harness.actor_rig import context, open_actor_env

LIMIT = QUOTE_STALE_AFTER_MARKET_S          # trio seconds at the rig's 1x clock
NIGHT = dt.datetime(2024, 7, 1, 20, 0, tzinfo=ET)           # Monday evening
SESSION = dt.datetime(2024, 7, 2, 11, 0, tzinfo=ET)          # Tuesday, mid-session


class _Wakes(trio.abc.Instrument):
    """Counts the watchdog task's steps (each is one wake-up)."""

    def __init__(self) -> None:
        self.steps = 0

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith("_watch_quotes"):
            self.steps += 1


def _line(key: str) -> _QuoteLine:
    return _QuoteLine(key, trio.CancelScope(), inner=trio.CancelScope(),
                      last=trio.current_time())


@asynccontextmanager
async def _watchdog(tmp_path: Path, start: dt.datetime
                    ) -> AsyncIterator[tuple[_QuoteLines, _Wakes]]:
    async with open_actor_env(tmp_path, start=start) as a:
        lines = _QuoteLines()
        wakes = _Wakes()
        trio.lowlevel.add_instrument(wakes)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(bar_feed._watch_quotes, context(a, "bar_feed"), lines)
                await trio.testing.wait_all_tasks_blocked()
                yield lines, wakes
                nursery.cancel_scope.cancel()
        finally:
            trio.lowlevel.remove_instrument(wakes)


async def test_the_watchdog_sleeps_through_the_night_and_looks_at_the_open(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with _watchdog(tmp_path, NIGHT) as (lines, wakes):
        line = _line("SPY 240712C545")
        lines[line.key] = line                     # held overnight: no quotes at night
        start = trio.current_time()
        open_in = (dt.datetime(2024, 7, 2, 9, 30, tzinfo=ET) - NIGHT).total_seconds()
        await trio.sleep(open_in - 60)             # 20:00 -> 09:29
        assert wakes.steps <= 3, f"woke {wakes.steps} times in the night"
        assert line.inner is not None and not line.inner.cancel_called
        await trio.sleep(61)                       # the open: silent all night, resubscribed
        assert line.inner.cancel_called
        assert trio.current_time() - start <= open_in + 1


async def test_a_silent_line_is_resubscribed_when_its_limit_passes_and_a_streaming_one_never(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with _watchdog(tmp_path, SESSION) as (lines, wakes):
        silent, streaming = _line("SPY 240712C545"), _line("SPY 240712P530")
        lines[silent.key] = silent
        lines[streaming.key] = streaming
        resubscribed_at: list[float] = []
        started = trio.current_time()
        for _ in range(60):                        # ten minutes, a quote every 10 s
            await trio.sleep(10)
            streaming.last = trio.current_time()
            if silent.inner is not None and silent.inner.cancel_called:
                resubscribed_at.append(trio.current_time())
                silent.inner = trio.CancelScope()  # what _stream_quote does: a new request
                silent.last = trio.current_time()
        assert streaming.inner is not None and not streaming.inner.cancel_called
        assert resubscribed_at, "the silent line was never resubscribed"
        first = resubscribed_at[0] - started
        assert LIMIT <= first <= LIMIT + 10, first   # noticed within the 10-s sampling step
        # one wake-up per limit per line and one per addition, not one every 30 s
        assert wakes.steps <= 2 * (600 / LIMIT) + 6, wakes.steps


async def test_a_line_added_later_is_watched_from_its_first_second(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with _watchdog(tmp_path, SESSION) as (lines, _wakes):
        await trio.sleep(300)                      # no lines: the watchdog just waits
        line = _line("SPY 240712C545")
        added = trio.current_time()
        lines[line.key] = line
        while line.inner is not None and not line.inner.cancel_called:
            await trio.sleep(1)
        assert LIMIT <= trio.current_time() - added <= LIMIT + 2


async def test_the_watchdog_does_not_touch_a_refused_line(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with _watchdog(tmp_path, SESSION) as (lines, wakes):
        line = _line("IWM 240712C200")
        line.refused = 200                         # IB refuses it for good: asked rarely
        lines[line.key] = line
        await trio.sleep(10 * LIMIT)
        assert line.inner is not None and not line.inner.cancel_called
        assert wakes.steps <= 14, wakes.steps      # looks again once per limit, no spin
