"""From a read log directory to per-day facts, issues, the six criteria and the verdict.

Days are US/Eastern calendar dates (the trading day), never UTC dates. Everything the report
says is computed here; the Markdown and the chart only present it.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from config.market_calendar import ET, UTC, Session
from tools.stability import thresholds as th
from tools.stability.logfiles import Event, LogLine, LogSet, parse_ts, read_logdir
from tools.stability.patterns import message_pattern
from tools.stability.resources import Sample, Slope, mean, rss_slope
from tools.stability.thresholds import Thresholds
from tools.stability.timeline import (
    EndKind,
    Outage,
    Run,
    StartKind,
    build_outages,
    build_runs,
    fmt_et,
)

_CONFIG_LINE = re.compile(r"Configuration loaded: DRY_RUN=(\w+), PAPER_TRADING=(\w+)")
MODE_LINES = {
    "DRY-RUN mode active": "DRY_RUN",
    "Paper trading mode ACTIVE": "PAPER",
    "LIVE trading mode ACTIVE": "LIVE",
}
"""The startup lines that name the mode in words (CONTRACT.md, LOG_FORMATS.md)."""

NOTIFY_WORKING = frozenset({"sent", "logged"})
INCIDENT_EVENTS = frozenset({"kill_switch", "drill"})
"""Events that start an incident whose halt, alerts and log lines are its consequences."""
NOTIFY_LOST = frozenset({"failed", "dropped"})


class NoLogsError(LookupError):
    """The directory holds no journal or human-log record: there is nothing to judge."""


class Severity(StrEnum):
    CRITICAL = "CRITICAL"
    MAJOR = "MAJOR"
    MODERATE = "MODERATE"
    ADVISORY = "ADVISORY"


SEVERITY_ORDER = {s: i for i, s in enumerate(Severity)}


@dataclass(frozen=True, slots=True)
class Issue:
    severity: Severity
    text: str


@dataclass(slots=True)
class PatternStat:
    """One message pattern: how often, on which days, and whether it counts against GO."""

    level: str
    source: str
    pattern: str
    kind: str  # "log" (a human-log line) or "actor_restart" (an unexpected actor restart)
    example: str
    first: dt.datetime
    last: dt.datetime
    count: int = 0
    days: Counter[dt.date] = field(default_factory=Counter)

    @property
    def is_error(self) -> bool:
        return self.level in ("ERROR", "CRITICAL")

    @property
    def repeated(self) -> bool:
        return (self.count >= th.PATTERN_REPEAT_MIN_COUNT
                or len(self.days) >= th.PATTERN_REPEAT_MIN_DAYS)

    @property
    def storm_days(self) -> list[dt.date]:
        if self.kind != "log" or self.level != "WARNING":
            return []
        return sorted(d for d, n in self.days.items() if n >= th.WARNING_STORM_PER_DAY)

    @property
    def fails_criterion(self) -> bool:
        """Criterion 6: a repeated error, a repeated unexpected actor restart, a warning storm."""
        if self.is_error or self.kind == "actor_restart":
            return self.repeated
        return bool(self.storm_days)

    @property
    def label(self) -> str:
        return "WARNING (actor restart)" if self.kind == "actor_restart" else self.level


@dataclass(slots=True)
class OrderStats:
    intents: int = 0
    submitted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    fills: list[Event] = field(default_factory=list)


@dataclass(slots=True)
class Confirmation:
    """What one start said about its mode, and whether the words agree with the journal.

    A missing line is MAJOR (the operator cannot see the mode); words that contradict the
    journal are CRITICAL (nobody knows which mode the money path ran in)."""

    run: Run
    config_text: str | None
    mode_text: str | None
    missing: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.mismatches


@dataclass(slots=True)
class DayReport:
    date: dt.date
    number: int
    session: Session | None
    start_utc: dt.datetime
    end_utc: dt.datetime
    uptime_s: float = 0.0
    session_up_s: float = 0.0
    starts: list[Run] = field(default_factory=list)
    stops: list[Run] = field(default_factory=list)
    running_at_midnight: Run | None = None
    outages: list[Outage] = field(default_factory=list)
    signals: Counter[tuple[str, str]] = field(default_factory=Counter)
    signal_events: list[Event] = field(default_factory=list)
    orders: OrderStats = field(default_factory=OrderStats)
    bars: int = 0
    bar_gaps: list[Event] = field(default_factory=list)
    alerts: Counter[str] = field(default_factory=Counter)
    critical_alerts: list[Event] = field(default_factory=list)
    notify: Counter[str] = field(default_factory=Counter)
    notify_lost: list[Event] = field(default_factory=list)
    halts: list[Event] = field(default_factory=list)
    resumes: list[Event] = field(default_factory=list)
    kill_switches: list[Event] = field(default_factory=list)
    drills: list[Event] = field(default_factory=list)
    unexpected_restarts: list[Event] = field(default_factory=list)
    daily_summary: Event | None = None
    samples: list[Sample] = field(default_factory=list)
    rss_slope: Slope | None = None
    """The day's RSS trend (computed once, after the samples are in)."""
    levels: Counter[str] = field(default_factory=Counter)
    explained_warnings: int = 0
    second_instances: list[LogLine] = field(default_factory=list)
    patterns: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    confirmations: list[Confirmation] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    @property
    def is_session(self) -> bool:
        return self.session is not None

    @property
    def session_cover(self) -> float | None:
        if self.session is None:
            return None
        length = (self.session.close - self.session.open).total_seconds()
        return self.session_up_s / length if length > 0 else None

    @property
    def cpu_avg(self) -> float | None:
        return mean(s.cpu_pct for s in self.samples)

    @property
    def rss_first(self) -> float | None:
        return next((s.rss_mb for s in self.samples if s.rss_mb is not None), None)

    @property
    def rss_last(self) -> float | None:
        return next((s.rss_mb for s in reversed(self.samples) if s.rss_mb is not None), None)

    @property
    def log_dir_mb(self) -> float | None:
        return next((s.log_dir_mb for s in reversed(self.samples) if s.log_dir_mb is not None),
                    None)

    @property
    def entry_or_decision(self) -> int:
        return sum(n for (_, kind), n in self.signals.items() if kind in ("entry", "decision"))

    def add(self, severity: Severity, text: str) -> None:
        self.issues.append(Issue(severity, text))


