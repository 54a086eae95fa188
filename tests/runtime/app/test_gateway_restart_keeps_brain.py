"""Gateway restarts respawn the link subtree and leave the brain untouched.

The real supervision tree pieces: a root (one_for_one) over the app's own `brain` subtree
(runtime/app/app.py's wiring of Indicators and StrategySelector) and a stand-in `link` subtree
(one_for_all) whose feed plays BarFeed over the real 2019 bars: history at start, then live,
with a mid-session Gateway drop (missed bars come back as backfill, overlapping two bars it
had already delivered) and the scheduled 16:30 ET restart. The link restarts; the brain keeps
its first incarnation, every indicator value equals an uninterrupted computation, and the
decisions still equal the backtest's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
import trio.testing

from actors import strategy_selector
from doctrine.indicators import IndicatorSet
from doctrine.replay import RawBar, merge_events
from messages.base import Message
from messages.brain import IndicatorSnapshot
from messages.market import Bar, VixReading
from runtime.app.wiring import Wiring
from runtime.infra.clock import Clock
from runtime.infra.logs import open_logging, set_log_clock
from runtime.supervision.actor import ActorContext, ActorEnv
from runtime.supervision.channels import Channel, Ports
from runtime.supervision.supervisor import (
    ExpectedRestart,
    Strategy,
    Supervisor,
    SupervisorSpec,
    build_nodes,
)
from tests.harness.brain import (
    brain_settings,
    brain_spec,
    day_bars,
    et,
    plan_dict,
    utc,
    write_plan,
)
from tests.harness.data import SPY_2019, VIX_2019, bars_of
from tools import consistency

HISTORY = dt.date(2019, 2, 11)
LIVE = [dt.date(2019, 2, 12), dt.date(2019, 2, 13)]
OUTAGES = [   # (Gateway down, back up, scheduled?)
    (et(LIVE[0], 11, 0, 30), et(LIVE[0], 11, 4, 10), False),
    (et(LIVE[0], 16, 30), et(LIVE[0], 16, 36), True),
    (et(LIVE[1], 13, 15, 30), et(LIVE[1], 13, 17, 10), False),
]


class _TappedSender:
    """A snapshots sender that also records what the Indicators actor sends."""

    def __init__(self, inner: trio.MemorySendChannel[IndicatorSnapshot],
                 seen: list[IndicatorSnapshot]) -> None:
        self._inner = inner
        self._seen = seen

    async def send(self, message: IndicatorSnapshot) -> None:
        self._seen.append(message)
        await self._inner.send(message)

    def send_nowait(self, message: IndicatorSnapshot) -> None:
        self._inner.send_nowait(message)        # raises WouldBlock before anything is seen
        self._seen.append(message)

    def close(self) -> None:
        self._inner.close()


class TappedChannel(Channel[IndicatorSnapshot]):
    def __init__(self, name: str, capacity: int) -> None:
        super().__init__(name, capacity)
        self.seen: list[IndicatorSnapshot] = []

    def clone_sender(self) -> Any:
        return _TappedSender(super().clone_sender(), self.seen)


@dataclass
class Cursor:
    """BarFeed's memory: outlives every incarnation of the link subtree."""

    i: int = 0
    delivered: int = 0


