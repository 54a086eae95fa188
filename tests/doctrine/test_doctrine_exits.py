"""Exits on the option premium: emergency, stop, target, DTE, session end, time stop."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from config.market_calendar import ET
from doctrine.exits import ExitRules, OpenPosition, check_exit, exit_signal, time_exit_at
from messages.market import OptionSpec
from tests.harness.data import PlanFactory

DAY = dt.date(2024, 2, 20)
ENTRY = dt.datetime.combine(DAY, dt.time(10, 30), tzinfo=ET).timestamp()
CLOSE = dt.datetime.combine(DAY, dt.time(16, 0), tzinfo=ET).timestamp()


def position(strategy: str = "A", expiry: dt.date = dt.date(2024, 2, 26),
             rules: ExitRules | None = None) -> OpenPosition:
    spec = OptionSpec(underlying="SPY", expiry=expiry, strike=500.0, right="C")
    return OpenPosition(symbol="SPY", option=spec, strategy=strategy, contracts=2,  # type: ignore[arg-type]
                        entry_premium=2.00, entry_s=ENTRY,
                        rules=rules or ExitRules.for_strategy("A", None))


def reason(pos: OpenPosition, mark: float | None, minutes: float = 5) -> str | None:
    found = check_exit(pos, mark=mark, now_s=ENTRY + minutes * 60, today=DAY,
                       session_close_s=CLOSE)
    return found[0] if found else None


@pytest.mark.parametrize(("mark", "expected"), [
    (2.00, None), (2.29, None), (2.30, "take_profit"), (1.51, None), (1.50, "stop_loss"),
    (1.20, "emergency_stop"), (0.50, "emergency_stop"),
])
def test_strategy_a_premium_exits(mark: float, expected: str | None) -> None:
    assert reason(position(), mark) == expected


def test_strategy_b_exits_are_tighter() -> None:
    pos = position("B", rules=ExitRules.for_strategy("B", None))
    assert reason(pos, 2.16) == "take_profit"
    assert reason(pos, 2.15) is None
    assert reason(pos, 1.70) == "stop_loss"
    assert reason(pos, 1.71) is None
    assert reason(pos, 2.0, minutes=45) == "time_stop"
    assert reason(pos, 2.0, minutes=44) is None


def test_time_stop_after_90_minutes_for_a() -> None:
    assert reason(position(), 2.05, minutes=89) is None
    assert reason(position(), 2.05, minutes=90) == "time_stop"


def test_dte_force_close_at_three_days_or_the_plans_value(make_plan: PlanFactory) -> None:
    assert reason(position(expiry=dt.date(2024, 2, 23)), 2.0) == "dte_force_close"
    assert reason(position(expiry=dt.date(2024, 2, 24)), 2.0) is None
    limits = {"max_daily_loss_pct": 0.1, "pdt_trades_remaining": 3,
              "weekly_drawdown_governor_active": False, "max_intraday_pivots": 2,
              "force_close_at_dte": 1}
    plan = make_plan(hard_limits=limits)
    pos = position(expiry=dt.date(2024, 2, 23), rules=ExitRules.for_strategy("A", plan))
    assert reason(pos, 2.0) is None


def test_positions_are_flat_before_the_close() -> None:
    pos = dataclasses.replace(position(), entry_s=CLOSE - 600)   # bought at 15:50
    assert check_exit(pos, mark=2.0, now_s=CLOSE - 301, today=DAY,
                      session_close_s=CLOSE) is None
    found = check_exit(pos, mark=2.0, now_s=CLOSE - 300, today=DAY, session_close_s=CLOSE)
    assert found is not None and found[0] == "session_end" and "16:00 ET" in found[1]
    early_close = CLOSE - 3 * 3600   # a 13:00 close
    found = check_exit(pos, mark=2.0, now_s=early_close - 120, today=DAY,
                       session_close_s=early_close)
    assert found is not None and found[0] == "session_end"


def test_without_a_mark_only_time_rules_can_fire() -> None:
    assert reason(position(), None) is None
    assert reason(position(), None, minutes=90) == "time_stop"


def test_unmanaged_position_keeps_the_emergency_stop_only() -> None:
    pos = position("C", rules=ExitRules.unmanaged(None))
    assert reason(pos, 1.25, minutes=200) is None
    assert reason(pos, 1.20) == "emergency_stop"
    assert reason(pos, 5.0) is None


def test_exit_signal_carries_option_premiums() -> None:
    pos = position()
    sig = exit_signal(pos, "stop_loss", "x", mark=1.5, now_s=ENTRY + 60)
    assert (sig.entry_premium, sig.mark, sig.contracts, sig.option.key) == \
        (2.0, 1.5, 2, "SPY 2024-02-26 500C")
    assert sig.pnl_pct == pytest.approx(-0.25)


@pytest.mark.parametrize(("strategy", "expiry", "entry_minute"), [
    ("A", dt.date(2024, 2, 26), 0),       # the time stop first (90 min)
    ("B", dt.date(2024, 2, 26), 0),       # 45 min
    ("A", dt.date(2024, 2, 26), 300),     # entered 15:30: the session end first
    ("A", dt.date(2024, 2, 23), 0),       # 3 DTE: fires at once
])
def test_time_exit_at_is_the_first_instant_a_time_based_exit_fires(
        strategy: str, expiry: dt.date, entry_minute: int) -> None:
    """Replay skips check_exit(mark=None) before time_exit_at: it must be None at every
    earlier second of the day and a reason from that instant on."""
    pos = dataclasses.replace(position(strategy, expiry=expiry,
                                       rules=ExitRules.for_strategy(strategy, None)),
                              entry_s=ENTRY + entry_minute * 60)
    at = time_exit_at(pos, today=DAY, session_close_s=CLOSE)

    def fires(now: float) -> bool:
        return check_exit(pos, mark=None, now_s=now, today=DAY, session_close_s=CLOSE) \
            is not None

    if at == float("-inf"):
        assert fires(pos.entry_s)
        return
    assert pos.entry_s < at < CLOSE
    assert fires(at) and fires(at + 60)
    assert not any(fires(now) for now in range(int(pos.entry_s), int(at)))
