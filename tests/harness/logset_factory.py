"""Writes a realistic multi-day log directory in the exact formats of docs/LOGGING.md.

The shape follows a real dry-run day of the bot: the scheduled 06:00 ET start with its
configuration and mode lines and the actor tree, the Gateway connect, history bars, the 09:15
strategy decision, one-minute bars for SPY and QQQ through the session, a couple of entries
with their orders and fills, resource samples every minute, the tree every 15 minutes, the
daily summary, the scheduled 16:30 ET Gateway restart (link subtree respawn, reconnect about a
minute later), and a clean stop in the evening. Faults are switched on per scenario (crash,
operator restart, kill switch, repeated error, leak, lost critical notification, silent day,
mode contradiction, torn last lines, unknown events, rotation).

Everything written is also counted in `Truth`, so a test compares the report with what was
actually put in the files, not with a second copy of the report's logic.

Run it directly to get a log directory to look at (or to time the report on a big one):
    python tests/harness/logset_factory.py OUTDIR [--days 7] [--continuous]
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

ET = ZoneInfo("America/New_York")
UTC = dt.UTC

Schedule = Callable[[dt.datetime, Callable[[], None]], None]
"""Queue an action at an instant; a day's actions are played in time order."""

TREE_BLOCK = (
    "root [running] one_for_one inc=1 restarts=0 up={up}s",
    "  notifier [running] inc=1 restarts=0 up={up}s q=0/256",
    "  resource_probe [running] inc=1 restarts=0 up={up}s",
    "  mode_guard [running] inc=1 restarts=0 up={up}s q=0/64",
    "  order_router [running] inc=1 restarts=0 up={up}s q=0/64",
    "  brain [running] rest_for_one inc=1 restarts=0 up={up}s",
    "    indicators [running] inc=1 restarts=0 up={up}s q=0/1024",
    "    strategy_selector [running] inc=1 restarts=0 up={up}s q=0/64",
    "  link [running] one_for_all inc={link_inc} restarts={link_restarts} up={up}s",
    "    gateway_link [running] inc={link_inc} restarts={link_restarts} up={up}s",
    "    bar_feed [running] inc={link_inc} restarts={link_restarts} up={up}s q=0/4096",
)


@dataclass
class Scenario:
    first_day: dt.date = dt.date(2026, 11, 16)  # a Monday; Thanksgiving is the 26th
    days: int = 5
    mode: str = "DRY_RUN"
    daily_cycle: bool = True
    """True: start 06:00 ET and stop cleanly at 20:00 ET on each session day. False: one
    process for the whole period (weekends included), as in a soak."""
    crash_on: dt.date | None = None
    """At 11:00 ET the process dies without a shutdown record; it is restarted at 11:05."""
    unclean_shutdown_on: dt.date | None = None
    """At 11:00 ET the process stops with shutdown clean=false exit_code=1, restarted 11:05."""
    operator_restart_on: dt.date | None = None
    """Clean stop at 12:00 ET (SIGINT) and a new start at 12:10 the same day."""
    kill_switch_on: dt.date | None = None
    error_days: tuple[dt.date, ...] = ()
    """Two 'Order status request … failed: timeout' ERROR lines on each of these days."""
    single_error_on: dt.date | None = None
    """One isolated ERROR line (a one-off, not a pattern)."""
    unexpected_restart_days: tuple[dt.date, ...] = ()
    gateway_drop_days: tuple[dt.date, ...] = ()      # operational link restarts (not bugs)
    sim_speed: float = 1.0                           # > 1: an accelerated run (a soak)
    """An unexpected actor_restart of root.brain.indicators (ValueError) on each day."""
    rss_leak_mb_per_hour: float = 0.0
    cpu_base_pct: float = 1.2
    notify_critical_failed_on: dt.date | None = None
    silent_day: dt.date | None = None
    """A session day with bars but no decision or entry signal."""
    mode_mismatch_on: dt.date | None = None
    """The configuration line says paper while the startup event says DRY_RUN."""
    overnight_blip: bool = True
    """(continuous runs) an unexpected 1100 disconnect at 00:20 ET, back after 90 s."""
    torn_tail: bool = False
    unknown_events: bool = False
    rotate_bytes: int | None = None
    seed: int = 7


