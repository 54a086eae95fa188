"""The money path's vocabulary: intents, order events, and the order requests to GatewayLink.

Channels:
    ModeGuard ──orders──▶ OrderRouter          EntryIntent, ExitIntent, CancelEntries,
                                               SessionVerdict, EntryRefused, DaySummary
    OrderRouter ──order_events──▶ ModeGuard    FillReport, PositionsReport, IntentUpdate,
                                               AccountReport, RouterStatus
    OrderRouter ──link_requests──▶ GatewayLink PlaceOrders, CancelOrder, OpenOrdersRequest,
                                               CompletedOrdersRequest, ExecutionsRequest,
                                               PositionsRequest, AccountValuesRequest
    GatewayLink ──broker_events──▶ OrderRouter BrokerOrderStatus, BrokerExecution,
                                               BrokerCommission, BrokerOrderError

Every price here is an OPTION premium per share (IB quotes options per share; a contract is
`multiplier` shares): the earlier bots read the underlying's price as the premium. Broker
messages carry the session they came from, so the router can tell a stale answer from a
fresh one. No ib_async object ever appears in a message: the handlers copy plain values.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from messages.base import Message, UtcDatetime
from messages.brain import EntrySignal, ExitReason, Strategy
from messages.market import OptionSpec

Side = Literal["BUY", "SELL"]
OrderType = Literal["LMT", "STP", "MKT"]
ExitWhy = ExitReason | Literal["daily_loss", "kill_switch", "operator", "unmanaged"]
"""Why a position is closed: a doctrine exit rule, or a risk action that flattens."""

IntentKind = Literal["entry", "exit"]
IntentState = Literal["pending", "working", "filled", "cancelled", "rejected", "expired"]
TERMINAL_STATES: frozenset[str] = frozenset({"filled", "cancelled", "rejected", "expired"})


# -- ModeGuard -> OrderRouter --------------------------------------------------------------------


class SizingBudget(Message):
    """The money that one entry may use, decided by ModeGuard from real equity."""

    equity: float = Field(gt=0, allow_inf_nan=False)
    account_max_position_pct: float = Field(gt=0, le=1)
    max_risk_per_trade: float | None = None
    max_risk_ceiling: float | None = None
    max_single_position: float | None = None


class EntryIntent(Message):
    """An entry ModeGuard approved: OrderRouter picks the option, sizes it and submits it.

    `intent_id` is the idempotency key: it becomes the entry order's orderRef.
    """

    intent_id: str
    ts: UtcDatetime
    deadline: UtcDatetime                 # not filled by then: cancelled (expired)
    signal: EntrySignal
    budget: SizingBudget


class ExitIntent(Message):
    """Close one open position (by option key) now. Retried until done; never dropped."""

    intent_id: str
    ts: UtcDatetime
    option_key: str
    reason: ExitWhy
    detail: str = ""
    mark: float | None = None
    urgent: bool = False                  # a flatten (risk, kill switch): price to fill


class CancelEntries(Message):
    """Cancel every working entry order (halt, kill switch, mode mismatch)."""

    ts: UtcDatetime
    reason: str


class SessionVerdict(Message):
    """ModeGuard's mode check of one Gateway session: the router writes only on `ok` ones."""

    session_id: int
    ok: bool
    reason: str


class EntryRefused(Message):
    """An entry signal ModeGuard did not approve (for the trade journal)."""

    intent_id: str
    ts: UtcDatetime
    signal: EntrySignal
    reason: str


class DaySummary(Message):
    """The session's numbers, at the close (for the trade journal)."""

    ts: UtcDatetime
    day: dt.date
    trades: int
    pnl: float
    pdt_left: int | None
    rejections: int


# -- OrderRouter -> ModeGuard --------------------------------------------------------------------


class PositionView(Message):
    """One open long option position as the ledger holds it (premiums per share)."""

    option_key: str
    option: OptionSpec
    contracts: int
    entry_premium: float
    entry_ts: UtcDatetime
    opened_day: dt.date
    strategy: Strategy
    protected: bool = False               # a native take-profit/stop-loss pair is working
    exiting: bool = False                 # an exit intent is in progress
    managed: bool = True                  # False: found at reconciliation, not ours


class ShortView(Message):
    """A SHORT option position at the broker. Never the bot's intent: an alarm (entries halt,
    it is marked at the ask and counts against the daily loss; the operator closes it)."""

    option_key: str
    option: OptionSpec
    contracts: int = Field(gt=0)          # how many contracts are short
    credit: float                         # premium received per share (IB avgCost / multiplier)


class PositionsReport(Message):
    ts: UtcDatetime
    positions: tuple[PositionView, ...]
    shorts: tuple[ShortView, ...] = ()


class FillReport(Message):
    """One execution of one of our orders, with its commission and realised P&L (dollars)."""

    ts: UtcDatetime
    exec_id: str
    order_ref: str
    intent_id: str | None
    option_key: str
    side: Side
    contracts: int
    price: float
    commission: float
    realized_pnl: float                   # net of this fill's commission; -commission on buys
    opening: bool
    mode: str
    position_opened: dt.date | None = None    # ET day the traded position was opened (PDT)


