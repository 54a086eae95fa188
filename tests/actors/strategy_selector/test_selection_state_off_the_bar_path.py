"""The selector's day memory is written by its writer task, off the bar path (issue 17).

A decision is published as soon as it is made; the memory behind it follows on the writer's
worker thread. A disk that stalls delays the file, never the decision; a disk that refuses a
later save still locks C for the day, said once, as a refused save at start does
(test_selection_memory_persists.py).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from messages.market import Bar, VixReading
from runtime.infra.state_store import StateStore
from tests.harness.brain import (
    Brain,
    brain_settings,
    day_bars,
    et,
    open_brain,
    plan_dict,
    utc,
    write_plan,
)
from tests.harness.data import SPY_2019, VIX_2019, bars_of

DAY = dt.date(2024, 3, 5)


async def set_vix(brain: Brain, value: float) -> None:
    brain.wiring.vix.set(VixReading(value=value, ts=brain.clock.now_utc()))
    await brain.settle()


def saved_pivots(tmp_path: Path) -> Any:
    doc = json.loads((tmp_path / "state" / "selection.json").read_text(encoding="utf-8"))
    return doc["state"]["pivots"]


async def test_a_stalled_disk_delays_the_memory_file_never_the_decision(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    write_plan(plan_path, plan_dict(DAY, vix_gate=...))
    disk_back = threading.Event()
    write = StateStore._write_file

    def stalled_write(self: StateStore, name: str, data: bytes) -> None:
        disk_back.wait(30)                   # the worker thread waits, not the actors
        write(self, name, data)

    async with open_brain(tmp_path, et(DAY, 10, 0)) as brain:
        await set_vix(brain, 15.0)
        assert (brain.decision.strategy, brain.decision.pivots) == ("A", 0)
        assert saved_pivots(tmp_path) == 0
        monkeypatch.setattr(StateStore, "_write_file", stalled_write)
        await brain.clock.sleep_until(et(DAY, 10, 1))
        await set_vix(brain, 18.2)                              # B: the first pivot
        assert (brain.decision.strategy, brain.decision.pivots) == ("B", 1)
        assert saved_pivots(tmp_path) == 0                      # the disk has not answered
        disk_back.set()
        await brain.until(lambda: saved_pivots(tmp_path) == 1)
        assert brain.alerts("critical") == []


async def test_a_disk_that_refuses_a_later_save_locks_c_once_through_the_writer(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    write_plan(plan_path, plan_dict(DAY, vix_gate=...))
    async with open_brain(tmp_path, et(DAY, 10, 0)) as brain:
        state_dir = tmp_path / "state"                          # saved at start, on its task
        assert (state_dir / "selection.json").exists()
        state_dir.rename(tmp_path / "state.moved")              # STATE_DIR is now a file:
        state_dir.write_text("not a directory", encoding="utf-8")   # every save fails
        await set_vix(brain, 15.0)                              # A: a change to save
        await brain.until(lambda: brain.decision.locked)        # once the writer is refused
        d = brain.decision
        assert (d.strategy, d.locked) == ("C", True)
        assert "selection state cannot be saved" in d.reasons[0]
        await brain.clock.sleep_until(et(DAY, 10, 1))
        await set_vix(brain, 18.2)                              # C stays, nothing new said
        assert (brain.decision.strategy, brain.decision.locked) == ("C", True)
        titles = [a["title"] for a in brain.alerts("critical")]
        assert titles == ["Selection state cannot be saved: Strategy C for the day"]


async def play_day(brain: Brain, day: dt.date) -> None:
    """The 2019 day's SPY bars through the brain, each minute's VIX first (as live)."""
    spy, vix = day_bars(bars_of(SPY_2019), day), day_bars(bars_of(VIX_2019), day)
    vix_at = {b[0]: b for b in vix}
    for b in spy:
        end = dt.datetime.fromtimestamp(b[0] + 60, dt.UTC)
        brain.clock.follow(end + dt.timedelta(milliseconds=500), tolerance=0.0)
        if (v := vix_at.get(b[0])) is not None:
            brain.wiring.vix.set(VixReading(value=v[4], ts=end))
            await trio.testing.wait_all_tasks_blocked()
        await brain.bars.send(Bar(symbol="SPY", ts=utc(b[0]), open=b[1], high=b[2], low=b[3],
                                  close=b[4], volume=b[5]))
        await trio.testing.wait_all_tasks_blocked()


@pytest.mark.parametrize("disk_refuses", [False, True], ids=["disk ok", "disk refuses"])
async def test_no_entry_leaves_while_the_day_s_memory_cannot_be_saved(
        tmp_path: Path, disk_refuses: bool) -> None:
    """A live day with entries (disk ok: the control). With STATE_DIR refusing every save
    after start, whichever comes first, the writer's refusal or an entry on a bar whose memory
    changed (saved on the selector's task), C is locked and not one entry signal leaves."""
    day = dt.date(2019, 2, 12)
    settings = brain_settings(tmp_path)
    write_plan(settings.gameplan_path, plan_dict(day))
    async with open_brain(tmp_path, et(day, 9, 29), settings=settings) as brain:
        await trio.testing.wait_all_tasks_blocked()
        if disk_refuses:
            settings.state_dir.rename(tmp_path / "state.moved")
            settings.state_dir.write_text("not a directory", encoding="utf-8")
        await play_day(brain, day)
        if disk_refuses:
            assert brain.entries == []
            assert (brain.decision.strategy, brain.decision.locked) == ("C", True)
            assert [a["title"] for a in brain.alerts("critical")] == [
                "Selection state cannot be saved: Strategy C for the day"]
        else:
            assert len(brain.entries) >= 5
            assert brain.alerts("critical") == []


async def test_an_entry_whose_memory_the_disk_refuses_is_not_sent_and_c_locks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer's save hangs in its thread (a stalled disk), so an entry finds its memory
    unsaved and saves it on the selector's task; the disk refuses that too. The entry is
    journaled as refused at the `selection` stage, never sent, and C locks for the day."""
    day = dt.date(2019, 2, 12)
    settings = brain_settings(tmp_path)
    write_plan(settings.gameplan_path, plan_dict(day))
    main, disk_back = threading.current_thread(), threading.Event()
    write = StateStore._write

    def faulty(self: StateStore, name: str, data: bytes, order: int) -> None:
        if threading.current_thread() is main:
            raise OSError(28, "No space left on device")
        disk_back.wait(30)                                  # the writer's thread hangs
        write(self, name, data, order)

    async with open_brain(tmp_path, et(day, 9, 29), settings=settings) as brain:
        await trio.testing.wait_all_tasks_blocked()          # saved at start, before the fault
        monkeypatch.setattr(StateStore, "_write", faulty)
        try:
            await play_day(brain, day)
        finally:
            disk_back.set()
        refused = [e for e in brain.of("signal", kind="rejected") if e["stage"] == "selection"]
        assert len(refused) == 1 and "could not be saved" in refused[0]["reasons"][0]
        assert brain.entries == []
        assert (brain.decision.strategy, brain.decision.locked) == ("C", True)
        assert [a["title"] for a in brain.alerts("critical")] == [
            "Selection state cannot be saved: Strategy C for the day"]
