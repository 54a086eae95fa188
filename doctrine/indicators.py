"""Per-symbol incremental indicators: EMA fast/slow, Wilder RSI, session VWAP, Bollinger bands.

O(1) per bar on plain floats (no numpy per bar: at one value per bar, numpy's call overhead
costs more than the arithmetic). The formulas are TA-Lib's (operations.md), so tests compare
against `talib` to 1e-9:

* EMA(n): alpha = 2/(n+1), seeded with the SMA of the first n closes (value from bar n).
* RSI(n), Wilder: first averages are the simple means of the first n changes, then
  avg = (prev*(n-1) + current)/n (value from bar n+1). With no movement at all (both averages
  0) TA-Lib says 0, which would read as "deeply oversold" and could trigger Strategy B on a
  frozen feed; we say 50 (neutral) instead.
* Bollinger(n, k): SMA(n) +/- k * population standard deviation (value from bar n). The
  E[x^2]-E[x]^2 shortcut on raw SPY prices cancels catastrophically, so the window sums are
  kept relative to an anchor near the data and recomputed exactly every n bars: O(1)
  amortised and good to ~1e-12.
* Session VWAP: sum(typical*volume)/sum(volume) from the session open, typical = (H+L+C)/3,
  regular-hours bars only (the NYSE calendar decides, early closes and DST included); reset
  at each session; None outside regular hours and before any volume.

Gaps: a `BarGap` (or a hole between two bars of the same session) does NOT reset anything:
EMAs and RSI carry on across it, as they carry on across the overnight break. The next
snapshot is flagged `after_gap=True` so that signals do not read a crossover that spans the
hole. Bars must arrive in strictly increasing time; a duplicate or an older bar is refused
(`OutOfOrderBar`) rather than counted twice.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from doctrine.sessions import SessionClock, epoch_of, utc_of
from messages.brain import IndicatorSnapshot
from messages.market import Bar, BarGap, BarSource

if TYPE_CHECKING:
    from config.gameplan import Gameplan
    from config.market_calendar import Session

_INF = math.inf
_sqrt = math.sqrt
_new_values = tuple.__new__   # IndicatorValues without the NamedTuple's Python __new__


class OutOfOrderBar(ValueError):
    """A bar at or before the last one seen for the symbol: counting it would corrupt state."""


class BadBar(ValueError):
    """A bar with a non-finite or non-positive price, or a negative volume."""


@dataclass(frozen=True, slots=True)
class IndicatorParams:
    """Indicator periods; the doctrine's defaults, overridable from the gameplan."""

    ema_fast: int = 8
    ema_slow: int = 21
    rsi: int = 14
    bb_period: int = 20
    bb_std: float = 2.0

    def __post_init__(self) -> None:
        for name in ("ema_fast", "ema_slow", "rsi", "bb_period"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"indicator period {name} must be a positive integer, "
                                 f"got {value!r}")
        if self.rsi < 2 or self.bb_period < 2:
            raise ValueError("RSI and Bollinger periods must be at least 2")
        if self.ema_fast >= self.ema_slow:
            raise ValueError(f"ema_fast ({self.ema_fast}) must be shorter than ema_slow "
                             f"({self.ema_slow})")
        if not (self.bb_std > 0 and math.isfinite(self.bb_std)):
            raise ValueError(f"bb_std must be a positive number, got {self.bb_std!r}")

    @classmethod
    def from_plan(cls, plan: Gameplan | None) -> IndicatorParams:
        """The plan's `strategy_parameters` where present, the doctrine's defaults elsewhere.

        Changing a period mid-stream changes what every past value means: the Indicators actor
        must build a new IndicatorSet and warm it up again from history.
        """
        sp = plan.strategy_parameters if plan is not None else None
        if sp is None:
            return cls()
        base = cls()
        return cls(
            ema_fast=sp.ema_fast if sp.ema_fast is not None else base.ema_fast,
            ema_slow=sp.ema_slow if sp.ema_slow is not None else base.ema_slow,
            rsi=sp.rsi_period if sp.rsi_period is not None else base.rsi,
            bb_period=sp.bollinger_period if sp.bollinger_period is not None else base.bb_period,
            bb_std=sp.bollinger_std if sp.bollinger_std is not None else base.bb_std,
        )

    @property
    def warmup_bars(self) -> int:
        """Bars until every indicator has a value (RSI needs n+1 closes, the others n)."""
        return max(self.ema_slow, self.rsi + 1, self.bb_period)

    @property
    def history_bars(self) -> int:
        """Bars of history to request at start-up: enough for the SMA seed of the slow EMA to
        fade below 1e-6 of its weight, so a restarted bot agrees with one that never stopped.
        VWAP additionally needs every bar since today's open, which a request ending now and
        reaching back into the previous session already covers.
        """
        alpha = 2.0 / (self.ema_slow + 1)
        settle = math.ceil(math.log(1e-6) / math.log(1.0 - alpha))
        return max(self.warmup_bars, settle)


