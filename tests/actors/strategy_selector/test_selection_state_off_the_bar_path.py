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

from messages.market import VixReading
from runtime.infra.state_store import StateStore
from tests.harness.brain import Brain, et, open_brain, plan_dict, write_plan

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
