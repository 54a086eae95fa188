"""`tools.replay --report DIR`: the page's numbers agree with its own trade table.

The statistics are recomputed here from trades.csv with nothing but the definitions (net
P&L, win rate, max drawdown of the closed-trade equity), not with tools.backtest.stats.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.harness.seeded_bars import sessions_from, write_bars
from tools.replay import main as replay_main

EQUITY = 25_000.0


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("report")
    bars = write_bars(tmp / "spy_1m_generated.csv", sessions_from(dt.date(2024, 3, 4), 8),
                      seed=11)
    out = tmp / "report"
    code = replay_main(["--bars", str(bars), "--vix-constant", "15", "--equity", str(EQUITY),
                        "--report", str(out), "--out", str(tmp / "replay.jsonl")])
    assert code == 0
    with (out / "trades.csv").open(encoding="utf-8") as handle:
        trades = list(csv.DictReader(handle))
    lines = (tmp / "replay.jsonl").read_text(encoding="utf-8").splitlines()
    return {"dir": out, "trades": trades, "stats": json.loads((out / "stats.json").read_text()),
            "html": (out / "index.html").read_text(encoding="utf-8"),
            "summary": json.loads(lines[-1])}


def test_report_numbers_match_the_trade_table(report: dict[str, Any]) -> None:
    trades = report["trades"]
    overall = report["stats"]["overall"]
    assert len(trades) == overall["trades"] == report["summary"]["trades"] >= 5
    pnls = [float(t["pnl"]) for t in sorted(trades, key=lambda t: t["exit_time"])]
    net = sum(pnls)
    wins = sum(1 for p in pnls if p > 0)
    equity = peak = EQUITY
    drawdown = 0.0
    for p in pnls:
        equity += p
        peak = max(peak, equity)
        drawdown = max(drawdown, peak - equity)
    assert overall["net_pnl"] == pytest.approx(net, abs=0.01 * len(pnls))
    assert overall["wins"] == wins
    assert overall["win_rate"] == pytest.approx(wins / len(pnls))
    assert overall["max_drawdown"] == pytest.approx(drawdown, abs=0.01 * len(pnls))
    assert report["summary"]["realized_pnl"] == pytest.approx(net, abs=0.01 * len(pnls))
    # per strategy and per symbol add up to the whole
    assert sum(g["trades"] for g in report["stats"]["by_strategy"]) == len(trades)
    assert sum(g["net_pnl"] for g in report["stats"]["by_symbol"]) == pytest.approx(net,
                                                                                    abs=0.05)
    # exits by rule count every trade once
    assert sum(report["stats"]["exits"].values()) == len(trades)
    rules = {t["exit_rule"] for t in trades}
    assert all(report["stats"]["exits"][r] == sum(1 for t in trades if t["exit_rule"] == r)
               for r in rules)


def test_report_page_shows_the_numbers_and_needs_no_network(report: dict[str, Any]) -> None:
    page = report["html"]
    overall = report["stats"]["overall"]
    net = overall["net_pnl"]
    assert f"${abs(net):,.2f}" in page
    assert f"{overall['win_rate'] * 100:.1f} %" in page
    assert f"${overall['max_drawdown']:,.2f}" in page
    assert page.count("<tr>") >= len(report["trades"])
    assert 'src="data:image/png;base64,' in page
    assert not re.search(r'(src|href)="(https?:)?//', page), "the page must not fetch anything"
    assert "Black-Scholes" in page and "constant 15" in page
    assert (report["dir"] / "equity.png").read_bytes().startswith(b"\x89PNG")
    for section in ("Exits by rule", "Rejections by reason", "Buy and hold", "By strategy",
                    "By symbol"):
        assert section in page


def test_buy_and_hold_is_first_open_to_last_close(report: dict[str, Any],
                                                  tmp_path: Path) -> None:
    (hold,) = report["stats"]["buy_and_hold"]
    bars = write_bars(tmp_path / "again.csv", sessions_from(dt.date(2024, 3, 4), 8), seed=11)
    rows = bars.read_text().splitlines()[1:]
    assert hold["entry"] == pytest.approx(float(rows[0].split(",")[1]))
    assert hold["exit"] == pytest.approx(float(rows[-1].split(",")[4]))


def test_terminal_prints_a_human_summary_and_the_page(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    bars = write_bars(tmp_path / "spy_1m_x.csv", sessions_from(dt.date(2024, 3, 4), 2))
    assert replay_main(["--bars", str(bars), "--vix-constant", "15", "--equity", "25000",
                        "--report", str(tmp_path / "r"), "--no-charts"]) == 0
    out = capsys.readouterr().out
    assert "trades, win rate" in out and "buy and hold: SPY" in out
    assert str(tmp_path / "r" / "index.html") in out
    assert not (tmp_path / "r" / "equity.png").exists()


def test_out_or_report_is_required(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bars = write_bars(tmp_path / "spy_1m_x.csv", sessions_from(dt.date(2024, 3, 4), 1))
    assert replay_main(["--bars", str(bars)]) == 2
    assert "--out JSONL is required" in capsys.readouterr().err
