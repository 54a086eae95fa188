"""The backtest's statistics, from the closed trades alone (plain Python, no pandas).

Definitions (the report's footnotes repeat them):

* P&L is net of both commissions (doctrine/dry_run.Trade.pnl).
* Win: a trade with P&L > 0. Profit factor: gross profit / gross loss (inf without losses).
* Equity: closed-trade equity, the starting equity plus the P&L of the trades closed so far
  (the replay flattens at every session's end, so that is also the end-of-day equity).
* Max drawdown: the largest fall of that equity from its running peak (the start counts as
  a peak), in dollars and as a fraction of the peak.
* Sharpe: mean / sample standard deviation of the DAILY returns of the end-of-day equity
  over every replayed session (days without trades count as 0 %), times sqrt(252); none with
  fewer than two sessions or no variation.
* Exposure: time holding a position / time the market was open over the replayed sessions.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from doctrine.dry_run import Trade
from doctrine.sessions import et_date_of

TRADING_DAYS = 252


@dataclass(frozen=True, slots=True)
class GroupStats:
    label: str
    trades: int
    wins: int
    win_rate: float | None
    net_pnl: float
    gross_profit: float
    gross_loss: float
    avg_win: float | None
    avg_loss: float | None
    profit_factor: float | None
    max_drawdown: float
    max_drawdown_pct: float
    sharpe: float | None
    exposure: float
    commissions: float


def equity_after_trades(trades: Sequence[Trade], start: float) -> list[float]:
    """The closed-trade equity after each trade (in exit order), starting value first."""
    out = [start]
    for t in sorted(trades, key=lambda t: t.exit_s):
        out.append(out[-1] + t.pnl)
    return out


def max_drawdown(curve: Sequence[float]) -> tuple[float, float]:
    """(dollars, fraction of the peak) of the deepest fall from a running peak."""
    peak = -math.inf
    worst = 0.0
    worst_pct = 0.0
    for value in curve:
        peak = max(peak, value)
        fall = peak - value
        if fall > worst:
            worst = fall
            worst_pct = fall / peak if peak > 0 else 0.0
    return worst, worst_pct


def daily_equity(trades: Iterable[Trade], start: float,
                 sessions: Sequence[dt.date]) -> list[float]:
    """End-of-day closed-trade equity for each session (trades counted on their exit's ET day)."""
    by_day: dict[dt.date, float] = {}
    for t in trades:
        day = et_date_of(t.exit_s)
        by_day[day] = by_day.get(day, 0.0) + t.pnl
    out = []
    equity = start
    pending = sorted(by_day.items())
    i = 0
    for day in sessions:
        while i < len(pending) and pending[i][0] <= day:
            equity += pending[i][1]
            i += 1
        out.append(equity)
    return out


def sharpe(daily: Sequence[float], start: float) -> float | None:
    """Annualised Sharpe of daily returns (risk-free 0); None when undefined."""
    if len(daily) < 2:
        return None
    returns = []
    prev = start
    for value in daily:
        returns.append(value / prev - 1.0 if prev > 0 else 0.0)
        prev = value
    mean = sum(returns) / len(returns)
    var = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    if var <= 0:
        return None
    return mean / math.sqrt(var) * math.sqrt(TRADING_DAYS)


def group_stats(label: str, trades: Sequence[Trade], *, start: float,
                sessions: Sequence[dt.date], market_seconds: float) -> GroupStats:
    wins = [t.pnl for t in trades if t.pnl > 0]
    losses = [t.pnl for t in trades if t.pnl <= 0]
    gross_profit = sum(wins)
    gross_loss = -sum(losses)
    dd, dd_pct = max_drawdown(equity_after_trades(trades, start))
    held = sum(max(0.0, t.exit_s - t.entry_s) for t in trades)
    return GroupStats(
        label=label, trades=len(trades), wins=len(wins),
        win_rate=len(wins) / len(trades) if trades else None,
        net_pnl=sum(t.pnl for t in trades), gross_profit=gross_profit, gross_loss=gross_loss,
        avg_win=gross_profit / len(wins) if wins else None,
        avg_loss=-gross_loss / len(losses) if losses else None,
        profit_factor=(gross_profit / gross_loss if gross_loss > 0
                       else (math.inf if gross_profit > 0 else None)),
        max_drawdown=dd, max_drawdown_pct=dd_pct,
        sharpe=sharpe(daily_equity(trades, start, sessions), start),
        exposure=held / market_seconds if market_seconds > 0 else 0.0,
        commissions=sum(t.commissions for t in trades))


def grouped(trades: Sequence[Trade], key: Callable[[Trade], str], *, start: float,
            sessions: Sequence[dt.date], market_seconds: float) -> list[GroupStats]:
    """One GroupStats per distinct key, sorted by key."""
    groups: dict[str, list[Trade]] = {}
    for t in trades:
        groups.setdefault(key(t), []).append(t)
    return [group_stats(k, v, start=start, sessions=sessions, market_seconds=market_seconds)
            for k, v in sorted(groups.items())]


@dataclass(frozen=True, slots=True)
class BuyAndHold:
    """The underlying bought at the first session's first open, held to the last close."""

    symbol: str
    first_day: dt.date
    last_day: dt.date
    entry: float
    exit: float

    @property
    def return_pct(self) -> float:
        return self.exit / self.entry - 1.0

    def curve(self, closes: Sequence[float], start: float) -> list[float]:
        """`start` dollars invested at the entry, valued at each close."""
        return [start * c / self.entry for c in closes]
