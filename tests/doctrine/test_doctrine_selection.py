"""Strategy selection: every row of crucible.md's order, the fail-closed ones first."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.gameplan import Gameplan, parse_gameplan
from config.market_calendar import ET
from doctrine.selection import (
    SelectionConfig,
    SelectionMemory,
    SelectionState,
    select_strategy,
    vix_problem,
)
from messages.market import VixReading
from tests.harness.data import PlanFactory, example_plan_dict

DAY = dt.date(2024, 2, 20)


def at(h: int, m: int = 0, s: int = 0, day: dt.date = DAY) -> float:
    return dt.datetime.combine(day, dt.time(h, m, s), tzinfo=ET).timestamp()


NOW = at(10, 30)


def pick(plan: Gameplan | None, *, vix: object = 15.0, vix_age: float = 30.0,
         governor: bool = False, locked: str | None = None, gate: Any = "passed",
         problem: str | None = None) -> tuple[str, str]:
    sel = select_strategy(plan=plan, plan_problem=problem, today=DAY, now_s=NOW, vix=vix,
                          vix_ts=None if vix_age is None else NOW - vix_age,
                          governor_active=governor, locked_reason=locked, gate=gate)
    return sel.strategy, sel.rule


@pytest.fixture
def plan_a(make_plan: PlanFactory) -> Gameplan:
    """Strategy A on SPY/QQQ, no gate, no catalysts, no vix_ceiling."""
    return make_plan(symbols=["SPY", "QQQ"], catalysts=[], vix_gate=..., strategy_parameters=...)


# -- the table, in order -------------------------------------------------------------------------
def test_no_valid_plan_selects_c(plan_a: Gameplan) -> None:
    assert pick(None, problem="gameplan file x does not exist") == ("C", "no_plan")
    stale = plan_a.for_day(DAY - dt.timedelta(days=1))
    assert pick(stale) == ("C", "plan_stale")


def test_data_quarantine_selects_c(make_plan: PlanFactory) -> None:
    plan = make_plan(data_quality={"quarantine_active": True, "last_verified": None})
    assert pick(plan) == ("C", "quarantine")


def test_weekly_governor_from_plan_or_risk_state_selects_c(make_plan: PlanFactory,
                                                            plan_a: Gameplan) -> None:
    limits = {"max_daily_loss_pct": 0.1, "pdt_trades_remaining": 3,
              "weekly_drawdown_governor_active": True, "max_intraday_pivots": 2}
    assert pick(make_plan(hard_limits=limits)) == ("C", "governor")
    assert pick(plan_a, governor=True) == ("C", "governor")


def test_locked_day_selects_c(plan_a: Gameplan) -> None:
    assert pick(plan_a, locked="pivot cap") == ("C", "locked")


def test_earnings_catalyst_selects_c(make_plan: PlanFactory) -> None:
    typed = make_plan(catalysts=[{"type": "earnings", "impact": "low"}], vix_gate=...)
    plain = make_plan(catalysts=["AAPL earnings after the close"], vix_gate=...)
    assert pick(typed) == ("C", "earnings")
    assert pick(plain) == ("C", "earnings")


def test_two_high_impact_catalysts_select_c_and_one_halves_size(make_plan: PlanFactory) -> None:
    two = make_plan(catalysts=[{"type": "cpi", "impact": "high"}, "FOMC minutes"],
                    vix_gate=...)
    one = make_plan(catalysts=[{"type": "cpi", "impact": "high"},
                               {"type": "pmi", "impact": "medium"}], vix_gate=...)
    assert pick(two) == ("C", "catalysts")
    assert pick(one) == ("A", "regime_a")
    state = SelectionState()
    state.set_plan(one, at=at(9))
    state.set_vix(15.0, NOW)
    assert state.evaluate_at(NOW).size_multiplier == pytest.approx(0.5 * 0.6)


def test_plan_strategy_c_selects_c(make_plan: PlanFactory) -> None:
    assert pick(make_plan(strategy="C", symbols=[])) == ("C", "plan_c")


@pytest.mark.parametrize(("vix", "age", "why"), [
    (None, 30.0, "missing"),
    ("15.2", 30.0, "not a number"),
    (math.nan, 30.0, "not a finite number"),
    (math.inf, 30.0, "not a finite number"),
    (True, 30.0, "not a number"),
    (0.0, 30.0, "<= 0"),
    (-3.0, 30.0, "<= 0"),
    (15.0, 301.0, "stale"),
    (15.0, None, "no timestamp"),
    (15.0, -120.0, "in the future"),
])
def test_unusable_vix_fails_closed(plan_a: Gameplan, vix: object, age: float | None,
                                   why: str) -> None:
    assert pick(plan_a, vix=vix, vix_age=age) == ("C", "vix_unusable")  # type: ignore[arg-type]
    problem = vix_problem(vix, None if age is None else NOW - age, NOW, SelectionConfig())
    assert problem is not None and why in problem


@pytest.mark.parametrize(("vix", "expected"), [
    (0.01, ("A", "regime_a")), (17.99, ("A", "regime_a")), (18.0, ("B", "regime_b")),
    (24.99, ("B", "regime_b")), (25.0, ("C", "vix_high")), (80.0, ("C", "vix_high")),
])
def test_vix_regimes_and_their_boundaries(plan_a: Gameplan, vix: float,
                                          expected: tuple[str, str]) -> None:
    assert pick(plan_a, vix=vix) == expected


def test_vix_exactly_at_the_age_limit_is_still_fresh(plan_a: Gameplan) -> None:
    assert pick(plan_a, vix_age=300.0) == ("A", "regime_a")


def test_plan_can_only_make_things_more_conservative(make_plan: PlanFactory) -> None:
    plan_b = make_plan(strategy="B", symbols=["SPY"], vix_gate=..., strategy_parameters=...)
    assert pick(plan_b, vix=15.0) == ("B", "plan_cap")
    assert pick(plan_b, vix=20.0) == ("B", "regime_b")
    plan_a = make_plan(vix_gate=..., strategy_parameters=...)
    assert pick(plan_a, vix=20.0) == ("B", "regime_b")


def test_plan_vix_ceiling_tightens_but_never_loosens(make_plan: PlanFactory) -> None:
    tight = make_plan(vix_gate=..., strategy_parameters={"vix_ceiling": 16.5})
    loose = make_plan(vix_gate=..., strategy_parameters={"vix_ceiling": 40})
    assert pick(tight, vix=16.0) == ("A", "regime_a")
    assert pick(tight, vix=16.5) == ("C", "vix_high")
    assert pick(loose, vix=26.0) == ("C", "vix_high")


def test_first_match_wins_quarantine_before_vix(make_plan: PlanFactory) -> None:
    plan = make_plan(data_quality={"quarantine_active": True, "last_verified": None})
    sel = select_strategy(plan=plan, plan_problem=None, today=DAY, now_s=NOW, vix=None,
                          vix_ts=None, governor_active=True, locked_reason=None, gate="none")
    assert sel.rule == "quarantine" and not sel.transient


# -- the stateful parts --------------------------------------------------------------------------
def state_with(plan: Gameplan | None, *, plan_at: float = at(9),
               config: SelectionConfig | None = None) -> SelectionState:
    state = SelectionState(config=config or SelectionConfig())
    state.set_plan(plan, at=plan_at, problem=None if plan else "gameplan missing")
    return state


def test_vix_gate_pending_then_fails_and_locks_c_for_the_day(make_plan: PlanFactory) -> None:
    plan = make_plan(vix_gate={"check_time": "09:45", "threshold": 18.5},
                     strategy_parameters=...)
    state = state_with(plan)
    state.set_vix(17.0, at(9, 40))
    early = state.evaluate_at(at(9, 40))
    assert (early.strategy, early.rule, early.vix_gate) == ("C", "vix_gate_pending", "pending")
    state.set_vix(18.6, at(9, 45))
    failed = state.evaluate_at(at(9, 45))
    assert (failed.strategy, failed.locked, failed.vix_gate) == ("C", True, "failed")
    assert "VIX gate failed: VIX 18.60 >= 18.5 at 09:45 ET" in failed.reasons[0]
    state.set_vix(15.0, at(11))
    assert state.evaluate_at(at(11)).strategy == "C"


def test_vix_gate_uses_the_live_reading_at_check_time(make_plan: PlanFactory) -> None:
    plan = make_plan(vix_gate={"check_time": "09:45", "threshold": 18.5},
                     strategy_parameters=...)
    state = state_with(plan)
    state.set_vix(19.0, at(9, 44, 59))   # before the check time: does not decide the gate
    assert state.evaluate_at(at(9, 45)).rule == "vix_gate_pending"
    state.set_vix(17.9, at(9, 46))
    passed = state.evaluate_at(at(9, 46))
    assert (passed.strategy, passed.vix_gate) == ("A", "passed")
    state.set_vix(19.0, at(10))          # after the gate: the regime rules apply (B)
    assert state.evaluate_at(at(10)).strategy == "B"


def test_no_valid_plan_by_0915_locks_c_even_if_one_arrives_later(
        make_plan: PlanFactory) -> None:
    late = make_plan(session_id="gauntlet_20240220_0930", vix_gate=...)
    state = state_with(None)
    state.set_vix(15.0, at(9, 16))
    assert state.evaluate_at(at(9, 14)).rule == "no_plan"
    assert state.evaluate_at(at(9, 16)).rule == "no_plan"
    state.set_plan(late, at=at(9, 30))
    decision = state.evaluate_at(at(9, 31))
    state.set_vix(15.0, at(9, 31))
    decision = state.evaluate_at(at(9, 31))
    assert (decision.strategy, decision.rule, decision.locked) == ("C", "locked", True)
    assert "no valid gameplan by 09:15 ET" in decision.reasons[0]


def test_plan_produced_before_the_deadline_survives_a_restart(make_plan: PlanFactory) -> None:
    plan = make_plan(session_id="gauntlet_20240220_0905", vix_gate=...)
    state = state_with(plan, plan_at=at(11))  # the bot restarted at 11:00 and read the file
    state.set_vix(15.0, at(11))
    assert state.evaluate_at(at(11)).strategy == "A"


def test_pivots_are_counted_and_the_second_locks_c(plan_a: Gameplan) -> None:
    state = state_with(plan_a)
    seen = []
    for minute, vix in enumerate([15.0, 15.5, 19.0, 19.5, 17.0, 15.0, 19.0]):
        t = at(10, minute)
        state.set_vix(vix, t)
        d = state.evaluate_at(t)
        seen.append((d.strategy, d.pivots, d.locked))
    assert seen == [("A", 0, False), ("A", 0, False), ("B", 1, False), ("B", 1, False),
                    ("C", 2, True), ("C", 2, True), ("C", 2, True)]


def test_data_faults_do_not_count_as_pivots(plan_a: Gameplan) -> None:
    state = state_with(plan_a)
    state.set_vix(15.0, at(10))
    assert state.evaluate_at(at(10)).strategy == "A"
    stale = state.evaluate_at(at(10, 6))          # six minutes without a reading
    assert (stale.strategy, stale.rule, stale.transient) == ("C", "vix_unusable", True)
    state.set_vix(15.2, at(10, 7))
    back = state.evaluate_at(at(10, 7))
    assert (back.strategy, back.pivots, back.changed) == ("A", 0, True)


def test_zero_pivots_allowed_means_c_all_day(make_plan: PlanFactory) -> None:
    limits = {"max_daily_loss_pct": 0.1, "pdt_trades_remaining": 3,
              "weekly_drawdown_governor_active": False, "max_intraday_pivots": 0}
    state = state_with(make_plan(hard_limits=limits, vix_gate=...))
    state.set_vix(15.0, at(10))
    d = state.evaluate_at(at(10))
    assert (d.strategy, d.locked) == ("C", True)


def test_new_day_resets_the_lock_and_needs_a_new_plan(plan_a: Gameplan) -> None:
    state = state_with(plan_a)
    state.set_vix(30.0, at(10))
    assert state.evaluate_at(at(10)).rule == "vix_high"
    state.set_governor(True)
    assert state.evaluate_at(at(10, 1)).rule == "governor"
    state.set_governor(False)
    next_day = DAY + dt.timedelta(days=1)
    state.set_vix(15.0, at(9, 5, day=next_day))
    d = state.evaluate_at(at(9, 5, day=next_day))
    assert (d.strategy, d.rule, d.day, d.locked) == ("C", "plan_stale", next_day, False)
    state.set_plan(plan_a.for_day(next_day), at=at(9, 10, day=next_day))
    state.set_vix(15.0, at(10, day=next_day))
    assert state.evaluate_at(at(10, day=next_day)).strategy == "A"


def test_restored_memory_is_never_more_permissive(plan_a: Gameplan) -> None:
    memory = SelectionMemory(day=DAY, pivots=2, regime="B", locked_reason="pivot cap: 2",
                             deadline_met=True)
    again = SelectionMemory.from_dict(memory.to_dict())
    assert again == memory
    state = SelectionState(restored=again)
    state.set_plan(plan_a, at=at(11))
    state.set_vix(15.0, at(11))
    d = state.evaluate_at(at(11))
    assert (d.strategy, d.locked, d.pivots) == ("C", True, 2)
    assert state.memory() == memory


def test_the_memory_is_known_until_a_pivot_changes_it_and_a_copy_does_not_follow_it(
        plan_a: Gameplan) -> None:
    """What the selector asks on every bar (has the memory to persist changed?) without the
    copy `memory()` makes; the copy it keeps as `saved` must not change with the state."""
    state = state_with(plan_a)
    assert state.memory_is_one_of(None)                  # no day yet: nothing to persist
    state.set_vix(15.0, at(10))
    state.evaluate_at(at(10))
    saved = state.memory()
    assert saved is not None
    assert state.memory_is_one_of(saved) and state.memory_is_one_of(None, saved)
    assert not state.memory_is_one_of(None)
    state.set_vix(30.0, at(10, 5))                       # A -> C: a pivot
    state.evaluate_at(at(10, 5))
    assert not state.memory_is_one_of(saved)
    assert saved.pivots == 0 and state.memory_is_one_of(state.memory())


def test_unchanged_inputs_return_the_same_decision_object(plan_a: Gameplan) -> None:
    state = state_with(plan_a)
    state.set_vix_reading(VixReading(value=15.0, ts=dt.datetime.fromtimestamp(at(10), dt.UTC)))
    first = state.evaluate(dt.datetime.fromtimestamp(at(10), dt.UTC))
    state.set_vix(16.0, at(10, 1))
    same = state.evaluate_at(at(10, 1))
    state.set_vix(18.5, at(10, 2))
    other = state.evaluate_at(at(10, 2))
    assert same is first and first.changed is False
    assert other is not first and (other.previous, other.strategy, other.changed) == \
        ("A", "B", True)


# -- the fast path for VIX-only updates agrees with the full evaluation ---------------------------
vix_values = st.one_of(st.floats(min_value=-5, max_value=60),
                       st.sampled_from([17.99, 18.0, 24.99, 25.0, 0.0, math.nan, math.inf]),
                       st.none())
steps = st.lists(st.tuples(st.integers(min_value=1, max_value=400), vix_values,
                           st.integers(min_value=-90, max_value=600)), min_size=1,
                 max_size=60)


class AlwaysFull(SelectionState):
    """The reference: every new VIX reading takes the full evaluation."""

    def _vix_band(self, *args: Any) -> tuple[float, float] | None:
        return None


@settings(max_examples=150, deadline=None)
@given(steps=steps, plan_kind=st.sampled_from(["A", "B", "C", "gate", "ceiling"]))
def test_vix_fast_path_agrees_with_full_evaluation(steps: list[tuple[int, float | None, int]],
                                                   plan_kind: str) -> None:
    data = example_plan_dict()
    data.pop("vix_gate")
    data.pop("strategy_parameters")
    data["catalysts"] = []
    if plan_kind in ("B", "C"):
        data["strategy"] = plan_kind
    if plan_kind == "gate":
        data["vix_gate"] = {"check_time": "10:05", "threshold": 18.5}
    if plan_kind == "ceiling":
        data["strategy_parameters"] = {"vix_ceiling": 20.0}
    data["hard_limits"]["max_intraday_pivots"] = 5
    plan = parse_gameplan(json.dumps(data))
    fast = state_with(plan)
    full = AlwaysFull()
    full.set_plan(plan, at=at(9))
    now = at(10)
    for advance, vix, reading_age in steps:
        now += advance
        if vix is not None or reading_age % 3 == 0:
            fast.set_vix(vix, now - reading_age)
            full.set_vix(vix, now - reading_age)
        a, b = fast.evaluate_at(now), full.evaluate_at(now)
        assert (a.strategy, a.rule, a.pivots, a.locked, a.vix_gate) == \
            (b.strategy, b.rule, b.pivots, b.locked, b.vix_gate)
