"""tools.replay says when the plan and the equity afford no contract (the bot's own warning at
start and in --check), instead of printing a backtest of zero trades without a word."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.harness.brain import plan_dict
from tests.harness.data import SPY_2019, data_file
from tools import replay


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *, equity: str,
        max_single_position: int) -> str:
    plan = plan_dict(dt.date(2019, 2, 12), max_risk_per_trade=2_000.0, max_risk_ceiling=2_000.0)
    plan["hard_limits"]["max_single_position"] = max_single_position
    (tmp_path / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    code = replay.main(["--bars", str(data_file(SPY_2019)), "--gameplan",
                        str(tmp_path / "plan.json"), "--equity", equity, "--no-vix",
                        "--out", str(tmp_path / "out.jsonl")])
    assert code == 0
    return capsys.readouterr().err


def test_a_plan_the_equity_cannot_afford_is_named_with_its_numbers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = run(tmp_path, capsys, equity="600", max_single_position=120)
    [line] = [x for x in err.splitlines() if x.startswith("replay: warning: Affordability")]
    assert "SPY" in line and "budget $" in line and "expect no trades" in line


def test_an_affordable_plan_gets_no_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = run(tmp_path, capsys, equity="100000", max_single_position=20_000)
    assert "warning" not in err
