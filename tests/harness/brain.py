"""The brain subtree in-process: the app's own wiring of Indicators and StrategySelector.

`open_brain` runs the `brain` supervisor exactly as runtime/app/app.py builds it (real Wiring
channels, real ActorContexts, a real Journal writing events.jsonl into tmp_path, a Clock on
trio's MockClock); the test plays BarFeed (bars, VIX, `bar` events) and ModeGuard (governor).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from actors import strategy_selector
from config.gameplan import Gameplan, parse_gameplan
from config.market_calendar import ET
from config.settings import Settings
from doctrine.replay import RawBar
from messages.base import Message
from messages.brain import EntrySignal
from messages.market import Bar, BarGap, BarSource, VixReading
from runtime.app.app import TreeOptions, build_tree
from runtime.app.wiring import Wiring
from runtime.infra.clock import Clock
from runtime.infra.logs import Journal, open_logging, set_log_clock
from runtime.supervision.actor import ActorEnv
from runtime.supervision.supervisor import Supervisor, SupervisorSpec, build_nodes
from runtime.supervision.tree import TreeNode
from tests.harness import events_named, settings_for, wait_until
from tests.harness.data import varied_plan_dict

OPERATOR = "OPS1"
FEED = "root.link.bar_feed"     # who journals bars in the real tree
UTC = dt.UTC


def et(day: dt.date, hh: int, mm: int = 0, ss: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm, ss), tzinfo=ET)


def utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, UTC)


def plan_dict(day: dt.date, **changes: Any) -> dict[str, Any]:
    """A valid Strategy A plan for `day` on SPY (gate 09:45 < 18.5), fields replaced; a value
    of `...` deletes the field."""
    return varied_plan_dict(**{"date": day.isoformat(),
                               "session_id": f"gauntlet_{day:%Y%m%d}_0905",
                               "operator_id": OPERATOR, "symbols": ["SPY"], **changes})


def plan_of(data: dict[str, Any]) -> Gameplan:
    return parse_gameplan(json.dumps(data))


def write_plan(path: Path, data: dict[str, Any] | str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")


def brain_settings(tmp_path: Path, **env: str) -> Settings:
    """The shared settings with the selector's plan where the tests write it, and an operator."""
    return settings_for(tmp_path, **{
        "GAMEPLAN_PATH": str(tmp_path / "plans" / "daily_gameplan.json"),
        "OPERATOR_ID": OPERATOR, **env})


def brain_spec(w: Wiring, env: ActorEnv,
               tuning: strategy_selector.Tuning | None = None) -> SupervisorSpec:
    """The app's own `brain` subtree (runtime/app/app.py), wired to `w`."""
    spec = build_tree(w, env, TreeOptions(selector_tuning=tuning))
    found = [c for c in spec.children if isinstance(c, SupervisorSpec) and c.name == "brain"]
    assert found, "runtime/app/app.py has no brain subtree"
    return found[0]


