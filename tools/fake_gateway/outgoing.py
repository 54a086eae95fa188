"""Server→client messages, field by field as a Gateway at server version `sv` writes them.

Layouts follow ../shared/reference/tws_protocol.md §2.2 and ib_async 2.1's decoder; where the
decoder unpacks a fixed number of fields (tickPrice, position, commissionReport, updatePortfolio,
tickOptionComputation) the count here is exact, or the client drops the message. Version gates:
error's advancedOrderRejectJson (≥166), contractData's version/mdSizeMultiplier (<164) and
sizeIncrement fields (≥164), openOrder/completedOrder faProfile (<177) and tail fields (≥159,
160, 162, 170), execDetails pendingPriceRevision (≥178).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from config.market_calendar import ET
from tools.fake_gateway.broker import Fill, SimOrder
from tools.fake_gateway.contracts import ContractDetailsInfo, ContractSpec
from tools.fake_gateway.history import HistBar
from tools.fake_gateway.wire import (
    UNSET_DOUBLE,
    Field,
    encode_fields,
    fmt_float,
    fmt_size,
)

Msg = bytes


def _contract11(c: ContractSpec) -> list[Field]:
    """conId … tradingClass without primaryExchange (openOrder, execDetails, position)."""
    return [c.con_id, c.symbol, c.sec_type, c.expiry, fmt_float(c.strike), c.right,
            c.multiplier, c.exchange, c.currency, c.local_symbol, c.trading_class]


def _opt_price(value: float | None) -> str:
    return "" if value is None else fmt_float(value)


# -- session ----------------------------------------------------------------------------------
def handshake_reply(sv: int, connection_time: str) -> Msg:
    return encode_fields([sv, connection_time])


def managed_accounts(accounts: Sequence[str]) -> Msg:
    return encode_fields([15, 1, ",".join(accounts)])


def next_valid_id(order_id: int) -> Msg:
    return encode_fields([9, 1, order_id])


def error(sv: int, req_id: int, code: int, text: str, advanced_json: str = "") -> Msg:
    fields: list[Field] = [4, 2, req_id, code, text]
    if sv >= 166:
        fields.append(advanced_json)
    return encode_fields(fields)


def current_time(epoch_seconds: int) -> Msg:
    return encode_fields([49, 1, epoch_seconds])


# -- contracts --------------------------------------------------------------------------------
def contract_data(sv: int, req_id: int, d: ContractDetailsInfo) -> Msg:
    c = d.spec
    fields: list[Field] = [10]
    if sv < 164:
        fields.append(8)
    fields += [req_id, c.symbol, c.sec_type, c.expiry, fmt_float(c.strike), c.right, c.exchange,
               c.currency, c.local_symbol, d.market_name, c.trading_class, c.con_id,
               fmt_float(d.min_tick)]
    if sv < 164:
        fields.append(1)              # mdSizeMultiplier
    fields += [c.multiplier, d.order_types, d.valid_exchanges, 1, d.under_con_id, d.long_name,
               c.primary_exchange, d.contract_month, d.industry, d.category, d.subcategory,
               d.time_zone_id, d.trading_hours, d.liquid_hours, "", "", 0, d.agg_group,
               d.under_symbol, d.under_sec_type, d.market_rule_ids, d.real_expiration_date,
               d.stock_type]
    if sv == 163:
        fields.append("1")
    if sv >= 164:
        fields += ["1", "1", "1"]      # minSize, sizeIncrement, suggestedSizeIncrement
    return encode_fields(fields)


def contract_data_end(req_id: int) -> Msg:
    return encode_fields([52, 1, req_id])


def sec_def_opt_params(req_id: int, exchange: str, under_con_id: int, trading_class: str,
                       multiplier: str, expirations: Sequence[str],
                       strikes: Sequence[float]) -> Msg:
    fields: list[Field] = [75, req_id, exchange, under_con_id, trading_class, multiplier,
                           len(expirations), *expirations, len(strikes)]
    fields += [fmt_float(k) for k in strikes]
    return encode_fields(fields)


def sec_def_opt_params_end(req_id: int) -> Msg:
    return encode_fields([76, req_id])


# -- market data ------------------------------------------------------------------------------
def market_data_type(req_id: int, data_type: int) -> Msg:
    return encode_fields([58, 1, req_id, data_type])


def tick_req_params(req_id: int, min_tick: float, bbo_exchange: str, permissions: int) -> Msg:
    return encode_fields([81, req_id, fmt_float(min_tick), bbo_exchange, permissions])


def tick_price(req_id: int, tick_type: int, price: float, size: float, attr_mask: int = 0) -> Msg:
    return encode_fields([1, 6, req_id, tick_type, fmt_float(price), fmt_size(size), attr_mask])


def tick_size(req_id: int, tick_type: int, size: float) -> Msg:
    return encode_fields([2, 6, req_id, tick_type, fmt_size(size)])


def tick_generic(req_id: int, tick_type: int, value: float) -> Msg:
    return encode_fields([45, 6, req_id, tick_type, fmt_float(value)])


def tick_string(req_id: int, tick_type: int, value: str) -> Msg:
    return encode_fields([46, 6, req_id, tick_type, value])


def tick_option_computation(req_id: int, tick_type: int, implied_vol: float | None,
                            delta: float | None, opt_price: float | None, gamma: float | None,
                            vega: float | None, theta: float | None,
                            und_price: float | None) -> Msg:
    """IB's sentinels for unknown values: iv/price/pvDividend/undPrice −1, greeks −2."""
    def v(x: float | None, unset: float, digits: int) -> str:
        return fmt_float(unset if x is None else round(x, digits))
    return encode_fields([21, req_id, tick_type, 1, v(implied_vol, -1.0, 6), v(delta, -2.0, 6),
                          v(opt_price, -1.0, 4), "0.0", v(gamma, -2.0, 6), v(vega, -2.0, 6),
                          v(theta, -2.0, 6), v(und_price, -1.0, 4)])


