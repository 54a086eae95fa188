"""Read a log directory: the human log and the event journal, rotated files included.

The formats are fixed in docs/LOGGING.md; only `events.jsonl*` is the journal (trades.jsonl
is another format). Python's RotatingFileHandler names the newest backup `.1` and the oldest
`.N`, so a file set is read `.N` first and the live file last.
Reading is forgiving on purpose: the live files may end in a half-written line (the process is
still running, or was killed mid-write), a journal may carry events this reader does not know,
and a crash can leave garbage. Such lines are counted and reported, never fatal.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from config.market_calendar import UTC
from tools.stability.events import KNOWN_EVENTS

EVENT_JOURNAL_NAME = r"events\.jsonl(\.\d+)?"
"""Only the event journal is read: trades.jsonl (and any other .jsonl beside it) has another
format (`kind`, not `event`) and is not evidence of stability."""

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MB = 1024 * 1024
"""Sizes are in MiB, the unit of LOG_MAX_BYTES (10485760 = 10 MiB)."""

_LOG_HEAD = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))"
    r" (?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) +\[(?P<source>[^\]]*)\] ?(?P<msg>.*)$"
)
_ROTATED = re.compile(r"^(?P<base>.+?)(?:\.(?P<n>\d+))?$")


@dataclass(slots=True)
class LogLine:
    """One human-log record: its head line and the continuation lines that follow it."""

    ts: dt.datetime
    level: str
    source: str
    message: str
    continuation: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Event:
    """One journal record. `fields` is the whole JSON object (ts/event/actor included)."""

    ts: dt.datetime
    name: str
    actor: str
    fields: Mapping[str, object]

    def get_str(self, key: str) -> str | None:
        value = self.fields.get(key)
        return value if isinstance(value, str) else None

    def get_float(self, key: str) -> float | None:
        value = self.fields.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)

    def get_bool(self, key: str) -> bool | None:
        value = self.fields.get(key)
        return value if isinstance(value, bool) else None


@dataclass(slots=True)
class LogSet:
    """Everything read from one log directory, in file order."""

    logdir: Path
    event_files: list[Path] = field(default_factory=list)
    log_files: list[Path] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    lines: list[LogLine] = field(default_factory=list)
    skipped_event_lines: int = 0
    skipped_log_lines: int = 0
    unknown_events: Counter[str] = field(default_factory=Counter)

    def span(self) -> tuple[dt.datetime, dt.datetime] | None:
        """(earliest, latest) record time over both files, or None when there is nothing."""
        stamps = [x.ts for x in self.events] + [x.ts for x in self.lines]
        return (min(stamps), max(stamps)) if stamps else None


def parse_ts(text: str) -> dt.datetime | None:
    """An ISO 8601 instant as an aware datetime (a naive one is taken as UTC), else None."""
    try:
        value = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def rotation_order(paths: list[Path]) -> list[Path]:
    """Group `x`, `x.1`, … `x.N` by base name; each group oldest (`.N`) first, live file last."""
    groups: dict[str, list[tuple[int, Path]]] = {}
    for path in paths:
        m = _ROTATED.match(path.name)
        assert m is not None  # the pattern matches any name
        n = int(m["n"]) if m["n"] is not None else 0
        groups.setdefault(m["base"], []).append((n, path))
    ordered: list[Path] = []
    for base in sorted(groups):
        ordered += [p for _, p in sorted(groups[base], key=lambda item: -item[0])]
    return ordered


def discover(logdir: Path) -> tuple[list[Path], list[Path]]:
    """(event journal files, human log files) of `logdir`, each in reading order."""
    event_files: list[Path] = []
    log_files: list[Path] = []
    for path in logdir.iterdir():
        if not path.is_file():
            continue
        name = path.name
        if re.fullmatch(EVENT_JOURNAL_NAME, name):
            event_files.append(path)
        elif re.fullmatch(r".+\.log(\.\d+)?", name):
            log_files.append(path)
    return rotation_order(event_files), rotation_order(log_files)


def _text_lines(path: Path) -> Iterator[str]:
    # errors="replace": a crash can leave a torn multi-byte character; the line is then
    # unparseable and counted, rather than aborting the whole report.
    with path.open("r", encoding="utf-8", errors="replace", newline=None) as fh:
        for raw in fh:
            yield raw.rstrip("\r\n")


def read_events(path: Path, into: LogSet) -> None:
    for line in _text_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            into.skipped_event_lines += 1
            continue
        if not isinstance(obj, dict):
            into.skipped_event_lines += 1
            continue
        name, ts_text = obj.get("event"), obj.get("ts")
        ts = parse_ts(ts_text) if isinstance(ts_text, str) else None
        if not isinstance(name, str) or ts is None:
            into.skipped_event_lines += 1
            continue
        actor = obj.get("actor")
        if name not in KNOWN_EVENTS:
            into.unknown_events[name] += 1
        into.events.append(Event(ts=ts, name=name,
                                 actor=actor if isinstance(actor, str) else "", fields=obj))


def read_human_log(path: Path, into: LogSet) -> None:
    current: LogLine | None = None
    for line in _text_lines(path):
        if not line:
            continue
        m = _LOG_HEAD.match(line)
        if m is not None:
            ts = parse_ts(m["ts"])
            if ts is not None:
                current = LogLine(ts=ts, level=m["level"], source=m["source"],
                                  message=m["msg"])
                into.lines.append(current)
                continue
        if line.startswith("  ") and current is not None:
            current.continuation.append(line[2:])
        else:
            into.skipped_log_lines += 1


def read_logdir(logdir: Path) -> LogSet:
    """Read every journal and human-log file of `logdir` (rotated ones included), in order."""
    if not logdir.is_dir():
        raise FileNotFoundError(f"log directory {logdir} does not exist or is not a directory")
    event_files, log_files = discover(logdir)
    logset = LogSet(logdir=logdir, event_files=event_files, log_files=log_files)
    for path in event_files:
        read_events(path, logset)
    for path in log_files:
        read_human_log(path, logset)
    return logset


def dir_size_mb(path: Path) -> float:
    """Total size of the files directly in `path`, in MB (what the log directory costs)."""
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file()) / MB
