"""The brain, sans I/O: bars, VIX, plan and governor in; indicator values, decisions, entries out.

One pipeline, driven three ways: the Indicators actor drives `IndicatorStage`, the
StrategySelector actor drives `DecisionStage`, and replay drives `Brain`, which is nothing
but the two stages composed (`step`). Live and replay therefore make the same decisions by
construction; what differs is only the I/O around the stages (channels, the journal, the
gameplan file, the persisted selection memory, waiting for the VIX of a bar's minute), and
that is what tools/consistency.py checks on a live run's journal.

    bar ──▶ IndicatorStage.bar ──values──▶ DecisionStage.decide(at) ──decision──▶
            DecisionStage.entry(values, decision) ──▶ EntrySignal | SignalRejected | None

Rules that live here because both sides need them:

* Exactly once: a bar at or before the symbol's last counted bar is `Skipped("duplicate")`
  (BarFeed's backfill can overlap what it delivered; counting it twice shifts every EMA).
* A bad bar (non-finite or non-positive price, negative volume) is `Skipped("refused")` and
  marks a gap, so the next bar does not pass for its continuation.
* Entries: only on live bars and under A or B; the gates are doctrine/signals.py's.

Exits, option choice and sizing are the money path's (live: ModeGuard/OrderRouter; replay:
doctrine/replay.py's dry run over doctrine/dry_run.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from config.gameplan import Gameplan
from config.market_calendar import MarketCalendar, get_calendar
from doctrine.indicators import (
    BadBar,
    IndicatorParams,
    IndicatorSet,
    IndicatorValues,
    OutOfOrderBar,
)
from doctrine.selection import SelectionConfig, SelectionMemory, SelectionState
from doctrine.sessions import SessionClock
from doctrine.signals import (
    EntryRules,
    Reading,
    gate_entry,
    momentum_setup,
    reversion_setup,
)
from messages.brain import EntrySignal, SignalRejected, StrategyDecision
from messages.market import BarGap, VixReading

Entry = EntrySignal | SignalRejected | None
_UNKNOWN = -1.0   # not a close any session has: "not looked up yet" in the close cache
HistoryBar = tuple[float, float, float, float, float, int]
"""(start in UTC epoch seconds, high, low, close, volume, bar seconds): what a re-warm needs."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A bar the indicators did not count: a duplicate, or a refused (bad) bar."""

    reason: Literal["duplicate", "refused"]
    detail: str


class IndicatorStage:
    """One IndicatorSet per symbol, fed every bar exactly once and in order."""

    __slots__ = ("params", "sessions", "sets")

    def __init__(self, params: IndicatorParams | None = None,
                 sessions: SessionClock | None = None) -> None:
        self.params = params if params is not None else IndicatorParams()
        self.sessions = sessions if sessions is not None else SessionClock(get_calendar())
        self.sets: dict[str, IndicatorSet] = {}

    def bar(self, symbol: str, ts: float, high: float, low: float, close: float,
            volume: float, bar_seconds: int = 60, live: bool = True
            ) -> IndicatorValues | Skipped:
        """One completed bar (start `ts`, UTC epoch s): its values, or why it was not counted."""
        ind = self.sets.get(symbol)
        if ind is None:
            ind = self.sets[symbol] = IndicatorSet(symbol, self.params, self.sessions)
        try:
            return ind.update_values(ts, high, low, close, volume, bar_seconds, live)
        except OutOfOrderBar as exc:         # checked first: a duplicate changes nothing
            return Skipped("duplicate", str(exc))
        except BadBar as exc:
            ind.mark_gap()
            return Skipped("refused", str(exc))

    def mark_gap(self, symbol: str, gap: BarGap | None = None) -> None:
        """Bars are missing before the next one of `symbol` (values carry on, next flagged)."""
        ind = self.sets.get(symbol)
        if ind is not None:
            ind.mark_gap(gap)

    def rewarm(self, symbol: str, history: Iterable[HistoryBar], *, gap_pending: bool) -> None:
        """Rebuild `symbol`'s set from raw history bars (new periods, a new incarnation)."""
        ind = IndicatorSet(symbol, self.params, self.sessions)
        for ts, high, low, close, volume, seconds in history:
            ind.update_values(ts, high, low, close, volume, bar_seconds=seconds, live=False)
        if gap_pending:
            ind.mark_gap()
        self.sets[symbol] = ind