class IndicatorValues(NamedTuple):
    """The hot-path result of one bar: plain fields, no validation.

    Mirrors `IndicatorSnapshot` (same attribute names), so signals read either one.
    `ts` is the bar START in UTC epoch seconds. A NamedTuple because building one is the
    cheapest object Python has (`tuple.__new__` in C: a third of a slotted class's
    `__init__`), and replay builds one per bar.
    """

    symbol: str
    ts: float
    bar_seconds: int
    close: float
    rsi: float | None
    ema_fast: float | None
    ema_slow: float | None
    prev_ema_fast: float | None
    prev_ema_slow: float | None
    vwap: float | None
    bb_upper: float | None
    bb_mid: float | None
    bb_lower: float | None
    session: Session | None
    after_gap: bool
    live: bool

    @property
    def end_epoch(self) -> float:
        return self.ts + self.bar_seconds

    @property
    def session_date(self) -> dt.date | None:
        return self.session.date if self.session is not None else None

    @property
    def in_session(self) -> bool:
        return self.session is not None

    def to_snapshot(self, source: BarSource | None = None) -> IndicatorSnapshot:
        """The message for the channel (validated once, here, at the boundary)."""
        return IndicatorSnapshot(
            symbol=self.symbol, ts=utc_of(self.ts), bar_seconds=self.bar_seconds,
            close=self.close, rsi=self.rsi, ema_fast=self.ema_fast, ema_slow=self.ema_slow,
            prev_ema_fast=self.prev_ema_fast, prev_ema_slow=self.prev_ema_slow,
            vwap=self.vwap, bb_upper=self.bb_upper, bb_mid=self.bb_mid,
            bb_lower=self.bb_lower, session_date=self.session_date, after_gap=self.after_gap,
            source=source if source is not None else "live" if self.live else "history",
        )


