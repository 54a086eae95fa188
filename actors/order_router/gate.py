"""The pre-trade gate: the one door every order passes, checked immediately before it is sent.

Pure: it reads a `GateView` of the facts (trading state, mode, ledger safety, the session, the
latest complete broker position snapshot, the live bid) and says why an order may NOT go out,
or None. The router builds the view at the last moment — after the option was chosen, after
every await — so nothing that changed while it waited (a kill switch, a daily-loss halt, a
lost ledger file, a position closed by hand in TWS) can be stepped over.

Entries need trading ACTIVE. Exits (sells) are what a halt does, so they pass while HALTED,
but a sell must never make the account short: it needs a complete broker snapshot of this
session in which the broker holds at least what is sold, and in which ledger and broker agree
on the contract. And protection is only ever replaced, never just stripped: `can_replace`
says whether the sell that replaces a native bracket could be sent now.
"""

from __future__ import annotations

from dataclasses import dataclass

from messages.control import TradingState, TradingStatus


@dataclass(frozen=True, slots=True)
class GateView:
    trading: TradingStatus
    ledger_problem: str | None            # unreadable / cannot be saved / bound elsewhere
    session_ready: bool                   # session up, mode-checked and reconciled
    shorts: tuple[str, ...] = ()          # option keys the broker holds short
    foreign: tuple[str, ...] = ()         # live orders under another client id (after 326)


@dataclass(frozen=True, slots=True)
class SellView:
    """What one sell of `quantity` contracts of one option would meet."""

    quantity: int
    ledger_held: int
    broker_held: int | None               # None: no complete snapshot of this session
    bid: float | None                     # fresh bid of this session (None: none)
    other_sells_working: int              # contracts in other live SELL orders of the key


def entry_refusal(v: GateView) -> str | None:
    """Why an entry (or an entry's re-submission) must not be sent now (None: it may)."""
    if v.ledger_problem:
        return f"order ledger not safe: {v.ledger_problem}"
    if not v.session_ready:
        return "no checked and reconciled Gateway session"
    if v.trading.kill_switch:
        return "kill switch engaged"
    if v.shorts:
        return f"short option position at the broker: {', '.join(v.shorts)}"
    if v.foreign:
        return f"orders live under another client id: {', '.join(v.foreign)}"
    if v.trading.state is not TradingState.ACTIVE:
        why = "; ".join(v.trading.reasons) or "no reason given"
        return f"trading {v.trading.state.value}: {why}"
    return None


def sell_refusal(v: GateView, s: SellView) -> str | None:
    """Why this sell must not be sent now (None: it may). Allowed while HALTED (flatten)."""
    if v.ledger_problem:
        return f"order ledger not safe: {v.ledger_problem}"
    if not v.session_ready:
        return "no checked and reconciled Gateway session"
    if s.quantity <= 0:
        return f"nothing to sell ({s.quantity})"
    if s.broker_held is None:
        return "no complete broker position snapshot on this session yet"
    if s.broker_held != s.ledger_held:
        return (f"ledger holds {s.ledger_held} but the broker {s.broker_held}: "
                "waiting for the reconciliation to settle it")
    if s.quantity + s.other_sells_working > s.broker_held:
        return (f"selling {s.quantity} (+{s.other_sells_working} working) would exceed the "
                f"{s.broker_held} held at the broker")
    if s.bid is None or not s.bid > 0:
        return "no fresh bid"
    return None


def replace_refusal(v: GateView, s: SellView) -> str | None:
    """Why protection (a native bracket) must stay in place: its replacement sell could not
    be sent now. Same rules as the sell, without the working children (they are what a
    successful cancel removes)."""
    return sell_refusal(v, SellView(quantity=s.quantity, ledger_held=s.ledger_held,
                                    broker_held=s.broker_held, bid=s.bid,
                                    other_sells_working=0))