@dataclass(frozen=True, slots=True)
class Criterion:
    number: int
    name: str
    passed: bool
    evidence: list[str]


@dataclass(slots=True)
class Report:
    logset: LogSet
    thresholds: Thresholds
    days: list[DayReport]
    runs: list[Run]
    outages: list[Outage]
    patterns: list[PatternStat]
    samples: list[Sample]
    measured_log_mb: float
    calendar_note: str | None
    manual_interventions: list[str] = field(default_factory=list)
    criteria: list[Criterion] = field(default_factory=list)
    global_issues: list[Issue] = field(default_factory=list)
    accelerated: float = 1.0     # the fastest simulated-clock speed among the runs (soaks)
    lines_by_ts: list[LogLine] = field(default_factory=list)
    line_stamps: list[dt.datetime] = field(default_factory=list)
    rss_slope: Slope | None = None
    """The whole period's RSS trend, pooled within runs (computed once)."""
    incident_ts: list[dt.datetime] = field(default_factory=list)
    """Kill switch uses and drills (sorted): what follows them within the incident window is
    their consequence, counted once with them."""

    @property
    def go(self) -> bool:
        return bool(self.criteria) and all(c.passed for c in self.criteria)

    @property
    def crashes(self) -> list[Run]:
        return [r for r in self.runs if r.crashed]

    @property
    def cpu_avg(self) -> float | None:
        return mean(s.cpu_pct for s in self.samples)

    @property
    def uptime_h(self) -> float:
        return sum(d.uptime_s for d in self.days) / 3600

    @property
    def expected_session_days(self) -> list[DayReport]:
        """Session days whose whole regular session lies inside the logged period."""
        span = self.logset.span()
        if span is None:
            return []
        return [d for d in self.days if d.session is not None
                and d.session.open >= span[0] and d.session.close <= span[1]]


# --- calendar ---------------------------------------------------------------------------------

def _sessions(first: dt.date, last: dt.date) -> tuple[Callable[[dt.date], Session | None],
                                                      str | None]:
    """The NYSE session lookup for the period, or a weekday 09:30–16:00 stand-in (said so)."""
    try:
        from config.market_calendar import MarketCalendar

        cal = MarketCalendar(first - dt.timedelta(days=7), last + dt.timedelta(days=7))
        return cal.session, None
    except Exception as exc:  # any calendar failure falls back, and the report says so
        def weekday_session(day: dt.date) -> Session | None:
            if day.weekday() >= 5:
                return None
            open_ = dt.datetime.combine(day, dt.time(9, 30), tzinfo=ET).astimezone(UTC)
            close = dt.datetime.combine(day, dt.time(16, 0), tzinfo=ET).astimezone(UTC)
            return Session(day, open_, close)

        note = (f"the NYSE calendar was unavailable ({exc}); sessions are taken as weekdays "
                "09:30-16:00 ET, holidays and early closes are not known")
        return weekday_session, note


# --- helpers ----------------------------------------------------------------------------------

def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(0), tzinfo=ET).astimezone(UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=ET).astimezone(UTC)
    return start, end


def _overlap_s(a0: dt.datetime, a1: dt.datetime, b0: dt.datetime, b1: dt.datetime) -> float:
    return max(0.0, (min(a1, b1) - max(a0, b0)).total_seconds())


