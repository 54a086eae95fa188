"""When to close an open option position. Prices are the OPTION's premium, never the stock's.

The earlier bots priced exits from the underlying; here the position carries its entry
premium and every check compares the option's current mark (pass the bid: what a sell would
get) with it. Checks, first match wins:

1. emergency stop: premium down 40 % or more, whatever the strategy (also under C);
2. stop loss / 3. take profit: the strategy that OPENED the position (A -25/+15 %,
   B -15/+8 %, or the plan's overrides) keeps managing it after a pivot, even to C;
4. DTE force-close: days to expiry (calendar days, ET) at or below `force_close_dte`
   (3, or the plan's `hard_limits.force_close_at_dte`);
5. session end: within `flatten_before_close_s` (5 min) of the close, every position is
   closed. Holding overnight would leave an unattended position through the daily 16:30 ET
   Gateway restart and an overnight gap with no stop working; flat at the close is the safe
   default (early closes included, since the session close comes from the calendar);
6. time stop: held for the strategy's time stop (A 90 min, B 45 min).

Without a mark (no quote) the premium checks cannot run; the time-based ones still do.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from config.gameplan import Gameplan
from config.market_calendar import ET
from doctrine.params import EMERGENCY_STOP_PCT, TradingStrategy, force_close_dte, params_for
from doctrine.sessions import utc_of
from messages.brain import ExitReason, ExitSignal, Strategy
from messages.market import OptionSpec

_EPS = 1e-9
"""Premiums are quoted in cents: 2.30 over 2.00 is +15 % even if floats say 14.99999 %."""


@dataclass(frozen=True, slots=True)
class ExitRules:
    take_profit_pct: float | None
    stop_loss_pct: float | None
    time_stop_s: float | None
    emergency_stop_pct: float = EMERGENCY_STOP_PCT
    force_close_dte: int = 3
    flatten_before_close_s: float = 300.0

    @classmethod
    def for_strategy(cls, strategy: TradingStrategy, plan: Gameplan | None, *,
                     flatten_before_close_s: float = 300.0) -> ExitRules:
        p = params_for(strategy, plan)
        return cls(take_profit_pct=p.take_profit_pct, stop_loss_pct=p.stop_loss_pct,
                   time_stop_s=p.time_stop_minutes * 60.0,
                   force_close_dte=force_close_dte(plan),
                   flatten_before_close_s=flatten_before_close_s)

    @classmethod
    def unmanaged(cls, plan: Gameplan | None) -> ExitRules:
        """A position the doctrine did not open (found at reconciliation): emergency stop,
        DTE and session end only."""
        return cls(take_profit_pct=None, stop_loss_pct=None, time_stop_s=None,
                   force_close_dte=force_close_dte(plan))


@dataclass(frozen=True, slots=True)
class OpenPosition:
    """A long option position as the brain tracks it (premium per share, as quoted)."""

    symbol: str
    option: OptionSpec
    strategy: Strategy
    contracts: int
    entry_premium: float
    entry_s: float
    rules: ExitRules


def check_exit(pos: OpenPosition, *, mark: float | None, now_s: float, today: dt.date,
               session_close_s: float | None) -> tuple[ExitReason, str] | None:
    """The reason to close `pos` now, with a human-readable detail, or None to hold."""
    r = pos.rules
    if mark is not None and pos.entry_premium > 0:
        change = mark / pos.entry_premium - 1.0
        if change <= -r.emergency_stop_pct + _EPS:
            return "emergency_stop", (f"premium {mark:.2f} is {change:+.1%} from entry "
                                      f"{pos.entry_premium:.2f} (emergency stop "
                                      f"-{r.emergency_stop_pct:.0%})")
        if r.stop_loss_pct is not None and change <= -r.stop_loss_pct + _EPS:
            return "stop_loss", (f"premium {mark:.2f} is {change:+.1%} from entry "
                                 f"{pos.entry_premium:.2f} (stop -{r.stop_loss_pct:.0%})")
        if r.take_profit_pct is not None and change >= r.take_profit_pct - _EPS:
            return "take_profit", (f"premium {mark:.2f} is {change:+.1%} from entry "
                                   f"{pos.entry_premium:.2f} (target "
                                   f"+{r.take_profit_pct:.0%})")
    dte = (pos.option.expiry - today).days
    if dte <= r.force_close_dte:
        return "dte_force_close", f"{dte} day(s) to expiry <= {r.force_close_dte}"
    if session_close_s is not None and now_s >= session_close_s - r.flatten_before_close_s:
        close_et = utc_of(session_close_s).astimezone(ET)
        return "session_end", (f"{r.flatten_before_close_s / 60:g} min or less to the close "
                               f"at {close_et:%H:%M} ET: flat overnight")
    if r.time_stop_s is not None and now_s - pos.entry_s >= r.time_stop_s:
        return "time_stop", f"held {(now_s - pos.entry_s) / 60:.0f} min >= " \
                            f"{r.time_stop_s / 60:g} min"
    return None


def time_exit_at(pos: OpenPosition, *, today: dt.date, session_close_s: float | None) -> float:
    """The first instant of `today` at which `check_exit(pos, mark=None, ...)` names a reason
    (the DTE force-close, the session end or the time stop); -inf if one fires already.
    Replay skips the time-based checks of a calm position until then (a second earlier,
    so float rounding in `now - entry >= time_stop` cannot matter)."""
    r = pos.rules
    if (pos.option.expiry - today).days <= r.force_close_dte:
        return -math.inf
    at = math.inf
    if session_close_s is not None:
        at = session_close_s - r.flatten_before_close_s
    if r.time_stop_s is not None:
        at = min(at, pos.entry_s + r.time_stop_s)
    return at


def premium_band(pos: OpenPosition) -> tuple[float, float]:
    """(lo, hi): a mark strictly inside, by more than float error, fires none of the premium
    checks (emergency stop, stop loss, take profit); replay uses it to skip repricing a held
    option while its mark provably stays inside (see ModelQuotes.mark)."""
    r = pos.rules
    worst = r.emergency_stop_pct if r.stop_loss_pct is None else min(r.stop_loss_pct,
                                                                      r.emergency_stop_pct)
    hi = (pos.entry_premium * (1.0 + r.take_profit_pct) if r.take_profit_pct is not None
          else float("inf"))
    return pos.entry_premium * (1.0 - worst), hi


def exit_signal(pos: OpenPosition, reason: ExitReason, detail: str, *, mark: float | None,
                now_s: float) -> ExitSignal:
    pnl = None if mark is None or pos.entry_premium <= 0 else mark / pos.entry_premium - 1.0
    return ExitSignal(ts=utc_of(now_s), symbol=pos.symbol, option=pos.option,
                      strategy=pos.strategy, contracts=pos.contracts, reason=reason,
                      detail=detail, mark=mark, entry_premium=pos.entry_premium, pnl_pct=pnl)
