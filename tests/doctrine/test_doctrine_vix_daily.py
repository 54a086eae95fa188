"""The VIX as it was known from a daily file: the open from 09:30 ET, never the day's close.

No look-ahead is proven by perturbation: rewriting a day's high, low and close, and every
later row, must not change a single decision taken up to that day's end.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from config.market_calendar import ET
from doctrine.replay import RawBar, ReplayConfig, ReplayEngine, run_replay
from doctrine.sessions import et_date_of, et_epoch
from doctrine.vix_daily import DailyVix
from tests.harness.data import SPY_63, bars_of, data_file
from tests.harness.seeded_bars import sessions_from, write_bars, write_daily_vix
from tools.backtest.inputs import InputError, read_bars_csv, read_vix
from tools.replay import main as replay_main

VIX_DAILY = "vix_daily_cboe_1990-01-02_2026-07-03.csv"


def test_before_the_open_the_previous_close_from_the_open_the_open() -> None:
    d1, d2 = dt.date(2024, 3, 4), dt.date(2024, 3, 5)
    vix = DailyVix([(d1, 14.0, 22.0), (d2, 19.5, 12.0)])
    at = lambda d, h, m: et_epoch(d, dt.time(h, m))  # noqa: E731
    assert vix.known_at(at(d1, 9, 29)) is None            # nothing before the first row
    assert vix.known_at(at(d1, 9, 30)) == 14.0
    assert vix.known_at(at(d1, 15, 59)) == 14.0           # all day: the open, not 22
    assert vix.known_at(at(d2, 0, 1)) == 22.0             # overnight: yesterday's close
    assert vix.known_at(at(d2, 9, 29)) == 22.0
    assert vix.known_at(at(d2, 9, 30)) == 19.5
    assert vix.known_at(at(d2, 16, 0)) == 19.5            # never the day's close (12)
    assert vix.known_at(at(dt.date(2024, 3, 6), 10, 0)) is None  # no row: unknown


def strategies_by_bar(bars: Sequence[RawBar], vix: DailyVix) -> list[tuple[float, str]]:
    engine = ReplayEngine(["SPY"], config=ReplayConfig(dry_run=True, equity=25_000.0),
                          vix_daily=vix)
    return [(r.values.ts, r.strategy) for r in run_replay(engine, {"SPY": bars})]


def test_decisions_never_depend_on_the_day_s_close_or_later_rows(tmp_path: Path) -> None:
    days = sessions_from(dt.date(2024, 4, 1), 6)
    bars = read_bars_csv(write_bars(tmp_path / "spy.csv", days, seed=3))
    rng = random.Random(5)
    rows = [(d, rng.uniform(12, 24), rng.uniform(12, 30)) for d in days]
    base = strategies_by_bar(bars, DailyVix(rows))
    for cut in range(len(days)):
        # day `cut` keeps only its open; its close and every later row are rewritten
        perturbed = [(d, o, c) if i < cut else (d, o, rng.uniform(10, 40)) if i == cut
                     else (d, rng.uniform(10, 40), rng.uniform(10, 40))
                     for i, (d, o, c) in enumerate(rows)]
        other = strategies_by_bar(bars, DailyVix(perturbed))
        end = et_epoch(days[cut] + dt.timedelta(days=1), dt.time(0, 0))
        assert [s for s in other if s[0] < end] == [s for s in base if s[0] < end], cut


def test_each_session_follows_its_opening_vix(tmp_path: Path) -> None:
    days = sessions_from(dt.date(2024, 4, 1), 3)
    bars = read_bars_csv(write_bars(tmp_path / "spy.csv", days))
    # open says A / B / C; the close says the opposite each day (a peeking backtest flips)
    path = write_daily_vix(tmp_path / "vix.csv", [
        (days[0], 14.0, 30.0, 13.0, 29.0), (days[1], 21.0, 22.0, 12.0, 12.5),
        (days[2], 27.0, 28.0, 14.0, 15.0)])
    vix = read_vix(path)
    assert isinstance(vix, DailyVix)
    by_day: dict[dt.date, set[str]] = {}
    for ts, strategy in strategies_by_bar(bars, vix):
        by_day.setdefault(et_date_of(ts), set()).add(strategy)
    assert by_day == {days[0]: {"A"}, days[1]: {"B"}, days[2]: {"C"}}


def test_bundled_spy_sessions_get_a_and_b_from_the_cboe_file() -> None:
    """The 63 SPY sessions of 2024 with CBOE's daily file: A on calm opens, B on the days
    the VIX opened at 18 or above (mid-April 2024), exactly as the file's opens say."""
    bars = bars_of(SPY_63)
    vix = read_vix(data_file(VIX_DAILY))
    assert isinstance(vix, DailyVix)
    opens: dict[dt.date, float] = {}
    for line in data_file(VIX_DAILY).read_text().splitlines()[1:]:
        day, open_, *_ = line.split(",")
        opens[dt.date.fromisoformat(day)] = float(open_)
    seen: dict[dt.date, set[str]] = {}
    for ts, strategy in strategies_by_bar(bars, vix):
        seen.setdefault(et_date_of(ts), set()).add(strategy)
    assert len(seen) == 63
    expected = {d: "A" if opens[d] < 18 else "B" if opens[d] < 25 else "C" for d in seen}
    assert {d: s for d, s in seen.items()} == {d: {e} for d, e in expected.items()}
    assert {"A", "B"} <= set(expected.values())


def test_a_file_that_is_neither_bars_nor_daily_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vix.csv"
    path.write_text("day,value\n2024-01-02,13\n", encoding="utf-8")
    with pytest.raises(InputError, match="CBOE's daily file"):
        read_vix(path)


def test_timestamps_parse_like_fromisoformat_across_dst(tmp_path: Path) -> None:
    """The fast timestamp path gives the same instants as datetime.fromisoformat."""
    days = [dt.date(2024, 3, 8), dt.date(2024, 3, 11)]          # across the DST change
    path = write_bars(tmp_path / "spy.csv", days)
    bars = read_bars_csv(path)
    stamps = [line.split(",")[0] for line in path.read_text().splitlines()[1:]]
    assert [b[0] for b in bars] == [dt.datetime.fromisoformat(s).timestamp() for s in stamps]
    assert dt.datetime.fromtimestamp(bars[-1][0], ET).hour == 15


def test_the_default_replay_of_the_bundled_sessions_finds_the_daily_vix_beside_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No --vix: the CBOE file beside the bundled SPY file is pointed to (not copied), so the
    default replay exercises A and B; --no-vix keeps the fail-closed C."""
    bars = data_file(SPY_63)
    data_file(VIX_DAILY)
    out = tmp_path / "out.jsonl"
    assert replay_main(["--bars", str(bars), "--out", str(out), "--no-dry-run"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["vix"] == "daily" and VIX_DAILY in captured.err
    assert summary["strategy_bars"]["A"] > 0 and summary["strategy_bars"]["B"] > 0
    assert replay_main(["--bars", str(bars), "--out", str(out), "--no-dry-run",
                        "--no-vix"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["vix"] == "none" and summary["strategy_bars"]["C"] == summary["bars"]
