"""The stability report on crafted log sets: right counts, GO when clean, NO-GO on each fault.

The log sets are written by tests/harness/logset_factory.py in the formats of
docs/LOGGING.md; the factory counts what it writes (`Truth`), and the report must agree.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.harness import REPO
from tests.harness import logset_factory as factory
from tools.stability.analysis import Report, Severity, build_report
from tools.stability.logfiles import rotation_order
from tools.stability.markdown import render
from tools.stability.patterns import message_pattern
from tools.stability.resources import Sample, rss_slope
from tools.stability.thresholds import Thresholds
from tools.stability.timeline import EndKind, StartKind
from tools.stability_report import EXIT_GO, EXIT_NO_GO, EXIT_NOTHING_TO_JUDGE, main

Scenario = factory.Scenario
MON, TUE, WED, THU, FRI = (dt.date(2026, 11, 16) + dt.timedelta(days=i) for i in range(5))


def make(tmp_path: Path, **kwargs: object) -> tuple[Report, Any]:
    logdir = tmp_path / "logs"
    truth = factory.write_logset(logdir, Scenario(**kwargs))
    return build_report(logdir), truth


def criteria(report: Report) -> dict[int, bool]:
    return {c.number: c.passed for c in report.criteria}


def issues(report: Report, severity: Severity) -> list[str]:
    return [i.text for d in report.days for i in d.issues if i.severity is severity]


# --- a clean week -------------------------------------------------------------------------------

def test_clean_week_is_go_and_every_daily_count_matches_what_was_logged(tmp_path: Path) -> None:
    report, truth = make(tmp_path)
    assert report.go
    assert all(criteria(report).values())
    assert [d.date for d in report.days] == [MON, TUE, WED, THU, FRI]
    for d in report.days:
        t = truth.days[d.date]
        assert len(d.starts) == t.starts == 1
        assert sum(r.end_kind is EndKind.CLEAN for r in d.stops) == t.clean_stops == 1
        assert sum(o.expected for o in d.outages) == t.expected_outages == 1
        assert sum(not o.expected for o in d.outages) == t.unexpected_outages == 0
        assert dict(d.signals) == dict(t.signals)
        assert d.orders.intents == t.intents
        assert d.orders.submitted == t.submitted
        assert len(d.orders.fills) == t.fills
        assert d.levels["WARNING"] == t.warnings
        assert d.levels["ERROR"] + d.levels["CRITICAL"] == t.errors == 0
        assert d.bars == t.bars
        assert len(d.samples) == t.resources
        assert d.uptime_s == pytest.approx(14 * 3600 - 1, abs=1)
        assert d.session_cover == pytest.approx(1.0)
        assert all(c.ok for c in d.confirmations)
        assert d.issues == []
    assert report.crashes == []
    assert report.manual_interventions == []
    scheduled = [o for o in report.outages if o.expected]
    assert all(o.duration_s is not None and 55 <= o.duration_s <= 80 for o in scheduled)
    assert sum(d.explained_warnings for d in report.days) == 10  # 2 per scheduled restart
    assert report.patterns == []


def test_a_continuous_soak_across_a_weekend_is_go(tmp_path: Path) -> None:
    report, truth = make(tmp_path, daily_cycle=False, days=7)
    assert report.go, [c for c in report.criteria if not c.passed]
    assert len(report.runs) == 1 and report.runs[0].end_kind is EndKind.CLEAN
    assert [d.is_session for d in report.days] == [True] * 5 + [False] * 2
    for d in report.days[1:-1]:
        assert d.uptime_s == pytest.approx(24 * 3600)
        assert d.running_at_midnight is report.runs[0]
    # the overnight 1100 blip on days 2..7: unexpected, short, advisory only
    unexpected = [o for o in report.outages if not o.expected]
    assert len(unexpected) == sum(t.unexpected_outages for t in truth.days.values()) == 6
    assert all(o.duration_s == pytest.approx(90.0) for o in unexpected)
    assert len(issues(report, Severity.ADVISORY)) >= 6
    # the weekly disconnect warning repeats (6 days) but a WARNING is not an error pattern
    warning = next(p for p in report.patterns if "1100" in p.pattern)
    assert warning.repeated and not warning.fails_criterion


def test_a_paper_run_is_confirmed_by_its_log_lines(tmp_path: Path) -> None:
    report, _ = make(tmp_path, mode="PAPER", days=1)
    conf = report.days[0].confirmations[0]
    assert conf.ok
    assert conf.config_text == "Configuration loaded: DRY_RUN=false, PAPER_TRADING=true"
    assert conf.mode_text == "Paper trading mode ACTIVE"


# --- each fault turns the verdict ---------------------------------------------------------------

def test_a_process_that_dies_without_shutdown_is_a_crash_and_no_go(tmp_path: Path) -> None:
    report, truth = make(tmp_path, crash_on=WED)
    assert not report.go
    assert criteria(report) == {1: False, 2: True, 3: True, 4: True, 5: True, 6: True}
    assert len(report.crashes) == truth.crashes == 1
    assert report.crashes[0].end_kind is EndKind.VANISHED
    # the last record of the dead process, not the new process's first log lines
    assert report.crashes[0].end.astimezone(factory.ET).time() == dt.time(10, 59, 30)
    restart = next(r for r in report.runs if r.start_kind is StartKind.AFTER_CRASH)
    assert restart.start.astimezone(factory.ET).time() == dt.time(11, 5, 0, 5000)
    wed = report.days[2]
    assert len(wed.starts) == 2 and any("Crash" in t for t in issues(report, Severity.CRITICAL))


def test_an_unclean_shutdown_is_a_crash(tmp_path: Path) -> None:
    report, _ = make(tmp_path, unclean_shutdown_on=TUE, days=3)
    assert criteria(report)[1] is False
    assert [r.end_kind for r in report.crashes] == [EndKind.UNCLEAN]
    assert not report.go


def test_a_repeated_error_pattern_is_no_go(tmp_path: Path) -> None:
    report, truth = make(tmp_path, error_days=(TUE, THU))
    assert criteria(report) == {1: True, 2: True, 3: True, 4: True, 5: True, 6: False}
    failing = [p for p in report.patterns if p.fails_criterion]
    assert len(failing) == 1
    assert failing[0].pattern == "Order status request for <id> failed: timeout after <n>s"
    assert failing[0].count == sum(t.errors for t in truth.days.values()) == 4
    assert sorted(failing[0].days) == [TUE, THU]
    assert len(issues(report, Severity.MAJOR)) == 2  # one per day it occurred
    text = render(report, None)
    assert ("ERROR ×2 [root.order_router] Order status request for <id> failed: timeout "
            "after <n>s — repeated") in text
    assert "| **fails criterion 6** |" in text


def test_a_single_error_is_reported_but_is_not_a_pattern(tmp_path: Path) -> None:
    report, _ = make(tmp_path, single_error_on=WED)
    assert report.go
    assert any("Discord webhook answered" in t for t in issues(report, Severity.MODERATE))


def test_repeated_unexpected_actor_restarts_fail_criterion_6_but_are_not_crashes(
        tmp_path: Path) -> None:
    report, _ = make(tmp_path, unexpected_restart_days=(MON, WED))
    result = criteria(report)
    assert result[1] is True and result[6] is False
    kinds = {p.kind for p in report.patterns if p.fails_criterion}
    assert kinds == {"actor_restart", "log"}  # the restart and its ERROR line


def test_gateway_drops_handled_by_the_supervisor_are_not_error_patterns(
        tmp_path: Path) -> None:
    report, _ = make(tmp_path, gateway_drop_days=(MON, TUE, WED))
    assert criteria(report)[6] is True
    assert not [p for p in report.patterns if p.kind == "actor_restart"]


def test_an_accelerated_run_is_judged_on_cpu_per_simulated_second(tmp_path: Path) -> None:
    busy = make(tmp_path / "real", cpu_base_pct=7.0, days=2)[0]
    soak = make(tmp_path / "soak", cpu_base_pct=7.0, days=2, sim_speed=1000.0)[0]
    assert criteria(busy)[5] is False
    assert criteria(soak)[5] is True
    assert soak.cpu_avg is not None and soak.cpu_avg < 0.01
    assert any("per simulated second" in line for c in soak.criteria if c.number == 5
               for line in c.evidence)


def test_an_rss_leak_is_no_go(tmp_path: Path) -> None:
    report, _ = make(tmp_path, rss_leak_mb_per_hour=5.0, days=3)
    assert criteria(report) == {1: True, 2: True, 3: True, 4: True, 5: False, 6: True}
    slope = report.rss_slope
    assert slope is not None and slope.mb_per_hour == pytest.approx(5.0, abs=0.3)
    assert len(issues(report, Severity.MAJOR)) == 3  # every day shows the growth


def test_a_busy_cpu_fails_resources(tmp_path: Path) -> None:
    report, _ = make(tmp_path, cpu_base_pct=7.0, days=2)
    assert criteria(report)[5] is False


def test_operator_restart_and_kill_switch_are_manual_interventions(tmp_path: Path) -> None:
    report, truth = make(tmp_path, operator_restart_on=TUE, kill_switch_on=THU)
    assert criteria(report) == {1: True, 2: False, 3: True, 4: True, 5: True, 6: True}
    assert len(report.manual_interventions) == (truth.operator_restarts
                                                + truth.kill_switch_events) == 3
    assert [r.start_kind for r in report.runs].count(StartKind.OPERATOR_RESTART) == 1


def test_a_lost_critical_notification_fails_criterion_3(tmp_path: Path) -> None:
    report, _ = make(tmp_path, notify_critical_failed_on=WED, days=3)
    assert criteria(report)[3] is False
    assert any("Notification failed" in t for t in issues(report, Severity.CRITICAL))


def test_a_session_day_without_signals_fails_criterion_4(tmp_path: Path) -> None:
    report, _ = make(tmp_path, silent_day=TUE, days=3)
    assert criteria(report)[4] is False
    evidence = next(c for c in report.criteria if c.number == 4).evidence
    assert any(e.startswith("2026-11-17:") and "no entry or decision" in e for e in evidence)


def test_words_that_contradict_the_journal_mode_are_critical(tmp_path: Path) -> None:
    report, _ = make(tmp_path, mode_mismatch_on=TUE, days=2)
    critical = issues(report, Severity.CRITICAL)
    assert len(critical) == 1 and "means PAPER but the startup event says DRY_RUN" in critical[0]


# --- robustness -------------------------------------------------------------------------------

def test_rotated_files_torn_lines_and_unknown_events_change_no_count(tmp_path: Path) -> None:
    plain, _ = make(tmp_path / "plain")
    rotated, _ = make(tmp_path / "rotated", rotate_bytes=300_000, torn_tail=True,
                      unknown_events=True)
    assert len(rotated.logset.event_files) > 2 and len(rotated.logset.log_files) >= 1
    assert rotated.logset.skipped_event_lines == 1 and rotated.logset.skipped_log_lines == 1
    assert rotated.logset.unknown_events == {"custom_probe": 5}
    assert rotated.go and plain.go
    for a, b in zip(plain.days, rotated.days, strict=True):
        assert (a.bars, dict(a.signals), len(a.samples), len(a.outages), a.uptime_s) == (
            b.bars, dict(b.signals), len(b.samples), len(b.outages), b.uptime_s)


def test_rotated_files_are_read_oldest_first() -> None:
    names = [Path(n) for n in ("events.jsonl", "events.jsonl.10", "events.jsonl.2",
                               "events.jsonl.1")]
    assert [p.name for p in rotation_order(names)] == [
        "events.jsonl.10", "events.jsonl.2", "events.jsonl.1", "events.jsonl"]


def test_patterns_mask_numbers_and_ids_but_keep_ib_codes() -> None:
    a = message_pattern("Request 17 for DU123456 timed out after 5.0s at 2026-11-20T10:00:00Z")
    b = message_pattern("Request 942 for DU654321 timed out after 5.2s at 2026-11-21T11:30:00Z")
    assert a == b == "Request <n> for <id> timed out after <n>s at <ts>"
    assert message_pattern("IB error code 1100") != message_pattern("IB error code 2104")


def test_rss_slope_is_not_fooled_by_restarts() -> None:
    # Two flat runs, the second at a lower level: a naive regression over all samples would
    # see a steep fall; within each run nothing moves.
    start = dt.datetime(2026, 11, 16, 11, tzinfo=dt.UTC)
    samples = []
    for run, level, offset_h in ((1, 200.0, 0), (2, 150.0, 10)):
        run_start = start + dt.timedelta(hours=offset_h)
        for minute in range(0, 8 * 60, 5):
            ts = run_start + dt.timedelta(minutes=minute)
            samples.append(Sample(ts=ts, run=run, run_start=run_start, cpu_pct=1.0,
                                  rss_mb=level, log_dir_mb=1.0))
    slope = rss_slope(samples)
    assert slope is not None and slope.runs == 2 and slope.mb_per_hour == pytest.approx(0.0)


def test_thresholds_come_from_the_command_line(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    factory.write_logset(logdir, Scenario(days=2, rss_leak_mb_per_hour=1.5))
    assert build_report(logdir).go
    strict = build_report(logdir, Thresholds(rss_slope_max_mb_per_hour=1.0))
    assert {c.number for c in strict.criteria if not c.passed} == {5}


# --- the command ------------------------------------------------------------------------------

def test_command_writes_markdown_and_png_and_exits_zero_on_go(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    factory.write_logset(logdir, Scenario(days=2))
    out = tmp_path / "reports" / "day.md"
    done = subprocess.run([sys.executable, "-m", "tools.stability_report", str(logdir),
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == EXIT_GO, done.stderr
    assert "Verdict: GO" in done.stdout
    text = out.read_text(encoding="utf-8")
    png = out.with_suffix(".png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert "![CPU and RSS over the days](day.png)" in text
    for heading in ("## Per-day overview", "## Warning and error patterns",
                    "## Day 1 — Monday 2026-11-16", "### Auto-start", "### Overnight logs",
                    "### Strategy signals", "### Orders and fills",
                    "### Gateway restart and reconnection", "### End-of-day summary",
                    "### Issues found", "## Stability summary", "### The six criteria"):
        assert heading in text
    assert text.count("| PASS |") == 6
    assert text.rstrip().endswith("ADVISORY = for the record.")


def test_command_exits_one_on_no_go_and_writes_beside_the_logs(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    factory.write_logset(logdir, Scenario(days=2, crash_on=TUE))
    assert main([str(logdir), "--no-chart"]) == EXIT_NO_GO
    text = (logdir / "stability_report.md").read_text(encoding="utf-8")
    assert "**Verdict: NO-GO** — failed: 1 No crashes." in text
    assert "| 1 | No crashes | **FAIL** |" in text


def test_command_refuses_an_empty_or_missing_directory(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == EXIT_NOTHING_TO_JUDGE
    assert main([str(tmp_path / "missing")]) == EXIT_NOTHING_TO_JUDGE
    err = capsys.readouterr().err
    assert "no journal" in err and "does not exist" in err


# --- what the bot really writes (issue 14) --------------------------------------------------

class _Journal:
    """A small log directory in the bot's real formats: one run, written line by line."""

    def __init__(self, logdir: Path, start: dt.datetime) -> None:
        self.logdir = logdir
        logdir.mkdir(parents=True, exist_ok=True)
        self.events: list[str] = []
        self.lines: list[str] = []
        self.now = start

    def at(self, minutes: float) -> _Journal:
        self.now = self.now + dt.timedelta(minutes=minutes)
        return self

    def event(self, name: str, actor: str = "runtime", **fields: object) -> None:
        import json
        ts = self.now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.events.append(json.dumps({"ts": ts, "event": name, "actor": actor, **fields}))

    def log(self, level: str, source: str, message: str) -> None:
        from config.market_calendar import ET
        stamp = self.now.astimezone(ET).isoformat(timespec="milliseconds")
        self.lines.append(f"{stamp} {level:<8} [{source}] {message}")

    def start(self, *, sim: bool = False) -> None:
        self.log("INFO", "runtime", "Configuration loaded: DRY_RUN=true, PAPER_TRADING=false")
        self.log("INFO", "runtime", "DRY-RUN mode active")
        self.event("startup", mode="DRY_RUN", settings_hash="abc", pid=1, version="0.1.0",
                   sim=sim, speed=120.0 if sim else 1.0)
        self.event("link_up", "root.link.gateway_link", session=1, accounts=["DU1"],
                   server_version=178, connect_ms=4.0, client_id=1, readonly=True,
                   outage_s=None)
        self.event("notify", "root.notifier", severity="info", title="Bot started",
                   outcome="logged", status=None, count=1, attempts=1, source="runtime")
        self.event("resource", "root.resource_probe", cpu_pct=0.5, rss_mb=120.0,
                   log_dir_mb=0.1, disk_free_gb=50.0)

    def stop(self) -> None:
        self.event("link_down", "root.link.gateway_link", session=1, reason="shutdown",
                   code=None, expected=False)
        self.event("shutdown", reason="SIGINT", exit_code=0, clean=True, uptime_s=3600.0)

    def write(self) -> Path:
        (self.logdir / "events.jsonl").write_text("\n".join(self.events) + "\n",
                                                  encoding="utf-8")
        (self.logdir / "crucible_bot.log").write_text("\n".join(self.lines) + "\n",
                                                      encoding="utf-8")
        return self.logdir


