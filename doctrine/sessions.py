"""Session lookups for the hot path: UTC epoch seconds in, cached NYSE session out.

`MarketCalendar.session_at` converts to US/Eastern on every call (about a microsecond);
bars arrive in time order, so caching the current session (and the current out-of-session
stretch) turns nearly every lookup into two float comparisons.
"""

from __future__ import annotations

import datetime as dt
import math

from config.market_calendar import ET, MarketCalendar, Session, get_calendar

UTC = dt.UTC


def epoch_of(ts: dt.datetime) -> float:
    """UTC epoch seconds of an aware datetime (naive ones are refused: no guessing the zone)."""
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts!r}: time must be timezone-aware")
    return ts.timestamp()


def utc_of(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, UTC)


def et_epoch(day: dt.date, at: dt.time) -> float:
    """Epoch seconds of wall time `at` US/Eastern on `day` (DST handled by zoneinfo)."""
    return dt.datetime.combine(day, at, tzinfo=ET).timestamp()


def et_date_of(epoch: float) -> dt.date:
    """The US/Eastern calendar date of an instant: the trading day, not the UTC day."""
    return dt.datetime.fromtimestamp(epoch, ET).date()


class SessionClock:
    """Which regular session (if any) contains an instant; O(1) for time-ordered queries."""

    __slots__ = ("_cal", "_gap_hi", "_gap_lo", "close_s", "current", "open_s")

    def __init__(self, calendar: MarketCalendar | None = None) -> None:
        self._cal = calendar if calendar is not None else get_calendar()
        self.current: Session | None = None   # the last session located, [open_s, close_s)
        self.open_s = math.inf
        self.close_s = -math.inf
        self._gap_lo = math.inf   # a known stretch [lo, hi) with no session in it
        self._gap_hi = -math.inf

    @property
    def calendar(self) -> MarketCalendar:
        return self._cal

    def locate(self, epoch: float) -> Session | None:
        """The session whose regular hours [open, close) contain `epoch`, else None."""
        if self.open_s <= epoch < self.close_s:
            return self.current
        if self._gap_lo <= epoch < self._gap_hi:
            return None
        when = utc_of(epoch)
        session = self._cal.session_at(when)
        if session is not None:
            self.current = session
            self.open_s = session.open.timestamp()
            self.close_s = session.close.timestamp()
            return session
        self._gap_lo = epoch
        self._gap_hi = self._cal.next_session_after(when).open.timestamp()
        return None

    def session_on(self, day: dt.date) -> Session | None:
        return self._cal.session(day)
