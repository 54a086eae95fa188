"""The affordability check as the operator meets it: at start, on every new plan, in --check.

The arithmetic is `doctrine.affordability` (pure); this module brings the settings' equity and
caps, the fee the money path charges, and the latest prices and VIX the bot knows, and turns
the answer into one warning line (or none).
"""

from __future__ import annotations

from collections.abc import Mapping

from actors.order_router import FEE_PER_CONTRACT_ROUND_TRIP
from config.gameplan import Gameplan
from config.settings import Settings
from doctrine.affordability import check_affordability


def sizing_equity(settings: Settings) -> float:
    """The equity sizing starts from before the account is known: the dry-run equity, capped
    by BOT_CAPITAL_USD where that setting exists (the smaller of the two is what sizing uses)."""
    equity = settings.starting_equity_usd
    capital = getattr(settings, "bot_capital_usd", None)
    if isinstance(capital, int | float) and capital > 0:
        equity = min(equity, float(capital))
    return equity


def affordability_warning(settings: Settings, plan: object, *,
                          prices: Mapping[str, float] | None = None,
                          vix: float | None = None, equity: float | None = None) -> str | None:
    """One line with numbers when no allowed contract fits; None otherwise."""
    if not isinstance(plan, Gameplan):
        return None
    answer = check_affordability(
        plan, equity=equity if equity is not None else sizing_equity(settings),
        account_max_position_pct=settings.max_position_pct, prices=prices, vix=vix,
        fee_per_contract=FEE_PER_CONTRACT_ROUND_TRIP)
    return answer.warning()