def et_date(ts: dt.datetime) -> dt.date:
    return ts.astimezone(ET).date()


def _truthy(text: str) -> bool | None:
    low = text.strip().lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    return None


def _mode_from_config(dry_run: bool | None, paper: bool | None) -> str | None:
    if dry_run is None:
        return None
    if dry_run:
        return "DRY_RUN"
    if paper is None:
        return None
    return "PAPER" if paper else "LIVE"


# --- the analysis -------------------------------------------------------------------------------

def build_report(logdir: Path, thresholds: Thresholds | None = None) -> Report:
    """Read `logdir` and judge it. Raises NoLogsError when there is nothing to read."""
    thresholds = thresholds or Thresholds()
    logset = read_logdir(logdir)
    span = logset.span()
    if span is None:
        raise NoLogsError(f"no journal (events.jsonl*) or human-log (*.log*) records in {logdir}")
    runs = build_runs(logset)
    outages = build_outages(runs)
    first_day, last_day = et_date(span[0]), et_date(span[1])
    session_of, calendar_note = _sessions(first_day, last_day)

    days: dict[dt.date, DayReport] = {}
    day = first_day
    while day <= last_day:
        start, end = _day_bounds(day)
        days[day] = DayReport(date=day, number=len(days) + 1, session=session_of(day),
                              start_utc=start, end_utc=end)
        day += dt.timedelta(days=1)

    measured = sum(p.stat().st_size for p in logset.event_files + logset.log_files) / (1024 ** 2)
    report = Report(logset=logset, thresholds=thresholds, days=list(days.values()), runs=runs,
                    outages=outages, patterns=[], samples=[], measured_log_mb=measured,
                    calendar_note=calendar_note)
    report.lines_by_ts = sorted(logset.lines, key=lambda x: x.ts)
    report.line_stamps = [x.ts for x in report.lines_by_ts]
    _attribute_runs(report, days)
    _attribute_events(report, days)
    report.rss_slope = rss_slope(report.samples)
    for d in report.days:
        d.rss_slope = rss_slope(d.samples)
    expected_ts = sorted(
        e.ts for r in runs for e in r.events
        if e.name in ("link_down", "actor_restart") and e.get_bool("expected") is True)
    report.incident_ts = sorted(e.ts for r in runs for e in r.events
                                if e.name in INCIDENT_EVENTS)
    patterns = _attribute_lines(logset.lines, days, expected_ts, report.incident_ts)
    _actor_restart_patterns(days, patterns)
    report.patterns = sorted(patterns.values(),
                             key=lambda p: (not p.fails_criterion, not p.is_error, -p.count))
    _match_confirmations(report, days)
    _day_issues(report)
    _global_issues(report)
    report.criteria = judge(report)
    return report


def _attribute_runs(report: Report, days: dict[dt.date, DayReport]) -> None:
    for run in report.runs:
        if run.startup is not None and (d := days.get(et_date(run.start))) is not None:
            d.starts.append(run)
        if run.end_kind is not EndKind.RUNNING and (d := days.get(et_date(run.end))) is not None:
            d.stops.append(run)
        for d in days.values():
            d.uptime_s += _overlap_s(run.start, run.end, d.start_utc, d.end_utc)
            if d.session is not None:
                d.session_up_s += _overlap_s(run.start, run.end, d.session.open, d.session.close)
            if run.start < d.start_utc < run.end and d.running_at_midnight is None:
                d.running_at_midnight = run
    for outage in report.outages:
        if (d := days.get(et_date(outage.start))) is not None:
            d.outages.append(outage)


