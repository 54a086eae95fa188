"""The one brain (doctrine/brain.py): the stages' rules, and the channel hop changing nothing.

The actors run the two stages with a message between them (IndicatorValues -> the
IndicatorSnapshot message on the `snapshots` channel -> DecisionStage.entry); replay runs
Brain.step on the plain values. Both must decide alike on every bar.
"""

from __future__ import annotations

import datetime as dt
import math

from config.market_calendar import get_calendar
from doctrine.brain import Brain, DecisionStage, IndicatorStage, Skipped
from doctrine.indicators import IndicatorValues
from doctrine.replay import default_plan, merge_events
from doctrine.selection import SelectionMemory
from doctrine.sessions import SessionClock, et_date_of, et_epoch
from messages.brain import EntrySignal, SignalRejected
from tests.harness.data import SPY_2019, VIX_2019, bars_of


def test_a_duplicate_is_skipped_and_changes_nothing() -> None:
    stage = IndicatorStage(sessions=SessionClock(get_calendar()))
    t = et_epoch(dt.date(2024, 3, 4), dt.time(10, 0))
    first = stage.bar("SPY", t, 501.0, 499.0, 500.0, 1000.0)
    assert isinstance(first, IndicatorValues)
    again = stage.bar("SPY", t, 601.0, 599.0, 600.0, 1000.0)
    assert isinstance(again, Skipped) and again.reason == "duplicate"
    nxt = stage.bar("SPY", t + 60, 501.0, 499.0, 500.0, 1000.0)
    assert isinstance(nxt, IndicatorValues)
    assert nxt.vwap == 500.0 and stage.sets["SPY"].bars_seen == 2


def test_a_bad_bar_is_refused_and_the_next_one_is_flagged_after_a_gap() -> None:
    stage = IndicatorStage(sessions=SessionClock(get_calendar()))
    t = et_epoch(dt.date(2024, 3, 4), dt.time(10, 0))
    assert isinstance(stage.bar("SPY", t, 501.0, 499.0, 500.0, 10.0), IndicatorValues)
    bad = stage.bar("SPY", t + 60, math.nan, 499.0, 500.0, 10.0)
    assert isinstance(bad, Skipped) and bad.reason == "refused"
    nxt = stage.bar("SPY", t + 120, 501.0, 499.0, 500.0, 10.0)
    assert isinstance(nxt, IndicatorValues) and nxt.after_gap


def test_reset_keeps_the_inputs_and_takes_the_new_memory() -> None:
    day = dt.date(2019, 2, 12)
    stage = DecisionStage()
    stage.set_plan(default_plan(["SPY"], day), at=et_epoch(day, dt.time(9, 0)))
    stage.set_vix(15.0, et_epoch(day, dt.time(10, 0)))
    at = et_epoch(day, dt.time(10, 0, 30))
    assert stage.decide(at).strategy == "A"
    stage.reset(SelectionMemory(day=day, locked_reason="test lock"))
    decision = stage.decide(at + 1)
    assert decision.strategy == "C" and decision.locked
    stage.reset(None)
    assert stage.decide(at + 2).strategy == "A"


def test_the_snapshot_message_between_the_actors_decides_like_replay_s_values() -> None:
    """The 2019 week with its intraday VIX: Brain.step (replay) and the two stages with the
    snapshot message between them (the actors) give the same decision and entry per bar."""
    spy, vix = bars_of(SPY_2019), bars_of(VIX_2019)
    plan = default_plan(["SPY"], dt.date(2000, 1, 3))
    cal = get_calendar()
    brain = Brain(calendar=cal)
    ind, dec = IndicatorStage(sessions=SessionClock(cal)), DecisionStage(calendar=cal)
    day = None
    entries = 0
    for at, kind, symbol, b in merge_events({"SPY": spy}, vix, 60):
        if et_date_of(at) != day:
            day = et_date_of(at)
            for d in (brain.decisions, dec):
                d.set_plan(plan.for_day(day), at=et_epoch(day, dt.time(9, 0)))
        if kind == 0:
            brain.decisions.set_vix(b[4], at)
            dec.set_vix(b[4], at)
            continue
        step = brain.step(symbol, b[0], b[2], b[3], b[4], b[5])
        assert not isinstance(step, Skipped)
        values, decision, entry = step
        live_values = ind.bar(symbol, b[0], b[2], b[3], b[4], b[5])
        assert isinstance(live_values, IndicatorValues)
        assert live_values.to_snapshot("live") == values.to_snapshot("live")
        snapshot = live_values.to_snapshot("live")            # the channel's message
        live_decision = dec.decide(snapshot.end_epoch)
        live_entry = dec.entry(snapshot, live_decision)
        assert live_decision.model_dump() == decision.model_dump()
        assert type(live_entry) is type(entry)
        if isinstance(entry, EntrySignal | SignalRejected):
            entries += 1
            assert live_entry is not None and live_entry.model_dump() == entry.model_dump()
    assert entries > 20
