"""`python -m tools.replay`: the brain over recorded bars, no Gateway; a backtest with a report.

    python -m tools.replay --bars spy_1m_....csv --vix vix_....csv --out replay.jsonl
        [--gameplan plan.json] [--equity 600] [--no-dry-run] [--decisions decisions.jsonl]
        [--report DIR] [--option-quotes quotes.csv] [--sweep spec.json]

`--out` writes one JSON line per bar per symbol (ts, symbol, close, rsi, ema_fast, ema_slow,
vwap, bb_upper, bb_mid, bb_lower - null while warming up - the strategy in force, and any
signal or exit), then one summary line, which is also printed. `--report DIR` writes the
backtest report (DIR/index.html, self-contained; equity.png, trades.csv, stats.json: see
docs/BACKTEST.md) and prints a short human summary and the page's path; with `--report` (or
`--sweep`) `--out` is optional. The symbol comes from the file name (`spy_...csv` -> SPY)
unless `--symbol` names it. Bar CSVs are `timestamp,open,high,low,close,volume` with
bar-START timestamps that carry their UTC offset (shared/data's format); the bar length is
inferred.

`--vix` takes intraday VIX bars (same format; a reading is a bar's close at the bar's end) or
CBOE's daily file (`date,open,high,low,close`): then each session sees its OPEN from 09:30
ET and the previous close before, never the day's high, low or close (doctrine/vix_daily.py).
Without --vix, a daily VIX file beside the bars (`vix_daily_*.csv`, as in shared/data) is used
and said on stderr; with none there (or `--no-vix`) there is no VIX: Strategy C throughout,
as the live bot would do. `--vix-constant X` is a backtesting aid.

The gameplan's date check: replay treats every replayed session as "today" and applies the
given plan to each one with its date rewritten (said on stderr); the operator check is not
applied. Without --gameplan a default plan lets the VIX rules choose, on the given symbols.

Exit codes: 0 done; 2 bad arguments or unreadable input (one line naming the problem).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.gameplan import Gameplan, GameplanError, read_gameplan
from doctrine.affordability import check_affordability
from doctrine.dry_run import FillModel
from doctrine.option_quotes import QuoteSource
from doctrine.replay import RawBar, ReplayConfig, ReplayEngine, replay_all, run_replay
from doctrine.sessions import et_date_of
from doctrine.vix_daily import DailyVix
from tools.backtest.inputs import (
    EXPECTED_HEADER,
    InputError,
    infer_bar_seconds,
    read_bar_columns,
    read_bars_csv,
    read_option_quotes,
    read_vix,
    symbol_from_filename,
)

__all__ = ["EXPECTED_HEADER", "InputError", "infer_bar_seconds", "main", "read_bars_csv",
           "replay_files", "symbol_from_filename"]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m tools.replay", description=(
        "Replay recorded bars through the indicators, the strategy selection, the signals and "
        "the dry-run money path on a virtual clock; optionally write a backtest report."))
    ap.add_argument("--bars", action="append", required=True, type=Path,
                    help="bars CSV (repeat for several symbols)")
    ap.add_argument("--symbol", action="append", default=None,
                    help="symbol of the matching --bars (default: from the file name)")
    ap.add_argument("--vix", type=Path, default=None,
                    help="VIX: intraday bars CSV, or CBOE's daily file (date,open,high,low,close)")
    ap.add_argument("--no-vix", action="store_true",
                    help="no VIX even if a daily VIX file lies beside the bars (Strategy C)")
    ap.add_argument("--vix-constant", type=float, default=None,
                    help="backtesting aid: a constant VIX, observed at every bar")
    ap.add_argument("--gameplan", type=Path, default=None,
                    help="gameplan JSON applied to every replayed session (date rewritten)")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON lines output (required unless --report or --sweep)")
    ap.add_argument("--decisions", type=Path, default=None,
                    help="also write every strategy decision as JSON lines here")
    ap.add_argument("--report", type=Path, default=None, metavar="DIR",
                    help="write the backtest report (index.html, equity.png, trades.csv, "
                         "stats.json) into DIR")
    ap.add_argument("--no-charts", action="store_true", help="report without the PNG")
    ap.add_argument("--option-quotes", type=Path, default=None, metavar="CSV",
                    help="recorded option quotes (timestamp,contract,bid,ask[,volume,"
                         "open_interest]) instead of the Black-Scholes model")
    ap.add_argument("--sweep", type=Path, default=None, metavar="SPEC",
                    help="JSON sweep spec: grid over strategy_parameters, walk-forward "
                         "(see docs/BACKTEST.md); the ranked table goes into --report")
    ap.add_argument("--jobs", type=int, default=None,
                    help="sweep worker processes (default: the machine's cores)")
    ap.add_argument("--equity", type=float, default=600.0, help="starting equity in dollars")
    ap.add_argument("--max-position-pct", type=float, default=0.20,
                    help="the account's MAX_POSITION_PCT")
    ap.add_argument("--slippage", type=float, default=0.0,
                    help="dry-run slippage per share, added to buys and taken off sells")
    ap.add_argument("--no-dry-run", action="store_true",
                    help="signals only: no option choice, sizing or simulated fills")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.out is None and args.report is None and args.sweep is None:
        print("replay: --out JSONL is required unless --report DIR or --sweep SPEC is given",
              file=sys.stderr)
        return 2
    try:
        if args.sweep is not None:
            from tools.backtest.sweep import run_sweep_cli

            return run_sweep_cli(args)
        summary = replay_files(args)
    except InputError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    if args.report is None:
        print(json.dumps(summary, separators=(",", ":")))
    return 0


@dataclass
class Inputs:
    """Everything read from the command line's files, validated."""

    bars: dict[str, Sequence[RawBar]]
    bar_seconds: int
    vix_bars: list[RawBar] | None
    vix_seconds: int | None
    vix_daily: DailyVix | None
    plan: Gameplan | None
    quotes: QuoteSource | None
    config: ReplayConfig

    def engine(self, plan: Gameplan | None = None) -> ReplayEngine:
        return ReplayEngine(sorted(self.bars), plan=plan if plan is not None else self.plan,
                            config=self.config, vix_daily=self.vix_daily, quotes=self.quotes)

    @property
    def vix_kind(self) -> str:
        return ("constant" if self.config.vix_constant is not None
                else "daily" if self.vix_daily is not None
                else "file" if self.vix_bars is not None else "none")


