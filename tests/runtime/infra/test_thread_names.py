"""The bot's threads carry their names to the OS (thread_names.py), so `top -H`, `ps -L` and
tools.bench_idle can say which one works."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import pytest
import trio

from runtime.infra.logs import open_logging
from runtime.infra.thread_names import name_os_thread

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="OS thread names are read from /proc (Linux)")


def _os_name(thread: threading.Thread) -> str:
    return Path(f"/proc/self/task/{thread.native_id}/comm").read_text().strip()


def test_a_thread_takes_its_python_name_cut_to_what_the_os_keeps() -> None:
    seen: list[str] = []

    def body() -> None:
        name_os_thread()
        seen.append(_os_name(threading.current_thread()))

    thread = threading.Thread(target=body, name="a-rather-long-thread-name")
    thread.start()
    thread.join()
    assert seen == ["a-rather-long-t"]


async def test_the_journal_writer_and_the_human_log_writer_are_named(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    with open_logging(log_file=tmp_path / "bot.log", max_bytes=1 << 20, backup_count=1,
                      console=False) as journal:
        journal.emit("bar", "root.test", n=1)
        logging.getLogger("crucible.test").warning("a line for the human log")
        journal.hand_over()
        started = [t for t in threading.enumerate() if t not in before]
        names: set[str] = set()
        for _ in range(200):                  # the writers name themselves as they start
            names = {_os_name(t) for t in started if t.is_alive()}
            if {"journal-writer", "human-log"} <= names:
                break
            await trio.sleep(0.01)            # idle: the held log lines go out
    assert {"journal-writer", "human-log", "idle-handoff-ne"} <= names
