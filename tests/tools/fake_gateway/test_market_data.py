"""Market data as ib_async sees it: contracts, history that matches the CSV, keepUpToDate and
real-time bars, VIX and option ticks, the option chain."""

from __future__ import annotations

import csv
import datetime as dt
import functools
from pathlib import Path
from typing import Any

import pytest
import trio
from ib_async import Contract, Index, Option, Stock

from config.market_calendar import ET, UTC
from tests.harness import wait_until
from tests.harness.ib_thread import IBClient
from tests.harness.simulator import gw_config
from tools.fake_gateway import FakeGateway, open_fake_gateway

SPY = Stock("SPY", "SMART", "USD")
VIX = Index("VIX", "CBOE", "USD")


def csv_bars(path: Path, day: str) -> dict[dt.datetime, tuple[float, ...]]:
    with path.open() as fh:
        return {dt.datetime.fromisoformat(r["timestamp"]): (
            float(r["open"]), float(r["high"]), float(r["low"]), float(r["close"]),
            float(r["volume"])) for r in csv.DictReader(fh) if r["timestamp"].startswith(day)}


def history(ib: Any, contract: Any, duration: str, format_date: int) -> Any:
    return ib.reqHistoricalDataAsync(contract, "", duration, "1 min", "TRADES", True,
                                     formatDate=format_date)


def values(bar: Any) -> tuple[float, ...]:
    return (bar.open, bar.high, bar.low, bar.close, bar.volume)


async def test_contracts_qualify_for_stocks_the_index_and_options(
        gateway: FakeGateway, ib_client: IBClient) -> None:
    await ib_client.connect(gateway.port)
    qqq, iwm, spy, vix = Stock("QQQ", "SMART", "USD"), Stock("IWM", "SMART", "USD"), \
        Stock("SPY", "SMART", "USD"), Index("VIX", "CBOE", "USD")
    await ib_client.call(lambda ib: ib.qualifyContractsAsync(spy, qqq, iwm, vix))
    assert (spy.conId, qqq.conId, iwm.conId, vix.conId) == (756733, 320227571, 9579970,
                                                            13455763)
    opt = Option("SPY", "20240223", 495, "C", "SMART")
    [qualified] = await ib_client.call(lambda ib: ib.qualifyContractsAsync(opt))
    assert qualified is not None and opt.conId > 0
    assert opt.localSymbol == "SPY   240223C00495000" and opt.multiplier == "100"
    by_id = Contract(conId=opt.conId)
    await ib_client.call(lambda ib: ib.qualifyContractsAsync(by_id))
    assert by_id.localSymbol == opt.localSymbol and by_id.secType == "OPT"
    details = await ib_client.call(lambda ib: ib.reqContractDetailsAsync(opt))
    sessions = details[0].liquidSessions()
    assert details[0].timeZoneId == "US/Eastern" and details[0].underConId == 756733
    assert any(s.start == dt.datetime(2024, 2, 21, 9, 30, tzinfo=s.start.tzinfo)
               for s in sessions)
    assert await ib_client.call(lambda ib: ib.reqContractDetailsAsync(
        Stock("NOPE", "SMART", "USD"))) == []
    assert 200 in ib_client.error_codes()


async def test_an_expired_option_is_unknown(gateway: FakeGateway, ib_client: IBClient) -> None:
    await ib_client.connect(gateway.port)
    details = await ib_client.call(lambda ib: ib.reqContractDetailsAsync(
        Option("SPY", "20240216", 495, "C", "SMART")))
    assert details == []
    assert 200 in ib_client.error_codes()