class IndicatorSet:
    """All indicators of one symbol, updated one completed bar at a time."""

    __slots__ = (
        "_bb_anchor", "_bb_buf", "_bb_full", "_bb_i", "_bb_n", "_bb_s1", "_bb_s2", "_bb_since",
        "_bb_std",
        "_count", "_ema_f", "_ema_s", "_gap_pending", "_k_f", "_k_s", "_last_end",
        "_last_session", "_last_ts", "_n_f", "_n_s", "_prev_close", "_rsi_gain", "_rsi_loss",
        "_rsi_m", "_rsi_n", "_rsi_value", "_seed_f", "_seed_s", "_sessions", "_vwap",
        "_vwap_pv", "_vwap_session", "_vwap_vol", "params", "symbol",
    )

    def __init__(self, symbol: str, params: IndicatorParams | None = None,
                 sessions: SessionClock | None = None) -> None:
        self.symbol = symbol
        self.params = params if params is not None else IndicatorParams()
        self._sessions = sessions if sessions is not None else SessionClock()
        p = self.params
        self._n_f = p.ema_fast
        self._n_s = p.ema_slow
        self._k_f = 2.0 / (p.ema_fast + 1)
        self._k_s = 2.0 / (p.ema_slow + 1)
        self._count = 0
        self._seed_f = 0.0
        self._seed_s = 0.0
        self._ema_f: float | None = None
        self._ema_s: float | None = None
        self._rsi_n = p.rsi
        self._rsi_m = 0
        self._rsi_gain = 0.0
        self._rsi_loss = 0.0
        self._rsi_value: float | None = None
        self._prev_close: float | None = None
        self._bb_n = p.bb_period
        self._bb_std = p.bb_std
        self._bb_buf: list[float] = []
        self._bb_full = False
        self._bb_i = 0
        self._bb_anchor = 0.0
        self._bb_s1 = 0.0
        self._bb_s2 = 0.0
        self._bb_since = 0
        self._vwap_session: Session | None = None
        self._vwap_pv = 0.0
        self._vwap_vol = 0.0
        self._vwap: float | None = None
        self._last_ts = -_INF
        self._last_end = -_INF
        self._last_session: Session | None = None
        self._gap_pending = False

    # -- state -----------------------------------------------------------------------------
    @property
    def bars_seen(self) -> int:
        return self._count

    @property
    def warmed(self) -> bool:
        """EMAs, RSI and Bollinger all have values (VWAP depends on the session, not on this)."""
        return self._count >= self.params.warmup_bars

    @property
    def last_close(self) -> float | None:
        """The close of the last counted bar."""
        return self._prev_close

    @property
    def last_bar_ts(self) -> float | None:
        return None if self._last_ts == -_INF else self._last_ts

    def mark_gap(self, gap: BarGap | None = None) -> None:
        """Record that bars are missing before the next one (values carry on; next is flagged)."""
        if gap is not None and gap.symbol != self.symbol:
            raise ValueError(f"gap for {gap.symbol} given to the {self.symbol} indicators")
        self._gap_pending = True

    # -- updates ---------------------------------------------------------------------------
    def update(self, bar: Bar) -> IndicatorSnapshot:
        """Boundary API: a validated Bar in, a validated snapshot out."""
        if bar.symbol != self.symbol:
            raise ValueError(f"bar for {bar.symbol} given to the {self.symbol} indicators")
        values = self.update_values(epoch_of(bar.ts), bar.high, bar.low, bar.close, bar.volume,
                                    bar_seconds=bar.bar_seconds, live=bar.source == "live")
        return values.to_snapshot(bar.source)

    def update_values(self, ts: float, high: float, low: float, close: float, volume: float,
                      bar_seconds: int = 60, live: bool = True) -> IndicatorValues:
        """Hot path: one completed bar (start `ts` in UTC epoch seconds) in, values out."""
        if not ts > self._last_ts:
            raise OutOfOrderBar(
                f"{self.symbol} bar at {utc_of(ts).isoformat()} is not after the last one "
                f"({utc_of(self._last_ts).isoformat()})")
        if not (0.0 < close < _INF and 0.0 < high < _INF and 0.0 < low < _INF
                and 0.0 <= volume < _INF):
            raise BadBar(f"{self.symbol} bar at {utc_of(ts).isoformat()}: high={high!r} "
                         f"low={low!r} close={close!r} volume={volume!r}")
        sessions = self._sessions
        session = (sessions.current if sessions.open_s <= ts < sessions.close_s
                   else sessions.locate(ts))              # locate's own first test, inlined
        after_gap = self._gap_pending or (
            session is not None and session is self._last_session and ts != self._last_end)
        self._gap_pending = False
        self._last_ts = ts
        self._last_end = ts + bar_seconds
        self._last_session = session

        # EMAs, seeded with the SMA of the first n closes
        n = self._count + 1
        self._count = n
        prev_f = self._ema_f
        prev_s = self._ema_s
        if prev_f is not None:
            self._ema_f = prev_f + (close - prev_f) * self._k_f
        else:
            self._seed_f += close
            if n == self._n_f:
                self._ema_f = self._seed_f / self._n_f
        if prev_s is not None:
            self._ema_s = prev_s + (close - prev_s) * self._k_s
        else:
            self._seed_s += close
            if n == self._n_s:
                self._ema_s = self._seed_s / self._n_s

        # RSI, Wilder smoothing
        prev_close = self._prev_close
        self._prev_close = close
        if prev_close is not None:
            change = close - prev_close
            m = self._rsi_m + 1
            self._rsi_m = m
            p = self._rsi_n
            if m > p:
                gain = self._rsi_gain * (p - 1)
                loss = self._rsi_loss * (p - 1)
                if change < 0:
                    loss -= change
                else:
                    gain += change
                self._rsi_gain = gain = gain / p
                self._rsi_loss = loss = loss / p
                total = gain + loss
                self._rsi_value = 100.0 * (gain / total) if total != 0.0 else 50.0
            else:
                if change < 0:
                    self._rsi_loss -= change
                else:
                    self._rsi_gain += change
                if m == p:
                    self._rsi_gain = gain = self._rsi_gain / p
                    self._rsi_loss = loss = self._rsi_loss / p
                    total = gain + loss
                    self._rsi_value = 100.0 * (gain / total) if total != 0.0 else 50.0

        # Bollinger: window sums relative to an anchor, recomputed exactly every n bars
        bn = self._bb_n
        if self._bb_full:
            buf = self._bb_buf
            i = self._bb_i
            old = buf[i]
            buf[i] = close
            i += 1
            self._bb_i = i if i < bn else 0
            since = self._bb_since + 1
            if since >= bn:
                self._bb_rebase()
                s1 = self._bb_s1
                s2 = self._bb_s2
            else:
                self._bb_since = since
                anchor = self._bb_anchor
                d_new = close - anchor
                d_old = old - anchor
                self._bb_s1 = s1 = self._bb_s1 + (d_new - d_old)
                self._bb_s2 = s2 = self._bb_s2 + (d_new * d_new - d_old * d_old)
        else:
            self._bb_buf.append(close)
            if len(self._bb_buf) == bn:
                self._bb_full = True
                self._bb_rebase()
            s1 = self._bb_s1
            s2 = self._bb_s2
        if self._bb_full:
            dev = s1 / bn
            var = s2 / bn - dev * dev
            bb_mid = self._bb_anchor + dev
            band = self._bb_std * _sqrt(var) if var > 0.0 else 0.0
            bb_upper: float | None = bb_mid + band
            bb_lower: float | None = bb_mid - band
            mid: float | None = bb_mid
        else:
            bb_upper = mid = bb_lower = None

        # Session VWAP, regular hours only
        if session is not None:
            if session is not self._vwap_session:
                self._vwap_session = session
                self._vwap_pv = 0.0
                self._vwap_vol = 0.0
                self._vwap = None
            if volume > 0.0:
                self._vwap_pv += (high + low + close) / 3.0 * volume
                self._vwap_vol += volume
                self._vwap = self._vwap_pv / self._vwap_vol
            vwap = self._vwap
        else:
            vwap = None

        return _new_values(IndicatorValues, (
            self.symbol, ts, bar_seconds, close, self._rsi_value, self._ema_f, self._ema_s,
            prev_f, prev_s, vwap, bb_upper, mid, bb_lower, session, after_gap, live))

    def _bb_rebase(self) -> None:
        buf = self._bb_buf
        n = len(buf)
        anchor = math.fsum(buf) / n
        s1 = 0.0
        s2 = 0.0
        for x in buf:
            d = x - anchor
            s1 += d
            s2 += d * d
        self._bb_anchor = anchor
        self._bb_s1 = s1
        self._bb_s2 = s2
        self._bb_since = 0
