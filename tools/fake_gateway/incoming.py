"""Parsers for the client→server requests whose layout is more than a few fields.

placeOrder is the hard one: its optional sections (combo legs, delta-neutral, scale, hedge, algo
params, conditions, version-gated tail fields) must be walked exactly as the client wrote them
(ib_async `Client.placeOrder`), because the fields after them sit at shifting positions.
"""

from __future__ import annotations

from tools.fake_gateway.broker import OrderTicket
from tools.fake_gateway.contracts import ContractQuery
from tools.fake_gateway.wire import UNSET_DOUBLE, FieldReader

# field count of each order condition type, including its type field (ib_async order.py)
_CONDITION_FIELDS = {1: 7, 3: 4, 4: 4, 5: 5, 6: 6, 7: 6}


def read_contract(r: FieldReader) -> ContractQuery:
    """The 12-field contract block (conId … tradingClass)."""
    con_id = r.integer()
    symbol = r.text()
    sec_type = r.text()
    expiry = r.text()
    strike = r.number(0.0)
    right = r.text()
    multiplier = r.text()
    exchange = r.text()
    primary_exchange = r.text()
    currency = r.text()
    local_symbol = r.text()
    trading_class = r.text()
    return ContractQuery(con_id, symbol, sec_type, expiry, 0.0 if strike == UNSET_DOUBLE else
                         strike, right, multiplier, exchange, primary_exchange, currency,
                         local_symbol, trading_class)


def _price(value: float) -> float | None:
    return None if value == UNSET_DOUBLE or value != value else value


def parse_place_order(fields: list[str], server_version: int) -> tuple[ContractQuery,
                                                                           OrderTicket]:
    """msg 3 (no version field at sv ≥ 145) → the contract asked for and the order ticket."""
    r = FieldReader(fields, 1)
    order_id = r.integer()
    contract = read_contract(r)
    r.skip(2)                      # secIdType, secId
    action = r.text().upper()
    quantity = r.number(0.0)
    order_type = r.text().upper()
    lmt = _price(r.number())
    aux = _price(r.number())
    tif = r.text().upper()
    oca_group = r.text()
    account = r.text()
    open_close = r.text()
    origin = r.integer()
    order_ref = r.text()
    transmit = r.flag()
    parent_id = r.integer()
    r.skip(4)                      # blockOrder, sweepToFill, displaySize, triggerMethod
    outside_rth = r.flag()
    r.skip(1)                      # hidden
    if contract.sec_type.upper() == "BAG":
        legs = r.integer()
        r.skip(8 * legs)
        order_legs = r.integer()
        r.skip(order_legs)
        params = r.integer()
        r.skip(2 * params)
    r.skip(1)                      # "" (sharesAllocation)
    r.skip(1)                      # discretionaryAmt
    good_after = r.text()
    good_till = r.text()
    r.skip(3)                      # faGroup, faMethod, faPercentage
    if server_version < 177:
        r.skip(1)                  # faProfile
    r.skip(4)                      # modelCode, shortSaleSlot, designatedLocation, exemptCode
    oca_type = r.integer()
    r.skip(15)                     # rule80A … overridePercentageConstraints (see client.py)
    r.skip(2)                      # volatility, volatilityType
    dn_type = r.text()
    r.skip(1)                      # deltaNeutralAuxPrice
    if dn_type:
        r.skip(8)
    r.skip(2)                      # continuousUpdate, referencePriceType
    trail_stop = _price(r.number())
    trailing_pct = _price(r.number())
    r.skip(2)                      # scaleInitLevelSize, scaleSubsLevelSize
    scale_incr = r.number()
    if 0 < scale_incr < UNSET_DOUBLE:
        r.skip(7)
    r.skip(3)                      # scaleTable, activeStartTime, activeStopTime
    hedge_type = r.text()
    if hedge_type:
        r.skip(1)
    r.skip(4)                      # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    if r.flag():                   # deltaNeutralContract present
        r.skip(3)
    algo = r.text()
    if algo:
        r.skip(2 * r.integer())
    r.skip(1)                      # algoId
    what_if = r.flag()
    r.skip(4)                      # orderMiscOptions, solicited, randomizeSize, randomizePrice
    if order_type in ("PEG BENCH", "PEGBENCH"):
        r.skip(5)
    n_conditions = r.integer()
    for _ in range(n_conditions):
        cond_type = r.integer()
        if cond_type not in _CONDITION_FIELDS:
            raise ValueError(f"unknown order condition type {cond_type}")
        r.skip(_CONDITION_FIELDS[cond_type] - 1)
    if n_conditions:
        r.skip(2)
    ticket = OrderTicket(
        order_id=order_id, action=action, quantity=quantity, order_type=order_type,
        lmt_price=lmt, aux_price=aux, tif=tif, oca_group=oca_group, oca_type=oca_type,
        account=account, open_close=open_close, origin=origin, order_ref=order_ref,
        transmit=transmit, parent_id=parent_id, outside_rth=outside_rth,
        trailing_percent=trailing_pct, trail_stop_price=trail_stop, what_if=what_if,
        good_till_date=good_till, good_after_time=good_after, conditions=n_conditions,
        algo_strategy=algo,
    )
    return contract, ticket
