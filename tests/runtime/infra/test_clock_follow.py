"""A simulated clock follows the Gateway simulator's, but never by a silent multi-day jump."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import trio
import trio.testing

from config.market_calendar import ET
from runtime.infra.clock import Clock

START = dt.datetime(2026, 11, 20, 9, 25, tzinfo=ET)


async def test_a_late_start_of_a_few_minutes_is_followed(
        autojump_clock: trio.testing.MockClock) -> None:
    clock = Clock(START, speed=60.0)
    assert clock.follow(START + dt.timedelta(minutes=7)) == pytest.approx(420.0)
    assert clock.now_et() == START + dt.timedelta(minutes=7)
    assert clock.refused_jump is None


async def test_a_multi_day_jump_is_refused_with_one_warning_saying_the_fix(
        autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock(START, speed=60.0)
    caplog.set_level(logging.WARNING, logger="runtime.clock")
    sunday = dt.datetime(2026, 12, 6, 14, 45, tzinfo=ET)
    assert clock.follow(sunday) == 0.0
    assert clock.now_et().date() == START.date()                  # not moved
    assert clock.refused_jump == pytest.approx((sunday - START).total_seconds())
    [record] = caplog.records
    text = record.getMessage()
    assert "Gateway's clock reads 2026-12-06 14:45:00 ET" in text
    assert "16.2 days" in text and "--start equal to --sim-start" in text


async def test_the_limit_is_ten_minutes_at_real_speed_and_two_wall_minutes_when_fast(
        autojump_clock: trio.testing.MockClock) -> None:
    slow, fast = Clock(START), Clock(START, speed=120.0)
    assert slow.max_follow_jump() == 600.0 and fast.max_follow_jump() == 14_400.0
    assert slow.follow(START + dt.timedelta(minutes=11)) == 0.0
    assert fast.follow(START + dt.timedelta(hours=3)) == pytest.approx(10_800.0)
