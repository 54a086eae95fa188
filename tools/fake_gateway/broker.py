"""The broker's truth: orders, fills, positions and cash, independent of any client connection.

It lives in the FakeGateway object, not in a connection, so it survives client reconnects and a
simulated Gateway restart — and the matching engine keeps running while nobody is connected (a
resting order can fill during a restart; the next connection learns about it from reqExecutions,
reqPositions and the open/completed orders, exactly like the bot's reconciliation must).

Operations return `BrokerEvent`s; the gateway routes them to the right connections. The broker
never formats wire messages and never does I/O (the orders log is the gateway's job).

Fill rules (simplifications are documented here, the single place that defines them):
* MKT fills at the ask (buy) / bid (sell) during the session, at the next open otherwise;
* LMT fills when the ask (buy) / bid (sell) reaches the limit, at the better of limit and quote;
* STP triggers on the bid/ask for options, on the last price for stocks, then fills like MKT
  but never better than the stop price; STP LMT becomes a limit order; TRAIL follows the
  high-water mark by `auxPrice` or `trailingPercent`;
* crossings are checked against the price range since the previous check (so a fast clock does
  not skip fills); the whole quantity fills at once (top-of-book liquidity is not modelled);
* bracket children wait (PreSubmitted) until their parent fills; children of one parent, and
  orders sharing an ocaGroup, cancel each other (ocaType 2/3: reduce instead);
* DAY orders are cancelled at the close; options expiring in the money settle for cash at their
  intrinsic value at the close of the expiry session (no stock delivery).
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from collections import deque
from dataclasses import dataclass

from config.market_calendar import ET, MarketCalendar, Session
from tools.fake_gateway.contracts import STK, ContractSpec
from tools.fake_gateway.market import Market

OPTION_COMMISSION_PER_CONTRACT = 0.65
STOCK_COMMISSION_PER_SHARE = 0.005
MIN_COMMISSION = 1.00
PERM_ID_BASE = 1_900_000_000
RETAINED_DONE = 20_000          # completed orders / fills kept (bounded memory)

SUPPORTED_TYPES = {"MKT", "LMT", "STP", "STP LMT", "TRAIL"}
SUPPORTED_TIFS = {"", "DAY", "GTC", "IOC"}
WORKING = ("PreSubmitted", "Submitted")


@dataclass(slots=True)
class OrderTicket:
    """What a placeOrder request asks for (parsed by `incoming.parse_place_order`)."""

    order_id: int
    action: str
    quantity: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    oca_group: str
    oca_type: int
    account: str
    open_close: str
    origin: int
    order_ref: str
    transmit: bool
    parent_id: int
    outside_rth: bool
    trailing_percent: float | None
    trail_stop_price: float | None
    what_if: bool
    good_till_date: str = ""
    good_after_time: str = ""
    conditions: int = 0
    algo_strategy: str = ""


@dataclass(slots=True)
class SimOrder:
    perm_id: int
    client_id: int
    order_id: int
    spec: ContractSpec
    action: str
    quantity: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    oca_group: str
    oca_type: int
    account: str
    open_close: str
    origin: int
    order_ref: str
    transmit: bool
    parent_id: int
    outside_rth: bool
    trailing_percent: float | None
    trail_stop_price: float | None
    created: dt.datetime
    status: str = "Held"        # Held = not transmitted (the client shows PendingSubmit)
    active: bool = False        # eligible to fill (transmitted, parent filled)
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    commission: float | None = None
    triggered: bool = False
    high_water: float | None = None
    checked_until: dt.datetime | None = None
    completed: dt.datetime | None = None
    completed_status: str = ""
    parent_perm_id: int = 0
    why_held: str = ""

    @property
    def remaining(self) -> float:
        return max(0.0, self.quantity - self.filled)

    @property
    def done(self) -> bool:
        return self.status in ("Filled", "Cancelled", "Inactive")

    @property
    def working(self) -> bool:
        return self.status in WORKING

    @property
    def is_buy(self) -> bool:
        return self.action == "BUY"


@dataclass(frozen=True, slots=True)
class Fill:
    exec_id: str
    perm_id: int
    client_id: int
    order_id: int
    spec: ContractSpec
    side: str              # BOT / SLD
    shares: float
    price: float
    time: dt.datetime
    cum_qty: float
    avg_price: float
    order_ref: str
    account: str
    exchange: str
    commission: float
    realized_pnl: float | None


@dataclass(slots=True)
class Position:
    spec: ContractSpec
    quantity: float = 0.0
    avg_cost: float = 0.0       # per unit, multiplier and commissions included (IB's avgCost)
    realized: float = 0.0


# -- events -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OrderStatusEvent:
    """openOrder + orderStatus for the owner (`order` is a snapshot)."""

    order: SimOrder


@dataclass(frozen=True, slots=True)
class FillEvent:
    order: SimOrder
    fill: Fill


@dataclass(frozen=True, slots=True)
class CancelEvent:
    order: SimOrder
    code: int | None        # 202 when the client asked; None for OCA/expiry cancellations
    text: str


@dataclass(frozen=True, slots=True)
class OrderErrorEvent:
    client_id: int
    order_id: int
    code: int
    text: str


@dataclass(frozen=True, slots=True)
class WhatIfEvent:
    client_id: int
    order: SimOrder
    init_margin: float
    commission: float


@dataclass(frozen=True, slots=True)
class PositionEvent:
    position: Position


BrokerEvent = (OrderStatusEvent | FillEvent | CancelEvent | OrderErrorEvent | WhatIfEvent |
               PositionEvent)


def commission_for(spec: ContractSpec, shares: float, price: float) -> float:
    if spec.sec_type == STK:
        fee = STOCK_COMMISSION_PER_SHARE * shares
        return round(min(max(MIN_COMMISSION, fee), 0.01 * shares * price), 4) \
            if shares * price > 0 else MIN_COMMISSION
    return round(max(MIN_COMMISSION, OPTION_COMMISSION_PER_CONTRACT * shares), 4)


@dataclass(frozen=True, slots=True)
class Quote:
    bid: float | None
    ask: float
    last: float
    lo: float      # lowest traded/mid price since the last check
    hi: float


class Broker:
    """One paper account at IB: the order book, the matching engine and the ledger."""

    def __init__(self, market: Market, calendar: MarketCalendar, account: str,
                 cash: float) -> None:
        self.market = market
        self.calendar = calendar
        self.account = account
        self.cash = cash
        self.orders: dict[int, SimOrder] = {}                 # permId → order
        self._by_client: dict[tuple[int, int], int] = {}      # (clientId, orderId) → permId
        self.fills: deque[Fill] = deque(maxlen=RETAINED_DONE)
        self.positions: dict[int, Position] = {}
        self._next_perm = PERM_ID_BASE
        self._exec_seq = 0
        self._max_order_id: dict[int, int] = {}
        self._last_tick: dt.datetime | None = None

    # -- queries ----------------------------------------------------------------------------
    def next_order_id(self, client_id: int) -> int:
        return self._max_order_id.get(client_id, 0) + 1

    def order_for(self, client_id: int, order_id: int) -> SimOrder | None:
        perm = self._by_client.get((client_id, order_id))
        return self.orders.get(perm) if perm is not None else None

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        """Working orders (transmitted, not done), oldest first; one client's or all."""
        return [o for o in self.orders.values()
                if o.status != "Held" and not o.done and
                (client_id is None or o.client_id == client_id)]

    def completed_orders(self, since: dt.datetime) -> list[SimOrder]:
        return [o for o in self.orders.values()
                if o.done and o.completed is not None and o.completed >= since]

    def fills_since(self, since: dt.datetime) -> list[Fill]:
        return [f for f in self.fills if f.time >= since]

    def open_positions(self) -> list[Position]:
        return [p for p in self.positions.values() if p.quantity != 0]

    # -- pricing helpers --------------------------------------------------------------------
    def _quote(self, spec: ContractSpec, now: dt.datetime, since: dt.datetime | None) -> Quote:
        session = self.calendar.session_at(now)
        if spec.is_option:
            q = self.market.option_quote(spec, now)
            bid, ask, mid = q.market.bid, q.market.ask, q.market.mid
            lo = hi = mid
            if session is not None and since is not None and since < now:
                und = self.market.series(spec.symbol).aggregate(
                    session, max(since, session.open), now)
                if und is not None:
                    a, _, _ = self.market.option_theo(spec, und.low, q.vix, now)
                    b, _, _ = self.market.option_theo(spec, und.high, q.vix, now)
                    shift = mid - q.model.price
                    lo, hi = min(a, b) + shift, max(a, b) + shift
            return Quote(bid, ask, q.last, min(lo, mid), max(hi, mid))
        sq = self.market.stock_quote(spec.symbol, now)
        lo = hi = sq.last
        if session is not None and since is not None and since < now:
            bar = self.market.series(spec.symbol).aggregate(session, max(since, session.open),
                                                            now)
            if bar is not None:
                lo, hi = bar.low, bar.high
        return Quote(sq.bid, sq.ask, sq.last, min(lo, sq.last), max(hi, sq.last))

    def mark(self, spec: ContractSpec, now: dt.datetime) -> float:
        if spec.is_option:
            return self.market.option_quote(spec, now).market.mid
        return self.market.stock_quote(spec.symbol, now).last

    # -- placing ----------------------------------------------------------------------------
    def place(self, client_id: int, spec: ContractSpec, t: OrderTicket,
              now: dt.datetime) -> list[BrokerEvent]:
        self._max_order_id[client_id] = max(self._max_order_id.get(client_id, 0), t.order_id)
        existing = self.order_for(client_id, t.order_id)
        if existing is not None and not t.what_if:
            return self._modify(existing, spec, t, now)
        problem = self._validate(client_id, spec, t)
        if problem is not None:
            code, text = problem
            return [OrderErrorEvent(client_id, t.order_id, code, text)]
        order = SimOrder(
            perm_id=0, client_id=client_id, order_id=t.order_id, spec=spec,
            action=t.action, quantity=t.quantity, order_type=t.order_type,
            lmt_price=t.lmt_price, aux_price=t.aux_price, tif=t.tif or "DAY",
            oca_group=t.oca_group, oca_type=t.oca_type, account=t.account or self.account,
            open_close=t.open_close, origin=t.origin, order_ref=t.order_ref,
            transmit=t.transmit, parent_id=t.parent_id, outside_rth=t.outside_rth,
            trailing_percent=t.trailing_percent, trail_stop_price=t.trail_stop_price,
            created=now,
        )
        if t.what_if:
            price = t.lmt_price or self.mark(spec, now)
            init = round(price * spec.price_multiplier * t.quantity, 2)
            return [WhatIfEvent(client_id, order, init, commission_for(spec, t.quantity, price))]
        if t.action == "BUY":
            need = self._cost_estimate(spec, t, now)
            available = self.cash
            if need > available + 1e-6 and self._position_qty(spec) >= 0:
                return [OrderErrorEvent(
                    client_id, t.order_id, 201,
                    "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE "
                    f"DESIRED POSITION YOUR AVAILABLE FUNDS [{available:.2f} USD] MUST EXCEED "
                    f"THE ORDER'S COST [{need:.2f} USD]")]
        self._next_perm += 1
        order.perm_id = self._next_perm
        self.orders[order.perm_id] = order
        self._by_client[(client_id, t.order_id)] = order.perm_id
        parent = self.order_for(client_id, t.parent_id) if t.parent_id else None
        if parent is not None:
            order.parent_perm_id = parent.perm_id
        events: list[BrokerEvent] = []
        if t.transmit:
            events += self._transmit_group(order, now)
        return events

    def _position_qty(self, spec: ContractSpec) -> float:
        pos = self.positions.get(spec.con_id)
        return pos.quantity if pos else 0.0

    def _cost_estimate(self, spec: ContractSpec, t: OrderTicket, now: dt.datetime) -> float:
        if t.order_type in ("LMT", "STP LMT") and t.lmt_price:
            price = t.lmt_price
        elif t.order_type == "STP" and t.aux_price:
            price = max(t.aux_price, self._quote(spec, now, None).ask)
        else:
            price = self._quote(spec, now, None).ask
        return price * spec.price_multiplier * t.quantity + commission_for(spec, t.quantity, price)

    def _validate(self, client_id: int, spec: ContractSpec,
                  t: OrderTicket) -> tuple[int, str] | None:
        if t.action not in ("BUY", "SELL"):
            return 201, f"Order rejected - reason:Invalid action '{t.action}'"
        if not (t.quantity > 0) or not math.isfinite(t.quantity):
            return 434, "The order size cannot be zero."
        if t.quantity != int(t.quantity):
            return 201, "Order rejected - reason:Fractional quantities are not supported"
        if t.order_type not in SUPPORTED_TYPES:
            return 387, "Unsupported order type for this exchange and security type."
        if t.tif.upper() not in SUPPORTED_TIFS:
            return 201, f"Order rejected - reason:Time in force '{t.tif}' is not supported"
        if t.order_type in ("LMT", "STP LMT") and (t.lmt_price is None or t.lmt_price <= 0):
            return 201, "Order rejected - reason:The limit price is missing or invalid"
        if t.order_type in ("STP", "STP LMT") and (t.aux_price is None or t.aux_price <= 0):
            return 201, "Order rejected - reason:The stop price is missing or invalid"
        if t.order_type == "TRAIL" and not (t.aux_price or t.trailing_percent):
            return 201, "Order rejected - reason:A trailing amount or percent is required"
        if spec.sec_type not in ("STK", "OPT"):
            return 201, f"Order rejected - reason:{spec.symbol} {spec.sec_type} is not tradable"
        for price in (t.lmt_price, t.aux_price):
            if price is not None and price > 0 and abs(round(price, 2) - price) > 1e-9:
                return 110, "The price does not conform to the minimum price variation for " \
                            "this contract."
        if t.account and t.account != self.account:
            return 201, f"Order rejected - reason:Account {t.account} is not managed"
        if t.conditions:
            return 201, "Order rejected - reason:Conditional orders are not supported by the " \
                        "simulator"
        if t.algo_strategy:
            return 201, "Order rejected - reason:IB algos are not supported by the simulator"
        if t.parent_id:
            parent = self.order_for(client_id, t.parent_id)
            if parent is None or parent.status == "Cancelled":
                return 201, "Order rejected - reason:Parent order is not found or cancelled"
        return None

    def _transmit_group(self, order: SimOrder, now: dt.datetime) -> list[BrokerEvent]:
        """Transmit `order` and every held order of its bracket (IB sends the group at once)."""
        group = [order]
        root = self.orders.get(order.parent_perm_id) if order.parent_perm_id else order
        if root is not None:
            group = [root] + [o for o in self.orders.values()
                              if o.parent_perm_id == root.perm_id]
        events: list[BrokerEvent] = []
        for o in group:
            if o.status != "Held":
                continue
            o.transmit = True
            o.status = "PreSubmitted"
            o.checked_until = now
            events.append(OrderStatusEvent(copy.copy(o)))
            parent = self.orders.get(o.parent_perm_id) if o.parent_perm_id else None
            if parent is None or parent.status == "Filled":
                events += self._activate(o, now)
        for o in group:
            if o.active and o.working:
                events += self._evaluate(o, now, first=True)
        return events

    def _activate(self, o: SimOrder, now: dt.datetime) -> list[BrokerEvent]:
        o.active = True
        o.checked_until = now
        simulated_stop = o.order_type in ("STP", "STP LMT", "TRAIL") and o.spec.is_option
        if o.status == "PreSubmitted" and not simulated_stop:
            o.status = "Submitted"
            return [OrderStatusEvent(copy.copy(o))]
        return []

    def _modify(self, o: SimOrder, spec: ContractSpec, t: OrderTicket,
                now: dt.datetime) -> list[BrokerEvent]:
        if o.done:
            return [OrderErrorEvent(o.client_id, o.order_id, 104 if o.status == "Filled" else 103,
                                    "Cannot modify a filled order." if o.status == "Filled" else
                                    f"Duplicate order id {o.order_id}")]
        if spec.con_id != o.spec.con_id:
            return [OrderErrorEvent(o.client_id, o.order_id, 201,
                                    "Order rejected - reason:Cannot change the contract of an "
                                    "existing order")]
        problem = self._validate(o.client_id, spec, t)
        if problem is not None:
            return [OrderErrorEvent(o.client_id, o.order_id, *problem)]
        o.quantity = t.quantity
        o.order_type = t.order_type
        o.lmt_price = t.lmt_price
        o.aux_price = t.aux_price
        o.tif = t.tif or o.tif
        o.order_ref = t.order_ref or o.order_ref
        o.trailing_percent = t.trailing_percent
        o.trail_stop_price = t.trail_stop_price
        o.outside_rth = t.outside_rth
        events: list[BrokerEvent] = []
        if o.status == "Held":
            if t.transmit:
                events += self._transmit_group(o, now)
            return events
        events.append(OrderStatusEvent(copy.copy(o)))
        if o.active and o.working:
            events += self._evaluate(o, now, first=True)
        return events

    # -- cancelling -------------------------------------------------------------------------
    def cancel(self, client_id: int, order_id: int, now: dt.datetime) -> list[BrokerEvent]:
        o = self.order_for(client_id, order_id)
        if o is None:
            return [OrderErrorEvent(client_id, order_id, 10147,
                                    f"OrderId {order_id} that needs to be cancelled is not "
                                    "found.")]
        if o.done:
            return [OrderErrorEvent(client_id, order_id, 10148,
                                    f"OrderId {order_id} that needs to be cancelled cannot be "
                                    f"cancelled, state: {o.status}.")]
        return self._cancel(o, now, 202, "Order Canceled - reason:")

    def cancel_all(self, now: dt.datetime) -> list[BrokerEvent]:
        events: list[BrokerEvent] = []
        for o in list(self.orders.values()):
            if not o.done and o.status != "Held":
                events += self._cancel(o, now, 202, "Order Canceled - reason:")
        return events

    def _cancel(self, o: SimOrder, now: dt.datetime, code: int | None,
                text: str) -> list[BrokerEvent]:
        if o.done:
            return []
        held = o.status == "Held"
        o.status = "Cancelled"
        o.active = False
        o.completed = now
        o.completed_status = "Cancelled by Trader" if code == 202 else "Cancelled"
        events: list[BrokerEvent] = [] if held else [CancelEvent(copy.copy(o), code, text)]
        for child in [c for c in self.orders.values() if c.parent_perm_id == o.perm_id]:
            if o.filled == 0:
                events += self._cancel(child, now, None, "")
        return events

    # -- matching ---------------------------------------------------------------------------
    def tick(self, now: dt.datetime) -> list[BrokerEvent]:
        """Run the matching engine up to `now`: fills, DAY expiries, option settlement."""
        events: list[BrokerEvent] = []
        last = self._last_tick
        self._last_tick = now
        if last is not None:
            for session in self._closed_between(last, now):
                events += self._end_of_session(session)
        for o in list(self.orders.values()):
            if o.active and o.working:
                events += self._evaluate(o, now, first=False)
        return events

    def _closed_between(self, a: dt.datetime, b: dt.datetime) -> list[Session]:
        if b <= a:
            return []
        first = a.astimezone(ET).date()
        last = b.astimezone(ET).date()
        try:
            sessions = self.calendar.sessions(first, last)
        except LookupError:
            return []
        return [s for s in sessions if a < s.close <= b]

    def _end_of_session(self, session: Session) -> list[BrokerEvent]:
        events: list[BrokerEvent] = []
        close = session.close
        for o in list(self.orders.values()):
            if o.done:
                continue
            expired_option = o.spec.is_option and o.spec.expiry_date <= session.date
            if (o.tif in ("DAY", "") and o.status != "Held") or expired_option:
                events += self._cancel(o, close, None, "")
        for pos in list(self.positions.values()):
            spec = pos.spec
            if pos.quantity == 0 or not spec.is_option or spec.expiry_date > session.date:
                continue
            spot = self.market.series(spec.symbol).day(session).c[-1]
            intrinsic = max(0.0, spot - spec.strike) if spec.right == "C" else \
                max(0.0, spec.strike - spot)
            mult = spec.price_multiplier
            proceeds = pos.quantity * intrinsic * mult
            self.cash += proceeds
            pos.realized += proceeds - pos.quantity * pos.avg_cost
            pos.quantity = 0.0
            pos.avg_cost = 0.0
            events.append(PositionEvent(copy.copy(pos)))
        return events

    def _evaluate(self, o: SimOrder, now: dt.datetime, *, first: bool) -> list[BrokerEvent]:
        session = self.calendar.session_at(now)
        if session is None:
            return []
        since = o.checked_until if (o.checked_until and not first) else now
        if since < session.open:
            since = session.open
        o.checked_until = now
        q = self._quote(o.spec, now, since)
        price = self._match_price(o, q, first)
        if price is None:
            if o.tif == "IOC":
                return self._cancel(o, now, None, "")
            return []
        return self._fill(o, price, now)

    def _match_price(self, o: SimOrder, q: Quote, first: bool) -> float | None:
        """The execution price if `o` can trade now (or did since the last check), else None."""
        buy = o.is_buy
        has_bid = q.bid is not None
        bid = q.bid if q.bid is not None else 0.0
        if o.spec.is_option:
            half = (q.ask - bid) / 2 if has_bid else q.ask / 2
            min_ask, max_ask = q.lo + half, q.hi + half
            min_bid, max_bid = q.lo - half, q.hi - half
        else:
            min_ask, max_ask, min_bid, max_bid = q.lo, q.hi, q.lo, q.hi
        min_ask, max_ask = min(min_ask, q.ask), max(max_ask, q.ask)
        if has_bid:
            min_bid, max_bid = min(min_bid, bid), max(max_bid, bid)
        if o.order_type in ("STP", "STP LMT", "TRAIL") and not o.triggered:
            stop = self._stop_level(o, q)
            if stop is None:
                return None
            if o.spec.is_option:
                hit = max_ask >= stop if buy else (has_bid and min_bid <= stop)
            else:
                hit = q.hi >= stop if buy else q.lo <= stop
            if not hit:
                return None
            o.triggered = True
            if o.order_type in ("STP", "TRAIL"):
                if buy:
                    return round(max(stop, q.ask), 2)
                return round(min(stop, bid), 2) if has_bid else None
        if o.order_type in ("MKT", "STP", "TRAIL"):
            if buy:
                return q.ask
            return bid if has_bid else None
        limit = o.lmt_price
        if limit is None:
            return None
        if buy:
            if q.ask <= limit + 1e-9:
                return q.ask
            if not first and min_ask <= limit + 1e-9:
                return limit
            return None
        if has_bid and bid >= limit - 1e-9:
            return bid
        if not first and has_bid and max_bid >= limit - 1e-9:
            return limit
        return None

    def _stop_level(self, o: SimOrder, q: Quote) -> float | None:
        if o.order_type != "TRAIL":
            return o.aux_price
        ref_hi = q.hi if not o.is_buy else q.lo
        if o.high_water is None:
            o.high_water = ref_hi
        elif o.is_buy:
            o.high_water = min(o.high_water, ref_hi)
        else:
            o.high_water = max(o.high_water, ref_hi)
        if o.trailing_percent:
            offset = o.high_water * o.trailing_percent / 100.0
        else:
            offset = o.aux_price or 0.0
        computed = o.high_water + offset if o.is_buy else o.high_water - offset
        if o.trail_stop_price:
            computed = min(computed, o.trail_stop_price) if o.is_buy else \
                max(computed, o.trail_stop_price)
        return round(computed, 2)

    def fill_working(self, order_ref: str, price: float | None,
                     now: dt.datetime) -> list[BrokerEvent]:
        """The market trades through a working order now: fill it (default: at its limit or
        stop price), with the same consequences as the engine's own matching (execution,
        commission, position, bracket children activated, OCA siblings cancelled).

        For tests and drills: a fill at a chosen moment, e.g. while no client is connected.
        """
        found = [o for o in self.orders.values() if o.order_ref == order_ref]
        if len(found) != 1:
            raise LookupError(f"{len(found)} orders with orderRef {order_ref!r}")
        order = found[0]
        if not (order.working and order.active):
            raise LookupError(f"order {order_ref!r} is {order.status}, not working")
        fill_price = price if price is not None else (order.lmt_price or order.aux_price)
        if not fill_price or fill_price <= 0:
            raise LookupError(f"order {order_ref!r} has no price to fill at; give one")
        return self._fill(order, fill_price, now)

    def _fill(self, o: SimOrder, price: float, now: dt.datetime) -> list[BrokerEvent]:
        shares = o.remaining
        if shares <= 0:
            return []
        price = round(price, 2)
        commission = commission_for(o.spec, shares, price)
        o.filled += shares
        o.avg_fill_price = price
        o.last_fill_price = price
        o.commission = commission
        o.status = "Filled"
        o.active = False
        o.completed = now
        o.completed_status = "Filled"
        realized = self._book(o.spec, o.is_buy, shares, price, commission)
        self._exec_seq += 1
        exchange = "ARCA" if o.spec.sec_type == STK else \
            ("CBOE", "ISE", "PHLX", "AMEX", "BOX")[self._exec_seq % 5]
        fill = Fill(
            exec_id=f"{o.perm_id:08x}.{self._exec_seq:08x}.01.01", perm_id=o.perm_id,
            client_id=o.client_id, order_id=o.order_id, spec=o.spec,
            side="BOT" if o.is_buy else "SLD", shares=shares, price=price, time=now,
            cum_qty=o.filled, avg_price=price, order_ref=o.order_ref, account=o.account,
            exchange=exchange, commission=commission, realized_pnl=realized,
        )
        self.fills.append(fill)
        events: list[BrokerEvent] = [FillEvent(copy.copy(o), fill)]
        pos = self.positions[o.spec.con_id]
        events.append(PositionEvent(copy.copy(pos)))
        events += self._after_fill(o, shares, now)
        self._prune()
        return events

    def _book(self, spec: ContractSpec, buy: bool, shares: float, price: float,
              commission: float) -> float | None:
        """Update position and cash (IB's average-cost method); the realized P&L or None."""
        mult = spec.price_multiplier
        pos = self.positions.setdefault(spec.con_id, Position(spec))
        sign = 1.0 if buy else -1.0
        self.cash -= sign * shares * price * mult + commission
        q = pos.quantity
        if q == 0 or (q > 0) == buy:
            total = abs(q) * pos.avg_cost + shares * price * mult + commission
            pos.quantity = q + sign * shares
            pos.avg_cost = total / abs(pos.quantity)
            return None
        closing = min(shares, abs(q))
        fee_close = commission * closing / shares
        if q > 0:
            realized = (price * mult - pos.avg_cost) * closing - fee_close
        else:
            realized = (pos.avg_cost - price * mult) * closing - fee_close
        pos.realized += realized
        pos.quantity = q + sign * shares
        rest = shares - closing
        if rest > 0:
            pos.avg_cost = price * mult + (commission - fee_close) / rest
        elif pos.quantity == 0:
            pos.avg_cost = 0.0
        return round(realized, 4)

    def _after_fill(self, o: SimOrder, shares: float, now: dt.datetime) -> list[BrokerEvent]:
        events: list[BrokerEvent] = []
        for child in [c for c in self.orders.values() if c.parent_perm_id == o.perm_id]:
            if child.status in WORKING and not child.active:
                events += self._activate(child, now)
        for child in [c for c in self.orders.values() if c.parent_perm_id == o.perm_id]:
            if child.active and child.working:
                events += self._evaluate(child, now, first=True)
        siblings: list[SimOrder] = []
        if o.parent_perm_id:
            siblings += [s for s in self.orders.values()
                         if s.parent_perm_id == o.parent_perm_id and s.perm_id != o.perm_id]
        if o.oca_group:
            siblings += [s for s in self.orders.values()
                         if s.oca_group == o.oca_group and s.perm_id != o.perm_id and
                         s.client_id == o.client_id]
        seen: set[int] = set()
        for s in siblings:
            if s.perm_id in seen or s.done:
                continue
            seen.add(s.perm_id)
            if o.oca_group and o.oca_type in (2, 3) and not o.parent_perm_id:
                s.quantity = max(s.filled, s.quantity - shares)
                if s.remaining <= 0:
                    events += self._cancel(s, now, None, "")
                else:
                    events.append(OrderStatusEvent(copy.copy(s)))
            else:
                events += self._cancel(s, now, None, "")
        return events

    def _prune(self) -> None:
        if len(self.orders) <= RETAINED_DONE:
            return
        done = sorted((o for o in self.orders.values() if o.done),
                      key=lambda o: o.completed or o.created)
        for o in done[: len(self.orders) - RETAINED_DONE]:
            del self.orders[o.perm_id]
            self._by_client.pop((o.client_id, o.order_id), None)

    # -- account ----------------------------------------------------------------------------
    def account_values(self, now: dt.datetime) -> dict[str, float]:
        market_value = 0.0
        unrealized = 0.0
        for pos in self.open_positions():
            mark = self.mark(pos.spec, now)
            value = pos.quantity * mark * pos.spec.price_multiplier
            market_value += value
            unrealized += value - pos.quantity * pos.avg_cost
        realized_today = sum(f.realized_pnl or 0.0 for f in self.fills
                             if f.time.astimezone(ET).date() == now.astimezone(ET).date())
        net = self.cash + market_value
        return {
            "NetLiquidation": round(net, 2),
            "TotalCashValue": round(self.cash, 2),
            "SettledCash": round(self.cash, 2),
            "CashBalance": round(self.cash, 2),
            "AvailableFunds": round(self.cash, 2),
            "ExcessLiquidity": round(self.cash, 2),
            "BuyingPower": round(max(0.0, self.cash) * 4, 2),
            "EquityWithLoanValue": round(net, 2),
            "GrossPositionValue": round(abs(market_value), 2),
            "InitMarginReq": 0.0,
            "MaintMarginReq": 0.0,
            "UnrealizedPnL": round(unrealized, 2),
            "RealizedPnL": round(realized_today, 2),
            "DayTradesRemaining": float(self._day_trades_remaining(now, net)),
        }

    def _day_trades_remaining(self, now: dt.datetime, net: float) -> int:
        if net >= 25_000:
            return -1
        today = now.astimezone(ET).date()
        window = {s.date for s in self.calendar.sessions_back(today, 5)}
        sides: dict[tuple[dt.date, int], set[str]] = {}
        for f in self.fills:
            day = f.time.astimezone(ET).date()
            if day in window:
                sides.setdefault((day, f.spec.con_id), set()).add(f.side)
        trades = sum(1 for s in sides.values() if len(s) == 2)
        return max(0, 3 - trades)


__all__ = [
    "Broker", "BrokerEvent", "CancelEvent", "Fill", "FillEvent", "OrderErrorEvent",
    "OrderStatusEvent", "OrderTicket", "Position", "PositionEvent", "SimOrder", "WhatIfEvent",
    "commission_for",
]
