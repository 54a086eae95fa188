"""The money path against the Gateway simulator: helpers on top of tests.harness.bot.

Signals are injected on the `signals` channel exactly as the StrategySelector sends them (no
gameplan is written, so the selector stays in Strategy C and sends none of its own): each
test then owns every intent it sees.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from messages.brain import EntrySignal
from messages.control import TradingState
from messages.market import Right
from runtime.app.app import TreeOptions
from tests.harness import Event, read_jsonl, wait_until
from tests.harness.bot import BOT_WAIT, MID_SESSION, Harness, open_bot_and_gateway
from tools.fake_gateway.broker import SimOrder


def entry_signal(h: Harness, symbol: str = "SPY", *, right: Right = "C") -> EntrySignal:
    """A strategy-A setup on the bar that just completed, at the simulator's own price."""
    now = h.bot.clock.now_utc()
    price = h.gateway.market.price(symbol, h.gateway.clock.now_utc())
    return EntrySignal(ts=now, bar_ts=now - dt.timedelta(minutes=1), symbol=symbol,
                       strategy="A", direction="bullish" if right == "C" else "bearish",
                       right=right, reasons=("test setup",), size_multiplier=1.0,
                       close=round(price, 2))


async def inject(h: Harness, signal: EntrySignal) -> None:
    send = h.bot.wiring.signals.clone_sender()
    async with send:
        await send.send(signal)


async def wait_trading(h: Harness, state: TradingState = TradingState.ACTIVE,
                       timeout: float = 60.0) -> None:
    with trio.fail_after(timeout):
        await h.bot.wiring.trading.wait_value(lambda s: s.state is state)


def terminal_states(journal_events: list[Event]) -> dict[str, list[str]]:
    """intent id -> every terminal state the journal recorded for it (must be exactly one)."""
    out: dict[str, list[str]] = {}
    for e in journal_events:
        if e["event"] == "intent_done":
            out.setdefault(e["intent_id"], []).append(e["state"])
    return out


# -- the whole bot against the simulator ----------------------------------------------------------


@asynccontextmanager
async def open_money_bot(tmp_path: Path, shared_data: Path, *, speed: float = 60.0,
                         start: dt.datetime | None = MID_SESSION,
                         gateway: Mapping[str, Any] | None = None,
                         tree: TreeOptions | None = None,
                         env: Mapping[str, str] | None = None) -> AsyncIterator[Harness]:
    """tests.harness.bot's harness, with the actors' tunings (TreeOptions), the simulator's orders
    log at `tmp_path/orders.jsonl`, and no daily stop."""
    async with open_bot_and_gateway(
            tmp_path, shared_data, speed=speed, start=start,
            gateway={"orders_log": tmp_path / "orders.jsonl", **dict(gateway or {})},
            tree=tree,
            **{"DAILY_STOP_TIME": "", **dict(env or {})}) as h:
        yield h


def orders_received(h: Harness) -> list[Event]:
    """Every order the simulator received (its --orders-log)."""
    return read_jsonl(h.gateway.config.orders_log or Path("/nonexistent"))


def broker_order(h: Harness, ref: str) -> SimOrder:
    found = [o for o in h.gateway.broker.orders.values() if o.order_ref == ref]
    assert len(found) == 1, f"{len(found)} orders with orderRef {ref} at the simulator"
    return found[0]


async def fill_at_the_broker(h: Harness, ref: str, price: float | None = None) -> None:
    """The market trades through a working order now (even with nobody connected): the
    simulator's `fill` (control command `fill ORDER_REF [PRICE]`)."""
    await h.gateway.fill_order(ref, price)


def broker_position(h: Harness, key: str) -> float:
    for p in h.gateway.broker.open_positions():
        spec = p.spec
        if spec.is_option and f"{spec.symbol} {spec.expiry_date.isoformat()} " \
                f"{spec.strike:g}{spec.right}" == key:
            return p.quantity
    return 0.0


def ledger_positions(h: Harness) -> dict[str, int]:
    doc = json.loads((h.settings.state_dir / "ledger.json").read_text())["state"]
    return {f"{p['option']['underlying']} {p['option']['expiry']} "
            f"{p['option']['strike']:g}{p['option']['right']}": p["contracts"]
            for p in doc["positions"]}


async def entry_filled(h: Harness, ref: str) -> Event:
    """The entry's fill event; if the market has not reached the limit by the time the
    bracket is at the simulator, it trades through it now (a deterministic test market)."""
    await wait_until(lambda: len([o for o in h.gateway.broker.orders.values()
                                  if o.order_ref.startswith(ref)]) == 3, timeout=BOT_WAIT)
    if broker_order(h, ref).working:
        await fill_at_the_broker(h, ref)
    return await h.journal.wait_for("fill", where=lambda e: e["order_ref"] == ref)


PAPER_ENV = {"DRY_RUN": "false", "PAPER_TRADING": "true", "OPERATOR_ID": "op",
             "BOT_CAPITAL_USD": "100000"}
"""Paper mode with capital enough that the doctrine's sizing buys contracts."""


async def filled_entry(h: Harness, symbol: str = "SPY") -> tuple[str, str, int]:
    """Once trading is ACTIVE: one entry signal, its bracket filled at the simulator and the
    position in the ledger. Returns (intent id = parent orderRef, option key, contracts)."""
    await wait_trading(h)
    await inject(h, entry_signal(h, symbol))
    intent = await h.journal.wait_for("order_intent")
    ref, key, qty = intent["intent_id"], intent["contract"], intent["quantity"]
    await entry_filled(h, ref)
    await wait_until(lambda: ledger_positions(h).get(key) == qty, timeout=BOT_WAIT)
    return ref, key, qty
