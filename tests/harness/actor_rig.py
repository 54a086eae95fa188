"""One money actor (ModeGuard or OrderRouter) alone, on trio's virtual clock: the test holds
the other ends of its channels (a Wiring), feeds them by hand and reads what it said."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from config.market_calendar import ET
from messages.alerts import Alert
from messages.base import Message
from messages.link import LinkState, LinkStatus
from messages.market import OptionSpec, Quote
from runtime.app.app import TreeOptions
from runtime.app.wiring import Wiring
from runtime.infra.clock import Clock
from runtime.supervision.actor import ActorContext, ActorEnv
from runtime.supervision.channels import DropOldest
from runtime.supervision.tree import TreeNode
from tests.harness import Event, events_named, memory_journal, settings_for

MID_SESSION_ET = dt.datetime(2024, 7, 1, 11, 0, tzinfo=ET)      # a Monday session in progress
SPY_CALL = OptionSpec(underlying="SPY", expiry=dt.date(2024, 7, 12), strike=545.0, right="C")


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
        return events_named(self.events, name)

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
    journal, events = memory_journal(f"actor_rig.{id(tmp_path)}")
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
