"""Entry signals: the A and B setups on completed bars, and every gate that can refuse them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from config.gameplan import Gameplan
from config.market_calendar import ET, MarketCalendar
from doctrine.indicators import IndicatorValues
from doctrine.signals import EntryRules, evaluate_entry
from messages.brain import EntrySignal, SignalRejected
from tests.harness.data import PlanFactory

DAY = dt.date(2024, 2, 20)


def reading(calendar: MarketCalendar, *, day: dt.date = DAY, end: dt.time = dt.time(11, 0),
            symbol: str = "SPY", **values: Any) -> IndicatorValues:
    """A bar ending at `end` ET; defaults describe a bullish A setup."""
    end_s = dt.datetime.combine(day, end, tzinfo=ET).timestamp()
    session = calendar.session_at(dt.datetime.fromtimestamp(end_s - 60, dt.UTC))
    base: dict[str, Any] = dict(
        close=500.5, rsi=55.0, ema_fast=500.2, ema_slow=500.1, prev_ema_fast=500.0,
        prev_ema_slow=500.05, vwap=500.0, bb_upper=502.0, bb_mid=500.0, bb_lower=498.0,
        after_gap=False, live=True)
    base.update(values)
    return IndicatorValues(symbol, end_s - 60, 60, base["close"], base["rsi"],
                           base["ema_fast"], base["ema_slow"], base["prev_ema_fast"],
                           base["prev_ema_slow"], base["vwap"], base["bb_upper"],
                           base["bb_mid"], base["bb_lower"], session, base["after_gap"],
                           base["live"])


def entry(r: IndicatorValues, strategy: str, plan: Gameplan) -> EntrySignal | SignalRejected | None:
    close = r.session.close.timestamp() if r.session is not None else None
    return evaluate_entry(r, strategy, EntryRules(plan), session_close_s=close)  # type: ignore[arg-type]


@pytest.fixture
def plan(make_plan: PlanFactory) -> Gameplan:
    return make_plan(symbols=["SPY", "QQQ"], catalysts=[], position_size_multiplier=1.0,
                     strategy_parameters=...)


def test_momentum_bullish_cross_buys_calls(calendar: MarketCalendar, plan: Gameplan) -> None:
    sig = entry(reading(calendar), "A", plan)
    assert isinstance(sig, EntrySignal)
    assert (sig.strategy, sig.direction, sig.right, sig.size_multiplier) == \
        ("A", "bullish", "C", 1.0)
    assert sig.reasons[0].startswith("EMA fast 500.2000 crossed above EMA slow 500.1000")
    assert sig.ts == dt.datetime.combine(DAY, dt.time(11, 0), tzinfo=ET)
    assert sig.bar_ts == dt.datetime.combine(DAY, dt.time(10, 59), tzinfo=ET)


def test_momentum_bearish_cross_buys_puts(calendar: MarketCalendar, plan: Gameplan) -> None:
    r = reading(calendar, close=499.5, rsi=40.0, ema_fast=500.0, ema_slow=500.1,
                prev_ema_fast=500.2, prev_ema_slow=500.1)
    sig = entry(r, "A", plan)
    assert isinstance(sig, EntrySignal) and (sig.direction, sig.right) == ("bearish", "P")
    assert "RSI 40.00 in [35, 50]" in sig.reasons


@pytest.mark.parametrize(("changes", "why"), [
    ({"rsi": 65.01}, "RSI above the band"),
    ({"rsi": 49.99}, "RSI below the band"),
    ({"close": 500.0}, "close not above VWAP"),
    ({"prev_ema_fast": 500.06}, "already above: no cross on this bar"),
    ({"ema_fast": 500.1}, "touching is not crossing"),
    ({"rsi": None}, "RSI not warmed up"),
    ({"prev_ema_slow": None}, "no previous EMA"),
    ({"vwap": None}, "no VWAP"),
])
def test_momentum_needs_every_condition(calendar: MarketCalendar, plan: Gameplan,
                                        changes: dict[str, Any], why: str) -> None:
    assert entry(reading(calendar, **changes), "A", plan) is None, why


def test_momentum_rsi_band_is_inclusive(calendar: MarketCalendar, plan: Gameplan) -> None:
    for rsi in (50.0, 65.0):
        assert isinstance(entry(reading(calendar, rsi=rsi), "A", plan), EntrySignal)


def test_plan_parameters_move_the_rsi_band(calendar: MarketCalendar,
                                           make_plan: PlanFactory) -> None:
    plan = make_plan(symbols=["SPY"], catalysts=[],
                     strategy_parameters={"rsi_min": 40, "rsi_max": 70})
    assert isinstance(entry(reading(calendar, rsi=45.0), "A", plan), EntrySignal)
    bear = reading(calendar, close=499.5, rsi=58.0, ema_fast=500.0, ema_slow=500.1,
                   prev_ema_fast=500.2, prev_ema_slow=500.1)
    assert isinstance(entry(bear, "A", plan), EntrySignal)  # mirror band [30, 60]


def test_reversion_oversold_at_lower_band_buys_calls(calendar: MarketCalendar,
                                                     plan: Gameplan) -> None:
    r = reading(calendar, rsi=30.0, close=498.0)
    sig = entry(r, "B", plan)
    assert isinstance(sig, EntrySignal)
    assert (sig.strategy, sig.direction, sig.right, sig.size_multiplier) == \
        ("B", "bullish", "C", 0.5)


def test_reversion_overbought_at_upper_band_buys_puts(calendar: MarketCalendar,
                                                      plan: Gameplan) -> None:
    sig = entry(reading(calendar, rsi=71.0, close=502.5), "B", plan)
    assert isinstance(sig, EntrySignal) and sig.right == "P"


@pytest.mark.parametrize("changes", [{"rsi": 30.5, "close": 497.0},
                                     {"rsi": 25.0, "close": 498.01},
                                     {"rsi": 69.9, "close": 503.0}])
def test_reversion_needs_both_rsi_and_band(calendar: MarketCalendar, plan: Gameplan,
                                           changes: dict[str, Any]) -> None:
    assert entry(reading(calendar, **changes), "B", plan) is None


def test_strategy_c_never_enters(calendar: MarketCalendar, plan: Gameplan) -> None:
    assert entry(reading(calendar), "C", plan) is None


def test_history_bars_never_enter(calendar: MarketCalendar, plan: Gameplan) -> None:
    assert entry(reading(calendar, live=False), "A", plan) is None


@pytest.mark.parametrize(("kwargs", "strategy", "stage", "text"), [
    ({"after_gap": True}, "A", "gap", "first bar after a gap"),
    ({"end": dt.time(9, 59)}, "A", "window", "outside the entry window 10:00-15:30"),
    ({"end": dt.time(15, 30)}, "A", "window", "outside the entry window"),
    ({"end": dt.time(16, 30)}, "A", "session", "outside regular trading hours"),
    ({"symbol": "IWM"}, "A", "symbol", "strategy A trades ['QQQ', 'SPY'] only"),
    ({"symbol": "QQQ", "rsi": 29.0, "close": 497.0}, "B", "symbol",
     "strategy B trades ['SPY'] only"),
])
def test_gates_refuse_a_setup_with_the_reason(calendar: MarketCalendar, plan: Gameplan,
                                              kwargs: dict[str, Any], strategy: str,
                                              stage: str, text: str) -> None:
    result = entry(reading(calendar, **kwargs), strategy, plan)
    assert isinstance(result, SignalRejected)
    assert result.stage == stage and text in result.reason


def test_plan_symbols_and_earnings_blackout_are_respected(calendar: MarketCalendar,
                                                         make_plan: PlanFactory) -> None:
    only_qqq = make_plan(symbols=["QQQ"], catalysts=[], strategy_parameters=...)
    result = entry(reading(calendar), "A", only_qqq)
    assert isinstance(result, SignalRejected) and "not in the plan's symbols" in result.reason
    blackout = make_plan(symbols=["SPY", "QQQ"], earnings_blackout=["SPY"], catalysts=[],
                         strategy_parameters=...)
    result = entry(reading(calendar), "A", blackout)
    assert isinstance(result, SignalRejected) and "earnings blackout" in result.reason


def test_early_close_shortens_the_entry_window(calendar: MarketCalendar,
                                               make_plan: PlanFactory) -> None:
    plan = make_plan(symbols=["SPY"], catalysts=[], strategy_parameters=...)
    early = dt.date(2024, 11, 29)   # closes 13:00 ET
    ok = entry(reading(calendar, day=early, end=dt.time(12, 29)), "A", plan)
    late = entry(reading(calendar, day=early, end=dt.time(12, 30)), "A", plan)
    assert isinstance(ok, EntrySignal)
    assert isinstance(late, SignalRejected) and late.stage == "window"


def test_multiplier_halves_with_one_catalyst_and_zero_refuses(
        calendar: MarketCalendar, make_plan: PlanFactory) -> None:
    one = make_plan(symbols=["SPY"], catalysts=[{"type": "cpi", "impact": "high"}],
                    position_size_multiplier=0.8, strategy_parameters=...)
    sig = entry(reading(calendar), "A", one)
    assert isinstance(sig, EntrySignal) and sig.size_multiplier == pytest.approx(0.4)
    b_sig = entry(reading(calendar, rsi=20.0, close=497.0), "B", one)
    assert isinstance(b_sig, EntrySignal) and b_sig.size_multiplier == pytest.approx(0.2)
    zero = make_plan(symbols=["SPY"], catalysts=[], position_size_multiplier=0.0,
                     strategy_parameters=...)
    refused = entry(reading(calendar), "A", zero)
    assert isinstance(refused, SignalRejected) and refused.stage == "multiplier"


def test_snapshot_message_reads_like_the_hot_path_values(calendar: MarketCalendar,
                                                         plan: Gameplan) -> None:
    values = reading(calendar)
    snapshot = values.to_snapshot()
    close = values.session.close.timestamp()  # type: ignore[union-attr]
    rules = EntryRules(plan)
    a = evaluate_entry(values, "A", rules, session_close_s=close)
    b = evaluate_entry(snapshot, "A", rules, session_close_s=close)
    assert isinstance(a, EntrySignal) and isinstance(b, EntrySignal)
    assert a.to_json_dict() == b.to_json_dict()
