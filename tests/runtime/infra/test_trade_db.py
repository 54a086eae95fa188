"""The SQLite trade history: the lines of trades.jsonl by construction, the round trips built
from the fills, a torn line or a kill -9 leaving it intact, and `python -m tools.trades`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from runtime.infra.trade_db import TradeDb, stats
from tests.harness import REPO

KEY = "SPY 20240226 C 505"


def _lines(day: str, intent: str, exit_intent: str, buy: float, sell: float,
           reason: str) -> list[dict[str, Any]]:
    """One round trip as OrderRouter writes it: decision, intent, orders, fills, exit."""
    ts = f"{day}T15:00:00.000001Z"
    later = f"{day}T16:30:00.000001Z"
    com = 1.3
    return [
        {"ts": ts, "kind": "decision", "mode": "PAPER", "intent_id": intent, "approved": True,
         "symbol": "SPY", "strategy": "A", "direction": "bullish"},
        {"ts": ts, "kind": "order_intent", "mode": "PAPER", "intent_id": intent,
         "contract": KEY, "quantity": 2, "limit": buy, "strategy": "A"},
        {"ts": ts, "kind": "order", "mode": "PAPER", "order_ref": f"{intent}/e",
         "intent_id": intent, "role": "entry", "action": "BUY", "quantity": 2,
         "order_type": "LMT", "limit": buy, "contract": KEY},
        {"ts": ts, "kind": "fill", "mode": "PAPER", "order_ref": f"{intent}/e",
         "intent_id": intent, "contract": KEY, "side": "BUY", "quantity": 2, "price": buy,
         "commission": com, "exec_id": f"x-{intent}", "opening": True, "realized_pnl": -com},
        {"ts": later, "kind": "exit", "mode": "PAPER", "intent_id": exit_intent,
         "contract": KEY, "reason": reason, "urgent": False},
        {"ts": later, "kind": "fill", "mode": "PAPER", "order_ref": f"{exit_intent}/x",
         "intent_id": exit_intent, "contract": KEY, "side": "SELL", "quantity": 2,
         "price": sell, "commission": com, "exec_id": f"y-{intent}", "opening": False,
         "realized_pnl": round((sell - buy) * 200 - com, 2)},
    ]


def _write(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def _file_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_the_history_is_the_jsonl_lines_and_the_round_trips_they_make(tmp_path: Path) -> None:
    jsonl = tmp_path / "trades.jsonl"
    _write(jsonl, _lines("2024-02-26", "e1", "x1", 1.50, 2.00, "take_profit"))
    _write(jsonl, _lines("2024-02-27", "e2", "x2", 2.00, 1.40, "stop_loss"))
    _write(jsonl, _lines("2024-03-04", "e3", "x3", 1.00, 1.10, "session_end"))
    db = TradeDb(tmp_path / "trades.sqlite3")
    first = db.sync(jsonl)
    again = db.sync(jsonl)                       # nothing new: nothing added
    trades = list(reversed(db.trades()))
    summary = stats(trades)
    assert db.records() == _file_records(jsonl)
    assert (first.added, again.added) == (18, 0)
    assert [(t.strategy, t.exit_reason, t.contracts, t.closed) for t in trades] == [
        ("A", "take_profit", 2, True), ("A", "stop_loss", 2, True),
        ("A", "session_end", 2, True)]
    assert [t.pnl for t in trades] == [pytest.approx(97.4), pytest.approx(-122.6),
                                       pytest.approx(17.4)]
    assert trades[0].orders == ("e1/e", "x1/x") and trades[0].commissions == 2.6
    assert summary.closed == 3 and summary.wins == 2
    assert summary.max_drawdown == pytest.approx(122.6)
    assert [w for w, _, _ in summary.weekly] == ["2024-W09", "2024-W10"]
    booked = sum(r["realized_pnl"] for r in _file_records(jsonl) if r["kind"] == "fill")
    assert summary.pnl == pytest.approx(booked)
    db.close()


def test_a_torn_last_line_waits_for_its_end_and_a_garbled_one_is_skipped(
        tmp_path: Path) -> None:
    jsonl = tmp_path / "trades.jsonl"
    lines = _lines("2024-02-26", "e1", "x1", 1.5, 2.0, "take_profit")
    _write(jsonl, lines[:2])
    whole = json.dumps(lines[2])
    with jsonl.open("a", encoding="utf-8") as f:
        f.write(whole[:20])                      # the writer is in the middle of a line
    db = TradeDb(tmp_path / "t.sqlite3")
    assert db.sync(jsonl).added == 2
    with jsonl.open("a", encoding="utf-8") as f:
        f.write(whole[20:] + "\n{not json\n")
    result = db.sync(jsonl)
    assert (result.added, result.skipped) == (1, 1)
    assert db.records() == lines[:3]
    db.close()


_WRITER = """
import json, sys
from pathlib import Path
from runtime.infra.trade_db import TradeDb
jsonl, dbpath = Path(sys.argv[1]), Path(sys.argv[2])
db = TradeDb(dbpath)
i = 0
while True:
    with jsonl.open("a") as f:
        for _ in range(20):
            f.write(json.dumps({"ts": "2024-02-26T15:00:00Z", "kind": "fill", "mode": "PAPER",
                                "contract": "SPY 20240226 C %d" % (i % 7), "quantity": 1,
                                "price": 1.0, "opening": i % 2 == 0, "realized_pnl": 0.5,
                                "commission": 0.65, "exec_id": str(i), "intent_id": str(i)})
                    + "\\n")
            i += 1
    db.sync(jsonl)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_process_killed_mid_write_leaves_the_database_intact_and_catching_up(
        tmp_path: Path) -> None:
    jsonl, dbpath = tmp_path / "trades.jsonl", tmp_path / "trades.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(jsonl), str(dbpath)], env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if dbpath.exists():
                with sqlite3.connect(dbpath, timeout=5) as peek:
                    try:
                        if peek.execute("SELECT count(*) FROM records").fetchone()[0] > 2000:
                            break
                    except sqlite3.OperationalError:
                        pass                     # the schema is being created
        else:
            pytest.fail("the writer did not get going")
        os.kill(proc.pid, signal.SIGKILL)        # in the middle of a write
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(dbpath) as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db = TradeDb(dbpath)
    db.sync(jsonl)                               # the next start catches up
    complete = [json.loads(line) for line in jsonl.read_bytes().split(b"\n")[:-1]]
    assert db.records() == complete
    db.close()


