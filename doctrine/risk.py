"""The risk book: daily loss, pattern-day-trader count, weekly drawdown, kill switch, halts.

Everything here is fed with REAL numbers: realised P&L from our fills (option premiums and IB's
commissions), unrealised P&L from live option quotes, equity from the broker's NetLiquidation
(or, in dry-run, the starting equity plus realised P&L). The earlier bots never fed P&L to
their limits, counted PDT on entries and kept it in memory, so their limits could never trip.

Pure and persisted: ModeGuard saves `RiskState.to_dict()` after every change and restores it
at start, so a restart is never more permissive than the process that stopped (a halt for the
day survives it; day trades are remembered for five sessions). Choices where the doctrine is
silent:

* a day trade is a closing SELL order of a position opened on the same ET session date (the
  ledger says when each position was opened); one per closing order however many executions
  it took. The bot is flat at
  every close, so every position it opens today will be a day trade when it closes: an entry
  needs one day trade left beyond the positions already opened today;
* the plan's `pdt_trades_remaining` is the operator's count this morning: it can only lower
  the bot's own count (remaining = min(limit - used in 5 sessions, plan - used today));
* the daily loss limit is a fraction of the equity at the day's first reading, the lower of
  MAX_DAILY_LOSS_PCT and the plan's; P&L = realised today + unrealised at the bids. A breach
  flattens and halts for the rest of the ET day;
* the weekly drawdown governor compares equity with the week's first reading (ISO week, ET);
  at the doctrine's 15 % (or the plan's lower `max_weekly_drawdown_pct`) it forces Strategy C
  until the week ends.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from config.gameplan import Gameplan
from doctrine.binding import binding_mismatch
from messages.brain import EntrySignal, StrategyDecision
from messages.orders import FillReport, PositionView, ShortView

PDT_LIMIT = 3
PDT_WINDOW_SESSIONS = 5
WEEKLY_DRAWDOWN_PCT = 0.15
RISK_VERSION = 1
EXEC_ID_DAYS = 7


class RiskStateError(ValueError):
    """A persisted risk state that does not make sense (caller: fail closed, HALTED)."""


@dataclass(slots=True)
class DayTrade:
    day: dt.date
    option_key: str
    order_ref: str


@dataclass(slots=True)
class RiskState:
    day: dt.date | None = None
    day_start_equity: float | None = None
    realized_today: float = 0.0
    commissions_today: float = 0.0
    closing_orders_today: list[str] = field(default_factory=list)
    rejections_today: int = 0
    halted_day: dt.date | None = None
    halted_reason: str = ""
    day_trades: list[DayTrade] = field(default_factory=list)
    week: str | None = None
    week_start_equity: float | None = None
    governor: bool = False
    governor_reason: str = ""
    kill_switch: bool = False
    dry_run_realized_total: float = 0.0
    summary_day: dt.date | None = None
    exec_ids: dict[str, dt.date] = field(default_factory=dict)
    bound_mode: str | None = None        # the mode and account this state was written for
    bound_account: str | None = None     # (None: a file from before the binding)

    # -- the binding -----------------------------------------------------------------------
    def binding_problem(self, mode: str, account: str | None, *,
                        capital: float) -> str | None:
        """Why this risk state must not be used in `mode` on `account` (None: it may).

        Another mode's or account's losses, day trades and equity baselines are not this
        account's: a DRY_RUN state (STARTING_EQUITY's baseline) carried into PAPER would size
        the daily loss limit on money the account does not have. A file from before the
        binding is accepted only when nothing in it can loosen a limit: no profit booked today
        (it would widen today's loss room) and no day-start equity above BOT_CAPITAL_USD
        (`capital`: limits use at most that much); its losses, day trades, halts and kill
        switch only restrict.
        """
        if self.bound_mode is None:
            if self.realized_today > 0:
                return (f"it does not say which mode wrote it and books a profit today "
                        f"({self.realized_today:+.2f}) that would widen the loss room; "
                        f"running {mode}")
            if self.day_start_equity is not None and self.day_start_equity > capital:
                return (f"it does not say which mode wrote it and its day-start equity "
                        f"{self.day_start_equity:,.2f} is above BOT_CAPITAL_USD "
                        f"{capital:,.2f}; running {mode}")
            return None
        return binding_mismatch(self.bound_mode, self.bound_account, mode, account)

    def bind(self, mode: str, account: str | None = None) -> None:
        self.bound_mode = mode
        if account is not None:
            self.bound_account = account

    # -- the calendar ----------------------------------------------------------------------
    def roll(self, today: dt.date, equity: float | None) -> list[str]:
        """Start a new ET day / ISO week if `today` is one; returns what was reset."""
        notes: list[str] = []
        if self.day != today:
            cutoff = today - dt.timedelta(days=EXEC_ID_DAYS)
            self.exec_ids = {k: d for k, d in self.exec_ids.items() if d >= cutoff}
            self.day_trades = [t for t in self.day_trades
                               if t.day >= today - dt.timedelta(days=14)]
            if self.day is not None:
                notes.append(f"new trading day {today} (realised {self.realized_today:+.2f} "
                             f"on {self.day})")
            self.day = today
            self.day_start_equity = equity
            self.realized_today = 0.0
            self.commissions_today = 0.0
            self.closing_orders_today = []
            self.rejections_today = 0
        if self.halted_day is not None and self.halted_day < today:
            notes.append(f"daily halt of {self.halted_day} ended ({self.halted_reason})")
            self.halted_day, self.halted_reason = None, ""
        if self.day_start_equity is None and equity is not None:
            self.day_start_equity = equity
        week = week_key(today)
        if self.week != week:
            if self.week is not None and self.governor:
                notes.append(f"weekly governor of {self.week} released")
            self.week, self.week_start_equity = week, equity
            self.governor, self.governor_reason = False, ""
        elif self.week_start_equity is None and equity is not None:
            self.week_start_equity = equity
        return notes

    # -- fills -----------------------------------------------------------------------------
    def apply_fill(self, fill: FillReport, day: dt.date, *, dry_run: bool) -> DayTrade | None:
        """Book one fill once (by execId); returns the day trade it completed, if any."""
        if fill.exec_id in self.exec_ids:
            return None
        self.exec_ids[fill.exec_id] = day
        if day == self.day:
            self.realized_today += fill.realized_pnl
            self.commissions_today += fill.commission
        if dry_run:
            self.dry_run_realized_total += fill.realized_pnl
        if fill.side == "BUY":
            return None
        if day == self.day and fill.order_ref not in self.closing_orders_today:
            self.closing_orders_today.append(fill.order_ref)
        if fill.position_opened != day:
            return None                       # held overnight: no day trade
        if any(t.order_ref == fill.order_ref for t in self.day_trades):
            return None                       # a second execution of the same closing order
        trade = DayTrade(day, fill.option_key, fill.order_ref)
        self.day_trades.append(trade)
        return trade

    # -- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": RISK_VERSION,
            "day": _d(self.day), "day_start_equity": self.day_start_equity,
            "realized_today": self.realized_today, "commissions_today": self.commissions_today,
            "closing_orders_today": list(self.closing_orders_today),
            "rejections_today": self.rejections_today, "halted_day": _d(self.halted_day),
            "halted_reason": self.halted_reason,
            "day_trades": [[t.day.isoformat(), t.option_key, t.order_ref]
                           for t in self.day_trades],
            "week": self.week, "week_start_equity": self.week_start_equity,
            "governor": self.governor, "governor_reason": self.governor_reason,
            "kill_switch": self.kill_switch,
            "dry_run_realized_total": self.dry_run_realized_total,
            "summary_day": _d(self.summary_day),
            "exec_ids": {k: d.isoformat() for k, d in self.exec_ids.items()},
            "bound_mode": self.bound_mode, "bound_account": self.bound_account,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> RiskState:
        try:
            if doc.get("version") != RISK_VERSION:
                raise RiskStateError(f"risk state version {doc.get('version')!r}, expected "
                                     f"{RISK_VERSION}")
            s = cls(
                day=_d_in(doc["day"]), day_start_equity=_money_in(doc["day_start_equity"]),
                realized_today=_float(doc["realized_today"]),
                commissions_today=_float(doc["commissions_today"]),
                closing_orders_today=[str(r) for r in doc["closing_orders_today"]],
                rejections_today=int(doc["rejections_today"]),
                halted_day=_d_in(doc["halted_day"]), halted_reason=str(doc["halted_reason"]),
                day_trades=[DayTrade(dt.date.fromisoformat(d), str(k), str(r))
                            for d, k, r in doc["day_trades"]],
                week=None if doc["week"] is None else str(doc["week"]),
                week_start_equity=_money_in(doc["week_start_equity"]),
                governor=_bool(doc["governor"]), governor_reason=str(doc["governor_reason"]),
                kill_switch=_bool(doc["kill_switch"]),
                dry_run_realized_total=_float(doc["dry_run_realized_total"]),
                summary_day=_d_in(doc["summary_day"]),
                exec_ids={str(k): dt.date.fromisoformat(v)
                          for k, v in dict(doc["exec_ids"]).items()},
                bound_mode=_opt_str(doc.get("bound_mode")),
                bound_account=_opt_str(doc.get("bound_account")))
        except RiskStateError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RiskStateError(f"malformed risk state: {exc!r}") from exc
        if s.rejections_today < 0:
            raise RiskStateError("impossible counts in the risk state")
        return s


def _opt_str(value: object) -> str | None:
    """A binding field: absent in a file from before the binding."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise RiskStateError(f"malformed binding {value!r}")
    return value


# -- the numbers ----------------------------------------------------------------------------------


def week_key(day: dt.date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def day_trades_used(state: RiskState, window: Iterable[dt.date]) -> int:
    days = set(window)
    return sum(1 for t in state.day_trades if t.day in days)


def pdt_left(state: RiskState, *, window: Iterable[dt.date], today: dt.date,
             plan_remaining: int | None, limit: int = PDT_LIMIT) -> int:
    """Day trades still allowed: the rolling 5-session count, lowered by the plan's count."""
    left = limit - day_trades_used(state, window)
    if plan_remaining is not None:
        used_today = sum(1 for t in state.day_trades if t.day == today)
        left = min(left, plan_remaining - used_today)
    return max(0, left)


def opened_today(positions: Iterable[PositionView], today: dt.date) -> int:
    """Open positions that become day trades when closed today (flat at every close)."""
    return sum(1 for p in positions if p.opened_day == today and p.contracts > 0)


def unrealized(positions: Iterable[PositionView], marks: Mapping[str, float], *,
               missing_at_zero: bool = False) -> float:
    """Open P&L at the given marks (bids). A position without a mark counts at entry, or —
    `missing_at_zero`, the conservative reading the loss limit uses — at a bid of zero: a
    quote that stopped coming must not hide a loss."""
    total = 0.0
    for p in positions:
        mark = marks.get(p.option_key)
        if mark is None:
            if not missing_at_zero:
                continue
            mark = 0.0
        total += (mark - p.entry_premium) * p.contracts * p.option.multiplier
    return total


def short_unrealized(shorts: Iterable[ShortView], asks: Mapping[str, float]) -> float:
    """Open P&L of SHORT positions (never ours, an alarm) at the ask it costs to buy them back;
    without a fresh ask, conservatively at twice the credit received (a 100 % loss)."""
    total = 0.0
    for s in shorts:
        ask = asks.get(s.option_key)
        cost = ask if ask is not None else 2.0 * s.credit
        total += (s.credit - cost) * s.contracts * s.option.multiplier
    return total


def loss_limit(day_start_equity: float | None, settings_pct: float,
               plan_pct: float | None) -> float | None:
    """The day's loss budget in dollars (None: equity unknown)."""
    if day_start_equity is None or not day_start_equity > 0:
        return None
    pct = settings_pct if plan_pct is None else min(settings_pct, plan_pct)
    return day_start_equity * pct


def daily_loss_breached(pnl_today: float, limit: float | None) -> bool:
    return limit is not None and limit > 0 and pnl_today < 0 and -pnl_today >= limit - 1e-9


def drawdown(week_start_equity: float | None, equity: float | None) -> float | None:
    if week_start_equity is None or equity is None or not week_start_equity > 0:
        return None
    return max(0.0, (week_start_equity - equity) / week_start_equity)


def governor_due(state: RiskState, equity: float | None, plan_pct: float | None) -> str | None:
    """Why the weekly governor must engage now (None: it need not)."""
    dd = drawdown(state.week_start_equity, equity)
    limit = WEEKLY_DRAWDOWN_PCT if plan_pct is None else min(WEEKLY_DRAWDOWN_PCT, plan_pct)
    if dd is not None and dd >= limit - 1e-9:
        return (f"weekly drawdown {dd:.1%} >= {limit:.0%} (week start equity "
                f"${state.week_start_equity:,.2f}, now ${equity:,.2f})")
    return None


@dataclass(frozen=True, slots=True)
class EntryGate:
    """Everything one entry decision needs, as plain values (the tests build these)."""

    symbol: str
    signal_age_s: float
    max_signal_age_s: float
    trading_active: bool
    trading_reasons: tuple[str, ...]
    equity: float | None
    loss_limit: float | None
    pnl_today: float
    marks_complete: bool
    pdt_enabled: bool
    pdt_left: int
    opened_today: int
    governor: bool
    busy_symbols: frozenset[str]
    pivots: int
    max_pivots: int | None


def entry_refusal(g: EntryGate) -> str | None:
    """Why this entry may not proceed (first reason), or None. Unknown means no."""
    if not g.trading_active:
        return "trading not ACTIVE: " + (", ".join(g.trading_reasons) or "unknown")
    if not (g.signal_age_s <= g.max_signal_age_s):
        return f"signal is {g.signal_age_s:.0f}s old (> {g.max_signal_age_s:.0f}s)"
    if g.equity is None or not (g.equity > 0 and math.isfinite(g.equity)):
        return "account equity unknown"
    if g.loss_limit is None:
        return "daily loss budget unknown"
    if g.loss_limit <= 0:
        return "no daily loss budget (limit 0)"
    if g.pnl_today < 0 and -g.pnl_today >= g.loss_limit - 1e-9:
        return f"daily loss {g.pnl_today:,.2f} reached the limit {g.loss_limit:,.2f}"
    if not g.marks_complete:
        return "an open position has no live quote: P&L unknown"
    if g.governor:
        return "weekly drawdown governor active"
    if g.max_pivots is not None and g.pivots > g.max_pivots:
        return f"{g.pivots} strategy pivots > {g.max_pivots}"
    if g.symbol in g.busy_symbols:
        return f"a {g.symbol} position or entry is already open"
    if g.pdt_enabled and g.pdt_left - g.opened_today < 1:
        return (f"PDT: {g.pdt_left} day trade(s) left and {g.opened_today} position(s) "
                "opened today still to close")
    return None


# -- helpers --------------------------------------------------------------------------------------


def _d(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _d_in(value: Any) -> dt.date | None:
    return dt.date.fromisoformat(str(value)) if value is not None else None


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"not a number: {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"not a finite number: {value!r}")
    return x


def _money_in(value: Any) -> float | None:
    return None if value is None else _float(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"not a boolean: {value!r}")
    return value


def plan_refusal(sig: EntrySignal, plan: Gameplan | None,
                 decision: StrategyDecision | None) -> str | None:
    """Defence in depth: an entry signal today's gameplan and decision do not allow.

    The StrategySelector should never send one; if it does (a bug, a stale signal across a
    plan change), the approval is refused and journaled. Without a gameplan there is nothing
    to check against (the selector then stays in Strategy C and sends no signal).
    """
    if plan is None:
        return None
    if plan.strategy == "C":
        return "today's gameplan allows no entries (Strategy C)"
    if sig.symbol not in plan.symbols:
        return f"{sig.symbol} is not in today's gameplan ({', '.join(plan.symbols)})"
    if sig.symbol in plan.earnings_blackout:
        return f"{sig.symbol} is in the gameplan's earnings blackout"
    if decision is not None and decision.strategy != sig.strategy:
        return (f"signal for Strategy {sig.strategy} but the strategy in force is "
                f"{decision.strategy}")
    return None