async def test_one_day_of_minute_bars_is_the_csv(gateway: FakeGateway, ib_client: IBClient,
                                                 spy_csv: Path) -> None:
    await ib_client.connect(gateway.port)
    await ib_client.call(lambda ib: ib.qualifyContractsAsync(SPY))
    expected = csv_bars(spy_csv, "2024-02-20") | csv_bars(spy_csv, "2024-02-21")
    for format_date in (1, 2):
        bars = await ib_client.call(functools.partial(
            history, contract=SPY, duration="2 D", format_date=format_date))
        assert len(bars) >= 390 + 30
        first = bars[0].date
        assert first.astimezone(UTC) == dt.datetime(2024, 2, 20, 14, 30, tzinfo=UTC)
        for bar in bars[:-1]:                       # the last one is still forming
            assert values(bar) == expected[bar.date], bar
        assert bars[-1].open == expected[bars[-1].date][0]


async def test_daily_and_midpoint_bars(gateway: FakeGateway, ib_client: IBClient,
                                       spy_csv: Path) -> None:
    await ib_client.connect(gateway.port)
    await ib_client.call(lambda ib: ib.qualifyContractsAsync(SPY))
    daily = await ib_client.call(lambda ib: ib.reqHistoricalDataAsync(
        SPY, "20240221 00:00:00 UTC", "5 D", "1 day", "TRADES", True))
    day20 = csv_bars(spy_csv, "2024-02-20")
    assert daily[-1].date == dt.date(2024, 2, 20)
    assert daily[-1].open == day20[min(day20)][0] and daily[-1].close == day20[max(day20)][3]
    mid = await ib_client.call(lambda ib: ib.reqHistoricalDataAsync(
        SPY, "", "1800 S", "5 mins", "MIDPOINT", True))
    assert mid and all(b.volume == -1 for b in mid)
    head = await ib_client.call(lambda ib: ib.reqHeadTimeStampAsync(SPY, "TRADES", True, 1))
    assert head.year == 2015


async def test_walk_history_agrees_with_itself_later(gateway: FakeGateway,
                                                     ib_client: IBClient) -> None:
    await ib_client.connect(gateway.port)
    qqq = Stock("QQQ", "SMART", "USD")
    await ib_client.call(lambda ib: ib.qualifyContractsAsync(qqq))
    end = "20240221 15:00:00 UTC"
    a = await ib_client.call(lambda ib: ib.reqHistoricalDataAsync(qqq, end, "1 D", "1 min",
                                                                  "TRADES", True))
    await ib_client.disconnect()
    await ib_client.connect(gateway.port)
    b = await ib_client.call(lambda ib: ib.reqHistoricalDataAsync(qqq, end, "1 D", "1 min",
                                                                  "TRADES", True))
    assert [values(x) for x in a] == [values(x) for x in b] and len(a) == 30


@pytest.mark.parametrize("format_date", [1, 2])
async def test_keep_up_to_date_streams_bars_that_match_the_csv(
        spy_csv: Path, ib_client: IBClient, format_date: int) -> None:
    async with open_fake_gateway(gw_config(bars=spy_csv, speed=600)) as gw:
        await ib_client.connect(gw.port)
        await ib_client.call(lambda ib: ib.qualifyContractsAsync(SPY))
        bars = await ib_client.call(lambda ib: ib.reqHistoricalDataAsync(
            SPY, "", "1 D", "1 min", "TRADES", True, formatDate=format_date,
            keepUpToDate=True))
        initial = len(bars)
        updates: list[bool] = []
        await ib_client.call(lambda ib: bars.updateEvent.connect(
            lambda b, new: updates.append(new)))
        await wait_until(lambda: len(bars) >= initial + 4, timeout=15)
        snapshot = await ib_client.call(lambda ib: [(b.date, values(b)) for b in bars])
        expected = csv_bars(spy_csv, "2024-02-21")
        for when, vals in snapshot[:-1]:
            assert when.tzinfo is not None
            assert vals == expected[when], when
        assert sum(updates) >= 4 and len(updates) > sum(updates)   # new bars and updates
        dates = [d for d, _ in snapshot]
        assert dates == sorted(dates) and len(set(dates)) == len(dates)
        await ib_client.call(lambda ib: ib.cancelHistoricalData(bars))
        await wait_until(lambda: gw.status()["subscriptions"] == 0, timeout=10.0)


