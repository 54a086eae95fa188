"""Streaming subscriptions: market-data ticks, keepUpToDate bars and 5-second real-time bars.

Each subscription is polled by its connection's stream loop (a few times per WALL second, not
per simulated second: a soak at 3000× must stay cheap) and emits only what changed since the
previous poll. What a poll sends:

* ticks: the current quote; unchanged fields are not repeated (IB streams changes too);
* keepUpToDate: a final update for every bar completed since the previous poll (so no bar is ever
  skipped, however fast the clock), then the still-forming bar if it changed;
* real-time bars: every 5-second bar completed since the previous poll, but at most
  `MAX_RT_BARS_PER_POLL`; at very high speed the older ones are skipped (documented: a consumer
  of 5-second bars cannot keep up with 600 of them per wall second anyway).

Outside the regular session quotes are frozen, so nothing is sent (what a real Gateway does for
stocks and options overnight).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from config.market_calendar import MarketCalendar
from tools.fake_gateway import outgoing as out
from tools.fake_gateway.contracts import IND, ContractSpec
from tools.fake_gateway.history import (
    BarSize,
    HistBar,
    Window,
    compute_bar,
    window_at,
    windows_in,
)
from tools.fake_gateway.market import Market
from tools.fake_gateway.pricing import black_scholes, implied_vol
from tools.fake_gateway.series import SUB_SECONDS, mix64

MAX_CATCH_UP_BARS = 500
MAX_RT_BARS_PER_POLL = 24

Msg = bytes


@dataclass(slots=True)
class TickStream:
    req_id: int
    spec: ContractSpec
    generic_ticks: frozenset[str]
    sent: dict[tuple[str, int], object] = field(default_factory=dict)

    def poll(self, market: Market, now: dt.datetime) -> list[Msg]:
        if self.spec.is_option:
            return self._option(market, now)
        if self.spec.sec_type == IND:
            return self._index(market, now)
        return self._stock(market, now)

    # each helper emits a tick only when its value differs from what was sent last
    def _price(self, msgs: list[Msg], tick_type: int, price: float, size: float,
               size_type: int | None) -> None:
        key = ("p", tick_type)
        if self.sent.get(key) != (price, size):
            self.sent[key] = (price, size)
            msgs.append(out.tick_price(self.req_id, tick_type, price, size))
            if size_type is not None:
                self.sent[("s", size_type)] = size
                msgs.append(out.tick_size(self.req_id, size_type, size))

    def _size(self, msgs: list[Msg], tick_type: int, size: float) -> None:
        key = ("s", tick_type)
        if self.sent.get(key) != size:
            self.sent[key] = size
            msgs.append(out.tick_size(self.req_id, tick_type, size))

    def _generic(self, msgs: list[Msg], tick_type: int, value: float) -> None:
        key = ("g", tick_type)
        if self.sent.get(key) != value:
            self.sent[key] = value
            msgs.append(out.tick_generic(self.req_id, tick_type, value))

    def _string(self, msgs: list[Msg], tick_type: int, value: str) -> None:
        key = ("t", tick_type)
        if self.sent.get(key) != value:
            self.sent[key] = value
            msgs.append(out.tick_string(self.req_id, tick_type, value))

    def _stock(self, market: Market, now: dt.datetime) -> list[Msg]:
        q = market.stock_quote(self.spec.symbol, now)
        msgs: list[Msg] = []
        self._price(msgs, 1, q.bid, q.bid_size, 0)
        self._price(msgs, 2, q.ask, q.ask_size, 3)
        last_before = self.sent.get(("p", 4))
        self._price(msgs, 4, q.last, q.last_size, 5)
        self._size(msgs, 8, q.volume)
        self._price(msgs, 6, q.high, 0.0, None)
        self._price(msgs, 7, q.low, 0.0, None)
        self._price(msgs, 9, q.prev_close, 0.0, None)
        self._price(msgs, 14, q.open, 0.0, None)
        if self.sent.get(("p", 4)) != last_before:
            self._string(msgs, 45, str(int(q.last_time.timestamp())))
        und = self.spec.underlying
        if "106" in self.generic_ticks or "104" in self.generic_ticks:
            vix = market.vix(now)
            if "106" in self.generic_ticks:
                self._generic(msgs, 24, round(vix / 100.0 * und.iv_multiplier, 6))
            if "104" in self.generic_ticks:
                self._generic(msgs, 23, round(vix / 100.0 * und.iv_multiplier * 0.9, 6))
        if "100" in self.generic_ticks:
            base = float(int(q.volume / 60.0))
            self._size(msgs, 29, base)
            self._size(msgs, 30, float(int(base * 1.3)))
        if "101" in self.generic_ticks:
            day = int(now.timestamp() // 86400)
            self._size(msgs, 27, float(2_000_000 + mix64(day) % 500_000))
            self._size(msgs, 28, float(3_000_000 + mix64(day + 1) % 500_000))
        if "221" in self.generic_ticks:
            self._price(msgs, 37, round((q.bid + q.ask) / 2.0, 4), 0.0, None)
        if "233" in self.generic_ticks and self.sent.get(("t", 45)) is not None:
            ms = int(q.last_time.timestamp() * 1000)
            vwap = market.session_vwap(self.spec.symbol, now)
            self._string(msgs, 48, f"{q.last};{int(q.last_size)};{ms};{int(q.volume)};"
                                   f"{vwap};false")
        if "236" in self.generic_ticks:
            self._generic(msgs, 46, 3.0)
        return msgs

    def _index(self, market: Market, now: dt.datetime) -> list[Msg]:
        q = market.index_quote(self.spec.symbol, now)
        msgs: list[Msg] = []
        self._price(msgs, 4, q.last, 0.0, None)
        self._price(msgs, 6, q.high, 0.0, None)
        self._price(msgs, 7, q.low, 0.0, None)
        self._price(msgs, 9, q.prev_close, 0.0, None)
        self._price(msgs, 14, q.open, 0.0, None)
        return msgs

    def _option(self, market: Market, now: dt.datetime) -> list[Msg]:
        q = market.option_quote(self.spec, now)
        msgs: list[Msg] = []
        m = q.market
        before = (self.sent.get(("p", 1)), self.sent.get(("p", 2)), round(q.spot, 2))
        if m.bid is None:
            self._price(msgs, 1, -1.0, 0.0, 0)
        else:
            self._price(msgs, 1, m.bid, q.bid_size, 0)
        self._price(msgs, 2, m.ask, q.ask_size, 3)
        self._price(msgs, 4, q.last, q.last_size, 5)
        self._size(msgs, 8, q.volume)
        self._price(msgs, 9, q.prev_close, 0.0, None)
        if "101" in self.generic_ticks:          # option open interest: 27 calls, 28 puts
            self._size(msgs, 27 if self.spec.right == "C" else 28,
                       market.option_open_interest(self.spec, now))
        after = (self.sent.get(("p", 1)), self.sent.get(("p", 2)), round(q.spot, 2))
        if after != before or ("greeks", 0) not in self.sent:
            self.sent[("greeks", 0)] = True
            spec, t = self.spec, q.t_years
            for tick_type, price in ((10, m.bid), (11, m.ask), (12, q.last)):
                iv = implied_vol(price, q.spot, spec.strike, t, spec.right) if price else None
                if iv is None:
                    msgs.append(out.tick_option_computation(
                        self.req_id, tick_type, None, None, price, None, None, None, q.spot))
                    continue
                g = black_scholes(q.spot, spec.strike, t, iv, spec.right)
                msgs.append(out.tick_option_computation(
                    self.req_id, tick_type, iv, g.delta, price, g.gamma, g.vega, g.theta,
                    q.spot))
            mg = q.model
            msgs.append(out.tick_option_computation(
                self.req_id, 13, q.vol, mg.delta, mg.price, mg.gamma, mg.vega, mg.theta, q.spot))
        return msgs


@dataclass(slots=True)
class BarStream:
    """A keepUpToDate subscription: historicalDataUpdate (msg 90) for the forming bar."""

    req_id: int
    spec: ContractSpec
    what: str
    size: BarSize
    format_date: int
    last_window: Window | None
    last_bar: HistBar | None

    def poll(self, market: Market, calendar: MarketCalendar, now: dt.datetime) -> list[Msg]:
        msgs: list[Msg] = []
        current = window_at(calendar, self.size, now)
        last = self.last_window
        if last is not None and (current is None or current.start > last.start):
            final = self._bar(market, last, last.end)
            if final is not None and final != self.last_bar:
                msgs.append(out.historical_data_update(self.req_id, final))
                self.last_bar = final
            until = current.start if current is not None else now
            missed = windows_in(calendar, self.size, last.end, until)
            for w in missed[-MAX_CATCH_UP_BARS:]:
                bar = self._bar(market, w, w.end)
                if bar is not None:
                    msgs.append(out.historical_data_update(self.req_id, bar))
                    self.last_bar = bar
            if missed:
                self.last_window = missed[-1]
        if current is not None:
            bar = self._bar(market, current, now)
            if bar is not None and bar != self.last_bar:
                msgs.append(out.historical_data_update(self.req_id, bar))
                self.last_bar = bar
            self.last_window = current
        return msgs

    def _bar(self, market: Market, window: Window, upto: dt.datetime) -> HistBar | None:
        return compute_bar(market, self.spec, self.what, self.size, window, upto,
                           self.format_date)


@dataclass(slots=True)
class RealTimeBarStream:
    """reqRealTimeBars: 5-second bars (msg 50) as they complete."""

    req_id: int
    spec: ContractSpec
    what: str
    sent_until: dt.datetime       # end of the last bar sent (or the subscription time)

    def poll(self, market: Market, calendar: MarketCalendar, now: dt.datetime) -> list[Msg]:
        if self.spec.is_option:
            return []
        series = market.series(self.spec.symbol)
        session = series.session_at_or_before(now)
        if session is None:
            return []
        start = max(self.sent_until, session.open)
        end = min(now, session.close)
        if end <= start:
            if now >= session.close:
                self.sent_until = max(self.sent_until, session.close)
            return []
        u0 = math.ceil((start - session.open).total_seconds() / SUB_SECONDS)
        u1 = int((end - session.open).total_seconds() // SUB_SECONDS)
        msgs: list[Msg] = []
        for u in range(max(u0, u1 - MAX_RT_BARS_PER_POLL), u1):
            bar = series.sub_bar(session, u)
            t0 = session.open + dt.timedelta(seconds=u * SUB_SECONDS)
            if self.what == "TRADES":
                volume = bar.volume
                wap = round((bar.high + bar.low + bar.close) / 3.0, 4)
                count = max(1, int(volume // 100)) if volume > 0 else 0
            else:
                volume, wap, count = -1.0, -1.0, -1
            msgs.append(out.realtime_bar(self.req_id, int(t0.timestamp()), bar.open, bar.high,
                                         bar.low, bar.close, volume, wap, count))
        if u1 > u0:
            self.sent_until = session.open + dt.timedelta(seconds=u1 * SUB_SECONDS)
        if now >= session.close:
            self.sent_until = max(self.sent_until, session.close)
        return msgs
