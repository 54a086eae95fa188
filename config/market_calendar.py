"""NYSE sessions (holidays and 13:00 ET early closes) from a maintained calendar.

exchange_calendars knows the rules; we flatten its schedule into plain dicts once so that the
hot paths (every bar, every tick of the simulator) do O(1) lookups instead of pandas indexing.
Everything the bot does is keyed on the US/Eastern *session date*, never on the UTC date.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from dataclasses import dataclass
from zoneinfo import ZoneInfo

ET = ZoneInfo("America/New_York")
UTC = dt.UTC

# exchange_calendars only looks about a year ahead by default; pass an explicit range.
DEFAULT_FIRST_DAY = dt.date(2015, 1, 1)
DEFAULT_LAST_DAY = dt.date(2035, 12, 31)


@dataclass(frozen=True, slots=True)
class Session:
    """One regular trading session. `open`/`close` are timezone-aware UTC instants."""

    date: dt.date
    open: dt.datetime
    close: dt.datetime

    @property
    def early_close(self) -> bool:
        return self.close.astimezone(ET).time() < dt.time(16, 0)

    def contains(self, ts: dt.datetime) -> bool:
        """True if `ts` falls in [open, close)."""
        return self.open <= ts < self.close

    @property
    def open_et(self) -> dt.datetime:
        return self.open.astimezone(ET)

    @property
    def close_et(self) -> dt.datetime:
        return self.close.astimezone(ET)


class CalendarRangeError(LookupError):
    """A date outside the range the calendar was built for: refuse rather than guess."""


class MarketCalendar:
    """The NYSE (XNYS) calendar between two dates, precomputed."""

    def __init__(self, first_day: dt.date = DEFAULT_FIRST_DAY,
                 last_day: dt.date = DEFAULT_LAST_DAY) -> None:
        import warnings

        import exchange_calendars as xcals  # heavy import (pandas): only when first needed

        with warnings.catch_warnings():
            # exchange_calendars' own use of pandas APIs pandas 3 deprecates; not ours to fix
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            cal = xcals.get_calendar("XNYS", start=first_day.isoformat(),
                                     end=last_day.isoformat())
            sched = cal.schedule
        self.first_day = first_day
        self.last_day = last_day
        self._sessions: list[Session] = []
        for label, row in sched.iterrows():
            day = label.date()
            self._sessions.append(Session(
                date=day,
                open=row["open"].to_pydatetime().astimezone(UTC),
                close=row["close"].to_pydatetime().astimezone(UTC),
            ))
        self._by_date = {s.date: s for s in self._sessions}
        self._dates = [s.date for s in self._sessions]
        self._opens = [s.open for s in self._sessions]

    def _check(self, day: dt.date) -> None:
        if not (self.first_day <= day <= self.last_day):
            raise CalendarRangeError(
                f"{day} is outside the market calendar ({self.first_day}..{self.last_day})")

    def session(self, day: dt.date) -> Session | None:
        """The session on ET date `day`, or None on weekends and holidays."""
        self._check(day)
        return self._by_date.get(day)

    def is_session(self, day: dt.date) -> bool:
        return self.session(day) is not None

    def sessions(self, first: dt.date, last: dt.date) -> list[Session]:
        """Sessions with first <= date <= last, ascending."""
        self._check(first)
        self._check(last)
        lo = bisect.bisect_left(self._dates, first)
        hi = bisect.bisect_right(self._dates, last)
        return self._sessions[lo:hi]

    def session_at(self, ts: dt.datetime) -> Session | None:
        """The session whose regular hours contain `ts` (aware), else None."""
        s = self._by_date.get(ts.astimezone(ET).date())
        return s if s is not None and s.contains(ts) else None

    def next_session_after(self, ts: dt.datetime) -> Session:
        """The first session that opens strictly after `ts`."""
        i = bisect.bisect_right(self._opens, ts)
        if i >= len(self._sessions):
            raise CalendarRangeError(f"no session after {ts} within the calendar")
        return self._sessions[i]

    def current_or_next_session(self, ts: dt.datetime) -> Session:
        """The session in progress at `ts`, else the next one to open."""
        return self.session_at(ts) or self.next_session_after(ts)

    def previous_session(self, day: dt.date) -> Session:
        """The last session strictly before ET date `day`."""
        self._check(day)
        i = bisect.bisect_left(self._dates, day)
        if i == 0:
            raise CalendarRangeError(f"no session before {day} within the calendar")
        return self._sessions[i - 1]

    def next_session(self, day: dt.date) -> Session:
        """The first session strictly after ET date `day`."""
        self._check(day)
        i = bisect.bisect_right(self._dates, day)
        if i >= len(self._sessions):
            raise CalendarRangeError(f"no session after {day} within the calendar")
        return self._sessions[i]

    def sessions_back(self, day: dt.date, count: int) -> list[Session]:
        """The `count` sessions ending at `day` (inclusive if `day` is a session).

        This is the PDT window: "5 business days" means 5 trading sessions.
        """
        self._check(day)
        hi = bisect.bisect_right(self._dates, day)
        return self._sessions[max(0, hi - count):hi]


@functools.cache
def get_calendar() -> MarketCalendar:
    """The process-wide calendar (built once, ~1 s the first time)."""
    return MarketCalendar()
