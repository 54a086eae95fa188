"""A VIX that is missing, stale or zero selects C through the actor (never A by accident)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import trio
import trio.testing

from messages.market import VixReading
from tests.harness.brain import Brain, et, open_brain, plan_dict, write_plan

DAY = dt.date(2024, 3, 5)


def vix_now(brain: Brain, value: float, age_s: float = 0.0) -> VixReading:
    return VixReading(value=value, ts=brain.clock.now_utc() - dt.timedelta(seconds=age_s))


async def test_no_vix_reading_at_all_selects_c(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    write_plan(plan_path, plan_dict(DAY, vix_gate=...))
    async with open_brain(tmp_path, et(DAY, 10, 0)) as brain:
        await brain.settle(60)
        d = brain.decision
        assert (d.strategy, d.rule) == ("C", "vix_unusable")
        assert d.reasons == ("VIX missing: no reading received",)


async def test_a_vix_of_zero_selects_c(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    write_plan(plan_path, plan_dict(DAY, vix_gate=...))
    async with open_brain(tmp_path, et(DAY, 10, 0)) as brain:
        brain.wiring.vix.set(vix_now(brain, 15.0))
        await brain.until(lambda: brain.decision.strategy == "A")
        brain.wiring.vix.set(vix_now(brain, 0.0))
        await brain.settle()
        d = brain.decision
        assert (d.strategy, d.rule) == ("C", "vix_unusable") and "<= 0" in d.reasons[0]
        assert brain.decisions()[-1]["cause"] == "vix"


async def test_a_vix_that_stops_updating_goes_stale_and_selects_c_on_its_own(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    write_plan(plan_path, plan_dict(DAY, vix_gate=...))
    async with open_brain(tmp_path, et(DAY, 10, 0)) as brain:
        brain.wiring.vix.set(vix_now(brain, 15.0))
        await brain.until(lambda: brain.decision.strategy == "A")
        await brain.clock.sleep_until(et(DAY, 10, 4, 59))
        assert brain.decision.strategy == "A"          # 5 minutes is still fresh
        await brain.clock.sleep_until(et(DAY, 10, 5, 2))
        d = brain.decision
        assert (d.strategy, d.rule) == ("C", "vix_unusable") and "stale" in d.reasons[0]
        assert brain.decisions()[-1]["cause"] == "timer"   # no bar was needed to see it
        # a live bar with the stale VIX: still C, and no entry
        close = 500.0
        await brain.send_bar("SPY", (et(DAY, 10, 5).timestamp(), close, close, close, close,
                                     1000.0))
        await brain.settle(30)
        assert brain.decision.strategy == "C" and brain.entries == []
        # and a fresh reading brings A back (a transient C is no pivot)
        brain.wiring.vix.set(vix_now(brain, 15.0))
        await brain.settle()
        assert (brain.decision.strategy, brain.decision.pivots) == ("A", 0)


async def test_a_reading_from_the_future_is_refused(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    write_plan(plan_path, plan_dict(DAY, vix_gate=...))
    async with open_brain(tmp_path, et(DAY, 10, 0)) as brain:
        brain.wiring.vix.set(vix_now(brain, 15.0))
        await brain.until(lambda: brain.decision.strategy == "A")
        brain.wiring.vix.set(vix_now(brain, 15.0, age_s=-3600))
        await brain.settle()
        d = brain.decision
        assert (d.strategy, d.rule) == ("C", "vix_unusable") and "future" in d.reasons[0]
        assert d.day == DAY                              # a bogus timestamp moves no day
