"""Historical bars: IB's request vocabulary (durations, bar sizes, end times, date formats) mapped
onto the deterministic price series.

Only regular-trading-hours data exists in the simulator, so `useRTH=0` returns the same bars as
`useRTH=1` (documented simplification). Bars are aligned the way IB aligns them: on the clock
(ET midnight grid) and clipped to the session, so hourly bars start 09:30, 10:00, 11:00 …
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.market_calendar import ET, UTC, MarketCalendar, Session
from tools.fake_gateway.contracts import IND, ContractSpec
from tools.fake_gateway.market import Market
from tools.fake_gateway.series import OHLCV, merge_all

#: More bars than this in one answer is refused (IB refuses long small-bar requests too).
MAX_BARS = 50_000
WHAT_TO_SHOW = ("TRADES", "MIDPOINT", "BID", "ASK")
IB_TZ_NAME = "US/Eastern"   # the "TWS time zone" the simulator reports in


class HistoryRequestError(ValueError):
    """A request IB would refuse; `code` is the error code to answer with."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass(frozen=True, slots=True)
class BarSize:
    seconds: int          # intraday bar length; 0 for day/week/month bars
    unit: str             # "sec", "day", "week", "month"
    text: str

    @property
    def intraday(self) -> bool:
        return self.unit == "sec"


_BAR_SIZE_RE = re.compile(r"^\s*(\d+)\s*(secs?|mins?|hours?|days?|weeks?|months?|[DWMY])\s*$",
                          re.IGNORECASE)
_ALLOWED_SECONDS = {5, 10, 15, 30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600, 7200, 10800,
                    14400, 28800}


def parse_bar_size(text: str) -> BarSize:
    m = _BAR_SIZE_RE.match(text)
    if not m:
        raise HistoryRequestError(321, f"Error validating request.-'bP' : cause - Historical "
                                       f"data bar size setting is invalid: {text!r}")
    n, unit = int(m.group(1)), m.group(2).lower()
    if unit.startswith("sec"):
        seconds = n
    elif unit.startswith("min"):
        seconds = n * 60
    elif unit.startswith("hour"):
        seconds = n * 3600
    elif unit in ("d", "day", "days") and n == 1:
        return BarSize(0, "day", text)
    elif unit in ("w", "week", "weeks") and n == 1:
        return BarSize(0, "week", text)
    elif unit in ("m", "month", "months") and n == 1:
        return BarSize(0, "month", text)
    else:
        seconds = -1
    if seconds not in _ALLOWED_SECONDS:
        raise HistoryRequestError(321, f"Error validating request.-'bP' : cause - Historical "
                                       f"data bar size setting is invalid: {text!r}")
    return BarSize(seconds, "sec", text)


_DURATION_RE = re.compile(r"^\s*(\d+)\s*([SDWMY])\s*$", re.IGNORECASE)


def parse_duration(text: str) -> tuple[int, str]:
    m = _DURATION_RE.match(text)
    if not m or int(m.group(1)) <= 0:
        raise HistoryRequestError(321, "Error validating request.-'bP' : cause - Historical "
                                       f"data query duration is invalid: {text!r}")
    return int(m.group(1)), m.group(2).upper()