def tick_snapshot_end(req_id: int) -> Msg:
    return encode_fields([57, 1, req_id])


def historical_data(req_id: int, start: str, end: str, bars: Sequence[HistBar]) -> Msg:
    fields: list[Field] = [17, req_id, start, end, len(bars)]
    for b in bars:
        fields += [b.date, fmt_float(b.open), fmt_float(b.high), fmt_float(b.low),
                   fmt_float(b.close), fmt_size(b.volume), fmt_float(b.wap), b.count]
    return encode_fields(fields)


def historical_data_update(req_id: int, bar: HistBar) -> Msg:
    """Note the order: close before high and low (ib_async `historicalDataUpdate`)."""
    return encode_fields([90, req_id, bar.count, bar.date, fmt_float(bar.open),
                          fmt_float(bar.close), fmt_float(bar.high), fmt_float(bar.low),
                          fmt_float(bar.wap), fmt_size(bar.volume)])


def realtime_bar(req_id: int, start_epoch: int, o: float, h: float, low: float, c: float,
                 volume: float, wap: float, count: int) -> Msg:
    return encode_fields([50, 3, req_id, start_epoch, fmt_float(o), fmt_float(h),
                          fmt_float(low), fmt_float(c), fmt_size(volume), fmt_float(wap), count])


def head_timestamp(req_id: int, value: str) -> Msg:
    return encode_fields([88, req_id, value])


# -- orders -----------------------------------------------------------------------------------
def _ib_time(t: dt.datetime) -> str:
    return f"{t.astimezone(ET):%Y%m%d %H:%M:%S} US/Eastern"


