"""`python -m runtime --demo`, the README's first command, as a new user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_the_demo_shows_the_tree_bars_signals_a_gateway_restart_and_stops_cleanly(
        tmp_path: Path, bot_env: dict[str, str]) -> None:
    env = {**bot_env, "DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/secret-x"}
    proc = subprocess.run([sys.executable, "-m", "runtime", "--demo", "--duration", "25"],
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
    assert (tmp_path / "logs" / "demo" / "events.jsonl").stat().st_size > 0
    assert not (tmp_path / "state").exists()          # the demo never touches real state
    assert "secret-x" not in out                      # and never posts to a real webhook
