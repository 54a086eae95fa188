"""`/ws` with a real WebSocket client (trio-websocket): the token, journal events and status
changes pushed, and a stalled client that costs the journal's writers nothing."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.lowlevel
from trio_websocket import ConnectionRejected, WebSocketConnection, open_websocket_url

from config.market_calendar import ET
from messages.control import TradingState, TradingStatus
from runtime.app.bot import BotHandle, BotOptions, run_bot
from runtime.ops import ws
from runtime.ops.access import TOKEN_FILE
from runtime.ops.health import port_file
from tests.harness import closed_port, settings_for
from tests.harness.ops import Served, open_health


def _url(h: Served) -> str:
    return f"ws://127.0.0.1:{h.port}/ws"


def _auth(h: Served) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {h.token}".encode())]


async def _next(conn: WebSocketConnection, kind: str,
                match: Any = lambda doc: True) -> dict[str, Any]:
    while True:
        doc = json.loads(await conn.get_message())
        if doc["type"] == kind and match(doc):
            return doc


async def test_a_websocket_without_the_token_or_from_another_site_is_refused(
        tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        with trio.fail_after(10):
            with pytest.raises(ConnectionRejected) as no_token:
                async with open_websocket_url(_url(h)):
                    pass
            with pytest.raises(ConnectionRejected) as foreign:
                async with open_websocket_url(_url(h), extra_headers=[
                        *_auth(h), (b"origin", b"http://evil.example")]):
                    pass
    assert no_token.value.status_code == 401 and foreign.value.status_code == 403


async def test_journal_events_and_status_changes_arrive_without_asking(tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        with trio.fail_after(10):
            async with open_websocket_url(_url(h), extra_headers=_auth(h)) as conn:
                hello = await _next(conn, "hello")
                first = await _next(conn, "status")
                h.view.events({"ts": "2026-11-20T15:00:00Z", "event": "signal",
                               "actor": "root.brain.strategy_selector", "strategy": "A"})
                events = await _next(conn, "events")
                h.wiring.trading.set(TradingStatus(state=TradingState.ACTIVE))
                changed = await _next(conn, "status",
                                      lambda d: d["status"]["trading"]["state"] == "ACTIVE")
    assert hello["mode"] == "DRY_RUN"
    assert first["status"]["trading"]["state"] == "HALTED"
    assert [e["event"] for e in events["events"]] == ["signal"] and events["dropped"] == 0
    assert changed["status"]["signals"][-1]["strategy"] == "A"


async def test_a_stalled_client_drops_its_oldest_events_blocks_no_writer_and_is_cut_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ws, "SEND_TIMEOUT_S", 1.0)
    async with open_health(tmp_path) as h:
        with trio.fail_after(20):
            async with open_websocket_url(_url(h), extra_headers=_auth(h),
                                          message_queue_size=1) as _stalled, \
                    open_websocket_url(_url(h), extra_headers=_auth(h)) as live:
                await _next(live, "status")
                padding = "x" * 2000
                costs: list[float] = []
                for i in range(20_000):      # far more than the socket buffers and the queue
                    t0 = time.perf_counter()
                    h.view.events({"ts": "2026-11-20T15:00:00Z", "event": "bar",
                                   "actor": "root.link.bar_feed", "i": i, "pad": padding})
                    costs.append(time.perf_counter() - t0)
                    if i % 500 == 0:
                        await trio.lowlevel.checkpoint()  # the server fills the socket
                last = await _next(live, "events", lambda d: d["events"][-1]["i"] == 19_999)
                dropped = h.view.events.dropped()
                health = await h.client.get("/health")
                while h.view.events.subscribers > 1:     # the stalled one, after its timeout
                    await trio.sleep(0.05)
                assert live.closed is None
                await _next(live, "status")              # the live one is still served
    costs.sort()
    p99 = costs[int(len(costs) * 0.99)]
    assert p99 < 0.0005, f"the journal tap took {p99 * 1e6:.0f} us (p99) with a stalled client"
    assert max(dropped) > 0                   # the stalled client lost its oldest events
    assert last["events"][-1]["i"] == 19_999
    assert health.status_code in (200, 503)


async def test_connections_beyond_the_limit_are_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ws, "MAX_CLIENTS", 1)
    async with open_health(tmp_path) as h:
        with trio.fail_after(10):
            async with open_websocket_url(_url(h), extra_headers=_auth(h)) as first:
                await _next(first, "hello")
                with pytest.raises(ConnectionRejected) as second:
                    async with open_websocket_url(_url(h), extra_headers=_auth(h)):
                        pass
    assert second.value.status_code == 503


async def _flood(journal: Any, n: int = 20_000) -> None:
    for i in range(n):
        journal.emit("bar", "root.link.bar_feed", i=i, pad="x" * 2000)
        if i % 500 == 0:
            await trio.lowlevel.checkpoint()


async def test_a_stalled_client_never_holds_the_bots_stop(tmp_path: Path) -> None:
    """hypercorn shields its writes: before the server closed its connections itself, a
    console tab that stopped reading kept `python -m runtime` from ever stopping."""
    settings = settings_for(tmp_path, IBKR_PORT=str(closed_port()))
    async with trio.open_nursery() as outer:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                bot: BotHandle = await nursery.start(run_bot, settings, BotOptions(
                    sim_start=dt.datetime(2026, 11, 20, 10, 0, tzinfo=ET), console=False,
                    handle_signals=False))
                port = port_file(settings.state_dir).read_text(encoding="ascii").strip()
                token = (settings.state_dir / TOKEN_FILE).read_text(encoding="ascii").strip()
                connected = trio.Event()

                async def stalled() -> None:
                    async with open_websocket_url(
                            f"ws://127.0.0.1:{port}/ws", message_queue_size=1,
                            extra_headers=[(b"authorization", f"Bearer {token}".encode())]):
                        connected.set()
                        await trio.sleep_forever()           # never reads

                outer.start_soon(stalled)
                await connected.wait()
                await _flood(bot.journal)
                await trio.sleep(0.5)                        # its writes are blocked now
                stop_asked = trio.current_time()
                bot.request_stop("test over")
            stopped_in = trio.current_time() - stop_asked
        outer.cancel_scope.cancel()
    assert stopped_in < 10.0
