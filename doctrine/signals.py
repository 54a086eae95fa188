"""Entry signals per strategy, on completed bars only, inside the session and the entry window.

A "setup" is the indicator condition of crucible.md:

* A, bullish: EMA(fast) crosses ABOVE EMA(slow) on this bar (previous fast <= previous slow,
  now fast > slow), RSI in [rsi_min, rsi_max] (50-65), close > session VWAP -> buy calls.
  Bearish mirror: crosses below, RSI in [100-rsi_max, 100-rsi_min] (35-50), close < VWAP ->
  buy puts.
* B, bullish: RSI <= 30 and close <= lower Bollinger band -> calls. Bearish: RSI >= 70 and
  close >= upper band -> puts.
* C: no entries, no setups looked for.

A setup becomes an EntrySignal only if every gate passes; a setup that fails a gate becomes a
SignalRejected naming the gate, so the journal shows what was seen and why it was not taken.
Gates: live bar (history and backfill bars warm the indicators but never enter), not the
first bar after a gap, inside regular hours, the symbol allowed by the strategy AND the plan
AND not in the plan's earnings blackout, the bar's END inside the plan's entry window (ET),
and not within `no_entry_before_close_s` of the close (30 min: an early-close day shortens
the window instead of leaving a position no time to work), and a size multiplier above 0.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from config.gameplan import DEFAULT_ENTRY_WINDOW, Gameplan
from doctrine.params import StrategyParams, TradingStrategy, params_for, size_multiplier
from doctrine.sessions import et_epoch, utc_of
from messages.brain import Direction, EntrySignal, SignalRejected, Strategy
from messages.market import Right


class Reading(Protocol):
    """What a signal reads: `IndicatorValues` (hot path) and `IndicatorSnapshot` both fit."""

    @property
    def symbol(self) -> str: ...
    @property
    def close(self) -> float: ...
    @property
    def rsi(self) -> float | None: ...
    @property
    def ema_fast(self) -> float | None: ...
    @property
    def ema_slow(self) -> float | None: ...
    @property
    def prev_ema_fast(self) -> float | None: ...
    @property
    def prev_ema_slow(self) -> float | None: ...
    @property
    def vwap(self) -> float | None: ...
    @property
    def bb_upper(self) -> float | None: ...
    @property
    def bb_lower(self) -> float | None: ...
    @property
    def after_gap(self) -> bool: ...
    @property
    def live(self) -> bool: ...
    @property
    def bar_seconds(self) -> int: ...
    @property
    def end_epoch(self) -> float: ...
    @property
    def session_date(self) -> dt.date | None: ...


def momentum_setup(r: Reading, p: StrategyParams) -> tuple[Direction, tuple[str, ...]] | None:
    """Strategy A's condition on this bar, with the reasons, or None."""
    fast, slow, pf, ps = r.ema_fast, r.ema_slow, r.prev_ema_fast, r.prev_ema_slow
    if fast is None or slow is None or pf is None or ps is None:
        return None
    up = pf <= ps and fast > slow
    if not up and not (pf >= ps and fast < slow):
        return None                                  # no crossover: nearly every bar
    rsi, vwap = r.rsi, r.vwap
    if rsi is None or vwap is None:
        return None
    close = r.close
    if up:
        if p.rsi_min <= rsi <= p.rsi_max and close > vwap:
            return "bullish", (
                f"EMA fast {fast:.4f} crossed above EMA slow {slow:.4f} on this bar",
                f"RSI {rsi:.2f} in [{p.rsi_min:g}, {p.rsi_max:g}]",
                f"close {close:.4f} > session VWAP {vwap:.4f}")
        return None
    lo, hi = 100.0 - p.rsi_max, 100.0 - p.rsi_min
    if lo <= rsi <= hi and close < vwap:
        return "bearish", (
            f"EMA fast {fast:.4f} crossed below EMA slow {slow:.4f} on this bar",
            f"RSI {rsi:.2f} in [{lo:g}, {hi:g}]",
            f"close {close:.4f} < session VWAP {vwap:.4f}")
    return None


def reversion_setup(r: Reading, p: StrategyParams) -> tuple[Direction, tuple[str, ...]] | None:
    """Strategy B's condition on this bar, with the reasons, or None."""
    rsi, lower, upper = r.rsi, r.bb_lower, r.bb_upper
    if rsi is None or lower is None or upper is None:
        return None
    close = r.close
    if rsi <= p.rsi_oversold and close <= lower:
        return "bullish", (f"RSI {rsi:.2f} <= {p.rsi_oversold:g}",
                           f"close {close:.4f} <= lower Bollinger band {lower:.4f}")
    if rsi >= p.rsi_overbought and close >= upper:
        return "bearish", (f"RSI {rsi:.2f} >= {p.rsi_overbought:g}",
                           f"close {close:.4f} >= upper Bollinger band {upper:.4f}")
    return None


