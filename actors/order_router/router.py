"""OrderRouter: the order ledger, the broker conversation, dry-run fills and reconciliation.

It turns ModeGuard's approved intents into orders and the broker's answers into fills and
positions, and it keeps one ledger (doctrine/ledger.py: our intent id <-> orderRef <-> IB
orderId <-> permId) persisted in STATE_DIR after every change, so the ledger outlives Gateway
sessions, its own restarts and the process.

* Entries: the option is chosen and sized by the doctrine (expiry, strike, liquidity,
  affordability, size from the budget ModeGuard computed from real equity; zero contracts is a
  rejection, never a 1-lot) against a LIVE quote of the option. DRY_RUN fills it at the ask
  plus slippage with IB's option commission and sends nothing to the Gateway (the session is
  read-only and the order handlers refuse anyway). PAPER/LIVE send an entry LMT with a native
  bracket (take-profit LMT, stop-loss STP) priced on the option premium.
* Idempotency: the intent id is the orderRef. An order is marked `submitting` and persisted
  before it is sent; after a lost reply, a reconnect or a crash it is looked up at the broker
  by orderRef, and sent again only when a complete reconciliation on a later session shows the
  broker never got it.
* Every new session (and every minute): open orders, completed orders, executions and
  positions, all four or nothing (an unknown answer changes nothing; an empty position list
  from a failed request is never read as "flat"). Entries past their deadline are cancelled;
  exits are worked until the position is flat: bracket children cancelled first (a sell never
  exceeds the long position), then a marketable limit, re-priced and retried with backoff.
* Everything goes to the event journal and to `logs/trades.jsonl` (decisions, orders, fills,
  exits, P&L), and fills, positions and intent outcomes go to ModeGuard (`order_events`).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, assert_never

import trio

from config.gameplan import Gameplan
from config.settings import Mode
from doctrine.dry_run import FillModel
from doctrine.ledger import (
    Change,
    FillRec,
    IntentRec,
    Ledger,
    LedgerError,
    OrderRec,
    Snapshot,
    round_price,
)
from doctrine.options import (
    EntryPlan,
    OptionQuote,
    Refusal,
    RiskBudget,
    choose_expiry,
    choose_strike,
    entry_min_dte,
    plan_option_entry,
)
from doctrine.params import force_close_dte, params_for
from messages.base import Message
from messages.control import TradingState, TradingStatus
from messages.link import LinkState, OptionChain, OptionChainRequest
from messages.market import OptionSpec, Quote
from messages.orders import (
    AccountReport,
    AccountValues,
    AccountValuesRequest,
    BrokerCommission,
    BrokerExecution,
    BrokerExecutions,
    BrokerOrderError,
    BrokerOrders,
    BrokerOrderStatus,
    BrokerPosition,
    BrokerPositions,
    CancelEntries,
    CancelOrder,
    CompletedOrdersRequest,
    DaySummary,
    EntryIntent,
    EntryRefused,
    ExecutionsRequest,
    ExitIntent,
    FillReport,
    IntentState,
    IntentUpdate,
    OpenOrdersRequest,
    OrderCommand,
    OrderEvent,
    OrderLeg,
    PlacedOrders,
    PlaceOrders,
    PositionsReport,
    PositionsRequest,
    PositionView,
    RouterStatus,
    SessionVerdict,
    ShortView,
)
from messages.status import BookStatus
from runtime.gateway.link_client import (
    Envelope,
    LinkClient,
    LinkError,
    LinkUnavailable,
    RequestFailed,
    RequestTimeout,
)
from runtime.infra.state_store import StateStore, StateUnreadable
from runtime.supervision.actor import ActorContext
from runtime.supervision.channels import Latest
from runtime.supervision.ordered import OrderedSender

from .book import build_book
from .gate import GateView, SellView, entry_refusal, replace_refusal, sell_refusal
from .journal import TRADES_FILE, TradeJournal

# -- inbox and outbox -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Inbox:
    orders: trio.MemoryReceiveChannel[OrderCommand]     # from ModeGuard
    broker: trio.MemoryReceiveChannel[Message]          # pushed by GatewayLink
    link_state: Latest[LinkState]
    quotes: Latest[Mapping[str, Quote]]
    gameplan: Latest[Gameplan | None]
    trading: Latest[TradingStatus]                      # ModeGuard's: the gate reads it


@dataclass(frozen=True)
class Outbox:
    order_events: trio.MemorySendChannel[OrderEvent]    # to ModeGuard
    link_requests: trio.MemorySendChannel[Envelope]
    wanted_quotes: Latest[frozenset[OptionSpec]]
    book: Latest[BookStatus | None] | None = None       # the status read-model (one writer)


STATE_NAME = "ledger"
TUNING_SERVICE = "order_router.tuning"
FEE_PER_CONTRACT_ROUND_TRIP = 2 * 0.65
"""Sizing counts IB's option commission both ways (the doctrine's fee per contract)."""


@dataclass(frozen=True)
class Tuning:
    """Timings; trio seconds unless named market seconds (tests and the soak shorten some)."""

    request_timeout: float = 15.0
    quote_wait: float = 10.0                 # for a candidate's first two-sided quote
    quote_max_age_market_s: float = 180.0    # an older quote is no price to trade at
    reconcile_every: float = 60.0
    recheck_after: float = 2.0               # a position difference is confirmed this soon
    account_every: float = 30.0
    positions_every: float = 10.0            # ModeGuard hears the positions at least this often
    exit_reprice_market_s: float = 30.0      # an exit limit works this long, then re-priced
    cancel_resend: float = 10.0
    housekeeping_every: float = 1.0          # deadlines and resends are checked this often
    commission_wait: float = 5.0
    retry_min: float = 1.0
    retry_max: float = 60.0
    exit_alert_after: int = 5                # failed exit attempts before a critical alert
    cancel_alert_after: int = 5              # unconfirmed cancel requests before one
    urgent_concession: float = 0.05          # an urgent exit sells this far under the bid
    slippage: float = 0.0                    # dry-run fills (per share)
    lost_after_market_s: float = 90.0        # an order of this session the broker does not
                                             # know this long after sending it: lost


# -- the actor ------------------------------------------------------------------------------------


async def run(ctx: ActorContext, inbox: Inbox, outbox: Outbox, *,
              tuning: Tuning | None = None, process_id: str | None = None,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """`process_id`: the same for every incarnation in one process (the ledger's epoch key)."""
    router = _Router(ctx, inbox, outbox, tuning or Tuning(),
                     process_id or uuid.uuid4().hex[:8])
    try:
        router.restore()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(router.events_out.pump)
            task_status.started()
            if router.fault is not None:
                await router.idle_in_fault()
            router.nursery = nursery
            nursery.start_soon(router.intake)
            nursery.start_soon(router.broker_events)
            nursery.start_soon(router.sessions)
            nursery.start_soon(router.housekeeping)
            nursery.start_soon(router.watch_trading)
            for intent in router.ledger.open_intents("exit"):
                router.start_exit(intent.intent_id)
    finally:
        router.trades.close()


class _Router:
    def __init__(self, ctx: ActorContext, inbox: Inbox, outbox: Outbox, tuning: Tuning,
                 process_id: str) -> None:
        self.ctx = ctx
        self.inbox = inbox
        self.outbox = outbox
        self.tuning = tuning
        self.mode = ctx.settings.mode
        self.store = StateStore(ctx.settings.state_dir)
        self.trades = TradeJournal(ctx.settings.log_dir / TRADES_FILE)
        self.client = LinkClient(outbox.link_requests, inbox.link_state)
        self.events_out = OrderedSender(outbox.order_events)
        self.fills = FillModel(slippage=tuning.slippage)
        self.process = process_id
        self.ledger = Ledger()
        self.fault: str | None = None
        self.persist_error: str | None = None
        self.nursery: trio.Nursery | None = None
        self.session = 0                      # the link session being served
        self.reconciled = 0                   # the session whose reconciliation completed
        self.verdicts: dict[int, bool] = {}
        self.candidates: dict[str, OptionSpec] = {}
        self.exit_tasks: set[str] = set()
        self.cancel_sent: dict[str, float] = {}
        self.cancel_tries: dict[str, int] = {}
        self.foreign_alerted: set[str] = set()
        self.reconcile_soon = trio.Event()
        self._pulse = trio.Event()
        self._last_positions: tuple[PositionView, ...] | None = None
        self._positions_sent_at = -math.inf
        self._exit_failures: dict[str, int] = {}
        self._saved: dict[str, Any] | None = None      # what the state file holds
        # the latest COMPLETE broker position snapshot (option key -> contracts, signed), and
        # the session it was taken on: a sell never exceeds it (gate.py)
        self.broker_held: dict[str, int] | None = None
        self.broker_held_session = 0
        self.shorts: dict[str, BrokerPosition] = {}       # short options at the broker (alarm)
        self.choosing: dict[str, trio.CancelScope] = {}   # entries still being chosen
        self.resubmitting: set[str] = set()

    # -- persistence -------------------------------------------------------------------------
    def restore(self) -> None:
        try:
            doc = self.store.load(STATE_NAME)
            if doc is not None:
                self.ledger = Ledger.from_dict(doc)
                problem = self.ledger.binding_problem(self.mode.value)
                if problem is not None:
                    raise LedgerError(f"refused for {self.mode.value}: {problem}")
                self.ledger.bind(self.mode.value)
                self.ctx.log.info(
                    "order ledger restored: %d open intent(s), %d position(s) %s",
                    len(self.ledger.open_intents()), len(self.ledger.positions),
                    ", ".join(f"{k} x{p.contracts}" for k, p in self.ledger.positions.items()))
            else:
                self.ledger.bind(self.mode.value)
        except (StateUnreadable, LedgerError) as exc:
            word = "refused" if str(exc).startswith("refused for") else "unreadable"
            self.fault = f"order ledger {word}: {exc}"
            self.ctx.log.critical("Trading HALTED: order ledger %s %s: %s",
                                  self.store.path(STATE_NAME), word, exc)
            self.ctx.alert("critical", f"Order ledger {word}: trading halted",
                           f"{exc}. The bot cannot know its orders and positions, so it places "
                           "nothing. Restore or remove the file (the broker's positions stay as "
                           "they are) and restart.", key="ledger-state")
        self._publish_wanted()

    async def idle_in_fault(self) -> None:
        """Say so until the operator acts; never trade on a ledger it cannot read."""
        while True:
            self._status(self.inbox.link_state.value.session_id, reconciled=False)
            await trio.sleep(self.tuning.positions_every)

    def commit(self) -> None:
        """After every ledger change: persist, tell the journal and ModeGuard, wake waiters."""
        try:
            doc = self.ledger.to_dict()
            if doc != self._saved:
                self.store.save(STATE_NAME, doc)
                self._saved = doc
            if self.persist_error is not None:
                self.ctx.alert("info", "Order ledger saved again", key="ledger-save")
                self.persist_error = None
        except (OSError, ValueError) as exc:
            if self.persist_error is None:
                self.ctx.alert("critical", "Order ledger cannot be saved: no new orders",
                               f"{exc}: nothing is sent until it can be saved (an order not "
                               "written first could be lost in a crash). Native take-profit/"
                               "stop-loss orders stay working at the broker; exits wait.",
                               key="ledger-save")
            self.persist_error = str(exc)
        for change in self.ledger.take_changes():
            self._announce(change)
        for fill in self.ledger.unreported_fills():
            if fill.commission is not None:
                self._report_fill(fill, estimated=False)
        self._publish_wanted()
        self._send_positions()
        self.publish_book()
        self._pulse.set()
        self._pulse = trio.Event()

    async def changed(self, timeout: float) -> None:
        """Wait for the next ledger change (or `timeout` trio seconds)."""
        pulse = self._pulse
        with trio.move_on_after(timeout):
            await pulse.wait()

    # -- outputs -----------------------------------------------------------------------------
    def _send(self, msg: OrderEvent) -> None:
        """Never dropped, never reordered (runtime/supervision/ordered.py)."""
        self.events_out.send_nowait(msg)

    def _trade(self, kind: str, **fields: Any) -> None:
        try:
            self.trades.write(self.ctx.clock.now_utc(), kind, mode=self.mode.value, **fields)
        except (OSError, ValueError) as exc:
            self.ctx.log.error("trade journal %s not written: %s", self.trades.path, exc)

    def _status(self, session_id: int, *, reconciled: bool, detail: str = "") -> None:
        self._send(RouterStatus(ts=self.ctx.clock.now_utc(), session_id=session_id,
                                reconciled=reconciled, fault=self.fault or self.persist_error,
                                detail=detail))

    def _announce(self, c: Change) -> None:
        now = self.ctx.clock.now_utc()
        self._send(IntentUpdate(ts=now, intent_id=c.intent_id, kind=c.kind, state=c.state,
                                option_key=c.option_key, filled=c.filled, reason=c.reason))
        if c.state in ("pending", "working"):
            return
        self.ctx.emit("intent_done", intent_id=c.intent_id, kind=c.kind, state=c.state,
                      reason=c.reason, filled=c.filled, contract=c.option_key)
        self._trade("intent", intent_id=c.intent_id, intent=c.kind, state=c.state,
                    reason=c.reason, filled=c.filled, contract=c.option_key)
        if c.state in ("rejected", "cancelled", "expired") and c.kind == "entry":
            self.ctx.log.info("entry %s %s: %s", c.intent_id, c.state, c.reason)
        if c.state == "rejected":
            self.ctx.emit("order_rejected", intent_id=c.intent_id, reason=c.reason)

    def _report_fill(self, fill: FillRec, *, estimated: bool) -> None:
        if fill.commission is None:
            return
        fill.reported = True
        report = FillReport(ts=fill.time, exec_id=fill.exec_id, order_ref=fill.ref,
                            intent_id=fill.intent_id, option_key=fill.option_key,
                            side=fill.side, contracts=fill.contracts, price=fill.price,
                            commission=fill.commission, realized_pnl=fill.realized_pnl,
                            opening=fill.opening, mode=self.mode.value,
                            position_opened=fill.opened_day)
        self._send(report)
        self.ctx.emit("fill", order_ref=fill.ref, contract=fill.option_key, side=fill.side,
                      quantity=fill.contracts, price=fill.price, commission=fill.commission,
                      mode=self.mode.value, intent_id=fill.intent_id, exec_id=fill.exec_id,
                      realized_pnl=round(fill.realized_pnl, 2), commission_estimated=estimated)
        self.ctx.log.info("fill: %s %d %s @ %.2f (commission %.2f%s, realised %+.2f) [%s]",
                          fill.side, fill.contracts, fill.option_key, fill.price,
                          fill.commission, " est." if estimated else "", fill.realized_pnl,
                          fill.ref)
        self._trade("fill", order_ref=fill.ref, intent_id=fill.intent_id,
                    contract=fill.option_key, side=fill.side, quantity=fill.contracts,
                    price=fill.price, commission=fill.commission, exec_id=fill.exec_id,
                    opening=fill.opening, realized_pnl=round(fill.realized_pnl, 2),
                    commission_estimated=estimated)

    def positions_view(self) -> tuple[PositionView, ...]:
        led = self.ledger
        return tuple(PositionView(
            option_key=p.key, option=p.option, contracts=p.contracts,
            entry_premium=p.avg_premium, entry_ts=p.entry_ts, opened_day=p.opened_day,
            strategy=p.strategy, protected=led.protected(p), exiting=led.exiting(p),
            managed=p.managed) for p in sorted(led.positions.values(), key=lambda p: p.key)
            if p.contracts > 0)

    def publish_book(self) -> None:
        """The book read-model, replaced whole when it changed (marks included)."""
        if self.outbox.book is None:
            return
        link = self.inbox.link_state.value
        book = build_book(self.ledger, shorts=self.shorts_view(),
                          quotes=self.inbox.quotes.value, now=self.ctx.clock.now_utc(),
                          session=link.session_id, max_age_s=self.tuning.quote_max_age_market_s,
                          mode=self.mode.value,
                          reconciled=self.mode is Mode.DRY_RUN or
                          (self.reconciled == self.session and not self.ledger.suspects))
        old = self.outbox.book.value
        if old is None or old.model_copy(update={"ts": book.ts}) != book:
            self.outbox.book.set(book)

    def shorts_view(self) -> tuple[ShortView, ...]:
        out = []
        for key, p in sorted(self.shorts.items()):
            if p.option is None:
                continue
            mult = p.option.multiplier or 100
            out.append(ShortView(option_key=key, option=p.option, contracts=-round(p.quantity),
                                 credit=round(p.avg_cost / mult, 4) if p.avg_cost > 0 else 0.0))
        return tuple(out)

    def _send_positions(self, *, force: bool = False) -> None:
        view = self.positions_view()
        if not force and view == self._last_positions and not self.shorts:
            return
        self._last_positions = view
        self._positions_sent_at = trio.current_time()
        self._send(PositionsReport(ts=self.ctx.clock.now_utc(), positions=view,
                                   shorts=self.shorts_view()))
        self.ctx.node.extra["positions"] = {p.option_key: p.contracts for p in view}

    def _publish_wanted(self) -> None:
        wanted = frozenset({p.option for p in self.ledger.positions.values()} |
                           set(self.candidates.values()) |
                           {p.option for p in self.shorts.values() if p.option is not None})
        if wanted != self.outbox.wanted_quotes.value:
            self.outbox.wanted_quotes.set(wanted)

    # -- readiness ---------------------------------------------------------------------------
    def ready(self) -> bool:
        """May orders (or dry-run fills) happen now: session up, checked and reconciled."""
        state = self.inbox.link_state.value
        if not state.up or state.session_id != self.session:
            return False
        if self.mode is Mode.DRY_RUN:
            return True
        return self.verdicts.get(self.session) is True and self.reconciled == self.session

    # -- the pre-trade gate (gate.py): built at the last moment, before anything is sent ------
    def gate_view(self) -> GateView:
        return GateView(trading=self.inbox.trading.value,
                        ledger_problem=self.fault or self.persist_error,
                        session_ready=self.ready(), shorts=tuple(sorted(self.shorts)),
                        foreign=self.foreign_orders())

    def foreign_orders(self) -> tuple[str, ...]:
        """Live orders placed under another client id than this session's (after a 326):
        this session cannot cancel them, so it makes no new entry beside them."""
        cid = self.inbox.link_state.value.client_id
        if self.mode is Mode.DRY_RUN or cid is None:
            return ()
        return tuple(sorted(f"{o.ref} (client id {o.client_id})"
                            for o in self.ledger.orders.values()
                            if o.live and o.client_id is not None and o.client_id != cid))

    def broker_count(self, key: str) -> int | None:
        """Contracts of `key` in the latest complete broker snapshot of THIS session (None:
        there is none). In DRY_RUN the ledger is the broker."""
        if self.mode is Mode.DRY_RUN:
            pos = self.ledger.positions.get(key)
            return pos.contracts if pos is not None else 0
        if self.broker_held is None or self.broker_held_session != self.session:
            return None
        return self.broker_held.get(key, 0)

    def sell_view(self, key: str, quantity: int, *, intent_id: str) -> SellView:
        pos = self.ledger.positions.get(key)
        quote = self.fresh_quote(pos.option) if pos is not None else None
        others = sum(o.quantity - o.filled for o in self.ledger.orders.values()
                     if o.action == "SELL" and o.live and o.intent_id != intent_id and
                     self.ledger.intents[o.intent_id].option_key == key)
        return SellView(quantity=quantity, ledger_held=pos.contracts if pos is not None else 0,
                        broker_held=self.broker_count(key),
                        bid=quote.bid if quote is not None else None,
                        other_sells_working=others)

    async def watch_trading(self) -> None:
        """A kill switch or a halt aborts the entries still being chosen."""
        while True:
            await self.inbox.trading.wait_transition()
            if self.choosing and entry_refusal(self.gate_view()) is not None:
                for scope in self.choosing.values():
                    scope.cancel()

    async def wait_ready(self) -> None:
        while not self.ready():
            await self.changed(1.0)

    def fresh_quote(self, spec: OptionSpec) -> Quote | None:
        """A quote of this session, recent enough to trade at (None otherwise)."""
        q = self.inbox.quotes.value.get(spec.key)
        if q is None:
            return None
        if q.session_id is not None and q.session_id != self.inbox.link_state.value.session_id:
            return None
        age = (self.ctx.clock.now_utc() - q.ts).total_seconds()
        return q if age <= self.tuning.quote_max_age_market_s else None

    # -- ModeGuard's messages ----------------------------------------------------------------
    async def intake(self) -> None:
        async for msg in self.inbox.orders:
            if isinstance(msg, SessionVerdict):
                self.verdicts[msg.session_id] = msg.ok
                self.commit()
            elif isinstance(msg, EntryIntent):
                assert self.nursery is not None
                self.nursery.start_soon(self.enter, msg)
            elif isinstance(msg, ExitIntent):
                self.open_exit(msg)
            elif isinstance(msg, CancelEntries):
                self.cancel_entries(msg.reason)
            elif isinstance(msg, EntryRefused):
                self._trade("decision", intent_id=msg.intent_id, approved=False,
                            symbol=msg.signal.symbol, strategy=msg.signal.strategy,
                            direction=msg.signal.direction, reason=msg.reason)
            elif isinstance(msg, DaySummary):
                self._trade("summary", day=msg.day.isoformat(), trades=msg.trades,
                            pnl=round(msg.pnl, 2), pdt_left=msg.pdt_left,
                            rejections=msg.rejections)
            else:
                assert_never(msg)

    def _refuse(self, intent: EntryIntent, reason: str, option: OptionSpec | None = None, *,
                state: IntentState = "rejected") -> None:
        self.ledger.refuse(intent.intent_id, kind="entry", strategy=intent.signal.strategy,
                           symbol=intent.signal.symbol, reason=reason,
                           now=self.ctx.clock.now_utc(), option=option, state=state)
        self.commit()

    async def enter(self, intent: EntryIntent) -> None:
        """Choose, size and submit one approved entry (or refuse it, journaled)."""
        sig = intent.signal
        self._trade("decision", intent_id=intent.intent_id, approved=True, symbol=sig.symbol,
                    strategy=sig.strategy, direction=sig.direction, right=sig.right,
                    equity=intent.budget.equity, reasons=list(sig.reasons))
        if intent.intent_id in self.ledger.intents:
            self.ctx.log.warning("entry %s delivered twice: ignored", intent.intent_id)
            return
        if (why := entry_refusal(self.gate_view())) is not None:
            self._refuse(intent, why)
            return
        if sig.symbol in self.ledger.busy_symbols():
            self._refuse(intent, f"a {sig.symbol} position or entry is already open")
            return
        scope = trio.CancelScope()
        self.choosing[intent.intent_id] = scope
        try:
            with scope:
                plan, spec, quote = await self._choose(intent)
        except _Refused as exc:
            self._refuse(intent, str(exc), exc.option)
            return
        finally:
            self.candidates.pop(intent.intent_id, None)
            self.choosing.pop(intent.intent_id, None)
            self._publish_wanted()
        if scope.cancelled_caught or (why := entry_refusal(self.gate_view())) is not None:
            why = entry_refusal(self.gate_view()) or "trading stopped"
            self._refuse(intent, f"aborted while the option was chosen: {why}",
                         state="cancelled")
            return
        now = self.ctx.clock.now_utc()
        if now >= intent.deadline:
            self._refuse(intent, "deadline passed while the option was chosen", spec)
            return
        if intent.intent_id in self.ledger.intents or sig.symbol in self.ledger.busy_symbols():
            self._refuse(intent, f"a {sig.symbol} position or entry opened meanwhile", spec)
            return
        params = params_for(sig.strategy, self.inbox.gameplan.value)
        bracket = self.mode is not Mode.DRY_RUN
        tp = round_price(plan.limit_price * (1 + params.take_profit_pct), up=True)
        sl = round_price(plan.limit_price * (1 - params.stop_loss_pct), up=False)
        if bracket and not tp > plan.limit_price > sl:
            self._refuse(intent, f"premium {plan.limit_price:.2f} too small for a bracket "
                                 f"(TP {tp:.2f}, SL {sl:.2f})", spec)
            return
        self.ledger.open_entry(intent.intent_id, option=plan.option, strategy=sig.strategy,
                               contracts=plan.contracts, limit=plan.limit_price,
                               take_profit=tp if bracket else None,
                               stop_loss=sl if bracket else None, deadline=intent.deadline,
                               now=now)
        self.ctx.emit("order_intent", intent_id=intent.intent_id, symbol=sig.symbol,
                      contract=plan.option.key, quantity=plan.contracts, limit=plan.limit_price,
                      strategy=sig.strategy, take_profit=tp if bracket else None,
                      stop_loss=sl if bracket else None, sizing=plan.size.reason)
        self.ctx.log.info("entry %s: BUY %d %s LMT %.2f%s (%s)", intent.intent_id,
                          plan.contracts, plan.option.key, plan.limit_price,
                          f", TP {tp:.2f} / SL {sl:.2f}" if bracket else "", plan.size.reason)
        self._trade("order_intent", intent_id=intent.intent_id, contract=plan.option.key,
                    quantity=plan.contracts, limit=plan.limit_price, strategy=sig.strategy,
                    take_profit=tp if bracket else None, stop_loss=sl if bracket else None,
                    bid=quote.bid, ask=quote.ask, sizing=plan.size.reason, dte=plan.dte)
        self.commit()
        if self.mode is Mode.DRY_RUN:
            self._simulate_buy(intent.intent_id, quote)
        else:
            await self.submit(intent.intent_id)

    async def _choose(self, intent: EntryIntent) -> tuple[EntryPlan, OptionSpec, Quote]:
        sig = intent.signal
        plan_doc = self.inbox.gameplan.value
        params = params_for(sig.strategy, plan_doc)
        fc_dte = force_close_dte(plan_doc)
        try:
            chain: OptionChain = await self.client.call(
                OptionChainRequest(underlying=sig.symbol), timeout=self.tuning.request_timeout)
        except LinkError as exc:
            raise _Refused(f"option chain for {sig.symbol} unavailable: {exc}") from exc
        expiries = sorted(dt.date(int(e[:4]), int(e[4:6]), int(e[6:8]))
                          for e in chain.expirations if len(e) >= 8 and e[:8].isdigit())
        today = self.ctx.clock.today_et()
        expiry = choose_expiry(expiries, today, min_dte=entry_min_dte(params, fc_dte),
                               max_dte=params.max_dte)
        if isinstance(expiry, Refusal):
            raise _Refused(f"{expiry.stage}: {expiry.reason}")
        strike = choose_strike(chain.strikes, sig.close, sig.right, params.moneyness)
        if isinstance(strike, Refusal):
            raise _Refused(f"{strike.stage}: {strike.reason}")
        spec = OptionSpec(underlying=sig.symbol, expiry=expiry, strike=strike, right=sig.right,
                          multiplier=chain.multiplier, trading_class=chain.trading_class)
        self.candidates[intent.intent_id] = spec
        self._publish_wanted()
        quote = await self._await_quote(spec, need_open_interest=params.min_open_interest > 0)
        if quote is None:
            raise _Refused(f"quote: no live two-sided quote for {spec.key} within "
                           f"{self.tuning.quote_wait:g}s", spec)
        oq = OptionQuote(spec=spec, bid=quote.bid, ask=quote.ask, volume=quote.volume,
                         open_interest=quote.open_interest)
        b = intent.budget
        result = plan_option_entry(
            underlying=sig.symbol, right=sig.right, underlying_price=sig.close, today=today,
            expiries=expiries, strikes_for=lambda _e: chain.strikes,
            quote_for=lambda s: oq if s.key == spec.key else None, params=params,
            force_close_dte=fc_dte,
            budget=RiskBudget(equity=b.equity, account_max_position_pct=b.account_max_position_pct,
                              max_risk_per_trade=b.max_risk_per_trade,
                              max_risk_ceiling=b.max_risk_ceiling,
                              max_single_position=b.max_single_position,
                              fee_per_contract=FEE_PER_CONTRACT_ROUND_TRIP),
            size_multiplier=sig.size_multiplier)
        if isinstance(result, Refusal):
            raise _Refused(f"{result.stage}: {result.reason}", spec)
        # the doctrine decided on a copy of the spec; keep the chain's details on ours
        return _with_option(result, spec), spec, quote

    async def _await_quote(self, spec: OptionSpec, *,
                           need_open_interest: bool = False) -> Quote | None:
        """A fresh two-sided quote; with `need_open_interest`, one that also carries it (IB
        may send the open-interest tick a moment after bid and ask). Past the wait, the last
        two-sided quote is returned as it is and the liquidity gate judges what it lacks."""
        last: Quote | None = None
        with trio.move_on_after(self.tuning.quote_wait):
            while True:
                q = self.fresh_quote(spec)
                if q is not None and q.bid is not None and q.ask is not None and \
                        q.bid > 0 and q.ask > 0:
                    last = q
                    if not need_open_interest or q.open_interest is not None:
                        return q
                await self.inbox.quotes.wait_transition()
        return last

    # -- submitting --------------------------------------------------------------------------
    async def submit(self, intent_id: str) -> None:
        """Send an intent's new orders (write-ahead: marked and saved first)."""
        orders = self.ledger.sendable(intent_id)
        intent = self.ledger.intents[intent_id]
        if not orders or intent.option is None:
            return
        if not self.ready():
            return                                  # the next reconciliation resubmits
        if (why := self._gate(intent, orders)) is not None:
            return
        refs = [o.ref for o in orders]
        self.ledger.mark_submitting(refs, self.ctx.clock.now_utc())
        self.commit()
        if self.persist_error is not None:
            self.ledger.on_send_refused(refs, "ledger not saved", self.ctx.clock.now_utc())
            self.commit()
            return
        for o in orders:
            self.ctx.emit("order_submitted", order_ref=o.ref, mode=self.mode.value,
                          intent_id=intent_id, role=o.role, action=o.action,
                          quantity=o.quantity, order_type=o.order_type, limit=o.limit,
                          stop=o.stop, contract=intent.option.key)
            self._trade("order", order_ref=o.ref, intent_id=intent_id, role=o.role,
                        action=o.action, quantity=o.quantity, order_type=o.order_type,
                        limit=o.limit, stop=o.stop, contract=intent.option.key)
        legs = tuple(OrderLeg(ref=o.ref, action=o.action, quantity=o.quantity,
                              order_type=o.order_type,
                              limit=o.limit, stop=o.stop) for o in orders)
        if (why := self._gate(intent, orders)) is not None:   # the very last moment
            self.ledger.on_send_refused(refs, f"not sent: {why}", self.ctx.clock.now_utc())
            self.commit()
            return
        try:
            placed: PlacedOrders = await self.client.call(
                PlaceOrders(option=intent.option, legs=legs, bracket=len(legs) > 1),
                timeout=self.tuning.request_timeout)
        except RequestFailed as exc:
            # refused before anything was sent (no contract, breaker open, read-only)
            self.ledger.on_send_refused(refs, f"refused: {exc}", self.ctx.clock.now_utc())
            self.commit()
            return
        except (LinkUnavailable, RequestTimeout) as exc:
            self.ctx.log.warning("%s: outcome unknown (%s): reconciliation will tell",
                                 ", ".join(refs), exc)
            self.reconcile_soon.set()
            return
        self.ledger.on_placed(refs, placed.order_ids, placed.client_id,
                              self.ctx.clock.now_utc())
        self.commit()

    def _gate(self, intent: IntentRec, orders: list[OrderRec]) -> str | None:
        """The pre-trade gate for these orders of this intent (None: they may go out now).

        An entry refused while trading is HALTED, the kill switch is on or the ledger is not
        safe ends here (cancelled, journaled); one refused while trading is only REDUCING stays
        unsent for the next reconciliation (its deadline expires it). A sell refused is the
        exit step's to retry.
        """
        now = self.ctx.clock.now_utc()
        if intent.kind == "entry":
            why = entry_refusal(self.gate_view())
            if why is None and intent.deadline is not None and now >= intent.deadline:
                why = "deadline passed before it was sent"
            if why is None:
                return None
            final = self.inbox.trading.value.state is not TradingState.REDUCING or \
                self.fault or self.persist_error or \
                (intent.deadline is not None and now >= intent.deadline)
            if final and any(o.status == "new" for o in orders):
                intent.cancel_why = intent.cancel_why or f"not sent: {why}"
                self.ledger.expire_unsent(intent, now, f"not sent: {why}")
                self.commit()
            self.ctx.log.warning("entry %s not sent: %s", intent.intent_id, why)
            return why
        quantity = sum(o.quantity for o in orders if o.action == "SELL")
        why = sell_refusal(self.gate_view(), self.sell_view(
            intent.option_key or "", quantity, intent_id=intent.intent_id))
        if why is not None:
            self.ctx.log.warning("sell of %s (%s) not sent: %s", intent.option_key,
                                 intent.intent_id, why)
        return why

    async def _resubmit(self, intent_id: str) -> None:
        """Re-send an entry a reconciliation proved never arrived, once trading is no longer
        merely REDUCING (this very reconciliation is one of its reasons), before its deadline."""
        if intent_id in self.resubmitting:
            return
        self.resubmitting.add(intent_id)
        try:
            intent = self.ledger.intents[intent_id]
            if intent.deadline is not None:
                left = (intent.deadline - self.ctx.clock.now_utc()).total_seconds()
                with trio.move_on_after(max(0.0, self.ctx.clock.to_trio_seconds(left))):
                    await self.inbox.trading.wait_value(
                        lambda s: s.state is not TradingState.REDUCING)
            await self.submit(intent_id)
        finally:
            self.resubmitting.discard(intent_id)

    # -- dry run -----------------------------------------------------------------------------
    def _simulate(self, ref: str, side: str, price: float, quantity: int) -> None:
        """A simulated execution through the same ledger path as a real one."""
        o = self.ledger.orders[ref]
        self.ledger.mark_submitting([ref], self.ctx.clock.now_utc())
        intent = self.ledger.intents[o.intent_id]
        assert intent.option is not None
        commission = self.fills.commission(quantity, price)
        now = self.ctx.clock.now_utc()
        self.ctx.emit("order_submitted", order_ref=ref, mode=self.mode.value,
                      intent_id=o.intent_id, role=o.role, action=o.action, quantity=quantity,
                      order_type=o.order_type, limit=o.limit, stop=None,
                      contract=intent.option.key)
        self._trade("order", order_ref=ref, intent_id=o.intent_id, role=o.role,
                    action=o.action, quantity=quantity, order_type=o.order_type, limit=o.limit,
                    contract=intent.option.key, simulated=True)
        self.ledger.on_execution(BrokerExecution(
            session_id=self.session, exec_id=f"sim-{ref}", order_id=0, perm_id=0, client_id=0,
            order_ref=ref, con_id=0, symbol=intent.option.underlying, sec_type="OPT",
            option=intent.option, side="BOT" if side == "BUY" else "SLD", shares=quantity,
            price=price, time=now, commission=commission),
            multiplier=intent.option.multiplier)
        self.commit()

    def _simulate_buy(self, intent_id: str, quote: Quote) -> None:
        option = self.ledger.intents[intent_id].option
        assert option is not None
        latest = self.fresh_quote(option)
        price = self.fills.buy_price((latest or quote).ask)
        o = self.ledger.orders[intent_id]
        if price is None:
            self.ledger.expire_unsent(self.ledger.intents[intent_id], self.ctx.clock.now_utc(),
                                      "no ask to buy at")
            self.commit()
            return
        self._simulate(o.ref, "BUY", round(price, 4), o.quantity)

    # -- exits -------------------------------------------------------------------------------
    def open_exit(self, msg: ExitIntent) -> None:
        now = self.ctx.clock.now_utc()
        if msg.intent_id in self.ledger.intents:
            return
        rec = self.ledger.open_exit(msg.intent_id, msg.option_key, reason=msg.reason,
                                    urgent=msg.urgent, now=now)
        if rec is None or rec.intent_id != msg.intent_id:
            why = (f"merged into exit {rec.intent_id} already in progress" if rec is not None
                   else f"no open position {msg.option_key}")
            pos = self.ledger.positions.get(msg.option_key)
            self.ledger.refuse(msg.intent_id, kind="exit", strategy=pos.strategy if pos else "C",
                               symbol=msg.option_key.split(" ")[0], reason=why, now=now,
                               state="cancelled")
            self.commit()
            return
        self.ctx.log.info("exit %s: %s %s (%s)%s", rec.intent_id, msg.option_key, msg.reason,
                          msg.detail, " URGENT" if msg.urgent else "")
        self._trade("exit", intent_id=rec.intent_id, contract=msg.option_key,
                    reason=msg.reason, detail=msg.detail, mark=msg.mark, urgent=msg.urgent)
        self.commit()
        self.start_exit(rec.intent_id)

    def start_exit(self, intent_id: str) -> None:
        if intent_id in self.exit_tasks or self.nursery is None:
            return
        self.exit_tasks.add(intent_id)
        self.nursery.start_soon(self._work_exit, intent_id)

    async def _work_exit(self, intent_id: str) -> None:
        try:
            backoff = self.tuning.retry_min
            while not self.ledger.intents[intent_id].terminal:
                await self.wait_ready()
                intent = self.ledger.intents[intent_id]
                if intent.terminal:
                    break
                waited = await self._exit_step(intent)
                if waited == "retry":
                    await trio.sleep(backoff)
                    backoff = min(self.tuning.retry_max, backoff * 2)
                elif waited == "placed":
                    backoff = self.tuning.retry_min
        finally:
            self.exit_tasks.discard(intent_id)

    async def _exit_step(self, intent: IntentRec) -> str:
        """One step of working an exit: cancel what is in the way, or place the next sell."""
        led = self.ledger
        if self.persist_error is not None:
            self.commit()                 # try the disk again: exits wait for it
        pos = led.positions.get(intent.option_key or "")
        if pos is None or pos.exit_intent != intent.intent_id:
            led.settle(intent, self.ctx.clock.now_utc())
            self.commit()
            return "done"
        in_the_way = [o for o in led.orders.values() if o.action == "SELL" and o.live and
                      o.intent_id != intent.intent_id and
                      led.intents[o.intent_id].option_key == pos.key]
        sell = self.sell_view(pos.key, pos.contracts, intent_id=intent.intent_id)
        if in_the_way:
            # protection (the native bracket) goes only when its replacement could be sent
            why = replace_refusal(self.gate_view(), sell)
            if why is not None and not any(o.cancel_requested for o in in_the_way):
                self._exit_blocked(intent, sell, f"protection kept: {why}")
                return "retry"
            for o in in_the_way:
                await self.cancel(o)
            await self.changed(self.tuning.cancel_resend)
            return "waiting"
        for o in led.orders_of(intent.intent_id):
            if o.status == "new":       # never sent (or proven never received): re-priced
                led.drop_unsent(o.ref, "superseded by a fresh attempt", self.ctx.clock.now_utc())
        own = [o for o in led.orders_of(intent.intent_id) if o.live]
        if own:
            o = own[0]
            age = (self.ctx.clock.now_utc() - o.updated).total_seconds()
            if age >= self.tuning.lost_after_market_s:
                self.reconcile_soon.set()      # the broker has not said a word: look it up
            if age >= self.tuning.exit_reprice_market_s or o.cancel_requested is not None:
                await self.cancel(o)
            await self.changed(min(self.tuning.cancel_resend,
                                   self.ctx.clock.to_trio_seconds(
                                       self.tuning.exit_reprice_market_s) + 0.1))
            return "waiting"
        why = sell_refusal(self.gate_view(), sell)
        if why is not None:
            self._exit_blocked(intent, sell, why)
            return "retry"
        bid = sell.bid
        assert bid is not None
        if self.mode is Mode.DRY_RUN:
            price = self.fills.sell_price(bid)
            if price is None or not price > 0:
                self._exit_failed(intent, f"no price to sell {pos.key} at")
                return "retry"
            attempt = led.exit_attempt(intent.intent_id, quantity=pos.contracts,
                                       order_type="LMT", limit=round(price, 4),
                                       now=self.ctx.clock.now_utc())
            self._simulate(attempt.ref, "SELL", round(price, 4), pos.contracts)
            return "placed"
        limit = round_price(bid - self.tuning.urgent_concession, up=False) if intent.urgent \
            else round_price(bid, up=False)
        attempt = led.exit_attempt(intent.intent_id, quantity=pos.contracts, order_type="LMT",
                                   limit=limit, now=self.ctx.clock.now_utc())
        self.commit()
        await self.submit(intent.intent_id)
        if led.orders[attempt.ref].status == "rejected":
            self._exit_failed(intent, f"{attempt.ref} refused: {led.orders[attempt.ref].error}")
            return "retry"
        return "placed"

    def _exit_blocked(self, intent: IntentRec, sell: SellView, why: str) -> None:
        """The gate refused this exit's next step: ask the broker again where that helps."""
        if sell.broker_held is None or sell.broker_held != sell.ledger_held:
            self.reconcile_soon.set()
        self._exit_failed(intent, why)

    def _exit_failed(self, intent: IntentRec, why: str) -> None:
        n = self._exit_failures.get(intent.intent_id, 0) + 1
        self._exit_failures[intent.intent_id] = n
        self.ctx.log.warning("exit %s: attempt failed (%d): %s; retrying", intent.intent_id, n,
                             why)
        if n == self.tuning.exit_alert_after:
            self.ctx.alert("critical", f"Exit of {intent.option_key} keeps failing",
                           f"{n} attempts: {why}. Still retrying with backoff; the position "
                           "stays tracked until it is flat.", key=f"exit:{intent.option_key}")

    async def cancel(self, o: OrderRec) -> None:
        """Ask the broker to cancel (again, if the last ask got no answer)."""
        now = trio.current_time()
        last = self.cancel_sent.get(o.ref)
        if o.cancel_requested is None:
            self.ledger.request_cancel(o.ref, self.ctx.clock.now_utc())
            self.commit()
        if last is not None and now - last < self.tuning.cancel_resend:
            return
        if self.mode is Mode.DRY_RUN or o.order_id is None or not self.ready():
            return                # no id yet: the reconciliation finds it first
        self.cancel_sent[o.ref] = now
        cid = self.inbox.link_state.value.client_id
        if o.client_id is not None and cid is not None and o.client_id != cid:
            # order ids are per client id: this one would cancel another order, or nothing
            if o.ref not in self.foreign_alerted:
                self.foreign_alerted.add(o.ref)
                self.ctx.alert("critical", f"Order {o.ref} cannot be cancelled from here",
                               f"it was placed under client id {o.client_id}; this session is "
                               f"client id {cid} (326 after a crash?). It stays working at the "
                               "broker and no new entry is made until the bot has its client "
                               "id back; cancel it in TWS if it must go now.",
                               key=f"foreign:{o.ref}")
            return
        tries = self.cancel_tries[o.ref] = self.cancel_tries.get(o.ref, 0) + 1
        if tries == self.tuning.cancel_alert_after:
            self.ctx.alert("critical", f"Cancel of {o.ref} not confirmed",
                           f"{tries} cancel requests for order id {o.order_id} (client id "
                           f"{o.client_id}, {o.action} {o.quantity}) got no confirmation. "
                           "Still asking; check it in TWS.", key=f"cancel:{o.ref}")
        try:
            await self.client.call(CancelOrder(order_id=o.order_id, order_ref=o.ref),
                                   timeout=self.tuning.request_timeout)
            self.ctx.emit("order_cancel", order_ref=o.ref, order_id=o.order_id)
        except LinkError as exc:
            self.ctx.log.warning("cancel of %s not sent: %s", o.ref, exc)

    def cancel_entries(self, reason: str) -> None:
        now = self.ctx.clock.now_utc()
        for intent in self.ledger.open_intents("entry"):
            intent.cancel_why = intent.cancel_why or f"cancelled: {reason}"
            parent = self.ledger.orders.get(intent.intent_id)
            if parent is None:
                continue
            if parent.status == "new":
                self.ledger.expire_unsent(intent, now, reason)
            elif parent.live:
                self.ledger.request_cancel(parent.ref, now)
        self.commit()

    # -- broker events -----------------------------------------------------------------------
    async def broker_events(self) -> None:
        async for ev in self.inbox.broker:
            now = self.ctx.clock.now_utc()
            if isinstance(ev, BrokerOrderStatus):
                before = self._status_of(ev.order_ref)
                o = self.ledger.on_status(ev, now)
                if o is not None and o.status == "working" and \
                        self.ledger.awaiting_executions(o, ev.filled):
                    self.reconcile_soon.set()    # ended at the broker before its executions
                if o is not None and o.status != before:
                    self.ctx.emit("order_status", order_ref=o.ref, status=o.status,
                                  broker_status=ev.status, filled=o.filled)
            elif isinstance(ev, BrokerExecution):
                mult = ev.option.multiplier if ev.option is not None else 100
                self.ledger.on_execution(ev, multiplier=mult)
            elif isinstance(ev, BrokerCommission):
                self.ledger.on_commission(ev.exec_id, ev.commission)
            elif isinstance(ev, BrokerOrderError):
                o, what = self.ledger.on_error(ev, now)
                if o is not None and what != "ignored":
                    self.ctx.emit("order_status", order_ref=o.ref, status=o.status,
                                  code=ev.code, text=ev.text)
                if what == "reconcile":
                    self.reconcile_soon.set()
                elif what == "rejected" and o is not None:
                    self.ctx.alert("warning", f"Order {o.ref} rejected", f"{ev.code}: {ev.text}",
                                   key=f"rejected:{o.ref}")
            else:       # the channel is not typed BrokerEvent yet (GatewayLink's outbox)
                self.ctx.log.warning("unexpected message on broker_events: %r", ev)
            self.commit()

    def _status_of(self, ref: str) -> str | None:
        o = self.ledger.orders.get(ref)
        return o.status if o is not None else None

    # -- sessions and reconciliation ---------------------------------------------------------
    async def sessions(self) -> None:
        """Serve each new Gateway session: verdict, reconcile, then keep it reconciled."""
        while True:
            state = await self.inbox.link_state.wait_value(
                lambda s: s.up and s.session_id != self.session)
            self.session = state.session_id
            sid = state.session_id
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._serve_session, sid)
                await self.inbox.link_state.wait_value(
                    lambda s, sid=sid: s.session_id != sid or not s.up)  # type: ignore[misc]
                nursery.cancel_scope.cancel()
            self.commit()

    async def _serve_session(self, sid: int) -> None:
        self.ledger.enter_session(f"{self.process}:{sid}")
        self.commit()
        self._status(sid, reconciled=False, detail="new session")
        if self.mode is Mode.DRY_RUN:
            self.reconciled = sid
            self._status(sid, reconciled=True, detail="dry run: nothing at the broker")
            self.commit()
            await self._account_loop(sid)
            return
        while self.verdicts.get(sid) is None:
            await self.changed(5.0)
            if self.verdicts.get(sid) is None:
                self._status(sid, reconciled=False, detail="waiting for the mode check")
        if not self.verdicts[sid]:
            self.ctx.log.warning("session %d failed the mode check: nothing is sent on it", sid)
            await trio.sleep_forever()
        account = ",".join(sorted(a.strip() for a in self.inbox.link_state.value.accounts
                                  if a.strip())) or None
        problem = self.ledger.binding_problem(self.mode.value, account)
        if problem is not None:
            self.fault = f"order ledger refused: {problem}"
            self.ctx.log.critical("Trading HALTED: order ledger %s refused: %s",
                                  self.store.path(STATE_NAME), problem)
            self.ctx.alert("critical", "Order ledger refused: trading halted",
                           f"{problem}. Its positions are not this account's, so nothing is "
                           "sent. Move the file away (the broker's positions stay as they "
                           "are) and restart.", key="ledger-state")
            self._status(sid, reconciled=False, detail="ledger bound to another account")
            await trio.sleep_forever()
        if account is not None and self.ledger.bound_account != account:
            self.ledger.bind(self.mode.value, account)
            self.commit()
        backoff = self.tuning.retry_min
        while not await self.reconcile(sid):
            await trio.sleep(backoff)
            backoff = min(self.tuning.retry_max, backoff * 2)
        self.reconciled = sid
        self._status(sid, reconciled=True)
        self.commit()
        for intent in self.ledger.open_intents("exit"):
            self.start_exit(intent.intent_id)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._account_loop, sid)
            while True:
                while self.ledger.suspects:       # a difference with the broker: look again
                    await trio.sleep(self.tuning.recheck_after)
                    await self.reconcile(sid)
                with trio.move_on_after(self.tuning.reconcile_every):
                    await self.reconcile_soon.wait()
                self.reconcile_soon = trio.Event()
                await self.reconcile(sid)

    async def reconcile(self, sid: int) -> bool:
        """All four broker answers or nothing: an unknown answer changes nothing."""
        timeout = self.tuning.request_timeout
        try:
            opened: BrokerOrders = await self.client.call(OpenOrdersRequest(), timeout=timeout)
            done: BrokerOrders = await self.client.call(CompletedOrdersRequest(),
                                                        timeout=timeout)
            execs: BrokerExecutions = await self.client.call(ExecutionsRequest(),
                                                             timeout=timeout)
            held: BrokerPositions = await self.client.call(PositionsRequest(), timeout=timeout)
        except LinkError as exc:
            self.ctx.log.warning("reconciliation of session %d incomplete (%s): nothing "
                                 "changed; retrying", sid, exc)
            return False
        if {opened.session_id, done.session_id, execs.session_id, held.session_id} != {sid} \
                or self.inbox.link_state.value.session_id != sid:
            return False
        now = self.ctx.clock.now_utc()
        self._take_positions(sid, held)
        report = self.ledger.reconcile(Snapshot(
            epoch=self.ledger.epoch, open_orders=list(opened.orders),
            completed_orders=list(done.orders), executions=list(execs.fills),
            positions=list(held.positions)), now,
            lost_after=dt.timedelta(seconds=self.tuning.lost_after_market_s))
        for note in report.notes:
            self.ctx.log.info("reconcile: %s", note)
        for text in report.warnings:
            self.ctx.alert("warning", "Reconciliation", text, key=f"reconcile:{text[:40]}")
        for text in report.critical:
            self.ctx.alert("critical", "Reconciliation: operator action needed", text,
                           key=f"reconcile:{text[:40]}")
        self.ctx.emit("reconcile", session=sid, fills_recovered=len(report.applied_fills),
                      resubmit=list(report.resubmit), notes=report.notes,
                      warnings=report.warnings + report.critical, suspects=report.suspects,
                      open_orders=len(opened.orders), positions=len(held.positions))
        self.commit()
        self._check_deadlines()
        for intent_id in report.resubmit:
            if self.nursery is not None:
                self.nursery.start_soon(self._resubmit, intent_id)
        return True

    def _take_positions(self, sid: int, held: BrokerPositions) -> None:
        """The broker's option positions from a complete snapshot: what a sell may not exceed,
        and any SHORT position (never ours: entries halt and the operator must act)."""
        counts: dict[str, int] = {}
        shorts: dict[str, BrokerPosition] = {}
        for p in held.positions:
            if p.sec_type != "OPT" or p.option is None:
                continue
            qty = round(p.quantity)
            counts[p.option.key] = counts.get(p.option.key, 0) + qty
            if qty < 0:
                shorts[p.option.key] = p
        self.broker_held, self.broker_held_session = counts, sid
        for key in sorted(set(shorts) - set(self.shorts)):
            p = shorts[key]
            self.ctx.emit("short_position", contract=key, quantity=round(p.quantity))
            self.ctx.alert("critical", f"SHORT option position at the broker: {key}",
                           f"{round(p.quantity)} contract(s). The bot never sells short: new "
                           "entries are halted, the position is marked at the ask and counts "
                           "against the daily loss. Close it in TWS; trading resumes when "
                           "the broker shows it closed.", key=f"short:{key}")
        for key in sorted(set(self.shorts) - set(shorts)):
            self.ctx.alert("info", f"Short position {key} closed at the broker",
                           key=f"short:{key}")
        self.shorts = shorts

    async def _account_loop(self, sid: int) -> None:
        while True:
            if self.mode is not Mode.DRY_RUN:
                try:
                    values: AccountValues = await self.client.call(
                        AccountValuesRequest(), timeout=self.tuning.request_timeout)
                    self._send(AccountReport(ts=self.ctx.clock.now_utc(), session_id=sid,
                                             net_liquidation=values.net_liquidation))
                except LinkError as exc:
                    self._send(AccountReport(ts=self.ctx.clock.now_utc(), session_id=sid,
                                             net_liquidation=None, error=str(exc)))
            await trio.sleep(self.tuning.account_every)

    # -- housekeeping ------------------------------------------------------------------------
    async def housekeeping(self) -> None:
        """Deadlines, cancels to resend, late commissions, the periodic positions report."""
        pruned = trio.current_time()
        note = ""
        while True:
            led = self.ledger
            if led.open_intents() or led.cancels_wanted() or led.unreported_fills():
                await trio.sleep(self.tuning.housekeeping_every)
            else:                      # nothing to watch: until the ledger changes
                await self.changed(max(self.tuning.housekeeping_every,
                                       self.tuning.positions_every))
            if led.open_intents("entry"):
                self._check_deadlines()
            if self.ready():
                for o in led.cancels_wanted():
                    await self.cancel(o)
            if led.unreported_fills():
                self._late_commissions()
            now = trio.current_time()
            if now - pruned >= 600.0:
                pruned = now
                led.prune(self.ctx.clock.now_utc())
            if now - self._positions_sent_at >= self.tuning.positions_every:
                self._send_positions(force=True)
                if self.session:       # a restarted ModeGuard learns where the router stands
                    self._status(self.session, reconciled=self.reconciled == self.session)
            self.publish_book()
            if (new := self._note()) != note:
                note = new
                self.ctx.set_note(note)

    def _check_deadlines(self) -> None:
        now = self.ctx.clock.now_utc()
        changed = False
        for intent in self.ledger.entries_past_deadline(now):
            parent = self.ledger.orders.get(intent.intent_id)
            if parent is None:
                continue
            if not intent.cancel_why:
                intent.cancel_why = "expired"
                changed = True
            if parent.status == "new":
                self.ledger.expire_unsent(intent, now, "deadline passed before it was sent")
                changed = True
            elif parent.live and parent.cancel_requested is None:
                self.ledger.request_cancel(parent.ref, now)
                self.ctx.log.info("entry %s not filled by its deadline: cancelling",
                                  intent.intent_id)
                changed = True
        if changed:
            self.commit()

    def _late_commissions(self) -> None:
        now = self.ctx.clock.now_utc()
        late = [f for f in self.ledger.unreported_fills() if f.commission is None and
                (now - f.time).total_seconds() >= self.ctx.clock.speed *
                self.tuning.commission_wait]
        for fill in late:
            fill.commission = self.fills.commission(fill.contracts, fill.price)
            self._report_fill(fill, estimated=True)
        if late:
            self.commit()

    def _note(self) -> str:
        led = self.ledger
        parts = [f"{len(led.positions)} position(s)", f"{len(led.open_intents())} open intent(s)"]
        if self.fault or self.persist_error:
            parts.append("FAULT")
        elif self.mode is not Mode.DRY_RUN and self.reconciled != self.session:
            parts.append("reconciling")
        return ", ".join(parts)


class _Refused(Exception):
    def __init__(self, reason: str, option: OptionSpec | None = None) -> None:
        super().__init__(reason)
        self.option = option



def _with_option(plan: EntryPlan, spec: OptionSpec) -> EntryPlan:
    import dataclasses

    return dataclasses.replace(plan, option=spec)
