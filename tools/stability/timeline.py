"""Process runs and Gateway outages, reconstructed from the event journal.

A *run* is one process: from its `startup` event to its `shutdown` event (or, when the process
died without one, to its last record). How a run started and how it ended is what criteria 1
and 2 are about, so the rules live here, in one place:

* A run *crashed* when it ended uncleanly: its `shutdown` says clean=false or a non-zero
  exit_code, or it has no `shutdown` at all and another `startup` follows. (The last run with
  no `shutdown` is "running at end of logs", not a crash.) An `actor_restart` is not a crash:
  the supervisor handled it; it is counted as a warning pattern instead.
* A start is *scheduled* when it is the first start of its ET day and the previous run ended
  cleanly; *after crash* when the previous run ended uncleanly (whoever restarted it, the
  crash is what counts); otherwise it is an *operator restart*: somebody stopped a healthy bot
  and started it again the same day, which is a manual intervention.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from config.market_calendar import ET
from tools.stability.logfiles import Event, LogLine, LogSet
from tools.stability.thresholds import BARS_RESUME_LOOKAHEAD_MIN, SHUTDOWN_LINK_DOWN_S

EXECUTION_TIME_LIMIT_HINT_H = 22.5
"""A run that vanished this long after its start was most likely stopped by Task Scheduler's
23 h ExecutionTimeLimit (a hard kill leaves no shutdown record); the report says so."""


class StartKind(StrEnum):
    IN_PROGRESS = "already running when the logs begin"
    SCHEDULED = "scheduled start"
    AFTER_CRASH = "restart after crash"
    OPERATOR_RESTART = "operator restart"


class EndKind(StrEnum):
    CLEAN = "clean stop"
    UNCLEAN = "unclean stop"
    VANISHED = "no shutdown record"
    RUNNING = "running at end of logs"


@dataclass(slots=True)
class Run:
    number: int
    start: dt.datetime
    startup: Event | None
    shutdown: Event | None = None
    last_seen: dt.datetime | None = None
    events: list[Event] = field(default_factory=list)
    start_kind: StartKind = StartKind.SCHEDULED
    end_kind: EndKind = EndKind.RUNNING
    config_line: LogLine | None = None
    mode_line: LogLine | None = None

    @property
    def end(self) -> dt.datetime:
        if self.shutdown is not None:
            return self.shutdown.ts
        return self.last_seen if self.last_seen is not None else self.start

    @property
    def mode(self) -> str | None:
        return self.startup.get_str("mode") if self.startup is not None else None

    @property
    def crashed(self) -> bool:
        return self.end_kind in (EndKind.UNCLEAN, EndKind.VANISHED)

    def end_text(self) -> str:
        """How the run ended, in words, with the evidence."""
        if self.end_kind is EndKind.CLEAN and self.shutdown is not None:
            return f"clean stop ({self.shutdown.get_str('reason') or 'no reason given'})"
        if self.end_kind is EndKind.UNCLEAN and self.shutdown is not None:
            code = self.shutdown.fields.get("exit_code")
            return (f"unclean stop ({self.shutdown.get_str('reason') or 'no reason given'}, "
                    f"clean={self.shutdown.fields.get('clean')}, exit_code={code})")
        if self.end_kind is EndKind.VANISHED:
            hours = (self.end - self.start).total_seconds() / 3600
            hint = ""
            if hours >= EXECUTION_TIME_LIMIT_HINT_H:
                hint = (f"; {hours:.1f} h after its start: probably Task Scheduler's 23 h "
                        "ExecutionTimeLimit, which kills without a shutdown")
            return f"no shutdown record: killed or crashed (last record {fmt_et(self.end)}{hint})"
        return "still running at the end of the logs"


@dataclass(slots=True)
class Outage:
    """A Gateway link outage: link_down … link_up within one run."""

    run: int
    start: dt.datetime
    down: Event | None
    up: Event | None = None
    end: dt.datetime | None = None
    restarts: list[Event] = field(default_factory=list)
    first_bar: Event | None = None
    """The first bar after reconnecting (within BARS_RESUME_LOOKAHEAD_MIN): data flows again."""

    @property
    def expected(self) -> bool:
        return bool(self.down is not None and self.down.get_bool("expected"))

    @property
    def duration_s(self) -> float | None:
        return None if self.end is None else (self.end - self.start).total_seconds()

    @property
    def reason(self) -> str:
        if self.down is None:
            return "link_down not journaled (duration from link_up.outage_s)"
        code = self.down.fields.get("code")
        text = self.down.get_str("reason") or "no reason given"
        return f"{text} (code {code})" if code is not None else text


def fmt_et(ts: dt.datetime, *, date: bool = True) -> str:
    et = ts.astimezone(ET)
    return et.strftime("%Y-%m-%d %H:%M:%S ET" if date else "%H:%M:%S")


def _is_clean(shutdown: Event) -> bool:
    code = shutdown.fields.get("exit_code")
    return shutdown.get_bool("clean") is True and code in (0, None)


def build_runs(logset: LogSet) -> list[Run]:
    """Split the journal into runs and classify how each started and ended (module doc)."""
    runs: list[Run] = []
    current: Run | None = None
    for event in logset.events:
        if event.name == "startup":
            current = Run(number=len(runs) + 1, start=event.ts, startup=event)
            runs.append(current)
        elif current is None:
            # The journal begins in the middle of a run (rotated away, or logs copied late).
            current = Run(number=1, start=event.ts, startup=None,
                          start_kind=StartKind.IN_PROGRESS)
            runs.append(current)
        current.events.append(event)
        current.last_seen = event.ts if current.last_seen is None else max(current.last_seen,
                                                                           event.ts)
        if event.name == "shutdown" and current.shutdown is None:
            current.shutdown = event
    _extend_with_human_log(runs, logset.lines)
    _classify(runs)
    return runs


STARTUP_LEAD_S = 5.0
"""A process writes its `Configuration loaded` and mode lines a few milliseconds before its
`startup` event: log lines this close before a startup belong to the new process."""


def _extend_with_human_log(runs: list[Run], lines: list[LogLine]) -> None:
    """A process killed mid-flight may have logged lines after its last journal event."""
    if not runs:
        return
    lead = dt.timedelta(seconds=STARTUP_LEAD_S)
    starts = [r.start - lead for r in runs]
    for line in lines:
        i = bisect.bisect_right(starts, line.ts) - 1
        if i < 0:
            continue
        run = runs[i]
        if run.shutdown is None and (run.last_seen is None or line.ts > run.last_seen):
            run.last_seen = line.ts


def _classify(runs: list[Run]) -> None:
    days_with_start: set[dt.date] = set()
    for i, run in enumerate(runs):
        last = i == len(runs) - 1
        if run.shutdown is not None:
            run.end_kind = EndKind.CLEAN if _is_clean(run.shutdown) else EndKind.UNCLEAN
        else:
            run.end_kind = EndKind.RUNNING if last else EndKind.VANISHED
        if run.startup is None:
            continue
        day = run.start.astimezone(ET).date()
        previous = runs[i - 1] if i > 0 else None
        if previous is not None and previous.crashed:
            run.start_kind = StartKind.AFTER_CRASH
        elif day in days_with_start:
            run.start_kind = StartKind.OPERATOR_RESTART
        else:
            run.start_kind = StartKind.SCHEDULED
        days_with_start.add(day)


def build_outages(runs: list[Run]) -> list[Outage]:
    """Pair link_down with the next link_up of the same run; collect what happened between."""
    lookahead = dt.timedelta(minutes=BARS_RESUME_LOOKAHEAD_MIN)
    outages: list[Outage] = []
    for run in runs:
        open_outage: Outage | None = None
        awaiting_bar: Outage | None = None
        for event in run.events:
            name = event.name
            if name == "bar":
                if awaiting_bar is not None and awaiting_bar.end is not None:
                    if event.ts - awaiting_bar.end <= lookahead:
                        awaiting_bar.first_bar = event
                    awaiting_bar = None
            elif name == "link_down":
                awaiting_bar = None
                if open_outage is None:
                    open_outage = Outage(run=run.number, start=event.ts, down=event)
                    outages.append(open_outage)
            elif name == "actor_restart" and open_outage is not None:
                open_outage.restarts.append(event)
            elif name == "link_up":
                if open_outage is not None:
                    open_outage.up, open_outage.end = event, event.ts
                    awaiting_bar, open_outage = open_outage, None
                else:
                    outage_s = event.get_float("outage_s")
                    if outage_s is not None and outage_s > 0:
                        start = event.ts - dt.timedelta(seconds=outage_s)
                        awaiting_bar = Outage(run=run.number, start=start, down=None,
                                              up=event, end=event.ts)
                        outages.append(awaiting_bar)
        if open_outage is not None and _closed_by_the_stop(run, open_outage):
            outages.remove(open_outage)
    return outages


def _closed_by_the_stop(run: Run, outage: Outage) -> bool:
    """A clean stop closes the Gateway session last: that link_down is not an outage."""
    if run.end_kind is not EndKind.CLEAN or run.shutdown is None:
        return False
    reason = outage.down.get_str("reason") if outage.down is not None else None
    before = (run.shutdown.ts - outage.start).total_seconds()
    return reason == "shutdown" or 0 <= before <= SHUTDOWN_LINK_DOWN_S