@dataclass
class DayTruth:
    starts: int = 0
    clean_stops: int = 0
    unclean_stops: int = 0
    expected_outages: int = 0
    unexpected_outages: int = 0
    signals: Counter[tuple[str, str]] = field(default_factory=Counter)
    intents: int = 0
    submitted: int = 0
    fills: int = 0
    errors: int = 0
    warnings: int = 0
    bars: int = 0
    resources: int = 0


@dataclass
class Truth:
    days: dict[dt.date, DayTruth] = field(default_factory=dict)
    crashes: int = 0
    operator_restarts: int = 0
    kill_switch_events: int = 0
    notify_sent: int = 0

    def day(self, d: dt.date) -> DayTruth:
        return self.days.setdefault(d, DayTruth())


def _et(day: dt.date, hh: int, mm: int, ss: float = 0.0) -> dt.datetime:
    whole = int(ss)
    return dt.datetime(day.year, day.month, day.day, hh, mm, whole,
                       round((ss - whole) * 1e6), tzinfo=ET)


def is_session(day: dt.date) -> bool:
    """The fixture's dates avoid holidays; weekdays are sessions 09:30-16:00 ET."""
    return day.weekday() < 5


class Writer:
    """Collects journal and log lines in time order, with the counts that go into Truth."""

    def __init__(self, scenario: Scenario) -> None:
        self.s = scenario
        self.rng = random.Random(scenario.seed)
        self.records: list[tuple[dt.datetime, int, str, str]] = []  # ts, seq, file, line
        self.seq = 0
        self.truth = Truth()
        self.pid = 4100
        self.run_start: dt.datetime | None = None
        self.session_no = 0
        self.link_inc = 1
        self.order_no = 1000
        self.log_mb = 0.4

    # -- low level ------------------------------------------------------------------------
    def _add(self, ts: dt.datetime, file: str, line: str) -> None:
        self.seq += 1
        self.records.append((ts, self.seq, file, line))

    def event(self, ts: dt.datetime, name: str, actor: str, **fields: object) -> None:
        stamp = ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        obj: dict[str, object] = {"ts": stamp, "event": name, "actor": actor, **fields}
        self._add(ts, "events", json.dumps(obj))

    def log(self, ts: dt.datetime, level: str, source: str, message: str,
            block: tuple[str, ...] = ()) -> None:
        stamp = ts.astimezone(ET).isoformat(timespec="milliseconds")
        self._add(ts, "log", f"{stamp} {level:<8} [{source}] {message}")
        for extra in block:
            self._add(ts, "log", "  " + extra)
        day = ts.astimezone(ET).date()
        if level == "WARNING":
            self.truth.day(day).warnings += 1
        elif level in ("ERROR", "CRITICAL"):
            self.truth.day(day).errors += 1

    # -- building blocks -----------------------------------------------------------------
    def tree(self, ts: dt.datetime, reason: str) -> None:
        assert self.run_start is not None
        up = int((ts - self.run_start).total_seconds())
        block = tuple(line.format(up=up, link_inc=self.link_inc,
                                  link_restarts=self.link_inc - 1) for line in TREE_BLOCK)
        self.log(ts, "INFO", "runtime", f"Actor tree ({reason}):", block)
        self.event(ts, "tree", "runtime", reason=reason, tree={
            "name": "root", "path": "root", "kind": "supervisor", "strategy": "one_for_one",
            "state": "running", "incarnation": 1, "restarts": 0, "uptime_s": float(up),
            "last_error": None, "channels": {}, "children": []})

    def startup(self, ts: dt.datetime, *, config_says: tuple[str, str] | None = None) -> None:
        day = ts.astimezone(ET).date()
        self.pid += 1
        self.run_start = ts
        self.link_inc = 1
        mode = self.s.mode
        dry, paper = {"DRY_RUN": ("true", "false"), "PAPER": ("false", "true"),
                      "LIVE": ("false", "false")}[mode]
        if config_says is not None:
            dry, paper = config_says
        words = {"DRY_RUN": "DRY-RUN mode active", "PAPER": "Paper trading mode ACTIVE",
                 "LIVE": "LIVE trading mode ACTIVE"}[mode]
        self.log(ts, "INFO", "runtime", f"Configuration loaded: DRY_RUN={dry}, "
                                        f"PAPER_TRADING={paper}")
        self.log(ts + dt.timedelta(milliseconds=1), "INFO", "runtime", words)
        self.event(ts + dt.timedelta(milliseconds=5), "startup", "runtime", mode=mode,
                   settings_hash="9f2c4e1a", pid=self.pid, version="0.1.0",
                   sim=self.s.sim_speed > 1, speed=self.s.sim_speed)
        self.tree(ts + dt.timedelta(milliseconds=8), "start")
        when = ts + dt.timedelta(seconds=1)
        self.event(when, "notify", "root.notifier", severity="info", title="Bot started",
                   outcome="sent", status=204)
        self.log(when, "INFO", "root.notifier",
                 f"Discord: Bot started in DRY-RUN mode at {ts.astimezone(ET):%H:%M} ET")
        self.truth.notify_sent += 1
        self.truth.day(day).starts += 1
        self.link_up(ts + dt.timedelta(seconds=2), outage_s=None)
        # history for the indicators: the last 20 minutes of the previous session
        prev = day - dt.timedelta(days=1)
        while not is_session(prev):
            prev -= dt.timedelta(days=1)
        for i in range(20):
            bar_ts = _et(prev, 15, 40 + i)
            self.bar(ts + dt.timedelta(seconds=3), "SPY", bar_ts, "history")

    def link_up(self, ts: dt.datetime, *, outage_s: float | None) -> None:
        self.session_no += 1
        self.event(ts, "link_up", "root.link.gateway_link", session=self.session_no,
                   accounts=["DU1234567"], server_version=178,
                   connect_ms=round(self.rng.uniform(60, 140), 1), client_id=1,
                   readonly=self.s.mode == "DRY_RUN", outage_s=outage_s)
        self.log(ts, "INFO", "root.link.gateway_link",
                 f"Gateway connected: session {self.session_no}, server version 178, "
                 "accounts DU1234567")

    def bar(self, ts: dt.datetime, symbol: str, bar_ts: dt.datetime, source: str) -> None:
        base = 585.0 if symbol == "SPY" else 505.0
        close = round(base + self.rng.uniform(-2, 2), 2)
        self.event(ts, "bar", "root.link.bar_feed", symbol=symbol,
                   bar_ts=bar_ts.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                   open=close, high=close + 0.1, low=close - 0.1, close=close,
                   volume=self.rng.randint(10_000, 90_000), source=source)
        self.truth.day(bar_ts.astimezone(ET).date()).bars += 1

    def shutdown(self, ts: dt.datetime, *, reason: str, clean: bool = True,
                 exit_code: int = 0) -> None:
        assert self.run_start is not None
        day = ts.astimezone(ET).date()
        self.log(ts, "INFO" if clean else "ERROR", "runtime",
                 f"Shutting down ({reason})" if clean else
                 f"Supervisor gave up: {reason}; exiting with {exit_code}")
        self.event(ts + dt.timedelta(milliseconds=50), "shutdown", "runtime", reason=reason,
                   exit_code=exit_code, clean=clean,
                   uptime_s=round((ts - self.run_start).total_seconds(), 3))
        if clean:
            self.truth.day(day).clean_stops += 1
        else:
            self.truth.day(day).unclean_stops += 1
            self.truth.crashes += 1
        self.run_start = None

    def vanish(self, ts: dt.datetime) -> None:
        """The process is killed: nothing more, no shutdown record."""
        self.truth.day(ts.astimezone(ET).date()).unclean_stops += 1
        self.truth.crashes += 1
        self.run_start = None

    def resource(self, ts: dt.datetime) -> None:
        assert self.run_start is not None
        hours = (ts - self.run_start).total_seconds() / 3600
        warm = min(1.0, hours / 0.25) * 40  # imports and history fill the first minutes
        rss = 140 + warm + self.s.rss_leak_mb_per_hour * hours + self.rng.uniform(-1.5, 1.5)
        self.log_mb += 0.002
        self.event(ts, "resource", "root.resource_probe",
                   cpu_pct=round(max(0.0, self.rng.gauss(self.s.cpu_base_pct, 0.4)), 2),
                   rss_mb=round(rss, 2), handles=212, log_dir_mb=round(self.log_mb, 3),
                   disk_free_gb=118.4, loop_lag_ms=round(self.rng.uniform(0.2, 3.0), 2))
        self.truth.day(ts.astimezone(ET).date()).resources += 1

    def signal(self, ts: dt.datetime, kind: str, strategy: str, symbol: str | None,
               direction: str | None, reasons: list[str]) -> None:
        self.event(ts, "signal", "root.brain.strategy_selector", kind=kind, strategy=strategy,
                   symbol=symbol, direction=direction, reasons=reasons)
        self.log(ts, "INFO", "root.brain.strategy_selector",
                 f"Signal {kind} {strategy} {symbol or ''} {direction or ''}".rstrip())
        self.truth.day(ts.astimezone(ET).date()).signals[(strategy, kind)] += 1

    def round_trip(self, ts: dt.datetime, symbol: str) -> None:
        """Entry signal, order, fill; exit 30 minutes later."""
        day = self.truth.day(ts.astimezone(ET).date())
        for leg, (kind, side, offset) in enumerate((("entry", "BUY", 0), ("exit", "SELL", 30))):
            when = ts + dt.timedelta(minutes=offset)
            self.signal(when, kind, "A", symbol, "bullish",
                        ["EMA8 crossed above EMA21", "RSI 57.2", "close > VWAP"]
                        if kind == "entry" else ["take profit +15%"])
            self.order_no += 1
            ref = f"ord-{self.order_no}"
            contract = f"{symbol} 20261127 C {590 if symbol == 'SPY' else 510}"
            self.event(when, "order_intent", "root.mode_guard", intent_id=f"int-{self.order_no}",
                       symbol=symbol, contract=contract, quantity=1, limit=1.25 + leg * 0.2,
                       strategy="A")
            self.event(when + dt.timedelta(milliseconds=40), "order_submitted",
                       "root.order_router", order_ref=ref, mode=self.s.mode,
                       intent_id=f"int-{self.order_no}")
            self.event(when + dt.timedelta(seconds=2), "order_status", "root.order_router",
                       order_ref=ref, status="Filled")
            self.event(when + dt.timedelta(seconds=2), "fill", "root.order_router",
                       order_ref=ref, contract=contract, side=side, quantity=1,
                       price=1.25 + leg * 0.2, commission=0.65, mode=self.s.mode)
            day.intents += 1
            day.submitted += 1
            day.fills += 1

    def scheduled_gateway_restart(self, day: dt.date) -> None:
        down = _et(day, 16, 30, 0.5)
        self.event(down, "link_down", "root.link.gateway_link", session=self.session_no,
                   reason="peer closed (scheduled restart window)", code=None, expected=True)
        self.log(down, "WARNING", "root.link.gateway_link",
                 "Gateway link lost: peer closed (scheduled restart window)")
        self.link_inc += 1
        when = down + dt.timedelta(milliseconds=120)
        self.event(when, "actor_restart", "root.link", path="root.link",
                   incarnation=self.link_inc, reason="scheduled Gateway restart", expected=True)
        self.log(when, "WARNING", "root.link",
                 f"Restarting link subtree (incarnation {self.link_inc}): scheduled Gateway "
                 "restart")
        self.tree(when + dt.timedelta(milliseconds=5), "restart")
        outage = round(self.rng.uniform(55, 80), 1)
        self.link_up(down + dt.timedelta(seconds=outage), outage_s=outage)
        self.truth.day(day).expected_outages += 1

    def unexpected_blip(self, ts: dt.datetime, seconds: float) -> None:
        self.event(ts, "link_down", "root.link.gateway_link", session=self.session_no,
                   reason="IB error 1100: connectivity lost", code=1100, expected=False)
        self.log(ts, "WARNING", "root.link.gateway_link",
                 "Gateway link lost: IB error code 1100 (connectivity between IB and the "
                 "Gateway lost)")
        self.link_up(ts + dt.timedelta(seconds=seconds), outage_s=seconds)
        self.truth.day(ts.astimezone(ET).date()).unexpected_outages += 1

    # -- a day ---------------------------------------------------------------------------
    def active_span(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """The minutes of `day` during which the process runs (for minute-by-minute samples)."""
        s = self.s
        if s.daily_cycle:
            if not is_session(day):
                return []
            start, end = _et(day, 6, 0, 1.0), _et(day, 20, 0)
        else:
            first = day == s.first_day
            last = day == s.first_day + dt.timedelta(days=s.days - 1)
            start = _et(day, 6, 0, 1.0) if first else _et(day, 0, 0)
            end = _et(day, 20, 0) if last else _et(day, 0, 0) + dt.timedelta(days=1)
        spans = [(start, end)]
        for fault_day, stop, restart in (
                (s.crash_on, _et(day, 11, 0), _et(day, 11, 5)),
                (s.unclean_shutdown_on, _et(day, 11, 0), _et(day, 11, 5)),
                (s.operator_restart_on, _et(day, 12, 0), _et(day, 12, 10))):
            if fault_day == day:
                spans = [(a, min(b, stop)) for a, b in spans] + [(restart, end)]
        return spans

    def write_day(self, day: dt.date) -> None:
        """Queue the day's happenings, then play them in time order (state follows time)."""
        s = self.s
        spans = self.active_span(day)
        if not spans:
            return
        actions: list[tuple[dt.datetime, int, Callable[[], None]]] = []

        def at(ts: dt.datetime, fn: Callable[[], None]) -> None:
            actions.append((ts, len(actions), fn))

        if s.daily_cycle or day == s.first_day:
            config = ("false", "true") if s.mode_mismatch_on == day else None
            at(spans[0][0], lambda: self.startup(spans[0][0], config_says=config))
        for start, end in spans:
            t = start.replace(second=30, microsecond=0)
            if t < start:
                t += dt.timedelta(minutes=1)
            while t < end:
                at(t, functools.partial(self.minute, day, t))
                t += dt.timedelta(minutes=1)
        if is_session(day):
            self.session_day_events(day, at)
            at(_et(day, 16, 30), lambda: self.scheduled_gateway_restart(day))
        if not s.daily_cycle and s.overnight_blip and day != s.first_day:
            at(_et(day, 0, 20), lambda: self.unexpected_blip(_et(day, 0, 20), 90.0))
        self.faults(day, at)
        if s.daily_cycle or day == s.first_day + dt.timedelta(days=s.days - 1):
            at(_et(day, 20, 0), lambda: self.shutdown(_et(day, 20, 0), reason="SIGTERM"))
        for _, _, fn in sorted(actions, key=lambda a: (a[0], a[1])):
            fn()

    def minute(self, day: dt.date, t: dt.datetime) -> None:
        """Resources every minute, the tree every 15 minutes, bars in the session."""
        if self.run_start is None:
            return
        self.resource(t)
        et = t.astimezone(ET)
        if et.minute % 15 == 0:
            self.tree(t + dt.timedelta(seconds=1), "periodic")
        if is_session(day) and dt.time(9, 31) <= et.time() <= dt.time(16, 0, 59):
            bar_ts = (t - dt.timedelta(seconds=90)).replace(second=0)
            for symbol in ("SPY", "QQQ"):
                self.bar(t - dt.timedelta(seconds=29), symbol, bar_ts, "live")

    def session_day_events(self, day: dt.date, at: Schedule) -> None:
        s = self.s
        if s.silent_day != day:
            at(_et(day, 9, 15), lambda: self.signal(
                _et(day, 9, 15), "decision", "A", None, None,
                ["VIX 16.4 < 18", "gameplan strategy A", "no catalyst"]))
            at(_et(day, 10, 42), lambda: self.round_trip(_et(day, 10, 42), "SPY"))
            at(_et(day, 13, 5), lambda: self.round_trip(_et(day, 13, 5), "QQQ"))
        summary_at = _et(day, 16, 15)
        trades = 0 if s.silent_day == day else 2

        def summary() -> None:
            self.event(summary_at, "daily_summary", "root.mode_guard", date=day.isoformat(),
                       trades=trades, pnl=round(0.4 * trades * 20, 2), pdt_left=3,
                       rejections=0)
            self.event(summary_at + dt.timedelta(seconds=1), "notify", "root.notifier",
                       severity="info", title="Daily summary", outcome="sent", status=204)
            self.truth.notify_sent += 1

        at(summary_at, summary)

    def faults(self, day: dt.date, at: Schedule) -> None:
        s = self.s
        if s.crash_on == day:
            at(_et(day, 11, 0), lambda: self.vanish(_et(day, 11, 0)))
            at(_et(day, 11, 5), lambda: self.startup(_et(day, 11, 5)))
        if s.unclean_shutdown_on == day:
            at(_et(day, 11, 0), lambda: self.shutdown(
                _et(day, 11, 0), reason="root supervisor gave up", clean=False, exit_code=1))
            at(_et(day, 11, 5), lambda: self.startup(_et(day, 11, 5)))
        if s.operator_restart_on == day:
            at(_et(day, 12, 0), lambda: self.shutdown(_et(day, 12, 0), reason="SIGINT"))
            at(_et(day, 12, 10), lambda: self.startup(_et(day, 12, 10)))
            self.truth.operator_restarts += 1
        if s.kill_switch_on == day:
            for engaged, (hh, mm) in ((True, (13, 30)), (False, (13, 45))):
                ts = _et(day, hh, mm)
                at(ts, functools.partial(self.kill, ts, engaged))
        if day in s.error_days:
            for k, (hh, mm) in enumerate(((11, 15), (14, 40))):
                ts = _et(day, hh, mm, 3.25)
                at(ts, functools.partial(
                    self.log, ts, "ERROR", "root.order_router",
                    f"Order status request for ord-{1500 + k} failed: timeout after "
                    f"{5.0 + k * 0.3:.1f}s"))
        if s.single_error_on == day:
            ts = _et(day, 15, 2, 7.0)
            at(ts, lambda: self.log(ts, "ERROR", "root.notifier",
                                    "Discord webhook answered 502 for 'Heartbeat'; will retry"))
        if day in s.unexpected_restart_days:
            at(_et(day, 10, 5, 2.0), lambda: self.actor_crash(_et(day, 10, 5, 2.0)))
        for k in range(3 if day in s.gateway_drop_days else 0):
            ts_drop = _et(day, 11 + k, 7, 1.0)
            at(ts_drop, lambda t=ts_drop: self.gateway_drop(t))
        if s.notify_critical_failed_on == day:
            at(_et(day, 14, 0), lambda: self.lost_critical(_et(day, 14, 0)))
        if s.unknown_events and is_session(day):
            at(_et(day, 12, 0), lambda: self.event(_et(day, 12, 0), "custom_probe",
                                                   "root.resource_probe", value=1))

    def kill(self, ts: dt.datetime, engaged: bool) -> None:
        self.event(ts, "kill_switch", "root.mode_guard", source="file", engaged=engaged)
        self.event(ts, "halt" if engaged else "resume", "root.mode_guard",
                   reason="kill switch", state="HALTED" if engaged else "TRADING")
        self.log(ts, "WARNING", "root.mode_guard",
                 f"Kill switch {'engaged' if engaged else 'released'} (file)")
        self.truth.kill_switch_events += 1

    def actor_crash(self, ts: dt.datetime) -> None:
        self.event(ts, "actor_restart", "root.brain", path="root.brain.indicators",
                   incarnation=2, reason="ValueError: RSI window empty for SPY at bar 17",
                   expected=False)
        self.log(ts, "ERROR", "root.brain.indicators",
                 "Actor crashed: ValueError: RSI window empty for SPY at bar 17",
                 ("Traceback (most recent call last):",
                  '  File "actors/indicators.py", line 88, in on_bar',
                  "ValueError: RSI window empty for SPY at bar 17"))

    def gateway_drop(self, ts: dt.datetime) -> None:
        """The Gateway closes the connection: an operational restart of the link subtree."""
        self.log(ts, "WARNING", "root.link.gateway_link",
                 "Gateway link lost: the Gateway closed the connection")
        self.log(ts, "WARNING", "root.link",
                 "gateway_link ended (incarnation 2): LinkLost: the Gateway closed the "
                 "connection")
        for path in ("root.link.gateway_link", "root.link.bar_feed"):
            self.event(ts + dt.timedelta(seconds=1), "actor_restart", "root.link", path=path,
                       incarnation=3, reason="gateway_link: LinkLost: the Gateway closed the "
                       "connection", expected=False, operational=True)

    def lost_critical(self, ts: dt.datetime) -> None:
        self.event(ts, "alert", "root.mode_guard", severity="critical",
                   title="Gateway down", text="link down for 10 min")
        self.event(ts + dt.timedelta(seconds=2), "notify", "root.notifier",
                   severity="critical", title="Gateway down", outcome="failed", status=500)


def _write_rotated(directory: Path, name: str, lines: list[str], max_bytes: int | None) -> None:
    """Split like RotatingFileHandler: newest content in `name`, older in .1, .2, ..."""
    chunks: list[list[str]] = [[]]
    size = 0
    for line in lines:
        n = len(line.encode("utf-8")) + 1
        if max_bytes is not None and size + n > max_bytes and chunks[-1]:
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += n
    count = len(chunks)
    for i, chunk in enumerate(chunks):
        age = count - 1 - i
        path = directory / (name if age == 0 else f"{name}.{age}")
        path.write_text("".join(x + "\n" for x in chunk), encoding="utf-8")


def write_logset(directory: Path, scenario: Scenario | None = None) -> Truth:
    """Write crucible_bot.log* and events.jsonl* for `scenario` into `directory`."""
    scenario = scenario or Scenario()
    directory.mkdir(parents=True, exist_ok=True)
    w = Writer(scenario)
    for i in range(scenario.days):
        w.write_day(scenario.first_day + dt.timedelta(days=i))
    w.records.sort(key=lambda r: (r[0], r[1]))
    events = [line for _, _, f, line in w.records if f == "events"]
    logs = [line for _, _, f, line in w.records if f == "log"]
    _write_rotated(directory, "events.jsonl", events, scenario.rotate_bytes)
    _write_rotated(directory, "crucible_bot.log", logs, scenario.rotate_bytes)
    if scenario.torn_tail:
        with (directory / "events.jsonl").open("a", encoding="utf-8") as fh:
            fh.write('{"ts": "2026-11-20T20:00:01.000000Z", "event": "reso')
        with (directory / "crucible_bot.log").open("a", encoding="utf-8") as fh:
            fh.write("2026-11-20T20:00:01.000-05:00 INF")
    return w.truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--continuous", action="store_true")
    parser.add_argument("--first-day", type=dt.date.fromisoformat, default=dt.date(2026, 11, 16))
    args = parser.parse_args()
    truth = write_logset(args.outdir, Scenario(first_day=args.first_day, days=args.days,
                                               daily_cycle=not args.continuous))
    print(f"wrote {args.outdir}: crashes {truth.crashes}, days {len(truth.days)}")


if __name__ == "__main__":
    main()
