"""`python -m tools.trades [--env-file PATH] [--db PATH] [--jsonl PATH] [--json]`: trades.

Prints one line per trade (newest last), then the P&L per ET day and per ISO week, the win rate
and the maximum drawdown of the closed trades. The database is STATE_DIR/trades.sqlite3, the one
the bot and its console read; before printing it catches up with LOG_DIR/trades.jsonl (the same
step the bot takes after every trade event), so it is current even while the bot is stopped.

Exit status: 0 printed (also when there are no trades yet); 2 bad arguments or settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from config.settings import SettingsError, load_settings
from runtime.infra.trade_db import DB_FILE, Trade, TradeDb, stats

TRADES_JSONL = "trades.jsonl"


def _row(t: Trade) -> str:
    def price(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"
    return (f"{t.id:>4} {t.opened_ts[:16]:<16} {(t.closed_ts or 'open')[:16]:<16} "
            f"{t.contract:<24} {t.strategy or '?':<3} {t.contracts:>3} {price(t.entry_price):>7} "
            f"{price(t.exit_price):>7} {t.commissions:>6.2f} {t.pnl:>+9.2f}  "
            f"{t.exit_reason or ''}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.trades",
                                     description="The bot's trade history (SQLite).")
    parser.add_argument("--env-file", type=Path, default=None)
    parser.add_argument("--db", type=Path, default=None, help=f"default STATE_DIR/{DB_FILE}")
    parser.add_argument("--jsonl", type=Path, default=None,
                        help=f"default LOG_DIR/{TRADES_JSONL}; catch up from it first")
    parser.add_argument("--json", action="store_true", help="one JSON document instead")
    args = parser.parse_args(argv)
    if args.db is None or args.jsonl is None:
        try:
            settings = load_settings(args.env_file or Path(".env"))
        except SettingsError as exc:
            print(f"error: settings: {exc}", file=sys.stderr)
            return 2
        args.db = args.db or settings.state_dir / DB_FILE
        args.jsonl = args.jsonl or settings.log_dir / TRADES_JSONL
    db = TradeDb(args.db)
    try:
        db.sync(args.jsonl)
        trades = list(reversed(db.trades()))
    finally:
        db.close()
    summary = stats(trades)
    if args.json:
        print(json.dumps({"trades": [t.as_dict() for t in trades], "stats": summary.as_dict()},
                         indent=2))
        return 0
    print(f"{'id':>4} {'opened (UTC)':<16} {'closed (UTC)':<16} {'contract':<24} {'str':<3} "
          f"{'qty':>3} {'entry':>7} {'exit':>7} {'comm':>6} {'P&L':>9}  exit reason")
    for t in trades:
        print(_row(t))
    if not trades:
        print("(no trades yet)")
    print()
    print("P&L per day (ET):")
    for day, pnl, n in summary.daily:
        print(f"  {day}  {pnl:>+10.2f}  ({n} trade{'s' if n != 1 else ''})")
    print("P&L per week:")
    for week, pnl, n in summary.weekly:
        print(f"  {week}  {pnl:>+10.2f}  ({n} trade{'s' if n != 1 else ''})")
    rate = "n/a" if summary.win_rate is None else f"{summary.win_rate:.0%}"
    print(f"Closed trades {summary.closed}, win rate {rate}, total {summary.pnl:+.2f} USD, "
          f"maximum drawdown {summary.max_drawdown:.2f} USD")
    return 0


if __name__ == "__main__":
    sys.exit(main())
