"""Orders through real ib_async: fills with executions and commissions, brackets, cancels,
read-only rejection, and the broker's truth surviving reconnects and a Gateway restart."""

from __future__ import annotations

import datetime as dt
import functools
import json
from pathlib import Path
from typing import Any

import pytest
import trio
from ib_async import LimitOrder, MarketOrder, Option, Stock, Trade

from config.market_calendar import get_calendar
from tests.harness import wait_until
from tests.harness.ib_thread import IBClient
from tests.harness.simulator import gw_config
from tools.fake_gateway import FakeGateway, open_fake_gateway

SPY = Stock("SPY", "SMART", "USD")


def place(ib: Any, contract: Any, order: Any) -> Any:
    return ib.placeOrder(contract, order)


def call_option() -> Option:
    return Option("SPY", "20240223", 495, "C", "SMART")


async def connect_and_quote(client: IBClient, port: int, contract: Any,
                            client_id: int = 1) -> Any:
    await client.connect(port, client_id)
    await client.call(lambda ib: ib.qualifyContractsAsync(contract))
    ticker = await client.call(lambda ib: ib.reqMktData(contract))
    await wait_until(lambda: ticker.ask == ticker.ask and ticker.ask > 0, timeout=10.0)
    return ticker


async def test_a_marketable_option_limit_fills_with_execution_and_commission(
        gateway: FakeGateway, ib_client: IBClient) -> None:
    opt = call_option()
    ticker = await connect_and_quote(ib_client, gateway.port, opt)
    order = LimitOrder("BUY", 2, round(ticker.ask + 0.05, 2), orderRef="test-fill")
    trade: Trade = await ib_client.call(lambda ib: ib.placeOrder(opt, order))
    await wait_until(lambda: trade.orderStatus.status == "Filled", timeout=10.0)
    await wait_until(lambda: bool(trade.fills) and trade.fills[0].commissionReport.commission > 0,
                     timeout=10.0)
    fill = trade.fills[0]
    assert fill.execution.shares == 2 and fill.execution.side == "BOT"
    assert fill.execution.price <= float(order.lmtPrice or 0)
    assert fill.execution.orderRef == "test-fill"
    assert fill.commissionReport.commission == pytest.approx(1.30)
    assert [e.status for e in trade.log][:3] == ["PendingSubmit", "PreSubmitted", "Submitted"]
    positions = await ib_client.call(lambda ib: ib.reqPositionsAsync())
    [pos] = [p for p in positions if p.contract.conId == opt.conId]
    assert pos.position == 2
    assert pos.avgCost == pytest.approx(fill.execution.price * 100 + 0.65)


async def test_stock_market_orders_fill_at_the_quote_and_report_realized_pnl(
        gateway: FakeGateway, ib_client: IBClient) -> None:
    ticker = await connect_and_quote(ib_client, gateway.port, SPY)
    buy = await ib_client.call(lambda ib: ib.placeOrder(SPY, MarketOrder("BUY", 100)))
    await wait_until(lambda: buy.orderStatus.status == "Filled", timeout=10.0)
    assert abs(buy.orderStatus.avgFillPrice - ticker.ask) < 0.5
    sell = await ib_client.call(lambda ib: ib.placeOrder(SPY, MarketOrder("SELL", 100)))
    await wait_until(lambda: bool(sell.fills) and sell.fills[0].commissionReport.currency ==
                     "USD", timeout=10.0)
    report = sell.fills[0].commissionReport
    assert report.commission == pytest.approx(1.00)
    expected = (sell.fills[0].execution.price - buy.fills[0].execution.price) * 100 - 2.0
    assert report.realizedPNL == pytest.approx(expected, abs=0.01)
    assert await ib_client.call(lambda ib: ib.reqPositionsAsync()) == []


async def test_bracket_children_behave_like_ibs(gateway: FakeGateway,
                                                ib_client: IBClient) -> None:
    opt = call_option()
    ticker = await connect_and_quote(ib_client, gateway.port, opt)
    ask = ticker.ask
    bracket = await ib_client.call(lambda ib: ib.bracketOrder(
        "BUY", 1, round(ask + 0.02, 2), round(ask * 3, 2), round(ask * 0.2, 2)))
    trades = []
    for o in bracket:
        trades.append(await ib_client.call(functools.partial(place, contract=opt, order=o)))
    parent, take_profit, stop_loss = trades
    await wait_until(lambda: parent.orderStatus.status == "Filled", timeout=10.0)
    await wait_until(lambda: take_profit.orderStatus.status == "Submitted", timeout=10.0)
    assert stop_loss.orderStatus.status == "PreSubmitted"     # simulated stop, waiting
    assert take_profit.orderStatus.parentId == parent.order.orderId
    # move the take-profit to a marketable price: it fills, the stop is cancelled (OCA)
    bid = ticker.bid
    tp_order = take_profit.order
    tp_order.lmtPrice = round(bid - 0.05, 2)
    await ib_client.call(lambda ib: ib.placeOrder(opt, tp_order))
    await wait_until(lambda: take_profit.orderStatus.status == "Filled", timeout=10.0)
    await wait_until(lambda: stop_loss.orderStatus.status == "Cancelled", timeout=10.0)
    assert gateway.status()["positions"] == [] and gateway.status()["open_orders"] == 0


