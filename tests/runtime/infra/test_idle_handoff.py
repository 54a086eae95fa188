"""Writer threads get the lines of a burst when the event loop goes idle (idle_handoff.py): never
in the middle of the burst, always once it is over, at once from other threads, and nothing is
lost when the logs close without the loop ever idling."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import trio
import trio.testing

from runtime.infra.idle_handoff import DeferredWake, open_idle_handoff
from runtime.infra.logs import close_logging_now, handoff_pending
from tests.harness import busy_for, open_tmp_logging, read_jsonl


async def test_lines_of_a_burst_reach_the_writer_only_once_the_loop_is_idle(
        tmp_path: Path) -> None:
    with open_tmp_logging(tmp_path) as journal:
        writer = journal._writer
        assert writer is not None
        for i in range(3):
            journal.emit("bar", "root.test", n=i)
        batches = await busy_for()
        assert batches > 10                      # the loop really ran meanwhile
        assert writer.stats.written == 0, "the writer was woken in the middle of the burst"
        await trio.sleep(0.001)                  # idle: the instrument rings the bell
        deadline = time.monotonic() + 10
        while writer.stats.written < 3 and time.monotonic() < deadline:
            await trio.sleep(0.001)
        assert writer.stats.written == 3
    assert [e["n"] for e in read_jsonl(tmp_path / "logs" / "events.jsonl")] == [0, 1, 2]


async def test_a_loop_that_never_sleeps_still_hands_its_lines_over_after_the_hold_limit(
        tmp_path: Path) -> None:
    writer_bell = DeferredWake(lambda: rung.append(time.monotonic()))
    rung: list[float] = []
    with open_idle_handoff([writer_bell], max_hold_s=0.01) as holding:
        assert holding
        start = time.monotonic()
        writer_bell.ring()
        while not rung and time.monotonic() - start < 10:
            await trio.lowlevel.checkpoint()     # busy: never idle
        assert rung, "a held ring was never released"
        assert rung[0] - start >= 0.01


async def test_a_line_from_another_thread_wakes_the_writer_at_once(tmp_path: Path) -> None:
    with open_tmp_logging(tmp_path) as journal:
        writer = journal._writer
        assert writer is not None
        thread = threading.Thread(target=journal.emit, args=("bar", "root.thread"), kwargs={"n": 1})
        thread.start()
        thread.join()
        deadline = time.monotonic() + 10
        while writer.stats.written < 1 and time.monotonic() < deadline:
            await trio.lowlevel.checkpoint()     # the trio thread never idles meanwhile
        assert writer.stats.written == 1


async def test_held_lines_and_log_records_are_written_when_the_logs_close_mid_burst(
        tmp_path: Path) -> None:
    with open_tmp_logging(tmp_path) as journal:
        journal.emit("bar", "root.test", n=7)
        logging.getLogger("crucible.test").warning("held until the close")
        # closed without the loop ever idling: the os._exit path (close_logging_now)
        close_logging_now()
    assert [e["n"] for e in read_jsonl(tmp_path / "logs" / "events.jsonl")] == [7]
    assert "held until the close" in (tmp_path / "logs" / "bot.log").read_text()


async def test_human_log_records_of_a_burst_wait_for_the_idle_loop_too(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "bot.log"
    with open_tmp_logging(tmp_path):
        logging.getLogger("crucible.test").warning("first of the burst")
        await busy_for()
        assert not log_file.exists() or "first of the burst" not in log_file.read_text()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
                not log_file.exists() or "first of the burst" not in log_file.read_text()):
            await trio.sleep(0.005)
        assert "first of the burst" in log_file.read_text()


def test_on_a_virtual_clock_nothing_is_held(tmp_path: Path) -> None:
    async def main() -> bool:
        with open_idle_handoff([DeferredWake(lambda: None)]) as holding:
            return holding

    assert trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)) is False
    assert trio.run(main) is True


def test_outside_a_trio_run_a_ring_wakes_at_once() -> None:
    rung: list[int] = []
    bell = DeferredWake(lambda: rung.append(1))
    with open_idle_handoff([bell]) as holding:
        bell.ring()
    assert (holding, rung) == (False, [1])


async def test_lines_held_by_a_loop_that_hangs_still_reach_the_disk(tmp_path: Path) -> None:
    """The trio thread stuck in synchronous code never idles (no instrument call ever rings):
    the safety net hands the held lines over, so the lines that led up to a hang are on disk."""
    with open_tmp_logging(tmp_path) as journal:
        writer = journal._writer
        assert writer is not None
        journal.emit("order_submitted", "root.test", n=1)
        logging.getLogger("crucible.test").warning("the last words before the hang")
        deadline = time.monotonic() + 10
        while writer.stats.written < 1 and time.monotonic() < deadline:
            time.sleep(0.05)   # noqa: ASYNC251 - blocking on purpose: the loop never turns
        assert writer.stats.written == 1
        log_file = tmp_path / "logs" / "bot.log"
        while time.monotonic() < deadline and (
                not log_file.exists() or "the last words" not in log_file.read_text()):
            time.sleep(0.05)   # noqa: ASYNC251 - the hang goes on
        assert "the last words before the hang" in log_file.read_text()


async def test_handoff_pending_says_whether_a_line_waits_for_the_idle_loop(
        tmp_path: Path) -> None:
    """What a benchmark feeding bars back to back asks before the next bar: a journal line or a
    log record held on the trio thread is pending until the loop idles, and only until then."""
    assert not handoff_pending()
    with open_tmp_logging(tmp_path) as journal:
        assert not handoff_pending()
        journal.emit("bar", "root.test", n=1)
        assert handoff_pending()
        await trio.sleep(0.001)                  # idle: the instrument rings the bell
        assert not handoff_pending()
        logging.getLogger("crucible.test").warning("a record of the next burst")
        assert handoff_pending()
        await trio.sleep(0.001)
        assert not handoff_pending()
        journal.emit("bar", "root.test", n=2)
    assert not handoff_pending(), "closed logs still counted as holding lines"
    assert [e["n"] for e in read_jsonl(tmp_path / "logs" / "events.jsonl")] == [1, 2]
