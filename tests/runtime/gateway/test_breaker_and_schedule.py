"""The per-kind circuit breaker and the scheduled Gateway restart window."""

from __future__ import annotations

import datetime as dt

import pytest

from config.market_calendar import ET
from runtime.gateway.breaker import Breaker, BreakerOpen, BreakerState
from runtime.gateway.gateway_schedule import in_restart_window, next_restart_window, restart_window


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_consecutive_failures_and_refuses_without_asking() -> None:
    t = FakeTime()
    changes: list[tuple[str, str]] = []
    b = Breaker("historical", t, failure_threshold=3, cooldown=30.0,
                on_change=lambda _b, old, new: changes.append((old, new)))
    for _ in range(2):
        b.before_request()
        b.record_failure()
    assert b.state is BreakerState.CLOSED
    b.before_request()
    b.record_failure()
    assert b.state is BreakerState.OPEN
    t.now = 10.0
    with pytest.raises(BreakerOpen) as refused:
        b.before_request()
    assert refused.value.retry_in == pytest.approx(20.0)
    assert changes == [("closed", "open")]


def test_half_open_lets_one_trial_through_success_closes_failure_doubles_the_cooldown() -> None:
    t = FakeTime()
    b = Breaker("historical", t, failure_threshold=1, cooldown=30.0, max_cooldown=100.0)
    b.before_request()
    b.record_failure()
    t.now = 30.0
    b.before_request()                       # the trial
    assert b.state is BreakerState.HALF_OPEN
    with pytest.raises(BreakerOpen):
        b.before_request()                   # only one trial at a time
    b.record_failure()
    assert b.state is BreakerState.OPEN and b.current_cooldown == 60.0
    t.now = 90.0
    b.before_request()
    b.record_failure()
    assert b.current_cooldown == 100.0       # capped
    t.now = 190.0
    b.before_request()
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.failures == 0


def test_a_cancelled_trial_frees_the_slot_without_judging() -> None:
    t = FakeTime()
    b = Breaker("historical", t, failure_threshold=1, cooldown=5.0)
    b.before_request()
    b.record_failure()
    t.now = 5.0
    b.before_request()
    b.record_neutral()
    b.before_request()                       # a new trial may go
    assert b.state is BreakerState.HALF_OPEN


def test_the_restart_window_opens_a_minute_early_and_lasts_the_configured_minutes() -> None:
    start, end = restart_window(dt.date(2026, 11, 20), dt.time(16, 30), 10)
    assert (start.astimezone(ET).time(), end.astimezone(ET).time()) == (
        dt.time(16, 29), dt.time(16, 40))
    inside = dt.datetime(2026, 11, 20, 16, 35, tzinfo=ET)
    assert in_restart_window(inside, dt.time(16, 30), 10)
    assert not in_restart_window(inside + dt.timedelta(minutes=10), dt.time(16, 30), 10)


def test_the_window_is_16_30_eastern_on_both_sides_of_a_dst_change() -> None:
    for day in (dt.date(2024, 3, 8), dt.date(2024, 3, 11)):
        start, _ = restart_window(day, dt.time(16, 30), 10)
        assert start.astimezone(ET).strftime("%H:%M") == "16:29"
    assert restart_window(dt.date(2024, 3, 8), dt.time(16, 30), 10)[0].astimezone(
        dt.UTC).hour == 21
    assert restart_window(dt.date(2024, 3, 11), dt.time(16, 30), 10)[0].astimezone(
        dt.UTC).hour == 20


def test_next_restart_window_is_today_until_it_ends_then_tomorrow() -> None:
    before = dt.datetime(2026, 11, 20, 9, 0, tzinfo=ET)
    after = dt.datetime(2026, 11, 20, 17, 0, tzinfo=ET)
    assert next_restart_window(before, dt.time(16, 30), 10)[0].date() == dt.date(2026, 11, 20)
    assert next_restart_window(after, dt.time(16, 30), 10)[0].astimezone(ET).date() == \
        dt.date(2026, 11, 21)