class DecisionStage:
    """The strategy in force (selection) and the entry gates (signals) over indicator values.

    `reset` starts a fresh selection (a restored or locked day's memory) with the same
    plan, VIX and governor applied.
    """

    __slots__ = ("_closes", "calendar", "config", "rules", "selection")

    def __init__(self, config: SelectionConfig | None = None,
                 calendar: MarketCalendar | None = None,
                 restored: SelectionMemory | None = None) -> None:
        self.config = config if config is not None else SelectionConfig()
        self.calendar = calendar if calendar is not None else get_calendar()
        self.selection = SelectionState(config=self.config, restored=restored)
        self.rules = EntryRules(None)
        self._closes: dict[dt.date, float | None] = {}

    # -- inputs --------------------------------------------------------------------------------
    def set_plan(self, plan: Gameplan | None, *, at: dt.datetime | float,
                 problem: str | None = None) -> None:
        self.selection.set_plan(plan, at=at, problem=problem)
        self.rules = EntryRules(plan)

    def set_vix(self, value: object, ts: dt.datetime | float | None) -> None:
        self.selection.set_vix(value, ts)

    def set_vix_reading(self, reading: VixReading | None) -> None:
        self.selection.set_vix_reading(reading)

    def set_governor(self, active: bool) -> None:
        self.selection.set_governor(active)

    def reset(self, restored: SelectionMemory | None) -> None:
        """A fresh selection from `restored` memory, with the current inputs re-applied."""
        self.selection = self.selection.restarted(restored)

    # -- steps ---------------------------------------------------------------------------------
    def decide(self, at: float) -> StrategyDecision:
        """The decision in force at `at` (UTC epoch s); the same object while nothing changed."""
        return self.selection.evaluate_at(at)

    def entry(self, reading: Reading, decision: StrategyDecision) -> Entry:
        """The entry decision for one completed bar under `decision` (None: nothing to say)."""
        strategy = decision.strategy
        if strategy == "C" or not reading.live:
            return None
        rules = self.rules                   # find_setup, inlined (a call per bar saved)
        p = rules.params[strategy]
        found = momentum_setup(reading, p) if strategy == "A" else reversion_setup(reading, p)
        if found is None:                    # nearly every bar: no lookups below
            return None
        day = reading.session_date
        close_s = self._closes.get(day, _UNKNOWN) if day is not None else None
        if close_s is _UNKNOWN:
            close_s = self.session_close(day)
        return gate_entry(reading, strategy, rules, found, session_close_s=close_s,
                          multiplier=decision.size_multiplier)

    def session_close(self, day: dt.date | None) -> float | None:
        if day is None:
            return None
        try:
            return self._closes[day]
        except KeyError:
            session = self.calendar.session(day)
            close = self._closes[day] = (session.close.timestamp() if session is not None
                                         else None)
            return close


Step = tuple[IndicatorValues, StrategyDecision, Entry]


class Brain:
    """Both stages composed: what replay drives (the actors drive one stage each)."""

    __slots__ = ("decisions", "indicators")

    def __init__(self, *, params: IndicatorParams | None = None,
                 selection: SelectionConfig | None = None,
                 calendar: MarketCalendar | None = None) -> None:
        cal = calendar if calendar is not None else get_calendar()
        self.indicators = IndicatorStage(params, SessionClock(cal))
        self.decisions = DecisionStage(selection, cal)

    def step(self, symbol: str, ts: float, high: float, low: float, close: float,
             volume: float, bar_seconds: int = 60, live: bool = True) -> Step | Skipped:
        """One bar through the whole brain, decided at the bar's end."""
        ind = self.indicators.sets.get(symbol)
        values = None
        if ind is not None:    # IndicatorStage.bar's work, one call less (replay's hot path)
            try:
                values = ind.update_values(ts, high, low, close, volume, bar_seconds, live)
            except (OutOfOrderBar, BadBar):
                pass           # refused before any state changed: the stage says why below
        if values is None:     # a new symbol, or a refused bar
            answer = self.indicators.bar(symbol, ts, high, low, close, volume, bar_seconds,
                                         live)
            if isinstance(answer, Skipped):
                return answer
            values = answer
        decisions = self.decisions
        decision = decisions.selection.evaluate_at(ts + bar_seconds)
        return values, decision, decisions.entry(values, decision)
