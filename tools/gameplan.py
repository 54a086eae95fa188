"""`python -m tools.gameplan`: write the morning's gameplan, check one, or regenerate its schema.

    python -m tools.gameplan new --strategy A --symbols QQQ --vix 17.9 [options]
    python -m tools.gameplan check [PATH]        (default: GAMEPLAN_PATH)
    python -m tools.gameplan schema [--out docs/gameplan.schema.json]

The bot trades only by a valid plan for today (US/Eastern) that carries the configured
OPERATOR_ID; without one by 09:15 ET it runs Strategy C all day. This tool is the plan's author
for an operator who does not want to hand-edit JSON, and the check for one who does. It holds
no rules of its own: `new` builds the JSON from a few arguments and passes it through the very
functions the bot loads plans with (config/gameplan.py: the pydantic model, the cross-field rules,
the date and operator checks), so whatever it writes the bot accepts, and `check` prints the
bot's own message for whatever the bot would refuse (`error: gameplan: …`, as `--check` does).

`new` never leaves a half-written or invalid file where the bot reads: the plan is validated
first, then written to a temporary file and renamed over the old one. It refuses to replace a
plan already dated that day unless `--force` is given (a mid-session change is a real decision:
the bot logs it as a plan change and may pivot).

Exit codes: 0 valid; 2 invalid plan, bad arguments or bad settings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from config.gameplan import (
    Gameplan,
    GameplanError,
    check_gameplan_applies,
    describe_plan_changes,
    load_gameplan,
    parse_gameplan,
    read_gameplan,
)
from config.market_calendar import ET, CalendarRangeError, get_calendar
from config.settings import Settings, SettingsError, load_settings

EXIT_OK = 0
EXIT_INVALID = 2
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "gameplan.schema.json"
HHMM_SCHEMA = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
               "description": "HH:MM, 24 h, US/Eastern wall time"}


class UsageError(Exception):
    """A problem with the command line or the settings: one line, exit 2."""


# -- new -------------------------------------------------------------------------------------
def regime_for_vix(vix: float | None) -> str:
    """The plan's descriptive regime from the morning VIX, in the doctrine's bands (VIX < 18
    momentum, 18-25 mean reversion, >= 25 cash preservation); `--regime` overrides it. Selection
    itself never reads it: the bot applies the bands to the LIVE VIX."""
    if vix is None:
        return "unknown"
    if vix < 18:
        return "normal"
    return "elevated" if vix < 25 else "high_volatility"


def build_plan(args: argparse.Namespace, *, operator_id: str, day: dt.date,
               now_et: dt.datetime, default_daily_loss_pct: float) -> dict[str, Any]:
    """The plan as JSON-ready data, from the arguments of `new` (nothing validated here)."""
    plan: dict[str, Any] = {
        "date": day.isoformat(),
        "session_id": f"gauntlet_{day:%Y%m%d}_{now_et:%H%M}",
        "regime": args.regime or regime_for_vix(args.vix),
        "strategy": args.strategy,
        "symbols": list(args.symbols),
        "operator_id": operator_id,
        "hard_limits": {
            "max_daily_loss_pct": (args.max_daily_loss_pct if args.max_daily_loss_pct is not None
                                   else default_daily_loss_pct),
            "pdt_trades_remaining": args.pdt_trades_remaining,
            "weekly_drawdown_governor_active": args.governor,
            "max_intraday_pivots": args.max_pivots,
        },
        "data_quality": {
            "quarantine_active": args.quarantine,
            "last_verified": now_et.isoformat(timespec="seconds") if args.data_verified else None,
        },
    }
    optional: dict[str, Any] = {
        "position_size_multiplier": args.multiplier,
        "vix_at_analysis": args.vix,
        "vix_source_verified": True if args.vix_verified else None,
        "bias": args.bias,
        "alert_message": args.note,
        "max_risk_per_trade": args.max_risk_per_trade,
    }
    if args.strategy == "C" and args.multiplier is None:
        optional["position_size_multiplier"] = 0.0
    plan.update({k: v for k, v in optional.items() if v is not None})
    if args.max_single_position is not None:
        plan["hard_limits"]["max_single_position"] = args.max_single_position
    if args.entry_window is not None:
        plan["entry_window_start"], plan["entry_window_end"] = args.entry_window
    if args.vix_gate is not None:
        plan["vix_gate"] = {"check_time": args.vix_gate[0],
                            "threshold": _number_or_text(args.vix_gate[1])}
    if args.catalyst:
        plan["catalysts"] = [_catalyst(text) for text in args.catalyst]
    return plan


def _number_or_text(text: str) -> float | str:
    """A number if it is one; else the text, for the model to refuse with the bot's words."""
    try:
        return float(text)
    except ValueError:
        return text


