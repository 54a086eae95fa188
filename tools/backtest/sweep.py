"""`tools.replay --sweep SPEC`: a grid over `strategy_parameters`, judged walk-forward.

Over-fitting is the risk of any sweep: with enough combinations one of them fits the past.
The guard is a walk-forward split: the replayed sessions are cut into consecutive folds of
`train_sessions` followed by `test_sessions` (the window then moves on by `test_sessions`), a
combination is FIT (scored) on a train window and SCORED on the test window that follows it,
which it has never been chosen on. The report shows

* per fold, the combination that scored best in sample and what it then did out of sample:
  the honest estimate of "sweep, then trade the winner";
* every combination ranked by its mean out-of-sample score, with its in-sample score beside
  it: a combination far better in sample than out of it has learned noise.

Each combination is one replay over the whole period (indicators stay warm across windows;
sizing follows the equity as it would have), its trades attributed to the window their exit
falls in. Combinations run in worker processes (`--jobs`, default every core); each worker
reads the inputs once. A progress bar goes to stderr.

The spec (JSON):

    {"strategy": "A",                      the plan's strategy: its overrides apply to it only
     "grid": {"take_profit_pct": [0.10, 0.15, 0.20], "stop_loss_pct": [0.15, 0.25]},
     "train_sessions": 20, "test_sessions": 10,
     "score": "net_pnl"}                   or "sharpe", "profit_factor", "win_rate"

Grid names are `strategy_parameters` fields (config/gameplan.StrategyParameters); every
combination is validated as a gameplan would be.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pydantic import ValidationError

from config.gameplan import Gameplan, StrategyParameters
from config.market_calendar import get_calendar
from doctrine.dry_run import Trade
from doctrine.replay import ReplayEngine, default_plan, replay_all
from doctrine.sessions import et_date_of
from tools.backtest.inputs import InputError
from tools.backtest.report import session_days
from tools.backtest.stats import group_stats

if TYPE_CHECKING:
    from tools.replay import Inputs

SCORES = ("net_pnl", "sharpe", "profit_factor", "win_rate")


@dataclass(frozen=True)
class SweepSpec:
    strategy: str
    grid: dict[str, list[Any]]
    train_sessions: int
    test_sessions: int
    score: str = "net_pnl"

    @classmethod
    def read(cls, path: Path) -> SweepSpec:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot read the sweep spec: {exc}") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}: the sweep spec must be a JSON object")
        return cls.parse(data, str(path))

    @classmethod
    def parse(cls, data: Mapping[str, Any], where: str = "sweep spec") -> SweepSpec:
        unknown = set(data) - {"strategy", "grid", "train_sessions", "test_sessions", "score"}
        if unknown:
            raise InputError(f"{where}: unknown keys {sorted(unknown)}")
        grid = data.get("grid")
        if not isinstance(grid, dict) or not grid or not all(
                isinstance(v, list) and v for v in grid.values()):
            raise InputError(f"{where}: 'grid' must map strategy_parameters names to "
                             "non-empty lists")
        fields = set(StrategyParameters.model_fields)
        bad = sorted(set(grid) - fields)
        if bad:
            raise InputError(f"{where}: {bad} not in strategy_parameters ({sorted(fields)})")
        strategy = data.get("strategy", "A")
        if strategy not in ("A", "B"):
            raise InputError(f"{where}: 'strategy' must be A or B, got {strategy!r}")
        train, test = data.get("train_sessions", 20), data.get("test_sessions", 10)
        if not (isinstance(train, int) and isinstance(test, int) and train >= 1
                and test >= 1):
            raise InputError(f"{where}: train_sessions and test_sessions must be integers "
                             ">= 1")
        score = data.get("score", "net_pnl")
        if score not in SCORES:
            raise InputError(f"{where}: 'score' must be one of {SCORES}, got {score!r}")
        spec = cls(strategy=strategy, grid={k: list(v) for k, v in grid.items()},
                   train_sessions=train, test_sessions=test, score=score)
        for combo in spec.combinations():
            try:
                StrategyParameters(**combo)
            except ValidationError as exc:
                first = exc.errors()[0]
                raise InputError(f"{where}: {combo}: {first['loc'][0]}: {first['msg']}"
                                 ) from None
        return spec

    def combinations(self) -> list[dict[str, Any]]:
        names = sorted(self.grid)
        return [dict(zip(names, values, strict=True))
                for values in itertools.product(*(self.grid[n] for n in names))]

    def describe(self) -> str:
        return (f"strategy {self.strategy}; grid {json.dumps(self.grid)}; "
                f"{len(self.combinations())} combinations; walk-forward: fit on "
                f"{self.train_sessions} sessions, score on the next {self.test_sessions}; "
                f"score = {self.score}")


@dataclass(frozen=True)
class Fold:
    train: tuple[dt.date, dt.date]
    test: tuple[dt.date, dt.date]


def folds(sessions: Sequence[dt.date], train: int, test: int) -> list[Fold]:
    """Rolling windows: train then test, moving on by `test` sessions."""
    out = []
    i = 0
    while i + train + test <= len(sessions):
        out.append(Fold((sessions[i], sessions[i + train - 1]),
                        (sessions[i + train], sessions[i + train + test - 1])))
        i += test
    return out


def plan_with(base: Gameplan, strategy: str, combo: Mapping[str, Any]) -> Gameplan:
    """`base` for `strategy` with `combo` over its strategy_parameters, validated."""
    data = base.model_dump()
    merged = dict(data.get("strategy_parameters") or {})
    merged.update(combo)
    data.update(strategy=strategy, strategy_parameters=merged)
    return Gameplan.model_validate(data)


def window_score(trades: Sequence[Trade], window: tuple[dt.date, dt.date],
                 sessions: Sequence[dt.date], start: float, score: str,
                 market_seconds_per_session: float) -> dict[str, Any]:
    """The score of the trades whose exit falls in `window` (its sessions only), returns
    measured on the equity the run had when the window began."""
    lo, hi = window
    inside = [t for t in trades if lo <= et_date_of(t.exit_s) <= hi]
    before = sum(t.pnl for t in trades if et_date_of(t.exit_s) < lo)
    days = [d for d in sessions if lo <= d <= hi]
    g = group_stats("w", inside, start=start + before, sessions=days,
                    market_seconds=market_seconds_per_session * len(days))
    value = {"net_pnl": g.net_pnl, "sharpe": g.sharpe, "profit_factor": g.profit_factor,
             "win_rate": g.win_rate}[score]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        value = -math.inf if score != "net_pnl" else 0.0
    return {"score": float(value), "pnl": g.net_pnl, "trades": g.trades, "wins": g.wins}


# -- workers ---------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(args: argparse.Namespace, inputs: Inputs | None) -> None:
    """Fork inherits the parent's inputs; spawn (Windows) reads them again, once per worker."""
    if inputs is None:
        from tools.replay import read_inputs

        inputs = read_inputs(args, quiet=True)
    _WORKER["inputs"] = inputs


