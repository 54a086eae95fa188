"""The risk book (doctrine/risk.py): PDT from round trips, loss limits, governor, persistence."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from config.market_calendar import get_calendar
from doctrine.risk import (
    EntryGate,
    RiskState,
    RiskStateError,
    daily_loss_breached,
    entry_refusal,
    governor_due,
    loss_limit,
    opened_today,
    pdt_left,
    unrealized,
)
from messages.market import OptionSpec
from messages.orders import FillReport, PositionView

SPY = OptionSpec(underlying="SPY", expiry=dt.date(2024, 7, 12), strike=550.0, right="C")
QQQ = OptionSpec(underlying="QQQ", expiry=dt.date(2024, 7, 12), strike=480.0, right="P")
_ids = iter(range(1, 10_000))


def fill(opt: OptionSpec, side: str, n: int, day: dt.date, *, ref: str, pnl: float = 0.0,
         commission: float = 0.65, opened: dt.date | None = None) -> FillReport:
    """`opened`: the day the traded position was opened (the ledger's; default: `day`)."""
    ts = dt.datetime.combine(day, dt.time(15, 0), tzinfo=dt.UTC)
    return FillReport(ts=ts, exec_id=f"x{next(_ids)}", order_ref=ref, intent_id=ref,
                      option_key=opt.key, side=side, contracts=n, price=2.0,
                      commission=commission, realized_pnl=pnl - commission,
                      opening=side == "BUY", mode="PAPER", position_opened=opened or day)


def window(day: dt.date) -> list[dt.date]:
    return [s.date for s in get_calendar().sessions_back(day, 5)]


def halted(state: RiskState) -> dt.date | None:
    return state.halted_day


def governor(state: RiskState) -> bool:
    return state.governor


def book(state: RiskState, f: FillReport) -> None:
    day = f.ts.date()
    state.roll(day, 10_000.0)
    state.apply_fill(f, day, dry_run=False)


def test_a_round_trip_on_one_day_is_one_day_trade_and_entries_alone_are_none() -> None:
    s = RiskState()
    mon = dt.date(2024, 7, 1)
    book(s, fill(SPY, "BUY", 2, mon, ref="E1"))
    assert s.day_trades == []                             # PDT is not counted on entries
    book(s, fill(SPY, "SELL", 1, mon, ref="E1/tp"))
    book(s, fill(SPY, "SELL", 1, mon, ref="E1/tp"))       # same closing order, 2 executions
    assert len(s.day_trades) == 1
    assert pdt_left(s, window=window(mon), today=mon, plan_remaining=None) == 2


def test_holding_overnight_is_no_day_trade() -> None:
    s = RiskState()
    book(s, fill(SPY, "BUY", 1, dt.date(2024, 7, 1), ref="E1"))
    book(s, fill(SPY, "SELL", 1, dt.date(2024, 7, 2), ref="X1/1", opened=dt.date(2024, 7, 1)))
    assert s.day_trades == []
    assert s.closing_orders_today == ["X1/1"]


def test_day_trades_leave_the_window_after_five_sessions_counting_holidays() -> None:
    s = RiskState()
    for day, ref in [(dt.date(2024, 6, 28), "A"), (dt.date(2024, 7, 1), "B"),
                     (dt.date(2024, 7, 2), "C")]:
        book(s, fill(SPY, "BUY", 1, day, ref=ref))
        book(s, fill(SPY, "SELL", 1, day, ref=ref + "/x"))
    # 2024-07-04 is a holiday: the 5 sessions ending 07-08 are 07-01, 02, 03, 05, 08
    assert pdt_left(s, window=window(dt.date(2024, 7, 5)), today=dt.date(2024, 7, 5),
                    plan_remaining=None) == 0
    assert pdt_left(s, window=window(dt.date(2024, 7, 8)), today=dt.date(2024, 7, 8),
                    plan_remaining=None) == 1
    assert pdt_left(s, window=window(dt.date(2024, 7, 10)), today=dt.date(2024, 7, 10),
                    plan_remaining=None) == 3


def test_the_plan_can_only_lower_the_count() -> None:
    s = RiskState()
    mon = dt.date(2024, 7, 1)
    book(s, fill(SPY, "BUY", 1, mon, ref="E1"))
    book(s, fill(SPY, "SELL", 1, mon, ref="E1/sl"))
    w = window(mon)
    assert pdt_left(s, window=w, today=mon, plan_remaining=3) == 2     # bot's count wins
    assert pdt_left(s, window=w, today=mon, plan_remaining=1) == 0     # plan's count wins
    assert pdt_left(s, window=w, today=mon, plan_remaining=None) == 2


def test_a_replayed_fill_is_booked_once() -> None:
    s = RiskState()
    mon = dt.date(2024, 7, 1)
    f = fill(SPY, "SELL", 1, mon, ref="E1/tp", pnl=30.0)
    book(s, fill(SPY, "BUY", 1, mon, ref="E1"))
    book(s, f)
    book(s, f)
    assert s.realized_today == pytest.approx(-0.65 + 30.0 - 0.65)
    assert len(s.day_trades) == 1


def test_a_new_day_resets_the_day_but_not_the_day_trades_or_the_week() -> None:
    s = RiskState()
    mon, tue = dt.date(2024, 7, 1), dt.date(2024, 7, 2)
    book(s, fill(SPY, "BUY", 1, mon, ref="E1"))
    book(s, fill(SPY, "SELL", 1, mon, ref="E1/x", pnl=-50.0))
    s.halted_day, s.halted_reason = mon, "daily loss"
    s.governor = True
    s.roll(tue, 9_000.0)
    assert s.realized_today == 0.0 and halted(s) is None
    assert s.day_start_equity == 9_000.0
    assert len(s.day_trades) == 1 and s.governor            # same ISO week
    s.roll(dt.date(2024, 7, 8), 8_000.0)
    assert (governor(s), s.week_start_equity) == (False, 8_000.0)


def test_a_halt_for_the_day_survives_a_restart_the_same_day() -> None:
    s = RiskState()
    mon = dt.date(2024, 7, 1)
    s.roll(mon, 600.0)
    s.halted_day, s.halted_reason = mon, "daily loss -61 reached the limit -60"
    restored = RiskState.from_dict(s.to_dict())
    restored.roll(mon, 540.0)
    assert restored.halted_day == mon
    assert restored.day_start_equity == 600.0                # not re-based on the loss


def test_loss_limit_takes_the_lower_of_settings_and_plan() -> None:
    assert loss_limit(600.0, 0.10, None) == pytest.approx(60.0)
    assert loss_limit(600.0, 0.10, 0.05) == pytest.approx(30.0)
    assert loss_limit(600.0, 0.10, 0.50) == pytest.approx(60.0)
    assert loss_limit(None, 0.10, None) is None


def test_daily_loss_counts_unrealised_at_the_bid() -> None:
    pos = PositionView(option_key=SPY.key, option=SPY, contracts=2, entry_premium=2.00,
                       entry_ts=dt.datetime(2024, 7, 1, 15, tzinfo=dt.UTC),
                       opened_day=dt.date(2024, 7, 1), strategy="A")
    u = unrealized([pos], {SPY.key: 1.70})
    assert u == pytest.approx(-60.0)
    assert daily_loss_breached(-1.3 + u, 60.0)
    assert not daily_loss_breached(-59.0, 60.0)
    assert not daily_loss_breached(-100.0, None)


def test_weekly_governor_at_fifteen_percent_or_the_plans_lower_limit() -> None:
    s = RiskState(week_start_equity=1_000.0)
    assert governor_due(s, 860.0, None) is None
    assert governor_due(s, 850.0, None) is not None
    assert governor_due(s, 900.0, 0.10) is not None
    assert governor_due(s, None, None) is None


GATE = EntryGate(symbol="SPY", signal_age_s=30, max_signal_age_s=120, trading_active=True,
                 trading_reasons=(), equity=600.0, loss_limit=60.0, pnl_today=0.0,
                 marks_complete=True, pdt_enabled=True, pdt_left=3, opened_today=0,
                 governor=False, busy_symbols=frozenset(), pivots=0, max_pivots=2)


def test_an_entry_passes_every_gate_only_with_known_numbers() -> None:
    assert entry_refusal(GATE) is None


@pytest.mark.parametrize(("change", "words"), [
    ({"trading_active": False, "trading_reasons": ("Gateway link down",)}, "not ACTIVE"),
    ({"signal_age_s": 300}, "old"),
    ({"equity": None}, "equity unknown"),
    ({"equity": float("nan")}, "equity unknown"),
    ({"loss_limit": None}, "budget unknown"),
    ({"pnl_today": -60.0}, "daily loss"),
    ({"marks_complete": False}, "no live quote"),
    ({"governor": True}, "governor"),
    ({"pivots": 3}, "pivots"),
    ({"busy_symbols": frozenset({"SPY"})}, "already open"),
    ({"pdt_left": 0}, "PDT"),
    ({"pdt_left": 1, "opened_today": 1}, "PDT"),
])
def test_an_entry_is_refused_when_any_gate_fails(change: dict[str, object],
                                                 words: str) -> None:
    refusal = entry_refusal(dataclasses.replace(GATE, **change))  # type: ignore[arg-type]
    assert refusal is not None and words in refusal


def test_pdt_disabled_lets_the_count_go_but_nothing_else() -> None:
    assert entry_refusal(dataclasses.replace(GATE, pdt_enabled=False, pdt_left=0)) is None


def test_positions_opened_today_count_as_coming_day_trades() -> None:
    today = dt.date(2024, 7, 1)
    views = [PositionView(option_key=o.key, option=o, contracts=1, entry_premium=1.0,
                          entry_ts=dt.datetime(2024, 7, 1, 15, tzinfo=dt.UTC), opened_day=d,
                          strategy="A") for o, d in [(SPY, today), (QQQ, dt.date(2024, 6, 28))]]
    assert opened_today(views, today) == 1


@pytest.mark.parametrize("damage", [
    lambda d: d.update(version=2),
    lambda d: d.pop("day_trades"),
    lambda d: d.update(realized_today="12"),
    lambda d: d.update(kill_switch="yes"),
    lambda d: d.update(realized_today=float("inf")),
    lambda d: d.update(rejections_today=-1),
    lambda d: d.update(day="yesterday"),
])
def test_a_damaged_risk_state_is_refused(damage: object) -> None:
    s = RiskState()
    s.roll(dt.date(2024, 7, 1), 600.0)
    doc = s.to_dict()
    damage(doc)   # type: ignore[operator]
    with pytest.raises(RiskStateError):
        RiskState.from_dict(doc)


def test_risk_state_round_trip() -> None:
    s = RiskState()
    mon = dt.date(2024, 7, 1)
    book(s, fill(SPY, "BUY", 1, mon, ref="E1"))
    book(s, fill(SPY, "SELL", 1, mon, ref="E1/x", pnl=12.0))
    s.kill_switch = True
    assert RiskState.from_dict(s.to_dict()).to_dict() == s.to_dict()


def test_the_risk_state_binding_refuses_another_mode_or_account_and_a_loosening_legacy_file(
        ) -> None:
    bound = RiskState(bound_mode="PAPER", bound_account="DU1")
    assert bound.binding_problem("PAPER", "DU1", capital=600.0) is None
    assert bound.binding_problem("PAPER", None, capital=600.0) is None
    assert "written in PAPER mode" in (bound.binding_problem("LIVE", "U1", capital=600.0) or "")
    assert "account DU1" in (bound.binding_problem("PAPER", "DU2", capital=600.0) or "")
    assert RiskState(realized_today=-50.0).binding_problem("PAPER", "DU1", capital=600.0) \
        is None                                          # losses only restrict
    assert "profit" in (RiskState(realized_today=5.0).binding_problem(
        "PAPER", "DU1", capital=600.0) or "")
    assert "BOT_CAPITAL_USD" in (RiskState(day_start_equity=100_000.0).binding_problem(
        "PAPER", "DU1", capital=600.0) or "")            # a dry run's STARTING_EQUITY
    again = RiskState.from_dict(bound.to_dict())
    assert (again.bound_mode, again.bound_account) == ("PAPER", "DU1")