def _catalyst(text: str) -> dict[str, str] | str:
    """`TYPE=IMPACT` (e.g. `cpi=high`) as an object; anything else stays a plain string, which
    the bot counts as high impact (fail closed)."""
    kind, sep, impact = text.partition("=")
    return {"type": kind, "impact": impact} if sep else text


def run_new(args: argparse.Namespace, settings: Settings) -> int:
    operator_id = args.operator_id or settings.operator_id
    if not operator_id:
        raise UsageError("OPERATOR_ID is not configured: set it in .env (or pass "
                         "--operator-id); the bot accepts only plans that carry it")
    now_et = dt.datetime.now(ET)
    day = args.date or now_et.date()
    out: Path = args.out or settings.gameplan_path
    data = build_plan(args, operator_id=operator_id, day=day, now_et=now_et,
                      default_daily_loss_pct=settings.max_daily_loss_pct)
    text = json.dumps(data, indent=2) + "\n"
    plan = parse_gameplan(text, path=out)                # the bot's schema and rules
    check_gameplan_applies(plan, today_et=day, operator_id=operator_id)
    _refuse_replacing_that_days_plan(out, day, force=args.force)
    _write_atomically(out, text)
    plan = load_gameplan(out, today_et=day, operator_id=operator_id)   # as the bot reads it
    print(f"Wrote {out}: {describe_plan_changes(None, plan)}")
    _say_valid(out, plan, day, settings.operator_id not in (None, operator_id))
    return EXIT_OK


def _refuse_replacing_that_days_plan(out: Path, day: dt.date, *, force: bool) -> None:
    if force or not out.exists():
        return
    try:
        existing = read_gameplan(out)
    except GameplanError:
        return                                        # an unusable file: replacing it is the fix
    if existing.date == day:
        raise UsageError(f"{out} already holds a plan for {day.isoformat()} "
                         f"({existing.session_id}, strategy {existing.strategy}); "
                         "--force replaces it (the bot logs the change and may pivot)")


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# -- check -----------------------------------------------------------------------------------
def run_check(args: argparse.Namespace, settings: Settings) -> int:
    day = args.date or dt.datetime.now(ET).date()
    path: Path = args.path or settings.gameplan_path
    plan = load_gameplan(path, today_et=day, operator_id=settings.operator_id)
    print(f"{path}: {describe_plan_changes(None, plan)}")
    _say_valid(path, plan, day, False)
    return EXIT_OK


def _say_valid(path: Path, plan: Gameplan, day: dt.date, other_operator: bool) -> None:
    print(f"Gameplan {path}: valid for {day.isoformat()}")
    if other_operator:
        print("note: the plan carries --operator-id, not this .env's OPERATOR_ID: "
              "the bot configured by this .env would refuse it")
    try:
        session = get_calendar().session(day)
    except CalendarRangeError:
        return
    if session is None:
        print(f"note: {day.isoformat()} has no market session: the bot idles")
    elif plan.strategy != "C":
        start, end = plan.entry_window
        print(f"Entries {start:%H:%M}-{end:%H:%M} ET; session {session.open_et:%H:%M}-"
              f"{session.close_et:%H:%M} ET")


# -- schema ----------------------------------------------------------------------------------
def gameplan_json_schema() -> dict[str, Any]:
    """The JSON Schema of the gameplan, generated from the pydantic model, for editors.

    Types, ranges and allowed values only; the cross-field rules, the date and the operator
    check are the bot's (`check`). Times ("HH:MM") are the model's own parser, which pydantic
    cannot describe: they are given as a pattern here.
    """
    schema = _replace_time_formats(Gameplan.model_json_schema(mode="validation"))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Crucible daily gameplan",
        "description": (
            "gameplans/daily_gameplan.json, written each morning (python -m tools.gameplan new). "
            "Generated from config/gameplan.py by `python -m tools.gameplan schema`: do not "
            "edit. Types and ranges only: `python -m tools.gameplan check PATH` also applies "
            "the cross-field rules, today's date (US/Eastern) and OPERATOR_ID."),
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }


