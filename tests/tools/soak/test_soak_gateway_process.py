"""The soak's simulator process comes back on the same port after a kill -9 (as IBC would)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import trio

from config.market_calendar import ET
from tools.soak import GatewayProcess


async def test_a_killed_simulator_restarts_on_the_port_the_bot_knows(tmp_path: Path) -> None:
    gw = GatewayProcess(tmp_path, speed=60.0, seed=1, bars=None)
    start = dt.datetime(2026, 11, 16, 9, 30, tzinfo=ET)
    async with trio.open_nursery() as nursery:
        try:
            await gw.start(nursery, start)
            first = gw.port
            assert first > 0
            await gw.kill9()
            await gw.start(nursery, start)
            assert gw.port == first                  # else the bot is stranded all day
            stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
            await stream.aclose()
        finally:
            await gw.stop()
            nursery.cancel_scope.cancel()
