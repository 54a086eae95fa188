"""The status read-model: what the operator's views (console, /health, Notifier) may read.

Each value has exactly one writer, the actor that owns the facts, and is published as a latest
value (`Wiring.book`, `Wiring.risk`, `Wiring.resources`); readers never reach into an actor.

    OrderRouter   ──book──▶      positions with marks and protection, working orders, P&L
    ModeGuard     ──risk──▶      every limit's use: daily loss, PDT, pivots, governor, capital
    ResourceProbe ──resources──▶ the last sample of the machine and the process

A value is replaced whole on every change (frozen models): a reader holding one sees a
consistent picture, never a half-updated one.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from messages.base import Message, UtcDatetime

Protection = Literal["native", "watched", "none", "exiting"]
"""How a position is protected: a native take-profit/stop pair working at the broker; watched by
the bot's own exit rules only (dry-run, or between a cancel and its replacement); none (the
operator must know); exiting (a sell is working)."""


class PositionStatus(Message):
    """One open option position as the operator should see it."""

    option_key: str
    symbol: str
    right: Literal["C", "P"]
    strike: float
    expiry: dt.date
    contracts: int                       # > 0 long; < 0 short (never ours: an alarm)
    entry_premium: float                 # per share
    mark: float | None                   # per share; None: no usable quote
    mark_ts: UtcDatetime | None = None
    mark_stale: bool = False             # the mark is older than the staleness bound
    unrealized_pnl: float | None = None  # USD, at the conservative mark (bid; 0 when missing)
    protection: Protection
    strategy: str = ""
    opened_ts: UtcDatetime | None = None
    managed: bool = True                 # False: found at the broker, not placed by this bot


class WorkingOrder(Message):
    """One order the bot has working (or believes it has: `state` says which)."""

    order_ref: str
    option_key: str
    action: Literal["BUY", "SELL"]
    quantity: int
    filled: int = 0
    order_type: str
    limit: float | None = None
    stop: float | None = None
    state: str                           # submitting, working, cancelling, unknown, ...
    purpose: str = ""                    # entry, take_profit, stop_loss, exit
    client_id: int | None = None
    since: UtcDatetime | None = None


class BookStatus(Message):
    """OrderRouter's view of the book: published after every change."""

    ts: UtcDatetime
    mode: str
    positions: tuple[PositionStatus, ...] = ()
    orders: tuple[WorkingOrder, ...] = ()
    realized_pnl_today: float = 0.0      # USD, net of commissions, ET trading day
    unrealized_pnl: float = 0.0          # USD, conservative marks
    trades_today: int = 0
    reconciled: bool = False             # the ledger agrees with the latest broker snapshot


class LimitUse(Message):
    """One limit and how much of it is used, in the limit's own unit."""

    name: str                            # daily_loss, pdt, pivots, capital, position
    used: float
    limit: float | None                  # None: no limit applies (e.g. PDT off)
    unit: Literal["usd", "count", "pct"]
    detail: str = ""


class RiskStatus(Message):
    """ModeGuard's view of the risk book: published after every change."""

    ts: UtcDatetime
    trading_state: str
    reasons: tuple[str, ...] = ()
    kill_switch: bool = False
    governor: bool = False               # weekly drawdown governor engaged
    equity_usd: float | None = None      # the account's equity (dry-run: the simulated one)
    capital_usd: float | None = None     # the smaller of BOT_CAPITAL_USD and the equity
    limits: tuple[LimitUse, ...] = ()


class ResourceStatus(Message):
    """ResourceProbe's last sample. None: not measured (e.g. no loop lag on a virtual clock,
    no CPU figure before the second sample)."""

    ts: UtcDatetime
    cpu_pct: float | None = None
    rss_mb: float | None = None
    log_dir_mb: float | None = None
    disk_free_gb: float | None = None
    loop_lag_ms: float | None = None
    level: Literal["ok", "warning", "critical"] = "ok"
