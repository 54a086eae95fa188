"""OrderRouter's dry-run desk: simulated fills through the same ledger path as real ones,
and commission estimates for fills whose commission report never came."""

from __future__ import annotations

from messages.market import Quote
from messages.orders import (
    BrokerExecution,
)

from .core import RouterCore


class DryRunDesk(RouterCore):
    def _simulate(self, ref: str, side: str, price: float, quantity: int) -> None:
        """A simulated execution through the same ledger path as a real one."""
        o = self.ledger.orders[ref]
        self.ledger.mark_submitting([ref], self.ctx.clock.now_utc())
        intent = self.ledger.intents[o.intent_id]
        assert intent.option is not None
        commission = self.fills.commission(quantity, price)
        now = self.ctx.clock.now_utc()
        self.ctx.emit("order_submitted", order_ref=ref, mode=self.mode.value,
                      intent_id=o.intent_id, role=o.role, action=o.action, quantity=quantity,
                      order_type=o.order_type, limit=o.limit, stop=None,
                      contract=intent.option.key)
        self._trade("order", order_ref=ref, intent_id=o.intent_id, role=o.role,
                    action=o.action, quantity=quantity, order_type=o.order_type, limit=o.limit,
                    contract=intent.option.key, simulated=True)
        self.ledger.on_execution(BrokerExecution(
            session_id=self.session, exec_id=f"sim-{ref}", order_id=0, perm_id=0, client_id=0,
            order_ref=ref, con_id=0, symbol=intent.option.underlying, sec_type="OPT",
            option=intent.option, side="BOT" if side == "BUY" else "SLD", shares=quantity,
            price=price, time=now, commission=commission),
            multiplier=intent.option.multiplier)
        self.commit()

    def _simulate_buy(self, intent_id: str, quote: Quote) -> None:
        option = self.ledger.intents[intent_id].option
        assert option is not None
        latest = self.fresh_quote(option)
        price = self.fills.buy_price((latest or quote).ask)
        o = self.ledger.orders[intent_id]
        if price is None:
            self.ledger.expire_unsent(self.ledger.intents[intent_id], self.ctx.clock.now_utc(),
                                      "no ask to buy at")
            self.commit()
            return
        self._simulate(o.ref, "BUY", round(price, 4), o.quantity)

    def _late_commissions(self) -> None:
        now = self.ctx.clock.now_utc()
        late = [f for f in self.ledger.unreported_fills() if f.commission is None and
                (now - f.time).total_seconds() >= self.ctx.clock.speed *
                self.tuning.commission_wait]
        for fill in late:
            fill.commission = self.fills.commission(fill.contracts, fill.price)
            self._report_fill(fill, estimated=True)
        if late:
            self.commit()

