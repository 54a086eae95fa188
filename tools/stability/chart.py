"""The chart: CPU, RSS and the day's P&L over the run, with what happened marked on them.

The x axis spans the logged period (not whole calendar days: a 2.7-hour run fills the width).
One line segment per run (a restart breaks the line instead of drawing a fake drop). Marked on
every panel: process starts (grey dotted), crashes (red dashed), Gateway link losses (orange
band from loss to reconnect; a loss never reconnected runs to the end), halts (red triangles
at the top); on the P&L panel, fills (green up = buy, purple down = sell) on the cumulative
realised P&L.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from config.market_calendar import ET
from tools.stability.analysis import Report


def _naive_et(ts: dt.datetime) -> dt.datetime:
    return ts.astimezone(ET).replace(tzinfo=None)


def _span(report: Report) -> tuple[dt.datetime, dt.datetime] | None:
    span = report.logset.span()
    if span is None:
        return None
    start, end = span
    pad = max((end - start) * 0.02, dt.timedelta(minutes=1))
    return start - pad, end + pad


def _pnl_points(report: Report) -> list[tuple[dt.datetime, float, str]]:
    """(instant, cumulative realised P&L, side) per fill, in time order."""
    fills = sorted((e for d in report.days for e in d.orders.fills), key=lambda e: e.ts)
    total = 0.0
    points: list[tuple[dt.datetime, float, str]] = []
    for e in fills:
        total += e.get_float("realized_pnl") or 0.0
        points.append((e.ts, total, e.get_str("side") or "?"))
    return points


def write_chart(report: Report, path: Path) -> None:
    """Write the PNG to `path` (Agg backend: no display needed, safe in a scheduled task)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, (ax_cpu, ax_rss, ax_pnl) = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    axes = (ax_cpu, ax_rss, ax_pnl)
    try:
        _resources(report, ax_cpu, ax_rss)
        _pnl(report, ax_pnl)
        _markers(report, axes)
        span = _span(report)
        if span is not None:
            ax_pnl.set_xlim(_naive_et(span[0]), _naive_et(span[1]))
        locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
        ax_pnl.xaxis.set_major_locator(locator)
        ax_pnl.xaxis.set_major_formatter(
            mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        ax_pnl.set_xlabel("US/Eastern")
        for ax in axes:
            ax.grid(True, which="major", alpha=0.3)
        verdict = "GO" if report.go else "NO-GO"
        fig.suptitle(f"CPU, RSS and P&L — verdict {verdict}")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def _resources(report: Report, ax_cpu: Any, ax_rss: Any) -> None:
    by_run: dict[int, list[tuple[dt.datetime, float | None, float | None]]] = {}
    for s in report.samples:
        by_run.setdefault(s.run, []).append((_naive_et(s.ts), s.cpu_pct, s.rss_mb))
    for points in by_run.values():
        cpu = [(t, c) for t, c, _ in points if c is not None]
        rss = [(t, r) for t, _, r in points if r is not None]
        if cpu:
            ax_cpu.plot([p[0] for p in cpu], [p[1] for p in cpu], color="tab:blue", lw=1)
        if rss:
            ax_rss.plot([p[0] for p in rss], [p[1] for p in rss], color="tab:green", lw=1)
    threshold = report.thresholds.cpu_avg_max_pct
    ax_cpu.axhline(threshold, color="orange", ls="--", lw=0.8,
                   label=f"average limit {threshold:g} %")
    per = " per simulated s" if report.accelerated > 1 else ""
    ax_cpu.set_ylabel(f"CPU %{per}")
    ax_cpu.legend(loc="upper right", fontsize=8)
    ax_rss.set_ylabel("RSS MB")
    if not report.samples:
        ax_cpu.text(0.5, 0.5, "no resource samples", transform=ax_cpu.transAxes,
                    ha="center", va="center")


def _pnl(report: Report, ax: Any) -> None:
    points = _pnl_points(report)
    ax.set_ylabel("realised P&L USD")
    ax.axhline(0.0, color="grey", lw=0.6)
    if not points:
        ax.text(0.5, 0.5, "no fills", transform=ax.transAxes, ha="center", va="center")
        return
    times = [_naive_et(t) for t, _, _ in points]
    values = [v for _, v, _ in points]
    ax.step(times, values, where="post", color="black", lw=1)
    for (_, v, side), x in zip(points, times, strict=True):
        buy = side == "BUY"
        ax.plot([x], [v], marker="^" if buy else "v", color="tab:green" if buy else "tab:purple",
                ms=6, ls="none")
    ax.set_title(f"{len(points)} fill(s), realised {values[-1]:+,.2f} USD", fontsize=9)


def _markers(report: Report, axes: tuple[Any, ...]) -> None:
    span = _span(report)
    end = span[1] if span is not None else None
    for run in report.runs:
        for ax in axes:
            if run.startup is not None:
                ax.axvline(_naive_et(run.start), color="grey", ls=":", lw=0.8)
            if run.crashed:
                ax.axvline(_naive_et(run.end), color="red", ls="--", lw=1)
    for outage in report.outages:
        stop = outage.end or end
        if stop is None:
            continue
        for ax in axes:
            ax.axvspan(_naive_et(outage.start), _naive_et(stop), color="orange",
                       alpha=0.15 if outage.expected else 0.35, lw=0)
    halts = [e.ts for d in report.days for e in d.halts]
    for ax in axes:
        for ts in halts:
            ax.plot([_naive_et(ts)], [1.0], marker="v", color="red", ms=8,
                    transform=ax.get_xaxis_transform(), clip_on=False)
