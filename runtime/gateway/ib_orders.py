"""GatewayLink's order requests and the order events the Gateway pushes, on ib_async.

Requests (one reply each): place an order or a native bracket, cancel, the open and completed
orders, the executions, the positions, the account values. Events: order statuses, executions,
commission reports and order errors become immutable messages on `SessionEvents.broker`
(-> OrderRouter). Every ib_async object is read on the session's loop thread and copied into
plain values there; no Trade, Order or Contract ever leaves it.

Safety rules kept here, below the router's own:
  * a read-only session refuses orders before anything is sent (dry-run never places one);
  * a bracket is parent LMT + take-profit LMT + stop-loss STP, transmit false/false/true, the
    children pointing at the parent (IB sends the group when the last child arrives);
  * an order error is pushed as the broker said it; ib_async's own "Cancelled" status that
    it derives from an error is NOT pushed as a status (a 10148 "cannot cancel: filled" would
    otherwise look like a cancellation of an order that filled).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

import trio

from messages.base import Message
from messages.market import OptionSpec
from messages.orders import (
    AccountValues,
    AccountValuesRequest,
    BrokerCommission,
    BrokerEvent,
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
    GlobalCancel,
    OpenOrdersRequest,
    OrderLeg,
    PlacedOrders,
    PlaceOrders,
    PositionsRequest,
)
from runtime.gateway.ib_market import Handler
from runtime.gateway.link_transport import RequestRejected, SessionEvents, Subscriptions
from runtime.supervision.ordered import OrderedDelivery

if TYPE_CHECKING:
    from runtime.gateway.ib_transport import IbAsyncSession as IbSession

QUALIFY_TIMEOUT = 15.0
PLACE_TIMEOUT = 10.0
QUERY_TIMEOUT = 20.0
UNSET = 1.7976931348623157e308     # IB's "no value" double


# -- plain values out of ib_async objects (loop thread) --------------------------------------------


def _price(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and 0 < x < UNSET / 2 else None


def option_of(contract: Any) -> OptionSpec | None:
    """The OptionSpec of an ib_async option Contract (None for anything else)."""
    if getattr(contract, "secType", "") != "OPT":
        return None
    expiry = str(getattr(contract, "lastTradeDateOrContractMonth", "") or "")[:8]
    right = str(getattr(contract, "right", "") or "")[:1].upper()
    try:
        day = dt.date(int(expiry[:4]), int(expiry[4:6]), int(expiry[6:8]))
        return OptionSpec(underlying=contract.symbol, expiry=day,
                          strike=float(contract.strike), right=right,
                          multiplier=int(float(contract.multiplier or 100)),
                          trading_class=contract.tradingClass or None)
    except (ValueError, TypeError):
        return None


def _option_contract(spec: OptionSpec) -> Any:
    from ib_async import Option

    return Option(spec.underlying, spec.expiry.strftime("%Y%m%d"), spec.strike, spec.right,
                  spec.exchange or "SMART", multiplier=str(spec.multiplier), currency="USD",
                  tradingClass=spec.trading_class or "")


def _broker_order(session_id: int, trade: Any) -> BrokerOrder:
    o, st, c = trade.order, trade.orderStatus, trade.contract
    return BrokerOrder(
        session_id=session_id, order_id=int(o.orderId or 0), perm_id=int(o.permId or 0),
        client_id=int(o.clientId or 0), order_ref=str(o.orderRef or ""),
        parent_id=int(o.parentId or 0), action=str(o.action), quantity=float(o.totalQuantity),
        order_type=str(o.orderType), limit=_price(o.lmtPrice), stop=_price(o.auxPrice),
        status=str(st.status), filled=float(st.filled or 0), remaining=float(st.remaining or 0),
        con_id=int(getattr(c, "conId", 0) or 0), option=option_of(c))


def _execution(session: IbSession, fill: Any) -> BrokerExecution:
    ex, c = fill.execution, fill.contract
    known = session.ib.wrapper.fills.get(ex.execId, fill)     # carries the commission report
    report = known.commissionReport
    commission = _price(report.commission) if report is not None and report.execId else None
    realized = None
    if report is not None and report.execId:
        r = float(report.realizedPNL)
        realized = r if math.isfinite(r) and abs(r) < UNSET / 2 else None
    when = ex.time if isinstance(ex.time, dt.datetime) else fill.time
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return BrokerExecution(
        session_id=session.session_id, exec_id=str(ex.execId), order_id=int(ex.orderId or 0),
        perm_id=int(ex.permId or 0), client_id=int(ex.clientId or 0),
        order_ref=str(ex.orderRef or ""), con_id=int(c.conId or 0), symbol=str(c.symbol),
        sec_type=str(c.secType), option=option_of(c),
        side="BOT" if str(ex.side).upper() in ("BOT", "BUY") else "SLD",
        shares=float(ex.shares), price=float(ex.price), time=when, commission=commission,
        realized_pnl=realized)


# -- requests -------------------------------------------------------------------------------------


async def _qualify(session: IbSession, spec: OptionSpec) -> Any:
    ib = session.ib
    contract = _option_contract(spec)
    result = await session.ib_request("qualify", lambda: ib.qualifyContractsAsync(contract),
                                      timeout=QUALIFY_TIMEOUT)
    if not result or result[0] is None or not getattr(result[0], "conId", 0):
        raise RequestRejected(f"no such option: {spec.key}")
    return result[0]


def _build(leg: OrderLeg) -> Any:
    from ib_async import LimitOrder, MarketOrder, StopOrder

    order: Any
    if leg.order_type == "LMT":
        if leg.limit is None:
            raise RequestRejected(f"{leg.ref}: a limit order needs a limit price")
        order = LimitOrder(leg.action, leg.quantity, leg.limit)
    elif leg.order_type == "STP":
        if leg.stop is None:
            raise RequestRejected(f"{leg.ref}: a stop order needs a stop price")
        order = StopOrder(leg.action, leg.quantity, leg.stop)
    else:
        order = MarketOrder(leg.action, leg.quantity)
    order.orderRef = leg.ref
    order.tif = leg.tif
    order.outsideRth = False
    return order


async def place_orders(session: IbSession, req: PlaceOrders,
                       stream: trio.MemorySendChannel[Message] | None,
                       subs: Subscriptions) -> tuple[PlacedOrders, None]:
    if session.info.readonly:
        raise RequestRejected("the session is read-only: no order is sent")
    if not req.legs:
        raise RequestRejected("no order to place")
    orders = [_build(leg) for leg in req.legs]          # bad legs refused before any send
    contract = await _qualify(session, req.option)
    ib = session.ib

    async def place() -> tuple[list[int], int]:
        ids: list[int] = []
        last = len(orders) - 1
        for i, order in enumerate(orders):
            order.orderId = ib.client.getReqId()
            if req.bracket:
                order.transmit = i == last
                if i > 0:
                    order.parentId = ids[0]
            ib.placeOrder(contract, order)
            ids.append(order.orderId)
        return ids, int(ib.client.clientId)

    try:
        ids, client_id = await session.request("place_order", lambda: session.aio.run(place),
                                               timeout=PLACE_TIMEOUT)
    except trio.TooSlowError as exc:
        # the loop thread may have sent it: an unknown outcome, never a refusal
        raise ConnectionError("place_order got no answer: the order may have been sent") \
            from exc
    return PlacedOrders(order_ids=tuple(ids), client_id=client_id,
                        session_id=session.session_id), None


async def cancel_order(session: IbSession, req: CancelOrder,
                       stream: trio.MemorySendChannel[Message] | None,
                       subs: Subscriptions) -> tuple[None, None]:
    if session.info.readonly:
        raise RequestRejected("the session is read-only: no cancel is sent")
    ib = session.ib

    async def cancel() -> None:
        for trade in ib.trades():
            if trade.order.orderId == req.order_id and \
                    trade.order.clientId == ib.client.clientId:
                ib.cancelOrder(trade.order)
                return
        ib.client.cancelOrder(req.order_id, "")     # not seen in this session: ask anyway

    await session.request("cancel_order", lambda: session.aio.run(cancel),
                          timeout=PLACE_TIMEOUT)
    return None, None


async def open_orders(session: IbSession, req: OpenOrdersRequest,
                      stream: trio.MemorySendChannel[Message] | None,
                      subs: Subscriptions) -> tuple[BrokerOrders, None]:
    ib = session.ib
    sid = session.session_id

    async def fetch() -> BrokerOrders:
        trades = await ib.reqAllOpenOrdersAsync()
        return BrokerOrders(session_id=sid, orders=tuple(_broker_order(sid, t) for t in trades))

    result: BrokerOrders = await session.ib_request("open_orders", fetch, timeout=QUERY_TIMEOUT)
    return result, None


async def completed_orders(session: IbSession, req: CompletedOrdersRequest,
                           stream: trio.MemorySendChannel[Message] | None,
                           subs: Subscriptions) -> tuple[BrokerOrders, None]:
    ib = session.ib
    sid = session.session_id

    async def fetch() -> BrokerOrders:
        trades = await ib.reqCompletedOrdersAsync(False)
        return BrokerOrders(session_id=sid, orders=tuple(_broker_order(sid, t) for t in trades))

    result: BrokerOrders = await session.ib_request("completed_orders", fetch,
                                                    timeout=QUERY_TIMEOUT)
    return result, None


async def executions(session: IbSession, req: ExecutionsRequest,
                     stream: trio.MemorySendChannel[Message] | None,
                     subs: Subscriptions) -> tuple[BrokerExecutions, None]:
    ib = session.ib

    async def fetch() -> BrokerExecutions:
        fills = await ib.reqExecutionsAsync()
        out = [_execution(session, f) for f in fills]
        if req.since is not None:
            out = [e for e in out if e.time >= req.since]
        return BrokerExecutions(session_id=session.session_id, fills=tuple(out))

    result: BrokerExecutions = await session.ib_request("executions", fetch,
                                                        timeout=QUERY_TIMEOUT)
    return result, None


async def positions(session: IbSession, req: PositionsRequest,
                    stream: trio.MemorySendChannel[Message] | None,
                    subs: Subscriptions) -> tuple[BrokerPositions, None]:
    ib = session.ib

    async def fetch() -> BrokerPositions:
        rows = await ib.reqPositionsAsync()
        return BrokerPositions(session_id=session.session_id, positions=tuple(
            BrokerPosition(account=str(p.account), con_id=int(p.contract.conId or 0),
                           symbol=str(p.contract.symbol), sec_type=str(p.contract.secType),
                           option=option_of(p.contract), quantity=float(p.position),
                           avg_cost=float(p.avgCost or 0.0))
            for p in rows))

    result: BrokerPositions = await session.ib_request("positions", fetch,
                                                       timeout=QUERY_TIMEOUT)
    return result, None


async def account_values(session: IbSession, req: AccountValuesRequest,
                         stream: trio.MemorySendChannel[Message] | None,
                         subs: Subscriptions) -> tuple[AccountValues, None]:
    ib = session.ib

    async def fetch() -> AccountValues:
        rows = list(ib.accountValues())
        if not any(r.tag == "NetLiquidation" for r in rows):
            rows = list(await ib.accountSummaryAsync())
        values = {f"{r.tag}:{r.currency}" if r.currency else r.tag: str(r.value) for r in rows}
        net = None
        for r in rows:
            if r.tag == "NetLiquidation" and r.currency in ("USD", "BASE", ""):
                net = _price(r.value)
                if r.currency == "USD":
                    break
        return AccountValues(session_id=session.session_id, net_liquidation=net,
                             values=values)

    result: AccountValues = await session.ib_request("account_values", fetch,
                                                     timeout=QUERY_TIMEOUT)
    return result, None


async def global_cancel(session: IbSession, req: GlobalCancel,
                        stream: trio.MemorySendChannel[Message] | None,
                        subs: Subscriptions) -> tuple[None, None]:
    if session.info.readonly:
        raise RequestRejected("the session is read-only: no cancel is sent")
    ib = session.ib

    async def cancel_all() -> None:
        ib.reqGlobalCancel()

    await session.request("global_cancel", lambda: session.aio.run(cancel_all),
                          timeout=PLACE_TIMEOUT)
    return None, None


HANDLERS: dict[type[Message], Handler] = {
    PlaceOrders: place_orders,
    CancelOrder: cancel_order,
    GlobalCancel: global_cancel,
    OpenOrdersRequest: open_orders,
    CompletedOrdersRequest: completed_orders,
    ExecutionsRequest: executions,
    PositionsRequest: positions,
    AccountValuesRequest: account_values,
}


# -- pushed events --------------------------------------------------------------------------------


def attach_order_events(session: IbSession, events: SessionEvents) -> None:
    """On the loop thread: order statuses, executions, commissions and order errors -> trio."""
    channel = events.broker
    if channel is None:
        return
    ib, aio, sid, clock = session.ib, session.aio, session.session_id, session.clock
    # never drop an order event, never let a later one overtake it (a full channel queues)
    delivery: OrderedDelivery[BrokerEvent] = OrderedDelivery(channel)

    def push(msg: BrokerEvent) -> None:
        aio.to_trio(delivery.deliver, msg)

    def on_status(trade: Any) -> None:
        last = trade.log[-1] if trade.log else None
        if last is not None and getattr(last, "errorCode", None):
            return            # ib_async's own verdict after an error: the error is pushed
        o, st = trade.order, trade.orderStatus
        push(BrokerOrderStatus(
            session_id=sid, order_id=int(o.orderId or 0), perm_id=int(o.permId or 0),
            client_id=int(o.clientId or 0), order_ref=str(o.orderRef or ""),
            status=str(st.status), filled=float(st.filled or 0),
            remaining=float(st.remaining or 0), avg_fill_price=float(st.avgFillPrice or 0),
            ts=clock.now_utc_any_thread()))

    def on_exec(trade: Any, fill: Any) -> None:
        push(_execution(session, fill))

    def on_commission(trade: Any, fill: Any, report: Any) -> None:
        commission = _price(report.commission)
        if commission is None:
            return
        r = float(report.realizedPNL)
        push(BrokerCommission(session_id=sid, exec_id=str(report.execId), commission=commission,
                              realized_pnl=r if math.isfinite(r) and abs(r) < UNSET / 2
                              else None))

    def on_error(req_id: int, code: int, text: str, contract: object) -> None:
        if req_id <= 0:
            return
        trade = ib.wrapper.trades.get((ib.wrapper.clientId, req_id))
        if trade is None:
            return            # a request's error, not an order's: the request raises it
        push(BrokerOrderError(session_id=sid, order_id=req_id, client_id=int(ib.wrapper.clientId),
                              order_ref=str(trade.order.orderRef or ""), code=int(code),
                              text=str(text), ts=clock.now_utc_any_thread()))

    ib.orderStatusEvent += on_status
    ib.execDetailsEvent += on_exec
    ib.commissionReportEvent += on_commission
    ib.errorEvent += on_error