async def test_real_time_bars_aggregate_to_the_minute(spy_csv: Path,
                                                      ib_client: IBClient) -> None:
    async with open_fake_gateway(gw_config(bars=spy_csv, speed=60)) as gw:
        await ib_client.connect(gw.port)
        await ib_client.call(lambda ib: ib.qualifyContractsAsync(SPY))
        rt = await ib_client.call(lambda ib: ib.reqRealTimeBars(SPY, 5, "TRADES", False))

        def full_minute() -> list[Any]:
            by_minute: dict[dt.datetime, list[Any]] = {}
            for bar in list(rt):
                by_minute.setdefault(bar.time.replace(second=0), []).append(bar)
            done = [v for v in by_minute.values() if len(v) == 12]
            return done[0] if done else []

        await wait_until(lambda: bool(full_minute()), timeout=15)
        legs = full_minute()
        minute = legs[0].time.astimezone(ET)
        expected = csv_bars(spy_csv, "2024-02-21")[minute]
        assert (legs[0].open_, max(b.high for b in legs), min(b.low for b in legs),
                legs[-1].close, sum(b.volume for b in legs)) == expected


async def test_vix_and_stock_ticks_stream_during_the_session(
        gateway: FakeGateway, ib_client: IBClient) -> None:
    await ib_client.connect(gateway.port)
    await ib_client.call(lambda ib: ib.qualifyContractsAsync(SPY, VIX))
    vix = await ib_client.call(lambda ib: ib.reqMktData(VIX))
    spy = await ib_client.call(lambda ib: ib.reqMktData(SPY, "106,233"))
    await wait_until(lambda: vix.last == vix.last and vix.last > 0 and spy.bid > 0, timeout=10.0)
    first_last = spy.last
    await wait_until(lambda: spy.last != first_last, timeout=10)
    assert 10 < vix.last < 40 and vix.close > 0
    assert spy.bid < spy.ask and spy.ask - spy.bid == pytest.approx(0.01)
    assert spy.volume > 0 and spy.impliedVolatility > 0
    await ib_client.call(lambda ib: ib.cancelMktData(SPY))
    await wait_until(lambda: gateway.status()["subscriptions"] == 1, timeout=10.0)


async def test_option_ticks_carry_quotes_and_greeks(gateway: FakeGateway,
                                                    ib_client: IBClient) -> None:
    await ib_client.connect(gateway.port)
    call, put = Option("SPY", "20240223", 495, "C", "SMART"), \
        Option("SPY", "20240223", 495, "P", "SMART")
    await ib_client.call(lambda ib: ib.qualifyContractsAsync(call, put))
    tc = await ib_client.call(lambda ib: ib.reqMktData(call))
    tp = await ib_client.call(lambda ib: ib.reqMktData(put))
    await wait_until(lambda: tc.modelGreeks is not None and tp.modelGreeks is not None
                     and tc.bidGreeks is not None, timeout=10.0)
    for t in (tc, tp):
        assert 0.01 <= t.ask - t.bid <= 0.05
        assert 0.3 < t.bid < 10 and t.volume > 0 and t.close > 0
        assert t.modelGreeks.undPrice == pytest.approx(495.3, abs=2)
        assert 0.05 < t.modelGreeks.impliedVol < 0.4
    assert 0.3 < tc.modelGreeks.delta < 0.7 and -0.7 < tp.modelGreeks.delta < -0.3
    assert tc.modelGreeks.theta < 0 and tc.modelGreeks.gamma > 0


