"""The report as Markdown, in the layout of the validation log the operator kept by hand.

One section per ET day (auto-start, overnight logs, strategy signals, orders and fills, Gateway
restart and reconnection with its timeline, end-of-day summary, issues found), then the
stability summary with the six criteria and the GO / NO-GO verdict. The verdict is also on top,
because that is the line an operator reads first.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from config.market_calendar import Session
from tools.stability import thresholds as th
from tools.stability.analysis import (
    DayReport,
    Issue,
    Report,
    Severity,
    overnight,
)
from tools.stability.timeline import EndKind, Outage, Run, StartKind, fmt_et

MAX_LISTED = 12
"""Long lists (signals, fills, patterns overnight) are cut here with a count of the rest."""


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _num(value: float | None, fmt: str = ".1f") -> str:
    return "–" if value is None else format(value, fmt)


def _hms(ts: dt.datetime) -> str:
    return fmt_et(ts, date=False)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not reconnected"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def verdict_line(report: Report) -> str:
    if report.go:
        return "**Verdict: GO** — all six criteria pass."
    failed = ", ".join(f"{c.number} {c.name}" for c in report.criteria if not c.passed)
    return f"**Verdict: NO-GO** — failed: {failed}."


def render(report: Report, chart_name: str | None) -> str:
    out: list[str] = []
    span = report.logset.span()
    assert span is not None
    ls = report.logset
    t = report.thresholds
    out += ["# Stability report", "", verdict_line(report), ""]
    out.append(f"- Log directory: `{ls.logdir}`")
    out.append("- Files read: " + (", ".join(p.name for p in ls.event_files + ls.log_files)
                                   or "none"))
    sessions = sum(d.is_session for d in report.days)
    out.append(f"- Period: {fmt_et(span[0])} → {fmt_et(span[1])} ({len(report.days)} ET "
               f"day(s), {sessions} session day(s))")
    out.append(f"- Records: {len(ls.events)} journal events, {len(ls.lines)} log lines; "
               f"unreadable lines skipped: {ls.skipped_event_lines} journal, "
               f"{ls.skipped_log_lines} log")
    out.append(f"- Thresholds: RSS slope ≤ {t.rss_slope_max_mb_per_hour:g} MB/h, CPU average "
               f"< {t.cpu_avg_max_pct:g} %, log directory < {t.log_dir_max_mb:g} MB")
    out.append("")
    out += _overview(report)
    if chart_name:
        out += [f"![CPU and RSS over the days]({chart_name})", ""]
    out += _pattern_table(report)
    for d in report.days:
        out += _day_section(report, d)
    out += _summary(report)
    out += _definitions()
    return "\n".join(out).rstrip() + "\n"


def _overview(report: Report) -> list[str]:
    out = ["## Per-day overview", "",
           "| Day | Date | Session | Uptime h | Session covered | Starts | Stops clean/unclean "
           "| Disconnects expected/unexpected (longest) | Errors | Warnings | Mode confirmed "
           "| Signals entry+decision (all) | Orders/Fills | CPU avg % | RSS first→last MB "
           "| RSS slope MB/h | Log dir MB |",
           "|" + "---|" * 17]
    for d in report.days:
        session = ("–" if d.session is None else
                   f"{d.session.open_et:%H:%M}–{d.session.close_et:%H:%M}")
        clean = sum(r.end_kind is EndKind.CLEAN for r in d.stops)
        longest = max((o.duration_s or 0 for o in d.outages), default=None)
        exp = sum(o.expected for o in d.outages)
        conf = ("–" if not d.confirmations else
                "yes" if all(c.ok for c in d.confirmations) else "**no**")
        slope = d.rss_slope
        rss = (f"{_num(d.rss_first)}→{_num(d.rss_last)}" if d.rss_first is not None else "–")
        cover = d.session_cover
        out.append("| " + " | ".join(_cell(x) for x in (
            d.number, f"{d.date:%a %Y-%m-%d}", session, f"{d.uptime_s / 3600:.1f}",
            "–" if cover is None else f"{cover:.0%}", len(d.starts),
            f"{clean}/{len(d.stops) - clean}",
            f"{exp}/{len(d.outages) - exp}" + (f" ({_duration(longest)})" if d.outages else ""),
            d.levels["ERROR"] + d.levels["CRITICAL"], d.levels["WARNING"], conf,
            f"{d.entry_or_decision} ({sum(d.signals.values())})",
            f"{d.orders.submitted}/{len(d.orders.fills)}", _num(d.cpu_avg, ".2f"), rss,
            _num(slope.mb_per_hour if slope else None, "+.2f"), _num(d.log_dir_mb),
        )) + " |")
    out.append("")
    return out


def _pattern_table(report: Report) -> list[str]:
    out = ["## Warning and error patterns", ""]
    if not report.patterns:
        out += ["No warning or error line (other than those explained by the scheduled Gateway "
                "restart).", ""]
        return out
    out += ["| Level | Source | Pattern | Count | Days | First | Last | Flag |",
            "|---|---|---|---|---|---|---|---|"]
    for p in report.patterns:
        flag = ("**fails criterion 6**" if p.fails_criterion else
                "repeated" if p.repeated else "")
        out.append("| " + " | ".join(_cell(x) for x in (
            p.label, p.source, p.pattern, p.count, len(p.days), fmt_et(p.first),
            fmt_et(p.last), flag)) + " |")
    explained = sum(d.explained_warnings for d in report.days)
    out += ["", f"{explained} WARNING line(s) matched an expected event (the scheduled Gateway "
                "restart) and are not counted above.", ""]
    return out


def _day_title(d: DayReport) -> str:
    if d.session is None:
        what = "no session (weekend or holiday)"
    else:
        what = f"session {d.session.open_et:%H:%M}–{d.session.close_et:%H:%M} ET"
        if d.session.early_close:
            what += " (early close)"
    return f"## Day {d.number} — {d.date:%A %Y-%m-%d} — {what}"


def _day_section(report: Report, d: DayReport) -> list[str]:
    sections = (
        ("Auto-start", _auto_start(d)),
        ("Overnight logs", _overnight(report, d)),
        ("Strategy signals", _signals(d)),
        ("Orders and fills", _orders(d)),
        ("Gateway restart and reconnection", _gateway(d)),
        ("End-of-day summary", _end_of_day(d, {
            (p.level, p.source, p.pattern, p.kind): p.repeated for p in report.patterns})),
        ("Issues found", _issues(d.issues)),
    )
    out = [_day_title(d), ""]
    for title, body in sections:
        out += [f"### {title}", "", *body, ""]
    return out


def _run_label(run: Run) -> str:
    mode = run.mode or "mode unknown"
    pid = run.startup.fields.get("pid") if run.startup is not None else None
    return f"run #{run.number}, {mode}" + (f", pid {pid}" if pid is not None else "")


def _auto_start(d: DayReport) -> list[str]:
    out: list[str] = []
    if d.running_at_midnight is not None and d.running_at_midnight not in d.starts:
        run = d.running_at_midnight
        since = "before the logs begin" if run.startup is None else fmt_et(run.start)
        out.append(f"- Already running at 00:00 ET: {_run_label(run)}, up since {since}; "
                   "no start needed.")
    confirmations = {c.run.number: c for c in d.confirmations}
    for run in d.starts:
        out.append(f"- {_hms(run.start)}: **{run.start_kind.value}** ({_run_label(run)})")
        conf = confirmations.get(run.number)
        if conf is None:
            continue
        said = " · ".join(f"`{x}`" for x in (conf.config_text, conf.mode_text) if x)
        if conf.ok:
            out.append(f"  - Mode confirmed: {said}")
        else:
            problems = "; ".join(conf.mismatches + conf.missing)
            out.append(f"  - Mode confirmation **failed**: {problems}" +
                       (f" (log said {said})" if said else ""))
    if not out:
        out.append("- Not running on this day.")
    return out


def _overnight(report: Report, d: DayReport) -> list[str]:
    night = overnight(report, d.date)
    window = f"{fmt_et(night.start)} → {_hms(night.end)}"
    if night.up_s == 0 and not night.levels:
        return [f"- {window}: the bot was not running (nothing logged)."]
    levels = ", ".join(f"{k} {n}" for k, n in sorted(night.levels.items())) or "no log line"
    out = [f"- {window}: up {night.up_s / 3600:.1f} h; log lines: {levels}"]
    for run in night.stops:
        out.append(f"- {_hms(run.end)} run #{run.number}: {run.end_text()}")
    for run in night.starts:
        out.append(f"- {_hms(run.start)} run #{run.number}: {run.start_kind.value}")
    for o in night.outages:
        kind = "scheduled" if o.expected else "unexpected"
        out.append(f"- {_hms(o.start)} Gateway link lost ({kind}: {o.reason}), "
                   f"{_duration(o.duration_s)}")
    if night.patterns:
        for (level, source, pattern), n in night.patterns.most_common(MAX_LISTED):
            out.append(f"- {level} ×{n} [{source}] {pattern}")
        if len(night.patterns) > MAX_LISTED:
            out.append(f"- … and {len(night.patterns) - MAX_LISTED} more pattern(s)")
    else:
        out.append("- Quiet: no warning or error.")
    return out


def _signals(d: DayReport) -> list[str]:
    if not d.signal_events:
        return ["- No signal." + (" Bars received: " + str(d.bars) if d.is_session else "")]
    out = [f"- Bars received: {d.bars}"]
    by_strategy: dict[str, Counter[str]] = {}
    for (strategy, kind), n in d.signals.items():
        by_strategy.setdefault(strategy, Counter())[kind] = n
    for strategy in sorted(by_strategy):
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(by_strategy[strategy].items()))
        out.append(f"- Strategy {strategy}: {kinds}")
    notable = [e for e in d.signal_events if e.get_str("kind") != "decision"]
    decisions = [e for e in d.signal_events if e.get_str("kind") == "decision"]
    for e in decisions[:3] + notable[:MAX_LISTED]:
        reasons = e.fields.get("reasons")
        why = "; ".join(str(r) for r in reasons) if isinstance(reasons, list) else ""
        what = " ".join(x for x in (e.get_str("symbol"), e.get_str("direction")) if x)
        out.append(f"  - {_hms(e.ts)} {e.get_str('kind')} {e.get_str('strategy')} "
                   f"{what}".rstrip() + (f" — {why}" if why else ""))
    hidden = max(0, len(notable) - MAX_LISTED) + max(0, len(decisions) - 3)
    if hidden:
        out.append(f"  - … and {hidden} more")
    return out


def _orders(d: DayReport) -> list[str]:
    o = d.orders
    if not (o.intents or o.submitted or o.rejected or o.fills or o.statuses):
        return ["- No order."]
    rejected = sum(o.rejected.values())
    out = [f"- Intents {o.intents}, submitted {o.submitted}, rejected {rejected}, "
           f"fills {len(o.fills)}"]
    if o.rejected:
        out.append("- Rejections: " + ", ".join(f"{r} ×{n}" for r, n in o.rejected.items()))
    if o.statuses:
        out.append("- Statuses: " + ", ".join(f"{s} {n}" for s, n in sorted(o.statuses.items())))
    commission = 0.0
    for e in o.fills[:MAX_LISTED]:
        out.append(f"  - {_hms(e.ts)} {e.get_str('side')} {e.fields.get('quantity')} "
                   f"{e.get_str('contract')} @ {e.fields.get('price')} "
                   f"({e.get_str('mode')}, ref {e.get_str('order_ref')})")
    for e in o.fills:
        commission += e.get_float("commission") or 0.0
    if len(o.fills) > MAX_LISTED:
        out.append(f"  - … and {len(o.fills) - MAX_LISTED} more fills")
    if o.fills:
        out.append(f"- Commission total: {commission:.2f}")
    return out


def _outage_lines(o: Outage, session: Session | None) -> list[str]:
    kind = "Scheduled restart (expected)" if o.expected else "Unexpected disconnect"
    back = _hms(o.end) if o.end is not None else "—"
    out = [f"- **{kind}**, run #{o.run}: lost {_hms(o.start)} → back {back}, "
           f"**{_duration(o.duration_s)}**"]
    if o.down is not None:
        out.append(f"  - {_hms(o.start)} link_down: {o.reason}")
    for e in o.restarts:
        expected = "expected" if e.get_bool("expected") else "UNEXPECTED"
        out.append(f"  - {_hms(e.ts)} actor_restart {e.get_str('path')} "
                   f"(incarnation {e.fields.get('incarnation')}, {expected}): "
                   f"{e.get_str('reason')}")
    if o.up is not None:
        accounts = o.up.fields.get("accounts")
        acc = ",".join(str(a) for a in accounts) if isinstance(accounts, list) else "?"
        out.append(f"  - {_hms(o.up.ts)} link_up: session {o.up.fields.get('session')}, "
                   f"server_version {o.up.fields.get('server_version')}, connect "
                   f"{o.up.fields.get('connect_ms')} ms, accounts {acc}")
    if o.first_bar is not None:
        out.append(f"  - {_hms(o.first_bar.ts)} bars flowing again "
                   f"({o.first_bar.get_str('symbol')}, {o.first_bar.get_str('source')})")
    elif o.end is not None and session is not None and session.contains(o.end):
        out.append(f"  - **no bar within {th.BARS_RESUME_LOOKAHEAD_MIN:g} min of reconnecting "
                   "during the session**")
    return out


def _gateway(d: DayReport) -> list[str]:
    if not d.outages:
        return ["- No Gateway disconnect."]
    out: list[str] = []
    for o in d.outages:
        out += _outage_lines(o, d.session)
    return out


def _end_of_day(d: DayReport, repeated: dict[tuple[str, str, str, str], bool]) -> list[str]:
    out: list[str] = []
    if d.daily_summary is not None:
        f = d.daily_summary.fields
        out.append(f"- Daily summary ({f.get('date')}): trades {f.get('trades')}, P&L "
                   f"{f.get('pnl')}, PDT day trades left {f.get('pdt_left')}, rejections "
                   f"{f.get('rejections')}")
    cover = d.session_cover
    out.append(f"- Uptime {d.uptime_s / 3600:.1f} h" +
               (f"; regular session covered {cover:.0%}" if cover is not None else ""))
    for run in d.stops:
        out.append(f"- {_hms(run.end)} run #{run.number}: {run.end_text()}")
    levels = ", ".join(f"{k} {d.levels[k]}" for k in ("INFO", "WARNING", "ERROR", "CRITICAL"))
    out.append(f"- Log lines: {levels} ({d.explained_warnings} warning(s) explained by the "
               "scheduled Gateway restart)")
    if d.patterns:
        out.append("- Warnings and errors by pattern:")
        ranked = sorted(d.patterns.items(), key=lambda item: -item[1])
        for (level, source, pattern, kind), n in ranked[:MAX_LISTED]:
            label = "WARNING (actor restart)" if kind == "actor_restart" else level
            flag = " — repeated" if repeated.get((level, source, pattern, kind)) else ""
            out.append(f"  - {label} ×{n} [{source}] {pattern}{flag}")
        if len(ranked) > MAX_LISTED:
            out.append(f"  - … and {len(ranked) - MAX_LISTED} more pattern(s)")
    if d.alerts:
        out.append("- Alerts: " + ", ".join(f"{k} {n}" for k, n in sorted(d.alerts.items())))
    if d.notify:
        out.append("- Notifications: " + ", ".join(f"{k} {n}" for k, n in
                                                  sorted(d.notify.items())))
    for e in d.halts:
        out.append(f"- {_hms(e.ts)} halt: {e.get_str('reason')} ({e.get_str('state')})")
    for e in d.resumes:
        out.append(f"- {_hms(e.ts)} resume: {e.get_str('reason')} ({e.get_str('state')})")
    slope = d.rss_slope
    if d.samples:
        out.append(f"- Resources: CPU average {_num(d.cpu_avg, '.2f')} %, RSS "
                   f"{_num(d.rss_first)} → {_num(d.rss_last)} MB (slope "
                   f"{_num(slope.mb_per_hour if slope else None, '+.2f')} MB/h), log dir "
                   f"{_num(d.log_dir_mb)} MB ({len(d.samples)} samples)")
    else:
        out.append("- Resources: no sample")
    return out


def _issues(issues: list[Issue]) -> list[str]:
    if not issues:
        return ["- None."]
    return [f"- **{i.severity.value}** {i.text}" for i in issues]


def _summary(report: Report) -> list[str]:
    starts = [r for r in report.runs if r.startup is not None]
    kinds = Counter(r.start_kind for r in starts)
    expected = [o for o in report.outages if o.expected]
    unexpected = [o for o in report.outages if not o.expected]
    failing = [p for p in report.patterns if p.fails_criterion]
    span = report.logset.span()
    assert span is not None
    span_h = (span[1] - span[0]).total_seconds() / 3600

    def outage_stats(items: list[Outage]) -> str:
        done = sorted(o.duration_s for o in items if o.duration_s is not None)
        if not done:
            return f"{len(items)}"
        median = done[len(done) // 2]
        return (f"{len(items)} (reconnect median {_duration(median)}, longest "
                f"{_duration(done[-1])}, not reconnected {len(items) - len(done)})")

    severities = Counter(i.severity for d in report.days for i in d.issues)
    out = ["## Stability summary", ""]
    out.append(f"- Days monitored: {len(report.days)} ({report.days[0].date} → "
               f"{report.days[-1].date}), session days {sum(d.is_session for d in report.days)},"
               f" complete sessions judged {len(report.expected_session_days)}")
    out.append(f"- Uptime: {report.uptime_h:.1f} h of {span_h:.1f} h logged")
    out.append(f"- Starts: {len(starts)} (scheduled {kinds[StartKind.SCHEDULED]}, after crash "
               f"{kinds[StartKind.AFTER_CRASH]}, operator restart "
               f"{kinds[StartKind.OPERATOR_RESTART]})")
    out.append(f"- Manual interventions: {len(report.manual_interventions)}"
               + "".join(f"\n  - {m}" for m in report.manual_interventions))
    out.append(f"- Crashes: {len(report.crashes)}"
               + "".join(f"\n  - run #{r.number}: {r.end_text()}" for r in report.crashes))
    out.append(f"- Gateway disconnects: scheduled {outage_stats(expected)}; unexpected "
               f"{outage_stats(unexpected)}")
    out.append(f"- Error patterns: {len(failing)} failing criterion 6 "
               f"({len(report.patterns)} warning/error pattern(s) in all)")
    out.append("- Issues: " + (", ".join(f"{s.value} {severities[s]}" for s in Severity
                                        if severities[s]) or "none"))
    for issue in report.global_issues:
        out.append(f"- **{issue.severity.value}** {issue.text}")
    out += ["", "### The six criteria", "", "| # | Criterion | Result | Evidence |",
            "|---|---|---|---|"]
    for c in report.criteria:
        evidence = "<br>".join(_cell(e) for e in c.evidence[:MAX_LISTED])
        if len(c.evidence) > MAX_LISTED:
            evidence += f"<br>… and {len(c.evidence) - MAX_LISTED} more"
        out.append(f"| {c.number} | {c.name} | {'PASS' if c.passed else '**FAIL**'} "
                   f"| {evidence} |")
    out += ["", verdict_line(report), ""]
    return out


def _definitions() -> list[str]:
    return [
        "## How this report decides", "",
        "- Days are US/Eastern dates. A *run* is one process, from its `startup` event to its "
        "`shutdown` event (or its last record).",
        "- *Crash*: a run that ended uncleanly — `shutdown` with clean=false or a non-zero "
        "exit code, or no `shutdown` at all before the next `startup`. An unexpected "
        "`actor_restart` is not a crash (the supervisor handled it); it counts as a warning "
        "pattern.",
        "- *Manual intervention*: a `kill_switch` event, or an *operator restart* — a start "
        "that is not the first of its ET day and does not follow a crash.",
        "- *Signals generated*: every session day whose regular session lies inside the logged"
        " period has the bot running, bars, and at least one `signal` of kind entry or "
        "decision.",
        "- *Notifications working*: at least one `notify` with outcome sent or logged, and no "
        "critical notification failed or dropped.",
        f"- *Resources stable*: CPU average under the threshold; RSS slope (pooled within runs, "
        f"after a {th.RSS_WARMUP_MINUTES:g}-minute warm-up, runs of ≥ "
        f"{th.RSS_SLOPE_MIN_SPAN_HOURS:g} h) at most the threshold; log directory under the "
        "threshold.",
        f"- *Error patterns*: a message with its numbers and ids masked. It fails criterion 6 "
        f"when an ERROR/CRITICAL pattern or an unexpected actor restart repeats (≥ "
        f"{th.PATTERN_REPEAT_MIN_COUNT} times or on ≥ {th.PATTERN_REPEAT_MIN_DAYS} days), or "
        f"a WARNING pattern storms (≥ {th.WARNING_STORM_PER_DAY} in one day). WARNING lines "
        f"within {th.EXPECTED_MATCH_WINDOW_S:g} s of an expected event (the scheduled Gateway "
        "restart) are not counted.",
        "- Severities: CRITICAL = the process or the money path is in doubt (crash, mode "
        "contradiction, lost critical notification); MAJOR = an operator must act (manual "
        "intervention, repeated errors, long outage in session, no signals); MODERATE = "
        "handled but worth a look; ADVISORY = for the record.",
        "",
    ]