def _attribute_events(report: Report, days: dict[dt.date, DayReport]) -> None:
    for run in report.runs:
        for e in run.events:
            d = days.get(et_date(e.ts))
            if d is None:
                continue
            name = e.name
            if name == "bar":
                bar_ts = e.get_str("bar_ts")
                when = parse_ts(bar_ts) if bar_ts else None
                bar_day = days.get(et_date(when)) if when is not None else d
                if bar_day is not None:
                    bar_day.bars += 1
            elif name == "resource":
                cpu = e.get_float("cpu_pct")
                speed = _run_speed(run)
                if cpu is not None and speed > 1:
                    # an accelerated run (soak, demo) does `speed` seconds of work per second:
                    # judge its CPU per simulated second, like a production day
                    cpu = cpu / speed
                    report.accelerated = max(report.accelerated, speed)
                sample = Sample(ts=e.ts, run=run.number, run_start=run.start,
                                cpu_pct=cpu, rss_mb=e.get_float("rss_mb"),
                                log_dir_mb=e.get_float("log_dir_mb"))
                d.samples.append(sample)
                report.samples.append(sample)
            elif name == "signal":
                d.signals[(e.get_str("strategy") or "?", e.get_str("kind") or "?")] += 1
                d.signal_events.append(e)
            elif name == "order_intent":
                d.orders.intents += 1
            elif name == "order_submitted":
                d.orders.submitted += 1
            elif name == "order_rejected":
                d.orders.rejected[e.get_str("reason") or "no reason given"] += 1
            elif name == "order_status":
                d.orders.statuses[e.get_str("status") or "?"] += 1
            elif name == "fill":
                d.orders.fills.append(e)
            elif name == "bar_gap":
                d.bar_gaps.append(e)
            elif name == "alert":
                severity = e.get_str("severity") or "?"
                d.alerts[severity] += 1
                if severity == "critical":
                    d.critical_alerts.append(e)
            elif name == "notify":
                outcome = e.get_str("outcome") or "?"
                d.notify[outcome] += 1
                if outcome in NOTIFY_LOST:
                    d.notify_lost.append(e)
            elif name == "halt":
                d.halts.append(e)
            elif name == "resume":
                d.resumes.append(e)
            elif name == "kill_switch":
                d.kill_switches.append(e)
            elif name == "drill":
                d.drills.append(e)
            elif (name == "actor_restart" and e.get_bool("expected") is not True
                  and e.get_bool("operational") is not True):
                # operational restarts (the Gateway dropped us) are the world's fault and show
                # in the Gateway section; only restarts after a bug are an error pattern
                d.unexpected_restarts.append(e)
            elif name == "daily_summary":
                d.daily_summary = e


def _within_after(stamps: list[dt.datetime], ts: dt.datetime, window: dt.timedelta) -> bool:
    """Is there an anchor in `stamps` (sorted) at most `window` before `ts` (or at `ts`)?"""
    i = bisect.bisect_right(stamps, ts)
    return i > 0 and ts - stamps[i - 1] <= window


def _attribute_lines(lines: list[LogLine], days: dict[dt.date, DayReport],
                     expected_ts: list[dt.datetime],
                     incident_ts: list[dt.datetime] | None = None
                     ) -> dict[tuple[str, str, str, str], PatternStat]:
    window = dt.timedelta(seconds=th.EXPECTED_MATCH_WINDOW_S)
    incident_window = dt.timedelta(seconds=th.INCIDENT_WINDOW_S)
    incidents = incident_ts or []
    patterns: dict[tuple[str, str, str, str], PatternStat] = {}
    for line in lines:
        d = days.get(et_date(line.ts))
        if d is None:
            continue
        d.levels[line.level] += 1
        if "already running" in line.message.lower():
            d.second_instances.append(line)
        if line.level not in ("WARNING", "ERROR", "CRITICAL"):
            continue
        if line.level == "WARNING" and expected_ts:
            i = bisect.bisect_left(expected_ts, line.ts - window)
            if i < len(expected_ts) and expected_ts[i] <= line.ts + window:
                d.explained_warnings += 1
                continue
        if incidents and _within_after(incidents, line.ts, incident_window):
            d.explained_warnings += 1        # the kill switch's or drill's own consequences
            continue
        key = (line.level, line.source, message_pattern(line.message), "log")
        stat = patterns.get(key)
        if stat is None:
            stat = patterns[key] = PatternStat(level=key[0], source=key[1], pattern=key[2],
                                               kind="log", example=line.message,
                                               first=line.ts, last=line.ts)
        stat.count += 1
        stat.days[d.date] += 1
        stat.first, stat.last = min(stat.first, line.ts), max(stat.last, line.ts)
        d.patterns[key] += 1
    return patterns


def _run_speed(run: Run) -> float:
    startup = run.startup
    if startup is None or startup.get_bool("sim") is not True:
        return 1.0
    speed = startup.get_float("speed")
    return speed if speed is not None and speed > 0 else 1.0


def _actor_restart_patterns(days: dict[dt.date, DayReport],
                            patterns: dict[tuple[str, str, str, str], PatternStat]) -> None:
    """An unexpected actor restart is the supervisor catching an exception: a warning pattern."""
    for d in days.values():
        for e in d.unexpected_restarts:
            reason = e.get_str("reason") or "no reason given"
            source = e.get_str("path") or e.actor
            key = ("WARNING", source, "actor restart: " + message_pattern(reason), "actor_restart")
            stat = patterns.get(key)
            if stat is None:
                stat = patterns[key] = PatternStat(level="WARNING", source=source,
                                                   pattern=key[2], kind="actor_restart",
                                                   example=reason, first=e.ts, last=e.ts)
            stat.count += 1
            stat.days[d.date] += 1
            stat.first, stat.last = min(stat.first, e.ts), max(stat.last, e.ts)
            d.patterns[key] += 1


