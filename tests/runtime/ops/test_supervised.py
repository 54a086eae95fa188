"""The HTTP server is a child of the supervision tree: a crash of it is an actor failure that
its supervisor restarts (a new incarnation serving again), never the end of the process."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
import trio

from config.market_calendar import ET
from runtime.app.bot import BotHandle, BotOptions, run_bot
from runtime.ops import health
from tests.harness import closed_port, settings_for


async def test_a_crashed_http_server_is_restarted_by_its_supervisor(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    crashes = 0

    async def crash_once(*args: object) -> None:
        nonlocal crashes
        if crashes == 0:
            crashes += 1
            await trio.sleep(0.5)
            raise RuntimeError("a bug inside the HTTP server")
        await trio.sleep_forever()

    monkeypatch.setattr(health, "follow_trades", crash_once)
    settings = settings_for(tmp_path, IBKR_PORT=str(closed_port()))
    async with trio.open_nursery() as nursery:
        bot: BotHandle = await nursery.start(run_bot, settings, BotOptions(
            sim_start=dt.datetime(2026, 11, 20, 10, 0, tzinfo=ET), console=False,
            handle_signals=False))
        node = bot.root.find("root.http")
        with trio.fail_after(30):
            while node.incarnation < 2 or node.state.value != "running":
                await trio.sleep(0.05)
            port = health.port_file(settings.state_dir).read_text(encoding="ascii").strip()
            async with httpx.AsyncClient() as client:
                r = await client.get(f"http://127.0.0.1:{port}/health")
        assert r.status_code in (200, 503) and r.json()["mode"] == "DRY_RUN"
        assert node.restarts == 1 and "a bug inside the HTTP server" in (node.last_error or "")
        assert not bot.stop_requested.is_set()
        bot.request_stop("test over")
