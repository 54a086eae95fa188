"""A one-day soak in CI: the real bot and simulator processes, faults, drills, the report.

`python -m tools.soak --days 1` exactly as an operator runs it (about a minute of wall time):
the bot must start and stop by itself, survive the day's faults and the 16:30 restart, pass
the guardrail drill, make the same decisions as the backtest, and earn a GO.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import REPO


@pytest.mark.slow
def test_a_one_day_soak_passes_with_its_drills_and_a_go(tmp_path: Path) -> None:
    out = tmp_path / "soak"
    proc = subprocess.run([sys.executable, "-m", "tools.soak", "--days", "1", "--seed", "3",
                           "--first-day", "2026-11-02", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    report = (out / "stability_report.md").read_text(encoding="utf-8")
    assert proc.returncode == 0, proc.stdout + proc.stderr + report[-3000:]
    assert "**Verdict: GO**" in report
    assert "**Soak verdict: PASS**" in report
    assert "result: flatten + halt + critical alert within one bar" in report or \
        "result: halt + critical alert within one bar" in report
    assert "MATCH" in report and "MISMATCH" not in report
    assert "scheduled Gateway restart" in report
    assert (out / "stability_report.png").stat().st_size > 10_000
    assert (out / "logs" / "events.jsonl").stat().st_size > 0
