"""The Indicators actor: bars counted exactly once, gaps marked, periods from the plan."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
import trio.testing

from actors import indicators
from config.gameplan import Gameplan
from doctrine.indicators import IndicatorParams, IndicatorSet
from doctrine.replay import RawBar
from messages.base import Message
from messages.brain import IndicatorSnapshot
from messages.market import Bar, BarGap, BarSource
from runtime.app.wiring import Wiring
from runtime.infra.clock import Clock
from runtime.infra.logs import open_logging
from runtime.supervision.actor import ActorEnv
from runtime.supervision.channels import Latest
from runtime.supervision.tree import TreeNode
from tests.harness.brain import brain_settings, plan_dict, plan_of
from tests.harness.data import SPY_2019, bars_of

START = dt.datetime(2019, 2, 15, 17, 0, tzinfo=dt.UTC)


def bar(symbol: str, raw: RawBar, source: BarSource = "live") -> Bar:
    return Bar(symbol=symbol, ts=dt.datetime.fromtimestamp(raw[0], dt.UTC), open=raw[1],
               high=raw[2], low=raw[3], close=raw[4], volume=raw[5], source=source)


@dataclass
class Rig:
    bars: trio.MemorySendChannel[Bar | BarGap]
    snapshots: trio.MemoryReceiveChannel[Message]
    gameplan: Latest[Gameplan | None]
    node: TreeNode
    memory: indicators.Memory
    events: list[dict[str, Any]] = field(default_factory=list)

    async def feed(self, *items: Bar | BarGap) -> None:
        for item in items:
            await self.bars.send(item)

    async def take(self, n: int) -> list[IndicatorSnapshot]:
        out = []
        with trio.fail_after(60):
            for _ in range(n):
                snap = await self.snapshots.receive()
                assert isinstance(snap, IndicatorSnapshot)
                out.append(snap)
        return out

    async def nothing_more(self) -> None:
        await trio.sleep(5)
        assert self.snapshots.statistics().current_buffer_used == 0


@asynccontextmanager
async def open_indicators(tmp_path: Path, memory: indicators.Memory | None = None,
                          gameplan: Latest[Gameplan | None] | None = None,
                          ) -> AsyncIterator[Rig]:
    """The actor alone, on the wiring's real channels and a real context."""
    w = Wiring()
    if gameplan is not None:
        w.gameplan = gameplan
    settings = brain_settings(tmp_path)
    memory = memory if memory is not None else indicators.Memory()
    with open_logging(log_file=settings.log_file, max_bytes=1 << 20, backup_count=2,
                      console=False) as journal:
        env = ActorEnv(clock=Clock(START), settings=settings, journal=journal, alerts=w.alerts)
        node = TreeNode("indicators", "brain.indicators", "actor", incarnation=1)
        rig = Rig(bars=w.bars.clone_sender(), snapshots=w.snapshots.clone_receiver(),
                  gameplan=w.gameplan, node=node, memory=memory)
        journal.add_tap(rig.events.append)
        inbox = indicators.Inbox(bars=w.bars.clone_receiver(), gameplan=w.gameplan)
        outbox = indicators.Outbox(snapshots=w.snapshots.clone_sender())
        async with trio.open_nursery() as nursery:
            await nursery.start(indicators.run, env.context(node), inbox, outbox, memory)
            yield rig
            nursery.cancel_scope.cancel()


def reference(raws: list[RawBar], params: IndicatorParams | None = None) -> list[IndicatorSnapshot]:
    ind = IndicatorSet("SPY", params)
    return [ind.update(bar("SPY", b)) for b in raws]