class IntentUpdate(Message):
    ts: UtcDatetime
    intent_id: str
    kind: IntentKind
    state: IntentState
    option_key: str | None = None
    filled: int = 0
    reason: str = ""

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


class AccountReport(Message):
    """The account's NetLiquidation as the Gateway reports it (None: not known)."""

    ts: UtcDatetime
    session_id: int
    net_liquidation: float | None
    error: str | None = None


class RouterStatus(Message):
    """Whether the router has reconciled the current session (entries wait for it)."""

    ts: UtcDatetime
    session_id: int
    reconciled: bool
    fault: str | None = None
    detail: str = ""


# -- OrderRouter -> GatewayLink (requests) -------------------------------------------------------


class OrderLeg(Message):
    """One order of a submission. `ref` becomes the orderRef (our idempotency key)."""

    ref: str
    action: Side
    quantity: int = Field(gt=0)
    order_type: OrderType
    limit: float | None = None
    stop: float | None = None
    tif: Literal["DAY", "GTC"] = "DAY"


class PlaceOrders(Message):
    """Place one order, or a native bracket (parent first; children get its order id)."""

    option: OptionSpec
    legs: tuple[OrderLeg, ...]
    bracket: bool = False


class PlacedOrders(Message):
    """The order ids the Gateway session gave the legs, in the same order."""

    order_ids: tuple[int, ...]
    client_id: int
    session_id: int


class CancelOrder(Message):
    order_id: int
    order_ref: str = ""


class GlobalCancel(Message):
    """IB's reqGlobalCancel: every open order of the account, whatever client id placed it.
    The kill switch's last resort in PAPER when a 326 left the bracket under another id."""


class OpenOrdersRequest(Message):
    """Every working order of the account (all client ids)."""


class CompletedOrdersRequest(Message):
    """Orders that ended today (filled, cancelled, rejected)."""


class ExecutionsRequest(Message):
    """Executions since `since` (None: all the Gateway still reports, i.e. today's)."""

    since: UtcDatetime | None = None


class PositionsRequest(Message):
    pass


class AccountValuesRequest(Message):
    pass


# -- GatewayLink -> OrderRouter (replies and pushed events) --------------------------------------


class BrokerOrder(Message):
    """An order as the Gateway describes it (open or completed)."""

    session_id: int
    order_id: int
    perm_id: int
    client_id: int
    order_ref: str
    parent_id: int = 0
    action: str
    quantity: float
    order_type: str
    limit: float | None = None
    stop: float | None = None
    status: str
    filled: float = 0.0
    remaining: float = 0.0
    con_id: int = 0
    option: OptionSpec | None = None


class BrokerOrders(Message):
    session_id: int
    orders: tuple[BrokerOrder, ...]


class BrokerExecution(Message):
    session_id: int
    exec_id: str
    order_id: int
    perm_id: int
    client_id: int
    order_ref: str
    con_id: int
    symbol: str
    sec_type: str
    option: OptionSpec | None = None
    side: Literal["BOT", "SLD"]
    shares: float
    price: float
    time: UtcDatetime
    commission: float | None = None
    realized_pnl: float | None = None


class BrokerExecutions(Message):
    session_id: int
    fills: tuple[BrokerExecution, ...]


class BrokerCommission(Message):
    session_id: int
    exec_id: str
    commission: float
    realized_pnl: float | None = None


class BrokerOrderStatus(Message):
    session_id: int
    order_id: int
    perm_id: int
    client_id: int
    order_ref: str
    status: str
    filled: float
    remaining: float
    avg_fill_price: float = 0.0
    ts: UtcDatetime


class BrokerOrderError(Message):
    """A status/error code about one of our orders (201 rejected, 202 cancelled, 10147 …)."""

    session_id: int
    order_id: int
    client_id: int = -1
    order_ref: str = ""
    code: int
    text: str
    ts: UtcDatetime


class BrokerPosition(Message):
    account: str
    con_id: int
    symbol: str
    sec_type: str
    option: OptionSpec | None = None
    quantity: float
    avg_cost: float          # IB's avgCost: per contract, multiplier and commissions included


class BrokerPositions(Message):
    session_id: int
    positions: tuple[BrokerPosition, ...]


class AccountValues(Message):
    session_id: int
    net_liquidation: float | None
    currency: str = "USD"
    values: dict[str, str] = Field(default_factory=dict)


# -- one union per channel (a `match` over it is checked exhaustive by mypy) ---------------------

OrderCommand = EntryIntent | ExitIntent | CancelEntries | SessionVerdict | EntryRefused | \
    DaySummary
"""ModeGuard ──orders──▶ OrderRouter."""

OrderEvent = FillReport | PositionsReport | IntentUpdate | AccountReport | RouterStatus
"""OrderRouter ──order_events──▶ ModeGuard."""

BrokerEvent = BrokerOrderStatus | BrokerExecution | BrokerCommission | BrokerOrderError
"""GatewayLink ──broker_events──▶ OrderRouter (pushed order events)."""
