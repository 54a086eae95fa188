"""`python -m tools.bench_brain`: latency of Bar -> snapshot -> decision, replay throughput.

    python -m tools.bench_brain [--bars CSV] [--repeat 3]

Latency is measured per bar, in process, over the 63-session SPY file: a validated `Bar`
message in, the Indicators step (`IndicatorSet.update` -> `IndicatorSnapshot` message), a
VIX reading and the StrategySelector step (`SelectionState.evaluate` -> `StrategyDecision`),
then the entry check (`evaluate_entry` -> signal or None). That is what one live bar costs
the two brain actors, channels aside. Goal: p99 <= 200 us.

Throughput is replay's, in bars per second on one core (best of --repeat runs), for the
engine alone and for the whole CLI path (CSV parsing, engine, JSON lines to a file). Goal:
>= 100,000 bars/s. The 63-session file has no VIX, so the runs with signals feed a constant
VIX (15 -> Strategy A, 20 -> B) as `--vix-constant` does.

Prints a markdown table. Numbers depend on the machine: run it on the target box.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from config.market_calendar import get_calendar
from doctrine.indicators import IndicatorSet
from doctrine.replay import RawBar, ReplayConfig, ReplayEngine, default_plan, run_replay
from doctrine.selection import SelectionState
from doctrine.sessions import SessionClock, et_epoch
from doctrine.signals import EntryRules, evaluate_entry
from messages.market import Bar
from tools.replay import read_bars_csv

DEFAULT_BARS = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
                / "spy_1m_src-leoxu2023_2024-02-20_2024-05-17_rth.csv")


def measure_latency(bars: Sequence[RawBar], vix: float = 15.0) -> list[float]:
    """Per-bar microseconds of Bar -> IndicatorSnapshot -> StrategyDecision -> entry check."""
    calendar = get_calendar()
    messages = [Bar(symbol="SPY", ts=dt.datetime.fromtimestamp(b[0], dt.UTC), open=b[1],
                    high=b[2], low=b[3], close=b[4], volume=b[5]) for b in bars]
    indicators = IndicatorSet("SPY", sessions=SessionClock(calendar))
    selection = SelectionState()
    plan_template = default_plan(["SPY"], dt.date(2000, 1, 3))
    rules = EntryRules(plan_template)
    day: dt.date | None = None
    out: list[float] = []
    clock = time.perf_counter_ns
    for bar in messages:
        start = clock()
        snap = indicators.update(bar)
        end = snap.end
        if snap.session_date is not None and snap.session_date != day:
            day = snap.session_date
            selection.set_plan(plan_template.for_day(day), at=et_epoch(day, dt.time(9)))
        selection.set_vix(vix, end)
        decision = selection.evaluate(end)
        session = calendar.session(snap.session_date) if snap.session_date else None
        evaluate_entry(snap, decision.strategy, rules,
                       session_close_s=session.close.timestamp() if session else None,
                       multiplier=decision.size_multiplier)
        out.append((clock() - start) / 1000.0)
    return out


def best_rate(count: int, run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return count / best


def engine_run(bars: Sequence[RawBar], *, vix: float | None, dry_run: bool) -> Callable[[], None]:
    def run() -> None:
        engine = ReplayEngine(["SPY"], config=ReplayConfig(vix_constant=vix, dry_run=dry_run,
                                                           equity=25_000.0))
        for _ in run_replay(engine, {"SPY": bars}):
            pass
    return run


def cli_run(path: Path, vix: float | None, out: Path) -> Callable[[], None]:
    def run() -> None:
        bars = read_bars_csv(path)
        engine = ReplayEngine(["SPY"], config=ReplayConfig(vix_constant=vix, equity=25_000.0))
        with out.open("w", encoding="utf-8", newline="\n") as handle:
            write = handle.write
            for record in run_replay(engine, {"SPY": bars}):
                write(record.to_json())
                write("\n")
    return run


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench_brain")
    ap.add_argument("--bars", type=Path, default=DEFAULT_BARS.resolve())
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    if not args.bars.is_file():
        print(f"bench_brain: {args.bars} not found", file=sys.stderr)
        return 2
    get_calendar()
    bars = read_bars_csv(args.bars)
    n = len(bars)
    print(f"bars: {n} from {args.bars.name}; python {sys.version.split()[0]}; best of "
          f"{args.repeat}\n")

    measure_latency(bars[:2000])  # warm caches and the calendar
    lat = measure_latency(bars)
    print("| Bar -> snapshot -> decision -> entry check | us |")
    print("|---|---|")
    print(f"| p50 | {statistics.median(lat):.1f} |")
    print(f"| p99 | {percentile(lat, 0.99):.1f} |")
    print(f"| p99.9 | {percentile(lat, 0.999):.1f} |")
    print(f"| max | {max(lat):.1f} |\n")

    rows = [
        ("engine, no VIX (C: indicators + selection only)",
         engine_run(bars, vix=None, dry_run=True)),
        ("engine, VIX 15 (A), signals only", engine_run(bars, vix=15.0, dry_run=False)),
        ("engine, VIX 20 (B), signals only", engine_run(bars, vix=20.0, dry_run=False)),
        ("engine, VIX 15 (A), dry-run money path", engine_run(bars, vix=15.0, dry_run=True)),
    ]
    print("| replay throughput (one core) | bars/s |")
    print("|---|---|")
    for label, run in rows:
        print(f"| {label} | {best_rate(n, run, args.repeat):,.0f} |")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "replay.jsonl"
        for label, vix in (("CLI path: parse + engine + JSON lines, no VIX", None),
                           ("CLI path: parse + engine + JSON lines, VIX 15, dry run", 15.0)):
            print(f"| {label} | {best_rate(n, cli_run(args.bars, vix, out), args.repeat):,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
