"""The journal's writer thread: what a stalled disk, a full disk and a kill -9 cost, and that the
line format is the one the journal has always written."""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest

from runtime.infra.journal import Journal, JournalWriter, encode_line
from tests.harness import REPO, read_jsonl, wait_until_sync


def test_a_stalled_writer_drops_new_lines_counts_them_and_journals_the_gap(
        tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writer = JournalWriter(path, max_bytes=1 << 20, backups=2, capacity=5)
    journal = Journal(writer=writer)
    for i in range(8):                 # the thread is not running: a disk that stalls
        journal.emit("bar", "root.test", n=i)
    assert (writer.stats.dropped_queue_full, writer.stats.written) == (3, 0)
    writer.start()
    writer.close()
    lines = read_jsonl(path)
    assert [e["n"] for e in lines[:5]] == [0, 1, 2, 3, 4]
    assert lines[5]["event"] == "journal_dropped"
    assert (lines[5]["lines"], lines[5]["queue_full_total"]) == (3, 3)
    assert writer.stats.written == 5


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_drops_counted_lines_and_the_journal_says_so_when_it_writes_again(
        tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.symlink_to("/dev/full")       # every write: ENOSPC
    writer = JournalWriter(path, max_bytes=1 << 20, backups=2)
    journal = Journal(writer=writer)
    writer.start()
    try:
        for i in range(3):
            journal.emit("bar", "root.test", n=i)
        wait_until_sync(lambda: writer.stats.dropped_write_failed == 3)
        assert "No space" in (writer.stats.last_error or "")
        path.unlink()                  # space again: the writer reopens the file
        for i in range(3, 5):
            journal.emit("bar", "root.test", n=i)
    finally:
        writer.close()
    lines = read_jsonl(path)
    assert [e.get("n") for e in lines[:2]] == [3, 4]
    assert lines[2]["event"] == "journal_dropped" and lines[2]["write_failed_total"] == 3
    assert writer.stats.written == 2


def test_a_kill_9_keeps_every_line_the_writer_had_written(tmp_path: Path) -> None:
    """The bot killed hard (Task Scheduler's limit, a power cut) keeps what reached the OS."""
    script = textwrap.dedent("""
        import sys, time
        from pathlib import Path
        from runtime.infra.logs import open_logging
        log_file = Path(sys.argv[1]) / "bot.log"
        with open_logging(log_file=log_file, max_bytes=1 << 20, backup_count=2,
                          console=False) as journal:
            for i in range(500):
                journal.emit("bar", "root.test", n=i, pad="x" * 100)
            writer = journal._writer
            while writer.stats.written < 500:
                time.sleep(0.005)
            print("written", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "written"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = read_jsonl(tmp_path / "events.jsonl")
    assert [e["n"] for e in lines] == list(range(500))


def test_the_journal_rotates_like_the_human_log_and_never_splits_a_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writer = JournalWriter(path, max_bytes=2000, backups=2)
    journal = Journal(writer=writer)
    writer.start()
    for i in range(200):
        journal.emit("bar", "root.test", n=i, pad="y" * 50)
    writer.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 2000
        assert all(json.loads(line) for line in p.read_text().splitlines())
    assert read_jsonl(path)[-1]["n"] == 199


# -- the line format: what orjson writes is what json.dumps wrote ---------------------------------

def _old_default(value: Any) -> Any:
    """The journal's encoder before orjson (issue 17's baseline), as it was."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return str(value)


def _old_clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _old_clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_old_clean(v) for v in value]
    return value


def _old_line(record: dict[str, Any]) -> str:
    return json.dumps(_old_clean(record), default=_old_default, separators=(",", ":"),
                      allow_nan=False)


class _Side(enum.StrEnum):
    BUY = "BUY"


class _Model(pydantic.BaseModel):
    symbol: str
    at: dt.datetime


BAR = {"ts": "2026-11-20T14:30:00.000000Z", "event": "bar", "actor": "root.link.bar_feed",
       "symbol": "SPY", "bar_ts": dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.timezone(
           dt.timedelta(hours=-5))), "open": 601.25, "high": 601.5, "low": 600.75,
       "close": 601.0, "volume": 12345, "session_id": 3, "gap": None, "ok": True}


def test_a_typical_line_is_byte_for_byte_what_the_journal_wrote_before() -> None:
    assert encode_line(BAR).decode() == _old_line(BAR)
    tree = {"ts": BAR["ts"], "event": "tree", "actor": "runtime", "reason": "start",
            "tree": {"name": "root", "children": [{"name": "a", "channels": {"inbox": 0}}]}}
    assert encode_line(tree).decode() == _old_line(tree)


@pytest.mark.parametrize("value", [
    dt.date(2026, 11, 20), dt.time(9, 30), Path("/x/y"), {3}, (1, 2), frozenset({"a"}),
    float("nan"), float("inf"), np.float64(1.5), np.float64("nan"), np.int64(7), np.bool_(True),
    _Side.BUY, _Model(symbol="SPY", at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC)),
    {"nested": [float("nan"), (1.5, "x")]}, {1: "int key"}, "ünïcode", object(), 2 ** 80,
])
def test_every_kind_of_field_reads_back_as_it_did(value: Any) -> None:
    record = {"ts": BAR["ts"], "event": "x", "actor": "a", "v": value}
    new = json.loads(encode_line(record))
    old = json.loads(_old_line(record))
    if isinstance(value, object) and type(value) is object:
        assert new["v"].startswith("<object object at") and old["v"].startswith("<object")
    else:
        assert new == old


def test_close_logging_now_writes_out_both_logs_before_a_hard_process_exit(
        tmp_path: Path) -> None:
    """The hard stop ends the process with os._exit (no cleanup runs): the logs come first."""
    script = textwrap.dedent("""
        import logging, os, sys
        from pathlib import Path
        from runtime.infra.logs import close_logging_now, open_logging
        log_file = Path(sys.argv[1]) / "bot.log"
        with open_logging(log_file=log_file, max_bytes=1 << 20, backup_count=2,
                          console=False) as journal:
            for i in range(2000):
                journal.emit("bar", "root.test", n=i)
            logging.getLogger("runtime").critical("ending the process")
            close_logging_now()
            os._exit(1)
    """)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60, check=False)
    assert done.returncode == 1
    assert [e["n"] for e in read_jsonl(tmp_path / "events.jsonl")] == list(range(2000))
    assert "ending the process" in (tmp_path / "bot.log").read_text(encoding="utf-8")


def test_a_stalled_human_log_drops_new_lines_and_says_how_many_once_it_catches_up() -> None:
    import logging
    import queue as q

    from runtime.infra.logs import HumanFormatter, _PreformattedQueueHandler
    lines: q.SimpleQueue[logging.LogRecord] = q.SimpleQueue()
    handler = _PreformattedQueueHandler(lines, capacity=3)
    line_of = HumanFormatter().format          # what the writer thread's sinks do
    logger = logging.getLogger("tests.human.stalled")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for i in range(5):                  # nobody drains: a disk that stalls
            logger.warning("line %d", i)
        assert (lines.qsize(), handler.dropped) == (3, 2)
        kept = [line_of(lines.get_nowait()) for _ in range(3)]
        assert [k.endswith(f"line {i}") for i, k in enumerate(kept)] == [True] * 3
        logger.warning("line 5")           # the writer caught up
        after = [line_of(lines.get_nowait()) for _ in range(2)]
    finally:
        logger.removeHandler(handler)
    assert "[runtime.logs] 2 log lines were dropped" in after[0]
    assert after[1].endswith("line 5") and handler.dropped == 0
