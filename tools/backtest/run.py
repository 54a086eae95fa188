"""Glue between tools.replay's command line and the report: what the page's header says."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doctrine.replay import ReplayEngine
from tools.backtest.report import ReportInputs, session_days, write_report

if TYPE_CHECKING:
    from tools.replay import Inputs


def describe_vix(args: argparse.Namespace, inputs: Inputs) -> str:
    kind = inputs.vix_kind
    if kind == "constant":
        return f"constant {args.vix_constant:g} (a backtesting aid, not a real VIX)"
    if kind == "daily":
        return (f"{args.vix.name}: CBOE daily file; each session sees its 09:30 ET open "
                "(the previous close before 09:30), never its high, low or close")
    if kind == "file":
        return f"{args.vix.name}: intraday bars, each close observed at its bar's end"
    return "none: Strategy C throughout (fail closed)"


def report_for(args: argparse.Namespace, inputs: Inputs, engine: ReplayEngine, *,
               sweep_rows: Sequence[Mapping[str, Any]] = (),
               sweep_spec: str | None = None,
               sweep_folds: Sequence[Mapping[str, Any]] = ()) -> tuple[Path, dict[str, Any]]:
    days = {s: session_days(b, inputs.bar_seconds) for s, b in inputs.bars.items()}
    fill = inputs.config.fill
    plan = (f"{args.gameplan.name} ({inputs.plan.session_id}), date rewritten per session"
            if inputs.plan is not None and args.gameplan is not None
            else "default: strategy A allowed, the VIX rules choose A/B/C")
    notes = ["replay is the live brain's code (indicators, selection, signals, exits, option "
             "choice, sizing) on a virtual clock; ModeGuard's risk limits (daily loss, PDT, "
             "weekly governor from P&L) are not simulated",
             "every position is closed 5 minutes before the session's close"]
    if not inputs.config.dry_run:
        notes.append("--no-dry-run: signals only, no trades")
    title = f"Backtest {', '.join(sorted(inputs.bars))}"
    report = ReportInputs(
        title=title, bars_files=[p.name for p in args.bars], vix=describe_vix(args, inputs),
        plan=plan, starting_equity=inputs.config.equity,
        price_model=engine.quotes.describe(),
        fill_model=(f"buy at the ask + ${fill.slippage:g}, sell at the bid - "
                    f"${fill.slippage:g}; IB fixed commissions ${fill.commission_per_contract:g}"
                    f"/contract, min ${fill.min_commission:g} an order"),
        notes=notes, sweep_rows=sweep_rows, sweep_spec=sweep_spec,
        sweep_folds=sweep_folds)
    return write_report(args.report, engine, days, report, charts=not args.no_charts)
