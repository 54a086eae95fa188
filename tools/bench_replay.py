"""`python -m tools.bench_replay`: end-to-end replay throughput, CSV in to report out, one core.

    python -m tools.bench_replay [--bars CSV] [--vix CSV] [--repeat 5]

Runs `tools.replay --bars CSV --vix CSV --equity 10000 --report DIR` in this process (the
dry-run money path on: option choice, sizing, fills, exits on every bar a position is open)
and reports bars per second of CPU time (`time.process_time`, best of --repeat: this machine
is shared, and CPU time is what one core spends). Phases are timed separately:

* fixed, once per process: building the NYSE calendar (exchange_calendars + pandas) and
  importing matplotlib; not per bar, so not in the rate;
* per run: reading the CSVs, the engine, the report without the PNG (stats, HTML,
  trades.csv, stats.json) = the rate's denominator; the PNG is timed on its own.

Goal (issue 16): >= 200,000 bars/s. Prints a markdown table for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from config.market_calendar import get_calendar
from doctrine.replay import ReplayEngine, replay_all
from tools.replay import build_parser, read_inputs
from tools.replay import main as replay_main

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
DEFAULT_BARS = DATA / "spy_1m_src-leoxu2023_2024-02-20_2024-05-17_rth.csv"
DEFAULT_VIX = DATA / "vix_daily_cboe_1990-01-02_2026-07-03.csv"


def cpu_best(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench_replay")
    ap.add_argument("--bars", type=Path, default=DEFAULT_BARS.resolve())
    ap.add_argument("--vix", type=Path, default=DEFAULT_VIX.resolve())
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    for path in (args.bars, args.vix):
        if not path.is_file():
            print(f"bench_replay: {path} not found", file=sys.stderr)
            return 2
    t0 = time.process_time()
    get_calendar()
    calendar_s = time.process_time() - t0
    t0 = time.process_time()
    import matplotlib.pyplot  # noqa: F401  (the fixed cost of the chart's import)
    mpl_s = time.process_time() - t0

    with tempfile.TemporaryDirectory() as tmp:
        base = ["--bars", str(args.bars), "--vix", str(args.vix), "--equity", "10000"]
        cli = [*base, "--report", str(Path(tmp) / "report")]
        parsed = build_parser().parse_args(base)
        inputs = read_inputs(parsed, quiet=True)
        bars = sum(len(b) for b in inputs.bars.values())

        def quiet(argv: list[str]) -> Callable[[], None]:
            def run() -> None:
                with contextlib.redirect_stdout(io.StringIO()), \
                        contextlib.redirect_stderr(io.StringIO()):
                    assert replay_main(argv) == 0
            return run

        def read() -> None:
            read_inputs(parsed, quiet=True)

        def engine() -> None:
            e = ReplayEngine(sorted(inputs.bars), config=inputs.config,
                             vix_daily=inputs.vix_daily)
            replay_all(e, inputs.bars)

        quiet([*cli, "--no-charts"])()                    # warm caches
        end_to_end = cpu_best(quiet([*cli, "--no-charts"]), args.repeat)
        with_png = cpu_best(quiet(cli), max(1, args.repeat // 2))
        reading = cpu_best(read, args.repeat)
        engine_s = cpu_best(engine, args.repeat)
    print(f"bars: {bars:,} ({args.bars.name}), VIX {args.vix.name}; python "
          f"{sys.version.split()[0]}; CPU time, best of {args.repeat}\n")
    print("| CSV in -> report out, dry-run money path, one core | CPU s | bars/s |")
    print("|---|---|---|")
    print(f"| end to end: read CSVs + engine + report (HTML, trades.csv, stats.json) | "
          f"{end_to_end:.3f} | {bars / end_to_end:,.0f} |")
    print(f"| of which reading the CSVs | {reading:.3f} | {bars / reading:,.0f} |")
    print(f"| of which the engine (brain + dry-run money path) | {engine_s:.3f} | "
          f"{bars / engine_s:,.0f} |")
    print(f"| end to end with the equity PNG | {with_png:.3f} | {bars / with_png:,.0f} |")
    print(f"| fixed, once per process: NYSE calendar / matplotlib import | "
          f"{calendar_s:.2f} / {mpl_s:.2f} | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
