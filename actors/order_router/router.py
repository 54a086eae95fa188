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

import uuid
from typing import assert_never

import trio

from config.settings import Mode
from messages.orders import (
    CancelEntries,
    DaySummary,
    EntryIntent,
    EntryRefused,
    ExitIntent,
    SessionVerdict,
)
from runtime.supervision.actor import ActorContext

from .core import (
    Inbox,
    Outbox,
    Tuning,
)
from .dry_run import DryRunDesk
from .entries import Entries
from .exits import Exits
from .sessions import Sessions

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


class _Router(Entries, Exits, Sessions, DryRunDesk):
    """The actor's loops over the parts: ModeGuard's messages in, housekeeping."""

    async def intake(self) -> None:
        async for msg in self.inbox.orders:
            if isinstance(msg, SessionVerdict):        # ModeGuard's check: a veto only
                self.verdicts[msg.session_id] = \
                    self.verdicts.get(msg.session_id, True) and msg.ok
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

    def _note(self) -> str:
        led = self.ledger
        parts = [f"{len(led.positions)} position(s)", f"{len(led.open_intents())} open intent(s)"]
        if self.fault or self.persist_error:
            parts.append("FAULT")
        elif self.mode is not Mode.DRY_RUN and self.reconciled != self.session:
            parts.append("reconciling")
        return ", ".join(parts)

