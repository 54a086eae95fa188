"""The VIX as it was known at an instant, from a DAILY file (CBOE's `date,open,high,low,close`).

A backtest over intraday bars with only daily VIX rows must not peek: the day's high, low and
close are known only after the close, so using any of them for a decision taken during that
day is look-ahead (the classic backtest that "knew" a calm close on a day that opened in
panic). What a daily row honestly gives:

* from the day's 09:30 ET open on: that day's OPEN (CBOE's first print at the open);
* before 09:30 ET: the CLOSE of the last earlier row (yesterday's close, known since about
  16:15 ET the day before).

So every session is judged by its opening VIX all day long. That is coarser than an
intraday feed (no pivots within the day; the VIX gate of a plan sees the open), and it is the
most a daily file can say without looking ahead. The reading is re-observed at each bar (its
timestamp is the bar's end), since the value is the latest known one, not a stale print;
the 5-minute staleness rule exists for dead intraday feeds.

Rows on days that are not trading sessions (CBOE has some on NYSE holidays since 2022) are
harmless: only the rows of the days asked about, and the closes before them, are read.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable

from doctrine.sessions import et_date_of, et_epoch

DAILY_OPEN_ET = dt.time(9, 30)


class DailyVix:
    """Rows of a daily VIX file, answering "what was known at this instant"."""

    __slots__ = ("_closes", "_dates", "_day_value", "_hi", "_lo", "_opens", "_switch_s")

    def __init__(self, rows: Iterable[tuple[dt.date, float, float]]) -> None:
        """`rows`: (date, open, close), any order; a later duplicate date wins."""
        by_date: dict[dt.date, tuple[float, float]] = {}
        for day, open_, close in rows:
            by_date[day] = (open_, close)
        self._dates = sorted(by_date)
        self._opens = [by_date[d][0] for d in self._dates]
        self._closes = [by_date[d][1] for d in self._dates]
        self._lo = self._hi = 0.0
        self._day_value: tuple[float | None, float | None] = (None, None)
        self._switch_s = 0.0

    def __len__(self) -> int:
        return len(self._dates)

    @property
    def first_day(self) -> dt.date | None:
        return self._dates[0] if self._dates else None

    @property
    def last_day(self) -> dt.date | None:
        return self._dates[-1] if self._dates else None

    def known_at(self, now_s: float) -> float | None:
        """The VIX level known at `now_s` (UTC epoch s), or None if the file says nothing."""
        if not self._lo <= now_s < self._hi:          # a new ET day (cached: hot path)
            day = et_date_of(now_s)
            self._lo = et_epoch(day, dt.time(0, 0))
            self._hi = et_epoch(day + dt.timedelta(days=1), dt.time(0, 0))
            self._switch_s = et_epoch(day, DAILY_OPEN_ET)
            self._day_value = self._values_for(day)
        before, after = self._day_value
        return after if now_s >= self._switch_s else before

    def _values_for(self, day: dt.date) -> tuple[float | None, float | None]:
        """(before the open: the last earlier close, from the open: today's open)."""
        i = bisect.bisect_left(self._dates, day)
        before = self._closes[i - 1] if i > 0 else None
        today = self._opens[i] if i < len(self._dates) and self._dates[i] == day else None
        return before, today
