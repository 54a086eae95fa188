"""tools.consistency on a real (short) run: rotated journals, altered decisions, bad input."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trio.testing

from doctrine.replay import merge_events
from tests.harness import REPO
from tests.harness.brain import (
    brain_settings,
    day_bars,
    et,
    open_brain,
    plan_dict,
    write_plan,
)
from tests.harness.data import SPY_2019, VIX_2019, bars_of
from tools import consistency

DAY = dt.date(2019, 2, 12)


async def _play_one_day(tmp_path: Path) -> None:
    settings = brain_settings(tmp_path, LOG_MAX_BYTES="65536", LOG_BACKUP_COUNT="50")
    write_plan(settings.gameplan_path, plan_dict(DAY))
    spy, vix = day_bars(bars_of(SPY_2019), DAY), day_bars(bars_of(VIX_2019), DAY)
    async with open_brain(tmp_path, et(DAY, 8, 0), settings=settings) as brain:
        for at, kind, symbol, raw in merge_events({"SPY": spy}, vix, 60):
            await brain.clock.sleep_until(dt.datetime.fromtimestamp(at + 1, dt.UTC))
            if kind == 0:
                brain.set_vix(raw)
            else:
                await brain.send_bar(symbol, raw)
        await brain.settle(30)
        assert brain.entries


@pytest.fixture(scope="module")
def recorded_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A live session of 2019-02-12 whose journal rotates (64 KB files), played once."""
    root = tmp_path_factory.mktemp("one_day")
    trio.run(_play_one_day, root, clock=trio.testing.MockClock(autojump_threshold=0))
    return root / "logs"


@pytest.fixture
def one_day_run(recorded_day: Path, tmp_path: Path) -> Path:
    """A copy each test may alter."""
    return Path(shutil.copytree(recorded_day, tmp_path / "logs"))


def test_a_rotated_journal_is_read_oldest_first_and_matches(one_day_run: Path) -> None:
    files = consistency.journal_files(one_day_run)
    assert len(files) >= 3 and files[-1].name == "events.jsonl"
    assert files[0].name.endswith(f".{len(files) - 1}")
    result = consistency.compare_logdir(one_day_run)
    assert result.match, "\n".join(result.summary_lines())
    assert result.live_bars == 390 and result.bars_decision_checked == 390
    assert result.entries_live == result.entries_replay > 0


def test_a_decision_the_backtest_did_not_make_is_a_mismatch(one_day_run: Path) -> None:
    lines_of = {p: p.read_text(encoding="utf-8").splitlines()
                for p in consistency.journal_files(one_day_run)}
    for path, lines in lines_of.items():
        for i, line in enumerate(lines):
            event = json.loads(line)
            if event.get("kind") == "decision" and event["strategy"] == "A":
                event["strategy"] = "B"
                event["rule"] = "regime_b"
                lines[i] = json.dumps(event)
                path.write_text("\n".join(lines) + "\n", encoding="utf-8")
                break
        else:
            continue
        break
    result = consistency.compare_logdir(one_day_run)
    assert not result.match
    assert {d.kind for d in result.differences} == {"decision"}
    assert "B/regime_b" in result.differences[0].live
    assert "A/regime_a" in result.differences[0].replay


def test_the_command_line_prints_the_verdict_and_exit_codes(one_day_run: Path,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "verdict.json"
    proc = subprocess.run([sys.executable, "-m", "tools.consistency", str(one_day_run),
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("MATCH")
    assert json.loads(out.read_text(encoding="utf-8"))["live_bars"] == 390
    empty = tmp_path / "empty"
    empty.mkdir()
    assert consistency.main([str(empty)]) == 2
    assert consistency.main([str(tmp_path / "nowhere")]) == 2


def test_unusable_journals_are_refused_with_the_reason(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    logdir.mkdir()
    bar = {"ts": "2019-02-12T14:31:00Z", "event": "bar", "actor": "root.link.bar_feed",
           "symbol": "SPY", "bar_ts": "2019-02-12T14:30:00Z", "open": 1.0, "high": 1.0,
           "low": 1.0, "close": 1.0, "volume": 1.0, "source": "history"}
    (logdir / "events.jsonl").write_text(json.dumps(bar) + "\n", encoding="utf-8")
    with pytest.raises(consistency.UnusableInput, match="no live bar"):
        consistency.compare_logdir(logdir)
    bar["source"] = "live"
    (logdir / "events.jsonl").write_text(json.dumps(bar) + "\n", encoding="utf-8")
    with pytest.raises(consistency.UnusableInput, match="no accepted gameplan"):
        consistency.compare_logdir(logdir)
    bar["bar_ts"] = "yesterday"
    (logdir / "events.jsonl").write_text(json.dumps(bar) + "\n", encoding="utf-8")
    with pytest.raises(consistency.UnusableInput, match=r"events\.jsonl:1"):
        consistency.compare_logdir(logdir)
