"""The console in a real browser (headless Chromium) against the real bot on tools.fake_gateway
in PAPER on a simulated clock (60x): refused without the token; with it the live tree, then a
position after an entry with its P&L moving with the quotes; and the kill-switch button
flattens and halts, as the simulator's own books show."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import trio

from messages.control import TradingState
from messages.link import FeedSymbols, SymbolUnavailable
from runtime.ops.access import TOKEN_FILE
from runtime.ops.health import port_file
from tests.harness import wait_until
from tests.harness.bot import Harness
from tests.harness.browser import (
    click,
    in_browser,
    needs_chromium,
    open_chromium,
    text_of,
    wait_page,
)
from tests.harness.money import (
    broker_position,
    entry_filled,
    entry_signal,
    inject,
    open_money_bot,
    wait_trading,
)

PAPER = {"DRY_RUN": "false", "PAPER_TRADING": "true", "OPERATOR_ID": "op",
         "BOT_CAPITAL_USD": "100000"}   # BOT_CAPITAL_USD=600 (the default) affords no contract here

pytestmark = [pytest.mark.slow, needs_chromium]


def _console(h: Harness) -> tuple[str, str]:
    port = port_file(h.settings.state_dir).read_text(encoding="ascii").strip()
    token = (h.settings.state_dir / TOKEN_FILE).read_text(encoding="ascii").strip()
    return f"http://127.0.0.1:{port}", token


async def _enter(h: Harness) -> str:
    await inject(h, entry_signal(h))
    intent = await h.journal.wait_for("order_intent")
    await entry_filled(h, intent["intent_id"])
    return str(intent["contract"])


async def test_the_page_is_refused_without_the_token_then_shows_the_tree_and_the_kill_switch_flattens_and_halts(  # noqa: E501
        tmp_path: Path, shared_data: Path) -> None:
    async with open_money_bot(tmp_path, shared_data, env=PAPER) as h:
        with trio.fail_after(240):
            await wait_trading(h)
            base, token = _console(h)
            with open_chromium() as driver:
                await in_browser(lambda: driver.get(base + "/"))
                refused = await in_browser(lambda: driver.page_source)
                assert "401: token needed" in refused
                await in_browser(lambda: driver.get(f"{base}/?token={token}"))
                assert await in_browser(lambda: driver.current_url) == base + "/"
                await wait_page(driver, lambda d: "mode_guard [running]" in text_of(d, "tree"),
                                "the actor tree")
                await wait_page(driver, lambda d: "trading ACTIVE" in text_of(d, "trading"),
                                "trading ACTIVE")
                assert "PAPER" in text_of(driver, "mode")
                now = h.bot.clock.now_utc()          # a symbol the Gateway refused (issue 13)
                h.bot.wiring.symbols.set(FeedSymbols(unavailable=(SymbolUnavailable(
                    symbol="SPYY", code=200, reason="no security definition (unknown symbol)",
                    since=now, retry_at=now + dt.timedelta(minutes=30)),)))
                await wait_page(driver, lambda d: "SPYY (IB 200)" in text_of(d, "symbols"),
                                "the refused symbol in the header")
                key = await _enter(h)
                assert broker_position(h, key) > 0
                await in_browser(lambda: click(driver, "id", "kill-on"))
                await wait_until(lambda: broker_position(h, key) == 0, timeout=120)
                await wait_trading(h, TradingState.HALTED)
                await wait_page(driver, lambda d: "trading HALTED" in text_of(d, "trading"),
                                "trading HALTED")
                await wait_page(driver, lambda d: "kill_switch" in text_of(d, "journal"),
                                "the kill switch in the journal")
    actions = h.journal.of("operator_action")
    assert [(a["action"], a["source"]) for a in actions] == [("kill_switch_on", "console")]


async def test_a_position_appears_after_an_entry_its_pnl_follows_the_quotes_and_close_flattens_it(
        tmp_path: Path, shared_data: Path) -> None:
    # at 10x (not the harness's 60x) the market moves the option's mark within seconds but
    # reaches the doctrine's exits (take profit 15 %, stop 25 %, time stop 90 market minutes:
    # 9 real minutes) six times more slowly: no exit closes the row before the console's click
    async with open_money_bot(tmp_path, shared_data, env=PAPER, speed=10.0) as h:
        with trio.fail_after(240):
            await wait_trading(h)
            base, token = _console(h)
            key = await _enter(h)
            # OrderRouter publishes the book (the status read-model) after the fill
            await h.bot.wiring.book.wait_value(lambda b: b is not None and bool(b.positions))
            with open_chromium() as driver:
                await in_browser(lambda: driver.get(f"{base}/?token={token}"))
                await wait_page(driver, lambda d: key in text_of(d, "positions"),
                                f"the position {key}")
                first = text_of(driver, "positions")
                # moving, and still there: a row that vanished (closed by an exit rule or the
                # broker's bracket as the market moved) is not a mark that moved
                await wait_page(driver, lambda d: key in (now := text_of(d, "positions"))
                                and now != first, "the position's mark and P&L moving",
                                timeout=120)
                assert broker_position(h, key) != 0, "closed before the console's click"
                # the close button: asks, then ModeGuard's exit goes out and the broker
                # (the simulator's own book) is flat
                await in_browser(lambda: click(driver, "css selector", "button.close"))
                await in_browser(lambda: driver.switch_to.alert.accept())
                await wait_until(lambda: broker_position(h, key) == 0, timeout=120)
                await wait_page(driver, lambda d: key not in text_of(d, "positions"),
                                "the position gone from the page", timeout=60)
    closes = [a for a in h.journal.of("operator_action") if a["action"] == "close_position"]
    assert [a["source"] for a in closes] == ["console"]
