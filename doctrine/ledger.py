"""The order ledger: our intents, their orders, the fills and the positions they make.

One record per intent (our id, the orderRef), per order (orderRef <-> IB orderId <-> permId)
and per open position, kept by the OrderRouter and persisted after every change, so it
outlives Gateway sessions, actor restarts and the process itself. Pure: no I/O and no clock;
the caller passes the time and the broker's answers and performs what the ledger asks for.

Rules that make the money path safe (each one an earlier bot's or a peer's bug):
  * write-ahead: an order is marked `submitting` (and persisted by the caller) BEFORE it is
    sent. After a crash or a lost reply it is looked for at the broker by its orderRef, and it
    is sent again only if a complete reconciliation proved the broker never got it. So no
    order reaches the broker twice, whatever dies when;
  * positions change only on executions (deduplicated by execId), never on order statuses,
    never on "no positions reported" from a request that failed;
  * the broker's positions are the truth: a difference that persists across two consecutive
    reconciliations is adopted (never on one snapshot: a fill may be in flight);
  * every intent reaches exactly one terminal state (filled, cancelled, rejected, expired) and
    the transition is recorded once; a filled entry's position is then closed by exits, which
    are retried until the position is flat and never forgotten;
  * a sell never exceeds the long position: an exit first cancels the bracket children and
    sells what is left; a short option position is never created and never "fixed" by trading.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

from config.market_calendar import ET
from doctrine.binding import binding_mismatch
from doctrine.ledger_codec import (
    fill_in,
    fill_out,
    intent_in,
    intent_out,
    order_in,
    order_out,
    position_in,
    position_out,
    ts_in,
    ts_out,
)
from doctrine.ledger_records import (
    ORDER_TERMINAL,
    Change,
    FillRec,
    IntentRec,
    LedgerError,
    OrderRec,
    OrderStatus,
    PositionRec,
    ReconcileReport,
    Role,
    Snapshot,
)
from messages.brain import Strategy
from messages.market import OptionSpec
from messages.orders import (
    TERMINAL_STATES,
    BrokerExecution,
    BrokerOrderError,
    BrokerOrderStatus,
    BrokerPosition,
    IntentKind,
    IntentState,
    Side,
)

__all__ = [
    "CANCEL_FAILED_CODES",
    "KEEP_DONE",
    "KEEP_EXEC_IDS",
    "LEDGER_VERSION",
    "ORDER_TERMINAL",
    "REJECT_CODES",
    "Change",
    "FillRec",
    "IntentRec",
    "Ledger",
    "LedgerError",
    "OrderRec",
    "OrderStatus",
    "PositionRec",
    "ReconcileReport",
    "Role",
    "Snapshot",
    "round_price",
]

LEDGER_VERSION = 1
KEEP_DONE = dt.timedelta(days=7)       # terminal records older than this are pruned
KEEP_EXEC_IDS = 20_000

REJECT_CODES = frozenset({103, 110, 200, 201, 203, 321, 387, 434})
"""Codes that refuse a new order (duplicate id, price increment, no contract, rejected,
not allowed, read-only API, unsupported type, zero size)."""
CANCEL_FAILED_CODES = frozenset({10147, 10148})
"""A cancel the broker could not apply: not found / already done. Reconcile, do not guess."""

_BROKER_WORKING = frozenset({"PreSubmitted", "Submitted", "PendingCancel", "ApiPending",
                             "PendingSubmit", "ApiUpdate"})
_BROKER_CANCELLED = frozenset({"Cancelled", "ApiCancelled"})


def round_price(value: float, *, up: bool) -> float:
    """To the cent (options on SPY/QQQ/IWM trade in pennies), rounding in the safe direction."""
    cents = value * 100.0
    n = math.ceil(cents - 1e-6) if up else math.floor(cents + 1e-6)
    return max(0.01, n / 100.0)


# -- the ledger ------------------------------------------------------------------------------------


class Ledger:
    def __init__(self) -> None:
        self.intents: dict[str, IntentRec] = {}
        self.orders: dict[str, OrderRec] = {}
        self.positions: dict[str, PositionRec] = {}
        self.fills: dict[str, FillRec] = {}          # exec id -> fill (ours)
        self.suspects: dict[str, tuple[int, int]] = {}   # key -> (ledger qty, broker qty)
        self.last_exec_time: dt.datetime | None = None
        self.epoch = 0
        self.epoch_key = ""
        self.bound_mode: str | None = None      # the mode and account this ledger was written
        self.bound_account: str | None = None   # for: another one refuses it (fail closed)
        self._changes: list[Change] = []

    def binding_problem(self, mode: str, account: str | None = None) -> str | None:
        """Why this ledger must not be used in `mode` on `account` (None: it may).

        A ledger written in DRY_RUN holds simulated positions; carried into PAPER or LIVE its
        exits would sell contracts the account does not hold. An unbound ledger (written before
        the binding existed) is accepted only when it holds nothing: no position, no open intent.
        """
        if self.bound_mode is None:
            if self.positions or self.open_intents():
                return (f"it holds {len(self.positions)} position(s) and "
                        f"{len(self.open_intents())} open intent(s) but does not say which "
                        f"mode wrote it; running {mode}")
            return None
        return binding_mismatch(self.bound_mode, self.bound_account, mode, account)

    def bind(self, mode: str, account: str | None = None) -> None:
        self.bound_mode = mode
        if account is not None:
            self.bound_account = account

    def enter_session(self, key: str) -> int:
        """A broker session (process + Gateway session) starts a new epoch; same key, same.

        An order sent in an epoch that is over and not found at the broker never arrived; one
        sent in the current epoch may still be on its way and is never declared lost.
        """
        if key != self.epoch_key:
            self.epoch += 1
            self.epoch_key = key
        return self.epoch
    # -- queries -------------------------------------------------------------------------------
    def take_changes(self) -> list[Change]:
        out, self._changes = self._changes, []
        return out

    def open_intents(self, kind: IntentKind | None = None) -> list[IntentRec]:
        return [i for i in self.intents.values()
                if not i.terminal and (kind is None or i.kind == kind)]

    def busy_symbols(self) -> set[str]:
        """Underlyings with an open position or an entry still in progress."""
        busy = {p.option.underlying for p in self.positions.values()}
        busy |= {i.symbol for i in self.open_intents("entry")}
        return busy

    def orders_of(self, intent_id: str) -> list[OrderRec]:
        intent = self.intents.get(intent_id)
        return [self.orders[r] for r in intent.refs if r in self.orders] if intent else []

    def protected(self, pos: PositionRec) -> bool:
        return any(self.orders[r].status == "working" for r in pos.child_refs
                   if r in self.orders)

    def exiting(self, pos: PositionRec) -> bool:
        return pos.exit_intent is not None and pos.exit_intent in self.intents and \
            not self.intents[pos.exit_intent].terminal

    def order_by_broker_id(self, *, perm_id: int, client_id: int, order_id: int,
                           ref: str) -> OrderRec | None:
        if ref and ref in self.orders:
            return self.orders[ref]
        for o in self.orders.values():
            if perm_id and o.perm_id == perm_id:
                return o
        for o in self.orders.values():
            if o.order_id == order_id and o.client_id == client_id and order_id > 0:
                return o
        return None

    def unreported_fills(self) -> list[FillRec]:
        return [f for f in self.fills.values() if not f.reported]

    # -- entries -------------------------------------------------------------------------------
    def refuse(self, intent_id: str, *, kind: IntentKind, strategy: Strategy, symbol: str,
               reason: str, now: dt.datetime, option: OptionSpec | None = None,
               state: IntentState = "rejected") -> IntentRec:
        """An intent that ends before any order exists (sizing, liquidity, link not ready,
        an exit merged into the one in progress)."""
        if intent_id in self.intents:
            raise ValueError(f"intent {intent_id} already exists")
        if state not in TERMINAL_STATES:
            raise ValueError(f"{state} is not a terminal state")
        rec = IntentRec(intent_id=intent_id, kind=kind, created=now, strategy=strategy,
                        symbol=symbol, option=option)
        self.intents[intent_id] = rec
        self._finish(rec, state, reason, now)
        return rec

    def open_entry(self, intent_id: str, *, option: OptionSpec, strategy: Strategy,
                   contracts: int, limit: float, take_profit: float | None,
                   stop_loss: float | None, deadline: dt.datetime,
                   now: dt.datetime) -> IntentRec:
        """A sized entry: the LMT parent and, for a native bracket, its TP LMT and SL STP."""
        if intent_id in self.intents:
            raise ValueError(f"intent {intent_id} already exists")
        if contracts <= 0:
            raise ValueError(f"an entry needs at least one contract, not {contracts}")
        if not (limit > 0 and math.isfinite(limit)):
            raise ValueError(f"bad entry limit {limit!r}")
        rec = IntentRec(intent_id=intent_id, kind="entry", created=now, strategy=strategy,
                        symbol=option.underlying, option=option, contracts=contracts,
                        deadline=deadline)
        self.intents[intent_id] = rec
        self._add_order(rec, intent_id, "entry", "BUY", contracts, "LMT", limit, None, now)
        if take_profit is not None and stop_loss is not None:
            if not (take_profit > limit > stop_loss > 0):
                raise ValueError(f"bracket prices out of order: TP {take_profit}, entry "
                                 f"{limit}, SL {stop_loss}")
            self._add_order(rec, f"{intent_id}/tp", "take_profit", "SELL", contracts, "LMT",
                            take_profit, None, now)
            self._add_order(rec, f"{intent_id}/sl", "stop_loss", "SELL", contracts, "STP",
                            None, stop_loss, now)
        return rec

    def _add_order(self, intent: IntentRec, ref: str, role: Role, action: Side, qty: int,
                   order_type: str, limit: float | None, stop: float | None,
                   now: dt.datetime) -> OrderRec:
        if ref in self.orders:
            raise ValueError(f"order {ref} already exists")
        o = OrderRec(ref=ref, intent_id=intent.intent_id, role=role, action=action,
                     quantity=qty, order_type=order_type, limit=limit, stop=stop, created=now,
                     updated=now)
        self.orders[ref] = o
        intent.refs.append(ref)
        return o

    def sendable(self, intent_id: str) -> list[OrderRec]:
        """The orders of an intent that may be sent now (new ones, in placement order)."""
        return [o for o in self.orders_of(intent_id) if o.status == "new"]

    # -- exits ---------------------------------------------------------------------------------
    def open_exit(self, intent_id: str, option_key: str, *, reason: str, urgent: bool,
                  now: dt.datetime) -> IntentRec | None:
        """An exit for an open position; the one already in progress if there is one."""
        pos = self.positions.get(option_key)
        if pos is None:
            return None
        if self.exiting(pos):
            current = self.intents[pos.exit_intent or ""]
            current.urgent = current.urgent or urgent
            return current
        if intent_id in self.intents:
            raise ValueError(f"intent {intent_id} already exists")
        rec = IntentRec(intent_id=intent_id, kind="exit", created=now, strategy=pos.strategy,
                        symbol=pos.option.underlying, option=pos.option,
                        contracts=pos.contracts, exit_reason=reason, urgent=urgent)
        self.intents[intent_id] = rec
        pos.exit_intent = intent_id
        self._change(rec, "pending", reason, now)
        return rec

    def exit_attempt(self, intent_id: str, *, quantity: int, order_type: str,
                     limit: float | None, now: dt.datetime) -> OrderRec:
        """The next sell order of an exit (a new orderRef per attempt)."""
        rec = self.intents[intent_id]
        if rec.kind != "exit" or rec.terminal:
            raise ValueError(f"{intent_id} is not an open exit")
        live = [o for o in self.orders_of(intent_id) if o.live or o.status == "new"]
        if live:
            raise ValueError(f"{intent_id} still has order {live[0].ref} in flight")
        pos = self.positions.get(rec.option_key or "")
        held = pos.contracts if pos is not None else 0
        if not 0 < quantity <= held:
            raise ValueError(f"cannot sell {quantity} of {rec.option_key}: {held} held")
        working_sells = [o for o in self.orders.values() if o.action == "SELL" and o.live and
                         o.intent_id != intent_id and pos is not None and
                         self._order_option_key(o) == pos.key]
        if working_sells:
            raise ValueError(f"sell order {working_sells[0].ref} still working on "
                             f"{rec.option_key}: cancel it first")
        rec.attempts += 1
        return self._add_order(rec, f"{intent_id}/{rec.attempts}", "exit", "SELL", quantity,
                               order_type, limit, None, now)

    def _order_option_key(self, o: OrderRec) -> str | None:
        intent = self.intents.get(o.intent_id)
        return intent.option_key if intent else None

    # -- sending -------------------------------------------------------------------------------
    def mark_submitting(self, refs: Iterable[str], now: dt.datetime) -> None:
        """Write-ahead: these orders are about to be sent (persist before sending)."""
        for ref in refs:
            o = self.orders[ref]
            if o.status != "new":
                raise ValueError(f"order {ref} is {o.status}: it must never be sent again")
            o.status, o.epoch, o.updated = "submitting", self.epoch, now
            intent = self.intents[o.intent_id]
            if intent.state == "pending" and o.role in ("entry", "exit"):
                self._change(intent, "working", "submitted", now)

    def on_placed(self, refs: Iterable[str], order_ids: Iterable[int], client_id: int,
                  now: dt.datetime) -> None:
        for ref, order_id in zip(refs, order_ids, strict=True):
            o = self.orders[ref]
            o.order_id, o.client_id, o.updated = order_id, client_id, now

    def on_send_refused(self, refs: Iterable[str], reason: str, now: dt.datetime) -> None:
        """The Gateway refused before sending anything (no such contract, bad request)."""
        for ref in refs:
            o = self.orders[ref]
            if o.status == "submitting":
                self._order_done(o, "rejected", reason, now)

    # -- broker events -------------------------------------------------------------------------
    def on_status(self, ev: BrokerOrderStatus, now: dt.datetime) -> OrderRec | None:
        o = self.order_by_broker_id(perm_id=ev.perm_id, client_id=ev.client_id,
                                    order_id=ev.order_id, ref=ev.order_ref)
        if o is None:
            return None
        if ev.perm_id:
            o.perm_id = ev.perm_id
        if ev.order_id > 0 and o.order_id is None:
            o.order_id, o.client_id = ev.order_id, ev.client_id
        self._apply_broker_status(o, ev.status, now, broker_filled=ev.filled)
        return o

    def awaiting_executions(self, o: OrderRec, broker_filled: float) -> bool:
        """The broker counts more filled than the executions we have: they are on their way
        (a `Cancelled` may overtake a partial fill's execution). Never end the order on it."""
        return round(broker_filled) > o.filled

    def _apply_broker_status(self, o: OrderRec, status: str, now: dt.datetime, *,
                             broker_filled: float = 0.0) -> None:
        if o.terminal:
            return
        o.updated = now
        if status in _BROKER_CANCELLED | {"Inactive"} and \
                self.awaiting_executions(o, broker_filled):
            o.status = "working"                 # ended at the broker; executions pending
            return
        if status in _BROKER_WORKING:
            if status != "PendingSubmit":        # PendingSubmit is ib_async's own, not an ack
                o.status = "working"
        elif status == "Filled":
            if o.filled >= o.quantity:
                self._order_done(o, "filled", "filled", now)
            else:
                o.status = "working"             # the executions are on their way
        elif status in _BROKER_CANCELLED:
            self._order_done(o, "cancelled", "cancelled at the broker", now)
        elif status == "Inactive":
            self._order_done(o, "rejected" if o.filled == 0 else "cancelled",
                             "inactive at the broker", now)

    def on_error(self, ev: BrokerOrderError, now: dt.datetime) -> tuple[OrderRec | None, str]:
        """('reconcile' | 'rejected' | 'cancelled' | 'ignored')."""
        o = self.order_by_broker_id(perm_id=0, client_id=ev.client_id, order_id=ev.order_id,
                                    ref=ev.order_ref)
        if o is None or o.terminal:
            return o, "ignored"
        if ev.code in CANCEL_FAILED_CODES:
            return o, "reconcile"
        if ev.code == 202:
            self._order_done(o, "cancelled", ev.text, now)
            return o, "cancelled"
        if ev.code in REJECT_CODES and o.filled == 0 and o.status in ("submitting", "working"):
            o.error = f"{ev.code}: {ev.text}"
            self._order_done(o, "rejected", o.error, now)
            return o, "rejected"
        return o, "ignored"

    def on_execution(self, ex: BrokerExecution, *, multiplier: int = 100) -> FillRec | None:
        """Apply one execution of one of our orders (deduplicated by execId)."""
        if ex.exec_id in self.fills:
            f = self.fills[ex.exec_id]
            if f.commission is None and ex.commission is not None:
                f.commission = ex.commission
            return None
        o = self.order_by_broker_id(perm_id=ex.perm_id, client_id=ex.client_id,
                                    order_id=ex.order_id, ref=ex.order_ref)
        if o is None:
            return None                          # not ours: positions reconcile it
        shares = round(ex.shares)
        if shares <= 0:
            return None
        intent = self.intents[o.intent_id]
        option = intent.option
        if option is None:
            return None
        side: Side = "BUY" if ex.side == "BOT" else "SELL"
        if ex.perm_id:
            o.perm_id = ex.perm_id
        prev = o.filled
        o.filled = prev + shares
        o.avg_price = (o.avg_price * prev + ex.price * shares) / o.filled
        o.updated = ex.time
        held = self.positions.get(option.key)
        opened = held.opened_day if held is not None else ex.time.astimezone(ET).date()
        gross = self._book(option, intent, o, side, shares, ex.price, ex.time, multiplier)
        fill = FillRec(exec_id=ex.exec_id, ref=o.ref, intent_id=o.intent_id,
                       option_key=option.key, side=side, contracts=shares, price=ex.price,
                       time=ex.time, opening=side == "BUY", gross_pnl=gross,
                       commission=ex.commission, opened_day=opened)
        self.fills[ex.exec_id] = fill
        if self.last_exec_time is None or ex.time > self.last_exec_time:
            self.last_exec_time = ex.time
        if o.filled >= o.quantity and not o.terminal:
            self._order_done(o, "filled", "filled", ex.time)
        elif o.terminal and o.status != "filled" and o.filled >= o.quantity:
            o.status = "filled"
        self._settle(intent, ex.time)
        return fill

    def on_commission(self, exec_id: str, commission: float) -> FillRec | None:
        f = self.fills.get(exec_id)
        if f is None or f.commission is not None:
            return None
        f.commission = commission
        return f

    def _book(self, option: OptionSpec, intent: IntentRec, o: OrderRec, side: Side,
              shares: int, price: float, when: dt.datetime, multiplier: int) -> float:
        key = option.key
        pos = self.positions.get(key)
        if side == "BUY":
            if pos is None:
                pos = PositionRec(option=option, contracts=0, avg_premium=0.0, entry_ts=when,
                                  opened_day=when.astimezone(ET).date(),
                                  strategy=intent.strategy, entry_intent=intent.intent_id)
                pos.child_refs = [r for r in intent.refs if r != o.ref and
                                  self.orders[r].role in ("take_profit", "stop_loss")]
                self.positions[key] = pos
            total = pos.avg_premium * pos.contracts + price * shares
            pos.contracts += shares
            pos.avg_premium = total / pos.contracts
            return 0.0
        if pos is None:
            return 0.0
        closing = min(shares, max(0, pos.contracts))
        gross = (price - pos.avg_premium) * closing * multiplier
        pos.contracts -= shares
        if pos.contracts <= 0:
            self._close_position(pos, when, f"closed by {o.ref}")
        return gross

    def _close_position(self, pos: PositionRec, now: dt.datetime, why: str) -> None:
        """The position is flat: its exit (if any) is done, its bracket children are moot —
        and any sell of it still live at the broker must go (filled on a flat position, it
        would open a short)."""
        self.positions.pop(pos.key, None)
        refs = list(pos.child_refs)
        if pos.exit_intent and pos.exit_intent in self.intents:
            refs += self.intents[pos.exit_intent].refs
        for ref in refs:
            o = self.orders.get(ref)
            if o is not None and o.action == "SELL" and o.live and o.cancel_requested is None:
                o.cancel_requested = now
        if pos.exit_intent and pos.exit_intent in self.intents:
            ex = self.intents[pos.exit_intent]
            if not ex.terminal:
                own = any(self.orders[r].filled > 0 for r in ex.refs if r in self.orders)
                self._finish(ex, "filled" if own else "cancelled",
                             why if own else f"position already flat ({why})", now)

    # -- deadlines and cancels -----------------------------------------------------------------
    def entries_past_deadline(self, now: dt.datetime) -> list[IntentRec]:
        return [i for i in self.open_intents("entry")
                if i.deadline is not None and now >= i.deadline]

    def request_cancel(self, ref: str, now: dt.datetime) -> OrderRec:
        o = self.orders[ref]
        o.cancel_requested = now
        return o

    def drop_unsent(self, ref: str, why: str, now: dt.datetime) -> None:
        """An order never sent (status new) that should not be: it ends here."""
        o = self.orders[ref]
        if o.status != "new":
            raise ValueError(f"order {ref} is {o.status}, not unsent")
        self._order_done(o, "cancelled", why, now)

    def settle(self, intent: IntentRec, now: dt.datetime) -> None:
        """Re-derive an intent's state from its orders and position."""
        self._settle(intent, now)

    def cancels_wanted(self) -> list[OrderRec]:
        """Orders we asked to cancel that are still (possibly) at the broker."""
        return [o for o in self.orders.values() if o.live and o.cancel_requested is not None]

    def expire_unsent(self, intent: IntentRec, now: dt.datetime, why: str) -> None:
        """Orders never sent (or proven never received): they end here, not at the broker."""
        for o in self.orders_of(intent.intent_id):
            if o.status == "new":
                self._order_done(o, "cancelled", why, now)
        self._settle(intent, now)

    # -- reconciliation ------------------------------------------------------------------------
    def reconcile(self, snap: Snapshot, now: dt.datetime, *, multiplier: int = 100,
                  lost_after: dt.timedelta | None = None) -> ReconcileReport:
        """Bring the ledger in line with a COMPLETE set of broker answers.

        `lost_after`: an order of THIS session that the broker still does not know this long
        after it was sent (no open or completed order, no execution by its orderRef) is
        declared lost: a reply that never came must not block an exit for the session.
        """
        report = ReconcileReport()
        for ex in sorted(snap.executions, key=lambda e: e.time):
            fill = self.on_execution(ex, multiplier=multiplier)
            if fill is not None:
                report.applied_fills.append(fill)
                report.notes.append(f"fill recovered: {fill.side} {fill.contracts} "
                                    f"{fill.option_key} @ {fill.price:.2f} ({fill.ref})")
        by_ref_open = {b.order_ref: b for b in snap.open_orders if b.order_ref}
        by_ref_done = {b.order_ref: b for b in snap.completed_orders if b.order_ref}
        for o in list(self.orders.values()):
            if not o.live:
                continue
            seen = by_ref_open.get(o.ref)
            if seen is not None:
                o.order_id, o.perm_id, o.client_id = seen.order_id, seen.perm_id or o.perm_id, \
                    seen.client_id
                self._apply_broker_status(o, seen.status if seen.status != "PendingSubmit"
                                          else "Submitted", now, broker_filled=seen.filled)
                continue
            done = by_ref_done.get(o.ref)
            if done is not None:
                o.perm_id = done.perm_id or o.perm_id
                status = done.status if done.status in _BROKER_CANCELLED | {"Filled",
                                                                           "Inactive"} \
                    else "Cancelled"
                self._apply_broker_status(o, status, now, broker_filled=done.filled)
                if not o.terminal:               # filled before its executions arrived
                    report.warnings.append(f"{o.ref} {done.filled:g} filled at the broker "
                                           f"but {o.filled} in its executions: waiting for "
                                           "them")
                continue
            if (o.epoch or 0) >= snap.epoch:
                # sent on this very session: it may still be on its way, or it arrived after
                # the broker answered; declared lost only once the grace period is over
                age = now - o.updated
                if lost_after is None or age < lost_after or \
                        any(ex.order_ref == o.ref for ex in snap.executions):
                    continue
                self._order_done(o, "cancelled", f"lost: the broker does not know it "
                                                 f"{age.total_seconds():.0f} s after it was "
                                                 "sent", now)
                report.critical.append(
                    f"{o.ref} ({o.action} {o.quantity}, order id {o.order_id}) is not at the "
                    f"broker {age.total_seconds():.0f} s after it was sent: declared lost" +
                    ("; the exit is retried with a new order" if o.role == "exit" else ""))
                report.lost.append(o.ref)
                continue
            if o.status == "submitting":
                # sent on a session that is gone and not at the broker: it never arrived
                o.status, o.order_id, o.perm_id, o.client_id = "new", None, None, None
                o.updated = now
                report.notes.append(f"{o.ref} never reached the broker")
            else:
                self._order_done(o, "cancelled", "no longer at the broker", now)
                report.notes.append(f"{o.ref} no longer at the broker: cancelled")
        for intent in self.open_intents():
            self._settle(intent, now)
            if intent.terminal:
                continue
            if intent.kind == "entry" and self.sendable(intent.intent_id):
                parent = self.orders.get(intent.intent_id)
                if parent is not None and parent.status != "new":
                    for o in self.sendable(intent.intent_id):     # a child that never arrived
                        self._order_done(o, "cancelled", "bracket child never reached the "
                                                         "broker", now)
                        report.warnings.append(f"{o.ref} never reached the broker: the "
                                               "position is not protected natively")
                    pos = self.positions.get(intent.option_key or "")
                    if pos is not None:
                        pos.child_refs = [r for r in pos.child_refs
                                          if self.orders[r].status != "cancelled"]
                elif parent is not None and parent.status == "new":
                    if intent.deadline is not None and now >= intent.deadline:
                        intent.cancel_why = intent.cancel_why or "expired"
                        self.expire_unsent(intent, now, "deadline passed before it was sent")
                    else:
                        report.resubmit.append(intent.intent_id)
        self._reconcile_positions(snap.positions, now, report)
        return report

    def _reconcile_positions(self, positions: list[BrokerPosition], now: dt.datetime,
                             report: ReconcileReport) -> None:
        broker: dict[str, BrokerPosition] = {}
        for p in positions:
            if p.sec_type != "OPT" or p.option is None:
                if p.quantity:
                    report.notes.append(f"{p.symbol} {p.sec_type} position {p.quantity:g} is "
                                        "not an option: not ours, left alone")
                continue
            broker[p.option.key] = p
        keys = set(broker) | set(self.positions)
        seen_now: dict[str, tuple[int, int]] = {}
        for key in sorted(keys):
            ours = self.positions[key].contracts if key in self.positions else 0
            b = broker.get(key)
            theirs = round(b.quantity) if b is not None else 0
            if ours == theirs:
                continue
            seen_now[key] = (ours, theirs)
        confirmed = {k: v for k, v in seen_now.items() if self.suspects.get(k) == v}
        self.suspects = {k: v for k, v in seen_now.items() if k not in confirmed}
        report.suspects = len(self.suspects)
        for key, (ours, theirs) in confirmed.items():
            b = broker.get(key)
            if theirs < 0:
                report.critical.append(f"SHORT option position at the broker: {key} "
                                       f"{theirs}; the bot never sells short: left alone, "
                                       "operator action needed")
                if key in self.positions:
                    self._close_position(self.positions[key], now, "broker shows it short")
                continue
            if key in self.positions:
                pos = self.positions[key]
                if theirs == 0:
                    report.warnings.append(f"{key}: the broker holds none of our {ours}: "
                                           "position closed")
                    self._close_position(pos, now, "flat at the broker")
                else:
                    report.warnings.append(f"{key}: ledger {ours}, broker {theirs}: the "
                                           "broker's count adopted")
                    pos.contracts = theirs
                continue
            assert b is not None and b.option is not None
            mult = b.option.multiplier or 100
            self.positions[key] = PositionRec(
                option=b.option, contracts=theirs,
                avg_premium=round(b.avg_cost / mult, 4) if b.avg_cost > 0 else 0.0,
                entry_ts=now, opened_day=now.astimezone(ET).date(), strategy="C",
                managed=False)
            report.warnings.append(f"{key}: {theirs} contract(s) at the broker the ledger did "
                                   "not know: adopted as unmanaged (emergency stop, DTE and "
                                   "session-end exits apply)")

    # -- state transitions ---------------------------------------------------------------------
    def _order_done(self, o: OrderRec, status: OrderStatus, why: str, now: dt.datetime) -> None:
        if o.terminal:
            return
        o.status, o.updated = status, now
        if status != "filled" and why and not o.error:
            o.error = why
        intent = self.intents.get(o.intent_id)
        if intent is not None:
            self._settle(intent, now)

    def _settle(self, intent: IntentRec, now: dt.datetime) -> None:
        """Derive the intent's state from its orders (terminal once, never twice)."""
        if intent.terminal:
            return
        orders = self.orders_of(intent.intent_id)
        if intent.kind == "entry":
            parent = self.orders.get(intent.intent_id)
            if parent is None:
                return
            if parent.filled > 0 and (parent.terminal or parent.filled >= parent.quantity):
                self._finish(intent, "filled", f"{parent.filled}/{parent.quantity} filled "
                                               f"@ {parent.avg_price:.2f}", now)
                self._after_entry_fill(intent, parent, now)
            elif parent.status == "rejected":
                self._finish(intent, "rejected", parent.error or "rejected", now)
            elif parent.status == "cancelled":
                state: IntentState = "expired" if intent.cancel_why == "expired" else \
                    "cancelled"
                self._finish(intent, state, intent.cancel_why or parent.error or "cancelled",
                             now)
            return
        pos = self.positions.get(intent.option_key or "")
        if pos is None or pos.exit_intent != intent.intent_id:
            own = any(o.filled > 0 for o in orders)
            self._finish(intent, "filled" if own else "cancelled",
                         "position flat" if own else "position already flat", now)

    def _after_entry_fill(self, intent: IntentRec, parent: OrderRec, now: dt.datetime) -> None:
        """A partial entry keeps children sized for the whole order: they must go."""
        if parent.filled >= parent.quantity:
            return
        pos = self.positions.get(intent.option_key or "")
        if pos is not None:
            pos.child_refs = []
        for o in self.orders_of(intent.intent_id):
            if o.role not in ("take_profit", "stop_loss"):
                continue
            if o.status == "new":
                self._order_done(o, "cancelled", "entry only partly filled", now)
            elif o.live and o.cancel_requested is None:
                o.cancel_requested = now          # the caller cancels it at the broker

    def _finish(self, intent: IntentRec, state: IntentState, reason: str,
                now: dt.datetime) -> None:
        if intent.terminal:
            return
        intent.state, intent.reason, intent.terminal_at = state, reason, now
        self._changes.append(Change(intent.intent_id, intent.kind, state, intent.option_key,
                                    self._filled_of(intent), reason, now))

    def _change(self, intent: IntentRec, state: IntentState, reason: str,
                now: dt.datetime) -> None:
        intent.state = state
        self._changes.append(Change(intent.intent_id, intent.kind, state, intent.option_key,
                                    self._filled_of(intent), reason, now))

    def _filled_of(self, intent: IntentRec) -> int:
        if intent.kind == "entry":
            parent = self.orders.get(intent.intent_id)
            return parent.filled if parent else 0
        return sum(self.orders[r].filled for r in intent.refs if r in self.orders)

    # -- housekeeping --------------------------------------------------------------------------
    def prune(self, now: dt.datetime) -> None:
        """Forget terminal intents (and their orders and fills) older than KEEP_DONE."""
        cutoff = now - KEEP_DONE
        in_use = {p.entry_intent for p in self.positions.values()} | \
            {p.exit_intent for p in self.positions.values()}
        for iid, rec in list(self.intents.items()):
            if rec.terminal and rec.terminal_at is not None and rec.terminal_at < cutoff \
                    and iid not in in_use and \
                    not any(self.orders[r].live for r in rec.refs if r in self.orders):
                for r in rec.refs:
                    self.orders.pop(r, None)
                del self.intents[iid]
        for exec_id, f in list(self.fills.items()):
            if f.reported and f.time < cutoff:
                del self.fills[exec_id]
        if len(self.fills) > KEEP_EXEC_IDS:
            for exec_id in sorted(self.fills, key=lambda k: self.fills[k].time)[
                    :len(self.fills) - KEEP_EXEC_IDS]:
                del self.fills[exec_id]

    # -- persistence ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": LEDGER_VERSION,
            "intents": [intent_out(i) for i in self.intents.values()],
            "orders": [order_out(o) for o in self.orders.values()],
            "positions": [position_out(p) for p in self.positions.values()],
            "fills": [fill_out(f) for f in self.fills.values()],
            "suspects": {k: list(v) for k, v in self.suspects.items()},
            "last_exec_time": ts_out(self.last_exec_time),
            "epoch": self.epoch, "epoch_key": self.epoch_key,
            "bound_mode": self.bound_mode, "bound_account": self.bound_account,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Ledger:
        """Raises LedgerError if anything in it is not what this code wrote."""
        try:
            if doc.get("version") != LEDGER_VERSION:
                raise LedgerError(f"ledger version {doc.get('version')!r}, expected "
                                  f"{LEDGER_VERSION}")
            led = cls()
            for d in doc["intents"]:
                i = intent_in(d)
                led.intents[i.intent_id] = i
            for d in doc["orders"]:
                o = order_in(d)
                if o.intent_id not in led.intents:
                    raise LedgerError(f"order {o.ref} of unknown intent {o.intent_id}")
                led.orders[o.ref] = o
            for d in doc["positions"]:
                p = position_in(d)
                led.positions[p.key] = p
            for d in doc["fills"]:
                f = fill_in(d)
                led.fills[f.exec_id] = f
            led.suspects = {str(k): (int(v[0]), int(v[1]))
                            for k, v in dict(doc.get("suspects", {})).items()}
            led.last_exec_time = ts_in(doc.get("last_exec_time"))
            led.epoch, led.epoch_key = int(doc["epoch"]), str(doc["epoch_key"])
            mode, account = doc.get("bound_mode"), doc.get("bound_account")
            led.bound_mode = str(mode) if mode is not None else None
            led.bound_account = str(account) if account is not None else None
            return led
        except LedgerError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise LedgerError(f"malformed ledger: {exc!r}") from exc