def _match_confirmations(report: Report, days: dict[dt.date, DayReport]) -> None:
    """Pair each startup with its `Configuration loaded` and mode lines; check they agree."""
    config_lines = [x for x in report.logset.lines if _CONFIG_LINE.search(x.message)]
    mode_lines = [x for x in report.logset.lines if x.message.strip() in MODE_LINES]
    window = th.CONFIRMATION_WINDOW_S

    def nearest(candidates: list[LogLine], ts: dt.datetime) -> LogLine | None:
        best = min(candidates, key=lambda x: abs((x.ts - ts).total_seconds()), default=None)
        if best is None or abs((best.ts - ts).total_seconds()) > window:
            return None
        return best

    for run in report.runs:
        if run.startup is None:
            continue
        run.config_line = nearest(config_lines, run.start)
        run.mode_line = nearest(mode_lines, run.start)
        conf = Confirmation(run=run,
                            config_text=run.config_line.message if run.config_line else None,
                            mode_text=run.mode_line.message.strip() if run.mode_line else None)
        journal_mode = run.mode
        if run.config_line is None:
            conf.missing.append("no 'Configuration loaded: DRY_RUN=…, PAPER_TRADING=…' line")
        else:
            m = _CONFIG_LINE.search(run.config_line.message)
            assert m is not None
            config_mode = _mode_from_config(_truthy(m[1]), _truthy(m[2]))
            if config_mode != journal_mode:
                conf.mismatches.append(f"the configuration line means {config_mode} but the "
                                       f"startup event says {journal_mode}")
        if run.mode_line is None:
            conf.missing.append("no mode line (DRY-RUN mode active / Paper trading mode ACTIVE"
                                " / LIVE trading mode ACTIVE)")
        elif MODE_LINES[run.mode_line.message.strip()] != journal_mode:
            conf.mismatches.append(f"'{run.mode_line.message.strip()}' but the startup event "
                                   f"says {journal_mode}")
        if (d := days.get(et_date(run.start))) is not None:
            d.confirmations.append(conf)


# --- issues -----------------------------------------------------------------------------------

def _day_issues(report: Report) -> None:
    patterns = {(p.level, p.source, p.pattern, p.kind): p for p in report.patterns}
    slope_max = report.thresholds.rss_slope_max_mb_per_hour
    expected_days = {d.date for d in report.expected_session_days}
    for d in report.days:
        for run in d.stops:
            if run.crashed:
                d.add(Severity.CRITICAL, f"Crash: run #{run.number} ended with "
                                         f"{run.end_text()}")
        for run in d.starts:
            if run.start_kind is StartKind.OPERATOR_RESTART:
                d.add(Severity.MAJOR, f"Manual intervention: run #{run.number} started at "
                                      f"{fmt_et(run.start, date=False)} after a clean stop the "
                                      "same day (operator restart)")
        for e in d.kill_switches:
            d.add(Severity.MAJOR, f"Manual intervention: kill switch "
                                  f"{'engaged' if e.get_bool('engaged') else 'released'} via "
                                  f"{e.get_str('source') or '?'} at {fmt_et(e.ts, date=False)}")
        for conf in d.confirmations:
            for text in conf.mismatches:
                d.add(Severity.CRITICAL, f"Mode confirmation of run #{conf.run.number}: {text}")
            for text in conf.missing:
                d.add(Severity.MAJOR, f"Mode confirmation of run #{conf.run.number}: {text}")
        for e in d.notify_lost:
            critical = e.get_str("severity") == "critical"
            d.add(Severity.CRITICAL if critical else Severity.ADVISORY,
                  f"Notification {e.get_str('outcome')}: {e.get_str('severity')} "
                  f"'{e.get_str('title')}' at {fmt_et(e.ts, date=False)} "
                  f"(status {e.fields.get('status')})")
        for e in d.drills:
            d.add(Severity.ADVISORY, f"Guardrail drill ({e.get_str('kind')}) at "
                                     f"{fmt_et(e.ts, date=False)}: its halt and alerts are "
                                     "expected")
        incident = dt.timedelta(seconds=th.INCIDENT_WINDOW_S)
        anchors = report.incident_ts
        halted = sorted(e.ts for e in d.halts)
        for e in d.halts:
            if _within_after(anchors, e.ts, incident):
                continue                   # the kill switch's or drill's halt: said once
            d.add(Severity.MAJOR, f"Trading halted at {fmt_et(e.ts, date=False)}: "
                                  f"{e.get_str('reason')} (state {e.get_str('state')})")
        for e in d.critical_alerts:
            if _within_after(anchors, e.ts, incident) or _within_after(halted, e.ts, incident):
                continue                   # the alert of an incident already reported
            d.add(Severity.MAJOR, f"Critical alert at {fmt_et(e.ts, date=False)}: "
                                  f"{e.get_str('title')} — {e.get_str('text')}")
        for key, n in d.patterns.items():
            p = patterns[key]
            if p.kind == "actor_restart":
                sev = Severity.MAJOR if p.repeated else Severity.MODERATE
                d.add(sev, f"Unexpected actor restart ×{n} of {p.source}: {p.example}"
                           + (f" (repeated: {p.count} in {len(p.days)} day(s))"
                              if p.repeated else ""))
            elif p.is_error:
                sev = Severity.MAJOR if p.repeated else Severity.MODERATE
                d.add(sev, f"{p.level} ×{n} [{p.source}] {p.pattern}"
                           + (f" (repeated pattern: {p.count} in {len(p.days)} day(s))"
                              if p.repeated else ""))
            elif d.date in p.storm_days:
                d.add(Severity.MAJOR, f"Warning storm: ×{n} [{p.source}] {p.pattern}")
            elif p.repeated and d.date == min(p.days):
                d.add(Severity.ADVISORY, f"Repeated warning pattern ({p.count} in "
                                         f"{len(p.days)} day(s)) [{p.source}] {p.pattern}")
        for o in d.outages:
            _outage_issue(d, o)
        for e in d.bar_gaps:
            d.add(Severity.MODERATE, f"Bar gap {e.get_str('symbol')} {e.get_str('start')} → "
                                     f"{e.get_str('end')}: {e.get_str('reason')}")
        if d.second_instances:
            d.add(Severity.ADVISORY, f"A second instance was started and exited "
                                     f"({len(d.second_instances)}×, 'already running')")
        if d.is_session:
            _session_day_issues(d, expected=d.date in expected_days)
        if d.is_session:
            _scheduled_restart_seen(report, d)
        slope = d.rss_slope
        if slope is not None and slope.mb_per_hour > slope_max:
            d.add(Severity.MAJOR, f"RSS grows {slope.mb_per_hour:.2f} MB/h today "
                                  f"(threshold {slope_max:g} MB/h)")
        cpu = d.cpu_avg
        if cpu is not None and cpu >= report.thresholds.cpu_avg_max_pct:
            d.add(Severity.MODERATE, f"CPU average {cpu:.1f} % today "
                                     f"(threshold {report.thresholds.cpu_avg_max_pct:g} %)")
        d.issues.sort(key=lambda i: SEVERITY_ORDER[i.severity])


