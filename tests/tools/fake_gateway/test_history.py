"""IB's historical-request vocabulary: bar sizes, durations, end times, bar alignment."""

from __future__ import annotations

import datetime as dt

import pytest

from config.market_calendar import ET, UTC, get_calendar
from tools.fake_gateway.history import (
    HistoryRequestError,
    history_windows,
    parse_bar_size,
    parse_duration,
    parse_end,
    window_at,
)

NOW = dt.datetime(2024, 2, 21, 10, 0, 30, tzinfo=ET)


def test_bar_sizes_and_durations_parse_like_ib() -> None:
    assert parse_bar_size("1 min").seconds == 60
    assert parse_bar_size("5 secs").seconds == 5
    assert parse_bar_size("1 hour").seconds == 3600
    assert parse_bar_size("1 day").unit == "day"
    assert parse_duration("2 D") == (2, "D")
    for bad in ("7 mins", "1 sec", "banana"):
        with pytest.raises(HistoryRequestError):
            parse_bar_size(bad)
    with pytest.raises(HistoryRequestError):
        parse_duration("0 D")


def test_end_times_in_every_format_ib_accepts() -> None:
    assert parse_end("", NOW) == NOW
    assert parse_end("20240220 21:00:00 UTC", NOW) == dt.datetime(2024, 2, 20, 21, tzinfo=UTC)
    assert parse_end("20240220-21:00:00", NOW) == dt.datetime(2024, 2, 20, 21, tzinfo=UTC)
    assert parse_end("20240220 16:00:00 US/Eastern", NOW) == \
        dt.datetime(2024, 2, 20, 21, tzinfo=UTC)
    assert parse_end("20240220 16:00:00", NOW) == dt.datetime(2024, 2, 20, 21, tzinfo=UTC)
    assert parse_end("20300101 00:00:00 UTC", NOW) == NOW     # never beyond now
    with pytest.raises(HistoryRequestError):
        parse_end("yesterday", NOW)


def test_one_day_of_minutes_is_todays_session_so_far() -> None:
    windows = history_windows(get_calendar(), parse_bar_size("1 min"), (1, "D"), NOW)
    assert windows[0].start == dt.datetime(2024, 2, 21, 9, 30, tzinfo=ET)
    assert windows[-1].start == dt.datetime(2024, 2, 21, 10, 0, tzinfo=ET)   # forming
    assert len(windows) == 31


def test_two_days_include_the_previous_full_session() -> None:
    windows = history_windows(get_calendar(), parse_bar_size("1 min"), (2, "D"), NOW)
    assert windows[0].start == dt.datetime(2024, 2, 20, 9, 30, tzinfo=ET)
    assert len(windows) == 390 + 31


def test_before_the_open_one_day_means_the_previous_session() -> None:
    early = dt.datetime(2024, 2, 21, 9, 25, tzinfo=ET)
    windows = history_windows(get_calendar(), parse_bar_size("1 min"), (1, "D"), early)
    assert windows[0].start == dt.datetime(2024, 2, 20, 9, 30, tzinfo=ET)
    assert windows[-1].end == dt.datetime(2024, 2, 20, 16, 0, tzinfo=ET)


def test_hourly_bars_align_to_the_clock_and_clip_to_the_session() -> None:
    windows = history_windows(get_calendar(), parse_bar_size("1 hour"), (1, "D"),
                              dt.datetime(2024, 2, 20, 17, 0, tzinfo=ET))
    starts = [w.start.astimezone(ET).strftime("%H:%M") for w in windows]
    assert starts == ["09:30", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00"]


def test_seconds_duration_and_the_forming_window() -> None:
    windows = history_windows(get_calendar(), parse_bar_size("5 secs"), (60, "S"), NOW)
    assert len(windows) == 12
    w = window_at(get_calendar(), parse_bar_size("5 mins"), NOW)
    assert w is not None and w.start == dt.datetime(2024, 2, 21, 10, 0, tzinfo=ET)
    assert window_at(get_calendar(), parse_bar_size("1 min"),
                     dt.datetime(2024, 2, 21, 17, 0, tzinfo=ET)) is None
