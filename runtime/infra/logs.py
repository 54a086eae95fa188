"""The human log and the event journal: `open_logging` sets both up, rotating files written
off the event loop.

Records are stamped with the runtime's clock on the calling thread (so simulated runs log
simulated time; log_context.py), formatted there, and handed to a writer thread that does the
disk I/O: a slow or full disk delays the log, never a bar or an order. The human log goes through
logging's `QueueListener`; the journal (journal.py), written on every bar, skips logging
altogether: on the trio thread it keeps the event (~2 µs on the caller) and encodes it with
orjson when the loop goes idle; elsewhere it encodes at once (~5 µs; docs/BENCHMARKS.md).
Both writer threads are woken when the event loop goes idle rather than in the middle of the
burst that logged (idle_handoff.py).

Formats (docs/LOGGING.md has the full contract):
  human   `2026-11-20T09:30:00.123-05:00 INFO     [root.brain.indicators] message`
          continuation lines of a multi-line message are indented by two spaces;
  journal one JSON object per line: `ts` (UTC, ISO 8601), `event`, `actor`, then fields.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import logging.handlers
import queue
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from config.market_calendar import ET
from runtime.infra.idle_handoff import DeferredWake, open_idle_handoff
from runtime.infra.journal import (  # re-exported: the journal's public names live here too
    JOURNAL_LOGGER,
    Journal,
    JournalStats,
    JournalWriter,
    encode_line,
)
from runtime.infra.log_context import now_utc, register_secret, scrub, set_log_clock
from runtime.infra.thread_names import name_os_thread

__all__ = ["HUMAN_LOGGER", "JOURNAL_LOGGER", "HumanFormatter", "Journal", "JournalStats",
           "JournalWriter", "close_logging_now", "encode_line", "handoff_pending", "log_block",
           "now_utc", "open_logging", "register_secret", "scrub", "set_log_clock"]

HUMAN_LOGGER = "crucible"


@dataclass(frozen=True, eq=False)
class _OpenLogs:
    """An open_logging block still open: how to close it, and its writers' wake-ups."""

    close: Callable[[], None]
    bells: tuple[DeferredWake, ...]


_open: list[_OpenLogs] = []      # removed by identity


class _StampFilter(logging.Filter):
    """Stamps each record with the runtime clock on the thread that logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "clock_utc"):
            record.clock_utc = now_utc()
        return True


class HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp: dt.datetime = getattr(record, "clock_utc", None) or now_utc()
        ts = stamp.astimezone(ET).isoformat(timespec="milliseconds")
        text = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text = f"{text}\n{record.exc_text}"
        text = scrub(text).rstrip("\n").replace("\n", "\n  ")
        return f"{ts} {record.levelname:<8} [{record.name}] {text}"


HUMAN_QUEUE_LINES = 10_000
"""Human log lines waiting for the writer thread; past that (a disk stalled for minutes) new lines
are dropped and counted, and a WARNING line says how many once the writer catches up."""


class _PreformattedQueueHandler(logging.handlers.QueueHandler):
    """Fixes the message on the caller's thread, formats the line on the writer's.

    The caller pays only for what cannot wait: the clock stamp (the filter), `msg % args` (the
    arguments may change after the call) and a traceback's text. The time zone conversion, the
    secret scrub and the layout happen on the listener thread (`HumanFormatter` on each sink), so
    a log line costs an actor a few microseconds rather than ~30.

    Bounded like the journal: a stalled disk costs dropped lines (counted and reported in the
    log), never an actor blocked or the process's memory (logging.Handler.handle holds the
    handler's lock around `emit`, so the counter needs no other).
    """

    def __init__(self, q: queue.SimpleQueue[logging.LogRecord],
                 capacity: int = HUMAN_QUEUE_LINES) -> None:
        super().__init__(q)
        self._lines = q
        self.capacity = capacity
        self.dropped = 0
        # records wait here until `doorbell` hands them to the listener's queue: at once, or
        # when the event loop goes idle under open_idle_handoff (idle_handoff.py says why)
        self._held: deque[logging.LogRecord] = deque()
        self._handing = threading.Lock()   # one hand-over at a time: the order is kept
        self.doorbell = DeferredWake(self._hand_over)

    def enqueue(self, record: logging.LogRecord) -> None:
        self._held.append(record)
        self.doorbell.ring()

    def _hand_over(self) -> None:
        held, lines = self._held, self._lines
        with self._handing, contextlib.suppress(IndexError):
            while True:
                lines.put_nowait(held.popleft())

    def emit(self, record: logging.LogRecord) -> None:
        if self._lines.qsize() + len(self._held) >= self.capacity:
            self.dropped += 1
            return
        try:
            if self.dropped:
                note = logging.makeLogRecord({
                    "msg": "%d log lines were dropped: the log writer fell behind",
                    "args": (self.dropped,), "levelno": logging.WARNING,
                    "levelname": "WARNING", "name": "runtime.logs", "clock_utc": now_utc()})
                self.dropped = 0
                self.enqueue(self.prepare(note))
            self.enqueue(self.prepare(record))
        except Exception:
            self.handleError(record)

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """A copy whose message is final: other handlers keep the original untouched."""
        out = logging.LogRecord.__new__(logging.LogRecord)
        out.__dict__.update(record.__dict__)
        out.msg = record.getMessage()
        out.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        out.exc_text = record.exc_text
        out.exc_info = None
        return out


_TRACEBACKS = logging.Formatter()


class _HumanLogListener(logging.handlers.QueueListener):
    """logging's QueueListener, its OS thread named `human-log` at its first record (the
    listener starts its thread itself: thread_names.py says why names matter)."""

    _named = False

    def handle(self, record: logging.LogRecord) -> None:
        if not self._named:
            self._named = True
            name_os_thread("human-log")
        super().handle(record)


def _skip_unused_record_fields() -> None:
    """Stop `logging` collecting what no line of ours prints: the caller's file and line (a
    stack walk per record), the process and the multiprocessing names. The logging HOWTO's
    "Optimization" section names these switches; they halve a record's cost on the caller."""
    logging._srcfile = None         # documented in the logging HOWTO ("Optimization")
    logging.logProcesses = False
    logging.logMultiprocessing = False


