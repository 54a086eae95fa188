"""Can ANY contract the plan allows fit the risk budget and the position cap? (pure)

Sizing refuses a signal when one contract costs more risk than the budget allows, which is the
right answer for one signal but, said once per signal, hides the real news: with this equity
and these rules the bot can never trade. This module answers the day-level question once, in
numbers, before any signal ("no SPY/QQQ ATM weekly fits: cheapest risk per contract ≈ $63 >
budget $18").

No quotes exist before the Gateway session (at start, in `--check`), so the premium is an
estimate: Black-Scholes for the contract `doctrine.options` would choose (the earliest allowed
expiry, ATM or one strike OTM), with the VIX as the volatility and a reference price per
underlying. The sizing itself is `doctrine.options.size_contracts`, the very function the money
path uses: the estimate may be off, the budget arithmetic is not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from config.gameplan import Gameplan
from doctrine.options import SizeDecision, entry_min_dte, size_contracts
from doctrine.params import (
    DOCTRINE,
    TradingStrategy,
    force_close_dte,
    params_for,
    size_multiplier,
)
from doctrine.pricing import bs_price

REFERENCE_PRICES: Mapping[str, float] = {"SPY": 600.0, "QQQ": 520.0, "IWM": 230.0}
"""Rough underlying levels used when no bar is known yet (late 2026). A caller that has a
recent close passes it instead; the answer is an estimate either way and says "≈"."""

REFERENCE_VIX = 16.0
"""The volatility (VIX points) assumed when no reading is known: a calm, cheap market. If
nothing fits at a calm VIX, nothing fits on a busy day either (premiums rise with the VIX)."""

OTM_STEP_PCT = 0.002
"""One strike out of the money, as a fraction of the price (SPY/QQQ list $1 strikes)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One (strategy, symbol) contract the plan allows, its estimated premium and its size."""

    strategy: TradingStrategy
    symbol: str
    dte: int
    moneyness: str
    premium: float
    size: SizeDecision


@dataclass(frozen=True, slots=True)
class Affordability:
    candidates: tuple[Candidate, ...]

    @property
    def fits(self) -> bool:
        return any(c.size.contracts > 0 for c in self.candidates)

    @property
    def cheapest(self) -> Candidate | None:
        """The candidate closest to fitting: the smallest shortfall over its own budgets."""
        def shortfall(c: Candidate) -> float:
            s = c.size
            return max(s.risk_per_contract / s.risk_budget if s.risk_budget > 0 else math.inf,
                       s.cost_per_contract / s.position_budget if s.position_budget > 0
                       else math.inf)
        return min(self.candidates, key=shortfall, default=None)

    def warning(self) -> str | None:
        """One line with the numbers when nothing fits; None when something does (or when the
        plan allows no trading strategy at all: Strategy C is not an affordability problem)."""
        cheapest = self.cheapest
        if self.fits or cheapest is None:
            return None
        size = cheapest.size
        symbols = "/".join(sorted({c.symbol for c in self.candidates}))
        kinds = "/".join(sorted({c.moneyness for c in self.candidates}))
        bound = (f"cheapest risk per contract ≈ ${size.risk_per_contract:,.0f} > risk budget "
                 f"${size.risk_budget:,.2f}"
                 if size.risk_per_contract > size.risk_budget else
                 f"cheapest cost per contract ≈ ${size.cost_per_contract:,.0f} > position "
                 f"budget ${size.position_budget:,.2f}")
        return (f"Affordability: no {symbols} {kinds} option the plan allows fits: {bound} "
                f"({cheapest.symbol} {cheapest.moneyness} {cheapest.dte} DTE ≈ "
                f"${cheapest.premium:.2f}; strategy {cheapest.strategy}). Every entry will be "
                "refused at sizing: raise the capital or the plan's risk limits, or expect no "
                "trades.")


def estimate_premium(price: float, vix: float, dte: int, moneyness: str) -> float:
    """A Black-Scholes call premium (per share) for the contract sizing would look at."""
    sigma = max(vix, 1.0) / 100.0
    strike = price * (1 + OTM_STEP_PCT) if moneyness == "OTM1" else price
    return bs_price(price, strike, max(dte, 1) / 365.0, sigma, "C")


def check_affordability(plan: Gameplan | None, *, equity: float,
                        account_max_position_pct: float,
                        prices: Mapping[str, float] | None = None,
                        vix: float | None = None,
                        fee_per_contract: float = 0.0) -> Affordability:
    """Every (strategy, symbol) the plan allows, sized with today's budgets.

    Strategy A is the plan's own when it says A; B is what the VIX rules may pivot to and is
    checked as well (the cheapest of the two decides). No plan, or a Strategy C plan, allows
    nothing: an empty answer, no warning.
    """
    if plan is None or plan.strategy not in ("A", "B"):
        return Affordability(())
    vix_level = vix if vix is not None and math.isfinite(vix) and vix > 0 else REFERENCE_VIX
    known = {**REFERENCE_PRICES, **(prices or {})}
    candidates: list[Candidate] = []
    for strategy in DOCTRINE:
        params = params_for(strategy, plan)
        multiplier = size_multiplier(strategy, plan)
        if multiplier <= 0:
            continue
        dte = entry_min_dte(params, force_close_dte(plan))
        for symbol in sorted(params.symbols & set(plan.symbols)):
            price = known.get(symbol)
            if price is None or not price > 0:
                continue
            premium = estimate_premium(price, vix_level, dte, params.moneyness)
            size = size_contracts(
                premium=premium, stop_loss_pct=params.stop_loss_pct, equity=equity,
                max_risk_pct=params.max_risk_pct, max_position_pct=params.max_position_pct,
                size_multiplier=multiplier, account_max_position_pct=account_max_position_pct,
                max_risk_per_trade=plan.max_risk_per_trade,
                max_risk_ceiling=plan.max_risk_ceiling,
                max_single_position=plan.hard_limits.max_single_position,
                fee_per_contract=fee_per_contract)
            candidates.append(Candidate(strategy, symbol, dte, params.moneyness, premium, size))
    return Affordability(tuple(candidates))