@dataclass
class Brain:
    """A running brain subtree and the test's handles on it."""

    settings: Settings
    wiring: Wiring
    clock: Clock
    journal: Journal
    env: ActorEnv
    root: TreeNode
    supervisor: Supervisor
    bars: trio.MemorySendChannel[Bar | BarGap]
    events: list[dict[str, Any]] = field(default_factory=list)
    signals: list[Message] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)   # perf_counter() of each signal

    @property
    def indicators(self) -> TreeNode:
        return self.root.find("brain.indicators")

    @property
    def selector(self) -> TreeNode:
        return self.root.find("brain.strategy_selector")

    def of(self, event: str, **match: Any) -> list[dict[str, Any]]:
        return events_named(self.events, event, **match)

    def decisions(self) -> list[dict[str, Any]]:
        return self.of("signal", kind="decision")

    def alerts(self, severity: str | None = None) -> list[dict[str, Any]]:
        return [a for a in self.of("alert") if severity is None or a["severity"] == severity]

    def plan(self) -> Gameplan | None:
        """The `gameplan` latest value the selector published."""
        return self.wiring.gameplan.value

    @property
    def decision(self) -> Any:
        return self.wiring.decision.value

    @property
    def entries(self) -> list[EntrySignal]:
        return [s for s in self.signals if isinstance(s, EntrySignal)]

    # -- playing BarFeed -------------------------------------------------------------------
    async def send_bar(self, symbol: str, raw: RawBar, source: BarSource = "live") -> None:
        bar = Bar(symbol=symbol, ts=utc(raw[0]), open=raw[1], high=raw[2], low=raw[3],
                  close=raw[4], volume=raw[5], source=source)
        self.journal.emit("bar", FEED, symbol=symbol, bar_ts=bar.ts, open=bar.open,
                          high=bar.high, low=bar.low, close=bar.close, volume=bar.volume,
                          source=source)
        await self.bars.send(bar)

    def set_vix(self, raw: RawBar, source: BarSource = "live", bar_seconds: int = 60) -> None:
        end = utc(raw[0] + bar_seconds)
        self.journal.emit("bar", FEED, symbol="VIX", bar_ts=utc(raw[0]), open=raw[1],
                          high=raw[2], low=raw[3], close=raw[4], volume=raw[5], source=source)
        self.wiring.vix.set(VixReading(value=raw[4], ts=end))

    async def send_gap(self, symbol: str, start: dt.datetime, end: dt.datetime) -> None:
        gap = BarGap(symbol=symbol, start=start, end=end, reason="test gap")
        self.journal.emit("bar_gap", FEED, symbol=symbol, start=start, end=end, reason="test")
        await self.bars.send(gap)

    async def settle(self, seconds: float = 1.0) -> None:
        """Let every actor run (virtual time: free on MockClock)."""
        await trio.sleep(seconds)

    async def until(self, predicate: Callable[[], bool], limit: float = 600.0) -> None:
        """Wait (virtual time) until `predicate()` holds; fail after `limit` seconds."""
        await wait_until(predicate, timeout=limit, poll=0.5)


@asynccontextmanager
async def open_brain(tmp_path: Path, start: dt.datetime, *, settings: Settings | None = None,
                     tuning: strategy_selector.Tuning | None = None,
                     wiring: Wiring | None = None) -> AsyncIterator[Brain]:
    """The brain subtree running on a clock that reads `start` now (MockClock time)."""
    settings = settings or brain_settings(tmp_path)
    clock = Clock(start)
    set_log_clock(clock)
    w = wiring or Wiring()
    try:
        with open_logging(log_file=settings.log_file, max_bytes=settings.log_max_bytes,
                          backup_count=settings.log_backup_count, console=False) as journal:
            env = ActorEnv(clock=clock, settings=settings, journal=journal, alerts=w.alerts)
            spec = brain_spec(w, env, tuning or strategy_selector.Tuning(plan_poll_s=60.0))
            root = build_nodes(spec)
            sup = Supervisor(spec, root)
            brain = Brain(settings=settings, wiring=w, clock=clock, journal=journal, env=env,
                          root=root, supervisor=sup, bars=w.bars.clone_sender())
            journal.add_tap(brain.events.append)
            signals = w.signals.clone_receiver()

            async def collect() -> None:       # plays ModeGuard's inbox: never backpressure
                async for message in signals:
                    brain.received_at.append(time.perf_counter())
                    brain.signals.append(message)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(collect)
                await nursery.start(sup.run)
                yield brain
                await sup.stop()
                nursery.cancel_scope.cancel()
            journal.remove_tap(brain.events.append)
    finally:
        set_log_clock(None)


def day_bars(bars: Iterable[RawBar], day: dt.date) -> list[RawBar]:
    return [b for b in bars if dt.datetime.fromtimestamp(b[0], ET).date() == day]