def read_inputs(args: argparse.Namespace, *, quiet: bool = False) -> Inputs:
    paths: list[Path] = args.bars
    symbols: list[str] = args.symbol or []
    if symbols and len(symbols) != len(paths):
        raise InputError(f"--symbol given {len(symbols)} time(s) for {len(paths)} --bars")
    names = [s.upper() for s in symbols] or [symbol_from_filename(p) for p in paths]
    if len(set(names)) != len(names):
        raise InputError(f"two --bars files for the same symbol: {names}")
    bars = {name: read_bar_columns(path) for name, path in zip(names, paths, strict=True)}
    lengths = {name: infer_bar_seconds(series) for name, series in bars.items()}
    if len(set(lengths.values())) != 1:
        raise InputError(f"bar lengths differ between files: {lengths}")
    bar_seconds = next(iter(lengths.values()))
    if args.vix is None and args.vix_constant is None and not args.no_vix:
        args.vix = daily_vix_beside(paths[0])
        if args.vix is not None and not quiet:
            print(f"replay: no --vix: using the daily VIX file beside the bars, {args.vix} "
                  "(--no-vix to replay without one)", file=sys.stderr)
    starts = [series[0][0] for series in bars.values() if series]
    ends = [series[-1][0] for series in bars.values() if series]
    first = et_date_of(min(starts)) if starts else None
    last = et_date_of(max(ends)) if ends else None
    vix = read_vix(args.vix, first=first, last=last) if args.vix is not None else None
    vix_bars = vix if isinstance(vix, list) else None
    vix_daily = vix if isinstance(vix, DailyVix) else None
    vix_seconds = infer_bar_seconds(vix_bars) if vix_bars else None
    if not (args.equity > 0):
        raise InputError(f"--equity must be positive, got {args.equity}")
    quotes = read_option_quotes(args.option_quotes) if args.option_quotes else None

    def say(text: str) -> None:
        if not quiet:
            print(f"replay: {text}", file=sys.stderr)

    plan = None
    if args.gameplan is not None:
        try:
            plan = read_gameplan(args.gameplan)
        except GameplanError as exc:
            raise InputError(str(exc)) from None
        say(f"gameplan {plan.session_id} ({args.gameplan}) applied to every replayed "
            f"session with its date rewritten; operator check not applied")
    else:
        say(f"no --gameplan: default plan (VIX rules choose, symbols {sorted(bars)})")
    if vix is None and args.vix_constant is None:
        say("no --vix: VIX missing, Strategy C throughout (fail closed)")
    if vix_daily is not None:
        say(f"--vix is a daily file ({vix_daily.first_day}..{vix_daily.last_day}): each "
            f"session sees its 09:30 open, never its high, low or close")

    config = ReplayConfig(equity=args.equity, account_max_position_pct=args.max_position_pct,
                          dry_run=not args.no_dry_run, fill=FillModel(slippage=args.slippage),
                          bar_seconds=bar_seconds, vix_constant=args.vix_constant)
    # the bot's warning at start and in --check, with the replay's own equity and fees: a
    # backtest that can afford no contract says so before it prints zero trades
    warning = check_affordability(
        plan, equity=args.equity, account_max_position_pct=args.max_position_pct,
        prices={symbol: series[0][4] for symbol, series in bars.items() if series},
        fee_per_contract=2 * config.fill.commission_per_contract).warning()
    if warning is not None:
        say(f"warning: {warning}")
    return Inputs(bars=bars, bar_seconds=bar_seconds, vix_bars=vix_bars,
                  vix_seconds=vix_seconds, vix_daily=vix_daily, plan=plan, quotes=quotes,
                  config=config)