def _saturday(tmp_path: Path) -> _Journal:
    from config.market_calendar import ET
    return _Journal(tmp_path / "logs", dt.datetime(2026, 11, 21, 10, 0, tzinfo=ET))


def test_a_clean_stop_is_not_a_lost_link_and_trades_jsonl_is_not_the_journal(
        tmp_path: Path) -> None:
    j = _saturday(tmp_path)
    j.start()
    j.at(60).stop()
    logdir = j.write()
    (logdir / "trades.jsonl").write_text('{"ts": "2026-11-21T15:00:00Z", "kind": "fill"}\n' * 8,
                                         encoding="utf-8")
    report = build_report(logdir)
    assert report.outages == []
    assert [f.name for f in report.logset.event_files] == ["events.jsonl"]
    assert report.logset.skipped_event_lines == 0 and not report.logset.unknown_events
    assert report.global_issues == []
    assert not any("Gateway link lost" in i for s in Severity for i in issues(report, s))


def test_a_short_run_outside_the_session_is_go_and_says_what_it_did_not_measure(
        tmp_path: Path) -> None:
    j = _saturday(tmp_path)
    j.start(sim=True)
    j.at(30).stop()
    report = build_report(j.write())
    assert report.go, [(c.number, c.evidence) for c in report.criteria if not c.passed]
    by = {c.number: c for c in report.criteria}
    assert by[4].evidence == ["not measured: the logs cover no regular-session time"]
    assert any(e.startswith("RSS trend not measured") for e in by[5].evidence)