def _outage_issue(d: DayReport, o: Outage) -> None:
    dur = o.duration_s
    when = fmt_et(o.start, date=False)
    if dur is None:
        d.add(Severity.MAJOR, f"Gateway link lost at {when} ({o.reason}) and not reconnected "
                              "before the run ended")
        return
    minutes = dur / 60
    if o.expected:
        if minutes > th.GATEWAY_RESTART_WINDOW_MIN:
            d.add(Severity.MODERATE, f"Scheduled Gateway restart at {when} took {minutes:.1f} "
                                     f"min to reconnect (window {th.GATEWAY_RESTART_WINDOW_MIN:g}"
                                     " min)")
        return
    in_session = (d.session is not None and o.end is not None
                  and _overlap_s(o.start, o.end, d.session.open, d.session.close) > 0)
    if minutes >= th.OUTAGE_ALERT_MIN:
        d.add(Severity.MAJOR if in_session else Severity.MODERATE,
              f"Unexpected Gateway outage at {when} for {minutes:.1f} min ({o.reason})"
              + (" during the session" if in_session else ""))
    else:
        d.add(Severity.ADVISORY, f"Unexpected Gateway disconnect at {when}, reconnected in "
                                 f"{dur:.0f} s ({o.reason})")


def _session_day_issues(d: DayReport, *, expected: bool) -> None:
    if expected and d.session_up_s == 0:
        d.add(Severity.MAJOR, "The bot was not running during the regular session")
        return
    if expected and d.bars == 0:
        d.add(Severity.MAJOR, "No market data (no bar) during the session")
    elif expected and d.entry_or_decision == 0:
        d.add(Severity.MAJOR, "No entry or decision signal during the session")
    first = min(d.starts, key=lambda r: r.start, default=None)
    if first is None or d.running_at_midnight is not None:
        return
    if first.startup is not None and first.startup.get_bool("sim") is True:
        return                             # a simulated clock starts where it was told to
    latest = dt.datetime.combine(d.date, th.AUTO_START_ET, tzinfo=ET) + dt.timedelta(
        minutes=th.AUTO_START_GRACE_MIN)
    if first.start > latest:
        d.add(Severity.MODERATE, f"Late start: first start at {fmt_et(first.start, date=False)}"
                                 f" (expected by {latest.strftime('%H:%M')} ET)")