async def test_cancel_answers_202_and_cancels_the_children(gateway: FakeGateway,
                                                           ib_client: IBClient) -> None:
    ticker = await connect_and_quote(ib_client, gateway.port, SPY)
    parent = LimitOrder("BUY", 10, round(ticker.bid - 5, 2), transmit=False)
    parent.orderId = await ib_client.call(lambda ib: ib.client.getReqId())
    child = LimitOrder("SELL", 10, round(ticker.bid + 5, 2), parentId=parent.orderId)
    p = await ib_client.call(lambda ib: ib.placeOrder(SPY, parent))
    c = await ib_client.call(lambda ib: ib.placeOrder(SPY, child))
    await wait_until(lambda: p.orderStatus.status == "Submitted", timeout=10.0)
    await ib_client.call(lambda ib: ib.cancelOrder(parent))
    await wait_until(lambda: p.orderStatus.status == "Cancelled" and
                     c.orderStatus.status == "Cancelled", timeout=10.0)
    assert (parent.orderId, 202) in [(r, code) for r, code, _ in ib_client.errors]


async def test_what_if_orders_answer_with_margin_and_leave_no_order(
        gateway: FakeGateway, ib_client: IBClient) -> None:
    opt = call_option()
    ticker = await connect_and_quote(ib_client, gateway.port, opt)
    state = await ib_client.call(lambda ib: ib.whatIfOrderAsync(
        opt, LimitOrder("BUY", 1, round(ticker.ask, 2))), timeout=5)
    assert float(state.initMarginChange) == pytest.approx(round(ticker.ask, 2) * 100, rel=0.05)
    assert gateway.status()["orders"] == 0


async def test_read_only_sessions_get_321(spy_csv: Path, make_ib: Any, tmp_path: Path) -> None:
    log_path = tmp_path / "orders.jsonl"
    async with open_fake_gateway(gw_config(bars=spy_csv, orders_log=log_path)) as gw:
        ro: IBClient = make_ib()
        await ro.connect(gw.port, client_id=3, readonly=True)
        await ro.call(lambda ib: ib.qualifyContractsAsync(SPY))
        trade = await ro.call(lambda ib: ib.placeOrder(SPY, LimitOrder("BUY", 1, 400.0)))
        await wait_until(lambda: 321 in ro.error_codes(), timeout=10.0)
        assert trade.orderStatus.status != "Filled" and gw.status()["orders"] == 0
        rw: IBClient = make_ib()
        await rw.connect(gw.port, client_id=4)
        await rw.call(lambda ib: ib.qualifyContractsAsync(SPY))
        ok = await rw.call(lambda ib: ib.placeOrder(SPY, LimitOrder("BUY", 1, 400.0,
                                                                    orderRef="rw")))
        await wait_until(lambda: ok.orderStatus.status == "Submitted", timeout=10.0)
        assert 321 not in rw.error_codes()
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [(r["clientId"], r.get("rejected")) for r in records] == [(3, "read-only"), (4, None)]
    assert records[1]["orderRef"] == "rw" and records[1]["lmt"] == 400.0
    assert records[1]["contract"]["conId"] == 756733 and records[1]["transmit"] is True


async def test_the_read_only_api_setting_rejects_every_order(spy_csv: Path,
                                                             ib_client: IBClient) -> None:
    async with open_fake_gateway(gw_config(bars=spy_csv, read_only=True)) as gw:
        await ib_client.connect(gw.port)
        await ib_client.call(lambda ib: ib.qualifyContractsAsync(SPY))
        await ib_client.call(lambda ib: ib.placeOrder(SPY, LimitOrder("BUY", 1, 400.0)))
        await wait_until(lambda: 321 in ib_client.error_codes(), timeout=10.0)
        text = next(t for _, c, t in ib_client.errors if c == 321)
        assert "Read-Only" in text


