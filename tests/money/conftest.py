"""The money path against the Gateway simulator: helpers shared by the tests in this folder.

Signals are injected on the `signals` channel exactly as the StrategySelector sends them (no
gameplan is written, so the selector stays in Strategy C and sends none of its own): each
test then owns every intent it sees.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from config.market_calendar import ET
from config.settings import Settings, load_settings
from messages.alerts import Alert
from messages.base import Message
from messages.brain import EntrySignal
from messages.control import TradingState
from messages.link import LinkState, LinkStatus
from messages.market import OptionSpec, Quote, Right
from runtime.app.app import TreeOptions
from runtime.app.wiring import Wiring
from runtime.infra.clock import Clock
from runtime.infra.logs import Journal
from runtime.supervision.actor import ActorContext, ActorEnv
from runtime.supervision.channels import DropOldest
from runtime.supervision.tree import TreeNode
from tests.integration.conftest import MID_SESSION, Harness, open_bot_and_gateway
from tools.fake_gateway.broker import SimOrder

Event = dict[str, Any]


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


async def wait_until(predicate: Callable[[], bool], timeout: float = 60.0,
                     poll: float = 0.05) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(poll)


def read_jsonl(path: Path) -> list[Event]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def terminal_states(journal_events: list[Event]) -> dict[str, list[str]]:
    """intent id -> every terminal state the journal recorded for it (must be exactly one)."""
    out: dict[str, list[str]] = {}
    for e in journal_events:
        if e["event"] == "intent_done":
            out.setdefault(e["intent_id"], []).append(e["state"])
    return out


# -- ModeGuard / OrderRouter alone, on trio's virtual clock ---------------------------------------



MID_SESSION_ET = dt.datetime(2024, 7, 1, 11, 0, tzinfo=ET)      # a Monday session in progress
SPY_CALL = OptionSpec(underlying="SPY", expiry=dt.date(2024, 7, 12), strike=545.0, right="C")


def settings_for(tmp_path: Path, **env: str) -> Settings:
    base = {"LOG_FILE": str(tmp_path / "logs" / "bot.log"), "STATE_DIR": str(tmp_path / "state"),
            "GAMEPLAN_PATH": str(tmp_path / "gameplan.json"), "HEALTH_PORT": "0"}
    base.update(env)
    return load_settings(None, base)


@dataclass
class Actors:
    """Hand-fed channels around one actor, and what it said."""

    wiring: Wiring
    env: ActorEnv
    events: list[Event]
    alerts: DropOldest[Alert]
    tree: TreeOptions = field(default_factory=TreeOptions)   # the actors' tunings
    seen_alerts: list[Alert] = field(default_factory=list)

    def journal(self, name: str) -> list[Event]:
        return [e for e in self.events if e["event"] == name]

    def all_alerts(self) -> list[Alert]:
        while True:
            try:
                self.seen_alerts.append(self.alerts.receive_nowait())
            except trio.WouldBlock:
                return self.seen_alerts

    def link_up(self, session: int, accounts: tuple[str, ...] = ("DU1234567",), *,
                readonly: bool = False) -> None:
        self.wiring.link_state.set(LinkState(status=LinkStatus.UP, session_id=session,
                                             accounts=accounts, readonly=readonly,
                                             since=self.env.clock.now_utc()))

    def link_down(self) -> None:
        old = self.wiring.link_state.value
        self.wiring.link_state.set(old.model_copy(update={"status": LinkStatus.DOWN}))

    def quote(self, spec: OptionSpec, bid: float, ask: float, *, session: int = 1,
              volume: float = 5_000, open_interest: float | None = 12_000) -> None:
        board = dict(self.wiring.quotes.value)
        board[spec.key] = Quote(key=spec.key, ts=self.env.clock.now_utc(), bid=bid, ask=ask,
                                volume=volume, open_interest=open_interest, session_id=session)
        self.wiring.quotes.set(board)


@asynccontextmanager
async def open_actor_env(tmp_path: Path, *, env: Mapping[str, str] | None = None,
                         tree: TreeOptions | None = None,
                         start: dt.datetime = MID_SESSION_ET) -> AsyncIterator[Actors]:
    settings = settings_for(tmp_path, **(env or {}))
    journal_logger = logging.getLogger(f"tests.money.journal.{id(tmp_path)}")
    journal_logger.propagate = False
    journal = Journal(journal_logger)
    events: list[Event] = []
    journal.add_tap(events.append)
    wiring = Wiring()
    actor_env = ActorEnv(clock=Clock(start), settings=settings, journal=journal,
                         alerts=wiring.alerts)
    yield Actors(wiring=wiring, env=actor_env, events=events, alerts=wiring.alerts,
                 tree=tree or TreeOptions())


def context(a: Actors, name: str, incarnation: int = 1) -> ActorContext:
    return a.env.context(TreeNode(name, f"root.{name}", "actor", incarnation=incarnation))


async def drain(receiver: trio.MemoryReceiveChannel[Message]) -> list[Message]:
    out: list[Message] = []
    await trio.lowlevel.checkpoint()
    while True:
        try:
            out.append(receiver.receive_nowait())
        except trio.WouldBlock:
            return out


# -- the whole bot against the simulator ----------------------------------------------------------


@asynccontextmanager
async def open_money_bot(tmp_path: Path, shared_data: Path, *, speed: float = 60.0,
                         start: dt.datetime | None = MID_SESSION,
                         gateway: Mapping[str, Any] | None = None,
                         tree: TreeOptions | None = None,
                         env: Mapping[str, str] | None = None) -> AsyncIterator[Harness]:
    """tests.integration's harness, with the actors' tunings (TreeOptions), the simulator's orders
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
                                  if o.order_ref.startswith(ref)]) == 3)
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
    await wait_until(lambda: ledger_positions(h).get(key) == qty)
    return ref, key, qty
