"""BarFeed's look-back: never an empty first answer (IB then ignores keepUpToDate updates)."""

from __future__ import annotations

import datetime as dt

from actors.bar_feed import lookback
from config.market_calendar import ET, get_calendar


def et(day: str, hhmm: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=ET)


def _has_session_bars(now: dt.datetime, span: dt.timedelta) -> int:
    """Regular-hours minutes inside [now - span, now)."""
    start = now - span
    total = 0
    for s in get_calendar().sessions((start - dt.timedelta(days=1)).date(), now.date()):
        a, b = max(s.open, start), min(s.close, now)
        total += max(0, int((b - a).total_seconds() // 60))
    return total


def test_monday_morning_warm_up_reaches_back_two_sessions_not_two_calendar_days() -> None:
    now = et("2026-11-23", "06:00")                      # a Monday
    span = lookback(now, None, warmup_sessions=2)
    assert now - span <= et("2026-11-19", "09:30")       # Thursday's open
    assert _has_session_bars(now, span) >= 2 * 390


def test_pre_open_after_yesterdays_last_bar_still_reaches_into_yesterdays_session() -> None:
    now = et("2026-11-24", "06:00")
    cursor = et("2026-11-23", "15:59")
    span = lookback(now, cursor, warmup_sessions=2)
    assert _has_session_bars(now, span) >= 30


def test_mid_session_reconnect_reaches_back_past_the_cursor() -> None:
    now = et("2026-11-24", "11:00")
    cursor = et("2026-11-24", "10:10")                   # 50 minutes of missed bars
    span = lookback(now, cursor, warmup_sessions=2)
    assert now - span <= cursor


def test_after_a_holiday_weekend_the_last_session_is_found() -> None:
    now = et("2026-11-30", "06:00")                      # Monday after Thanksgiving week
    cursor = et("2026-11-27", "12:59")                   # Friday's early close
    span = lookback(now, cursor, warmup_sessions=2)
    assert _has_session_bars(now, span) >= 30
