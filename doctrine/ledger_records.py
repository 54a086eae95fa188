"""The order ledger's records: what is kept per intent, order, position and fill, and
what a change or a reconciliation reports. Plain data; the rules live in doctrine/ledger.py."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from messages.brain import Strategy
from messages.market import OptionSpec
from messages.orders import (
    TERMINAL_STATES,
    BrokerExecution,
    BrokerOrder,
    BrokerPosition,
    IntentKind,
    IntentState,
    Side,
)

Role = Literal["entry", "take_profit", "stop_loss", "exit"]
OrderStatus = Literal["new", "submitting", "working", "filled", "cancelled", "rejected"]
ORDER_TERMINAL: frozenset[str] = frozenset({"filled", "cancelled", "rejected"})


# -- records ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class OrderRec:
    ref: str
    intent_id: str
    role: Role
    action: Side
    quantity: int
    order_type: str
    limit: float | None
    stop: float | None
    created: dt.datetime
    updated: dt.datetime
    status: OrderStatus = "new"
    order_id: int | None = None
    perm_id: int | None = None
    client_id: int | None = None
    epoch: int | None = None         # the ledger epoch (broker session) it was sent in
    filled: int = 0
    avg_price: float = 0.0
    cancel_requested: dt.datetime | None = None
    error: str = ""

    @property
    def terminal(self) -> bool:
        return self.status in ORDER_TERMINAL

    @property
    def live(self) -> bool:
        """At the broker or possibly at the broker (a send whose answer we never got)."""
        return self.status in ("submitting", "working")


@dataclass(slots=True)
class IntentRec:
    intent_id: str
    kind: IntentKind
    created: dt.datetime
    strategy: Strategy
    symbol: str
    state: IntentState = "pending"
    option: OptionSpec | None = None
    contracts: int = 0
    deadline: dt.datetime | None = None
    refs: list[str] = field(default_factory=list)
    reason: str = ""
    terminal_at: dt.datetime | None = None
    cancel_why: str = ""             # entries: "expired" (deadline) or why they were cancelled
    exit_reason: str = ""
    urgent: bool = False
    attempts: int = 0

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def option_key(self) -> str | None:
        return self.option.key if self.option is not None else None


@dataclass(slots=True)
class PositionRec:
    option: OptionSpec
    contracts: int
    avg_premium: float
    entry_ts: dt.datetime
    opened_day: dt.date
    strategy: Strategy
    entry_intent: str | None = None
    managed: bool = True
    child_refs: list[str] = field(default_factory=list)
    exit_intent: str | None = None

    @property
    def key(self) -> str:
        return self.option.key


@dataclass(slots=True)
class FillRec:
    exec_id: str
    ref: str
    intent_id: str
    option_key: str
    side: Side
    contracts: int
    price: float
    time: dt.datetime
    opening: bool
    gross_pnl: float                 # realised before commissions (0 for opening fills)
    commission: float | None = None
    reported: bool = False
    opened_day: dt.date | None = None   # the ET day the position it traded was opened

    @property
    def realized_pnl(self) -> float:
        return self.gross_pnl - (self.commission or 0.0)


@dataclass(frozen=True, slots=True)
class Change:
    """One intent state transition, for the journal and ModeGuard (terminal ones once)."""

    intent_id: str
    kind: IntentKind
    state: IntentState
    option_key: str | None
    filled: int
    reason: str
    at: dt.datetime


@dataclass(slots=True)
class Snapshot:
    """A complete set of broker answers taken on one session (any missing: no snapshot)."""

    epoch: int
    open_orders: list[BrokerOrder]
    completed_orders: list[BrokerOrder]
    executions: list[BrokerExecution]
    positions: list[BrokerPosition]


@dataclass(slots=True)
class ReconcileReport:
    applied_fills: list[FillRec] = field(default_factory=list)
    resubmit: list[str] = field(default_factory=list)       # intent ids to (re)send now
    notes: list[str] = field(default_factory=list)          # what changed, for the log
    warnings: list[str] = field(default_factory=list)       # the operator must hear these
    critical: list[str] = field(default_factory=list)
    suspects: int = 0                                       # position differences to confirm
    lost: list[str] = field(default_factory=list)           # orders declared lost


class LedgerError(ValueError):
    """A persisted ledger that does not make sense (caller: fail closed)."""
