"""open_file_watch: a write to the watched file wakes the task; nothing else does, and a quiet
file costs no wake-up at all (issue 17: no polling loop where an event would do).

Real files in a temporary directory, real inotify on Linux; trio's MockClock with a poll
interval of days proves a wake-up came from the kernel, not from a timer.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import trio
import trio.testing

from runtime.infra.file_watch import FileWatch, open_file_watch

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="inotify is Linux's")
NEVER = 10 * 86_400.0           # a poll this slow never fires within a test


def replace_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


async def woken_within(watch: FileWatch, seconds: float) -> bool:
    with trio.move_on_after(seconds):
        await watch.wait_changed()
        return True
    return False


@linux_only
async def test_a_replaced_or_rewritten_file_wakes_the_watch_at_once(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    plan = tmp_path / "daily_gameplan.json"
    async with open_file_watch(plan, poll_s=NEVER) as watch:
        assert watch.mode == "inotify"
        replace_atomically(plan, "{}")                     # how tools.gameplan writes it
        began = trio.current_time()
        assert await woken_within(watch, 1.0)
        assert trio.current_time() - began < 1.0           # the kernel, not a timer
        plan.write_text('{"edited": true}', encoding="utf-8")   # an editor saving in place
        assert await woken_within(watch, 1.0)
        plan.unlink()                                      # withdrawn
        assert await woken_within(watch, 1.0)


@linux_only
async def test_other_files_and_a_quiet_day_wake_nothing(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    plan = tmp_path / "daily_gameplan.json"
    replace_atomically(plan, "{}")
    async with open_file_watch(plan, poll_s=NEVER) as watch:
        replace_atomically(tmp_path / "yesterday.json", "{}")
        (tmp_path / "notes.txt").write_text("not the plan", encoding="utf-8")
        assert not await woken_within(watch, 86_400.0)      # a whole virtual day
        assert watch.wakeups == 0
        replace_atomically(plan, '{"new": 1}')
        assert await woken_within(watch, 1.0)
        assert watch.wakeups == 1


@linux_only
async def test_a_folder_that_appears_later_is_looked_for_then_watched(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    plan = tmp_path / "plans" / "daily_gameplan.json"
    async with open_file_watch(plan, poll_s=5.0) as watch:
        began = trio.current_time()
        assert await woken_within(watch, 6.0)               # no folder: looked for every 5 s
        assert trio.current_time() - began == pytest.approx(5.0)
        plan.parent.mkdir()
        replace_atomically(plan, "{}")                      # before the watch found it
        began = trio.current_time()
        assert await woken_within(watch, 6.0)               # found: look once, then watch
        assert trio.current_time() - began < 1.0
        replace_atomically(plan, '{"new": 1}')
        began = trio.current_time()
        assert await woken_within(watch, 1.0)
        assert trio.current_time() - began < 1.0


async def test_without_inotify_the_watch_polls(
        tmp_path: Path, autojump_clock: trio.testing.MockClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")           # what Windows gets
    async with open_file_watch(tmp_path / "daily_gameplan.json", poll_s=5.0) as watch:
        assert watch.mode == "poll"
        began = trio.current_time()
        assert await woken_within(watch, 6.0)
        assert trio.current_time() - began == pytest.approx(5.0)
