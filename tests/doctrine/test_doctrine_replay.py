"""Replay over the real SPY+VIX pair: plausible signals, deterministic, the CLI contract."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from config.gameplan import parse_gameplan
from config.market_calendar import ET
from doctrine.replay import ReplayConfig, ReplayEngine, run_replay
from tests.harness.data import (
    REPO,
    SPY_63,
    SPY_2019,
    VIX_2019,
    bars_of,
    data_file,
    example_plan_dict,
)
from tools.replay import main as replay_main

SIGNAL_GATES = {"session", "gap", "symbol", "window", "multiplier"}
"""Stages where a setup is refused before it is a signal; later stages are the money path."""

FIELDS = ["ts", "symbol", "close", "rsi", "ema_fast", "ema_slow", "vwap", "bb_upper",
          "bb_mid", "bb_lower", "strategy", "signal", "exit"]


def engine_lines(equity: float = 600.0, plan: Any = None, vix: bool = True) -> list[str]:
    engine = ReplayEngine(["SPY"], plan=plan, config=ReplayConfig(equity=equity))
    lines = [r.to_json() for r in run_replay(engine, {"SPY": bars_of(SPY_2019)},
                                             bars_of(VIX_2019) if vix else None)]
    lines.append(json.dumps(engine.summary()))
    return lines


def et_time(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(ET)


@pytest.mark.slow
def test_cli_replays_the_spy_vix_pair_into_json_lines(tmp_path: Path) -> None:
    out = tmp_path / "replay.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "tools.replay", "--bars", str(data_file(SPY_2019)),
         "--vix", str(data_file(VIX_2019)), "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines[:-1]]
    summary = json.loads(lines[-1])
    assert json.loads(proc.stdout) == summary
    assert len(records) == len(bars_of(SPY_2019)) == summary["bars"] == 1950
    assert all(list(r) == FIELDS for r in records)
    assert records[0]["ema_fast"] is None and records[7]["ema_fast"] is not None
    assert records[19]["bb_mid"] is not None and records[18]["bb_mid"] is None
    assert records[0]["vwap"] is not None
    assert summary["sessions"] == 5 and summary["vix"] == "file"
    assert "default plan" in proc.stderr


def test_replay_signals_are_plausible() -> None:
    lines = engine_lines()
    records = [json.loads(line) for line in lines[:-1]]
    summary = json.loads(lines[-1])
    # VIX was 15-17 that week: Strategy A except the first minute of each day (no VIX yet)
    assert summary["strategy_bars"]["B"] == 0
    assert summary["strategy_bars"]["C"] <= 10
    signals = [(r, prev) for prev, r in itertools.pairwise(records)
               if r["signal"] is not None and r["signal"].get("stage") not in SIGNAL_GATES]
    assert len(signals) == summary["signals"]["A"]
    assert 10 <= summary["signals"]["A"] <= 150 and summary["signals"]["B"] == 0
    assert set(summary["signal_directions"]) == {"A:bullish", "A:bearish"}
    for r, prev in signals:
        sig = r["signal"]
        assert r["strategy"] == "A" and r["symbol"] == "SPY"
        end = et_time(r["ts"]) + dt.timedelta(minutes=1)
        assert dt.time(10, 0) <= end.time() < dt.time(15, 30)
        bullish = sig["direction"] == "bullish"
        assert (prev["ema_fast"] <= prev["ema_slow"]) == bullish
        assert (r["ema_fast"] > r["ema_slow"]) == bullish
        assert (r["close"] > r["vwap"]) == bullish
        assert (50 <= r["rsi"] <= 65) if bullish else (35 <= r["rsi"] <= 50)
        assert sig["right"] == ("C" if bullish else "P")
    # with the doctrine's $600 an ATM SPY option is beyond the risk budget: zero, not one
    assert summary["trades"] == 0
    assert summary["rejected"]["size"] == summary["signals"]["A"]


def test_replay_is_deterministic_run_to_run() -> None:
    assert engine_lines(equity=25_000) == engine_lines(equity=25_000)


def test_dry_run_trades_are_accounted_and_flat_overnight() -> None:
    lines = engine_lines(equity=25_000)
    records = [json.loads(line) for line in lines[:-1]]
    summary = json.loads(lines[-1])
    exits = [r["exit"] for r in records if r["exit"] is not None]
    entries = [r["signal"] for r in records
               if r["signal"] is not None and r["signal"].get("contracts")]
    assert summary["trades"] == len(exits) == len(entries) > 0
    assert summary["realized_pnl"] == pytest.approx(
        sum(e["pnl"] for e in exits) - 0, abs=0.05 * len(exits))
    assert summary["open_positions"] == 0
    assert set(summary["exits"]) <= {"take_profit", "stop_loss", "time_stop", "session_end",
                                     "emergency_stop", "dte_force_close"}
    for sig in entries:
        assert sig["option"].startswith("SPY 2019-02-") and sig["dte"] >= 4
        assert sig["contracts"] >= 1 and sig["price"] > 0
    last_of_day: dict[str, dict[str, Any]] = {}
    for r in records:
        last_of_day[r["ts"][:10]] = r
    held = False
    for r in records:
        if r["signal"] is not None and r["signal"].get("contracts"):
            held = True
        if r["exit"] is not None:
            held = False
        if r is last_of_day[r["ts"][:10]]:
            assert not held, f"position held overnight after {r['ts']}"


def test_without_vix_replay_fails_closed_to_c() -> None:
    summary = json.loads(engine_lines(vix=False)[-1])
    assert summary["strategy_bars"] == {"A": 0, "B": 0, "C": 1950}
    assert summary["signals"] == {"A": 0, "B": 0}


def test_gameplan_applies_to_every_session(tmp_path: Path) -> None:
    data = example_plan_dict()
    data.update(strategy="C", symbols=[], position_size_multiplier=0)
    c_plan = parse_gameplan(json.dumps(data))
    summary = json.loads(engine_lines(plan=c_plan)[-1])
    assert summary["strategy_bars"]["C"] == 1950 and summary["signals"]["A"] == 0
    data = example_plan_dict()
    data.update(symbols=["SPY"], entry_window_start="13:00", entry_window_end="14:00",
                vix_gate={"check_time": "09:45", "threshold": 18.5})
    data.pop("strategy_parameters")
    plan = parse_gameplan(json.dumps(data))
    records = [json.loads(line) for line in engine_lines(plan=plan)[:-1]]
    taken = [r for r in records if r["signal"] is not None
             and r["signal"].get("stage") not in SIGNAL_GATES]
    assert taken, "no signal inside a 13:00-14:00 window in five days"
    for r in taken:
        assert dt.time(12, 59) <= et_time(r["ts"]).time() < dt.time(13, 59)
    before_gate = [r for r in records
                   if et_time(r["ts"]).time() < dt.time(9, 44)]
    assert {r["strategy"] for r in before_gate} == {"C"}


def test_cli_refuses_bad_input_with_one_line(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.jsonl"
    assert replay_main(["--bars", str(tmp_path / "spy_missing.csv"), "--out", str(out)]) == 2
    assert "cannot read" in capsys.readouterr().err
    bad = tmp_path / "spy_bad.csv"
    bad.write_text("time,o,h,l,c,v\n", encoding="utf-8")
    assert replay_main(["--bars", str(bad), "--out", str(out)]) == 2
    assert "header must be timestamp,open,high,low,close,volume" in capsys.readouterr().err
    naive = tmp_path / "spy_naive.csv"
    naive.write_text("timestamp,open,high,low,close,volume\n2019-02-11T09:30:00,1,1,1,1,1\n",
                     encoding="utf-8")
    assert replay_main(["--bars", str(naive), "--out", str(out)]) == 2
    assert "no UTC offset" in capsys.readouterr().err
    plan = tmp_path / "plan.json"
    plan.write_text('{"strategy": "A"}', encoding="utf-8")
    assert replay_main(["--bars", str(data_file(SPY_2019)), "--gameplan", str(plan),
                        "--out", str(out)]) == 2
    assert "gameplan field 'date': required field is missing" in capsys.readouterr().err


def test_cli_with_constant_vix_backtests_a_file_without_vix(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.jsonl"
    decisions = tmp_path / "decisions.jsonl"
    code = replay_main(["--bars", str(data_file(SPY_63)), "--vix-constant", "20",
                        "--equity", "25000", "--out", str(out), "--decisions",
                        str(decisions)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["bars"] == 24570 and summary["sessions"] == 63 and summary["vix"] == \
        "constant"
    assert summary["strategy_bars"]["B"] == 24570 and summary["signals"]["B"] > 0
    assert summary["trades"] > 0 and summary["open_positions"] == 0
    assert decisions.read_text(encoding="utf-8").count("\n") == summary["decisions"]
