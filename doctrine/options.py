"""From an entry signal to one option contract and a number of contracts, or a refusal.

Choices made where the doctrine is silent:

* DTE is counted in calendar days from today's ET date (how DTE is quoted). The minimum for
  an entry is max(1, the strategy's min DTE, force-close DTE + 1): never 0DTE, and never a
  contract the DTE force-close would sell on the next check (A's "2 DTE" with the default
  3-DTE force-close means 4 calendar days). "Weekly" means the EARLIEST listed expiry from
  that minimum up to `max_dte` (14 days); none in range is a refusal, not a stretch.
* ATM is the strike nearest the underlying (a tie goes in the money: the lower strike for a
  call, the higher for a put). One strike OTM is the next listed strike beyond the ATM
  strike: above it for calls, below it for puts.
* Liquidity: a two-sided quote (bid > 0, ask >= bid), spread (ask-bid)/mid at most
  `max_spread_pct`, and volume / open interest at least the minimums. An unknown volume or
  open interest fails a non-zero minimum: unknown is not liquid.
* Affordability: ask x 100 <= the plan's `premium_max_usd` (dollars per contract).
* Size: floor of the risk budget over the risk per contract (ask x 100 x stop-loss fraction,
  plus fees), also floored by the position budget over the cost per contract. Budgets are
  equity x the strategy's percentages x the size multiplier, capped by the plan's dollar
  limits and the account's MAX_POSITION_PCT. NEVER rounded up: zero is a valid answer and
  comes back with the reason (the earlier bot's `max(1, size)` bought a contract the budget
  did not allow).
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from doctrine.params import StrategyParams
from messages.brain import EntrySignal, SignalRejected
from messages.market import OptionSpec, Right

MAX_CONTRACTS = 10_000
"""A sanity ceiling on any one order (rounding DOWN to it is safe)."""


@dataclass(frozen=True, slots=True)
class OptionQuote:
    """Top of book for one contract, as the brain needs it (per-share premiums)."""

    spec: OptionSpec
    bid: float | None
    ask: float | None
    volume: float | None = None
    open_interest: float | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why no order: the stage (expiry, strike, quote, liquidity, affordability, size)."""

    stage: str
    reason: str


@dataclass(frozen=True, slots=True)
class SizeDecision:
    contracts: int
    reason: str
    risk_budget: float
    position_budget: float
    risk_per_contract: float
    cost_per_contract: float


@dataclass(frozen=True, slots=True)
class EntryPlan:
    """The contract to buy, how many, and the limit (the ask: we pay up, we do not chase)."""

    option: OptionSpec
    quote: OptionQuote
    contracts: int
    limit_price: float
    size: SizeDecision
    dte: int


@dataclass(frozen=True, slots=True)
class RiskBudget:
    """The money side of sizing: the account's equity and every dollar cap that applies."""

    equity: float
    account_max_position_pct: float = 0.20
    max_risk_per_trade: float | None = None
    max_risk_ceiling: float | None = None
    max_single_position: float | None = None
    fee_per_contract: float = 0.0


def entry_min_dte(params: StrategyParams, force_close_dte: int) -> int:
    return max(1, params.min_dte, force_close_dte + 1)


def choose_expiry(expiries: Iterable[dt.date], today: dt.date, *, min_dte: int,
                  max_dte: int) -> dt.date | Refusal:
    """The earliest expiry with min_dte <= DTE <= max_dte (never 0DTE)."""
    floor = max(1, min_dte)
    best: dt.date | None = None
    for expiry in expiries:
        dte = (expiry - today).days
        if floor <= dte <= max_dte and (best is None or expiry < best):
            best = expiry
    if best is None:
        return Refusal("expiry", f"no listed expiry with {floor} to {max_dte} days to expiry")
    return best


