"""The seeded stand-ins for ../shared/data have the real data's names, ranges and quirks."""

from __future__ import annotations

import csv
import datetime as dt
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.harness import REPO
from tools.synthetic import SHARED_FILES, VIX_DAILY, FileSpec, minute_rows, write_shared_data


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _per_day(rows: list[dict[str, str]]) -> Counter[str]:
    return Counter(r["timestamp"][:10] for r in rows)


def test_the_set_has_every_file_with_the_real_header_and_is_seeded(tmp_path: Path) -> None:
    a = write_shared_data(tmp_path / "a", seed=3)
    b = write_shared_data(tmp_path / "b", seed=3)
    c = write_shared_data(tmp_path / "c", seed=4)
    names = sorted([*(f.name for f in SHARED_FILES), VIX_DAILY])
    assert sorted(p.name for p in a.glob("*.csv")) == names
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes()        # same seed, same bytes
    assert (a / SHARED_FILES[0].name).read_bytes() != (c / SHARED_FILES[0].name).read_bytes()
    spy = (a / SHARED_FILES[0].name).read_text(encoding="utf-8").splitlines()
    assert spy[0] == "timestamp,open,high,low,close,volume"
    assert (a / VIX_DAILY).read_text(encoding="utf-8").splitlines()[0] == \
        "date,open,high,low,close"


def test_the_63_sessions_cross_the_dst_change_and_skip_good_friday(tmp_path: Path) -> None:
    rows = _rows(write_shared_data(tmp_path) / SHARED_FILES[0].name)
    days = _per_day(rows)
    assert len(days) == 63 and set(days.values()) == {390}
    assert "2024-03-29" not in days                                      # Good Friday
    assert rows[0]["timestamp"] == "2024-02-20T09:30:00-05:00"
    assert any(r["timestamp"] == "2024-03-11T09:30:00-04:00" for r in rows)   # after DST
    for r in rows[:500]:
        o, h, lo, c = (float(r[k]) for k in ("open", "high", "low", "close"))
        assert lo <= min(o, c) <= max(o, c) <= h and int(r["volume"]) > 0


def test_vix_has_no_volume_and_misses_minutes_like_the_real_feed(tmp_path: Path) -> None:
    rows = _rows(write_shared_data(tmp_path) / SHARED_FILES[2].name)
    days = _per_day(rows)
    assert len(days) == 5 and all(381 <= n <= 387 for n in days.values())
    assert all(r["volume"] == "" for r in rows)
    assert not any(r["timestamp"].endswith("T09:30:00-05:00") for r in rows)


def test_an_early_close_and_a_holiday_follow_the_calendar() -> None:
    spec = FileSpec("spy_thanksgiving.csv", "SPY", dt.date(2024, 11, 25), dt.date(2024, 12, 3),
                    1, 590.0)
    days = Counter(row[:10] for row in minute_rows(spec))
    assert "2024-11-28" not in days                                      # Thanksgiving
    assert days["2024-11-29"] == 210                                     # 13:00 close
    assert days["2024-11-27"] == 390


def test_the_daily_vix_has_rows_on_weekday_holidays(tmp_path: Path) -> None:
    rows = _rows(write_shared_data(tmp_path) / VIX_DAILY)
    dates = {r["date"] for r in rows}
    assert "1990-01-02" in dates and rows[-1]["date"] == "2026-07-03"
    assert "2024-12-25" in dates                                         # never a calendar
    assert all(5 < float(r["close"]) < 100 for r in rows)


def test_market_data_tests_run_without_the_shared_data_and_none_is_skipped() -> None:
    env = {"CRUCIBLE_SHARED_DATA": "/nonexistent", "PYTHONPATH": str(REPO),
           "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         "tests/doctrine/test_doctrine_indicators.py", "tests/tools/fake_gateway/test_series.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "skipped" not in proc.stdout and " passed" in proc.stdout