class EntryRules:
    """The entry gates of one gameplan, precomputed once per plan (not per bar)."""

    __slots__ = ("_windows", "no_entry_before_close_s", "params", "plan", "symbols", "window")

    def __init__(self, plan: Gameplan | None, *, no_entry_before_close_s: float = 1800.0) -> None:
        self.plan = plan
        self.params: dict[TradingStrategy, StrategyParams] = {
            "A": params_for("A", plan), "B": params_for("B", plan)}
        if plan is not None:
            blackout = set(plan.earnings_blackout)
            self.symbols = frozenset(s for s in plan.symbols if s not in blackout)
            self.window = plan.entry_window
        else:
            self.symbols = frozenset()
            self.window = DEFAULT_ENTRY_WINDOW
        self.no_entry_before_close_s = no_entry_before_close_s
        self._windows: dict[dt.date, tuple[float, float]] = {}

    def window_epochs(self, day: dt.date, close_s: float | None) -> tuple[float, float]:
        """[start, end) of entries on `day` in epoch seconds, clipped before the close."""
        cached = self._windows.get(day)
        if cached is not None:
            return cached
        start = et_epoch(day, self.window[0])
        end = et_epoch(day, self.window[1])
        if close_s is not None:
            end = min(end, close_s - self.no_entry_before_close_s)
        self._windows[day] = (start, end)
        return start, end

    def multiplier(self, strategy: Strategy) -> float:
        return size_multiplier(strategy, self.plan)


def evaluate_entry(r: Reading, strategy: Strategy, rules: EntryRules, *,
                   session_close_s: float | None,
                   multiplier: float | None = None) -> EntrySignal | SignalRejected | None:
    """The entry decision for one completed bar under the strategy in force.

    None when there is no setup (the common case: nothing to log), else a signal or a
    rejection naming the gate. `session_close_s` is the close of the bar's session (epoch s).
    """
    if strategy == "C" or not r.live:
        return None
    found = find_setup(r, strategy, rules)
    if found is None:
        return None
    return gate_entry(r, strategy, rules, found, session_close_s=session_close_s,
                      multiplier=multiplier)


def find_setup(r: Reading, strategy: TradingStrategy, rules: EntryRules
               ) -> tuple[Direction, tuple[str, ...]] | None:
    """The strategy's setup on this bar, or None (nearly every bar): the cheap first half of
    `evaluate_entry`, so a caller looks up what the gates need only when there is a setup."""
    p = rules.params[strategy]
    return momentum_setup(r, p) if strategy == "A" else reversion_setup(r, p)


def gate_entry(r: Reading, strategy: TradingStrategy, rules: EntryRules,
               found: tuple[Direction, tuple[str, ...]], *, session_close_s: float | None,
               multiplier: float | None = None) -> EntrySignal | SignalRejected:
    """The gates of `evaluate_entry` for a setup `find_setup` found on a live bar."""
    direction, reasons = found
    now_s = r.end_epoch
    symbol = r.symbol

    def reject(stage: str, reason: str) -> SignalRejected:
        return SignalRejected(ts=utc_of(now_s), symbol=symbol, strategy=strategy,
                              direction=direction, stage=stage, reason=reason)

    day = r.session_date
    if day is None or session_close_s is None:
        return reject("session", "bar outside regular trading hours")
    if r.after_gap:
        return reject("gap", "first bar after a gap: the crossover may span missing bars")
    symbols = rules.params[strategy].symbols
    if symbol not in symbols:
        return reject("symbol", f"strategy {strategy} trades {sorted(symbols)} only")
    if symbol not in rules.symbols:
        plan = rules.plan
        if plan is not None and symbol in plan.earnings_blackout:
            return reject("symbol", f"{symbol} is in the plan's earnings blackout")
        return reject("symbol", f"{symbol} is not in the plan's symbols "
                                f"{sorted(rules.symbols)}")
    start, end = rules.window_epochs(day, session_close_s)
    if not start <= now_s < end:
        return reject("window", f"outside the entry window {rules.window[0]:%H:%M}-"
                                f"{rules.window[1]:%H:%M} ET (or too close to the close)")
    mult = rules.multiplier(strategy) if multiplier is None else multiplier
    if not mult > 0:
        return reject("multiplier", "size multiplier is 0")
    right: Right = "C" if direction == "bullish" else "P"
    return EntrySignal(
        ts=utc_of(now_s), bar_ts=utc_of(now_s - r.bar_seconds), symbol=symbol,
        strategy=strategy, direction=direction, right=right, reasons=reasons,
        size_multiplier=mult, close=r.close, rsi=r.rsi, ema_fast=r.ema_fast,
        ema_slow=r.ema_slow, vwap=r.vwap, bb_upper=r.bb_upper, bb_lower=r.bb_lower)
