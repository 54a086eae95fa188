"""The instruments the simulator knows: SPY, QQQ, IWM (stock + weekly options) and the VIX index.

Option conIds are not looked up but *computed*: the (underlying, expiry, strike, right) tuple is
packed into the id. That makes every option conId stable across simulator restarts and lets a
client that remembered a conId (the bot's persisted positions) resolve it without the simulator
having seen it before.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from config.market_calendar import ET, MarketCalendar

STK = "STK"
OPT = "OPT"
IND = "IND"

OPTION_CONID_BASE = 1_000_000_000
_EPOCH = dt.date(2015, 1, 1)
_DAY_SLOTS = 8192      # expiry days since _EPOCH (good until 2037)
_STRIKE_SLOTS = 8192   # strikes in half dollars (< $4096)

#: How far ahead weekly expiries are listed (the issue: "over the next ~6 weeks").
CHAIN_DAYS = 42
#: Strikes listed around the underlying price by reqSecDefOptParams.
CHAIN_STRIKE_BAND = 0.15

MONDAY, WEDNESDAY, FRIDAY = 0, 2, 4

STOCK_ORDER_TYPES = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AON,AVGCOST,BASKET,BENCHPX,CASHQTY,COND,CONDORDER,"
    "DARKONLY,DARKPOLL,DAY,DEACT,DEACTDIS,DEACTEOD,DIS,DUR,GAT,GTC,GTD,GTT,HID,IBKRATS,ICE,"
    "IMB,IOC,LIT,LMT,LOC,MIDPX,MIT,MKT,MOC,MTL,NGCOMB,NODARK,NONALGO,OCA,OPG,OPGREROUT,PEGBENCH,"
    "PEGMID,POSTATS,POSTONLY,PREOPGRTH,PRICECHK,REL,REL2MID,RELPCTOFS,RPI,RTH,SCALE,SCALEODD,"
    "SCALERST,SIZECHK,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,SWEEP,TRAIL,TRAILLIT,TRAILLMT,"
    "TRAILMIT,WHATIF"
)
OPTION_ORDER_TYPES = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,DEACTDIS,DEACTEOD,"
    "GAT,GTC,GTD,GTT,HID,ICE,IOC,LIT,LMT,MIT,MKT,MTL,NGCOMB,NONALGO,OCA,OPENCLOSE,PEGMIDVOL,"
    "PEGMKTVOL,PEGPRMVOL,PEGSRFVOL,POSTONLY,PRICECHK,REL,RELPCTOFS,RELSTK,SIZECHK,STP,STPLMT,"
    "TRAIL,TRAILLIT,TRAILLMT,TRAILMIT,VOLAT,WHATIF"
)
STOCK_EXCHANGES = (
    "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,NASDAQ,DRCTEDGE,BEX,BATS,EDGEA,BYX,IEX,EDGX,"
    "FOXRIVER,PEARL,NYSENAT,LTSE,MEMX,IBEOS,OVERNIGHT,TPLUS0,PSX"
)
OPTION_EXCHANGES = (
    "SMART,AMEX,CBOE,PHLX,PSE,ISE,BOX,BATS,NASDAQOM,CBOE2,NASDAQBX,MIAX,GEMINI,EDGX,MERCURY,"
    "PEARL,EMERALD,MEMX,IBUSOPT"
)


@dataclass(frozen=True, slots=True)
class Underlying:
    """A stock/index the simulator serves, with what its options and quotes should look like."""

    code: int
    symbol: str
    sec_type: str
    con_id: int
    exchange: str
    primary_exchange: str
    trading_class: str
    long_name: str
    base_price: float          # level of the seeded random walk when no CSV drives it
    daily_vol: float           # daily log-return stdev of the walk
    iv_multiplier: float       # option ATM IV = VIX/100 × this
    liquidity: float           # 1 = SPY; larger = wider option spreads, less volume
    expiry_weekdays: frozenset[int]
    base_volume: float         # average shares per minute (walk)
    stock_type: str = "ETF"

    @property
    def has_options(self) -> bool:
        return bool(self.expiry_weekdays)


UNDERLYINGS: dict[str, Underlying] = {
    u.symbol: u
    for u in (
        Underlying(0, "SPY", STK, 756733, "SMART", "ARCA", "SPY", "SPDR S&P 500 ETF TRUST",
                   480.0, 0.009, 0.85, 1.0, frozenset({MONDAY, WEDNESDAY, FRIDAY}), 115_000.0),
        Underlying(1, "QQQ", STK, 320227571, "SMART", "NASDAQ", "NMS",
                   "INVESCO QQQ TRUST SERIES 1", 410.0, 0.012, 1.1, 1.2,
                   frozenset({MONDAY, WEDNESDAY, FRIDAY}), 100_000.0),
        Underlying(2, "IWM", STK, 9579970, "SMART", "ARCA", "IWM", "ISHARES RUSSELL 2000 ETF",
                   200.0, 0.013, 1.3, 1.6, frozenset({FRIDAY}), 60_000.0),
        Underlying(3, "VIX", IND, 13455763, "CBOE", "", "VIX", "CBOE Volatility Index",
                   16.0, 0.0, 0.0, 0.0, frozenset(), 0.0, stock_type=""),
    )
}
_BY_CODE = {u.code: u for u in UNDERLYINGS.values()}
_BY_CONID = {u.con_id: u for u in UNDERLYINGS.values()}


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """A fully resolved contract, as the simulator describes it on the wire."""

    con_id: int
    symbol: str
    sec_type: str
    expiry: str = ""          # YYYYMMDD for options
    strike: float = 0.0
    right: str = ""           # "C" / "P" for options
    multiplier: str = ""
    exchange: str = "SMART"
    primary_exchange: str = ""
    currency: str = "USD"
    local_symbol: str = ""
    trading_class: str = ""

    @property
    def is_option(self) -> bool:
        return self.sec_type == OPT

    @property
    def underlying(self) -> Underlying:
        return UNDERLYINGS[self.symbol]

    @property
    def expiry_date(self) -> dt.date:
        return dt.datetime.strptime(self.expiry, "%Y%m%d").date()

    @property
    def price_multiplier(self) -> float:
        return float(self.multiplier) if self.multiplier else 1.0

    def with_exchange(self, exchange: str) -> ContractSpec:
        return dataclasses.replace(self, exchange=exchange) if exchange else self

    def summary(self) -> dict[str, object]:
        """A small JSON-able description (orders log, status)."""
        out: dict[str, object] = {"conId": self.con_id, "symbol": self.symbol,
                                  "secType": self.sec_type}
        if self.is_option:
            out.update(expiry=self.expiry, strike=self.strike, right=self.right)
        return out


def underlying_contract(und: Underlying) -> ContractSpec:
    return ContractSpec(
        con_id=und.con_id, symbol=und.symbol, sec_type=und.sec_type, exchange=und.exchange,
        primary_exchange=und.primary_exchange, local_symbol=und.symbol,
        trading_class=und.trading_class,
    )


def occ_local_symbol(symbol: str, expiry: dt.date, right: str, strike: float) -> str:
    """The OCC option symbol IB uses as localSymbol, e.g. `SPY   240221C00497000`."""
    return f"{symbol:<6}{expiry:%y%m%d}{right}{round(strike * 1000):08d}"


def option_con_id(und: Underlying, expiry: dt.date, strike: float, right: str) -> int:
    day = (expiry - _EPOCH).days
    half_dollars = round(strike * 2)
    if not (0 <= day < _DAY_SLOTS) or not (0 < half_dollars < _STRIKE_SLOTS):
        raise ValueError(f"option outside the encodable range: {expiry} {strike}")
    packed = ((und.code * _DAY_SLOTS + day) * _STRIKE_SLOTS + half_dollars) * 2
    return OPTION_CONID_BASE + packed + (1 if right == "P" else 0)


def option_contract(und: Underlying, expiry: dt.date, strike: float, right: str) -> ContractSpec:
    return ContractSpec(
        con_id=option_con_id(und, expiry, strike, right), symbol=und.symbol, sec_type=OPT,
        expiry=f"{expiry:%Y%m%d}", strike=float(strike), right=right, multiplier="100",
        exchange="SMART", primary_exchange="", local_symbol=occ_local_symbol(
            und.symbol, expiry, right, strike),
        trading_class=und.symbol,
    )


def decode_option_con_id(con_id: int) -> tuple[Underlying, dt.date, float, str] | None:
    packed = con_id - OPTION_CONID_BASE
    if packed < 0:
        return None
    right = "P" if packed % 2 else "C"
    packed //= 2
    half_dollars = packed % _STRIKE_SLOTS
    packed //= _STRIKE_SLOTS
    day = packed % _DAY_SLOTS
    code = packed // _DAY_SLOTS
    und = _BY_CODE.get(code)
    if und is None or not und.has_options or half_dollars == 0:
        return None
    return und, _EPOCH + dt.timedelta(days=day), half_dollars / 2.0, right


def parse_occ(local_symbol: str) -> tuple[str, dt.date, str, float] | None:
    text = local_symbol.strip()
    if len(text) < 15:
        return None
    tail = text[-15:]
    symbol = text[:-15].strip()
    try:
        expiry = dt.datetime.strptime(tail[:6], "%y%m%d").date()
        right = tail[6]
        strike = int(tail[7:]) / 1000.0
    except ValueError:
        return None
    if right not in ("C", "P"):
        return None
    return symbol, expiry, right, strike


def normalize_right(right: str) -> str:
    r = right.strip().upper()
    return {"CALL": "C", "PUT": "P", "?": "", "0": ""}.get(r, r)


class OptionCalendar:
    """Which weekly expiries are listed on a given day (Mon/Wed/Fri or Fri; holidays honoured)."""

    def __init__(self, calendar: MarketCalendar) -> None:
        self._cal = calendar

    def listed_expiries(self, und: Underlying, today: dt.date,
                        days: int = CHAIN_DAYS) -> list[dt.date]:
        """Expiries from `today` through `today + days`.

        A holiday Friday moves to the session before it (as the OCC does); a holiday Monday or
        Wednesday simply has no expiry.
        """
        if not und.has_options:
            return []
        last = today + dt.timedelta(days=days)
        found: set[dt.date] = set()
        day = today
        while day <= last + dt.timedelta(days=3):
            if day.weekday() in und.expiry_weekdays:
                session = self._cal.session(day)
                if session is not None:
                    found.add(day)
                elif day.weekday() == FRIDAY:
                    found.add(self._cal.previous_session(day).date)
            day += dt.timedelta(days=1)
        return sorted(d for d in found if today <= d <= last)

    def is_listed(self, und: Underlying, expiry: dt.date, today: dt.date) -> bool:
        return expiry in self.listed_expiries(und, today)

    def expiry_close(self, expiry: dt.date) -> dt.datetime:
        """The instant an option expiring on `expiry` stops trading (the session close, UTC)."""
        session = self._cal.session(expiry)
        if session is None:
            return dt.datetime.combine(expiry, dt.time(16, 0), ET).astimezone(dt.UTC)
        return session.close


def chain_strikes(price: float, band: float = CHAIN_STRIKE_BAND) -> list[float]:
    """Strikes every $1 within ±band of the price."""
    lo = max(1, int(price * (1 - band)))
    hi = int(price * (1 + band)) + 1
    return [float(k) for k in range(lo, hi + 1)]


@dataclass(frozen=True, slots=True)
class ContractQuery:
    """The 12-field contract block of a request, plus what reqContractDetails adds."""

    con_id: int
    symbol: str
    sec_type: str
    expiry: str
    strike: float
    right: str
    multiplier: str
    exchange: str
    primary_exchange: str
    currency: str
    local_symbol: str
    trading_class: str
    include_expired: bool = False

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in (
            ("conId", self.con_id), ("symbol", self.symbol), ("secType", self.sec_type),
            ("expiry", self.expiry), ("strike", self.strike), ("right", self.right),
            ("exchange", self.exchange), ("localSymbol", self.local_symbol)) if v]
        return " ".join(parts) or "<empty contract>"


class ContractBook:
    """Resolves contract queries against the instruments the simulator serves."""

    def __init__(self, calendar: MarketCalendar) -> None:
        self.calendar = calendar
        self.options = OptionCalendar(calendar)

    def underlying_by_con_id(self, con_id: int) -> Underlying | None:
        return _BY_CONID.get(con_id)

    def option_is_live(self, spec: ContractSpec, now: dt.datetime) -> bool:
        """False once the option's expiry session has closed (then IB answers 200)."""
        return now < self.options.expiry_close(spec.expiry_date)

    def _option_listed(self, und: Underlying, expiry: dt.date, now: dt.datetime) -> bool:
        today = now.astimezone(ET).date()
        if expiry < today or now >= self.options.expiry_close(expiry):
            return False
        return self.options.is_listed(und, expiry, today)

    def resolve(self, q: ContractQuery, now: dt.datetime,
                *, strikes_near: float | None = None) -> list[ContractSpec]:
        """Every contract matching the query (IB semantics: unset fields match anything).

        `strikes_near` (the underlying price) bounds the strikes enumerated for a query that leaves
        the strike open, like a real chain does.
        """
        if q.con_id > 0:
            spec = self._by_con_id(q.con_id, now)
            return [spec.with_exchange(q.exchange)] if spec is not None else []
        if q.currency and q.currency.upper() != "USD":
            return []
        sec_type = q.sec_type.upper()
        symbol = q.symbol.strip().upper()
        if sec_type in ("OPT", "FOP") or (not sec_type and q.local_symbol and
                                           parse_occ(q.local_symbol) is not None):
            return [s.with_exchange(q.exchange) for s in
                    self._resolve_options(q, symbol, now, strikes_near)]
        if not symbol and q.local_symbol:
            symbol = q.local_symbol.strip().upper()
        und = UNDERLYINGS.get(symbol)
        if und is None or (sec_type and sec_type != und.sec_type):
            return []
        return [underlying_contract(und).with_exchange(q.exchange)]

    def _by_con_id(self, con_id: int, now: dt.datetime) -> ContractSpec | None:
        und = _BY_CONID.get(con_id)
        if und is not None:
            return underlying_contract(und)
        decoded = decode_option_con_id(con_id)
        if decoded is None:
            return None
        und, expiry, strike, right = decoded
        if not self._option_listed(und, expiry, now):
            return None
        return option_contract(und, expiry, strike, right)

    def _resolve_options(self, q: ContractQuery, symbol: str, now: dt.datetime,
                         strikes_near: float | None) -> list[ContractSpec]:
        expiry_text = q.expiry.strip()
        right = normalize_right(q.right)
        strike = q.strike if q.strike and q.strike != 1.7976931348623157e308 else 0.0
        if q.local_symbol:
            occ = parse_occ(q.local_symbol)
            if occ is None:
                return []
            symbol = symbol or occ[0]
            if occ[0] != symbol:
                return []
            expiry_text, right, strike = f"{occ[1]:%Y%m%d}", occ[2], occ[3]
        und = UNDERLYINGS.get(symbol)
        if und is None or not und.has_options:
            return []
        if q.multiplier and q.multiplier.strip() not in ("100", "100.0"):
            return []
        if q.trading_class and q.trading_class.upper() != und.symbol:
            return []
        today = now.astimezone(ET).date()
        expiries = [e for e in self.options.listed_expiries(und, today)
                    if now < self.options.expiry_close(e)]
        if expiry_text:
            expiries = [e for e in expiries if f"{e:%Y%m%d}".startswith(expiry_text)]
        if strike:
            if abs(strike * 2 - round(strike * 2)) > 1e-6 or strike * 2 >= _STRIKE_SLOTS:
                return []
            strikes: Iterable[float] = [strike]
        else:
            center = strikes_near if strikes_near else und.base_price
            strikes = chain_strikes(center)
        rights = [right] if right in ("C", "P") else ["C", "P"]
        if right and right not in ("C", "P"):
            return []
        return [option_contract(und, e, k, r) for e in expiries for k in strikes for r in rights]


