"""NYSE sessions (holidays and 13:00 ET early closes) from a maintained calendar.

exchange_calendars knows the rules; its schedule for DEFAULT_FIRST_DAY..DEFAULT_LAST_DAY is
flattened once into `nyse_sessions.json` next to this file (the weekdays without a session and
the early closes: a few KB), and the running bot builds its sessions from that table in plain
Python. So the bot never imports exchange_calendars and pandas (~40 MB resident, ~1 s at start);
only a range outside the table does. `python -m config.market_calendar --write` regenerates the
table after an exchange_calendars update; tests/config/test_market_calendar.py fails if the
table and the installed exchange_calendars disagree.

Lookups on the hot paths (every bar, every tick of the simulator) are O(1) dicts and bisects.
Everything the bot does is keyed on the US/Eastern *session date*, never on the UTC date.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ET = ZoneInfo("America/New_York")
UTC = dt.UTC

# exchange_calendars only looks about a year ahead by default; pass an explicit range.
DEFAULT_FIRST_DAY = dt.date(2015, 1, 1)
DEFAULT_LAST_DAY = dt.date(2035, 12, 31)
TABLE = Path(__file__).with_name("nyse_sessions.json")
REGULAR_OPEN = dt.time(9, 30)
REGULAR_CLOSE = dt.time(16, 0)


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
        table = _load_table()
        if table is not None and table.first_day <= first_day and last_day <= table.last_day:
            sessions = table.sessions(first_day, last_day)
        else:
            sessions = sessions_from_exchange_calendars(first_day, last_day)
        self.first_day = first_day
        self.last_day = last_day
        self._sessions: list[Session] = sessions
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
    """The process-wide calendar (built once from the table, a few ms)."""
    return MarketCalendar()


def _session(day: dt.date, open_et: dt.time, close_et: dt.time) -> Session:
    return Session(date=day,
                   open=dt.datetime.combine(day, open_et, tzinfo=ET).astimezone(UTC),
                   close=dt.datetime.combine(day, close_et, tzinfo=ET).astimezone(UTC))


@dataclass(frozen=True)
class SessionTable:
    """The flattened schedule: every weekday is a 09:30-16:00 ET session unless listed."""

    first_day: dt.date
    last_day: dt.date
    closed_weekdays: frozenset[dt.date]
    early_closes: dict[dt.date, dt.time]

    def sessions(self, first: dt.date, last: dt.date) -> list[Session]:
        out: list[Session] = []
        day = first
        while day <= last:
            if day.weekday() < 5 and day not in self.closed_weekdays:
                out.append(_session(day, REGULAR_OPEN,
                                    self.early_closes.get(day, REGULAR_CLOSE)))
            day += dt.timedelta(days=1)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"source": "exchange_calendars XNYS (python -m config.market_calendar --write)",
                "first_day": self.first_day.isoformat(), "last_day": self.last_day.isoformat(),
                "regular_hours_et": [REGULAR_OPEN.isoformat("minutes"),
                                     REGULAR_CLOSE.isoformat("minutes")],
                "closed_weekdays": sorted(d.isoformat() for d in self.closed_weekdays),
                "early_closes": {d.isoformat(): t.isoformat("minutes")
                                 for d, t in sorted(self.early_closes.items())}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SessionTable:
        return cls(first_day=dt.date.fromisoformat(data["first_day"]),
                   last_day=dt.date.fromisoformat(data["last_day"]),
                   closed_weekdays=frozenset(dt.date.fromisoformat(d)
                                             for d in data["closed_weekdays"]),
                   early_closes={dt.date.fromisoformat(d): dt.time.fromisoformat(t)
                                 for d, t in data["early_closes"].items()})

    @classmethod
    def from_sessions(cls, first: dt.date, last: dt.date,
                      sessions: Sequence[Session]) -> SessionTable:
        """Flatten a schedule; refuses one the table cannot express (another open time)."""
        by_date = {s.date: s for s in sessions}
        closed: set[dt.date] = set()
        early: dict[dt.date, dt.time] = {}
        day = first
        while day <= last:
            s = by_date.get(day)
            if s is None:
                if day.weekday() < 5:
                    closed.add(day)
            else:
                if s.open_et.time() != REGULAR_OPEN or day.weekday() >= 5:
                    raise ValueError(f"{day}: a session the table cannot express ({s})")
                if s.close_et.time() != REGULAR_CLOSE:
                    early[day] = s.close_et.time()
            day += dt.timedelta(days=1)
        return cls(first, last, frozenset(closed), early)


@functools.cache
def _load_table() -> SessionTable | None:
    try:
        return SessionTable.from_json(json.loads(TABLE.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError):
        return None


def sessions_from_exchange_calendars(first_day: dt.date, last_day: dt.date) -> list[Session]:
    """The schedule straight from exchange_calendars (imports pandas: ~1 s, ~40 MB)."""
    import warnings

    import exchange_calendars as xcals  # heavy import (pandas): only when first needed

    with warnings.catch_warnings():
        # exchange_calendars' own use of pandas APIs pandas 3 deprecates; not ours to fix
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        cal = xcals.get_calendar("XNYS", start=first_day.isoformat(), end=last_day.isoformat())
        sched = cal.schedule
    return [Session(date=label.date(), open=row["open"].to_pydatetime().astimezone(UTC),
                    close=row["close"].to_pydatetime().astimezone(UTC))
            for label, row in sched.iterrows()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.market_calendar")
    parser.add_argument("--write", action="store_true",
                        help=f"regenerate {TABLE.name} from the installed exchange_calendars")
    args = parser.parse_args(argv)
    if not args.write:
        parser.print_help()
        return 2
    table = SessionTable.from_sessions(
        DEFAULT_FIRST_DAY, DEFAULT_LAST_DAY,
        sessions_from_exchange_calendars(DEFAULT_FIRST_DAY, DEFAULT_LAST_DAY))
    TABLE.write_text(json.dumps(table.to_json(), indent=0) + "\n", encoding="utf-8")
    print(f"wrote {TABLE}: {len(table.closed_weekdays)} closed weekdays, "
          f"{len(table.early_closes)} early closes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
