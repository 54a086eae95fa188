"""The human log and the event journal as open_logging sets them up: format, rotation,
secrets, clock time, the hard exit, a stalled human log."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import trio
import trio.testing

from config.market_calendar import ET
from runtime.infra.clock import Clock
from runtime.infra.logs import open_logging, register_secret, set_log_clock
from tests.harness import REPO, read_jsonl

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[-+]\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|"
                  r"CRITICAL) +\[[\w.]+\] ")


def _files(directory: Path, stem: str) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.startswith(stem))


def test_many_small_writes_roll_over_at_the_size_and_keep_at_most_backup_count(
        tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "bot.log"
    with open_logging(log_file=log_file, max_bytes=4096, backup_count=3, console=False) as journal:
        logger = logging.getLogger("root.test")
        for i in range(2000):
            logger.info("line %d %s", i, "x" * 40)
            journal.emit("bar", "root.test", symbol="SPY", n=i)
    human = _files(log_file.parent, "bot.log")
    events = _files(log_file.parent, "events.jsonl")
    assert [p.name for p in human] == ["bot.log", "bot.log.1", "bot.log.2", "bot.log.3"]
    assert [p.name for p in events] == ["events.jsonl", "events.jsonl.1", "events.jsonl.2",
                                        "events.jsonl.3"]
    for p in human + events:
        assert p.stat().st_size <= 4096
    # the newest lines survived, whole, in order
    last = log_file.read_text(encoding="utf-8").splitlines()
    assert last[-1].endswith("line 1999 " + "x" * 40)
    assert all(LINE.match(line) for line in last)
    newest = [json.loads(x) for x in (log_file.parent / "events.jsonl").read_text().splitlines()]
    assert newest[-1]["n"] == 1999


async def test_log_and_journal_times_follow_the_simulated_clock(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    start = dt.datetime(2024, 3, 8, 9, 30, tzinfo=ET)
    clock = Clock(start, speed=1000.0)
    set_log_clock(clock)
    try:
        log_file = tmp_path / "bot.log"
        with open_logging(log_file=log_file, max_bytes=1 << 20, backup_count=2,
                          console=False) as journal:
            await trio.sleep(0.06)            # one simulated minute
            logging.getLogger("runtime").info("hello")
            journal.emit("startup", "runtime", mode="DRY_RUN")
    finally:
        set_log_clock(None)
    line = log_file.read_text(encoding="utf-8").strip()
    assert line.startswith("2024-03-08T09:31:00.000-05:00 INFO")
    assert line.endswith("INFO     [runtime] hello")
    event = json.loads((tmp_path / "events.jsonl").read_text())
    assert event["ts"] == "2024-03-08T14:31:00.000000Z"
    assert (event["event"], event["actor"], event["mode"]) == ("startup", "runtime", "DRY_RUN")


def test_secrets_never_reach_either_file(tmp_path: Path) -> None:
    url = "https://discord.com/api/webhooks/42/super-secret-token-value"
    register_secret(url)
    log_file = tmp_path / "bot.log"
    with open_logging(log_file=log_file, max_bytes=1 << 20, backup_count=2,
                      console=False) as journal:
        logging.getLogger("root.notifier").warning("posting to %s failed", url)
        journal.emit("alert", "root.notifier", text=f"webhook {url} answered 404")
        try:
            raise RuntimeError(f"connect to {url} failed")
        except RuntimeError:
            logging.getLogger("root.notifier").exception("send failed")
    for p in tmp_path.iterdir():
        text = p.read_text(encoding="utf-8")
        assert "super-secret-token-value" not in text
        assert "***" in text


def test_multiline_messages_indent_continuations_and_journal_survives_bad_values(
        tmp_path: Path) -> None:
    log_file = tmp_path / "bot.log"
    with open_logging(log_file=log_file, max_bytes=1 << 20, backup_count=2,
                      console=False) as journal:
        logging.getLogger("runtime").info("Actor tree (start):\nroot [running]\n  a [running]")
        journal.emit("resource", "root.resource_probe", cpu_pct=float("nan"), rss_mb=12.5)
        journal.emit("weird", "runtime", value=object())
    lines = log_file.read_text(encoding="utf-8").splitlines()
    assert LINE.match(lines[0])
    assert lines[1:] == ["  root [running]", "    a [running]"]
    events = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert events[0]["cpu_pct"] is None and events[0]["rss_mb"] == 12.5
    assert events[1]["event"] == "weird" and "object" in events[1]["value"]


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