def _replace_time_formats(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("format") == "time" and node.get("type") == "string":
            return {**{k: v for k, v in node.items() if k not in ("format", "type")},
                    **HHMM_SCHEMA}
        return {k: _replace_time_formats(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_time_formats(v) for v in node]
    return node


def schema_text() -> str:
    return json.dumps(gameplan_json_schema(), indent=2, sort_keys=False) + "\n"


def run_schema(args: argparse.Namespace) -> int:
    out: Path = args.out
    _write_atomically(out, schema_text())
    print(f"Wrote {out}")
    return EXIT_OK


# -- command line ----------------------------------------------------------------------------
def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.gameplan",
                                description="Write, check or describe the daily gameplan.")
    sub = p.add_subparsers(dest="command", required=True)

    new = sub.add_parser("new", help="write a valid plan for today (GAMEPLAN_PATH)")
    new.add_argument("--strategy", required=True, help="A (momentum), B (mean reversion) or C")
    new.add_argument("--symbols", nargs="*", default=[], metavar="SYMBOL",
                     help="SPY, QQQ, IWM (at most 2; none for C)")
    new.add_argument("--vix", type=float, help="the VIX at analysis (vix_at_analysis)")
    new.add_argument("--vix-verified", action="store_true",
                     help="the VIX was checked against a second source")
    new.add_argument("--regime", help="default: from --vix (normal < 18 <= elevated < 25)")
    new.add_argument("--vix-gate", nargs=2, metavar=("HH:MM", "THRESHOLD"),
                     type=str, help="C for the day if the live VIX >= THRESHOLD at HH:MM ET")
    new.add_argument("--entry-window", nargs=2, metavar=("HH:MM", "HH:MM"),
                     help="entries only in this ET window (default 10:00 15:30)")
    new.add_argument("--multiplier", type=float, help="position_size_multiplier (0-1)")
    new.add_argument("--max-risk-per-trade", type=float, help="USD (soft)")
    new.add_argument("--max-daily-loss-pct", type=float,
                     help="hard limit, 0-1 (default: MAX_DAILY_LOSS_PCT from the settings)")
    new.add_argument("--pdt-trades-remaining", type=int, default=3, help="0-3 (default 3)")
    new.add_argument("--max-pivots", type=int, default=2,
                     help="max intraday strategy pivots (default 2)")
    new.add_argument("--max-single-position", type=float, help="USD")
    new.add_argument("--governor", action="store_true",
                     help="the weekly drawdown governor is active (selects C)")
    new.add_argument("--quarantine", action="store_true",
                     help="data quarantine active (selects C)")
    new.add_argument("--data-verified", action="store_true",
                     help="set data_quality.last_verified to now")
    new.add_argument("--bias", help="bullish, bearish or neutral")
    new.add_argument("--catalyst", action="append", metavar="TYPE=IMPACT",
                     help="e.g. cpi=high (repeatable; plain text counts as high impact)")
    new.add_argument("--note", help="alert_message: one line for the operator's channel")
    new.add_argument("--date", type=_date, help="default: today (US/Eastern)")
    new.add_argument("--operator-id", help="default: OPERATOR_ID from the settings")
    new.add_argument("--out", type=Path, help="default: GAMEPLAN_PATH from the settings")
    new.add_argument("--force", action="store_true", help="replace a plan for the same day")
    new.add_argument("--env-file", type=Path, default=None, help="default: .env")

    check = sub.add_parser("check", help="validate a plan as the bot would, for today")
    check.add_argument("path", type=Path, nargs="?", default=None,
                       help="default: GAMEPLAN_PATH from the settings")
    check.add_argument("--date", type=_date, help="default: today (US/Eastern)")
    check.add_argument("--env-file", type=Path, default=None, help="default: .env")

    schema = sub.add_parser("schema", help="write the JSON Schema (for editors)")
    schema.add_argument("--out", type=Path, default=SCHEMA_PATH)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "schema":
        return run_schema(args)
    try:
        settings = load_settings(args.env_file if args.env_file else Path(".env"))
        return run_new(args, settings) if args.command == "new" else run_check(args, settings)
    except SettingsError as exc:
        print(f"error: settings: {exc}", file=sys.stderr)
    except GameplanError as exc:
        print(f"error: gameplan: {exc}", file=sys.stderr)
        print("The bot would run Strategy C (no entries) until a valid gameplan appears.",
              file=sys.stderr)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
    return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
