"""The dry-run fill model and position book: conservative fills, IB commissions, P&L."""

from __future__ import annotations

import datetime as dt

import pytest

from doctrine.dry_run import FillModel, PositionBook
from doctrine.exits import ExitRules, OpenPosition
from messages.market import OptionSpec

SPEC = OptionSpec(underlying="SPY", expiry=dt.date(2024, 2, 23), strike=500.0, right="C")


def held(contracts: int = 3, premium: float = 1.50) -> OpenPosition:
    return OpenPosition(symbol="SPY", option=SPEC, strategy="A", contracts=contracts,
                        entry_premium=premium, entry_s=1000.0,
                        rules=ExitRules.for_strategy("A", None))


@pytest.mark.parametrize(("contracts", "premium", "fee"), [
    (1, 1.50, 1.00), (2, 1.50, 1.30), (10, 1.50, 6.50), (10, 0.07, 5.00), (10, 0.03, 2.50),
    (1, 0.03, 1.00), (0, 1.50, 0.0),
])
def test_ib_option_commission(contracts: int, premium: float, fee: float) -> None:
    assert FillModel().commission(contracts, premium) == pytest.approx(fee)


def test_buys_at_the_ask_and_sells_at_the_bid_with_slippage() -> None:
    model = FillModel(slippage=0.02)
    assert model.buy_price(1.50) == pytest.approx(1.52)
    assert model.sell_price(1.40) == pytest.approx(1.38)
    assert model.buy_price(None) is None and model.sell_price(0.0) is None
    assert model.sell_price(0.01) == 0.0


def test_book_tracks_realised_pnl_net_of_commissions() -> None:
    book = PositionBook(starting_equity=1000.0)
    book.open(held(), commission=1.95)
    assert book.position_for("SPY") is not None and book.position_for("QQQ") is None
    assert book.unrealized({SPEC.key: 1.70}) == pytest.approx(0.20 * 3 * 100)
    assert book.unrealized({}) == pytest.approx(-1.50 * 3 * 100)
    trade = book.close(SPEC.key, price=1.70, commission=1.95, now_s=2000.0,
                       reason="take_profit")
    assert trade.pnl == pytest.approx(60.0 - 3.90)
    assert book.realized_pnl == pytest.approx(56.10)
    assert book.commissions == pytest.approx(3.90)
    assert book.equity == pytest.approx(1056.10)
    assert book.open_positions == [] and book.trades == [trade]


def test_book_refuses_duplicates_and_empty_positions() -> None:
    book = PositionBook()
    book.open(held(), commission=1.0)
    with pytest.raises(ValueError, match="already open"):
        book.open(held(), commission=1.0)
    with pytest.raises(ValueError, match="cannot open 0"):
        PositionBook().open(held(contracts=0), commission=0.0)
