"""The dry-run money path: a fill model and a small book with realised and unrealised P&L.

Conservative on purpose: buys fill at the ask plus slippage, sells at the bid minus slippage,
and every order pays IB's fixed-rate option commission ($0.65 a contract at a premium of
$0.10 or more, $0.50 from $0.05, $0.25 below; at least $1.00 an order). A strategy that only
looks good at the mid does not look good here. Replay uses it today; the OrderRouter's
DRY_RUN mode can simulate fills against live quotes with the same model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from doctrine.exits import OpenPosition
from messages.brain import ExitReason


@dataclass(frozen=True, slots=True)
class FillModel:
    slippage: float = 0.0
    commission_per_contract: float = 0.65
    commission_cheap: float = 0.50
    commission_cheapest: float = 0.25
    min_commission: float = 1.00

    def commission(self, contracts: int, premium: float) -> float:
        if contracts <= 0:
            return 0.0
        if premium < 0.05:
            rate = self.commission_cheapest
        elif premium < 0.10:
            rate = self.commission_cheap
        else:
            rate = self.commission_per_contract
        return max(self.min_commission, rate * contracts)

    def buy_price(self, ask: float | None) -> float | None:
        """What a marketable buy pays; None without an ask (no fill)."""
        if ask is None or not (ask > 0 and math.isfinite(ask)):
            return None
        return ask + self.slippage

    def sell_price(self, bid: float | None) -> float | None:
        """What a marketable sell gets; None without a bid (no fill, try again)."""
        if bid is None or not (bid > 0 and math.isfinite(bid)):
            return None
        return max(0.0, bid - self.slippage)


@dataclass(frozen=True, slots=True)
class Trade:
    """One round trip. `pnl` is net of both commissions, in dollars."""

    symbol: str
    option_key: str
    strategy: str
    contracts: int
    entry_price: float
    exit_price: float
    entry_s: float
    exit_s: float
    reason: ExitReason
    commissions: float
    pnl: float


@dataclass(slots=True)
class _Held:
    position: OpenPosition
    entry_commission: float


@dataclass(slots=True)
class PositionBook:
    """Open positions by option key, closed trades, realised P&L and commissions."""

    starting_equity: float = 600.0
    _open: dict[str, _Held] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    realized_pnl: float = 0.0
    commissions: float = 0.0

    @property
    def equity(self) -> float:
        """Starting equity plus realised P&L (what sizing may use)."""
        return self.starting_equity + self.realized_pnl

    @property
    def open_positions(self) -> list[OpenPosition]:
        return [h.position for h in self._open.values()]

    def position_for(self, symbol: str) -> OpenPosition | None:
        for held in self._open.values():
            if held.position.symbol == symbol:
                return held.position
        return None

    def open(self, position: OpenPosition, commission: float) -> None:
        key = position.option.key
        if key in self._open:
            raise ValueError(f"{key} is already open in the book")
        if position.contracts <= 0:
            raise ValueError(f"cannot open {position.contracts} contracts of {key}")
        self._open[key] = _Held(position, commission)
        self.realized_pnl -= commission
        self.commissions += commission

    def close(self, option_key: str, *, price: float, commission: float, now_s: float,
              reason: ExitReason) -> Trade:
        held = self._open.pop(option_key)
        pos = held.position
        gross = (price - pos.entry_premium) * pos.contracts * pos.option.multiplier
        self.realized_pnl += gross - commission
        self.commissions += commission
        trade = Trade(symbol=pos.symbol, option_key=option_key, strategy=pos.strategy,
                      contracts=pos.contracts, entry_price=pos.entry_premium,
                      exit_price=price, entry_s=pos.entry_s, exit_s=now_s, reason=reason,
                      commissions=held.entry_commission + commission,
                      pnl=gross - held.entry_commission - commission)
        self.trades.append(trade)
        return trade

    def unrealized(self, marks: Mapping[str, float]) -> float:
        """Open P&L at the given marks (bids); a position without a mark counts at zero
        value: unknown is not worth its entry price."""
        total = 0.0
        for key, held in self._open.items():
            pos = held.position
            mark = marks.get(key, 0.0)
            total += (mark - pos.entry_premium) * pos.contracts * pos.option.multiplier
        return total