def _scheduled_restart_seen(report: Report, d: DayReport) -> None:
    at = dt.datetime.combine(d.date, th.GATEWAY_RESTART_ET, tzinfo=ET).astimezone(UTC)
    until = at + dt.timedelta(minutes=th.GATEWAY_RESTART_WINDOW_MIN)
    if not any(r.start <= at and r.end >= until for r in report.runs):
        return
    if any(o.expected for o in d.outages):
        return
    d.add(Severity.ADVISORY, f"No scheduled Gateway restart seen around "
                             f"{th.GATEWAY_RESTART_ET.strftime('%H:%M')} ET although the bot was"
                             " up: check that IBC's AutoRestartTime (machine-local time) and "
                             "GATEWAY_RESTART_TIME (ET) name the same instant")


@dataclass(slots=True)
class Overnight:
    """The night before a day: OVERNIGHT_FROM_ET on the day before to OVERNIGHT_TO_ET."""

    start: dt.datetime
    end: dt.datetime
    up_s: float
    levels: Counter[str]
    patterns: Counter[tuple[str, str, str]]
    outages: list[Outage]
    starts: list[Run]
    stops: list[Run]


def overnight(report: Report, day: dt.date) -> Overnight:
    start = dt.datetime.combine(day - dt.timedelta(days=1), th.OVERNIGHT_FROM_ET,
                                tzinfo=ET).astimezone(UTC)
    end = dt.datetime.combine(day, th.OVERNIGHT_TO_ET, tzinfo=ET).astimezone(UTC)
    lines = report.lines_by_ts
    stamps = report.line_stamps
    levels: Counter[str] = Counter()
    patterns: Counter[tuple[str, str, str]] = Counter()
    for line in lines[bisect.bisect_left(stamps, start):bisect.bisect_left(stamps, end)]:
        levels[line.level] += 1
        if line.level in ("WARNING", "ERROR", "CRITICAL"):
            patterns[(line.level, line.source, message_pattern(line.message))] += 1
    return Overnight(
        start=start, end=end,
        up_s=sum(_overlap_s(r.start, r.end, start, end) for r in report.runs),
        levels=levels, patterns=patterns,
        outages=[o for o in report.outages if start <= o.start < end],
        starts=[r for r in report.runs if r.startup is not None and start <= r.start < end],
        stops=[r for r in report.runs
               if r.end_kind is not EndKind.RUNNING and start <= r.end < end])


def _global_issues(report: Report) -> None:
    ls = report.logset
    if ls.skipped_event_lines or ls.skipped_log_lines:
        report.global_issues.append(Issue(
            Severity.ADVISORY, f"Unreadable lines skipped: {ls.skipped_event_lines} in the "
                               f"journal, {ls.skipped_log_lines} in the human log (a truncated "
                               "last line is normal while the bot runs or after a kill)"))
    if ls.unknown_events:
        names = ", ".join(f"{k} ×{n}" for k, n in ls.unknown_events.most_common())
        report.global_issues.append(Issue(Severity.ADVISORY,
                                          f"Events this report does not know (ignored): {names}"))
    if report.calendar_note:
        report.global_issues.append(Issue(Severity.ADVISORY, report.calendar_note))


# --- the six criteria ----------------------------------------------------------------------------

def judge(report: Report) -> list[Criterion]:
    """The seed's six validation criteria, each PASS/FAIL with the evidence that decided it."""
    return [_no_crashes(report), _no_manual(report), _notifications(report),
            _signals(report), _resources(report), _error_patterns(report)]


def _no_crashes(report: Report) -> Criterion:
    crashes = report.crashes
    starts = [r for r in report.runs if r.startup is not None]
    evidence = [f"{len(starts)} start(s), {len(report.runs)} run(s); "
                f"{sum(r.end_kind is EndKind.CLEAN for r in report.runs)} clean stop(s), "
                f"{len(crashes)} unclean"]
    evidence += [f"run #{r.number} (started {fmt_et(r.start)}): {r.end_text()}" for r in crashes]
    return Criterion(1, "No crashes", not crashes, evidence)


def _no_manual(report: Report) -> Criterion:
    items: list[str] = []
    for r in report.runs:
        if r.start_kind is StartKind.OPERATOR_RESTART:
            items.append(f"operator restart: run #{r.number} at {fmt_et(r.start)}")
    for d in report.days:
        for e in d.kill_switches:
            items.append(f"kill switch {'engaged' if e.get_bool('engaged') else 'released'} via "
                         f"{e.get_str('source') or '?'} at {fmt_et(e.ts)}")
    report.manual_interventions = items
    evidence = items or ["no kill-switch event; every start was the first of its ET day or "
                         "followed a crash"]
    return Criterion(2, "No manual intervention", not items, evidence)