async def test_orders_positions_and_executions_survive_a_reconnect(
        gateway: FakeGateway, ib_client: IBClient) -> None:
    ticker = await connect_and_quote(ib_client, gateway.port, SPY, client_id=7)
    resting = await ib_client.call(lambda ib: ib.placeOrder(
        SPY, LimitOrder("BUY", 5, round(ticker.bid - 10, 2), tif="GTC")))
    filled = await ib_client.call(lambda ib: ib.placeOrder(SPY, MarketOrder("BUY", 10)))
    await wait_until(lambda: filled.orderStatus.status == "Filled" and
                     resting.orderStatus.status == "Submitted", timeout=10.0)
    perm_ids = (resting.order.permId, filled.order.permId)
    await ib_client.disconnect()
    await ib_client.connect(gateway.port, client_id=7)
    open_trades = await ib_client.call(lambda ib: ib.openTrades())
    assert [t.order.permId for t in open_trades] == [perm_ids[0]]
    fills = await ib_client.call(lambda ib: ib.fills())
    assert [f.execution.permId for f in fills] == [perm_ids[1]]
    assert fills[0].commissionReport.commission == pytest.approx(1.0)
    positions = await ib_client.call(lambda ib: ib.positions())
    assert [(p.contract.conId, p.position) for p in positions] == [(756733, 10.0)]
    next_id = await ib_client.call(lambda ib: ib.client.getReqId())
    assert next_id > filled.order.orderId


async def test_a_fill_during_a_restart_is_seen_by_the_next_connection(
        spy_csv: Path, ib_client: IBClient) -> None:
    async with open_fake_gateway(gw_config(bars=spy_csv, speed=600)) as gw:
        await connect_and_quote(ib_client, gw.port, SPY, client_id=2)
        now = gw.clock.now_utc()
        session = get_calendar().session_at(now)
        assert session is not None
        future = gw.market.series("SPY").aggregate(session, now + dt.timedelta(minutes=1),
                                                   now + dt.timedelta(minutes=15))
        assert future is not None
        limit = round(future.low + 0.01, 2)
        bid = gw.market.stock_quote("SPY", gw.clock.now_utc()).bid
        assert limit < bid, "the test needs a dip ahead"
        trade = await ib_client.call(lambda ib: ib.placeOrder(SPY, LimitOrder("BUY", 10,
                                                                              limit)))
        await wait_until(lambda: trade.orderStatus.status == "Submitted", timeout=10.0)
        await gw.restart(2.5)                 # 25 simulated minutes without a Gateway
        await wait_until(lambda: ib_client.disconnects >= 1, timeout=10.0)
        with pytest.raises(ConnectionRefusedError):
            await ib_client.connect(gw.port, client_id=2, timeout=1)
        await wait_until(lambda: gw.status()["executions"] == 1, timeout=10)
        await gw.wait_accepting()
        await ib_client.connect(gw.port, client_id=2)
        fills = await ib_client.call(lambda ib: ib.fills())
        assert len(fills) == 1 and fills[0].execution.price <= limit
        positions = await ib_client.call(lambda ib: ib.positions())
        assert [(p.contract.conId, p.position) for p in positions] == [(756733, 10.0)]
        assert await ib_client.call(lambda ib: ib.openTrades()) == []
        done = await ib_client.call(lambda ib: ib.reqCompletedOrdersAsync(False))
        assert [(t.order.permId, t.orderStatus.status) for t in done] == \
            [(trade.order.permId, "Filled")]


async def test_unknown_contracts_and_bad_orders_are_rejected_not_crashed(
        gateway: FakeGateway, ib_client: IBClient) -> None:
    await ib_client.connect(gateway.port)
    await ib_client.call(lambda ib: ib.qualifyContractsAsync(SPY))
    bogus = Stock("SPY", "SMART", "USD")
    bogus.conId = 42
    await ib_client.call(lambda ib: ib.placeOrder(bogus, LimitOrder("BUY", 1, 400.0)))
    await wait_until(lambda: 200 in ib_client.error_codes(), timeout=10.0)
    odd = await ib_client.call(lambda ib: ib.placeOrder(SPY, LimitOrder("BUY", 1, 400.123)))
    await wait_until(lambda: 110 in ib_client.error_codes(), timeout=10.0)
    zero = await ib_client.call(lambda ib: ib.placeOrder(SPY, LimitOrder("BUY", 0, 400.0)))
    await wait_until(lambda: 434 in ib_client.error_codes(), timeout=10.0)
    assert odd.orderStatus.status != "Filled" and zero.orderStatus.status != "Filled"
    with trio.fail_after(5):
        assert await ib_client.call(lambda ib: ib.reqCurrentTimeAsync()) is not None
