"""After five trading days of the money path (tests/system/money/test_five_days.py: one bot run per
day, Gateway restarts, fills during outages, exits and flattens), the SQLite trade history the
console and `tools.trades` read holds exactly the lines of logs/trades.jsonl, and its trades'
P&L is the P&L the bot booked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio.testing

from runtime.infra.trade_db import DB_FILE, TradeDb, stats
from tests.system.money import test_five_days as five_days

pytestmark = pytest.mark.slow


async def test_the_sqlite_history_equals_trades_jsonl_after_five_trading_days(
        tmp_path: Path, shared_data: Path, autojump_clock: trio.testing.MockClock) -> None:
    await five_days.test_five_trading_days_end_with_the_brokers_positions_and_one_outcome_per_intent(  # noqa: E501
        tmp_path, shared_data, autojump_clock)
    lines = (tmp_path / "logs" / "trades.jsonl").read_text(encoding="utf-8").splitlines()
    db = TradeDb(tmp_path / "state" / DB_FILE)
    try:
        records = db.records()                   # as the bot left it: no catching up here
        trades = db.trades()
    finally:
        db.close()
    assert records == [json.loads(line) for line in lines]
    fills = [r for r in records if r["kind"] == "fill"]
    assert len(fills) >= 10 and all(t.closed for t in trades)
    booked = sum(f["realized_pnl"] for f in fills)
    assert stats(trades).pnl == pytest.approx(booked, abs=0.05)
    assert {t.strategy for t in trades} <= {"A", None}
