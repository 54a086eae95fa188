"""The event journal (`events.jsonl`): one JSON object per line, written off the hot path.

`Journal.emit` is called on actors' own tasks (every bar, signal, order status), so it does the
least it can there: stamp the clock, encode with orjson, put the finished line into a bounded
queue. `JournalWriter`'s thread does the disk I/O, rotation included; what happens when the
queue is full, the disk is full or the process is killed is in its docstring and pinned by
tests/runtime/infra/test_journal_writer.py. Measured by `python -m tools.bench_journal`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from runtime.infra.idle_handoff import DeferredWake
from runtime.infra.log_context import UTC, now_utc, secret_bytes

JOURNAL_LOGGER = "crucible.journal"
_log = logging.getLogger("runtime.journal")


def _json_default(value: Any) -> Any:
    """What JSON has no type for, as the journal has always written it."""
    if isinstance(value, dt.datetime):
        return _iso_utc(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float):              # a float subclass (numpy.float64): NaN/inf → null
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return str(value)


def _iso_utc(value: dt.datetime) -> str:
    """`2026-11-20T14:30:00.000000Z`: always microseconds, always Z (on every line: kept cheap,
    no conversion for a value already in UTC)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")[:-6] + "Z"


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null rather than produce an unreadable line."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


# orjson writes datetimes and dataclasses itself, differently from the journal's format: hand
# them to `_json_default`. It writes NaN/inf as null, as `_clean` does for the fallback.
_ORJSON_OPTIONS = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
                   | orjson.OPT_NON_STR_KEYS)


def encode_line(record: Mapping[str, Any]) -> bytes:
    """One journal line (no newline), secrets scrubbed. Never raises: a bad field must not lose
    the event, so what cannot be encoded at all becomes a `journal_error` field."""
    try:
        line = orjson.dumps(record, default=_json_default, option=_ORJSON_OPTIONS)
    except (TypeError, ValueError):    # orjson.JSONEncodeError is a TypeError (ints > 64 bits...)
        try:
            line = json.dumps(_clean(dict(record)), default=_json_default,
                              separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            line = json.dumps({"ts": record.get("ts"), "event": record.get("event"),
                               "actor": record.get("actor"),
                               "journal_error": str(exc)}).encode()
    if secret_bytes:
        for secret in secret_bytes:
            if secret in line:
                line = line.replace(secret, b"***")
    return line


WRITER_PAUSE_S = 0.002
"""After each batch the writer rests this long, so a burst becomes one write of many lines rather
than a thread wake-up (and a GIL hand-over on the actor's thread) per line. Not while the event
loop holds its lines until it is idle (idle_handoff.py): they come a burst at a time then, and a
writer waking from its rest mid-burst would ask for the GIL at the worst moment."""

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

    The caller's cost is one `put_nowait` of a finished line: the disk, a rotation, a full disk
    never block an actor. The thread is woken through `doorbell`: at once, or, for lines put on
    the trio thread under `open_idle_handoff` (open_logging sets it up), when the event loop goes
    idle. Policies (tests/runtime/infra/test_journal_writer.py pins each):

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
        # a deque (appends and pops are atomic) and a bell: the writer sleeps on `_work`, which
        # `doorbell` sets at once or, under open_idle_handoff, when the event loop goes idle
        self._lines: deque[bytes | None] = deque()
        self._work = threading.Event()
        self.doorbell = DeferredWake(self._work.set)
        self._file: io.FileIO | None = None
        self._size = path.stat().st_size if path.exists() else 0   # a restart appends
        self._drop_lock = threading.Lock()
        self._reported_drops = 0       # writer thread only
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put_nowait(self, line: bytes) -> None:
        """Queue one line (no newline). Never blocks; a full queue drops the line, counted."""
        if len(self._lines) < self.capacity:
            self._lines.append(line)
            self.doorbell.ring()
        else:
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
            if not self.doorbell.holding:   # held lines arrive a burst at a time already
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


Tap = Callable[[dict[str, Any]], object]


class Journal:
    """The event journal (`events.jsonl`). `emit` never blocks and never raises.

    Lines go to a `JournalWriter` (the file, from a thread) or, for tests that want no file, to
    a logger. `emit` costs the caller building the dict, one orjson call and a queue put.
    """

    def __init__(self, logger: logging.Logger | None = None, *,
                 writer: JournalWriter | None = None) -> None:
        self._logger = logger or logging.getLogger(JOURNAL_LOGGER)
        self._writer = writer
        self._taps: list[Tap] = []

    @property
    def stats(self) -> JournalStats:
        """The writer's counters (all zero for a journal written to a logger)."""
        return self._writer.stats if self._writer is not None else JournalStats()

    def emit(self, event: str, actor: str, /, **fields: Any) -> dict[str, Any]:
        record: dict[str, Any] = {"ts": _iso_utc(now_utc()), "event": event, "actor": actor}
        record.update(fields)
        line = encode_line(record)
        if self._writer is not None:
            self._writer.put_nowait(line)
        else:
            self._logger.info(line.decode())
        if self._taps:
            as_written = orjson.loads(line)        # taps see exactly what the file says
            for tap in list(self._taps):
                tap(as_written)
        return record

    def add_tap(self, tap: Tap) -> None:
        """Observe every emitted event in-process, as JSON-decoded from the written line."""
        self._taps.append(tap)

    def remove_tap(self, tap: Tap) -> None:
        with contextlib.suppress(ValueError):
            self._taps.remove(tap)
