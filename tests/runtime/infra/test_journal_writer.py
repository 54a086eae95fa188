"""The journal's writer thread (journal_writer.py): what a stalled disk, a full disk and a kill -9
cost, and rotation that never splits a line. The line format is test_journal_line.py's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runtime.infra.journal import Journal, JournalWriter
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
