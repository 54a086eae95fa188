"""Black-Scholes(-Merton) prices and greeks for European options.

Used by replay's dry run to price SPY/QQQ options from the underlying and the VIX, and
available to the simulator. US equity options are American, but for calls on a low-dividend
ETF and short-dated puts the early-exercise premium is small next to the spread: good enough
for a dry run, not for a valuation.

Conventions: `t` in years (calendar time: seconds / (365 * 86400)), `sigma` and `r` and `q`
annualised and continuous. Theta is per calendar day, vega per 1 volatility point (0.01).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from messages.market import Right

SECONDS_PER_YEAR = 365.0 * 86400.0
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


def norm_pdf(x: float) -> float:
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


@dataclass(frozen=True, slots=True)
class Greeks:
    price: float
    delta: float
    gamma: float
    vega: float
    theta: float


def _check(s: float, k: float, t: float, sigma: float) -> None:
    if not (s > 0 and k > 0 and math.isfinite(s) and math.isfinite(k)):
        raise ValueError(f"spot and strike must be positive numbers, got {s!r}, {k!r}")
    if not (t >= 0 and math.isfinite(t)):
        raise ValueError(f"time to expiry must be >= 0 years, got {t!r}")
    if not (sigma >= 0 and math.isfinite(sigma)):
        raise ValueError(f"volatility must be >= 0, got {sigma!r}")


def bs_price(s: float, k: float, t: float, sigma: float, right: Right, r: float = 0.0,
             q: float = 0.0) -> float:
    """The Black-Scholes-Merton value of a European call ("C") or put ("P")."""
    _check(s, k, t, sigma)
    df_r = math.exp(-r * t)
    df_q = math.exp(-q * t)
    vol_t = sigma * math.sqrt(t)
    if vol_t == 0.0:
        forward_intrinsic = s * df_q - k * df_r
        return max(forward_intrinsic, 0.0) if right == "C" else max(-forward_intrinsic, 0.0)
    d1 = (math.log(s / k) + (r - q + 0.5 * sigma * sigma) * t) / vol_t
    d2 = d1 - vol_t
    # far out of the money the two terms cancel to a denormal that can come out negative
    # (-1e-321): an option is never worth less than nothing
    if right == "C":
        return max(s * df_q * norm_cdf(d1) - k * df_r * norm_cdf(d2), 0.0)
    return max(k * df_r * norm_cdf(-d2) - s * df_q * norm_cdf(-d1), 0.0)


def bs_greeks(s: float, k: float, t: float, sigma: float, right: Right, r: float = 0.0,
              q: float = 0.0) -> Greeks:
    """Price, delta, gamma, vega (per vol point) and theta (per calendar day)."""
    _check(s, k, t, sigma)
    price = bs_price(s, k, t, sigma, right, r, q)
    vol_t = sigma * math.sqrt(t)
    if vol_t == 0.0:
        itm = (s * math.exp(-q * t) > k * math.exp(-r * t)) if right == "C" else \
            (s * math.exp(-q * t) < k * math.exp(-r * t))
        delta = (math.exp(-q * t) if right == "C" else -math.exp(-q * t)) if itm else 0.0
        return Greeks(price, delta, 0.0, 0.0, 0.0)
    df_r = math.exp(-r * t)
    df_q = math.exp(-q * t)
    d1 = (math.log(s / k) + (r - q + 0.5 * sigma * sigma) * t) / vol_t
    d2 = d1 - vol_t
    pdf = norm_pdf(d1)
    gamma = df_q * pdf / (s * vol_t)
    vega = s * df_q * pdf * math.sqrt(t) / 100.0
    decay = -s * df_q * pdf * sigma / (2.0 * math.sqrt(t))
    if right == "C":
        delta = df_q * norm_cdf(d1)
        theta = decay - r * k * df_r * norm_cdf(d2) + q * s * df_q * norm_cdf(d1)
    else:
        delta = -df_q * norm_cdf(-d1)
        theta = decay + r * k * df_r * norm_cdf(-d2) - q * s * df_q * norm_cdf(-d1)
    return Greeks(price, delta, gamma, vega, theta / 365.0)


def years_between(start_s: float, end_s: float) -> float:
    """Calendar time between two epoch instants, in years (0 if the end is past)."""
    return max(0.0, (end_s - start_s) / SECONDS_PER_YEAR)
