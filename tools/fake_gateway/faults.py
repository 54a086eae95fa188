"""Money-path faults the simulator can play (control commands in control.py).

* `manual_close`: the operator closes a position by hand in TWS — the working sells on that
  contract (a bracket's children) are cancelled and the position is sold at once under client
  id 0, so the bot's ledger still holds what the account no longer does.
* `manual_short`: a position sold short by hand (or by another program): the alarm case.
* `swallow_orders`: the next N placeOrder requests are lost on the way (no reply, no order):
  the outcome the bot cannot know until it looks the orderRef up.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from tools.fake_gateway.broker import Broker, BrokerEvent, OrderTicket

if TYPE_CHECKING:
    from tools.fake_gateway.contracts import ContractSpec
    from tools.fake_gateway.server import FakeGateway
    from tools.fake_gateway.session import ClientSession

TWS_CLIENT_ID = 0


def _ticket(order_id: int, action: str, quantity: float) -> OrderTicket:
    return OrderTicket(order_id=order_id, action=action, quantity=quantity, order_type="MKT",
                       lmt_price=None, aux_price=None, tif="DAY", oca_group="", oca_type=0,
                       account="", open_close="", origin=0, order_ref="TWS", transmit=True,
                       parent_id=0, outside_rth=False, trailing_percent=None,
                       trail_stop_price=None, what_if=False)


def _spec_of_ref(broker: Broker, order_ref: str) -> ContractSpec:
    found = [o for o in broker.orders.values() if o.order_ref == order_ref]
    if len(found) != 1:
        raise LookupError(f"{len(found)} orders with orderRef {order_ref!r}")
    return found[0].spec


def manual_close(broker: Broker, order_ref: str, now: dt.datetime) -> list[BrokerEvent]:
    """Close by hand the position the order `order_ref` traded (cancel its working sells,
    sell what is held at the market)."""
    spec = _spec_of_ref(broker, order_ref)
    events: list[BrokerEvent] = []
    for o in list(broker.orders.values()):
        if o.spec.con_id == spec.con_id and o.working and not o.is_buy:
            events += broker.cancel(o.client_id, o.order_id, now)
    pos = broker.positions.get(spec.con_id)
    held = pos.quantity if pos is not None else 0.0
    if held > 0:
        order_id = broker.next_order_id(TWS_CLIENT_ID)
        events += broker.place(TWS_CLIENT_ID, spec, _ticket(order_id, "SELL", held), now)
    return events


def manual_short(broker: Broker, order_ref: str, quantity: float,
                 now: dt.datetime) -> list[BrokerEvent]:
    """Sell `quantity` more of that contract than is held, by hand: a short position."""
    spec = _spec_of_ref(broker, order_ref)
    pos = broker.positions.get(spec.con_id)
    held = max(0.0, pos.quantity if pos is not None else 0.0)
    order_id = broker.next_order_id(TWS_CLIENT_ID)
    return broker.place(TWS_CLIENT_ID, spec, _ticket(order_id, "SELL", held + quantity), now)


class OrderSwallower:
    """Loses the next `n` placeOrder requests after the orders log saw them: no order, no
    status, no error — a reply lost on the way, an outcome the client cannot know."""

    def __init__(self, gw: FakeGateway) -> None:
        self.gw = gw
        self.left = 0
        self.swallowed: list[str] = []
        self._place = gw.place_order

    def place_order(self, client_id: int, spec: ContractSpec, ticket: OrderTicket) -> None:
        if self.left > 0:
            self.left -= 1
            self.swallowed.append(ticket.order_ref)
            return
        self._place(client_id, spec, ticket)


def swallow_orders(gw: FakeGateway, n: int) -> OrderSwallower:
    """From now on the next `n` orders placed are lost (installed once per gateway)."""
    current = gw.__dict__.get("place_order")
    swallower = getattr(current, "__self__", None)
    if not isinstance(swallower, OrderSwallower):
        swallower = OrderSwallower(gw)
        gw.place_order = swallower.place_order     # type: ignore[method-assign]
    swallower.left = n
    return swallower


def hold_client_id(gw: FakeGateway, client_id: int | None) -> None:
    """A zombie session keeps `client_id` (a crashed process the Gateway has not noticed):
    connects with it get 326 until released (None)."""
    original = getattr(gw, "_money_original_client_id_taken", None)
    if original is None:
        original = gw.client_id_taken
        gw._money_original_client_id_taken = original       # type: ignore[attr-defined]

    def taken(asked: int, asking: ClientSession) -> bool:
        return asked == client_id or original(asked, asking)

    gw.client_id_taken = taken          # type: ignore[method-assign,assignment]
