"""`tools.replay --sweep SPEC`: a tiny grid on two processes, walk-forward, ranked out of sample.

The out-of-sample figures are recomputed here from a separate single-process replay of each
combination, so a sweep that mixed up combinations, windows or processes cannot pass.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import math
from pathlib import Path

import pytest

from doctrine.replay import ReplayEngine, run_replay
from doctrine.sessions import et_date_of
from tests.harness.seeded_bars import sessions_from, write_bars
from tools.backtest.inputs import InputError
from tools.backtest.sweep import SweepSpec, folds, plan_with, run_sweep
from tools.replay import build_parser, read_inputs
from tools.replay import main as replay_main

GRID = {"take_profit_pct": [0.05, 0.3], "time_stop_minutes": [20, 90]}


def args_for(tmp_path: Path, *extra: str) -> argparse.Namespace:
    bars = write_bars(tmp_path / "spy_1m_gen.csv", sessions_from(dt.date(2024, 4, 1), 6),
                      seed=21)
    return build_parser().parse_args(["--bars", str(bars), "--vix-constant", "15",
                                      "--equity", "25000", *extra])


def test_tiny_grid_ranks_by_out_of_sample_score(tmp_path: Path) -> None:
    args = args_for(tmp_path)
    inputs = read_inputs(args, quiet=True)
    spec = SweepSpec.parse({"strategy": "A", "grid": GRID, "train_sessions": 2,
                            "test_sessions": 2})
    progress = io.StringIO()
    result = run_sweep(spec, args, inputs, jobs=2, stream=progress)
    ranked = result["ranked"]
    assert result["jobs"] == 2 and len(ranked) == 4
    assert [r["oos_score"] for r in ranked] == sorted((r["oos_score"] for r in ranked),
                                                      reverse=True)
    assert {json.dumps(r["params"], sort_keys=True) for r in ranked} == {
        json.dumps(c, sort_keys=True) for c in spec.combinations()}
    assert "4/4 combos" in progress.getvalue()
    assert all(r["oos_trades"] > 0 for r in ranked)
    assert len({round(r["oos_pnl"], 2) for r in ranked}) > 1, "the grid must matter"
    # recompute every combination's out-of-sample P&L without the sweep
    base = read_inputs(args, quiet=True)
    sessions = sessions_from(dt.date(2024, 4, 1), 6)
    windows = folds(sessions, 2, 2)
    assert len(windows) == 2 and result["folds"][0]["test"] == [
        windows[0].test[0].isoformat(), windows[0].test[1].isoformat()]
    for row in ranked:
        plan = plan_with(base.engine().plan_template, "A", row["params"])
        engine = ReplayEngine(["SPY"], plan=plan, config=base.config)
        for _ in run_replay(engine, base.bars):
            pass
        oos = [t.pnl for t in engine.book.trades
               if any(w.test[0] <= et_date_of(t.exit_s) <= w.test[1] for w in windows)]
        assert row["oos_pnl"] == pytest.approx(sum(oos))
        assert row["oos_trades"] == len(oos)
        assert row["oos_score"] == pytest.approx(sum(oos) / len(windows))
    # the walk-forward choice of each fold is the in-sample best of that fold
    for k, fold in enumerate(result["folds"]):
        assert fold["is_score"] == max(r["fold_is"][k] for r in ranked)


def test_sweep_writes_the_ranked_table_into_the_report(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"grid": {"take_profit_pct": [0.1, 0.2]},
                                "train_sessions": 3, "test_sessions": 3}))
    bars = write_bars(tmp_path / "spy_1m_gen.csv", sessions_from(dt.date(2024, 4, 1), 6))
    code = replay_main(["--bars", str(bars), "--vix-constant", "15", "--equity", "25000",
                        "--sweep", str(spec), "--report", str(tmp_path / "r"), "--jobs", "1",
                        "--no-charts"])
    assert code == 0
    page = (tmp_path / "r" / "index.html").read_text()
    assert "ranked out of sample" in page and "take_profit_pct" in page
    stats = json.loads((tmp_path / "r" / "stats.json").read_text())
    assert len(stats["sweep"]) == 2
    assert "#1 {'take_profit_pct'" in capsys.readouterr().out


@pytest.mark.parametrize(("spec", "message"), [
    ({"grid": {"nope": [1]}}, "not in strategy_parameters"),
    ({"grid": {"stop_loss_pct": [2.0]}}, "stop_loss_pct"),
    ({"grid": {}}, "non-empty lists"),
    ({"grid": {"rsi_min": [50]}, "score": "luck"}, "'score' must be"),
])
def test_bad_specs_are_refused_with_the_reason(spec: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        SweepSpec.parse(spec)


def test_infinite_scores_rank_sensibly() -> None:
    """A profit factor without losses is +inf (best), a window without trades -inf (worst),
    both together undefined (last)."""
    from tools.backtest.sweep import _mean

    assert _mean([math.inf, 2.0]) == math.inf
    assert _mean([-math.inf, 2.0]) == -math.inf
    assert _mean([math.inf, -math.inf]) == -math.inf
    assert _mean([1.0, 3.0]) == 2.0


def test_a_split_the_data_cannot_hold_is_refused_before_any_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"grid": {"take_profit_pct": [0.1, 0.2]},
                                "train_sessions": 20, "test_sessions": 10}))
    bars = write_bars(tmp_path / "spy_1m_gen.csv", sessions_from(dt.date(2024, 4, 1), 3))
    assert replay_main(["--bars", str(bars), "--vix-constant", "15", "--sweep", str(spec),
                        "--jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert "3 sessions cannot hold one fold of 20 train + 10 test sessions" in err
    assert "combos" not in err
