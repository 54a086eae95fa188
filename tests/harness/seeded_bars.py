"""Seeded market data for the backtest tests, so they run without ../shared/data.

Bars are a random walk over real NYSE sessions (the calendar's), 1-minute, regular hours,
written in shared/data's CSV format (bar-START timestamps with the US/Eastern offset); the
walk's drift flips every so often so that EMA crossovers (Strategy A) and band touches
(Strategy B) happen.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from pathlib import Path

from config.market_calendar import ET, get_calendar

BARS_HEADER = "timestamp,open,high,low,close,volume\n"


def sessions_from(first: dt.date, count: int) -> list[dt.date]:
    cal = get_calendar()
    return [s.date for s in cal.sessions(first, first + dt.timedelta(days=count * 2 + 10))
            ][:count]


def write_bars(path: Path, days: Sequence[dt.date], *, seed: int = 7,
               start_price: float = 500.0) -> Path:
    rng = random.Random(seed)
    cal = get_calendar()
    price = start_price
    drift = 0.0
    lines = [BARS_HEADER]
    for day in days:
        session = cal.session(day)
        assert session is not None, day
        t = session.open
        while t < session.close:
            if rng.random() < 0.03:
                drift = rng.choice((-1, 1)) * rng.uniform(0.0, 0.06)
            open_ = price
            price = max(1.0, price + drift + rng.gauss(0.0, 0.25))
            high = max(open_, price) + abs(rng.gauss(0.0, 0.05))
            low = min(open_, price) - abs(rng.gauss(0.0, 0.05))
            stamp = t.astimezone(ET).isoformat()
            lines.append(f"{stamp},{open_:.4f},{high:.4f},{low:.4f},{price:.4f},"
                         f"{rng.randint(1000, 100000)}\n")
            t += dt.timedelta(minutes=1)
    path.write_text("".join(lines), encoding="utf-8")
    return path


def write_daily_vix(path: Path, rows: Sequence[tuple[dt.date, float, float, float, float]]
                    ) -> Path:
    """CBOE's daily format: date,open,high,low,close."""
    body = "".join(f"{d.isoformat()},{o},{h},{lo},{c}\n" for d, o, h, lo, c in rows)
    path.write_text("date,open,high,low,close\n" + body, encoding="utf-8")
    return path