def test_one_kill_switch_use_is_one_incident(tmp_path: Path) -> None:
    j = _saturday(tmp_path)
    j.start()
    j.at(10).event("kill_switch", "root.mode_guard", source="http", engaged=True)
    j.log("WARNING", "root.mode_guard", "Kill switch engaged (http)")
    j.at(0.01).event("trading_state", "root.mode_guard", state="HALTED",
                     reasons=["kill switch engaged"], fault=False)
    j.event("halt", "root.mode_guard", reason="kill switch engaged", state="HALTED",
            fault=False)
    j.log("CRITICAL", "root.mode_guard", "Trading HALTED: kill switch engaged")
    j.at(0.01).event("alert", "root.notifier", severity="critical", title="Trading HALTED",
                     text="kill switch engaged")
    j.log("CRITICAL", "root.notifier", "Notification: [CRITICAL] Trading HALTED")
    j.at(20).stop()
    report = build_report(j.write())
    found = [(s, i) for s in Severity for i in issues(report, s)]
    assert len(found) == 1, found            # not also the halt, the alert, the log lines
    assert found[0] == (Severity.MAJOR, "Manual intervention: kill switch engaged via http at "
                                        "10:10:00")
    assert [c.number for c in report.criteria if not c.passed] == [2]


def test_a_drill_and_its_halt_are_expected(tmp_path: Path) -> None:
    j = _saturday(tmp_path)
    j.start(sim=True)
    j.at(10).event("drill", "root.mode_guard", kind="daily_loss", amount=-70.0, limit=60.0)
    j.at(0.01).event("risk_breach", "root.mode_guard", kind="daily_loss", pnl=-70.0, limit=60.0)
    j.event("halt", "root.mode_guard", reason="daily loss limit", state="HALTED", fault=False)
    j.log("CRITICAL", "root.mode_guard", "Trading HALTED: daily loss -70.00 past the limit")
    j.event("alert", "root.notifier", severity="critical", title="Daily loss limit",
            text="halted for the day")
    j.at(20).stop()
    report = build_report(j.write())
    assert report.go
    assert issues(report, Severity.MAJOR) == [] and issues(report, Severity.CRITICAL) == []
    assert any("Guardrail drill" in i for i in issues(report, Severity.ADVISORY))


