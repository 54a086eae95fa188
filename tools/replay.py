"""`python -m tools.replay`: the brain over recorded bars, no Gateway; doubles as a backtest.

    python -m tools.replay --bars spy_1m_....csv --vix vix_1m_....csv --out replay.jsonl
        [--gameplan plan.json] [--equity 600] [--no-dry-run] [--decisions decisions.jsonl]

Writes one JSON line per bar per symbol (ts, symbol, close, rsi, ema_fast, ema_slow, vwap,
bb_upper, bb_mid, bb_lower - null while warming up - the strategy in force, and any signal
or exit), then one summary line (signals per strategy, trades, P&L of the dry run), which is
also printed. The symbol comes from the file name (`spy_...csv` -> SPY) unless `--symbol`
names it. CSVs are `timestamp,open,high,low,close,volume` with bar-START timestamps that
carry their UTC offset (shared/data's format); the bar length is inferred.

The gameplan's date check: replay treats every replayed session as "today" and applies the
given plan to each one with its date rewritten (said on stderr); the operator check is not
applied. Without --gameplan a default plan lets the VIX rules choose, on the given symbols.
Without --vix (or --vix-constant, a backtesting aid) there is no VIX: Strategy C throughout,
as the live bot would do.

Exit codes: 0 done; 2 bad arguments or unreadable input (one line naming the problem).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from config.gameplan import GameplanError, read_gameplan
from doctrine.dry_run import FillModel
from doctrine.replay import RawBar, ReplayConfig, ReplayEngine, run_replay

EXPECTED_HEADER = ["timestamp", "open", "high", "low", "close", "volume"]


class InputError(Exception):
    """Bad input: reported as one line, exit code 2."""


def read_bars_csv(path: Path) -> list[RawBar]:
    """Bars from a CSV, as (start epoch s, open, high, low, close, volume), ascending."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    out: list[RawBar] = []
    with handle:
        header = handle.readline().strip().lower().split(",")
        if header != EXPECTED_HEADER:
            raise InputError(f"{path}: header must be {','.join(EXPECTED_HEADER)}, "
                             f"got {','.join(header)}")
        fromiso = dt.datetime.fromisoformat
        last = float("-inf")
        for lineno, line in enumerate(handle, start=2):
            if not line.strip():
                continue
            parts = line.rstrip("\r\n").split(",")
            try:
                when = fromiso(parts[0])
                if when.tzinfo is None:
                    raise ValueError("timestamp has no UTC offset")
                ts = when.timestamp()
                bar = (ts, float(parts[1]), float(parts[2]), float(parts[3]), float(parts[4]),
                       float(parts[5]) if len(parts) > 5 and parts[5] else 0.0)
            except (ValueError, IndexError) as exc:
                raise InputError(f"{path}:{lineno}: {exc}") from None
            if ts <= last:
                raise InputError(f"{path}:{lineno}: timestamps must be ascending, unique")
            last = ts
            out.append(bar)
    return out


def infer_bar_seconds(bars: Sequence[RawBar]) -> int:
    """The smallest step between consecutive bars (60 for 1-minute files)."""
    steps = [round(b[0] - a[0]) for a, b in itertools.pairwise(bars) if b[0] - a[0] > 0]
    return min(steps) if steps else 60


def symbol_from_filename(path: Path) -> str:
    return path.name.split("_", 1)[0].split(".", 1)[0].upper()


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m tools.replay", description=(
        "Replay recorded bars through the indicators, the strategy selection, the signals and "
        "the dry-run money path on a virtual clock."))
    ap.add_argument("--bars", action="append", required=True, type=Path,
                    help="bars CSV (repeat for several symbols)")
    ap.add_argument("--symbol", action="append", default=None,
                    help="symbol of the matching --bars (default: from the file name)")
    ap.add_argument("--vix", type=Path, default=None, help="VIX bars CSV (same bar clock)")
    ap.add_argument("--vix-constant", type=float, default=None,
                    help="backtesting aid: a constant VIX, observed at every bar")
    ap.add_argument("--gameplan", type=Path, default=None,
                    help="gameplan JSON applied to every replayed session (date rewritten)")
    ap.add_argument("--out", type=Path, required=True, help="JSON lines output")
    ap.add_argument("--decisions", type=Path, default=None,
                    help="also write every strategy decision as JSON lines here")
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
    try:
        summary = replay_files(args)
    except InputError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, separators=(",", ":")))
    return 0


def replay_files(args: argparse.Namespace) -> dict[str, object]:
    paths: list[Path] = args.bars
    symbols: list[str] = args.symbol or []
    if symbols and len(symbols) != len(paths):
        raise InputError(f"--symbol given {len(symbols)} time(s) for {len(paths)} --bars")
    names = [s.upper() for s in symbols] or [symbol_from_filename(p) for p in paths]
    if len(set(names)) != len(names):
        raise InputError(f"two --bars files for the same symbol: {names}")
    bars = {name: read_bars_csv(path) for name, path in zip(names, paths, strict=True)}
    lengths = {name: infer_bar_seconds(series) for name, series in bars.items()}
    if len(set(lengths.values())) != 1:
        raise InputError(f"bar lengths differ between files: {lengths}")
    bar_seconds = next(iter(lengths.values()))
    vix = read_bars_csv(args.vix) if args.vix is not None else None
    vix_seconds = infer_bar_seconds(vix) if vix else None
    if not (args.equity > 0):
        raise InputError(f"--equity must be positive, got {args.equity}")

    plan = None
    if args.gameplan is not None:
        try:
            plan = read_gameplan(args.gameplan)
        except GameplanError as exc:
            raise InputError(str(exc)) from None
        print(f"replay: gameplan {plan.session_id} ({args.gameplan}) applied to every replayed "
              f"session with its date rewritten; operator check not applied", file=sys.stderr)
    else:
        print("replay: no --gameplan: default plan (VIX rules choose, symbols "
              f"{sorted(bars)})", file=sys.stderr)
    if vix is None and args.vix_constant is None:
        print("replay: no --vix: VIX missing, Strategy C throughout (fail closed)",
              file=sys.stderr)

    config = ReplayConfig(equity=args.equity, account_max_position_pct=args.max_position_pct,
                          dry_run=not args.no_dry_run, fill=FillModel(slippage=args.slippage),
                          bar_seconds=bar_seconds, vix_constant=args.vix_constant)
    engine = ReplayEngine(sorted(bars), plan=plan, config=config)
    try:
        out = args.out.open("w", encoding="utf-8", newline="\n")
    except OSError as exc:
        raise InputError(f"{args.out}: cannot write: {exc.strerror or exc}") from None
    with out:
        write = out.write
        for record in run_replay(engine, bars, vix, vix_seconds):
            write(record.to_json())
            write("\n")
        summary = engine.summary()
        summary["vix"] = ("constant" if args.vix_constant is not None
                          else "file" if vix is not None else "none")
        write(json.dumps(summary, separators=(",", ":")))
        write("\n")
    if args.decisions is not None:
        with args.decisions.open("w", encoding="utf-8", newline="\n") as dec:
            for d in engine.decisions:
                dec.write(json.dumps(d.to_json_dict(), separators=(",", ":")) + "\n")
    return summary


if __name__ == "__main__":
    sys.exit(main())
