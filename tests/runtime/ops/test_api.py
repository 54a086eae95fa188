"""The console's read API and actions over real HTTP: the token, Host and Origin, the latest
values as JSON, every action an OperatorCommand to ModeGuard, journaled with its source."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import stat
from pathlib import Path

import pytest
import trio

from messages.control import OperatorCommand
from messages.link import FeedSymbols, SymbolUnavailable
from messages.status import LimitUse, RiskStatus
from runtime.ops.access import COOKIE, TOKEN_FILE
from tests.harness.ops import one_position_book, open_health

API = ("/api/status", "/api/positions", "/api/orders", "/api/trades", "/api/pnl")


async def test_every_api_path_refuses_without_the_token_and_answers_with_it(
        tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        with trio.fail_after(10):
            refused = [await h.client.get(p) for p in API]
            wrong = await h.client.get("/api/status", headers={"Authorization": "Bearer nope"})
            answered = [await h.api.get(p) for p in API]
            health = await h.client.get("/health")            # monitors need no token
    assert [r.status_code for r in refused] == [401] * len(API)
    assert refused[0].headers["www-authenticate"] == "Bearer" and wrong.status_code == 401
    assert [r.status_code for r in answered] == [200] * len(API)
    assert health.status_code in (200, 503)


async def test_the_page_opens_once_with_the_token_then_with_its_cookie_only(
        tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        with trio.fail_after(10):
            bare = await h.client.get("/")
            wrong = await h.client.get("/", params={"token": "x" * 43})
            opened = await h.client.get("/", params={"token": h.token})
            cookie = opened.cookies.get(COOKIE)
            jar = {"Cookie": f"{COOKIE}={h.token}"}
            page = await h.client.get("/", headers=jar)
            api_by_cookie = await h.client.get("/api/pnl", headers=jar)
            script = await h.client.get("/static/app.js")
    assert bare.status_code == 401 and "token" in bare.text
    assert wrong.status_code == 401
    assert opened.status_code == 303 and opened.headers["location"] == "/"   # token leaves URL
    set_cookie = opened.headers["set-cookie"]
    assert cookie == h.token and "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    assert page.status_code == 200 and "<title>Crucible console</title>" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert api_by_cookie.status_code == 200
    assert script.status_code == 200 and "WebSocket" in script.text


async def test_other_sites_and_rebound_names_are_refused_even_with_the_token(
        tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        own = f"http://127.0.0.1:{h.port}"
        with trio.fail_after(10):
            foreign = await h.api.post("/api/kill-switch", json={"engaged": True},
                                       headers={"Origin": "http://evil.example"})
            rebound = await h.api.get("/api/status", headers={"Host": "evil.example"})
            same = await h.api.get("/api/status", headers={"Origin": own})
        assert h.wiring.commands.depth() == 0
    assert foreign.status_code == 403 and rebound.status_code == 403
    assert same.status_code == 200


async def test_the_token_is_created_once_owner_only_and_only_its_path_is_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with open_health(tmp_path) as h:
        first = h.token
    async with open_health(tmp_path) as h:
        assert h.token == first                       # kept across restarts
    path = tmp_path / "state" / TOKEN_FILE
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert str(path) in text and first not in text


async def test_status_positions_orders_and_pnl_show_the_published_read_model(
        tmp_path: Path) -> None:
    async with open_health(tmp_path, DRY_RUN="false", PAPER_TRADING="true",
                           OPERATOR_ID="op") as h:
        h.wiring.book.set(one_position_book(h, mark=1.75))
        h.wiring.risk.set(RiskStatus(
            ts=h.clock.now_utc(), trading_state="ACTIVE", equity_usd=600.0, capital_usd=600.0,
            limits=(LimitUse(name="daily_loss", used=0.0, limit=60.0, unit="usd"),
                    LimitUse(name="pdt", used=1, limit=3, unit="count"))))
        with trio.fail_after(10):
            status = (await h.api.get("/api/status")).json()
            positions = (await h.api.get("/api/positions")).json()
            orders = (await h.api.get("/api/orders")).json()
            pnl = (await h.api.get("/api/pnl")).json()
            h.wiring.book.set(one_position_book(h, mark=2.0))             # the quote moved
            moved = (await h.api.get("/api/positions")).json()
    assert status["mode"] == "PAPER" and status["mode_words"] == "PAPER TRADING"
    assert status["tree"]["name"] == "root" and status["clock"] == "bot"
    assert positions["positions"][0]["option_key"] == "SPY 20261120 C 600"
    assert positions["positions"][0]["unrealized_pnl"] == pytest.approx(50.0)
    assert moved["positions"][0]["unrealized_pnl"] == pytest.approx(100.0)
    assert orders["orders"][0]["purpose"] == "take_profit"
    assert pnl["realized_today"] == 25.0 and pnl["source"] == "book"
    assert [lim["name"] for lim in pnl["limits"]] == ["daily_loss", "pdt"]


async def test_console_actions_go_to_mode_guard_and_are_journaled_with_their_source(
        tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        commands = h.wiring.commands.clone_receiver()
        with trio.fail_after(10):
            on = await h.api.post("/api/kill-switch", json={"engaged": True})
            unconfirmed = await h.api.post("/api/kill-switch", json={"engaged": False})
            off = await h.api.post("/api/kill-switch", json={"engaged": False, "confirm": True})
            close = await h.api.post("/api/close", json={"option_key": "SPY 20261120 C 600"})
            bad = await h.api.post("/api/close", json={"option_key": 5})
            no_token = await h.client.post("/api/kill-switch", json={"engaged": True})
        received: list[OperatorCommand] = []
        while True:
            try:
                received.append(commands.receive_nowait())
            except trio.WouldBlock:
                break
        actions = h.journal("operator_action")
    assert (on.status_code, unconfirmed.status_code, off.status_code) == (202, 409, 202)
    assert close.status_code == 202 and bad.status_code == 400 and no_token.status_code == 401
    assert [(c.kind, c.source, c.option_key) for c in received] == [
        ("kill_switch_on", "console", None), ("kill_switch_off", "console", None),
        ("close_position", "console", "SPY 20261120 C 600")]
    assert [(a["action"], a["source"]) for a in actions] == [
        ("kill_switch_on", "console"), ("kill_switch_off", "console"),
        ("close_position", "console")]


async def test_the_contract_kill_switch_names_the_exact_fix_for_a_wrong_content_type(
        tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        with trio.fail_after(10):
            r = await h.client.post("/kill-switch", content=b'{"engaged": true}')
    assert r.status_code == 415
    assert r.json()["error"] == "send Content-Type: application/json"


async def test_a_bug_in_a_route_answers_500_and_the_server_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with open_health(tmp_path) as h:
        def broken() -> dict[str, object]:
            raise RuntimeError("a bug in a route")
        monkeypatch.setattr(h.view, "pnl", broken)
        with trio.fail_after(10):
            failed = await h.api.get("/api/pnl")
            after = await h.api.get("/api/positions")
    assert failed.status_code == 500 and "internal error" in failed.json()["error"]
    assert after.status_code == 200


async def test_api_trades_reads_the_history_the_trade_events_keep_level_with_trades_jsonl(
        tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        jsonl = h.settings.log_dir / "trades.jsonl"
        jsonl.parent.mkdir(parents=True, exist_ok=True)
        fill = {"ts": "2026-11-20T15:00:00Z", "kind": "fill", "mode": "DRY_RUN",
                "order_ref": "e1", "intent_id": "e1", "contract": "SPY 20261120 C 600",
                "side": "BUY", "quantity": 1, "price": 1.5, "commission": 0.65,
                "opening": True, "realized_pnl": -0.65}
        jsonl.write_text(json.dumps(fill) + "\n", encoding="utf-8")
        h.view.events({"ts": fill["ts"], "event": "fill", "actor": "root.order_router"})
        with trio.fail_after(10):
            while not (doc := (await h.api.get("/api/trades")).json())["trades"]:
                await trio.sleep(0.05)
    trade = doc["trades"][0]
    assert (trade["contract"], trade["closed"], trade["pnl"]) == ("SPY 20261120 C 600", False,
                                                                  -0.65)
    assert doc["stats"]["closed"] == 0


async def test_health_and_status_name_a_symbol_the_gateway_refused(tmp_path: Path) -> None:
    """Issue 13: a symbol disabled by a permanent error (200, no permission, ...) shows in
    /health (token-free, for monitors) and in the console's status, with IB's code."""
    async with open_health(tmp_path) as h:
        with trio.fail_after(10):
            before = (await h.client.get("/health")).json()
            now = h.clock.now_utc()
            h.wiring.symbols.set(FeedSymbols(unavailable=(SymbolUnavailable(
                symbol="SPYY", code=200, reason="no security definition (unknown symbol)",
                since=now, retry_at=now + dt.timedelta(minutes=30)),)))
            after = (await h.client.get("/health")).json()
            status = (await h.api.get("/api/status")).json()
    assert before["symbols_unavailable"] == []
    assert [(u["symbol"], u["code"]) for u in after["symbols_unavailable"]] == [("SPYY", 200)]
    assert status["symbols_unavailable"] == after["symbols_unavailable"]