def open_order(sv: int, o: SimOrder, status: str | None = None, *, what_if: bool = False,
               init_margin: float | None = None, commission: float | None = None) -> Msg:
    """msg 5, in ib_async `Decoder.openOrder` order. Empty text = "unset" for every numeric
    field; counts and dncPresent must be digits."""
    status = status if status is not None else ("PendingSubmit" if o.status == "Held" else
                                                o.status)
    comm = commission if commission is not None else o.commission
    f: list[Field] = [5, o.order_id, *_contract11(o.spec)]
    f += [o.action, fmt_size(o.quantity), o.order_type, _opt_price(o.lmt_price),
          _opt_price(o.aux_price), o.tif, o.oca_group, o.account, o.open_close, o.origin,
          o.order_ref, o.client_id, o.perm_id, o.outside_rth,
          False,                  # hidden
          "0",                    # discretionaryAmt
          "",                     # goodAfterTime
          "",                     # sharesAllocation (deprecated)
          "", "", ""]             # faGroup, faMethod, faPercentage
    if sv < 177:
        f.append("")              # faProfile
    f += ["",                     # modelCode
          "",                     # goodTillDate
          "", "", "",             # rule80A, percentOffset, settlingFirm
          0, "", "",              # shortSaleSlot, designatedLocation, exemptCode
          0, "", "", "",          # auctionStrategy, startingPrice, stockRefPrice, delta
          "", "",                 # stockRangeLower, stockRangeUpper
          0, False, False, False,  # displaySize, blockOrder, sweepToFill, allOrNone
          "",                     # minQty
          o.oca_type,
          False, False, "",       # eTradeOnly, firmQuoteOnly, nbboPriceCap
          o.parent_id,
          0,                      # triggerMethod
          "", 0,                  # volatility, volatilityType
          "", ""]                 # deltaNeutralOrderType (empty: no dn block), dnAuxPrice
    f += [0, 0,                   # continuousUpdate, referencePriceType
          _opt_price(o.trail_stop_price), _opt_price(o.trailing_percent),
          "", "",                 # basisPoints, basisPointsType
          "",                     # comboLegsDescrip
          0, 0, 0,                # nComboLegs, nOrderComboLegs, nSmartComboRoutingParams
          "", "", "",             # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
          "",                     # hedgeType (empty: no hedgeParam)
          False, "", "", False,   # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
          0,                      # dncPresent
          "",                     # algoStrategy (empty: no params)
          False, what_if, status]  # solicited, whatIf, status
    if what_if and init_margin is not None:
        margin = f"{init_margin:.2f}"
        f += ["0.0", "0.0", "0.0", margin, margin, margin, margin, margin, margin]
    else:
        f += [""] * 9             # margin before/change/after
    f += [fmt_float(comm) if comm is not None else "",          # commission
          "", "",                 # minCommission, maxCommission
          "USD" if comm is not None else "",                    # commissionCurrency
          "",                     # warningText
          False, False]           # randomizeSize, randomizePrice
    f += [0,                      # nConditions
          "", "", _opt_price(o.trail_stop_price), "",   # adjustedOrderType, triggerPrice,
          "", "", "", 0,          # trailStopPrice, lmtPriceOffset, adjusted stop/limit/amount,
          "", "", "",             # adjustableTrailingUnit; softDollarTier name/value/display
          "",                     # cashQty
          False, False, "", False]  # dontUseAutoPrice…, isOmsContainer, discr…, usePriceMgmt
    if sv >= 159:
        f.append("")              # duration
    if sv >= 160:
        f.append(False)           # postToAts
    if sv >= 162:
        f.append(False)           # autoCancelParent
    if sv >= 170:
        f += ["", "", "", "", ""]  # minTradeQty … midOffsetAtHalf
    return encode_fields(f)


def order_status(o: SimOrder, status: str | None = None) -> Msg:
    status = status if status is not None else ("PendingSubmit" if o.status == "Held" else
                                                o.status)
    return encode_fields([3, o.order_id, status, fmt_size(o.filled), fmt_size(o.remaining),
                          fmt_float(o.avg_fill_price), o.perm_id, o.parent_id,
                          fmt_float(o.last_fill_price), o.client_id, o.why_held, "0"])


def open_order_end() -> Msg:
    return encode_fields([53, 1])


def completed_order(sv: int, o: SimOrder) -> Msg:
    """msg 101 (ib_async `Decoder.completedOrder`): starts with the contract, has no orderId and
    no clientId — completed orders are keyed by permId."""
    f: list[Field] = [101, *_contract11(o.spec)]
    f += [o.action, fmt_size(o.quantity), o.order_type, _opt_price(o.lmt_price),
          _opt_price(o.aux_price), o.tif, o.oca_group, o.account, o.open_close, o.origin,
          o.order_ref, o.perm_id, o.outside_rth,
          False, "0", "",         # hidden, discretionaryAmt, goodAfterTime
          "", "", ""]             # faGroup, faMethod, faPercentage
    if sv < 177:
        f.append("")              # faProfile
    f += ["", "",                 # modelCode, goodTillDate
          "", "", "",             # rule80A, percentOffset, settlingFirm
          0, "", "",              # shortSaleSlot, designatedLocation, exemptCode
          "", "", "",             # startingPrice, stockRefPrice, delta
          "", "",                 # stockRangeLower, stockRangeUpper
          0, False, False, "",    # displaySize, sweepToFill, allOrNone, minQty
          o.oca_type, 0,          # ocaType, triggerMethod
          "", 0,                  # volatility, volatilityType
          "", ""]                 # deltaNeutralOrderType (empty), deltaNeutralAuxPrice
    f += [0, 0,                   # continuousUpdate, referencePriceType
          _opt_price(o.trail_stop_price), _opt_price(o.trailing_percent),
          "",                     # comboLegsDescrip
          0, 0, 0,                # nComboLegs, nOrderComboLegs, nSmartComboRoutingParams
          "", "", "",             # scale init/subs/increment
          "",                     # hedgeType
          "", "", False, 0,       # clearingAccount, clearingIntent, notHeld, dncPresent
          "",                     # algoStrategy
          False, o.status,        # solicited, status
          False, False,           # randomizeSize, randomizePrice
          0]                      # nConditions
    completed = _ib_time(o.completed) if o.completed else ""
    f += [_opt_price(o.trail_stop_price), "", "",   # trailStopPrice, lmtPriceOffset, cashQty
          False, False, "",       # dontUseAutoPriceForHedge, isOmsContainer, autoCancelDate
          fmt_size(o.filled),     # filledQuantity
          0, False, "",           # refFuturesConId, autoCancelParent, shareholder
          False, False,           # imbalanceOnly, routeMarketableToBbo
          o.parent_perm_id or "",
          completed, o.completed_status or o.status]
    if sv >= 170:
        f += ["", "", "", "", ""]
    return encode_fields(f)


