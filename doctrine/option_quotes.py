"""Where replay's option quotes come from: a Black-Scholes model, or quotes the operator recorded.

Both answer the same three questions the option choice asks (which expiries are listed,
which strikes, what is the top of book of one contract now), so the engine does not care
which it has and the report can say which one priced its trades.

The model (the default): Black-Scholes on the underlying's bar close with sigma = VIX/100 and
a 5 % risk-free rate, no dividends; a spread of about 1 % of the premium (half spread
`half_spread_pct` of the mid, at least half a cent; bid rounded down and ask up to the cent);
weekly expiries (the last session of each ISO week, 4:00 pm or the early close) and strikes
every `strike_step` dollars around the price. No volume or open interest: replay waives the
two liquidity minimums it cannot judge; spread, affordability and sizing apply.

Recorded quotes (`--option-quotes CSV`): `timestamp,contract,bid,ask[,volume,open_interest]`,
one row per quote observation, `timestamp` the instant it was seen (ISO 8601 with its UTC
offset), `contract` the OptionSpec key (`SPY 2024-03-01 500C`). A contract's quote at an
instant is its latest row at or before it, if at most `max_age_s` old (else: no quote, so no
entry and no premium-based exit on that bar; time-based exits still run). Listed expiries
and strikes are the contracts the file names for the underlying. Rows are never used before
their timestamp: no look-ahead.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from config.market_calendar import MarketCalendar
from doctrine.options import OptionQuote
from doctrine.pricing import SECONDS_PER_YEAR, bs_price, years_between
from doctrine.sessions import et_epoch
from messages.market import OptionSpec, Right

SYNTHETIC_LIQUIDITY = 1e9
CALM_WINDOW_S = 1800.0
"""How long a Calm may last before the bid is computed again (the theta bound's window)."""
_PHI0 = 1.0 / math.sqrt(2.0 * math.pi)
_INF = math.inf
_SQRT2 = math.sqrt(2.0)
_exp, _sqrt, _log, _erfc, _floor = math.exp, math.sqrt, math.log, math.erfc, math.floor


class Calm(NamedTuple):
    """A held option's bid provably stays inside its premium band while the underlying stays
    within `room` - `theta_s` x (seconds since `t0`) of `s0`, the VIX stays `vix` and the time
    is before `until`: replay then skips repricing it (no premium exit can fire). A NamedTuple:
    one is built per repricing, and a frozen dataclass costs several times more to build."""

    s0: float
    t0: float
    vix: float
    room: float
    theta_s: float
    until: float

    def holds(self, s: float, now_s: float, vix: float | None) -> bool:
        return (now_s < self.until and vix == self.vix
                and abs(s - self.s0) + self.theta_s * (now_s - self.t0) < self.room)


class QuoteSource(Protocol):
    """The option chain as replay sees it."""

    def describe(self) -> str: ...

    def expiries(self, underlying: str, today: dt.date) -> list[dt.date]: ...

    def strikes(self, underlying: str, expiry: dt.date, price: float) -> list[float]: ...

    def quote(self, spec: OptionSpec, underlying_price: float, now_s: float,
              vix: float | None) -> OptionQuote | None: ...

    def bid(self, spec: OptionSpec, underlying_price: float, now_s: float,
            vix: float | None) -> float | None:
        """`quote(...).bid`, the mark of an open position (on every bar it is held)."""

    def mark(self, spec: OptionSpec, underlying_price: float, now_s: float, vix: float | None,
             band: tuple[float, float]) -> tuple[float | None, Calm | None]:
        """The bid, and (if the source can say) how far the underlying and the clock may move
        before the bid could leave the open interval `band` (a Calm), else None."""


@dataclass
class ModelQuotes:
    """Black-Scholes quotes from the underlying and the VIX (see the module docstring)."""

    calendar: MarketCalendar
    risk_free_rate: float = 0.05
    half_spread_pct: float = 0.005
    strike_step: float = 1.0

    _expiries: dict[dt.date, list[dt.date]] = field(default_factory=dict, repr=False)
    _expiry_close: dict[dt.date, float] = field(default_factory=dict, repr=False)

    def describe(self) -> str:
        return (f"Black-Scholes on the bar close, sigma = VIX/100, r = "
                f"{self.risk_free_rate:.1%}, no dividends; bid/ask = mid -/+ "
                f"{self.half_spread_pct:.1%} of mid (at least $0.005), rounded out to the "
                f"cent; weekly expiries (last session of each week), "
                f"${self.strike_step:g} strikes; volume/open-interest minimums waived")

    def expiries(self, underlying: str, today: dt.date) -> list[dt.date]:
        cached = self._expiries.get(today)
        if cached is not None:
            return cached
        sessions = self.calendar.sessions(today, today + dt.timedelta(days=45))
        out = [s.date for i, s in enumerate(sessions)
               if i + 1 == len(sessions)
               or sessions[i + 1].date.isocalendar()[1] != s.date.isocalendar()[1]]
        self._expiries[today] = out
        return out

    def strikes(self, underlying: str, expiry: dt.date, price: float) -> list[float]:
        """Eleven strikes around the price: the at-the-money one and one step out (the only
        moneyness the doctrine names) are always among them, and a longer ladder only
        costs the strike choice time on every entry."""
        step = self.strike_step
        centre = round(price / step) * step
        return [centre + i * step for i in range(-5, 6)]

    def quote(self, spec: OptionSpec, underlying_price: float, now_s: float,
              vix: float | None) -> OptionQuote | None:
        if vix is None or not vix > 0:
            return None
        t = years_between(now_s, self.expiry_close_s(spec.expiry))
        right: Right = spec.right
        mid = bs_price(underlying_price, spec.strike, t, vix / 100.0, right,
                       self.risk_free_rate)
        half = max(0.005, mid * self.half_spread_pct)
        bid = math.floor((mid - half) * 100.0) / 100.0
        ask = math.ceil((mid + half) * 100.0) / 100.0
        return OptionQuote(spec=spec, bid=bid if bid >= 0.01 else None, ask=max(ask, 0.01),
                           volume=SYNTHETIC_LIQUIDITY, open_interest=SYNTHETIC_LIQUIDITY)

    def bid(self, spec: OptionSpec, underlying_price: float, now_s: float,
            vix: float | None) -> float | None:
        """`quote(...).bid` without building the quote: the hot path of an open position."""
        if vix is None or not vix > 0:
            return None
        mid = self._mid(spec, underlying_price, self._years_to(spec.expiry, now_s), vix)
        half = max(0.005, mid * self.half_spread_pct)
        bid = _floor((mid - half) * 100.0) / 100.0
        return bid if bid >= 0.01 else None

    def mark(self, spec: OptionSpec, underlying_price: float, now_s: float, vix: float | None,
             band: tuple[float, float]) -> tuple[float | None, Calm | None]:
        """The bid, and a Calm while it provably stays inside `band` (lo, hi).

        The bound, for Black-Scholes with q = 0 and sigma fixed (the VIX unchanged): the
        mid moves at most |delta| <= 1 per dollar of the underlying, and at most
        |theta| <= S sigma phi(0) / (2 sqrt(T)) + r K per year of time, T the time left at
        the end of the window and S the highest price inside it. The bid is the mid less at
        most 0.5 % + half a cent, floored to the cent; margins of a cent cover float error.
        """
        if vix is None or not vix > 0:
            return None, None
        t = self._years_to(spec.expiry, now_s)
        s = underlying_price
        mid = self._mid(spec, s, t, vix)
        hs = self.half_spread_pct
        half = max(0.005, mid * hs)
        bid = _floor((mid - half) * 100.0) / 100.0
        if bid < 0.01:
            return None, None
        lo, hi = band
        room = min(mid - (lo + 0.025) / (1.0 - hs), (hi - 0.01) - mid)
        t_end = t - CALM_WINDOW_S / SECONDS_PER_YEAR
        if not (room > 0.0 and t_end > 0.0):
            return bid, None
        sigma = vix / 100.0
        theta = ((s + room) * sigma * _PHI0 / (2.0 * _sqrt(t_end))
                 + self.risk_free_rate * spec.strike) / SECONDS_PER_YEAR
        return bid, Calm(s, now_s, vix, room, theta, now_s + CALM_WINDOW_S)

    def _years_to(self, expiry: dt.date, now_s: float) -> float:
        close_s = self._expiry_close.get(expiry)
        if close_s is None:
            close_s = self.expiry_close_s(expiry)
        return max(0.0, (close_s - now_s) / SECONDS_PER_YEAR)     # years_between, inlined

    def _mid(self, spec: OptionSpec, s: float, t: float, vix: float) -> float:
        """bs_price(s, strike, t, vix/100, right, r) with q = 0, operation for operation (so
        the same floats: exp(-0*t) is exactly 1 and r - 0 exactly r); a test pins it."""
        k = spec.strike
        if not (s > 0 and k > 0 and s < _INF and k < _INF):
            raise ValueError(f"spot and strike must be positive numbers, got {s!r}, {k!r}")
        sigma = vix / 100.0
        r = self.risk_free_rate
        df_r = _exp(-r * t)
        vol_t = sigma * _sqrt(t)
        if vol_t == 0.0:
            fwd = s * 1.0 - k * df_r
            return max(fwd, 0.0) if spec.right == "C" else max(-fwd, 0.0)
        d1 = (_log(s / k) + (r - 0.0 + 0.5 * sigma * sigma) * t) / vol_t
        d2 = d1 - vol_t
        if spec.right == "C":
            return max(s * 1.0 * (0.5 * _erfc(-d1 / _SQRT2)) - k * df_r * (
                0.5 * _erfc(-d2 / _SQRT2)), 0.0)
        return max(k * df_r * (0.5 * _erfc(d2 / _SQRT2)) - s * 1.0 * (
            0.5 * _erfc(d1 / _SQRT2)), 0.0)

    def expiry_close_s(self, expiry: dt.date) -> float:
        cached = self._expiry_close.get(expiry)
        if cached is None:
            session = self.calendar.session(expiry)
            cached = (session.close.timestamp() if session is not None
                      else et_epoch(expiry, dt.time(16, 0)))
            self._expiry_close[expiry] = cached
        return cached


QuoteRow = tuple[float, OptionSpec, float | None, float | None, float | None, float | None]
"""(observed at, UTC epoch s; contract; bid; ask; volume; open interest)."""


class RecordedQuotes:
    """Quotes an operator recorded, looked up as of an instant (see the module docstring)."""

    __slots__ = ("_chains", "_rows", "_times", "max_age_s", "source")

    def __init__(self, rows: Iterable[QuoteRow], *, max_age_s: float = 900.0,
                 source: str = "recorded quotes") -> None:
        by_key: dict[str, list[tuple[float, OptionQuote]]] = {}
        chains: dict[str, dict[dt.date, set[float]]] = {}
        for ts, spec, bid, ask, volume, oi in rows:
            by_key.setdefault(spec.key, []).append((ts, OptionQuote(
                spec=spec, bid=bid, ask=ask,
                volume=volume if volume is not None else SYNTHETIC_LIQUIDITY,
                open_interest=oi if oi is not None else SYNTHETIC_LIQUIDITY)))
            chains.setdefault(spec.underlying, {}).setdefault(spec.expiry, set()).add(
                spec.strike)
        self._rows: dict[str, list[OptionQuote]] = {}
        self._times: dict[str, list[float]] = {}
        for key, items in by_key.items():
            items.sort(key=lambda item: item[0])
            self._times[key] = [t for t, _ in items]
            self._rows[key] = [q for _, q in items]
        self._chains = {u: {e: sorted(s) for e, s in c.items()} for u, c in chains.items()}
        self.max_age_s = max_age_s
        self.source = source

    def describe(self) -> str:
        count = sum(len(v) for v in self._rows.values())
        return (f"recorded option quotes from {self.source}: {count} quotes of "
                f"{len(self._rows)} contracts; a quote counts until {self.max_age_s:g} s old")

    def expiries(self, underlying: str, today: dt.date) -> list[dt.date]:
        return sorted(e for e in self._chains.get(underlying, {}) if e >= today)

    def strikes(self, underlying: str, expiry: dt.date, price: float) -> list[float]:
        return self._chains.get(underlying, {}).get(expiry, [])

    def quote(self, spec: OptionSpec, underlying_price: float, now_s: float,
              vix: float | None) -> OptionQuote | None:
        times = self._times.get(spec.key)
        if times is None:
            return None
        i = bisect.bisect_right(times, now_s) - 1
        if i < 0 or now_s - times[i] > self.max_age_s:
            return None
        return self._rows[spec.key][i]

    def bid(self, spec: OptionSpec, underlying_price: float, now_s: float,
            vix: float | None) -> float | None:
        q = self.quote(spec, underlying_price, now_s, vix)
        return q.bid if q is not None else None

    def mark(self, spec: OptionSpec, underlying_price: float, now_s: float, vix: float | None,
             band: tuple[float, float]) -> tuple[float | None, Calm | None]:
        return self.bid(spec, underlying_price, now_s, vix), None     # quotes jump: no bound
