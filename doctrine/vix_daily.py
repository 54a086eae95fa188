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
most a daily file can say without looking ahead. A reading carries the instant it was
published (the day's 09:30 open; for the previous close, 16:15 ET on that day), and replay
judges its age against `DAILY_MAX_AGE_S` instead of the live 5 minutes (which exist to catch
a dead intraday feed): a daily value is current until the next one is published.

Rows on days that are not trading sessions (CBOE has some on NYSE holidays since 2022) are
harmless: only the rows of the days asked about, and the closes before them, are read.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable

from doctrine.sessions import et_date_of, et_epoch

DAILY_OPEN_ET = dt.time(9, 30)
DAILY_CLOSE_ET = dt.time(16, 15)
DAILY_MAX_AGE_S = 4 * 86400.0
"""A Friday close is still the latest value on Monday before the open (a long weekend too)."""


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
        self._day_value: tuple[tuple[float, float] | None, tuple[float, float] | None] = (
            None, None)
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
        reading = self.reading_at(now_s)
        return reading[0] if reading is not None else None

    def reading_at(self, now_s: float) -> tuple[float, float] | None:
        """(value, published at) of the latest reading at `now_s`; the same tuple object
        while it stays the latest (so a caller can tell "new reading" by identity)."""
        return self.reading_span(now_s)[0]

    def reading_span(self, now_s: float
                     ) -> tuple[tuple[float, float] | None, float, float]:
        """(`reading_at(now_s)`, from, until): the reading stays the same for every instant
        in [from, until), so a time-ordered caller (replay, per bar) asks again only after."""
        if not self._lo <= now_s < self._hi:          # a new ET day (cached: hot path)
            day = et_date_of(now_s)
            self._lo = et_epoch(day, dt.time(0, 0))
            self._hi = et_epoch(day + dt.timedelta(days=1), dt.time(0, 0))
            self._switch_s = et_epoch(day, DAILY_OPEN_ET)
            self._day_value = self._readings_for(day)
        before, after = self._day_value
        if now_s >= self._switch_s:
            return after, self._switch_s, self._hi
        return before, self._lo, self._switch_s

    def _readings_for(self, day: dt.date) -> tuple[tuple[float, float] | None,
                                                   tuple[float, float] | None]:
        """(before the open: the last earlier close, from the open: today's open)."""
        i = bisect.bisect_left(self._dates, day)
        before = ((self._closes[i - 1], et_epoch(self._dates[i - 1], DAILY_CLOSE_ET))
                  if i > 0 else None)
        today = ((self._opens[i], et_epoch(day, DAILY_OPEN_ET))
                 if i < len(self._dates) and self._dates[i] == day else None)
        return before, today