def daily_vix_beside(bars: Path) -> Path | None:
    """CBOE's daily VIX file in the bars' folder (`vix_daily_*.csv`, the newest name), so the
    bundled SPY sessions replay with the VIX they need by default (the file is pointed to,
    never copied into the project)."""
    found = sorted(bars.resolve().parent.glob("vix_daily_*.csv"))
    return found[-1] if found else None


def replay_files(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    inputs = read_inputs(args)
    engine = inputs.engine()
    if args.out is not None:
        records = run_replay(engine, inputs.bars, inputs.vix_bars, inputs.vix_seconds)
        try:
            out = args.out.open("w", encoding="utf-8", newline="\n")
        except OSError as exc:
            raise InputError(f"{args.out}: cannot write: {exc.strerror or exc}") from None
        with out:
            write = out.write
            for record in records:
                write(record.to_json())
                write("\n")
            summary = _summary(engine, inputs)
            write(json.dumps(summary, separators=(",", ":")))
            write("\n")
    else:
        replay_all(engine, inputs.bars, inputs.vix_bars, inputs.vix_seconds)
        summary = _summary(engine, inputs)
    if args.decisions is not None:
        with args.decisions.open("w", encoding="utf-8", newline="\n") as dec:
            for d in engine.decisions:
                dec.write(json.dumps(d.to_json_dict(), separators=(",", ":")) + "\n")
    if args.report is not None:
        from tools.backtest.run import report_for

        page, stats = report_for(args, inputs, engine)
        print(human_summary(stats, inputs, page, time.perf_counter() - started))
    return summary


def _summary(engine: ReplayEngine, inputs: Inputs) -> dict[str, Any]:
    summary = engine.summary()
    summary["vix"] = inputs.vix_kind
    return summary


def human_summary(stats: dict[str, Any], inputs: Inputs, page: Path, seconds: float) -> str:
    o = stats["overall"]
    start = stats["starting_equity"]
    win = "-" if o["win_rate"] is None else f"{o['win_rate'] * 100:.1f} %"
    sharpe = "-" if o["sharpe"] is None else f"{o['sharpe']:.2f}"
    holds = ", ".join(f"{h['symbol']} {h['return_pct'] * 100:+.2f} %"
                      for h in stats["buy_and_hold"])
    sb = stats["strategy_bars"]
    lines = [
        f"backtest {', '.join(sorted(inputs.bars))} {stats['first_day']}..{stats['last_day']}: "
        f"{stats['sessions']} sessions, {stats['bars']:,} bars, VIX {inputs.vix_kind}; "
        f"bars under A/B/C {sb['A']:,}/{sb['B']:,}/{sb['C']:,}",
        f"  {o['trades']} trades, win rate {win}, net ${o['net_pnl']:,.2f} "
        f"({o['net_pnl'] / start * 100:+.1f} % of ${start:,.0f}), max drawdown "
        f"${o['max_drawdown']:,.2f}, Sharpe {sharpe}",
        f"  buy and hold: {holds or '-'}",
        f"  report: {page}  ({seconds:.2f} s)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
