"""The book read-model (messages/status.py BookStatus): what the operator's views show.

Pure: built from the ledger, the broker's shorts and the quote board. Marks are CONSERVATIVE:
a long is marked at its bid of this session, at zero when the quote is missing or stale
(`mark_stale` says so); a short at its ask (or twice its credit without one).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from config.market_calendar import ET
from doctrine.ledger import Ledger, PositionRec
from messages.market import Quote
from messages.orders import ShortView
from messages.status import BookStatus, PositionStatus, Protection, WorkingOrder


def _fresh(q: Quote | None, *, now: dt.datetime, session: int, max_age_s: float) -> bool:
    return q is not None and (q.session_id is None or q.session_id == session) and \
        (now - q.ts).total_seconds() <= max_age_s


def _protection(led: Ledger, p: PositionRec, stale: bool) -> Protection:
    if led.exiting(p):
        return "exiting"
    if led.protected(p):
        return "native"
    return "none" if stale else "watched"


def build_book(led: Ledger, *, shorts: tuple[ShortView, ...], quotes: Mapping[str, Quote],
               now: dt.datetime, session: int, max_age_s: float, mode: str,
               reconciled: bool) -> BookStatus:
    positions: list[PositionStatus] = []
    unrealized_total = 0.0
    for p in sorted(led.positions.values(), key=lambda p: p.key):
        if p.contracts <= 0:
            continue
        q = quotes.get(p.key)
        fresh = _fresh(q, now=now, session=session, max_age_s=max_age_s) and \
            q is not None and q.bid is not None and q.bid > 0
        mark = q.bid if fresh and q is not None and q.bid is not None else 0.0
        mult = p.option.multiplier or 100
        unrealized = (mark - p.avg_premium) * p.contracts * mult
        unrealized_total += unrealized
        positions.append(PositionStatus(
            option_key=p.key, symbol=p.option.underlying, right=p.option.right,
            strike=p.option.strike, expiry=p.option.expiry, contracts=p.contracts,
            entry_premium=round(p.avg_premium, 4), mark=mark,
            mark_ts=q.ts if q is not None else None, mark_stale=not fresh,
            unrealized_pnl=round(unrealized, 2), protection=_protection(led, p, not fresh),
            strategy=p.strategy, opened_ts=p.entry_ts, managed=p.managed))
    for s in shorts:
        q = quotes.get(s.option_key)
        fresh = _fresh(q, now=now, session=session, max_age_s=max_age_s) and \
            q is not None and q.ask is not None and q.ask > 0
        cost = q.ask if fresh and q is not None and q.ask is not None else 2.0 * s.credit
        unrealized = (s.credit - cost) * s.contracts * (s.option.multiplier or 100)
        unrealized_total += unrealized
        positions.append(PositionStatus(
            option_key=s.option_key, symbol=s.option.underlying, right=s.option.right,
            strike=s.option.strike, expiry=s.option.expiry, contracts=-s.contracts,
            entry_premium=s.credit, mark=cost, mark_ts=q.ts if q is not None else None,
            mark_stale=not fresh, unrealized_pnl=round(unrealized, 2), protection="none",
            managed=False))
    orders = []
    for o in led.orders.values():
        if not o.live:
            continue
        intent = led.intents.get(o.intent_id)
        orders.append(WorkingOrder(
            order_ref=o.ref, option_key=(intent.option_key or "") if intent else "",
            action=o.action, quantity=o.quantity, filled=o.filled, order_type=o.order_type,
            limit=o.limit, stop=o.stop,
            state="cancelling" if o.cancel_requested is not None else o.status,
            purpose=o.role, client_id=o.client_id, since=o.created))
    today = now.astimezone(ET).date()
    todays = [f for f in led.fills.values() if f.time.astimezone(ET).date() == today]
    realized = sum(f.realized_pnl for f in todays)
    trades = len({f.ref for f in todays if not f.opening})
    return BookStatus(ts=now, mode=mode, positions=tuple(positions),
                      orders=tuple(sorted(orders, key=lambda w: w.order_ref)),
                      realized_pnl_today=round(realized, 2),
                      unrealized_pnl=round(unrealized_total, 2), trades_today=trades,
                      reconciled=reconciled)
