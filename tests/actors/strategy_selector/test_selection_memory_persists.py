"""The day's selection memory survives restarts; a restart is never more permissive.

(a) a restart of the brain subtree: the Indicators actor crashes on a poison message and the
    `brain` supervisor (rest_for_one) restarts it and the selector, as in production;
(b) a new process: new wiring, new actors, a new StateStore on the same STATE_DIR.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import trio
import trio.testing

from messages.market import VixReading
from tests.harness.brain import Brain, brain_settings, et, open_brain, plan_dict, write_plan

DAY = dt.date(2024, 3, 5)


async def set_vix(brain: Brain, value: float) -> None:
    brain.wiring.vix.set(VixReading(value=value, ts=brain.clock.now_utc()))
    await brain.settle()


async def crash_the_indicators(brain: Brain) -> None:
    before = brain.selector.incarnation
    await brain.bars.send("poison")            # type: ignore[arg-type]
    await brain.until(lambda: brain.selector.incarnation == before + 1
                      and brain.selector.state == "running")
    assert brain.indicators.restarts >= 1 and "AttributeError" in str(
        brain.indicators.last_error)


def saved(tmp_path: Path) -> dict[str, object]:
    doc = json.loads((tmp_path / "state" / "selection.json").read_text(encoding="utf-8"))
    state: dict[str, object] = doc["state"]
    return state


async def test_pivots_survive_a_brain_restart_and_a_new_process(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    write_plan(plan_path, plan_dict(DAY, vix_gate=...))            # max 2 pivots
    async with open_brain(tmp_path, et(DAY, 10, 0)) as brain:
        await set_vix(brain, 15.0)
        assert (brain.decision.strategy, brain.decision.pivots) == ("A", 0)
        await brain.clock.sleep_until(et(DAY, 10, 1))
        await set_vix(brain, 18.2)             # B (the plan's vix_ceiling is 18.5)
        assert (brain.decision.strategy, brain.decision.pivots) == ("B", 1)
        await brain.until(lambda: saved(tmp_path)["pivots"] == 1)   # the writer's thread
        await crash_the_indicators(brain)
        assert (brain.decision.strategy, brain.decision.pivots) == ("B", 1)   # restored
        await brain.clock.sleep_until(et(DAY, 10, 2))
        await set_vix(brain, 15.0)               # the second pivot: C locks for the day
        d = brain.decision
        assert (d.strategy, d.pivots, d.locked) == ("C", 2, True)
        assert "pivot cap" in d.reasons[0]
    assert saved(tmp_path)["locked_reason"] is not None
    # a new process the same day: still locked, whatever the VIX says
    async with open_brain(tmp_path, et(DAY, 11, 0)) as again:
        await set_vix(again, 15.0)
        d = again.decision
        assert (d.strategy, d.pivots, d.locked, d.rule) == ("C", 2, True, "locked")
    # and the next day starts fresh
    next_day = DAY + dt.timedelta(days=1)
    write_plan(plan_path, plan_dict(next_day, vix_gate=...))
    async with open_brain(tmp_path, et(next_day, 10, 0)) as tomorrow:
        await set_vix(tomorrow, 15.0)
        d = tomorrow.decision
        assert (d.strategy, d.pivots, d.locked) == ("A", 0, False)


async def test_a_failed_vix_gate_survives_a_brain_restart_and_a_new_process(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    write_plan(plan_path, plan_dict(DAY))                 # gate 09:45, threshold 18.5
    async with open_brain(tmp_path, et(DAY, 9, 30)) as brain:
        await set_vix(brain, 15.0)
        assert (brain.decision.rule, brain.decision.vix_gate) == ("vix_gate_pending", "pending")
        await brain.clock.sleep_until(et(DAY, 9, 45))
        await set_vix(brain, 19.0)
        d = brain.decision
        assert (d.strategy, d.locked, d.vix_gate) == ("C", True, "failed")
        await crash_the_indicators(brain)
        await set_vix(brain, 15.0)                        # the gate never re-opens
        assert (brain.decision.strategy, brain.decision.vix_gate) == ("C", "failed")
    assert saved(tmp_path)["gate_state"] == "failed"
    async with open_brain(tmp_path, et(DAY, 10, 30)) as again:
        await set_vix(again, 15.0)
        d = again.decision
        assert (d.strategy, d.locked, d.vix_gate) == ("C", True, "failed")
        assert "VIX gate failed" in d.reasons[0]


async def test_an_unreadable_state_file_locks_c_for_the_day_with_a_critical_alert(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    write_plan(plan_path, plan_dict(DAY, vix_gate=...))
    state = tmp_path / "state" / "selection.json"
    state.parent.mkdir(parents=True)
    state.write_text("{half a file", encoding="utf-8")
    async with open_brain(tmp_path, et(DAY, 10, 0)) as brain:
        await set_vix(brain, 15.0)
        d = brain.decision
        assert (d.strategy, d.locked) == ("C", True)
        assert "selection state unreadable" in d.reasons[0]
        [critical] = brain.alerts("critical")
        assert "unreadable" in critical["title"] and "selection.json" in critical["text"]
    assert (state.parent / "selection.json.unreadable").read_text(encoding="utf-8") == \
        "{half a file"                                   # kept for the operator
    assert "unreadable" in str(saved(tmp_path)["locked_reason"])
    async with open_brain(tmp_path, et(DAY, 11, 0)) as again:     # the lock is persisted
        await set_vix(again, 15.0)
        assert again.decision.locked and again.alerts("critical") == []


async def test_a_state_dir_that_cannot_be_written_locks_c(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    write_plan(plan_path, plan_dict(DAY, vix_gate=...))
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where STATE_DIR should be", encoding="utf-8")
    settings = brain_settings(tmp_path, STATE_DIR=str(blocker))
    async with open_brain(tmp_path, et(DAY, 10, 0), settings=settings) as brain:
        await set_vix(brain, 15.0)
        assert (brain.decision.strategy, brain.decision.locked) == ("C", True)
        titles = [a["title"] for a in brain.alerts("critical")]
        assert any("cannot be saved" in t for t in titles)
        assert len(titles) == len(set(titles))             # each said once