def test_the_trades_tool_prints_the_table_the_days_the_weeks_and_the_drawdown(
        tmp_path: Path) -> None:
    jsonl = tmp_path / "trades.jsonl"
    _write(jsonl, _lines("2024-02-26", "e1", "x1", 1.50, 2.00, "take_profit"))
    _write(jsonl, _lines("2024-02-27", "e2", "x2", 2.00, 1.40, "stop_loss"))
    db = tmp_path / "state" / "trades.sqlite3"
    out = subprocess.run([sys.executable, "-m", "tools.trades", "--db", str(db), "--jsonl",
                          str(jsonl)], capture_output=True, text=True, timeout=60, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    as_json = subprocess.run([sys.executable, "-m", "tools.trades", "--db", str(db),
                              "--jsonl", str(jsonl), "--json"], capture_output=True, text=True,
                             timeout=60, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert KEY in out.stdout and "take_profit" in out.stdout and "stop_loss" in out.stdout
    assert "2024-02-26      +97.40" in out.stdout and "2024-W09" in out.stdout
    assert "win rate 50%" in out.stdout and "maximum drawdown 122.60 USD" in out.stdout
    doc = json.loads(as_json.stdout)
    assert len(doc["trades"]) == 2 and doc["stats"]["pnl"] == pytest.approx(-25.2)
