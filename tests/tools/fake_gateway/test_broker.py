"""The broker's rules without a socket: fills, commissions, brackets/OCA, expiries, ledger."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from config.market_calendar import ET, get_calendar
from tools.fake_gateway.broker import (
    Broker,
    BrokerEvent,
    CancelEvent,
    FillEvent,
    OrderErrorEvent,
    OrderStatusEvent,
    OrderTicket,
    PositionEvent,
    commission_for,
)
from tools.fake_gateway.contracts import UNDERLYINGS, option_contract, underlying_contract
from tools.fake_gateway.market import Market

T0 = dt.datetime(2024, 2, 21, 10, 0, tzinfo=ET)
SPY = underlying_contract(UNDERLYINGS["SPY"])
CALL = option_contract(UNDERLYINGS["SPY"], dt.date(2024, 2, 23), 496.0, "C")


@pytest.fixture(scope="module")
def market(spy_csv: Path) -> Market:
    return Market(get_calendar(), seed=1, bars_csv=spy_csv)


@pytest.fixture
def broker(market: Market) -> Broker:
    return Broker(market, get_calendar(), "DU1234567", 100_000.0)


def ticket(order_id: int, action: str = "BUY", qty: float = 1, order_type: str = "LMT",
           lmt: float | None = None, aux: float | None = None, **kw: object) -> OrderTicket:
    fields: dict[str, object] = dict(
        order_id=order_id, action=action, quantity=qty, order_type=order_type, lmt_price=lmt,
        aux_price=aux, tif="DAY", oca_group="", oca_type=0, account="", open_close="",
        origin=0, order_ref="test", transmit=True, parent_id=0, outside_rth=False,
        trailing_percent=None, trail_stop_price=None, what_if=False)
    fields.update(kw)
    return OrderTicket(**fields)  # type: ignore[arg-type]


def kinds(events: list[BrokerEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_a_marketable_option_limit_fills_at_the_ask_with_ib_commission(
        broker: Broker, market: Market) -> None:
    ask = market.option_quote(CALL, T0).market.ask
    events = broker.place(1, CALL, ticket(1, lmt=round(ask + 0.05, 2), qty=2), T0)
    fills = [e for e in events if isinstance(e, FillEvent)]
    assert len(fills) == 1
    assert fills[0].fill.price == ask
    assert fills[0].fill.commission == pytest.approx(1.30)       # 2 × $0.65
    pos = broker.positions[CALL.con_id]
    assert pos.quantity == 2
    assert pos.avg_cost == pytest.approx((ask * 100 * 2 + 1.30) / 2)
    assert broker.cash == pytest.approx(100_000 - ask * 200 - 1.30)


def test_commission_schedules() -> None:
    assert commission_for(CALL, 1, 2.0) == 1.00          # minimum per order
    assert commission_for(CALL, 10, 2.0) == pytest.approx(6.50)
    assert commission_for(SPY, 100, 500.0) == 1.00
    assert commission_for(SPY, 1000, 500.0) == pytest.approx(5.00)


def test_a_resting_limit_fills_when_the_price_crosses(broker: Broker, market: Market) -> None:
    series = market.series("SPY")
    session = get_calendar().session(T0.date())
    assert session is not None
    later = series.aggregate(session, T0 + dt.timedelta(minutes=1), T0 + dt.timedelta(minutes=30))
    assert later is not None
    limit = round(later.low + 0.01, 2)
    assert limit < market.stock_quote("SPY", T0).ask
    events = broker.place(1, SPY, ticket(7, lmt=limit, qty=10), T0)
    assert kinds(events) == ["OrderStatusEvent", "OrderStatusEvent"]   # PreSubmitted, Submitted
    filled: list[FillEvent] = []
    t = T0
    while not filled and t < T0 + dt.timedelta(minutes=31):
        t += dt.timedelta(seconds=20)
        filled = [e for e in broker.tick(t) if isinstance(e, FillEvent)]
    assert filled and filled[0].fill.price <= limit
    assert broker.order_for(1, 7) is not None and broker.order_for(1, 7).status == "Filled"  # type: ignore[union-attr]


def test_bracket_children_wait_for_the_parent_then_cancel_each_other(
        broker: Broker, market: Market) -> None:
    q = market.option_quote(CALL, T0).market
    assert broker.place(1, CALL, ticket(10, lmt=q.ask, transmit=False), T0) == []
    assert broker.place(1, CALL, ticket(11, "SELL", lmt=round(q.ask * 3, 2), parent_id=10,
                                        transmit=False), T0) == []
    events = broker.place(1, CALL, ticket(12, "SELL", order_type="STP", aux=0.05, parent_id=10),
                          T0)
    assert any(isinstance(e, FillEvent) and e.order.order_id == 10 for e in events)
    tp, sl = broker.order_for(1, 11), broker.order_for(1, 12)
    assert tp is not None and sl is not None
    assert tp.status == "Submitted" and tp.active
    assert sl.status == "PreSubmitted" and sl.active       # IB simulates option stops
    # the take-profit is moved to a marketable price: it fills and the stop is cancelled
    bid = market.option_quote(CALL, T0).market.bid
    assert bid is not None
    events = broker.place(1, CALL, ticket(11, "SELL", lmt=bid, parent_id=10), T0)
    assert any(isinstance(e, FillEvent) and e.order.order_id == 11 for e in events)
    assert any(isinstance(e, CancelEvent) and e.order.order_id == 12 and e.code is None
               for e in events)
    assert broker.positions[CALL.con_id].quantity == 0
    assert broker.fills[-1].realized_pnl is not None


def test_cancelling_a_parent_cancels_its_children(broker: Broker, market: Market) -> None:
    bid = market.stock_quote("SPY", T0).bid
    broker.place(1, SPY, ticket(20, lmt=round(bid - 5, 2), transmit=False), T0)
    broker.place(1, SPY, ticket(21, "SELL", lmt=round(bid + 5, 2), parent_id=20), T0)
    events = broker.cancel(1, 20, T0)
    cancelled = {e.order.order_id: e.code for e in events if isinstance(e, CancelEvent)}
    assert cancelled == {20: 202, 21: None}
    again = broker.cancel(1, 20, T0)
    assert isinstance(again[0], OrderErrorEvent) and again[0].code == 10148
    unknown = broker.cancel(1, 999, T0)
    assert isinstance(unknown[0], OrderErrorEvent) and unknown[0].code == 10147


def test_day_orders_expire_at_the_close_and_gtc_orders_stay(broker: Broker,
                                                            market: Market) -> None:
    low = round(market.stock_quote("SPY", T0).bid - 50, 2)
    broker.tick(T0)
    broker.place(1, SPY, ticket(30, lmt=low), T0)
    broker.place(1, SPY, ticket(31, lmt=low, tif="GTC"), T0)
    events = broker.tick(dt.datetime(2024, 2, 21, 16, 5, tzinfo=ET))
    assert [e.order.order_id for e in events if isinstance(e, CancelEvent)] == [30]
    assert [o.order_id for o in broker.open_orders(1)] == [31]


def test_in_the_money_options_settle_at_expiry(broker: Broker, market: Market) -> None:
    deep = option_contract(UNDERLYINGS["SPY"], dt.date(2024, 2, 21), 450.0, "C")
    ask = market.option_quote(deep, T0).market.ask
    broker.tick(T0)
    broker.place(1, deep, ticket(40, lmt=ask), T0)
    cash_after_buy = broker.cash
    events = broker.tick(dt.datetime(2024, 2, 21, 16, 1, tzinfo=ET))
    settled = [e for e in events if isinstance(e, PositionEvent)]
    assert settled and settled[0].position.quantity == 0
    close = market.series("SPY").day(get_calendar().session(T0.date())).c[-1]  # type: ignore[arg-type]
    assert broker.cash == pytest.approx(cash_after_buy + (close - 450.0) * 100)


def test_average_cost_and_realized_pnl_follow_ib(broker: Broker) -> None:
    assert broker._book(CALL, True, 2, 1.00, 1.30) is None
    realized = broker._book(CALL, False, 1, 1.50, 1.00)
    avg = (200 + 1.30) / 2
    assert realized == pytest.approx(150 - avg - 1.00)
    assert broker.positions[CALL.con_id].avg_cost == pytest.approx(avg)


def test_orders_ib_would_refuse_are_refused(broker: Broker) -> None:
    bad = {
        387: ticket(50, order_type="MOC"),
        434: ticket(51, qty=0, lmt=1.0),
        201: ticket(52, lmt=2000.0, qty=1000),            # $200M of premium
    }
    for code, t in bad.items():
        events = broker.place(1, CALL, t, T0)
        assert isinstance(events[0], OrderErrorEvent) and events[0].code == code, code
    odd = broker.place(1, CALL, ticket(53, lmt=1.234), T0)
    assert isinstance(odd[0], OrderErrorEvent) and odd[0].code == 110


def test_a_stop_on_stock_triggers_on_the_last_price(broker: Broker, market: Market) -> None:
    last = market.stock_quote("SPY", T0).last
    events = broker.place(1, SPY, ticket(60, "SELL", order_type="STP", aux=round(last + 1, 2)),
                          T0)
    fill = [e for e in events if isinstance(e, FillEvent)]
    assert fill and fill[0].fill.price <= last + 1
    status = [e.order.status for e in events if isinstance(e, OrderStatusEvent)]
    assert status[:2] == ["PreSubmitted", "Submitted"]


def test_modifying_an_order_keeps_its_perm_id(broker: Broker, market: Market) -> None:
    bid = market.stock_quote("SPY", T0).bid
    broker.place(1, SPY, ticket(70, lmt=round(bid - 3, 2)), T0)
    perm = broker.order_for(1, 70).perm_id  # type: ignore[union-attr]
    events = broker.place(1, SPY, dataclasses.replace(ticket(70, lmt=round(bid - 2, 2))), T0)
    assert isinstance(events[0], OrderStatusEvent)
    assert events[0].order.perm_id == perm and events[0].order.lmt_price == round(bid - 2, 2)


def test_a_trailing_stop_follows_the_high_and_triggers_on_the_pullback(
        broker: Broker, market: Market) -> None:
    broker.place(1, SPY, ticket(80, "BUY", order_type="MKT", qty=10), T0)
    events = broker.place(1, SPY, ticket(81, "SELL", order_type="TRAIL", aux=0.30, qty=10), T0)
    assert not any(isinstance(e, FillEvent) for e in events)
    trail = broker.order_for(1, 81)
    assert trail is not None and trail.status == "Submitted"
    t = T0
    fill: list[FillEvent] = []
    while not fill and t < T0 + dt.timedelta(hours=5):
        t += dt.timedelta(seconds=30)
        fill = [e for e in broker.tick(t) if isinstance(e, FillEvent)]
    assert fill, "a 30-cent pullback never came"
    assert trail.high_water is not None
    assert fill[0].fill.price <= trail.high_water - 0.30 + 1e-9
    assert broker.positions[SPY.con_id].quantity == 0