def run_combo(job: tuple[int, Gameplan]) -> tuple[int, list[Trade], list[dt.date]]:
    """One replay over the whole period with one plan: its trades and sessions."""
    index, plan = job
    inputs: Inputs = _WORKER["inputs"]
    engine = ReplayEngine(sorted(inputs.bars), plan=plan, config=inputs.config,
                          vix_daily=inputs.vix_daily, quotes=inputs.quotes)
    replay_all(engine, inputs.bars, inputs.vix_bars, inputs.vix_seconds)
    return index, list(engine.book.trades), sorted(engine.sessions)


# -- progress --------------------------------------------------------------------------------------


class Progress:
    """`sweep [#######.......] 7/14 combos  3.2 s  ETA 3 s` on stderr (a line per 10 % when
    stderr is not a terminal)."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, width: int = 24) -> None:
        self.total = total
        self.stream = stream
        self.width = width
        self.done = 0
        self.started = time.perf_counter()
        self.tty = stream.isatty()
        self._last_decile = -1

    def step(self) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        filled = round(self.width * self.done / self.total)
        line = (f"sweep [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} "
                f"combos  {elapsed:.1f} s  ETA {eta:.0f} s")
        if self.tty:
            self.stream.write("\r" + line + ("\n" if self.done == self.total else ""))
        else:
            decile = self.done * 10 // self.total
            if decile == self._last_decile:
                return
            self._last_decile = decile
            self.stream.write(line + "\n")
        self.stream.flush()


# -- the sweep -------------------------------------------------------------------------------------


def run_sweep(spec: SweepSpec, args: argparse.Namespace, inputs: Inputs, *,
              jobs: int | None = None, stream: TextIO = sys.stderr) -> dict[str, Any]:
    """Every combination, walk-forward; returns {"ranked": [...], "folds": [...]}."""
    base = inputs.plan if inputs.plan is not None else default_plan(
        sorted(inputs.bars), dt.date(2000, 1, 3))
    combos = spec.combinations()
    plans = [plan_with(base, spec.strategy, c) for c in combos]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(plans)))
    calendar = get_calendar()   # built once here: forked workers inherit it (1 s each otherwise)
    planned = sorted({d.day for series in inputs.bars.values()
                      for d in session_days(series, inputs.bar_seconds)
                      if calendar.session(d.day) is not None})
    if not folds(planned, spec.train_sessions, spec.test_sessions):
        raise InputError(f"{len(planned)} sessions cannot hold one fold of "
                         f"{spec.train_sessions} train + {spec.test_sessions} test sessions")
    progress = Progress(len(plans), stream)
    results: dict[int, tuple[list[Trade], list[dt.date]]] = {}
    for index, trades, sessions in _map(jobs, args, inputs, list(enumerate(plans))):
        results[index] = (trades, sessions)
        progress.step()
    sessions = results[0][1] if results else []
    windows = folds(sessions, spec.train_sessions, spec.test_sessions)
    if not windows:
        raise InputError(f"{len(sessions)} sessions cannot hold one fold of "
                         f"{spec.train_sessions} train + {spec.test_sessions} test sessions")
    start = inputs.config.equity
    per_session = 6.5 * 3600.0
    table = []
    for index, combo in enumerate(combos):
        trades = results[index][0]
        is_scores = [window_score(trades, f.train, sessions, start, spec.score, per_session)
                     for f in windows]
        oos = [window_score(trades, f.test, sessions, start, spec.score, per_session)
               for f in windows]
        oos_trades = sum(o["trades"] for o in oos)
        table.append({
            "params": combo, "folds": len(windows),
            "is_score": _mean(s["score"] for s in is_scores),
            "oos_score": _mean(o["score"] for o in oos),
            "oos_pnl": sum(o["pnl"] for o in oos), "oos_trades": oos_trades,
            "oos_win_rate": (sum(o["wins"] for o in oos) / oos_trades) if oos_trades else None,
            "fold_is": [s["score"] for s in is_scores], "fold_oos": [o["score"] for o in oos]})
    ranked = sorted(table, key=lambda r: (-r["oos_score"], -r["is_score"]))
    chosen = []
    for k, f in enumerate(windows):
        best = max(table, key=lambda r: r["fold_is"][k])
        chosen.append({"train": [f.train[0].isoformat(), f.train[1].isoformat()],
                       "test": [f.test[0].isoformat(), f.test[1].isoformat()],
                       "params": best["params"], "is_score": best["fold_is"][k],
                       "oos_score": best["fold_oos"][k]})
    return {"ranked": ranked, "folds": chosen, "spec": spec.describe(), "jobs": jobs}


def _mean(values: Iterator[float] | Sequence[float]) -> float:
    """The mean, infinities included (a profit factor without losses is +inf, a window
    without trades -inf); undefined (+inf and -inf together) ranks last."""
    items = list(values)
    if not items:
        return 0.0
    mean = sum(items) / len(items)
    return -math.inf if math.isnan(mean) else mean


def _map(jobs: int, args: argparse.Namespace, inputs: Inputs,
         work: list[tuple[int, Gameplan]]) -> Iterator[tuple[int, list[Trade], list[dt.date]]]:
    if jobs == 1:
        _init_worker(args, inputs)
        yield from map(run_combo, work)
        return
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    inherit = inputs if ctx.get_start_method() == "fork" else None
    with ctx.Pool(jobs, initializer=_init_worker, initargs=(args, inherit)) as pool:
        yield from pool.imap_unordered(run_combo, work)


def run_sweep_cli(args: argparse.Namespace) -> int:
    from tools.replay import read_inputs

    spec = SweepSpec.read(args.sweep)
    inputs = read_inputs(args)
    started = time.perf_counter()
    result = run_sweep(spec, args, inputs, jobs=args.jobs)
    seconds = time.perf_counter() - started
    print(f"sweep: {len(result['ranked'])} combinations x {len(result['folds'])} folds on "
          f"{result['jobs']} process(es) in {seconds:.1f} s ({spec.describe()})")
    for i, row in enumerate(result["ranked"][:5], start=1):
        print(f"  #{i} {row['params']}: out-of-sample {spec.score} {row['oos_score']:.2f} "
              f"(in sample {row['is_score']:.2f}), {row['oos_trades']} OOS trades")
    for f in result["folds"]:
        print(f"  fold {f['train'][0]}..{f['train'][1]} -> {f['test'][0]}..{f['test'][1]}: "
              f"chose {f['params']} (in sample {f['is_score']:.2f}), out of sample "
              f"{f['oos_score']:.2f}")
    if args.report is not None:
        from tools.backtest.run import report_for

        engine = inputs.engine()
        replay_all(engine, inputs.bars, inputs.vix_bars, inputs.vix_seconds)
        page, _stats = report_for(args, inputs, engine, sweep_rows=result["ranked"],
                                  sweep_spec=spec.describe(), sweep_folds=result["folds"])
        print(f"  report: {page}")
    return 0