def _notifications(report: Report) -> Criterion:
    outcomes: Counter[str] = Counter()
    lost_critical: list[str] = []
    for d in report.days:
        outcomes.update(d.notify)
        lost_critical += [f"critical '{e.get_str('title')}' {e.get_str('outcome')} at "
                          f"{fmt_et(e.ts)} (status {e.fields.get('status')})"
                          for e in d.notify_lost if e.get_str("severity") == "critical"]
    working = sum(outcomes[o] for o in NOTIFY_WORKING)
    summary = ", ".join(f"{k} {n}" for k, n in sorted(outcomes.items())) or "none"
    evidence = [f"notify outcomes: {summary}"]
    if working == 0:
        evidence.append("no notification was sent or logged")
    evidence += lost_critical
    return Criterion(3, "Health checks and notifications working",
                     working > 0 and not lost_critical, evidence)


def _signals(report: Report) -> Criterion:
    """Every session day the logs cover (whole, or in part while the bot ran) had data and a
    decision. Logs with no session time at all measure nothing here: not a failure."""
    complete = {d.date for d in report.expected_session_days}
    judged = [d for d in report.days
              if d.session is not None and (d.date in complete or d.session_up_s > 0)]
    evidence: list[str] = []
    passed = True
    if not judged:
        evidence.append("not measured: the logs cover no regular-session time")
    for d in judged:
        label = d.date.isoformat()
        if d.session_up_s == 0:
            evidence.append(f"{label}: bot not running during the session")
            passed = False
        elif d.bars == 0:
            evidence.append(f"{label}: no market data")
            passed = False
        elif d.entry_or_decision == 0:
            evidence.append(f"{label}: {d.bars} bars but no entry or decision signal")
            passed = False
        else:
            by = ", ".join(f"{s}/{k} {n}" for (s, k), n in sorted(d.signals.items()))
            evidence.append(f"{label}: {d.entry_or_decision} entry/decision ({by})")
    return Criterion(4, "Signals generated", passed, evidence)


def _resources(report: Report) -> Criterion:
    t = report.thresholds
    samples = report.samples
    if not samples:
        return Criterion(5, "Resources stable", False,
                         ["no resource samples: stability is not shown"])
    evidence: list[str] = []
    passed = True
    cpu = report.cpu_avg
    if cpu is None:
        evidence.append("no CPU figure in the resource samples")
        passed = False
    else:
        ok = cpu < t.cpu_avg_max_pct
        passed &= ok
        per = (f" per simulated second (accelerated run, up to {report.accelerated:g}x)"
               if report.accelerated > 1 else "")
        evidence.append(f"CPU average {cpu:.3f} %{per} over {len(samples)} samples "
                        f"({'<' if ok else '≥'} {t.cpu_avg_max_pct:g} %)")
    slope = report.rss_slope
    if slope is None:
        # too short to measure a trend is not a measured failure (the other figures decide)
        evidence.append(f"RSS trend not measured: no run with ≥ "
                        f"{th.RSS_SLOPE_MIN_SPAN_HOURS:g} h of samples after its "
                        f"{th.RSS_WARMUP_MINUTES:g}-minute warm-up")
    else:
        ok = slope.mb_per_hour <= t.rss_slope_max_mb_per_hour
        passed &= ok
        evidence.append(f"RSS slope {slope.mb_per_hour:+.3f} MB/h within runs ({slope.runs} "
                        f"run(s), {slope.hours:.1f} h) ({'≤' if ok else '>'} "
                        f"{t.rss_slope_max_mb_per_hour:g} MB/h)")
    rss = [s.rss_mb for s in samples if s.rss_mb is not None]
    if rss:
        evidence.append(f"RSS first {rss[0]:.1f} MB, last {rss[-1]:.1f} MB, max {max(rss):.1f} MB")
    sampled = [s.log_dir_mb for s in samples if s.log_dir_mb is not None]
    biggest = max([report.measured_log_mb, *sampled])
    ok = biggest < t.log_dir_max_mb
    passed &= ok
    evidence.append(f"log dir max {biggest:.1f} MB (sampled max "
                    f"{max(sampled) if sampled else 0:.1f}, files now "
                    f"{report.measured_log_mb:.1f}) ({'<' if ok else '≥'} {t.log_dir_max_mb:g} MB)")
    return Criterion(5, "Resources stable", passed, evidence)


def _error_patterns(report: Report) -> Criterion:
    failing = [p for p in report.patterns if p.fails_criterion]
    errors = sum(p.count for p in report.patterns if p.is_error)
    evidence = [f"{len(report.patterns)} warning/error pattern(s); {errors} ERROR/CRITICAL "
                f"line(s); {len(failing)} failing"]
    for p in failing:
        why = (f"storm on {', '.join(d.isoformat() for d in p.storm_days)}" if p.storm_days
               else f"{p.count}× on {len(p.days)} day(s)")
        evidence.append(f"{p.label} [{p.source}] {p.pattern} — {why}")
    return Criterion(6, "No error patterns", not failing, evidence)
