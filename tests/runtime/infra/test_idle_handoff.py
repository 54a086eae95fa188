"""Writer threads get the lines of a burst when the event loop goes idle (idle_handoff.py): never
in the middle of the burst, always once it is over, at once from other threads, and nothing is
lost when the logs close without the loop ever idling."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path

import trio
import trio.testing

from runtime.infra.idle_handoff import DeferredWake, open_idle_handoff
from runtime.infra.logs import Journal, JournalWriter, close_logging_now, open_logging
from tests.harness import read_jsonl

HOLD_LOOK_S = 0.005
"""How long a test keeps the loop busy (never sleeping) while it checks nothing was written:
well under the hold limit it sets, so the check cannot race the limit."""


def _logging(tmp_path: Path) -> AbstractContextManager[Journal]:
    return open_logging(log_file=tmp_path / "logs" / "bot.log", max_bytes=1 << 20,
                        backup_count=2, console=False)


async def _busy_for(seconds: float) -> int:
    """Keep the loop running without ever sleeping (checkpoints only); returns the batches."""
    end = time.monotonic() + seconds
    batches = 0
    while time.monotonic() < end:
        await trio.lowlevel.checkpoint()
        batches += 1
    return batches


async def test_lines_of_a_burst_reach_the_writer_only_once_the_loop_is_idle(
        tmp_path: Path) -> None:
    with _logging(tmp_path) as journal:
        writer = journal._writer
        assert writer is not None
        for i in range(3):
            journal.emit("bar", "root.test", n=i)
        batches = await _busy_for(HOLD_LOOK_S)
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
    with _logging(tmp_path) as journal:
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
    with _logging(tmp_path) as journal:
        journal.emit("bar", "root.test", n=7)
        logging.getLogger("crucible.test").warning("held until the close")
        # closed without the loop ever idling: the os._exit path (close_logging_now)
        close_logging_now()
    assert [e["n"] for e in read_jsonl(tmp_path / "logs" / "events.jsonl")] == [7]
    assert "held until the close" in (tmp_path / "logs" / "bot.log").read_text()


async def test_human_log_records_of_a_burst_wait_for_the_idle_loop_too(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "bot.log"
    with _logging(tmp_path):
        logging.getLogger("crucible.test").warning("first of the burst")
        await _busy_for(HOLD_LOOK_S)
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
    with _logging(tmp_path) as journal:
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


# -- the journal encodes what the loop held only when it hands it over ---------------------------


async def _written(journal: Journal, lines: int) -> None:
    """Let the loop idle until the journal's writer has written `lines` lines."""
    writer = journal._writer
    assert writer is not None
    deadline = time.monotonic() + 10
    while writer.stats.written < lines and time.monotonic() < deadline:
        await trio.sleep(0.001)
    assert writer.stats.written == lines


async def test_an_event_emitted_mid_burst_is_encoded_and_tapped_only_once_the_loop_idles(
        tmp_path: Path) -> None:
    """The encoding (orjson, the datetime hooks) and the taps are the costly part of a line:
    under the hand-off they run when the loop is about to sleep, not between a decision and
    the order it leads to."""
    seen: list[tuple[int, dict[str, object]]] = []
    with _logging(tmp_path) as journal:
        journal.add_tap(lambda event: seen.append((threading.get_ident(), event)))
        journal.emit("signal", "root.test", kind="entry", at=dt.datetime(2026, 12, 7, 15, 1,
                                                                          tzinfo=dt.UTC))
        await _busy_for(HOLD_LOOK_S)
        assert seen == [], "the event was encoded in the middle of the burst"
        await _written(journal, 1)
        assert [(ident, e["kind"], e["at"]) for ident, e in seen] == [
            (threading.get_ident(), "entry", "2026-12-07T15:01:00.000000Z")]
    line = read_jsonl(tmp_path / "logs" / "events.jsonl")[0]
    assert (line["event"], line["actor"], line["at"]) == ("signal", "root.test",
                                                          "2026-12-07T15:01:00.000000Z")


