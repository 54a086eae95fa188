"""Indicators against TA-Lib on real bars, VWAP against a plain per-session computation."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict

import numpy as np
import pytest
import talib

from config.market_calendar import ET, MarketCalendar
from doctrine.indicators import (
    BadBar,
    IndicatorParams,
    IndicatorSet,
    IndicatorValues,
    OutOfOrderBar,
)
from doctrine.replay import RawBar
from doctrine.sessions import SessionClock
from messages.market import Bar, BarGap
from tests.harness.data import SPY_15M, SPY_63, SPY_2019, PlanFactory, bars_of

TOL = 1e-9


def run(bars: list[RawBar], params: IndicatorParams | None = None,
        calendar: MarketCalendar | None = None) -> list[IndicatorValues]:
    ind = IndicatorSet("SPY", params, SessionClock(calendar) if calendar else None)
    return [ind.update_values(b[0], b[2], b[3], b[4], b[5]) for b in bars]


def column(values: list[IndicatorValues], name: str) -> np.ndarray:
    return np.array([np.nan if getattr(v, name) is None else getattr(v, name) for v in values])


def assert_matches(ours: np.ndarray, ref: np.ndarray, name: str) -> None:
    warm_ours = np.isnan(ours)
    warm_ref = np.isnan(ref)
    assert (warm_ours == warm_ref).all(), f"{name}: warm-up differs from TA-Lib"
    err = np.max(np.abs(ours[~warm_ref] - ref[~warm_ref]))
    assert err <= TOL, f"{name}: max |ours - TA-Lib| = {err:.3g}"


@pytest.mark.parametrize("name", [SPY_63, SPY_15M])
def test_indicators_match_talib_on_real_bars(name: str, calendar: MarketCalendar) -> None:
    bars = bars_of(name)
    values = run(bars, calendar=calendar)
    close = np.array([b[4] for b in bars])
    assert_matches(column(values, "ema_fast"), talib.EMA(close, 8), "EMA(8)")
    assert_matches(column(values, "ema_slow"), talib.EMA(close, 21), "EMA(21)")
    assert_matches(column(values, "rsi"), talib.RSI(close, 14), "RSI(14)")
    upper, mid, lower = talib.BBANDS(close, 20, 2.0, 2.0)
    assert_matches(column(values, "bb_upper"), upper, "BB upper")
    assert_matches(column(values, "bb_mid"), mid, "BB mid")
    assert_matches(column(values, "bb_lower"), lower, "BB lower")


def test_plan_periods_are_used_and_still_match_talib(make_plan: PlanFactory,
                                                    calendar: MarketCalendar) -> None:
    plan = make_plan(strategy_parameters={"ema_fast": 5, "ema_slow": 34, "rsi_period": 9,
                                          "bollinger_period": 30, "bollinger_std": 2.5})
    params = IndicatorParams.from_plan(plan)
    assert params == IndicatorParams(ema_fast=5, ema_slow=34, rsi=9, bb_period=30, bb_std=2.5)
    bars = bars_of(SPY_63)[:3000]
    values = run(bars, params, calendar)
    close = np.array([b[4] for b in bars])
    assert_matches(column(values, "ema_fast"), talib.EMA(close, 5), "EMA(5)")
    assert_matches(column(values, "ema_slow"), talib.EMA(close, 34), "EMA(34)")
    assert_matches(column(values, "rsi"), talib.RSI(close, 9), "RSI(9)")
    upper, _, lower = talib.BBANDS(close, 30, 2.5, 2.5)
    assert_matches(column(values, "bb_upper"), upper, "BB upper")
    assert_matches(column(values, "bb_lower"), lower, "BB lower")


def test_values_are_none_exactly_until_warmed_up(calendar: MarketCalendar) -> None:
    values = run(bars_of(SPY_63)[:30], calendar=calendar)
    first = {name: next(i for i, v in enumerate(values) if getattr(v, name) is not None)
             for name in ("ema_fast", "ema_slow", "rsi", "bb_mid", "prev_ema_slow")}
    # EMA(n) needs n closes, RSI(14) needs 15, Bollinger(20) needs 20 (0-based index n-1)
    assert first == {"ema_fast": 7, "ema_slow": 20, "rsi": 14, "bb_mid": 19,
                     "prev_ema_slow": 21}
    assert IndicatorParams().warmup_bars == 21
    assert IndicatorParams().history_bars >= 21


def _independent_vwap(bars: list[RawBar]) -> list[float]:
    """VWAP the plain way: group by the ET date, cumulative fsum within the group."""
    out = []
    pv: list[float] = []
    vol: list[float] = []
    day = None
    for ts, _o, h, lo, c, v in bars:
        et = dt.datetime.fromtimestamp(ts, ET)
        assert dt.time(9, 30) <= et.time() < dt.time(16, 0)
        if et.date() != day:
            day, pv, vol = et.date(), [], []
        pv.append((h + lo + c) / 3 * v)
        vol.append(v)
        out.append(math.fsum(pv) / math.fsum(vol))
    return out


def test_session_vwap_matches_independent_computation_and_resets_every_session(
        calendar: MarketCalendar) -> None:
    bars = bars_of(SPY_63)
    values = run(bars, calendar=calendar)
    expected = _independent_vwap(bars)
    err = max(abs(v.vwap - e) for v, e in zip(values, expected, strict=True)
              if v.vwap is not None)
    assert all(v.vwap is not None for v in values)
    assert err <= TOL
    by_session: dict[dt.date, list[IndicatorValues]] = defaultdict(list)
    for v in values:
        assert v.session is not None
        by_session[v.session.date].append(v)
    assert len(by_session) == 63
    for day, session_values in by_session.items():
        assert len(session_values) == 390, day
        first = session_values[0]
        bar = next(b for b in bars if b[0] == first.ts)
        assert first.vwap == pytest.approx((bar[2] + bar[3] + bar[4]) / 3, abs=1e-12), day


def test_dst_change_moves_the_open_in_utc_and_vwap_follows(calendar: MarketCalendar) -> None:
    bars = bars_of(SPY_63)
    values = run(bars, calendar=calendar)
    opens: dict[dt.date, float] = {}
    for v in values:
        assert v.session is not None
        opens.setdefault(v.session.date, v.ts)
    before = dt.datetime.fromtimestamp(opens[dt.date(2024, 3, 8)], dt.UTC).time()
    after = dt.datetime.fromtimestamp(opens[dt.date(2024, 3, 11)], dt.UTC).time()
    assert (before, after) == (dt.time(14, 30), dt.time(13, 30))


def test_bars_outside_regular_hours_do_not_enter_vwap(calendar: MarketCalendar) -> None:
    day = dt.date(2024, 11, 29)  # early close at 13:00 ET
    def at(h: int, m: int) -> float:
        return dt.datetime.combine(day, dt.time(h, m), tzinfo=ET).timestamp()
    ind = IndicatorSet("SPY", sessions=SessionClock(calendar))
    pre = ind.update_values(at(9, 0), 101.0, 99.0, 100.0, 1e6)
    first = ind.update_values(at(9, 30), 11.0, 9.0, 10.0, 100.0)
    second = ind.update_values(at(12, 59), 21.0, 19.0, 20.0, 300.0)
    after = ind.update_values(at(13, 0), 1001.0, 999.0, 1000.0, 1e6)
    assert pre.vwap is None and pre.session is None
    assert first.vwap == pytest.approx(10.0)
    assert second.vwap == pytest.approx((10 * 100 + 20 * 300) / 400)
    assert after.vwap is None and after.session is None
    nxt = ind.update_values(at(9, 30) + 3 * 86400, 51.0, 49.0, 50.0, 10.0)  # Monday 12-02
    assert nxt.session is not None and nxt.session.date == dt.date(2024, 12, 2)
    assert nxt.vwap == pytest.approx(50.0)


def test_gap_flags_next_bar_without_resetting_state(calendar: MarketCalendar) -> None:
    bars = bars_of(SPY_2019)[:60]
    plain = run(bars, calendar=calendar)
    ind = IndicatorSet("SPY", sessions=SessionClock(calendar))
    flagged = []
    for i, b in enumerate(bars):
        if i == 40:
            ind.mark_gap(BarGap(symbol="SPY", start=dt.datetime.fromtimestamp(b[0], dt.UTC),
                                end=dt.datetime.fromtimestamp(b[0], dt.UTC), reason="test"))
        flagged.append(ind.update_values(b[0], b[2], b[3], b[4], b[5]))
    assert [i for i, v in enumerate(flagged) if v.after_gap] == [40]
    for x, y in zip(plain, flagged, strict=True):
        assert (x.ema_fast, x.ema_slow, x.rsi, x.bb_mid, x.vwap) == \
            (y.ema_fast, y.ema_slow, y.rsi, y.bb_mid, y.vwap)


def test_missing_minutes_inside_a_session_flag_a_gap_but_a_new_session_does_not(
        calendar: MarketCalendar) -> None:
    bars = bars_of(SPY_2019)
    holed = bars[:100] + bars[103:395]   # three minutes missing on day 1, then day 2 starts
    values = run(holed, calendar=calendar)
    assert [i for i, v in enumerate(values) if v.after_gap] == [100]
    assert values[390 - 3].session is not None
    assert values[390 - 3].session.date == dt.date(2019, 2, 12)


def test_out_of_order_duplicate_and_bad_bars_are_refused(calendar: MarketCalendar) -> None:
    ind = IndicatorSet("SPY", sessions=SessionClock(calendar))
    b = bars_of(SPY_2019)
    ind.update_values(b[1][0], b[1][2], b[1][3], b[1][4], b[1][5])
    with pytest.raises(OutOfOrderBar):
        ind.update_values(b[1][0], b[1][2], b[1][3], b[1][4], b[1][5])
    with pytest.raises(OutOfOrderBar):
        ind.update_values(b[0][0], b[0][2], b[0][3], b[0][4], b[0][5])
    for bad in ((math.nan, 1.0, 1.0, 1.0), (1.0, 1.0, 0.0, 1.0), (1.0, 1.0, 1.0, -5.0),
                (1.0, 1.0, math.inf, 1.0)):
        with pytest.raises(BadBar):
            ind.update_values(b[2][0], *bad)
    assert ind.bars_seen == 1


def test_update_with_bar_message_equals_hot_path_and_marks_history(
        calendar: MarketCalendar) -> None:
    bars = bars_of(SPY_2019)[:30]
    hot = run(bars, calendar=calendar)
    ind = IndicatorSet("SPY", sessions=SessionClock(calendar))
    snaps = [ind.update(Bar(symbol="SPY", ts=dt.datetime.fromtimestamp(b[0], dt.UTC),
                            open=b[1], high=b[2], low=b[3], close=b[4], volume=b[5],
                            source="history" if i < 20 else "backfill" if i < 25 else "live"))
             for i, b in enumerate(bars)]
    for v, s in zip(hot, snaps, strict=True):
        assert (s.close, s.rsi, s.ema_fast, s.ema_slow, s.vwap, s.bb_upper) == \
            (v.close, v.rsi, v.ema_fast, v.ema_slow, v.vwap, v.bb_upper)
    assert [s.live for s in snaps].count(True) == 5
    assert [s.source for s in snaps[19:26]] == ["history"] + ["backfill"] * 5 + ["live"]
    assert snaps[-1].session_date == dt.date(2019, 2, 11)
    assert snaps[-1].end_epoch == bars[-1][0] + 60
    with pytest.raises(ValueError, match="QQQ"):
        ind.update(Bar(symbol="QQQ", ts=dt.datetime(2019, 2, 12, 15, tzinfo=dt.UTC), open=1,
                       high=1, low=1, close=1))


def test_flat_prices_give_neutral_rsi_not_oversold(calendar: MarketCalendar) -> None:
    start = dt.datetime(2024, 2, 20, 14, 30, tzinfo=dt.UTC).timestamp()
    ind = IndicatorSet("SPY", sessions=SessionClock(calendar))
    last = None
    for i in range(30):
        last = ind.update_values(start + 60 * i, 100.0, 100.0, 100.0, 10.0)
    assert last is not None and last.rsi == 50.0
    assert last.bb_upper == last.bb_lower == 100.0


@pytest.mark.parametrize("kwargs", [
    {"ema_fast": 21, "ema_slow": 8}, {"rsi": 1}, {"bb_period": 0}, {"bb_std": 0.0},
    {"bb_std": math.nan}, {"ema_fast": 0},
])
def test_invalid_indicator_params_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        IndicatorParams(**kwargs)  # type: ignore[arg-type]