def choose_strike(strikes: Iterable[float], underlying: float, right: Right,
                  moneyness: str) -> float | Refusal:
    ladder = sorted({k for k in strikes if k > 0 and math.isfinite(k)})
    if not ladder:
        return Refusal("strike", "no strikes listed")
    if not (underlying > 0 and math.isfinite(underlying)):
        return Refusal("strike", f"no usable underlying price ({underlying!r})")
    i = bisect.bisect_left(ladder, underlying)
    if i == 0:
        atm = 0
    elif i == len(ladder):
        atm = len(ladder) - 1
    else:
        below, above = underlying - ladder[i - 1], ladder[i] - underlying
        atm = i - 1 if below < above or (below == above and right == "C") else i
    if moneyness == "ATM":
        return ladder[atm]
    if moneyness != "OTM1":
        return Refusal("strike", f"unknown moneyness {moneyness!r}")
    j = atm + 1 if right == "C" else atm - 1
    if not 0 <= j < len(ladder):
        return Refusal("strike", f"no strike one step out of the money from {ladder[atm]:g}")
    return ladder[j]


def liquidity_problem(q: OptionQuote, *, max_spread_pct: float, min_volume: float,
                      min_open_interest: float) -> str | None:
    bid, ask = q.bid, q.ask
    if bid is None or ask is None or not (bid > 0 and ask > 0) \
            or not (math.isfinite(bid) and math.isfinite(ask)):
        return f"no two-sided quote for {q.spec.key} (bid {bid}, ask {ask})"
    if ask < bid:
        return f"crossed quote for {q.spec.key} (bid {bid} > ask {ask})"
    mid = (bid + ask) / 2
    spread = (ask - bid) / mid
    if spread > max_spread_pct:
        return (f"spread {spread:.1%} of mid ({bid:.2f}/{ask:.2f}) > {max_spread_pct:.0%} "
                f"for {q.spec.key}")
    if min_volume > 0 and (q.volume is None or not q.volume >= min_volume):
        return f"volume {q.volume} < {min_volume:g} for {q.spec.key}"
    if min_open_interest > 0 and (q.open_interest is None
                                  or not q.open_interest >= min_open_interest):
        return f"open interest {q.open_interest} < {min_open_interest:g} for {q.spec.key}"
    return None


def affordability_problem(premium: float, premium_max_usd: float | None,
                          multiplier: int = 100) -> str | None:
    if premium_max_usd is None:
        return None
    per_contract = premium * multiplier
    if not per_contract <= premium_max_usd:
        return (f"premium ${per_contract:,.2f} per contract > the plan's cap "
                f"${premium_max_usd:,.2f}")
    return None