def session_hours(calendar: MarketCalendar, today: dt.date, *, liquid: bool,
                  extended_stock_hours: bool, days: int = 7) -> str:
    """IB's `tradingHours`/`liquidHours` text for the days around `today` (ET)."""
    parts: list[str] = []
    for offset in range(-1, days):
        day = today + dt.timedelta(days=offset)
        session = calendar.session(day)
        ymd = f"{day:%Y%m%d}"
        if session is None:
            parts.append(f"{ymd}:CLOSED")
            continue
        open_et, close_et = session.open_et, session.close_et
        if not liquid and extended_stock_hours:
            start = "0400"
            end = f"{(close_et + dt.timedelta(hours=4)):%H%M}"
        else:
            start, end = f"{open_et:%H%M}", f"{close_et:%H%M}"
        parts.append(f"{ymd}:{start}-{ymd}:{end}")
    return ";".join(parts)


@dataclass(frozen=True, slots=True)
class ContractDetailsInfo:
    """Everything a contractData message carries besides the contract itself."""

    spec: ContractSpec
    market_name: str
    min_tick: float
    order_types: str
    valid_exchanges: str
    under_con_id: int
    long_name: str
    contract_month: str
    industry: str
    category: str
    subcategory: str
    time_zone_id: str
    trading_hours: str
    liquid_hours: str
    agg_group: str
    under_symbol: str
    under_sec_type: str
    market_rule_ids: str
    real_expiration_date: str
    stock_type: str


