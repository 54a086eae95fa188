"""OrderRouter's sessions and reconciliation: the broker's pushed events, each new session
served (mode verdict, account binding, reconciliation), the broker position snapshot the gate
reads, the account values."""

from __future__ import annotations

import datetime as dt
from typing import assert_never

import trio

from config.settings import Mode
from doctrine.ledger import (
    Snapshot,
)
from doctrine.modes import mode_problem
from messages.link import RestartSession
from messages.orders import (
    AccountReport,
    AccountValues,
    AccountValuesRequest,
    BrokerCommission,
    BrokerEvent,
    BrokerExecution,
    BrokerExecutions,
    BrokerOrderError,
    BrokerOrders,
    BrokerOrderStatus,
    BrokerPosition,
    BrokerPositions,
    CompletedOrdersRequest,
    ExecutionsRequest,
    OpenOrdersRequest,
    PositionsRequest,
)
from runtime.gateway.link_client import (
    LinkError,
)

from .core import STATE_NAME, RouterCore


class Sessions(RouterCore):
    async def broker_events(self) -> None:
        async for ev in self.inbox.broker:
            self.on_broker_event(ev)
            self.commit()

    def on_broker_event(self, ev: BrokerEvent) -> None:
        """One pushed order event into the ledger. Exhaustive over the channel's union: a new
        kind of event GatewayLink sends is a mypy error here until it is handled."""
        now = self.ctx.clock.now_utc()
        match ev:
            case BrokerOrderStatus():
                before = self._status_of(ev.order_ref)
                o = self.ledger.on_status(ev, now)
                if o is not None and o.status == "working" and \
                        self.ledger.awaiting_executions(o, ev.filled):
                    self.reconcile_soon.set()    # ended at the broker before its executions
                if o is not None and o.status != before:
                    self.ctx.emit("order_status", order_ref=o.ref, status=o.status,
                                  broker_status=ev.status, filled=o.filled)
            case BrokerExecution():
                mult = ev.option.multiplier if ev.option is not None else 100
                self.ledger.on_execution(ev, multiplier=mult)
            case BrokerCommission():
                self.ledger.on_commission(ev.exec_id, ev.commission)
            case BrokerOrderError():
                o, what = self.ledger.on_error(ev, now)
                if o is not None and what != "ignored":
                    self.ctx.emit("order_status", order_ref=o.ref, status=o.status,
                                  code=ev.code, text=ev.text)
                if what == "reconcile":
                    self.reconcile_soon.set()
                elif what == "rejected" and o is not None:
                    self.ctx.alert("warning", f"Order {o.ref} rejected", f"{ev.code}: {ev.text}",
                                   key=f"rejected:{o.ref}")
            case _:
                assert_never(ev)

    def _status_of(self, ref: str) -> str | None:
        o = self.ledger.orders.get(ref)
        return o.status if o is not None else None

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
        # the router checks the session itself (doctrine/modes.py); ModeGuard's verdict, when
        # it comes, can only veto (two independent checks must agree, no handshake to wait on)
        problem = mode_problem(self.ctx.settings, self.inbox.link_state.value)
        if problem is None and self.verdicts.get(sid) is not False:
            self.verdicts[sid] = True
        else:
            self.verdicts[sid] = False
            self.ctx.log.warning("session %d does not fit %s mode (%s): nothing is sent on it",
                                 sid, self.mode.words, problem or "ModeGuard's veto")
            self._status(sid, reconciled=False, detail="mode mismatch")
            await trio.sleep_forever()
        account = ",".join(sorted(a.strip() for a in self.inbox.link_state.value.accounts
                                  if a.strip())) or None
        problem = self.ledger.binding_problem(self.mode.value, account)
        if problem is not None:
            self.fault = f"order ledger refused: {problem}"
            self.ctx.alert("critical", "Trading HALTED: order ledger refused",
                           f"{self.store.path(STATE_NAME)}: {problem}; its positions are not "
                           "this account's, so nothing is sent. Move the file away (the "
                           "broker's positions stay as they are) and restart.",
                           key="ledger-state")
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
        if report.lost:
            # before anything can act on the lost orders: the retry goes on the new session
            self.stuck.add(sid)
            self._status(sid, reconciled=False, detail="stuck: a new session is requested")
        self.commit()
        self._check_deadlines()
        if report.lost:
            await self._restart_stuck_session(sid, report.lost)
        for intent_id in report.resubmit:
            if self.nursery is not None:
                self.nursery.start_soon(self._resubmit, intent_id)
        return True

    async def _restart_stuck_session(self, sid: int, refs: list[str]) -> None:
        """Orders this session never acknowledged and the lookup by orderRef (open orders,
        executions) did not find: the session is stuck, so force a new one. GatewayLink
        counts the restart by its cause (its restart-storm ledger), so a state that stays
        stuck pauses the link and alerts instead of looping it."""
        orders = ", ".join(refs)
        reason = (f"{orders} sent on session {sid} unknown to the broker "
                  f"{self.tuning.lost_after_market_s:.0f} s after sending")
        self.ctx.alert("critical", f"Stuck order {orders}: forcing a new Gateway session",
                       f"{reason} (not in its open orders nor its executions). The link "
                       "reconnects; the new session is reconciled and an exit is retried "
                       "there. If this keeps happening the link pauses (restart storm) and "
                       "alerts: check the Gateway.", key=f"stuck:{refs[0]}")
        try:
            await self.client.call(RestartSession(reason=reason, requested_by=self.ctx.path,
                                                  session_id=sid),
                                   timeout=self.tuning.request_timeout)
        except LinkError as exc:
            self.ctx.log.warning("new session not requested (%s): session %d may have ended "
                                 "already", exc, sid)

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

