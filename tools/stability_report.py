"""`python -m tools.stability_report LOGDIR [--out FILE]`: the daily stability report.

Reads the human log and events.jsonl in LOGDIR (rotated files included), writes the Markdown
report (default LOGDIR/stability_report.md) and a PNG chart of CPU and RSS beside it, and prints
the verdict line. Exit status: 0 GO, 1 NO-GO, 2 nothing to judge (bad LOGDIR, no records), so
the soak tool and a scheduler can act on the verdict without parsing the Markdown.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.stability.analysis import NoLogsError, Report, build_report
from tools.stability.chart import write_chart
from tools.stability.markdown import render, verdict_line
from tools.stability.thresholds import (
    CPU_AVG_MAX_PCT,
    LOG_DIR_MAX_MB,
    RSS_SLOPE_MAX_MB_PER_HOUR,
    Thresholds,
)

EXIT_GO = 0
EXIT_NO_GO = 1
EXIT_NOTHING_TO_JUDGE = 2


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.stability_report",
        description="Stability report and six-criteria GO / NO-GO verdict from the bot's logs.")
    parser.add_argument("logdir", type=Path, help="directory with crucible_bot.log* and "
                                                  "events.jsonl*")
    parser.add_argument("--out", type=Path, default=None,
                        help="Markdown file to write (default LOGDIR/stability_report.md); "
                             "the PNG chart goes beside it")
    parser.add_argument("--rss-slope-max", type=_positive, default=RSS_SLOPE_MAX_MB_PER_HOUR,
                        metavar="MB_PER_HOUR",
                        help=f"largest RSS growth still stable (default "
                             f"{RSS_SLOPE_MAX_MB_PER_HOUR:g})")
    parser.add_argument("--cpu-max", type=_positive, default=CPU_AVG_MAX_PCT, metavar="PCT",
                        help=f"CPU average limit (default {CPU_AVG_MAX_PCT:g})")
    parser.add_argument("--log-dir-max", type=_positive, default=LOG_DIR_MAX_MB, metavar="MB",
                        help=f"log directory size limit (default {LOG_DIR_MAX_MB:g})")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG")
    return parser.parse_args(argv)


def failure_reasons(report: Report) -> list[str]:
    """The measured reason of each failed criterion, for the terminal (the Markdown has all)."""
    return [f"  criterion {c.number} ({c.name}) failed: " + "; ".join(c.evidence)
            for c in report.criteria if not c.passed]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    thresholds = Thresholds(rss_slope_max_mb_per_hour=args.rss_slope_max,
                            cpu_avg_max_pct=args.cpu_max, log_dir_max_mb=args.log_dir_max)
    try:
        report = build_report(args.logdir, thresholds)
    except (NoLogsError, FileNotFoundError, NotADirectoryError) as exc:
        print(f"stability_report: {exc}", file=sys.stderr)
        return EXIT_NOTHING_TO_JUDGE
    out: Path = args.out if args.out is not None else args.logdir / "stability_report.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    chart = out.with_suffix(".png")
    if not args.no_chart:
        write_chart(report, chart)
    out.write_text(render(report, None if args.no_chart else chart.name), encoding="utf-8")
    print(verdict_line(report).replace("**", ""))
    for line in failure_reasons(report):
        print(line)
    print(f"report: {out}" + ("" if args.no_chart else f"  chart: {chart}"))
    return EXIT_GO if report.go else EXIT_NO_GO


if __name__ == "__main__":
    sys.exit(main())
