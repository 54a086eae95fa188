"""`python -m runtime --demo`, the README's first command, as a new user runs it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_the_demo_trades_through_a_gateway_restart_and_its_logs_earn_a_go(
        tmp_path: Path, bot_env: dict[str, str]) -> None:
    env = {**bot_env, "DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/secret-x"}
    proc = subprocess.run([sys.executable, "-m", "runtime", "--demo", "--duration", "30"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    out = proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "embedded Gateway simulator" in out and "DRY-RUN mode active" in out
    assert "Actor tree (start):" in out
    assert "Gateway session 1 up" in out and "Gateway session 2 up" in out
    assert "Scheduled Gateway restart done" in out
    summary = out[out.index("Demo summary"):]
    assert "Gateway sessions: 2" in summary
    bars = int(summary.split("bars delivered: ")[1].split()[0])
    assert bars > 1000
    assert "Demo account: $5,000 equity" in out
    # the whole money path: an order, its fill, an exit by a rule, the day's P&L in numbers
    assert re.search(r"^  order: BUY \d+ (SPY|QQQ) \S+ \S+[CP] LMT [\d.]+ \(entry, DRY_RUN\)$",
                     summary, re.M), summary
    assert re.search(r"^  fill: BUY \d+ .* @ [\d.]+ ", summary, re.M), summary
    assert re.search(r"^  exit: .* by rule (take_profit|stop_loss|time_stop) ", summary,
                     re.M), summary
    assert re.search(r"^  fill: SELL \d+ ", summary, re.M), summary
    assert re.search(r"^  P&L today: [+-][\d,]+\.\d\d USD realised over \d+ fill", summary,
                     re.M), summary
    assert "Affordability" not in out          # the demo account fits: no warning
    [started] = [x for x in out.splitlines() if "Bot started in DRY-RUN mode" in x]
    assert "Gateway: up" in started and "link down" not in started    # no contradiction
    logdir = tmp_path / "logs" / "demo"
    assert (logdir / "events.jsonl").stat().st_size > 0
    report = subprocess.run([sys.executable, "-m", "tools.stability_report", str(logdir),
                             "--no-chart"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=180)
    assert report.returncode == 0, report.stdout + report.stderr
    assert "Verdict: GO" in report.stdout
    assert not (tmp_path / "state").exists()          # the demo never touches real state
    assert "secret-x" not in out                      # and never posts to a real webhook


def test_the_summary_never_reads_a_setup_as_a_trade() -> None:
    from runtime.app.demo import demo_summary

    events = [{"event": "signal", "kind": "entry", "strategy": "A"}] * 4 + \
        [{"event": "signal", "kind": "rejected", "strategy": "A"}] * 5 + \
        [{"event": "order_rejected", "reason": "size: risk budget $18.00 < ..."}] * 4
    text = demo_summary(events, [], Path("logs/demo"))
    assert "entry setups: 4 signalled, 5 refused before the money path; 4 refused by the " \
           "money path" in text
    assert "order:" not in text and "fill:" not in text
    assert "P&L today: no trade, so no P&L" in text