def _rotating(path: Path, max_bytes: int, backups: int) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    return logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                                encoding="utf-8", delay=True)


@contextlib.contextmanager
def open_logging(*, log_file: Path, max_bytes: int, backup_count: int, level: str = "INFO",
                 console: bool = True, events_file: Path | None = None,
                 quiet_loggers: Mapping[str, int] | None = None) -> Iterator[Journal]:
    """Route every log record to the rotating human log (and the console), start the journal.

    Yields the Journal. On exit the writer threads drain their queues and close the files.
    """
    events_file = events_file or log_file.parent / "events.jsonl"
    human_q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()

    human_file = _rotating(log_file, max_bytes, backup_count)
    human_file.setFormatter(HumanFormatter())
    sinks: list[logging.Handler] = [human_file]
    if console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(HumanFormatter())
        sinks.append(stream)
    human_listener = _HumanLogListener(human_q, *sinks)
    writer = JournalWriter(events_file, max_bytes=max_bytes, backups=backup_count)

    _skip_unused_record_fields()
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, root.handlers[:]
    human_handler = _PreformattedQueueHandler(human_q)
    human_handler.addFilter(_StampFilter())
    journal = Journal(writer=writer)
    bells = [journal.doorbell, human_handler.doorbell]
    root.handlers = [human_handler]
    root.setLevel(getattr(logging, level.upper()))
    if quiet_loggers is None:
        # GatewayLink reports every link event itself, in the operator's terms; ib_async's own
        # records ("ERROR Peer closed connection." on each daily restart) would be noise that
        # looks like a fault. DEBUG shows them all.
        debug = level.upper() == "DEBUG"
        quiet_loggers = {"ib_async": logging.DEBUG if debug else logging.CRITICAL,
                         "httpx": logging.WARNING, "httpcore": logging.WARNING}
    for name, lvl in quiet_loggers.items():
        logging.getLogger(name).setLevel(lvl)

    closed = threading.Event()

    def close() -> None:
        if closed.is_set():
            return
        closed.set()
        for bell in bells:          # what the event loop held goes to the writers now
            bell.hold_on(None)
        writer.close()              # writes what is queued (bounded wait)
        human_listener.stop()       # drains the queue before returning
        for h in sinks:
            h.close()
        root.handlers = saved_handlers
        root.setLevel(saved_level)

    human_listener.start()
    writer.start()
    opened = _OpenLogs(close, tuple(bells))
    _open.append(opened)
    try:
        with open_idle_handoff(bells):
            yield journal
    finally:
        close()
        _open.remove(opened)


def handoff_pending() -> bool:
    """Whether lines made on the trio thread still wait for its next idle to reach their writer
    thread (the journal's or the human log's). Live, the loop idles after every burst; a
    benchmark that feeds bars back to back asks this to let it idle where live would
    (tests/system/brain/bench_actors.py), so the next bar does not share the GIL with a writer."""
    return any(bell.pending for logs in _open for bell in logs.bells)


def close_logging_now() -> None:
    """Write out and close every open log (before `os._exit`, which skips all cleanup)."""
    for logs in list(_open):
        logs.close()


def log_block(logger: logging.Logger, head: str, lines: list[str],
              level: int = logging.INFO) -> None:
    """One record whose continuation lines are indented (the tree dump, a summary)."""
    logger.log(level, "%s\n%s", head, "\n".join(lines))