def parse_end(text: str, now: dt.datetime) -> dt.datetime:
    """IB's endDateTime: "" (now), `yyyymmdd hh:mm:ss[ tz]`, `yyyymmdd-hh:mm:ss` (UTC),
    `yyyymmdd` (end of that day in the TWS time zone)."""
    s = text.strip()
    if not s:
        return now
    try:
        if "-" in s and len(s) >= 17 and s[8] == "-":
            when = dt.datetime.strptime(s[:17], "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        elif len(s) == 8:
            when = dt.datetime.strptime(s, "%Y%m%d").replace(hour=23, minute=59, second=59,
                                                              tzinfo=ET)
        else:
            parts = s.split()
            day_time = " ".join(parts[:2])
            naive = dt.datetime.strptime(day_time, "%Y%m%d %H:%M:%S")
            tz_name = parts[2] if len(parts) > 2 else IB_TZ_NAME
            tz = UTC if tz_name.upper() in ("UTC", "GMT") else ZoneInfo(tz_name)
            when = naive.replace(tzinfo=tz)
    except (ValueError, IndexError, ZoneInfoNotFoundError) as exc:
        raise HistoryRequestError(321, "Error validating request.-'bP' : cause - Invalid end "
                                       f"date/time: {text!r}") from exc
    return min(when.astimezone(UTC), now)


@dataclass(frozen=True, slots=True)
class Window:
    """One bar's time span; `label` is the session date for day/week/month bars."""

    start: dt.datetime
    end: dt.datetime
    sessions: tuple[Session, ...]
    label: dt.date | None = None


def _intraday_windows(session: Session, seconds: int) -> list[Window]:
    midnight = dt.datetime.combine(session.date, dt.time(0), ET)
    open_off = (session.open - midnight).total_seconds()
    close_off = (session.close - midnight).total_seconds()
    k = int(open_off // seconds)
    out: list[Window] = []
    while k * seconds < close_off:
        a = max(session.open, midnight + dt.timedelta(seconds=k * seconds))
        b = min(session.close, midnight + dt.timedelta(seconds=(k + 1) * seconds))
        if b > a:
            out.append(Window(a.astimezone(UTC), b.astimezone(UTC), (session,)))
        k += 1
    return out


def window_at(calendar: MarketCalendar, size: BarSize, t: dt.datetime) -> Window | None:
    """The bar that is forming at `t` (None outside a session)."""
    session = calendar.session_at(t)
    if session is None:
        return None
    if size.intraday:
        midnight = dt.datetime.combine(session.date, dt.time(0), ET)
        k = int((t - midnight).total_seconds() // size.seconds)
        a = max(session.open, midnight + dt.timedelta(seconds=k * size.seconds))
        b = min(session.close, midnight + dt.timedelta(seconds=(k + 1) * size.seconds))
        return Window(a.astimezone(UTC), b.astimezone(UTC), (session,))
    return _period_windows(calendar, size, [session])[-1]


def _period_windows(calendar: MarketCalendar, size: BarSize,
                    sessions: list[Session]) -> list[Window]:
    if size.unit == "day":
        return [Window(s.open, s.close, (s,), s.date) for s in sessions]
    groups: dict[tuple[int, int], list[Session]] = {}
    for s in sessions:
        key = (s.date.isocalendar()[0], s.date.isocalendar()[1]) if size.unit == "week" else \
            (s.date.year, s.date.month)
        groups.setdefault(key, []).append(s)
    out: list[Window] = []
    for group in groups.values():
        first = group[0]
        # a period's bar covers the whole period: include its other sessions seen so far
        if size.unit == "week":
            monday = first.date - dt.timedelta(days=first.date.weekday())
            period = calendar.sessions(monday, monday + dt.timedelta(days=6))
        else:
            month_start = first.date.replace(day=1)
            next_month = (month_start + dt.timedelta(days=32)).replace(day=1)
            period = calendar.sessions(month_start, next_month - dt.timedelta(days=1))
        out.append(Window(period[0].open, period[-1].close, tuple(period), period[0].date))
    return out


def windows_in(calendar: MarketCalendar, size: BarSize, after: dt.datetime,
               before: dt.datetime) -> list[Window]:
    """Complete bars that start at or after `after` and end by `before`, oldest first."""
    if before <= after:
        return []
    sessions = calendar.sessions(after.astimezone(ET).date(), before.astimezone(ET).date())
    if size.intraday:
        return [w for s in sessions for w in _intraday_windows(s, size.seconds)
                if w.start >= after and w.end <= before]
    return [w for w in _period_windows(calendar, size, sessions)
            if w.start >= after and w.end <= before]


def history_windows(calendar: MarketCalendar, size: BarSize, duration: tuple[int, str],
                    end: dt.datetime) -> list[Window]:
    """The bars a request covers, oldest first (the last one may still be forming at `end`)."""
    n, unit = duration
    end_et = end.astimezone(ET)
    if unit == "S":
        first_t = end - dt.timedelta(seconds=n)
        first_day = first_t.astimezone(ET).date()
    elif unit == "D":
        first_t = None
        last_day = end_et.date()
        recent = calendar.sessions_back(last_day, n + 1)
        recent = [s for s in recent if s.open < end][-n:]
        first_day = recent[0].date if recent else last_day
    else:
        days = {"W": 7, "M": 30, "Y": 365}[unit] * n
        first_t = end - dt.timedelta(days=days)
        first_day = first_t.astimezone(ET).date()
    first_day = max(first_day, calendar.first_day)
    sessions = [s for s in calendar.sessions(first_day, end_et.date()) if s.open < end]
    if size.intraday:
        windows: list[Window] = []
        for s in sessions:
            for w in _intraday_windows(s, size.seconds):
                if w.start >= end:
                    break
                if first_t is not None and w.start < first_t:
                    continue
                windows.append(w)
                if len(windows) > MAX_BARS:
                    raise HistoryRequestError(162, "Historical Market Data Service error "
                                                   "message:Time length exceed max.")
        return windows
    return _period_windows(calendar, size, sessions)


@dataclass(frozen=True, slots=True)
class HistBar:
    date: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    count: int

    def values(self) -> tuple[float, float, float, float, float, float, int]:
        return (self.open, self.high, self.low, self.close, self.volume, self.wap, self.count)


def format_bar_date(window: Window, size: BarSize, format_date: int) -> str:
    if not size.intraday and window.label is not None:
        return f"{window.label:%Y%m%d}"
    if format_date == 2:
        return str(int(window.start.timestamp()))
    return f"{window.start.astimezone(ET):%Y%m%d %H:%M:%S} {IB_TZ_NAME}"


def format_header_time(t: dt.datetime) -> str:
    return f"{t.astimezone(ET):%Y%m%d %H:%M:%S} {IB_TZ_NAME}"


def compute_bar(market: Market, spec: ContractSpec, what: str, size: BarSize, window: Window,
                upto: dt.datetime, format_date: int) -> HistBar | None:
    """The bar of `window` as of `upto` (partial while the window is still open)."""
    parts: list[OHLCV] = []
    for session in window.sessions:
        a = max(window.start, session.open)
        b = min(window.end, session.close, upto)
        if b <= a:
            continue
        if spec.is_option:
            bar = market.option_bar(spec, session, a, b)
        else:
            bar = market.series(spec.symbol).aggregate(session, a, b)
        if bar is not None:
            parts.append(bar)
    merged = merge_all(parts)
    if merged is None:
        return None
    decimals = 2 if spec.is_option or spec.sec_type == IND else 4
    o, h, low, c = (round(x, decimals) for x in (merged.open, merged.high, merged.low,
                                                 merged.close))
    if what == "BID":
        o, h, low, c = (round(x - 0.01, decimals) for x in (o, h, low, c))
    elif what == "ASK":
        o, h, low, c = (round(x + 0.01, decimals) for x in (o, h, low, c))
    date = format_bar_date(window, size, format_date)
    if what != "TRADES":
        return HistBar(date, o, h, low, c, -1.0, -1.0, -1)
    volume = float(int(merged.volume))
    wap = round((h + low + c) / 3.0, 4)
    count = max(1, int(volume // 120)) if volume > 0 else 0
    return HistBar(date, o, h, low, c, volume, wap, count)
