"""The scheduled daily Gateway restart (IBC's AutoRestartTime): when a lost link is expected.

Both GatewayLink (an outage inside the window is an expected restart, an info notice, not an
alarm) and ModeGuard (exits only inside the window) use this one definition.
"""

from __future__ import annotations

import datetime as dt

from config.market_calendar import ET

LEAD = dt.timedelta(minutes=1)
"""The window opens a little before the restart time: IBC's clock and ours differ by seconds."""


def restart_window(day: dt.date, restart_time: dt.time,
                   window_minutes: float) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the restart window on ET date `day`, as aware datetimes."""
    at = dt.datetime.combine(day, restart_time, tzinfo=ET)
    return at - LEAD, at + dt.timedelta(minutes=window_minutes)


def in_restart_window(now: dt.datetime, restart_time: dt.time, window_minutes: float) -> bool:
    start, end = restart_window(now.astimezone(ET).date(), restart_time, window_minutes)
    return start <= now < end


def next_restart_window(now: dt.datetime, restart_time: dt.time,
                        window_minutes: float) -> tuple[dt.datetime, dt.datetime]:
    """The window in progress at `now`, else the next one (every day: IBC restarts daily)."""
    day = now.astimezone(ET).date()
    for offset in (0, 1):
        start, end = restart_window(day + dt.timedelta(days=offset), restart_time, window_minutes)
        if now < end:
            return start, end
    raise AssertionError("unreachable")
