"""Idle cost over real TCP with real ib_async (issue 17): data flow is proof of life, and the
forming bar reaches trio sparingly without costing a single live bar.

The simulator counts the reqCurrentTime requests it receives. Mid-session its streams push bar
updates several times a second, so the link is busy and not probed; at night nothing flows and
the link is probed every interval. That a Gateway hanging mid-stream is still detected is
tests/system/integration/test_link_against_simulator.py::test_hung_gateway_is_detected_by_the_liveness_probe
(it hangs the simulator mid-session, with streams running).
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import trio

from actors.gateway_link import BUSY_PROBE_INTERVAL
from tests.harness.bot import open_bot_and_gateway

NIGHT = dt.datetime(2024, 2, 21, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
WINDOW_S = 10.0       # wall seconds: the old schedule (every 2 s) asked 4-5 times in it


async def test_a_busy_link_is_not_probed(tmp_path: Path, shared_data: Path) -> None:
    assert WINDOW_S < BUSY_PROBE_INTERVAL
    async with open_bot_and_gateway(tmp_path, shared_data) as h:
        await h.journal.wait_for("bar", where=lambda e: e["source"] == "live", timeout=60)
        before = h.gateway.current_time_requests
        await trio.sleep(WINDOW_S)
        # at most the one request-path check of a busy link, if it fell in the window
        assert h.gateway.current_time_requests - before <= 1
        assert h.bot.wiring.link_state.value.up


async def test_a_quiet_link_is_probed(tmp_path: Path, shared_data: Path) -> None:
    async with open_bot_and_gateway(tmp_path, shared_data, speed=1.0, start=NIGHT) as h:
        await h.journal.wait_for("link_up", timeout=30)
        before = h.gateway.current_time_requests
        with trio.fail_after(20):       # every 2 s while nothing else flows
            while h.gateway.current_time_requests - before < 3:
                await trio.sleep(0.1)
        assert h.bot.wiring.link_state.value.up


async def test_live_bars_keep_arriving_minute_after_minute(tmp_path: Path,
                                                          shared_data: Path) -> None:
    """The forming bar's versions are handed to trio sparingly: every minute still completes
    on time from the live stream (no staleness resubscribe, no backfill in between)."""
    async with open_bot_and_gateway(tmp_path, shared_data) as h:
        first = await h.journal.wait_for("bar", where=lambda e: e["source"] == "live"
                                         and e["symbol"] == "SPY", timeout=60)
        mark = h.journal.mark()
        for _ in range(5):
            mark = h.journal.events.index(await h.journal.wait_for(
                "bar", after=mark, timeout=30,
                where=lambda e: e["symbol"] == "SPY" and e["source"] == "live")) + 1
        spy = [e for e in h.journal.of("bar", symbol="SPY") if e["bar_ts"] >= first["bar_ts"]]
        assert [e["source"] for e in spy] == ["live"] * len(spy)
        minutes = [dt.datetime.fromisoformat(e["bar_ts"]) for e in spy]
        assert all(b - a == dt.timedelta(minutes=1) for a, b in itertools.pairwise(minutes))
        assert h.journal.of("feed_stale") == []
