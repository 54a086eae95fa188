"""Option prices the way a market maker would quote them: Black-Scholes with a VIX-linked smile.

Nothing here aims at a precise model; the goal is premiums, spreads and deltas that look like a
real SPY/QQQ/IWM weekly chain, so that the bot's sizing, limit prices and stops meet realistic
numbers. Everything is a pure function of its inputs (determinism: a premium requested twice for
the same instant is the same premium).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RATE = 0.04              # risk-free rate used for every option
MIN_T_YEARS = 60.0 / (365.0 * 86400.0)   # one minute: keeps expiry-day math finite
TICK = 0.01              # SPY/QQQ/IWM are in the penny program: every premium trades in cents
SQRT_2PI = math.sqrt(2.0 * math.pi)


def _norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _norm_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / SQRT_2PI


@dataclass(frozen=True, slots=True)
class Greeks:
    price: float
    delta: float
    gamma: float
    vega: float     # per 1 vol point (IB's convention)
    theta: float    # per calendar day


def black_scholes(spot: float, strike: float, t_years: float, vol: float, right: str,
                  rate: float = RATE) -> Greeks:
    t = max(t_years, MIN_T_YEARS)
    vol = max(vol, 1e-4)
    sqrt_t = math.sqrt(t)
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol * vol) * t) / (vol * sqrt_t)
    d2 = d1 - vol * sqrt_t
    disc = math.exp(-rate * t)
    pdf = _norm_pdf(d1)
    if right == "C":
        price = spot * _norm_cdf(d1) - strike * disc * _norm_cdf(d2)
        delta = _norm_cdf(d1)
        theta = -spot * pdf * vol / (2 * sqrt_t) - rate * strike * disc * _norm_cdf(d2)
    else:
        price = strike * disc * _norm_cdf(-d2) - spot * _norm_cdf(-d1)
        delta = _norm_cdf(d1) - 1.0
        theta = -spot * pdf * vol / (2 * sqrt_t) + rate * strike * disc * _norm_cdf(-d2)
    gamma = pdf / (spot * vol * sqrt_t)
    vega = spot * pdf * sqrt_t / 100.0
    return Greeks(max(price, 0.0), delta, gamma, vega, theta / 365.0)


def implied_vol(price: float, spot: float, strike: float, t_years: float, right: str,
                rate: float = RATE) -> float | None:
    """The vol that reproduces `price` (bisection: robust, ~40 evaluations), None if impossible."""
    t = max(t_years, MIN_T_YEARS)
    intrinsic = max(0.0, spot - strike * math.exp(-rate * t)) if right == "C" else \
        max(0.0, strike * math.exp(-rate * t) - spot)
    if price <= intrinsic + 1e-9:
        return None
    lo, hi = 1e-3, 5.0
    if black_scholes(spot, strike, t, hi, right, rate).price < price:
        return None
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if black_scholes(spot, strike, t, mid, right, rate).price < price:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def smile_vol(vix: float, iv_multiplier: float, spot: float, strike: float,
              t_years: float) -> float:
    """ATM vol = VIX × the underlying's multiplier; puts richer than calls (equity skew)."""
    base = max(vix, 5.0) / 100.0 * iv_multiplier
    t = max(t_years, 1.0 / 365.0)
    m = math.log(strike / spot) / math.sqrt(t)      # moneyness in "annualised" units
    factor = 1.0 - 0.55 * m + 0.35 * m * m
    return base * min(3.0, max(0.6, factor))


def round_tick(price: float, tick: float = TICK) -> float:
    return round(round(price / tick) * tick, 2)


@dataclass(frozen=True, slots=True)
class OptionMarket:
    bid: float | None      # None = no bid (IB sends -1 with size 0)
    ask: float
    mid: float
    spread: float


def quote_option(theo: float, spot: float, strike: float, vol: float, t_years: float,
                 liquidity: float) -> OptionMarket:
    """Bid/ask around the model price: a cent or two for liquid near-the-money contracts, wider
    for expensive, far out-of-the-money or longer-dated ones."""
    t = max(t_years, MIN_T_YEARS)
    dist = abs(math.log(strike / spot)) / max(vol * math.sqrt(t), 1e-6)
    dte = t * 365.0
    raw = (0.01 + 0.006 * theo) * liquidity * (1.0 + 0.35 * max(0.0, dist - 1.0)) * \
        (1.0 + 0.01 * dte)
    spread = max(TICK, round_tick(raw))
    bid = math.floor((theo - spread / 2.0) / TICK + 1e-9) * TICK
    bid = round(bid, 2)
    if bid < TICK:       # nobody bids for a (nearly) worthless option; the ask is a cent or two
        ask = max(TICK, round_tick(theo + TICK / 2.0))
        return OptionMarket(None, ask, round(ask / 2.0, 3), ask)
    ask = round(bid + spread, 2)
    return OptionMarket(bid, ask, round((bid + ask) / 2.0, 3), spread)