async def test_a_list_changed_after_emit_does_not_change_the_held_line(tmp_path: Path) -> None:
    reasons = ["ema cross"]
    counts = {"entries": 1}
    with _logging(tmp_path) as journal:
        journal.emit("signal", "root.test", reasons=reasons, counts=counts)
        reasons.append("added after the emit")
        counts["entries"] = 2
        await _written(journal, 1)
    line = read_jsonl(tmp_path / "logs" / "events.jsonl")[0]
    assert (line["reasons"], line["counts"]) == (["ema cross"], {"entries": 1})


async def test_a_line_from_another_thread_follows_the_lines_the_loop_held_before_it(
        tmp_path: Path) -> None:
    """In the file and for the taps, which run on the trio thread, in the order of the calls."""
    seen: list[tuple[int, object]] = []
    with _logging(tmp_path) as journal:
        journal.add_tap(lambda event: seen.append((threading.get_ident(), event["n"])))
        journal.emit("bar", "root.test", n=1)            # held: the loop has not idled
        thread = threading.Thread(target=journal.emit, args=("bar", "root.thread"),
                                  kwargs={"n": 2})
        thread.start()
        thread.join()
        journal.emit("bar", "root.test", n=3)
        await _written(journal, 3)
        assert seen == [(threading.get_ident(), n) for n in (1, 2, 3)]
    assert [e["n"] for e in read_jsonl(tmp_path / "logs" / "events.jsonl")] == [1, 2, 3]


async def test_the_taps_of_lines_a_hung_loop_held_run_on_the_trio_thread_once_it_runs_again(
        tmp_path: Path) -> None:
    """The safety net writes the lines of a hung loop from its own thread, but a tap (the
    console's wakes trio tasks) must only ever run on the trio thread."""
    seen: list[tuple[int, object]] = []
    with _logging(tmp_path) as journal:
        journal.add_tap(lambda event: seen.append((threading.get_ident(), event["n"])))
        writer = journal._writer
        assert writer is not None
        journal.emit("bar", "root.test", n=1)
        deadline = time.monotonic() + 10
        while writer.stats.written < 1 and time.monotonic() < deadline:
            time.sleep(0.05)   # noqa: ASYNC251 - blocking on purpose: the loop never turns
        assert writer.stats.written == 1, "the safety net did not write the held line"
        assert seen == []
        deadline = time.monotonic() + 10       # the loop runs again: nothing new is emitted,
        while not seen and time.monotonic() < deadline:   # its first idle taps the line
            await trio.sleep(0.001)
        assert seen == [(threading.get_ident(), 1)]
        journal.emit("bar", "root.test", n=2)
        await _written(journal, 2)
        assert seen == [(threading.get_ident(), 1), (threading.get_ident(), 2)]


async def test_a_tap_that_fails_loses_no_line_and_later_events_still_flow(
        tmp_path: Path) -> None:
    def broken(event: dict[str, object]) -> None:
        raise RuntimeError("the console tap broke")

    seen: list[object] = []
    with _logging(tmp_path) as journal:
        journal.add_tap(broken)
        journal.add_tap(lambda event: seen.append(event["n"]))
        journal.emit("bar", "root.test", n=1)
        await _written(journal, 1)
        journal.emit("bar", "root.test", n=2)
        await _written(journal, 2)
        assert seen == [1, 2]
    assert [e["n"] for e in read_jsonl(tmp_path / "logs" / "events.jsonl")] == [1, 2]
    log = (tmp_path / "logs" / "bot.log").read_text()
    assert "journal tap" in log and "RuntimeError: the console tap broke" in log


async def test_events_held_past_the_queue_s_room_are_dropped_and_counted(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path / "events.jsonl", max_bytes=1 << 20, backups=2, capacity=3)
    journal = Journal(writer=writer)
    with open_idle_handoff([journal.doorbell], safety_net_s=60.0) as holding:
        assert holding
        for i in range(5):
            journal.emit("bar", "root.test", n=i)
        assert writer.stats.dropped_queue_full == 2
        await trio.sleep(0.001)                         # idle: the three that fit are queued
    writer.start()
    writer.close()
    lines = read_jsonl(tmp_path / "events.jsonl")
    assert [e["n"] for e in lines[:3]] == [0, 1, 2]
    assert (lines[3]["event"], lines[3]["lines"]) == ("journal_dropped", 2)
