"""Quotes at any instant: stocks, the VIX index and options priced off both.

Outside a regular session every quote is frozen at the last close (nothing trades, so nothing
moves): that is what lets the streams go silent overnight without special cases.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from config.market_calendar import MarketCalendar, Session
from tools.fake_gateway.contracts import UNDERLYINGS, ContractSpec, OptionCalendar
from tools.fake_gateway.pricing import (
    Greeks,
    OptionMarket,
    black_scholes,
    quote_option,
    round_tick,
    smile_vol,
)
from tools.fake_gateway.series import (
    OHLCV,
    STOCK_SCALE,
    VIX_SCALE,
    PriceSeries,
    WalkParams,
    load_bars_csv,
    mix64,
)

log = logging.getLogger("tools.fake_gateway.market")

YEAR_SECONDS = 365.0 * 86400.0
STOCK_SYMBOLS = ("SPY", "QQQ", "IWM")


@dataclass(frozen=True, slots=True)
class StockQuote:
    in_session: bool
    bid: float
    ask: float
    last: float
    bid_size: float
    ask_size: float
    last_size: float
    volume: float
    open: float
    high: float
    low: float
    prev_close: float
    last_time: dt.datetime


@dataclass(frozen=True, slots=True)
class IndexQuote:
    in_session: bool
    last: float
    open: float
    high: float
    low: float
    prev_close: float


@dataclass(frozen=True, slots=True)
class OptionQuote:
    in_session: bool
    spot: float
    vix: float
    t_years: float
    vol: float
    model: Greeks
    market: OptionMarket
    bid_size: float
    ask_size: float
    last: float
    last_size: float
    volume: float
    prev_close: float


def symbol_from_csv_name(path: Path, default: str = "SPY") -> str:
    """`spy_1m_….csv` → SPY: the data files name their symbol first."""
    head = path.name.split("_", 1)[0].upper()
    return head if head in STOCK_SYMBOLS else default


class Market:
    """Every symbol's price series plus the quoting rules."""

    def __init__(self, calendar: MarketCalendar, *, seed: int, bars_csv: Path | None = None,
                 vix_csv: Path | None = None) -> None:
        self.calendar = calendar
        self.options = OptionCalendar(calendar)
        self.bars_symbol = symbol_from_csv_name(bars_csv) if bars_csv else None
        self._series: dict[str, PriceSeries] = {}
        for symbol in STOCK_SYMBOLS:
            und = UNDERLYINGS[symbol]
            rows = load_bars_csv(bars_csv) if bars_csv and symbol == self.bars_symbol else None
            walk = WalkParams(code=und.code, base_price=und.base_price, daily_sd=und.daily_vol,
                              gap_sd=und.daily_vol * 0.3, kappa=0.01, revert_to_base=False,
                              base_volume=und.base_volume)
            self._series[symbol] = PriceSeries(symbol, calendar, seed, walk, STOCK_SCALE, rows)
        vix_rows = load_bars_csv(vix_csv) if vix_csv else None
        vix_walk = WalkParams(code=UNDERLYINGS["VIX"].code, base_price=16.0, daily_sd=0.25,
                              gap_sd=0.05, kappa=0.08, revert_to_base=True, base_volume=0.0,
                              driver_beta=-30.0)
        self._series["VIX"] = PriceSeries("VIX", calendar, seed, vix_walk, VIX_SCALE, vix_rows,
                                          driver=self._series["SPY"])

    # -- series & sessions ------------------------------------------------------------------
    def series(self, symbol: str) -> PriceSeries:
        try:
            return self._series[symbol]
        except KeyError:
            raise KeyError(f"no price series for {symbol!r}") from None

    def csv_sessions(self) -> list[dt.date]:
        """The sessions the --bars CSV covers (for the default start)."""
        if self.bars_symbol is None:
            return []
        return self._series[self.bars_symbol].csv_dates()

    def session_at(self, t: dt.datetime) -> Session | None:
        return self.calendar.session_at(t)

    def effective_time(self, t: dt.datetime) -> tuple[dt.datetime, Session | None]:
        """`t` itself during a session, else the close of the last session (frozen quotes)."""
        session = self._series["SPY"].session_at_or_before(t)
        if session is None:
            return t, None
        if t >= session.close:
            return session.close, session
        return t, session

    def day_so_far(self, symbol: str, t: dt.datetime) -> tuple[OHLCV | None, Session | None]:
        t_eff, session = self.effective_time(t)
        if session is None:
            return None, None
        return self._series[symbol].aggregate(session, session.open, t_eff), session

    # -- prices ---------------------------------------------------------------------------
    def price(self, symbol: str, t: dt.datetime) -> float:
        return self._series[symbol].price_at(t)

    def vix(self, t: dt.datetime) -> float:
        return round(self._series["VIX"].price_at(t), 2)

    def stock_quote(self, symbol: str, t: dt.datetime) -> StockQuote:
        t_eff, session = self.effective_time(t)
        series = self._series[symbol]
        last = round_tick(series.price_at(t_eff))
        bid = round(last - 0.01, 2) if (mix64(int(t_eff.timestamp()) // 5) & 1) else last
        ask = round(bid + 0.01, 2)
        slot = int(t_eff.timestamp()) // 5
        h = mix64(slot * 7 + UNDERLYINGS[symbol].code)
        day, _ = self.day_so_far(symbol, t)
        prev_close = series.previous_close(session) if session is not None else last
        return StockQuote(
            in_session=self.calendar.session_at(t) is not None, bid=bid, ask=ask, last=last,
            bid_size=float(100 * (1 + h % 30)), ask_size=float(100 * (1 + (h >> 8) % 30)),
            last_size=float(100 * (1 + (h >> 16) % 5)),
            volume=day.volume if day else 0.0,
            open=day.open if day else last, high=day.high if day else last,
            low=day.low if day else last, prev_close=prev_close, last_time=t_eff,
        )

    def session_vwap(self, symbol: str, t: dt.datetime) -> float:
        """Σ(typical price × volume) / Σ volume of the session's complete minutes up to `t`."""
        t_eff, session = self.effective_time(t)
        if session is None:
            return self.price(symbol, t)
        day = self._series[symbol].day(session)
        m = min(day.minutes, int((t_eff - session.open).total_seconds() // 60))
        volume = sum(day.v[:m])
        if m == 0 or volume <= 0:
            return self.price(symbol, t_eff)
        weighted = sum((h + lo + c) / 3.0 * v for h, lo, c, v in
                       zip(day.h[:m], day.low[:m], day.c[:m], day.v[:m], strict=True))
        return round(weighted / volume, 4)

    def index_quote(self, symbol: str, t: dt.datetime) -> IndexQuote:
        t_eff, session = self.effective_time(t)
        series = self._series[symbol]
        last = round(series.price_at(t_eff), 2)
        day, _ = self.day_so_far(symbol, t)
        prev_close = series.previous_close(session) if session is not None else last
        return IndexQuote(in_session=self.calendar.session_at(t) is not None, last=last,
                          open=day.open if day else last, high=day.high if day else last,
                          low=day.low if day else last, prev_close=prev_close)

    # -- options --------------------------------------------------------------------------
    def option_years_left(self, spec: ContractSpec, t: dt.datetime) -> float:
        close = self.options.expiry_close(spec.expiry_date)
        return max(0.0, (close - t).total_seconds()) / YEAR_SECONDS

    def option_theo(self, spec: ContractSpec, spot: float, vix: float,
                    t: dt.datetime) -> tuple[float, float, float]:
        """(model price, vol, years left) for the option at `t` with the given spot/VIX."""
        und = spec.underlying
        t_years = self.option_years_left(spec, t)
        vol = smile_vol(vix, und.iv_multiplier, spot, spec.strike, t_years)
        if t_years <= 0.0:
            intrinsic = max(0.0, spot - spec.strike) if spec.right == "C" else \
                max(0.0, spec.strike - spot)
            return intrinsic, vol, 0.0
        return black_scholes(spot, spec.strike, t_years, vol, spec.right).price, vol, t_years

    def option_quote(self, spec: ContractSpec, t: dt.datetime) -> OptionQuote:
        t_eff, session = self.effective_time(t)
        und = spec.underlying
        spot = self._series[und.symbol].price_at(t_eff)
        vix = self._series["VIX"].price_at(t_eff)
        t_years = self.option_years_left(spec, t_eff)
        vol = smile_vol(vix, und.iv_multiplier, spot, spec.strike, t_years)
        model = black_scholes(spot, spec.strike, t_years, vol, spec.right)
        market = quote_option(model.price, spot, spec.strike, vol, t_years, und.liquidity)
        slot = int(t_eff.timestamp()) // 5
        h = mix64(slot * 131 + spec.con_id)
        dist = abs(math.log(spec.strike / spot)) / max(vol * math.sqrt(max(t_years, 1e-6)),
                                                      1e-6)
        volume = 0.0
        prev_close = market.mid
        if session is not None:
            elapsed = (t_eff - session.open).total_seconds() / max(
                1.0, (session.close - session.open).total_seconds())
            daily = 30_000.0 * math.exp(-0.5 * dist * dist) / und.liquidity + 50.0
            volume = float(int(daily * max(0.0, elapsed) ** 0.9))
            prev = self.calendar.previous_session(session.date)
            prev_spot = self._series[und.symbol].day(prev).c[-1]
            prev_vix = self._series["VIX"].day(prev).c[-1]
            prev_theo, _, _ = self.option_theo(spec, prev_spot, prev_vix, prev.close)
            prev_close = round_tick(prev_theo)
        return OptionQuote(
            in_session=self.calendar.session_at(t) is not None, spot=spot, vix=vix,
            t_years=t_years, vol=vol, model=model, market=market,
            bid_size=float(1 + h % 120) if market.bid is not None else 0.0,
            ask_size=float(1 + (h >> 9) % 120), last=round_tick(market.mid),
            last_size=float(1 + (h >> 18) % 15), volume=volume, prev_close=prev_close,
        )

    def option_open_interest(self, spec: ContractSpec, t: dt.datetime) -> float:
        """Contracts open in this option: like real chains, highest at the money and at the
        near expiries, thin far out; fixed within a day (IB updates it overnight)."""
        t_eff, session = self.effective_time(t)
        und = spec.underlying
        spot = self._series[und.symbol].price_at(t_eff)
        vix = self._series["VIX"].price_at(t_eff)
        t_years = max(self.option_years_left(spec, t_eff), 1.0 / 365.0)
        vol = smile_vol(vix, und.iv_multiplier, spot, spec.strike, t_years)
        dist = abs(math.log(spec.strike / spot)) / max(vol * math.sqrt(t_years), 1e-6)
        day = (session.date if session else t_eff.date()).toordinal()
        noise = 0.7 + 0.6 * (mix64(day * 8191 + spec.con_id) % 1000) / 1000.0
        return float(int(60_000.0 * math.exp(-0.35 * dist * dist) / und.liquidity * noise + 20))

    def option_bar(self, spec: ContractSpec, session: Session, start: dt.datetime,
                   end: dt.datetime) -> OHLCV | None:
        """An option's bar from its underlying's bar (premiums are monotone in the spot)."""
        und_bar = self._series[spec.symbol].aggregate(session, start, end)
        if und_bar is None:
            return None
        end_eff = min(end, session.close)
        vix_open = self._series["VIX"].price_at(start)
        vix_close = self._series["VIX"].price_at(end_eff)
        o, _, _ = self.option_theo(spec, und_bar.open, vix_open, start)
        c, _, _ = self.option_theo(spec, und_bar.close, vix_close, end_eff)
        a, _, _ = self.option_theo(spec, und_bar.high, vix_close, end_eff)
        b, _, _ = self.option_theo(spec, und_bar.low, vix_close, end_eff)
        o, c, a, b = (round_tick(x) for x in (o, c, a, b))
        volume = float(int(und_bar.volume / 400.0))
        return OHLCV(o, max(o, c, a, b), min(o, c, a, b), c, volume)


def load_market(calendar: MarketCalendar, *, seed: int, bars: Path | None,
                vix: Path | None) -> Market:
    for path in (bars, vix):
        if path is not None and not path.is_file():
            raise FileNotFoundError(f"data file not found: {path}")
    return Market(calendar, seed=seed, bars_csv=bars, vix_csv=vix)