async def test_gateway_restarts_keep_the_indicators_and_the_selection_untouched(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    spy, vix = bars_of(SPY_2019), bars_of(VIX_2019)
    settings = brain_settings(tmp_path)
    plan_path = settings.gameplan_path
    write_plan(plan_path, plan_dict(LIVE[0]))
    live_spy = [b for d in LIVE for b in day_bars(spy, d)]
    live_vix = [b for d in LIVE for b in day_bars(vix, d)]
    events = merge_events({"SPY": live_spy}, live_vix, 60)
    cursor = Cursor()
    clock = Clock(et(LIVE[0], 6, 0))
    set_log_clock(clock)
    try:
        with open_logging(log_file=settings.log_file, max_bytes=settings.log_max_bytes,
                          backup_count=3, console=False) as journal:
            w = Wiring()
            tapped = w.snapshots = TappedChannel("snapshots", 1024)
            env = ActorEnv(clock=clock, settings=settings, journal=journal, alerts=w.alerts)

            def emit_bar(ctx: ActorContext, symbol: str, raw: RawBar, source: str) -> None:
                ctx.emit("bar", symbol=symbol, bar_ts=utc(raw[0]), open=raw[1], high=raw[2],
                         low=raw[3], close=raw[4], volume=raw[5], source=source)

            async def gateway(ctx: ActorContext, p: Ports, ts: trio.TaskStatus[None]) -> None:
                ts.started()
                await trio.sleep_forever()

            async def feed(ctx: ActorContext, p: Ports, ts: trio.TaskStatus[None]) -> None:
                bars = p.sender(w.bars)
                ts.started()
                for down, up, _ in OUTAGES:                 # the Gateway is still down
                    if down <= clock.now_utc() < up:
                        await clock.sleep_until(up)
                entered = clock.now_utc().timestamp()
                if cursor.i == 0:                           # the first session: history
                    for b in day_bars(spy, HISTORY):
                        emit_bar(ctx, "SPY", b, "history")
                        await bars.send(_bar(b, "history"))
                    for b in day_bars(vix, HISTORY):
                        emit_bar(ctx, "VIX", b, "history")
                        w.vix.set(VixReading(value=b[4], ts=utc(b[0] + 60)))
                else:                                       # an overlapping backfill
                    done = [e for e in events[:cursor.i] if e[1] == 1][-2:]
                    for _, _, _, b in done:
                        emit_bar(ctx, "SPY", b, "backfill")
                        await bars.send(_bar(b, "backfill"))
                while cursor.i < len(events):
                    at, kind, symbol, raw = events[cursor.i]
                    due = at + (1.0 if kind == 0 else 2.0)
                    for down, _, expected in OUTAGES:
                        if clock.now_utc() < down <= utc(due):
                            await clock.sleep_until(down)
                            if expected:
                                raise ExpectedRestart("scheduled Gateway restart")
                            raise ConnectionError("Gateway connection lost")
                    await clock.sleep_until(utc(due))
                    source = "backfill" if due <= entered and cursor.delivered else "live"
                    emit_bar(ctx, symbol, raw, source)
                    if kind == 0:
                        w.vix.set(VixReading(value=raw[4], ts=utc(at)))
                    else:
                        await bars.send(_bar(raw, source))
                    cursor.i += 1
                    cursor.delivered += 1
                    if at == et(LIVE[0], 16, 0).timestamp() and kind == 1:
                        write_plan(plan_path, plan_dict(LIVE[1]))   # tomorrow's plan
                await trio.sleep_forever()

            link = SupervisorSpec("link", (env.actor("gateway_link", gateway),
                                           env.actor("bar_feed", feed)),
                                  strategy=Strategy.ONE_FOR_ALL)
            spec = SupervisorSpec("root", (brain_spec(
                w, env, strategy_selector.Tuning(plan_poll_s=60.0)), link))
            root = build_nodes(spec)
            sup = Supervisor(spec, root)
            async with trio.open_nursery() as nursery:
                signals = w.signals.clone_receiver()
                nursery.start_soon(_drain, signals)
                await nursery.start(sup.run)
                with trio.fail_after(3 * 86400):
                    while cursor.i < len(events):
                        await trio.sleep(60)
                await trio.sleep(60)
                feed_node = root.find("root.link.bar_feed")
                brain_nodes = [root.find("root.brain.indicators"),
                               root.find("root.brain.strategy_selector")]
                await sup.stop()
                nursery.cancel_scope.cancel()
    finally:
        set_log_clock(None)

    assert feed_node.incarnation == 1 + len(OUTAGES)           # the link was respawned
    assert [(n.incarnation, n.restarts) for n in brain_nodes] == [(1, 0), (1, 0)]
    snaps = [s for s in tapped.seen if isinstance(s, IndicatorSnapshot)]
    reference = IndicatorSet("SPY")
    expected = [reference.update(_bar(b, "live")) for d in [HISTORY, *LIVE]
                for b in day_bars(spy, d)]
    assert len(snaps) == len(expected)                         # each bar exactly once
    for got, want in zip(snaps, expected, strict=True):
        assert got.model_copy(update={"source": "live"}) == want   # never reset, never recounted
    sources = {s.source for s in snaps}
    assert sources == {"history", "live", "backfill"}
    result = consistency.compare_logdir(settings.log_dir)
    assert result.match, "\n".join(result.summary_lines())
    assert result.entries_live > 0


def _bar(raw: RawBar, source: Any) -> Bar:
    return Bar(symbol="SPY", ts=utc(raw[0]), open=raw[1], high=raw[2], low=raw[3],
               close=raw[4], volume=raw[5], source=source)


async def _drain(channel: trio.MemoryReceiveChannel[Message]) -> None:
    async for _ in channel:
        pass