def size_contracts(*, premium: float, stop_loss_pct: float, equity: float,
                   max_risk_pct: float, max_position_pct: float, size_multiplier: float = 1.0,
                   account_max_position_pct: float | None = None,
                   max_risk_per_trade: float | None = None,
                   max_risk_ceiling: float | None = None,
                   max_single_position: float | None = None, fee_per_contract: float = 0.0,
                   multiplier: int = 100) -> SizeDecision:
    """How many contracts the budgets allow: floor, never up; 0 with the reason."""
    def zero(reason: str, risk: float = 0.0, pos: float = 0.0, rpc: float = 0.0,
             cpc: float = 0.0) -> SizeDecision:
        return SizeDecision(0, reason, risk, pos, rpc, cpc)

    for name, value in (("premium", premium), ("equity", equity),
                        ("size multiplier", size_multiplier)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            return zero(f"{name} {value!r} is not a positive number")
    if not (0 < stop_loss_pct < 1):
        return zero(f"stop loss {stop_loss_pct!r} is not a fraction in (0, 1)")
    if not (fee_per_contract >= 0 and math.isfinite(fee_per_contract)):
        return zero(f"fee per contract {fee_per_contract!r} is not a non-negative number")
    risk_budget = equity * max_risk_pct * size_multiplier
    for cap in (max_risk_per_trade, max_risk_ceiling):
        if cap is not None:
            risk_budget = min(risk_budget, cap)
    pos_pct = max_position_pct if account_max_position_pct is None \
        else min(max_position_pct, account_max_position_pct)
    position_budget = equity * pos_pct * size_multiplier
    if max_single_position is not None:
        position_budget = min(position_budget, max_single_position)
    cost = premium * multiplier + fee_per_contract
    risk = premium * multiplier * stop_loss_pct + fee_per_contract
    by_risk = _fit(risk_budget, risk)
    by_position = _fit(position_budget, cost)
    n = min(by_risk, by_position)
    if n == 0:
        if by_risk == 0:
            reason = (f"risk budget ${risk_budget:,.2f} < risk per contract ${risk:,.2f} "
                      f"(premium {premium:.2f} x {multiplier} x stop {stop_loss_pct:.0%}"
                      + (f" + fees ${fee_per_contract:.2f})" if fee_per_contract else ")"))
        else:
            reason = (f"position budget ${position_budget:,.2f} < cost per contract "
                      f"${cost:,.2f}")
        return zero(reason, risk_budget, position_budget, risk, cost)
    bound = "risk budget" if by_risk <= by_position else "position budget"
    return SizeDecision(n, f"{n} contract(s), bound by the {bound} (risk ${risk_budget:,.2f}, "
                           f"position ${position_budget:,.2f})",
                        risk_budget, position_budget, risk, cost)


def _fit(budget: float, unit: float) -> int:
    """The largest n with n * unit <= budget (checked by multiplication, not division)."""
    if not (budget > 0 and unit > 0 and math.isfinite(budget) and math.isfinite(unit)):
        return 0
    ratio = budget // unit
    if ratio >= MAX_CONTRACTS:
        return MAX_CONTRACTS
    n = int(ratio)
    while n > 0 and n * unit > budget:
        n -= 1
    while (n + 1) * unit <= budget:
        n += 1
    return n


def plan_option_entry(*, underlying: str, right: Right, underlying_price: float,
                      today: dt.date, expiries: Sequence[dt.date],
                      strikes_for: Callable[[dt.date], Sequence[float]],
                      quote_for: Callable[[OptionSpec], OptionQuote | None],
                      params: StrategyParams, force_close_dte: int, budget: RiskBudget,
                      size_multiplier: float) -> EntryPlan | Refusal:
    """Expiry, strike, quote, liquidity, affordability and size for one signal."""
    min_dte = entry_min_dte(params, force_close_dte)
    expiry = choose_expiry(expiries, today, min_dte=min_dte, max_dte=params.max_dte)
    if isinstance(expiry, Refusal):
        return expiry
    strike = choose_strike(strikes_for(expiry), underlying_price, right, params.moneyness)
    if isinstance(strike, Refusal):
        return strike
    spec = OptionSpec(underlying=underlying, expiry=expiry, strike=strike, right=right)
    quote = quote_for(spec)
    if quote is None:
        return Refusal("quote", f"no quote for {spec.key}")
    problem = liquidity_problem(quote, max_spread_pct=params.max_spread_pct,
                                min_volume=params.min_option_volume,
                                min_open_interest=params.min_open_interest)
    if problem is not None:
        return Refusal("liquidity", problem)
    assert quote.ask is not None
    problem = affordability_problem(quote.ask, params.premium_max_usd, spec.multiplier)
    if problem is not None:
        return Refusal("affordability", problem)
    size = size_contracts(
        premium=quote.ask, stop_loss_pct=params.stop_loss_pct, equity=budget.equity,
        max_risk_pct=params.max_risk_pct, max_position_pct=params.max_position_pct,
        size_multiplier=size_multiplier,
        account_max_position_pct=budget.account_max_position_pct,
        max_risk_per_trade=budget.max_risk_per_trade, max_risk_ceiling=budget.max_risk_ceiling,
        max_single_position=budget.max_single_position,
        fee_per_contract=budget.fee_per_contract, multiplier=spec.multiplier)
    if size.contracts == 0:
        return Refusal("size", size.reason)
    return EntryPlan(option=spec, quote=quote, contracts=size.contracts,
                     limit_price=quote.ask, size=size, dte=(expiry - today).days)


def sized_signal(signal: EntrySignal,
                 result: EntryPlan | Refusal) -> EntrySignal | SignalRejected:
    """The signal with its contract, count and limit, or the rejection to log (zero
    contracts included: it is an answer, not an error)."""
    if isinstance(result, Refusal):
        return SignalRejected(ts=signal.ts, symbol=signal.symbol, strategy=signal.strategy,
                              direction=signal.direction, stage=result.stage,
                              reason=result.reason)
    return signal.model_copy(update={"option": result.option, "contracts": result.contracts,
                                     "limit_price": result.limit_price})
