"""The journal file (`events.jsonl`), written by one thread from a bounded queue of lines.

What a full queue, a full disk, a kill -9 and a rotation do is in `JournalWriter`'s docstring
and pinned by tests/runtime/infra/test_journal_writer.py.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from runtime.infra.journal_line import _iso_utc, encode_line
from runtime.infra.log_context import now_utc
from runtime.infra.thread_names import name_os_thread

_log = logging.getLogger("runtime.journal")


WRITER_PAUSE_S = 0.002
"""After each batch the writer rests this long, so a burst becomes one write of many lines rather
than a thread wake-up (and a GIL hand-over on the actor's thread) per line. Not for lines the
event loop handed over when it went idle (`put_batch`): they come a burst at a time already, and
a writer waking from its rest mid-burst would ask for the GIL at the worst moment."""

JOURNAL_QUEUE_LINES = 10_000
"""Lines the journal holds for its writer thread. At the bot's rate (a few lines a second, a few
hundred in a burst) this is minutes of a stalled disk; past it lines are dropped and counted."""


@dataclass
class JournalStats:
    """What the writer did, for the operator (and the tests). Lines, not bytes."""

    written: int = 0
    dropped_queue_full: int = 0      # the writer fell behind by JOURNAL_QUEUE_LINES lines
    dropped_write_failed: int = 0    # the disk refused them (full, gone, read-only)
    last_error: str | None = None

    @property
    def dropped(self) -> int:
        return self.dropped_queue_full + self.dropped_write_failed


class JournalWriter:
    """The journal file, written by one thread from a bounded queue.

    The caller's cost is one `put_nowait` of a finished line (or one `put_batch` of the lines
    the event loop held until it was idle): the disk, a rotation, a full disk never block an
    actor. Policies (tests/runtime/infra/test_journal_writer.py pins each):

    * queue full (the disk stalls for minutes): the new line is dropped and counted; the human
      log says so once per episode, and the writer's next batch ends with a `journal_dropped`
      event (`lines` dropped since the last one, totals, last error), so the gap is on record in
      the journal itself;
    * write fails (disk full, file gone): the batch is dropped and counted the same way, the file
      is reopened for the next batch;
    * kill -9: every line the writer has handed to the OS survives (each batch is one `write`
      on an unbuffered file, no user-space buffer); lines still in the queue are lost (with the
      idle hand-off: the lines of the burst in progress, at most MAX_HOLD_S of them);
    * rotation as `RotatingFileHandler` did it: `events.jsonl`, `.1` … `.N`, no file over
      `max_bytes` (a single longer line gets a file of its own), never with `backups == 0`.
    """

    def __init__(self, path: Path, *, max_bytes: int, backups: int,
                 capacity: int = JOURNAL_QUEUE_LINES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.stats = JournalStats()
        self.capacity = capacity
        # a deque (appends and pops are atomic) and the event the writer sleeps on
        self._lines: deque[bytes | None] = deque()
        self._work = threading.Event()
        self._rest = True              # pause after a batch: lines came one at a time
        self._file: io.FileIO | None = None
        self._size = path.stat().st_size if path.exists() else 0   # a restart appends
        self._drop_lock = threading.Lock()
        self._reported_drops = 0       # writer thread only
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def has_room(self, waiting: int = 0) -> bool:
        """Whether one more line fits, with `waiting` more lines not yet put (held)."""
        return len(self._lines) + waiting < self.capacity

    def put_nowait(self, line: bytes) -> None:
        """Queue one line (no newline). Never blocks; a full queue drops the line, counted."""
        if self.has_room():
            self._lines.append(line)
            self._rest = True
            self._work.set()
        else:
            self.drop_nowait()

    def put_batch(self, lines: list[bytes]) -> None:
        """Queue the lines of a burst at once (the event loop's, when it went idle)."""
        room = max(0, self.capacity - len(self._lines))
        self._lines.extend(lines[:room])
        self._rest = False
        self._work.set()
        for _ in lines[room:]:
            self.drop_nowait()

    def drop_nowait(self) -> None:
        """Count a line that did not fit (the human log says so once per episode)."""
        with self._drop_lock:
            first = self.stats.dropped == self._reported_drops
            self.stats.dropped_queue_full += 1
        if first:
            _log.warning("journal: the writer is %d lines behind; dropping new lines until "
                         "it catches up (counted, and journaled as journal_dropped)",
                         self.capacity)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread (bounded: a hung disk cannot hang exit)."""
        if self._thread.is_alive():
            self._lines.append(None)
            self._work.set()
            self._thread.join(timeout)
        self._close_file()

    # -- the writer thread --------------------------------------------------------------------
    def _run(self) -> None:
        name_os_thread()
        lines = self._lines
        while True:
            self._work.wait()
            self._work.clear()         # before draining: a line put from now on sets it again
            while lines:
                batch: list[bytes | None] = []
                with contextlib.suppress(IndexError):
                    while len(batch) < 1000:
                        batch.append(lines.popleft())
                if self._write_batch(batch):
                    return
            if self._rest:             # a batch handed over arrives whole already
                time.sleep(WRITER_PAUSE_S)

    def _write_batch(self, batch: list[bytes | None]) -> bool:
        """Write one batch; True if it held the stop mark."""
        stop = None in batch
        ok = self._write([line for line in batch if line is not None])
        unreported = self.stats.dropped - self._reported_drops
        if ok and unreported and self._write([self._dropped_line(unreported)], count=False):
            self._reported_drops += unreported
        return stop

    def _dropped_line(self, lines: int) -> bytes:
        stats = self.stats
        return encode_line({"ts": _iso_utc(now_utc()), "event": "journal_dropped",
                            "actor": "runtime.journal", "lines": lines,
                            "queue_full_total": stats.dropped_queue_full,
                            "write_failed_total": stats.dropped_write_failed,
                            "last_error": stats.last_error})

    def _write(self, lines: list[bytes], *, count: bool = True) -> bool:
        """Write whole lines, rotating between them; False if the disk refused some.

        `count=False` for the journal's own `journal_dropped` line: it is retried, not counted.
        """
        chunk: list[bytes] = []
        size = 0
        ok = True
        for line in lines:
            data = line + b"\n"
            if self._needs_rollover(self._size + size + len(data)) and (chunk or self._size):
                ok = self._flush(chunk, count) and ok
                chunk, size = [], 0
                self._rollover()
            chunk.append(data)
            size += len(data)
        return self._flush(chunk, count) and ok

    def _needs_rollover(self, size_after: int) -> bool:
        return self.max_bytes > 0 and self.backups > 0 and size_after > self.max_bytes

    def _flush(self, chunk: list[bytes], count: bool) -> bool:
        if not chunk:
            return True
        data = b"".join(chunk)
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = io.FileIO(self.path, "a")
                self._size = os.fstat(self._file.fileno()).st_size
            view = memoryview(data)
            while view:
                n = self._file.write(view)
                if not n:
                    raise OSError("the journal file accepted no bytes")
                view = view[n:]
                self._size += n
            if count:
                self.stats.written += len(chunk)
            return True
        except OSError as exc:
            with self._drop_lock:
                first = self.stats.dropped == self._reported_drops
                if count:
                    self.stats.dropped_write_failed += len(chunk)
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
            if first:
                _log.error("journal: cannot write %s (%s); dropping lines (counted, journaled "
                           "as journal_dropped once it can write again)", self.path, exc)
            self._close_file()
            return False

    def _rollover(self) -> None:
        self._close_file()
        try:
            for i in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{i}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
            if self.path.exists():
                os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        except OSError as exc:
            _log.error("journal: cannot rotate %s: %s", self.path, exc)
        self._size = 0

    def _close_file(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
