"""The real ResourceProbe actor with a scripted sampler, on trio's virtual clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from actors import resource_probe
from actors.resource_probe import DiskSample, ProbeConfig, ProcessSample
from config.market_calendar import ET
from messages.alerts import Alert
from runtime.app.bot import status_view
from runtime.app.wiring import Wiring
from runtime.infra.clock import Clock
from runtime.supervision.actor import ActorContext, ActorEnv
from runtime.supervision.channels import DropOldest
from runtime.supervision.tree import TreeNode
from tests.harness import memory_journal, settings_for

START = dt.datetime(2026, 11, 20, 6, 0, tzinfo=ET)
MB = 1024 * 1024


def flat(value: float) -> Callable[[float], float]:
    return lambda t: value


@dataclass
class FakeSampler:
    """Figures as functions of trio time (seconds since the test started).

    `cpu_pct(t)` is the CPU load at t; the sampler integrates it into cumulative CPU seconds,
    as the OS counts them, so the probe's averaging is exercised for real.
    """

    cpu_pct: Callable[[float], float] = field(default_factory=lambda: flat(1.0))
    rss_mb: Callable[[float], float] = field(default_factory=lambda: flat(150.0))
    log_dir_mb: Callable[[float], float] = field(default_factory=lambda: flat(20.0))
    disk_free_gb: Callable[[float], float] = field(default_factory=lambda: flat(50.0))
    fail_with: Exception | None = None
    _cpu_seconds: float = 0.0
    _last: float | None = None
    calls: int = 0

    async def sample_process(self) -> ProcessSample:
        await trio.lowlevel.checkpoint()
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        t = trio.current_time()
        if self._last is not None:
            self._cpu_seconds += self.cpu_pct(self._last) / 100.0 * (t - self._last)
        self._last = t
        return ProcessSample(cpu_seconds=self._cpu_seconds, rss_bytes=int(self.rss_mb(t) * MB),
                             handles=42, threads=7)

    async def sample_disk(self) -> DiskSample:
        await trio.lowlevel.checkpoint()
        t = trio.current_time()
        return DiskSample(log_dir_bytes=int(self.log_dir_mb(t) * MB),
                          disk_free_bytes=int(self.disk_free_gb(t) * 1024 * MB))


@dataclass
class Probed:
    ctx: ActorContext
    alerts: DropOldest[Alert]
    events: list[dict[str, Any]]
    wiring: Wiring               # `resources` is the probe's outbox; the view reads the depths
    seen: list[Alert] = field(default_factory=list)

    def resources(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "resource"]

    def warnings(self, key: str | None = None) -> list[Alert]:
        self._collect()
        return [a for a in self.seen if (key is None or a.key == key)]

    def _collect(self) -> None:
        while True:
            try:
                self.seen.append(self.alerts.receive_nowait())
            except trio.WouldBlock:
                return


@asynccontextmanager
async def open_probe(tmp_path: Path, sampler: FakeSampler | Any,
                     config: ProbeConfig | None = None) -> AsyncIterator[Probed]:
    """The probe at production cadence (the lag ticker off unless `config` says otherwise:
    on the virtual clock it measures nothing and costs a wake-up per second)."""
    config = config or ProbeConfig(lag_tick_s=0.0)
    settings = settings_for(tmp_path)
    journal, events = memory_journal("resource_probe")
    alerts: DropOldest[Alert] = DropOldest("alerts", 10_000)
    wiring = Wiring()
    clock = Clock(START)
    view = status_view(wiring, settings, clock, journal)
    env = ActorEnv(clock=clock, settings=settings, journal=journal, alerts=alerts)
    ctx = env.context(TreeNode("resource_probe", "root.resource_probe", "actor",
                               incarnation=1))
    async with trio.open_nursery() as nursery:
        await nursery.start(resource_probe.run, ctx, resource_probe.Inbox(status=view),
                            resource_probe.Outbox(resources=wiring.resources), config, sampler)
        yield Probed(ctx=ctx, alerts=alerts, events=events, wiring=wiring)
        nursery.cancel_scope.cancel()
