"""The human log and the event journal: rotating files written off the event loop.

Records are stamped with the runtime's clock on the calling thread (so simulated runs log
simulated time), formatted there, and handed to a `QueueListener` thread that does the disk
I/O: a slow or full disk delays the log, never a bar or an order.

Formats (docs/LOGGING.md has the full contract):
  human   `2026-11-20T09:30:00.123-05:00 INFO     [root.brain.indicators] message`
          continuation lines of a multi-line message are indented by two spaces;
  journal one JSON object per line: `ts` (UTC, ISO 8601), `event`, `actor`, then fields.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import logging.handlers
import math
import queue
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from config.market_calendar import ET
from runtime.infra.clock import Clock

UTC = dt.UTC
HUMAN_LOGGER = "crucible"
JOURNAL_LOGGER = "crucible.journal"

_clock_lock = threading.Lock()
_clock: Clock | None = None
_secrets: list[str] = []


def set_log_clock(clock: Clock | None) -> None:
    """Make log timestamps follow `clock` (simulated or real)."""
    global _clock
    with _clock_lock:
        _clock = clock


def register_secret(value: str | None) -> None:
    """Never let `value` reach a log line: it is replaced by `***` wherever it appears."""
    if value and len(value) >= 6 and value not in _secrets:
        _secrets.append(value)


def scrub(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def now_utc() -> dt.datetime:
    """The log clock's time on any thread (falls back to the wall clock outside trio)."""
    clock = _clock
    if clock is not None:
        return clock.now_utc_any_thread()
    return dt.datetime.now(UTC)


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


class _PreformattedQueueHandler(logging.handlers.QueueHandler):
    """Formats on the caller's thread (cheap), ships only the finished line to the writer."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        line = self.format(record)
        out = logging.makeLogRecord({"msg": line, "levelno": record.levelno,
                                     "levelname": record.levelname, "name": record.name})
        return out


class _RawFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _iso_utc(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return str(value)


def _iso_utc(value: dt.datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null rather than produce an unreadable line."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class Journal:
    """The event journal (`events.jsonl`). `emit` never blocks and never raises."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger(JOURNAL_LOGGER)
        self._taps: list[Any] = []

    def emit(self, event: str, actor: str, /, **fields: Any) -> dict[str, Any]:
        record: dict[str, Any] = {"ts": _iso_utc(now_utc()), "event": event, "actor": actor}
        record.update(fields)
        try:
            line = scrub(json.dumps(_clean(record), default=_json_default, separators=(",", ":"),
                                    allow_nan=False))
        except (TypeError, ValueError) as exc:   # a bad field must not lose the event
            line = json.dumps({"ts": record["ts"], "event": event, "actor": actor,
                               "journal_error": str(exc)})
        self._logger.info(line)
        if self._taps:
            as_written = json.loads(line)        # taps see exactly what the file says
            for tap in list(self._taps):
                tap(as_written)
        return record

    def add_tap(self, tap: Any) -> None:
        """Observe every emitted event in-process, as JSON-decoded from the written line."""
        self._taps.append(tap)

    def remove_tap(self, tap: Any) -> None:
        with contextlib.suppress(ValueError):
            self._taps.remove(tap)


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
    journal_q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()

    human_file = _rotating(log_file, max_bytes, backup_count)
    human_file.setFormatter(_RawFormatter())
    sinks: list[logging.Handler] = [human_file]
    if console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(_RawFormatter())
        sinks.append(stream)
    journal_file = _rotating(events_file, max_bytes, backup_count)
    journal_file.setFormatter(_RawFormatter())

    human_listener = logging.handlers.QueueListener(human_q, *sinks)
    journal_listener = logging.handlers.QueueListener(journal_q, journal_file)

    root = logging.getLogger()
    saved_level, saved_handlers = root.level, root.handlers[:]
    human_handler = _PreformattedQueueHandler(human_q)
    human_handler.setFormatter(HumanFormatter())
    human_handler.addFilter(_StampFilter())
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

    jlog = logging.getLogger(JOURNAL_LOGGER)
    jlog.propagate = False
    jlog.setLevel(logging.INFO)
    journal_handler = _PreformattedQueueHandler(journal_q)
    journal_handler.setFormatter(_RawFormatter())
    jlog.handlers = [journal_handler]

    human_listener.start()
    journal_listener.start()
    try:
        yield Journal(jlog)
    finally:
        human_listener.stop()       # drains the queue before returning
        journal_listener.stop()
        for h in (*sinks, journal_file):
            h.close()
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        jlog.handlers = []


def log_block(logger: logging.Logger, head: str, lines: list[str],
              level: int = logging.INFO) -> None:
    """One record whose continuation lines are indented (the tree dump, a summary)."""
    logger.log(level, "%s\n%s", head, "\n".join(lines))