async def test_each_bar_counts_once_and_gives_exactly_one_snapshot(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    raws = bars_of(SPY_2019)[:30]
    async with open_indicators(tmp_path) as rig:
        await rig.feed(*(bar("SPY", b) for b in raws))
        # a backfill overlapping what was delivered, and an older bar: neither counts again
        await rig.feed(*(bar("SPY", b, "backfill") for b in raws[25:]), bar("SPY", raws[3]))
        got = await rig.take(30)
        await rig.nothing_more()
        assert got == reference(raws)
        assert rig.memory.skipped == 6 and rig.memory.counted == 30


async def test_a_gap_flags_the_next_snapshot_and_carries_the_values_on(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    raws = bars_of(SPY_2019)[:40]
    async with open_indicators(tmp_path) as rig:
        await rig.feed(*(bar("SPY", b) for b in raws[:30]))
        start = dt.datetime.fromtimestamp(raws[30][0], dt.UTC)
        await rig.feed(BarGap(symbol="SPY", start=start, end=start + dt.timedelta(minutes=2),
                              reason="test"))
        await rig.feed(*(bar("SPY", b) for b in raws[32:]))   # the two bars never came
        got = await rig.take(38)
        assert [s.after_gap for s in got[29:32]] == [False, True, False]
        ref = IndicatorSet("SPY")
        for b in raws[:30] + raws[32:]:
            expected = ref.update(bar("SPY", b))
        assert got[-1].ema_slow == expected.ema_slow and got[-1].rsi == expected.rsi


async def test_a_bad_bar_is_refused_and_the_next_one_is_not_read_as_continuous(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    raws = bars_of(SPY_2019)[:25]
    async with open_indicators(tmp_path) as rig:
        await rig.feed(*(bar("SPY", b) for b in raws[:20]))
        broken = (raws[20][0], raws[20][1], raws[20][2], raws[20][3], math.nan, raws[20][5])
        await rig.feed(bar("SPY", broken), *(bar("SPY", b) for b in raws[21:]))
        got = await rig.take(24)
        assert got[20].after_gap and not got[21].after_gap
        assert [e["symbol"] for e in rig.events if e["event"] == "bar_refused"] == ["SPY"]
        assert rig.memory.refused == 1


async def test_the_tree_note_shows_warm_up_per_symbol(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    raws = bars_of(SPY_2019)[:25]
    async with open_indicators(tmp_path) as rig:
        assert rig.node.note == "waiting for bars"
        await rig.feed(*(bar("SPY", b) for b in raws), *(bar("QQQ", b) for b in raws[:12]))
        await rig.take(37)
        assert rig.node.note == "QQQ warming 12/21, SPY ready"


async def test_plan_periods_rebuild_the_indicators_from_the_ring_buffer(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    raws = bars_of(SPY_2019)[:80]
    custom = plan_of(plan_dict(dt.date(2019, 2, 11), strategy_parameters={
        "ema_fast": 5, "ema_slow": 13, "rsi_period": 9, "bollinger_period": 10,
        "bollinger_std": 2.5}))
    params = IndicatorParams.from_plan(custom)
    async with open_indicators(tmp_path) as rig:
        await rig.feed(*(bar("SPY", b) for b in raws[:60]))
        before = await rig.take(60)
        assert before == reference(raws[:60])
        rig.gameplan.set(custom)                  # the selector publishes a validated plan
        await trio.sleep(1)
        assert rig.node.shown("periods") == "EMA 5/13, RSI 9, BB 10/2.5"
        await rig.feed(*(bar("SPY", b) for b in raws[60:70]))
        after = await rig.take(10)
        # as if the new periods had been in force from the first bar: no blind warm-up
        assert after == reference(raws[:70], params)[60:]
        [change] = [e for e in rig.events if e["event"] == "indicator_params"]
        assert change["new"]["ema_slow"] == 13 and change["rewarmed"] == {"SPY": 60}
        # a withdrawn plan (midnight, refused) keeps the periods in force
        rig.gameplan.set(None)
        await rig.feed(*(bar("SPY", b) for b in raws[70:]))
        assert await rig.take(10) == reference(raws, params)[70:]
    human = (tmp_path / "logs" / "bot.log").read_text(encoding="utf-8")
    assert "re-warmed from the ring buffer: SPY 60 bars" in human


async def test_a_new_incarnation_rewarms_from_memory_and_skips_what_it_counted(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    raws = bars_of(SPY_2019)[:50]
    memory = indicators.Memory()
    async with open_indicators(tmp_path, memory) as rig:
        await rig.feed(*(bar("SPY", b) for b in raws[:40]))
        await rig.take(40)
    async with open_indicators(tmp_path, memory) as rig:    # a crash and a restart
        assert rig.node.note == "SPY ready"
        await rig.feed(*(bar("SPY", b, "backfill") for b in raws[38:]))
        got = await rig.take(10)
        assert {s.source for s in got} == {"backfill"}
        assert [s.model_copy(update={"source": "live"}) for s in got] == reference(raws)[40:]
