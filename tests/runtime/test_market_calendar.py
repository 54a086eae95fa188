"""NYSE sessions from the maintained calendar: holidays, early closes, DST, the CLI."""

from __future__ import annotations

import datetime as dt

import pytest

from config.market_calendar import ET, CalendarRangeError, get_calendar
from tools.calendar import main as calendar_main


@pytest.mark.parametrize("day", ["2025-01-09", "2026-07-03", "2027-12-24", "2024-03-29"])
def test_known_closures_have_no_session(day: str) -> None:
    assert get_calendar().session(dt.date.fromisoformat(day)) is None


@pytest.mark.parametrize(("day", "close"), [("2026-11-27", "13:00"), ("2026-12-24", "13:00"),
                                            ("2027-12-31", "16:00"), ("2024-03-11", "16:00")])
def test_session_close_times_in_eastern(day: str, close: str) -> None:
    s = get_calendar().session(dt.date.fromisoformat(day))
    assert s is not None
    assert s.open_et.strftime("%H:%M") == "09:30"
    assert s.close_et.strftime("%H:%M") == close
    assert s.early_close is (close == "13:00")


def test_open_is_0930_eastern_on_both_sides_of_the_dst_change() -> None:
    cal = get_calendar()
    before, after = cal.session(dt.date(2024, 3, 8)), cal.session(dt.date(2024, 3, 11))
    assert before is not None and after is not None
    assert before.open.hour == 14 and after.open.hour == 13      # UTC moves, ET does not


def test_session_at_and_next_session() -> None:
    cal = get_calendar()
    friday_night = dt.datetime(2026, 11, 20, 20, 0, tzinfo=ET)
    assert cal.session_at(friday_night) is None
    assert cal.next_session_after(friday_night).date == dt.date(2026, 11, 23)
    assert cal.sessions_back(dt.date(2026, 11, 30), 5)[0].date == dt.date(2026, 11, 23)


def test_dates_outside_the_calendar_are_refused_not_guessed() -> None:
    with pytest.raises(CalendarRangeError):
        get_calendar().session(dt.date(2099, 1, 2))


def test_calendar_cli_prints_one_line_per_session(capsys: pytest.CaptureFixture[str]) -> None:
    assert calendar_main(["--from", "2026-11-25", "--to", "2026-11-30"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2026-11-25 09:30 16:00", "2026-11-27 09:30 13:00", "2026-11-30 09:30 16:00"]