async def test_generic_tick_101_gives_an_options_open_interest_thinning_away_from_the_money(
        gateway: FakeGateway, ib_client: IBClient) -> None:
    await ib_client.connect(gateway.port)
    atm, far = Option("SPY", "20240223", 495, "C", "SMART"), \
        Option("SPY", "20240223", 540, "C", "SMART")
    put = Option("SPY", "20240223", 495, "P", "SMART")
    await ib_client.call(lambda ib: ib.qualifyContractsAsync(atm, far, put))
    t_atm, t_far, t_put = [await ib_client.call(lambda ib, c=c: ib.reqMktData(c, "101"))
                           for c in (atm, far, put)]
    await wait_until(lambda: t_atm.callOpenInterest > 0 and t_far.callOpenInterest > 0
                     and t_put.putOpenInterest > 0, timeout=10.0)
    assert t_atm.callOpenInterest > 10 * t_far.callOpenInterest
    assert t_atm.callOpenInterest >= 1_000 and t_far.callOpenInterest >= 20


async def test_the_option_chain_lists_weeklies_and_strikes_around_the_price(
        gateway: FakeGateway, ib_client: IBClient) -> None:
    await ib_client.connect(gateway.port)
    chains = await ib_client.call(lambda ib: ib.reqSecDefOptParamsAsync("SPY", "", "STK",
                                                                        756733))
    smart = next(c for c in chains if c.exchange == "SMART")
    assert smart.tradingClass == "SPY" and smart.multiplier == "100"
    expiries = [dt.date.fromisoformat(f"{e[:4]}-{e[4:6]}-{e[6:]}") for e in smart.expirations]
    assert expiries[0] == dt.date(2024, 2, 21)
    assert {d.weekday() for d in expiries} <= {0, 2, 4} | {3}
    assert dt.date(2024, 3, 28) in expiries and dt.date(2024, 3, 29) not in expiries
    assert max(expiries) <= dt.date(2024, 2, 21) + dt.timedelta(days=42)
    assert min(smart.strikes) <= 495 * 0.86 and max(smart.strikes) >= 495 * 1.14
    assert {c.exchange for c in chains} >= {"SMART", "CBOE"}


async def test_snapshots_end_with_tick_snapshot_end(gateway: FakeGateway,
                                                    ib_client: IBClient) -> None:
    await ib_client.connect(gateway.port)
    opt = Option("SPY", "20240223", 500, "C", "SMART")
    await ib_client.call(lambda ib: ib.qualifyContractsAsync(SPY, opt))
    spy_t, opt_t = await ib_client.call(lambda ib: ib.reqTickersAsync(SPY, opt), timeout=5)
    assert spy_t.last > 0 and opt_t.ask > 0 and opt_t.modelGreeks is not None
    assert gateway.status()["subscriptions"] == 0


async def test_nothing_streams_outside_the_session(spy_csv: Path, ib_client: IBClient) -> None:
    evening = dt.datetime(2024, 2, 21, 18, 0, tzinfo=ET)
    async with open_fake_gateway(gw_config(bars=spy_csv, speed=60, start=evening)) as gw:
        await ib_client.connect(gw.port)
        await ib_client.call(lambda ib: ib.qualifyContractsAsync(SPY))
        ticker = await ib_client.call(lambda ib: ib.reqMktData(SPY))
        bars = await ib_client.call(lambda ib: ib.reqHistoricalDataAsync(
            SPY, "", "1 D", "1 min", "TRADES", True, keepUpToDate=True))
        await wait_until(lambda: ticker.last > 0, timeout=10.0)
        closing = csv_bars(spy_csv, "2024-02-21")
        assert ticker.last == pytest.approx(closing[max(closing)][3], abs=0.006)
        assert bars[-1].date == max(closing) and values(bars[-1]) == closing[max(closing)]
        counts: list[int] = []
        await ib_client.call(lambda ib: ib.pendingTickersEvent.connect(
            lambda tickers: counts.append(len(tickers))))
        n_bars = len(bars)
        await trio.sleep(1.5)          # 90 simulated seconds of evening
        assert counts == [] and len(bars) == n_bars
