"""The journal under open_logging's idle hand-off (journal.py): an event emitted on the trio
thread is kept and encoded, written and tapped only when the loop goes idle; what the caller
changes later does not change it; the file and the taps keep the order of the calls; the taps
run on the trio thread, even for the lines of a hung loop; a failing tap loses nothing; held
events count against the writer's bound."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import trio

from runtime.infra.idle_handoff import open_idle_handoff
from runtime.infra.logs import Journal, JournalWriter
from tests.harness import busy_for, open_tmp_logging, read_jsonl


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
    with open_tmp_logging(tmp_path) as journal:
        journal.add_tap(lambda event: seen.append((threading.get_ident(), event)))
        journal.emit("signal", "root.test", kind="entry", at=dt.datetime(2026, 12, 7, 15, 1,
                                                                          tzinfo=dt.UTC))
        await busy_for()
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
    with open_tmp_logging(tmp_path) as journal:
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
    with open_tmp_logging(tmp_path) as journal:
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
    with open_tmp_logging(tmp_path) as journal:
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
    with open_tmp_logging(tmp_path) as journal:
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
