"""The simulator's broker behind the in-process SimTransport, for money-path simulations.

`tools.fake_gateway.sim_transport` serves market data on trio's MockClock; the money path also
needs orders. This desk puts the simulator's own matching engine and books
(`tools.fake_gateway.broker.Broker`: brackets, OCA, DAY expiry, positions, commissions) behind
the same order requests the production handlers serve (runtime/gateway/ib_orders.py), and pushes the
broker's events to the session that owns the order, like a Gateway does. Events while nobody is
connected are lost, as on a real socket; the router must recover them by reconciliation.

Used by the money path's multi-day simulations (tests/system/money/test_five_days.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import trio

from config.market_calendar import ET
from messages.market import OptionSpec
from messages.orders import (
    AccountValues,
    AccountValuesRequest,
    BrokerCommission,
    BrokerExecution,
    BrokerExecutions,
    BrokerOrder,
    BrokerOrderError,
    BrokerOrders,
    BrokerOrderStatus,
    BrokerPosition,
    BrokerPositions,
    CancelOrder,
    CompletedOrdersRequest,
    ExecutionsRequest,
    OpenOrdersRequest,
    PlacedOrders,
    PlaceOrders,
    PositionsRequest,
)
from messages.orders import BrokerEvent as PushedEvent  # the bot's (vs. the broker's own)
from runtime.gateway.link_transport import RequestRejected, SessionParams, Subscriptions
from tools.fake_gateway.broker import (
    Broker,
    BrokerEvent,
    CancelEvent,
    Fill,
    FillEvent,
    OrderErrorEvent,
    OrderStatusEvent,
    OrderTicket,
    SimOrder,
)
from tools.fake_gateway.contracts import UNDERLYINGS, ContractSpec, option_contract
from tools.fake_gateway.sim_transport import SimGateway, SimSession, SimTransport

ENGINE_STEP_S = 5.0          # market seconds between matching passes during a session


def option_spec(c: ContractSpec) -> OptionSpec | None:
    if not c.is_option:
        return None
    return OptionSpec(underlying=c.symbol, expiry=c.expiry_date, strike=c.strike,
                      right=c.right,
                      multiplier=int(float(c.multiplier or 100)),
                      trading_class=c.trading_class or None)


@dataclass
class SimOrderDesk:
    gateway: SimGateway
    cash: float = 100_000.0
    broker: Broker = field(init=False)
    received: list[dict[str, Any]] = field(default_factory=list)      # the orders log
    channels: dict[int, trio.MemorySendChannel[PushedEvent]] = field(default_factory=dict)
    sessions: dict[int, int] = field(default_factory=dict)            # client id -> session
    live: dict[int, SimSession] = field(default_factory=dict)

    def __post_init__(self) -> None:
        gw = self.gateway
        self.broker = Broker(gw.market, gw.market.calendar, gw.account, self.cash)
        gw.handlers.update({PlaceOrders: self.place, CancelOrder: self.cancel,
                            OpenOrdersRequest: self.open_orders,
                            CompletedOrdersRequest: self.completed_orders,
                            ExecutionsRequest: self.executions,
                            PositionsRequest: self.positions,
                            AccountValuesRequest: self.account})

    @property
    def now(self) -> dt.datetime:
        return self.gateway.clock.now_utc()

    # -- the matching engine ---------------------------------------------------------------
    async def run_engine(self) -> None:
        clock, cal = self.gateway.clock, self.gateway.market.calendar
        while True:
            self.dispatch(self.broker.tick(self.now))
            session = cal.session_at(self.now)
            if session is not None:
                await clock.sleep_market(ENGINE_STEP_S)
            else:
                await clock.sleep_until(cal.next_session_after(self.now).open)

    # -- events to the owning session ------------------------------------------------------
    def dispatch(self, events: list[BrokerEvent]) -> None:
        for ev in events:
            if isinstance(ev, OrderStatusEvent):
                self.push(ev.order.client_id, self.status(ev.order))
            elif isinstance(ev, FillEvent):
                self.push(ev.order.client_id, self.execution(ev.fill, commission=False))
                self.push(ev.order.client_id, self.status(ev.order))
                self.push(ev.order.client_id, BrokerCommission(
                    session_id=self.sessions.get(ev.order.client_id, 0),
                    exec_id=ev.fill.exec_id, commission=ev.fill.commission,
                    realized_pnl=ev.fill.realized_pnl))
            elif isinstance(ev, CancelEvent):
                self.push(ev.order.client_id, self.status(ev.order))
                if ev.code is not None:
                    self.push(ev.order.client_id, self.error(ev.order.client_id,
                                                             ev.order.order_id,
                                                             ev.order.order_ref, ev.code,
                                                             ev.text))
            elif isinstance(ev, OrderErrorEvent):
                o = self.broker.order_for(ev.client_id, ev.order_id)
                self.push(ev.client_id, self.error(ev.client_id, ev.order_id,
                                                   o.order_ref if o else "", ev.code, ev.text))

    def push(self, client_id: int, msg: PushedEvent) -> None:
        channel = self.channels.get(client_id)
        session = self.live.get(client_id)
        if channel is None or session is None or session.lost.is_set():
            return                                   # nobody connected: the event is gone
        with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError,
                                 trio.ClosedResourceError):
            channel.send_nowait(msg)

    def status(self, o: SimOrder) -> BrokerOrderStatus:
        return BrokerOrderStatus(
            session_id=self.sessions.get(o.client_id, 0), order_id=o.order_id,
            perm_id=o.perm_id, client_id=o.client_id, order_ref=o.order_ref,
            status="PendingSubmit" if o.status == "Held" else o.status, filled=o.filled,
            remaining=o.remaining, avg_fill_price=o.avg_fill_price, ts=self.now)

    def error(self, client_id: int, order_id: int, ref: str, code: int,
              text: str) -> BrokerOrderError:
        return BrokerOrderError(session_id=self.sessions.get(client_id, 0), order_id=order_id,
                                client_id=client_id, order_ref=ref, code=code, text=text,
                                ts=self.now)

    def execution(self, f: Fill, *, commission: bool) -> BrokerExecution:
        return BrokerExecution(
            session_id=self.sessions.get(f.client_id, 0), exec_id=f.exec_id,
            order_id=f.order_id, perm_id=f.perm_id, client_id=f.client_id,
            order_ref=f.order_ref, con_id=f.spec.con_id, symbol=f.spec.symbol,
            sec_type=f.spec.sec_type, option=option_spec(f.spec),
            side=f.side,
            shares=f.shares, price=f.price, time=f.time,
            commission=f.commission if commission else None,
            realized_pnl=f.realized_pnl if commission else None)

    def order(self, session_id: int, o: SimOrder) -> BrokerOrder:
        return BrokerOrder(session_id=session_id, order_id=o.order_id, perm_id=o.perm_id,
                           client_id=o.client_id, order_ref=o.order_ref,
                           parent_id=0, action=o.action, quantity=o.quantity,
                           order_type=o.order_type, limit=o.lmt_price, stop=o.aux_price,
                           status=o.status, filled=o.filled, remaining=o.remaining,
                           con_id=o.spec.con_id, option=option_spec(o.spec))

    def day_start(self) -> dt.datetime:
        today = self.now.astimezone(ET).date()
        return dt.datetime.combine(today, dt.time(0), ET).astimezone(dt.UTC)

    # -- the order requests (what runtime/gateway/ib_orders.py serves in production) ---------------
    async def place(self, session: SimSession, req: PlaceOrders,
                    stream: Any, subs: Subscriptions) -> tuple[PlacedOrders, None]:
        if session.info.readonly:
            raise RequestRejected("the session is read-only: no order is sent")
        und = UNDERLYINGS.get(req.option.underlying)
        if und is None:
            raise RequestRejected(f"no such option: {req.option.key}")
        spec = option_contract(und, req.option.expiry, req.option.strike, req.option.right)
        cid = session.info.client_id
        ids: list[int] = []
        last = len(req.legs) - 1
        for i, leg in enumerate(req.legs):
            oid = self.broker.next_order_id(cid)
            ticket = OrderTicket(
                order_id=oid, action=leg.action, quantity=leg.quantity,
                order_type=leg.order_type, lmt_price=leg.limit, aux_price=leg.stop,
                tif=leg.tif, oca_group="", oca_type=0, account="", open_close="", origin=0,
                order_ref=leg.ref, transmit=(i == last) if req.bracket else True,
                parent_id=ids[0] if req.bracket and i > 0 else 0, outside_rth=False,
                trailing_percent=None, trail_stop_price=None, what_if=False)
            self.received.append({"ts": self.now.isoformat(), "clientId": cid, "orderId": oid,
                                  "orderRef": leg.ref, "action": leg.action,
                                  "qty": leg.quantity, "type": leg.order_type,
                                  "transmit": ticket.transmit, "parentId": ticket.parent_id})
            self.dispatch(self.broker.place(cid, spec, ticket, self.now))
            ids.append(oid)
        await trio.lowlevel.checkpoint()
        return PlacedOrders(order_ids=tuple(ids), client_id=cid,
                            session_id=session.session_id), None

    async def cancel(self, session: SimSession, req: CancelOrder, stream: Any,
                     subs: Subscriptions) -> tuple[None, None]:
        if session.info.readonly:
            raise RequestRejected("the session is read-only: no cancel is sent")
        self.dispatch(self.broker.cancel(session.info.client_id, req.order_id, self.now))
        await trio.lowlevel.checkpoint()
        return None, None

    async def open_orders(self, session: SimSession, req: OpenOrdersRequest, stream: Any,
                          subs: Subscriptions) -> tuple[BrokerOrders, None]:
        await trio.lowlevel.checkpoint()
        return BrokerOrders(session_id=session.session_id, orders=tuple(
            self.order(session.session_id, o) for o in self.broker.open_orders())), None

    async def completed_orders(self, session: SimSession, req: CompletedOrdersRequest,
                               stream: Any, subs: Subscriptions) -> tuple[BrokerOrders, None]:
        await trio.lowlevel.checkpoint()
        return BrokerOrders(session_id=session.session_id, orders=tuple(
            self.order(session.session_id, o)
            for o in self.broker.completed_orders(self.day_start()))), None

    async def executions(self, session: SimSession, req: ExecutionsRequest, stream: Any,
                         subs: Subscriptions) -> tuple[BrokerExecutions, None]:
        await trio.lowlevel.checkpoint()
        return BrokerExecutions(session_id=session.session_id, fills=tuple(
            self.execution(f, commission=True).model_copy(
                update={"session_id": session.session_id})
            for f in self.broker.fills_since(self.day_start()))), None

    async def positions(self, session: SimSession, req: PositionsRequest, stream: Any,
                        subs: Subscriptions) -> tuple[BrokerPositions, None]:
        await trio.lowlevel.checkpoint()
        return BrokerPositions(session_id=session.session_id, positions=tuple(
            BrokerPosition(account=self.gateway.account, con_id=p.spec.con_id,
                           symbol=p.spec.symbol, sec_type=p.spec.sec_type,
                           option=option_spec(p.spec), quantity=p.quantity,
                           avg_cost=p.avg_cost)
            for p in self.broker.open_positions())), None

    async def account(self, session: SimSession, req: AccountValuesRequest, stream: Any,
                      subs: Subscriptions) -> tuple[AccountValues, None]:
        await trio.lowlevel.checkpoint()
        values = self.broker.account_values(self.now)
        return AccountValues(session_id=session.session_id,
                             net_liquidation=values["NetLiquidation"]), None


@dataclass(frozen=True)
class DeskTransport:
    """SimTransport whose sessions also carry the broker's pushed events."""

    inner: SimTransport
    desk: SimOrderDesk

    @property
    def liveness_interval(self) -> float:
        return self.inner.liveness_interval

    @property
    def liveness_deadline(self) -> float:
        return self.inner.liveness_deadline

    async def port_open(self) -> bool:
        return await self.inner.port_open()

    @contextlib.asynccontextmanager
    async def open_session(self, params: SessionParams) -> AsyncIterator[SimSession]:
        async with self.inner.open_session(params) as session:
            cid = session.info.client_id
            if params.events.broker is not None:
                self.desk.channels[cid] = params.events.broker
                self.desk.sessions[cid] = session.session_id
                self.desk.live[cid] = session
            try:
                yield session
            finally:
                if self.desk.sessions.get(cid) == session.session_id:
                    self.desk.channels.pop(cid, None)
                    self.desk.sessions.pop(cid, None)
                    self.desk.live.pop(cid, None)
