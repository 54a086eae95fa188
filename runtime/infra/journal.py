"""The event journal (`events.jsonl`): one JSON object per line, written off the hot path.

`Journal.emit` is called on actors' own tasks (every bar, signal, order status), so it does the
least it can there: stamp the clock and keep the event. On the trio thread (under open_logging's
idle hand-off) the event waits as a dict until the event loop is about to sleep, and is encoded
then, with nothing else waiting: an entry signal's line used to cost its bar 30-50 µs of cold
code (orjson, the datetime hooks, the taps) between the decision and the order. Elsewhere (other
threads, no trio, a virtual clock) it is encoded at once. Either way `encode_line`
(journal_line.py) makes the line and `JournalWriter`'s thread (journal_writer.py) does the disk
I/O, rotation included; what happens when the queue is full, the disk is full or the process
is killed is in its docstring and pinned by tests/runtime/infra/test_journal_writer.py.
Measured by `python -m tools.bench_journal`.
"""


from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from runtime.infra.idle_handoff import DeferredWake
from runtime.infra.journal_line import encode_line
from runtime.infra.journal_writer import JournalStats, JournalWriter
from runtime.infra.log_context import now_utc

__all__ = ["JOURNAL_LOGGER", "Journal", "JournalStats", "JournalWriter", "Tap", "encode_line"]

JOURNAL_LOGGER = "crucible.journal"
_log = logging.getLogger("runtime.journal")


Tap = Callable[[dict[str, Any]], object]

_SNAPSHOT: dict[type, Callable[[Any], Any]] = {list: list, dict: dict, set: set}
"""A held event is encoded later: a container the caller changes after `emit` must not change
the line, so these are copied (top level only) when the event is held."""


class Journal:
    """The event journal (`events.jsonl`). `emit` never blocks and never raises.

    Lines go to a `JournalWriter` (the file, from a thread) or, for tests that want no file, to
    a logger. Taps (the console's event tail, tests) see each event as JSON-decoded from its
    line, on the thread that encodes it.

    `doorbell` is the journal's wake-up under open_logging's idle hand-off: while it holds on the
    trio thread, `emit` keeps the event (a dict, its containers copied) and the hand-over, when
    the loop is about to sleep, encodes the burst, gives it to the writer in one batch and calls
    the taps. The file keeps the order of `emit` calls: a line from another thread is written at
    once, after what the trio thread holds. Lines written off the trio thread while it holds
    (that one, or the safety net's for a hung loop) are tapped by the trio thread at its next
    idle, in order: a tap such as the console's wakes trio tasks, which only the trio thread
    may do.
    """

    def __init__(self, logger: logging.Logger | None = None, *,
                 writer: JournalWriter | None = None) -> None:
        self._logger = logger or logging.getLogger(JOURNAL_LOGGER)
        self._writer = writer
        self._taps: list[Tap] = []
        self._held: deque[dict[str, Any]] = deque()
        self._untapped: deque[dict[str, Any]] = deque()   # encoded off the trio thread
        self._handing = threading.RLock()   # one hand-over at a time (a tap may emit)
        self.doorbell = DeferredWake(self.hand_over)

    @property
    def stats(self) -> JournalStats:
        """The writer's counters (all zero for a journal written to a logger)."""
        return self._writer.stats if self._writer is not None else JournalStats()

    def emit(self, event: str, actor: str, /, **fields: Any) -> None:
        record: dict[str, Any] = {"ts": now_utc(), "event": event, "actor": actor}
        record.update(fields)
        bell = self.doorbell
        if bell.holds_here():
            writer = self._writer
            if writer is not None and not writer.has_room(len(self._held)):
                writer.drop_nowait()
                return
            for key, value in fields.items():
                copy = _SNAPSHOT.get(type(value))
                if copy is not None:
                    record[key] = copy(value)
            self._held.append(record)
            bell.ring()
            return
        if bell.holding or self._held or self._untapped:
            # another thread while the trio thread holds: written at once, after what the trio
            # thread holds (the file keeps the order of the calls), tapped by the trio thread
            self._held.append(record)
            self.hand_over()
            return
        self._write([record], tap=True, batch=False)

    def hand_over(self) -> None:
        """Encode, write and tap what the trio thread holds, now: the bell's wake-up when the
        loop goes idle, and for a reader on the trio thread that must see every event emitted
        so far (the tests' recorders; the console is content with the next idle)."""
        bell = self.doorbell
        tap = not bell.holding or bell.holds_here()
        held = self._held
        with self._handing:
            if tap:
                while self._untapped:
                    self._call_taps(self._untapped.popleft())
            records: list[dict[str, Any]] = []
            with contextlib.suppress(IndexError):
                while True:
                    records.append(held.popleft())
            if records:
                self._write(records, tap=tap, batch=True)
            if self._untapped and not tap:     # the trio thread taps them at its next idle
                bell.hold_again()

    def _write(self, records: list[dict[str, Any]], *, tap: bool, batch: bool) -> None:
        lines = [encode_line(record) for record in records]
        writer = self._writer
        if writer is None:
            for line in lines:
                self._logger.info(line.decode())
        elif batch:
            writer.put_batch(lines)
        else:
            writer.put_nowait(lines[0])
        if self._taps:
            for line in lines:
                as_written = orjson.loads(line)        # taps see exactly what the file says
                if tap:
                    self._call_taps(as_written)
                else:
                    self._untapped.append(as_written)

    def _call_taps(self, event: dict[str, Any]) -> None:
        for tap in list(self._taps):
            try:
                tap(event)
            except Exception:    # a tap is an observer: it must not lose the journal a line
                _log.exception("journal tap %r failed on a %s event", tap, event.get("event"))

    def add_tap(self, tap: Tap) -> None:
        """Observe every emitted event in-process, as JSON-decoded from the written line."""
        self._taps.append(tap)

    def remove_tap(self, tap: Tap) -> None:
        with contextlib.suppress(ValueError):
            self._taps.remove(tap)
