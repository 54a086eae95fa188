"""Market data: completed bars, marked gaps, quotes. Channel: BarFeed -> brain and money path."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from messages.base import Message, UtcDatetime

BarSource = Literal["history", "backfill", "live"]
Right = Literal["C", "P"]


class Bar(Message):
    """One COMPLETED bar. `ts` is the bar's START instant (as IB and the CSVs in shared/data).

    `source` says how it arrived: `history` (warm-up before the first live bar), `backfill`
    (filling a gap after a reconnect) or `live`. Indicators treat them alike; only live bars
    may trigger entries.
    """

    symbol: str
    ts: UtcDatetime
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0
    bar_seconds: int = 60
    source: BarSource = "live"
    session_id: int | None = None

    @property
    def end(self) -> dt.datetime:
        return self.ts + dt.timedelta(seconds=self.bar_seconds)


class BarGap(Message):
    """Bars in [start, end) that could not be delivered: downstream must not pretend continuity."""

    symbol: str
    start: UtcDatetime
    end: UtcDatetime
    reason: str
    bar_seconds: int = 60


class OptionSpec(Message):
    """An option contract by value, the way the brain names one (the link qualifies it)."""

    underlying: str
    expiry: dt.date
    strike: float
    right: Right
    multiplier: int = 100
    exchange: str = "SMART"
    trading_class: str | None = None

    @property
    def key(self) -> str:
        """Stable human-readable id, e.g. `SPY 2026-11-27 600C`."""
        strike = f"{self.strike:g}"
        return f"{self.underlying} {self.expiry.isoformat()} {strike}{self.right}"


class Quote(Message):
    """Latest top of book for an instrument (`key`: a symbol like `VIX`, or OptionSpec.key)."""

    key: str
    ts: UtcDatetime
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    bid_size: float | None = None
    ask_size: float | None = None
    volume: float | None = None
    open_interest: float | None = None   # options: contracts open (IB generic tick 101)
    delta: float | None = None
    implied_vol: float | None = None
    session_id: int | None = None

    @property
    def mid(self) -> float | None:
        if self.bid is None or self.ask is None or self.bid <= 0 or self.ask <= 0:
            return None
        return (self.bid + self.ask) / 2

    @property
    def spread_pct(self) -> float | None:
        """Bid/ask spread as a fraction of the mid; None when there is no two-sided quote."""
        mid = self.mid
        if mid is None or self.bid is None or self.ask is None:
            return None
        return (self.ask - self.bid) / mid


class VixReading(Message):
    """The latest VIX level with the instant it was observed (staleness is judged downstream)."""

    value: float = Field(allow_inf_nan=False)
    ts: UtcDatetime