def contract_details(book: ContractBook, spec: ContractSpec,
                     now: dt.datetime) -> ContractDetailsInfo:
    today = now.astimezone(ET).date()
    und = spec.underlying
    if spec.is_option:
        hours = session_hours(book.calendar, today, liquid=True, extended_stock_hours=False)
        return ContractDetailsInfo(
            spec=spec, market_name=und.symbol, min_tick=0.01, order_types=OPTION_ORDER_TYPES,
            valid_exchanges=OPTION_EXCHANGES, under_con_id=und.con_id, long_name=und.long_name,
            contract_month=spec.expiry[:6], industry="", category="", subcategory="",
            time_zone_id="US/Eastern", trading_hours=hours, liquid_hours=hours, agg_group="2",
            under_symbol=und.symbol, under_sec_type=und.sec_type,
            market_rule_ids=",".join(["32"] * 19), real_expiration_date=spec.expiry,
            stock_type="",
        )
    liquid = session_hours(book.calendar, today, liquid=True, extended_stock_hours=False)
    if spec.sec_type == IND:
        return ContractDetailsInfo(
            spec=spec, market_name=und.symbol, min_tick=0.01, order_types="",
            valid_exchanges="CBOE", under_con_id=0, long_name=und.long_name, contract_month="",
            industry="", category="", subcategory="", time_zone_id="US/Eastern",
            trading_hours=liquid, liquid_hours=liquid, agg_group="2147483647", under_symbol="",
            under_sec_type="", market_rule_ids="110", real_expiration_date="", stock_type="",
        )
    trading = session_hours(book.calendar, today, liquid=False, extended_stock_hours=True)
    return ContractDetailsInfo(
        spec=spec, market_name=und.trading_class, min_tick=0.01, order_types=STOCK_ORDER_TYPES,
        valid_exchanges=STOCK_EXCHANGES, under_con_id=0, long_name=und.long_name,
        contract_month="", industry="Funds", category="Equity Fund",
        subcategory="Growth&Income-Large Cap", time_zone_id="US/Eastern",
        trading_hours=trading, liquid_hours=liquid, agg_group="1", under_symbol="",
        under_sec_type="", market_rule_ids=",".join(["26"] * 25), real_expiration_date="",
        stock_type=und.stock_type,
    )
