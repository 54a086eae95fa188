"""Prices: exact CSV replay, 5-second legs that aggregate to the minute, a deterministic walk
that continues from the CSV, and a VIX that stays in a plausible range."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from config.market_calendar import ET, get_calendar
from tools.fake_gateway.market import Market
from tools.fake_gateway.series import SUB_BARS, merge_all, path_points, split_volume


@pytest.fixture(scope="module")
def market(spy_csv: Path) -> Market:
    return Market(get_calendar(), seed=7, bars_csv=spy_csv)


def _csv_rows(path: Path, day: str) -> list[dict[str, str]]:
    with path.open() as fh:
        return [r for r in csv.DictReader(fh) if r["timestamp"].startswith(day)]


def test_minute_bars_of_a_csv_day_are_the_csv_rows(market: Market, spy_csv: Path) -> None:
    session = get_calendar().session(dt.date(2024, 3, 12))
    assert session is not None
    day = market.series("SPY").day(session)
    rows = _csv_rows(spy_csv, "2024-03-12")      # the day after the DST change
    assert day.from_csv and day.minutes == len(rows) == 390
    for m, row in enumerate(rows):
        assert dt.datetime.fromisoformat(row["timestamp"]) == \
            session.open + dt.timedelta(minutes=m)
        assert (day.o[m], day.h[m], day.low[m], day.c[m], day.v[m]) == (
            float(row["open"]), float(row["high"]), float(row["low"]), float(row["close"]),
            float(row["volume"]))


def test_five_second_legs_aggregate_exactly_to_their_minute(market: Market) -> None:
    series = market.series("SPY")
    session = get_calendar().session(dt.date(2024, 2, 21))
    assert session is not None
    day = series.day(session)
    for m in (0, 1, 57, 389):
        legs = [series.sub_bar(session, m * SUB_BARS + k) for k in range(SUB_BARS)]
        agg = merge_all(legs)
        assert agg is not None
        assert (agg.open, agg.high, agg.low, agg.close, agg.volume) == (
            day.o[m], day.h[m], day.low[m], day.c[m], day.v[m])


def test_a_forming_bar_converges_to_the_finished_minute(market: Market) -> None:
    series = market.series("SPY")
    session = get_calendar().session(dt.date(2024, 2, 21))
    assert session is not None
    start = session.open + dt.timedelta(minutes=30)
    partial = series.aggregate(session, start, start + dt.timedelta(seconds=37.5))
    full = series.aggregate(session, start, start + dt.timedelta(minutes=1))
    assert partial is not None and full is not None
    assert partial.open == full.open and partial.volume < full.volume
    assert full.low <= partial.low <= partial.high <= full.high
    assert series.price_at(start + dt.timedelta(seconds=37.5)) == pytest.approx(partial.close)
    assert series.price_at(start + dt.timedelta(seconds=59.99)) == \
        pytest.approx(full.close, abs=0.01)


def test_the_walk_is_deterministic_for_any_minute() -> None:
    cal = get_calendar()
    a = Market(cal, seed=3)
    b = Market(cal, seed=3)
    c = Market(cal, seed=4)
    t = dt.datetime(2027, 6, 15, 11, 17, 23, tzinfo=ET)
    assert a.price("QQQ", t) == b.price("QQQ", t)
    assert a.price("QQQ", t) != c.price("QQQ", t)
    assert a.price("SPY", t) == b.price("SPY", t)
    session = cal.session(t.date())
    assert session is not None
    assert a.series("IWM").day(session).c == b.series("IWM").day(session).c


def test_the_walk_continues_from_the_last_csv_price(market: Market) -> None:
    cal = get_calendar()
    last_day = dt.date(2024, 5, 17)
    last = cal.session(last_day)
    nxt = cal.next_session(last_day)
    assert last is not None
    spy = market.series("SPY")
    last_close = spy.day(last).c[-1]
    following = spy.day(nxt)
    assert not following.from_csv
    assert abs(following.o[0] / last_close - 1) < 0.02
    much_later = cal.session(dt.date(2024, 11, 20))
    assert much_later is not None
    assert 300 < spy.day(much_later).c[-1] < 800


def test_the_vix_walk_stays_between_12_and_30_most_of_the_time() -> None:
    cal = get_calendar()
    market = Market(cal, seed=1)
    closes = [market.series("VIX").day(s).c[-1]
              for s in cal.sessions(dt.date(2025, 1, 1), dt.date(2025, 6, 30))]
    assert min(closes) > 11.0
    assert sum(12 <= v <= 30 for v in closes) / len(closes) > 0.95
    assert 14 < sorted(closes)[len(closes) // 2] < 19


def test_path_points_touch_high_and_low_and_volume_splits_exactly() -> None:
    pts = path_points(10.0, 10.5, 9.8, 10.2, 12, key=99)
    assert pts[0] == 10.0 and pts[-1] == 10.2
    assert max(pts) == 10.5 and min(pts) == 9.8
    parts = split_volume(1234.0, 12, key=5)
    assert sum(parts) == 1234.0 and all(p == int(p) for p in parts)


def _data_file(spy_csv: Path, name: str) -> Path:
    return spy_csv.parent / name                  # every file is there, real or generated


def test_an_intraday_vix_csv_is_replayed_and_gaps_are_flat(spy_csv: Path) -> None:
    vix_csv = _data_file(spy_csv, "vix_1m_src-masonblier_2019-02-11_2019-02-15_rth.csv")
    market = Market(get_calendar(), seed=1, vix_csv=vix_csv)
    session = get_calendar().session(dt.date(2019, 2, 12))
    assert session is not None
    day = market.series("VIX").day(session)
    rows = {dt.datetime.fromisoformat(r["timestamp"]): r for r in _csv_rows(vix_csv,
                                                                           "2019-02-12")}
    for m in range(day.minutes):
        when = session.open + dt.timedelta(minutes=m)
        if when in rows:
            assert day.c[m] == float(rows[when]["close"])
        elif m > 0:
            assert day.o[m] == day.c[m] == day.c[m - 1]          # a missing minute is flat
    assert market.vix(dt.datetime(2019, 2, 12, 12, 0, tzinfo=ET)) == pytest.approx(
        float(rows[dt.datetime(2019, 2, 12, 12, 0, tzinfo=ET)]["open"]), abs=0.01)


def test_a_daily_vix_csv_shapes_each_session(spy_csv: Path) -> None:
    vix_csv = _data_file(spy_csv, "vix_daily_cboe_1990-01-02_2026-07-03.csv")
    market = Market(get_calendar(), seed=1, vix_csv=vix_csv)
    session = get_calendar().session(dt.date(2024, 3, 12))
    assert session is not None
    day = market.series("VIX").day(session)
    with vix_csv.open() as fh:
        row = next(r for r in csv.DictReader(fh) if r["date"] == "2024-03-12")
    assert (day.o[0], max(day.h), min(day.low), day.c[-1]) == (
        float(row["open"]), float(row["high"]), float(row["low"]), float(row["close"]))


def test_fifteen_minute_bars_are_spread_over_their_minutes_exactly(spy_csv: Path) -> None:
    bars_csv = _data_file(spy_csv, "spy_15m_src-masonblier_2019-01-04_2019-02-15_rth.csv")
    market = Market(get_calendar(), seed=1, bars_csv=bars_csv)
    session = get_calendar().session(dt.date(2019, 1, 8))
    assert session is not None
    series = market.series("SPY")
    for row in _csv_rows(bars_csv, "2019-01-08")[:5]:
        start = dt.datetime.fromisoformat(row["timestamp"])
        agg = series.aggregate(session, start, start + dt.timedelta(minutes=15))
        assert agg is not None
        assert (agg.open, agg.high, agg.low, agg.close, agg.volume) == (
            float(row["open"]), float(row["high"]), float(row["low"]), float(row["close"]),
            float(row["volume"]))
