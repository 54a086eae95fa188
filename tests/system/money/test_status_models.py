"""The status read-model the console and /api read: OrderRouter's book, ModeGuard's risk.

Against the simulator with real ib_async: after a filled bracket entry the book shows the
position with its conservative mark and native protection and the two working children; a
quote that stops coming turns the mark stale (and zero), never a silently old price.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from tests.harness import wait_until
from tests.harness.bot import BOT_WAIT
from tests.harness.money import filled_entry, open_money_bot

PAPER = {"DRY_RUN": "false", "PAPER_TRADING": "true", "OPERATOR_ID": "op",
         "BOT_CAPITAL_USD": "50000"}

pytestmark = pytest.mark.slow


async def test_the_book_and_risk_show_a_protected_position_and_a_stale_mark(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_money_bot(tmp_path, shared_data, env=PAPER) as h:
        with trio.fail_after(90):
            ref, key, qty = await filled_entry(h)

            def book_has_it() -> bool:
                book = h.bot.wiring.book.value
                return book is not None and any(
                    p.option_key == key and p.contracts == qty and not p.mark_stale
                    for p in book.positions)
            await wait_until(book_has_it, timeout=BOT_WAIT)
            book = h.bot.wiring.book.value
            assert book is not None and book.mode == "PAPER"
            pos, = book.positions
            assert pos.protection == "native" and pos.mark is not None and pos.mark > 0
            assert {(o.order_ref, o.purpose) for o in book.orders} == {
                (f"{ref}/tp", "take_profit"), (f"{ref}/sl", "stop_loss")}
            risk = h.bot.wiring.risk.value
            assert risk is not None and risk.trading_state == "ACTIVE"
            assert risk.capital_usd == 50_000 and (risk.equity_usd or 0) > 50_000
            assert {lim.name for lim in risk.limits} >= {"daily_loss", "capital"}

            h.gateway.market_farm_ok = False          # the quote stops coming
            await wait_until(lambda: (b := h.bot.wiring.book.value) is not None and
                             b.positions[0].mark_stale, timeout=BOT_WAIT)
            pos = h.bot.wiring.book.value.positions[0]   # type: ignore[union-attr]
            assert pos.mark == 0.0 and pos.unrealized_pnl is not None and \
                pos.unrealized_pnl < 0
            assert pos.protection == "native"
