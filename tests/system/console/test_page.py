"""The console page in headless Chromium over a hand-built status read-model, so each test
publishes exactly the latest values it needs: positions and P&L follow the book without a
reload, and the buttons send their commands (release and close ask first) and say what
became of them."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from messages.control import OperatorCommand
from messages.status import LimitUse, RiskStatus
from tests.harness.browser import (
    click,
    in_browser,
    needs_chromium,
    open_chromium,
    text_of,
    wait_page,
)
from tests.harness.ops import Served, one_position_book, open_health

pytestmark = [pytest.mark.slow, needs_chromium]
KEY = "SPY 20261120 C 600"


def _commands(h: Served, receiver: trio.MemoryReceiveChannel[OperatorCommand]
              ) -> list[tuple[str, str | None]]:
    out = []
    while True:
        try:
            c = receiver.receive_nowait()
        except trio.WouldBlock:
            return out
        out.append((c.kind, c.option_key))


async def test_positions_and_pnl_follow_the_book_and_the_buttons_send_commands(
        tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        commands = h.wiring.commands.clone_receiver()
        h.wiring.book.set(one_position_book(h, mark=1.75))
        h.wiring.risk.set(RiskStatus(
            ts=h.clock.now_utc(), trading_state="ACTIVE", equity_usd=600.0, capital_usd=600.0,
            limits=(LimitUse(name="daily_loss", used=45.0, limit=60.0, unit="usd"),
                    LimitUse(name="pdt", used=1, limit=3, unit="count", detail="2 left"))))
        with trio.fail_after(120), open_chromium() as driver:
            await in_browser(lambda: driver.get(f"http://127.0.0.1:{h.port}/?token={h.token}"))
            await wait_page(driver, lambda d: KEY in text_of(d, "positions"), "the position")
            assert "+50.00" in text_of(driver, "positions")
            h.wiring.book.set(one_position_book(h, mark=2.0))          # the quote moved: no reload
            await wait_page(driver, lambda d: "+100.00" in text_of(d, "positions"),
                            "the new unrealised P&L")
            assert "+25.00" in text_of(driver, "pnl")       # realised today
            limits = text_of(driver, "limits")
            assert "daily_loss 45 60" in limits and "pdt (2 left) 1 3" in limits
            # engage: no question; release: asks first (declined, then accepted)
            await in_browser(lambda: click(driver, "id", "kill-on"))
            await in_browser(lambda: click(driver, "id", "kill-off"))
            await in_browser(lambda: driver.switch_to.alert.dismiss())
            await in_browser(lambda: click(driver, "id", "kill-off"))
            await in_browser(lambda: driver.switch_to.alert.accept())
            await wait_page(driver, lambda d: "release sent" in text_of(d, "action-result"),
                            "the release acknowledged")
            # close one position: asks, sends, then reports what ModeGuard did
            await in_browser(lambda: click(driver, "css selector", "button.close"))
            await in_browser(lambda: driver.switch_to.alert.accept())
            await wait_page(driver, lambda d: "waiting for ModeGuard" in
                            text_of(d, "action-result"), "the close sent")
            exiting = one_position_book(h, mark=2.0)
            h.wiring.book.set(exiting.model_copy(update={"positions": (
                exiting.positions[0].model_copy(update={"protection": "exiting"}),)}))
            await wait_page(driver, lambda d: "exit working" in text_of(d, "action-result"),
                            "the exit working")
        sent = _commands(h, commands)
    assert sent == [("kill_switch_on", None), ("kill_switch_off", None),
                    ("close_position", KEY)]
    assert [a["source"] for a in h.journal("operator_action")] == ["console"] * 3