def test_the_terminal_prints_the_reason_of_each_failed_criterion(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logdir = tmp_path / "logs"
    factory.write_logset(logdir, Scenario(crash_on=TUE, days=3))
    assert main([str(logdir), "--no-chart"]) == EXIT_NO_GO
    out = capsys.readouterr().out
    assert "Verdict: NO-GO" in out
    assert "criterion 1 (No crashes) failed: " in out and "no shutdown record" in out


def test_the_chart_spans_the_run_and_carries_the_pnl_of_the_fills(tmp_path: Path) -> None:
    from tools.stability.chart import _pnl_points, _span, write_chart

    j = _saturday(tmp_path)
    j.start(sim=True)
    for after, side, pnl in ((10, "BUY", -1.3), (10, "SELL", 76.7), (10, "BUY", -1.3),
                             (15, "SELL", -139.3)):
        j.at(after).event(
            "fill", "root.order_router", order_ref="r", contract="SPY 2026-11-27 600C",
            side=side, quantity=2, price=2.5, commission=1.3, mode="DRY_RUN", intent_id="i",
            exec_id="e", realized_pnl=pnl, commission_estimated=True)
    j.at(60).stop()
    report = build_report(j.write())
    assert [round(v, 2) for _, v, _ in _pnl_points(report)] == [-1.3, 75.4, 74.1, -65.2]
    span = _span(report)
    assert span is not None and span[1] - span[0] < dt.timedelta(hours=3)    # not a whole day
    png = tmp_path / "chart.png"
    write_chart(report, png)
    assert png.stat().st_size > 10_000