def completed_orders_end() -> Msg:
    return encode_fields([102])


def exec_details(sv: int, req_id: int, f: Fill) -> Msg:
    c = f.spec
    fields: list[Field] = [11, req_id, f.order_id, c.con_id, c.symbol, c.sec_type, c.expiry,
                           fmt_float(c.strike), c.right, c.multiplier, f.exchange, c.currency,
                           c.local_symbol, c.trading_class, f.exec_id, _ib_time(f.time),
                           f.account, f.exchange, f.side, fmt_size(f.shares),
                           fmt_float(f.price), f.perm_id, f.client_id, 0,
                           fmt_size(f.cum_qty), fmt_float(f.avg_price), f.order_ref, "", "",
                           "", 2 if f.side == "BOT" else 1]
    if sv >= 178:
        fields.append(False)
    return encode_fields(fields)


def exec_details_end(req_id: int) -> Msg:
    return encode_fields([55, 1, req_id])


def commission_report(f: Fill) -> Msg:
    realized = UNSET_DOUBLE if f.realized_pnl is None else f.realized_pnl
    return encode_fields([59, 1, f.exec_id, fmt_float(f.commission), "USD",
                          fmt_float(realized), fmt_float(UNSET_DOUBLE), ""])


# -- positions & account -------------------------------------------------------------------
def position(account: str, c: ContractSpec, quantity: float, avg_cost: float) -> Msg:
    return encode_fields([61, 3, account, *_contract11(c), fmt_size(quantity),
                          fmt_float(round(avg_cost, 6))])


def position_multi(req_id: int, account: str, c: ContractSpec, quantity: float,
                   avg_cost: float) -> Msg:
    return encode_fields([71, 1, req_id, account, *_contract11(c), fmt_size(quantity),
                          fmt_float(round(avg_cost, 6)), ""])


def position_multi_end(req_id: int) -> Msg:
    return encode_fields([72, 1, req_id])


def position_end() -> Msg:
    return encode_fields([62, 1])


def update_account_value(key: str, value: str, currency: str, account: str) -> Msg:
    return encode_fields([6, 2, key, value, currency, account])


def update_portfolio(c: ContractSpec, quantity: float, market_price: float, market_value: float,
                     avg_cost: float, unrealized: float, realized: float, account: str) -> Msg:
    return encode_fields([7, 8, c.con_id, c.symbol, c.sec_type, c.expiry, fmt_float(c.strike),
                          c.right, c.multiplier, c.primary_exchange, c.currency, c.local_symbol,
                          c.trading_class, fmt_size(quantity), fmt_float(round(market_price, 4)),
                          fmt_float(round(market_value, 2)), fmt_float(round(avg_cost, 6)),
                          fmt_float(round(unrealized, 2)), fmt_float(round(realized, 2)),
                          account])


def update_account_time(hhmm: str) -> Msg:
    return encode_fields([8, 1, hhmm])


def account_download_end(account: str) -> Msg:
    return encode_fields([54, 1, account])


def account_update_multi(req_id: int, account: str, model_code: str, key: str, value: str,
                         currency: str) -> Msg:
    return encode_fields([73, 1, req_id, account, model_code, key, value, currency])


def account_update_multi_end(req_id: int) -> Msg:
    return encode_fields([74, 1, req_id])


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> Msg:
    return encode_fields([63, 1, req_id, account, tag, value, currency])


def account_summary_end(req_id: int) -> Msg:
    return encode_fields([64, 1, req_id])
