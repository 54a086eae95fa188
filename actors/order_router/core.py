"""OrderRouter's shared state and its one door: persistence, outputs, readiness, the
pre-trade gate's inputs, `submit` (every PlaceOrders) and `cancel` (every CancelOrder).

The other parts (entries, exits, sessions, dry_run) are mixins over this core; router.py
composes them into the actor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
)
from messages.control import TradingState, TradingStatus
from messages.link import LinkState
from messages.market import OptionSpec, Quote
from messages.orders import (
    BrokerEvent,
    BrokerPosition,
    CancelOrder,
    FillReport,
    GlobalCancel,
    IntentUpdate,
    OrderCommand,
    OrderEvent,
    OrderLeg,
    PlacedOrders,
    PlaceOrders,
    PositionsReport,
    PositionView,
    RouterStatus,
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
from runtime.supervision.tree import Gauge

from .book import build_book
from .gate import GateView, SellView, entry_refusal, sell_refusal
from .journal import TRADES_FILE, TradeJournal

POSITIONS_HELD = Gauge("positions_held", "contracts held per option, as last reported")

# -- inbox and outbox -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Inbox:
    orders: trio.MemoryReceiveChannel[OrderCommand]     # from ModeGuard
    broker: trio.MemoryReceiveChannel[BrokerEvent]      # pushed by GatewayLink
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



class RouterCore:
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
        self.stuck: set[int] = set()          # sessions found stuck: nothing more is sent on
                                              # them while the link replaces them
        self.candidates: dict[str, OptionSpec] = {}
        self.exit_tasks: set[str] = set()
        self.cancel_sent: dict[str, float] = {}
        self.cancel_tries: dict[str, int] = {}
        self.foreign_alerted: set[str] = set()
        self.global_cancel_at: float | None = None
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
            refused = str(exc).startswith("refused for")
            word = "refused" if refused else "unreadable"
            self.fault = f"order ledger {word}: {exc}"
            why = "its positions are not this account's" if refused else \
                "the bot cannot know its orders and positions"
            self.ctx.alert("critical", f"Trading HALTED: order ledger {word}",
                           f"{self.store.path(STATE_NAME)}: {exc}; {why}, so nothing is placed. "
                           "Move the file away or restore it (the broker's positions stay as "
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
        self.ctx.gauge(POSITIONS_HELD, {p.option_key: p.contracts for p in view})

    def _publish_wanted(self) -> None:
        wanted = frozenset({p.option for p in self.ledger.positions.values()} |
                           set(self.candidates.values()) |
                           {p.option for p in self.shorts.values() if p.option is not None})
        if wanted != self.outbox.wanted_quotes.value:
            self.outbox.wanted_quotes.set(wanted)

    def ready(self) -> bool:
        """May orders (or dry-run fills) happen now: session up, checked and reconciled."""
        state = self.inbox.link_state.value
        if not state.up or state.session_id != self.session:
            return False
        if self.mode is Mode.DRY_RUN:
            return True
        return self.verdicts.get(self.session) is True and self.reconciled == self.session \
            and self.session not in self.stuck

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

    async def global_cancel(self, why: str) -> None:
        """reqGlobalCancel (every open order of the account, all client ids), at most once per
        `cancel_resend`; the reconciliation then finds what it cancelled."""
        now = trio.current_time()
        if self.global_cancel_at is not None and \
                now - self.global_cancel_at < self.tuning.cancel_resend:
            return
        self.global_cancel_at = now
        self.ctx.alert("critical", "Global cancel sent: every open order of the account",
                       f"{why}. Then the positions are sold.", key="global-cancel")
        try:
            await self.client.call(GlobalCancel(), timeout=self.tuning.request_timeout)
            self.ctx.emit("order_cancel", order_ref="*", order_id=0, scope="global")
        except LinkError as exc:
            self.ctx.log.warning("global cancel not sent: %s", exc)
        self.reconcile_soon.set()

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
            if o.ref not in self.foreign_alerted and self.global_cancel_at is None:
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

    # -- provided by the other parts (mixins later in the MRO override these) -------------
    def start_exit(self, intent_id: str) -> None:
        raise NotImplementedError

    def _check_deadlines(self) -> None:
        raise NotImplementedError

    def _simulate(self, ref: str, side: str, price: float, quantity: int) -> None:
        raise NotImplementedError

    def _simulate_buy(self, intent_id: str, quote: Quote) -> None:
        raise NotImplementedError
