"""The doctrine's numbers per strategy (crucible.md), and how a gameplan overrides them.

A plan's `strategy_parameters` apply to the plan's OWN strategy only: a Strategy A plan that
tunes the take profit does not retune Strategy B if the day pivots to B; B then runs on the
doctrine's defaults. Indicator periods are shared by all strategies (see IndicatorParams).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from config.gameplan import Gameplan

TradingStrategy = Literal["A", "B"]

EMERGENCY_STOP_PCT = 0.40
"""Any open position that has lost 40 % of its premium is closed, whatever the strategy."""

DEFAULT_FORCE_CLOSE_DTE = 3
"""Close every position at 3 days to expiry unless the plan's hard limits say otherwise."""


@dataclass(frozen=True, slots=True)
class StrategyParams:
    """Everything signals, exits, option choice and sizing need for one strategy."""

    strategy: TradingStrategy
    symbols: frozenset[str]
    max_risk_pct: float
    max_position_pct: float
    take_profit_pct: float
    stop_loss_pct: float
    time_stop_minutes: int
    min_dte: int
    max_dte: int
    moneyness: Literal["ATM", "OTM1"]
    size_multiplier: float
    size_multiplier_one_catalyst: float
    rsi_min: float = 50.0
    rsi_max: float = 65.0
    rsi_oversold: float = 30.0
    rsi_overbought: float = 70.0
    premium_max_usd: float | None = None
    vix_ceiling: float | None = None
    max_spread_pct: float = 0.10
    min_option_volume: int = 50
    min_open_interest: int = 100


DOCTRINE: dict[TradingStrategy, StrategyParams] = {
    "A": StrategyParams(
        strategy="A", symbols=frozenset({"SPY", "QQQ"}), max_risk_pct=0.03,
        max_position_pct=0.20, take_profit_pct=0.15, stop_loss_pct=0.25, time_stop_minutes=90,
        min_dte=2, max_dte=14, moneyness="ATM", size_multiplier=1.0,
        size_multiplier_one_catalyst=0.5),
    "B": StrategyParams(
        strategy="B", symbols=frozenset({"SPY"}), max_risk_pct=0.02, max_position_pct=0.10,
        take_profit_pct=0.08, stop_loss_pct=0.15, time_stop_minutes=45, min_dte=5, max_dte=14,
        moneyness="OTM1", size_multiplier=0.5, size_multiplier_one_catalyst=0.25),
}


def params_for(strategy: TradingStrategy, plan: Gameplan | None) -> StrategyParams:
    """The doctrine's parameters for `strategy`, with the plan's overrides if it is its own."""
    base = DOCTRINE[strategy]
    if plan is None or plan.strategy != strategy or plan.strategy_parameters is None:
        return base
    sp = plan.strategy_parameters
    overrides = {
        name: value for name in (
            "rsi_min", "rsi_max", "rsi_oversold", "rsi_overbought", "take_profit_pct",
            "stop_loss_pct", "time_stop_minutes", "min_dte", "max_dte", "moneyness",
            "premium_max_usd", "vix_ceiling", "max_spread_pct", "min_option_volume",
            "min_open_interest")
        if (value := getattr(sp, name)) is not None
    }
    if "min_dte" in overrides and "max_dte" not in overrides:
        overrides["max_dte"] = max(base.max_dte, overrides["min_dte"])
    return dataclasses.replace(base, **overrides)


def force_close_dte(plan: Gameplan | None) -> int:
    if plan is not None and plan.hard_limits.force_close_at_dte is not None:
        return plan.hard_limits.force_close_at_dte
    return DEFAULT_FORCE_CLOSE_DTE


def size_multiplier(strategy: str, plan: Gameplan | None) -> float:
    """Doctrine multiplier (halved with one high-impact catalyst) x the plan's multiplier.

    Two or more high-impact catalysts select C before this is asked; C is always 0.
    """
    if plan is None or strategy not in ("A", "B"):
        return 0.0
    base = DOCTRINE["A" if strategy == "A" else "B"]
    catalysts = plan.high_impact_catalysts
    if catalysts >= 2:
        return 0.0
    doctrine = base.size_multiplier_one_catalyst if catalysts == 1 else base.size_multiplier
    return doctrine * plan.position_size_multiplier
