"""The CPU and RSS chart: where a person would rather look than read.

One line segment per run (a restart breaks the line instead of drawing a fake drop), run
starts as grey dotted verticals, crashes as red dashed ones, ET day boundaries as the x grid.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from config.market_calendar import ET
from tools.stability.analysis import Report


def _naive_et(ts: dt.datetime) -> dt.datetime:
    return ts.astimezone(ET).replace(tzinfo=None)


def write_chart(report: Report, path: Path) -> None:
    """Write the PNG to `path` (Agg backend: no display needed, safe in a scheduled task)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, (ax_cpu, ax_rss) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    try:
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
        for run in report.runs:
            if run.startup is not None:
                for ax in (ax_cpu, ax_rss):
                    ax.axvline(_naive_et(run.start), color="grey", ls=":", lw=0.8)
            if run.crashed:
                for ax in (ax_cpu, ax_rss):
                    ax.axvline(_naive_et(run.end), color="red", ls="--", lw=1)
        threshold = report.thresholds.cpu_avg_max_pct
        ax_cpu.axhline(threshold, color="orange", ls="--", lw=0.8,
                       label=f"average limit {threshold:g} %")
        ax_cpu.set_ylabel("CPU %")
        ax_cpu.legend(loc="upper right", fontsize=8)
        ax_rss.set_ylabel("RSS MB")
        ax_rss.set_xlabel("US/Eastern")
        if not report.samples:
            ax_cpu.text(0.5, 0.5, "no resource samples", transform=ax_cpu.transAxes,
                        ha="center", va="center")
        for ax in (ax_cpu, ax_rss):
            ax.grid(True, which="major", alpha=0.3)
        if report.days:
            ax_rss.set_xlim(_naive_et(report.days[0].start_utc),
                            _naive_et(report.days[-1].end_utc))
        ax_rss.xaxis.set_major_locator(mdates.DayLocator())  # type: ignore[no-untyped-call]
        ax_rss.xaxis.set_major_formatter(
            mdates.DateFormatter("%a %m-%d"))  # type: ignore[no-untyped-call]
        verdict = "GO" if report.go else "NO-GO"
        fig.suptitle(f"CPU and RSS per run — verdict {verdict}")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
