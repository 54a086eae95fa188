"""The whole bot and the Gateway simulator in one process, over real TCP on 127.0.0.1.

`open_bot_and_gateway` starts `tools.fake_gateway` on a free port and the complete actor tree
against it (real ib_async on its own thread), on a simulated clock that follows the simulator.
Tests wait on journal events through an in-process tap, always under `trio.fail_after`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from config.settings import Settings
from runtime.app.app import TreeOptions
from runtime.app.bot import BotHandle, BotOptions, run_bot
from runtime.infra.journal import Journal
from tests.harness import Event, events_named, first_event, settings_for
from tests.harness.data import SPY_1M
from tools.fake_gateway import FakeGateway, FakeGatewayConfig, open_fake_gateway

MID_SESSION = dt.datetime(2024, 2, 21, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
"""Where the scenarios start: a regular session in progress, a day of history behind it."""

BOT_WAIT = 60.0
"""How long a test waits for the bot to get somewhere against the simulator (real time, 60x)."""


@dataclass
class Recorder:
    """Every journal event, in order, plus a way to wait for the next matching one.

    `events` first has the journal hand over what the event loop holds (the journal taps a
    burst's events when the loop goes idle): a test that saw the bot's state change must also
    see the events emitted with it."""

    journal: Journal | None = None
    _events: list[Event] = field(default_factory=list)
    _changed: trio.Event = field(default_factory=trio.Event)

    @property
    def events(self) -> list[Event]:
        if self.journal is not None:
            self.journal.hand_over()
        return self._events

    def __call__(self, event: Event) -> None:
        self._events.append(event)
        self._changed.set()
        self._changed = trio.Event()

    def of(self, name: str, **match: Any) -> list[Event]:
        return events_named(self.events, name, **match)

    async def wait_for(self, name: str, *, after: int = 0,
                       where: Callable[[Event], bool] = lambda e: True,
                       timeout: float = 30.0) -> Event:
        """The first `name` event at index >= `after` satisfying `where`."""
        with trio.fail_after(timeout):
            while (found := first_event(self.events, name, after=after, where=where)) is None:
                await self._changed.wait()
            return found

    def mark(self) -> int:
        return len(self.events)


@dataclass
class Harness:
    bot: BotHandle
    gateway: FakeGateway
    journal: Recorder
    settings: Settings


def bot_settings(tmp_path: Path, port: int, **overrides: str) -> Settings:
    """The shared settings, pointed at the simulator on `port`."""
    return settings_for(tmp_path, **{"IBKR_PORT": str(port), "LOG_LEVEL": "INFO", **overrides})


@asynccontextmanager
async def open_bot_and_gateway(tmp_path: Path, shared_data: Path, *, speed: float = 60.0,
                               start: dt.datetime | None = MID_SESSION,
                               gateway: dict[str, Any] | None = None,
                               tree: TreeOptions | None = None,
                               **settings: str) -> AsyncIterator[Harness]:
    config = FakeGatewayConfig(port=0, control_port=0, bars=shared_data / SPY_1M, speed=speed,
                               start=start, **(gateway or {}))
    async with open_fake_gateway(config) as gw:
        recorder = Recorder()
        s = bot_settings(tmp_path, gw.port, **settings)
        options = BotOptions(sim_start=gw.clock.now_utc(), sim_speed=speed, console=False,
                             handle_signals=False, tree=tree)
        async with trio.open_nursery() as nursery:
            bot: BotHandle = await nursery.start(run_bot, s, options)
            recorder.journal = bot.journal
            bot.journal.add_tap(recorder)
            try:
                yield Harness(bot, gw, recorder, s)
            finally:
                bot.request_stop("test over")
