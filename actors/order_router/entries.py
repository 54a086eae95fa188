"""OrderRouter's entries: choose and size the option against a live quote, then submit
through the gate; a kill switch or halt aborts an entry still being chosen; deadlines."""

from __future__ import annotations

import datetime as dt

import trio

from config.settings import Mode
from doctrine.ledger import (
    round_price,
)
from doctrine.options import (
    EntryPlan,
    OptionQuote,
    Refusal,
    RiskBudget,
    choose_expiry,
    choose_strike,
    entry_min_dte,
    plan_option_entry,
)
from doctrine.params import force_close_dte, params_for
from messages.link import OptionChain, OptionChainRequest
from messages.market import OptionSpec, Quote
from messages.orders import (
    EntryIntent,
    IntentState,
)
from runtime.gateway.link_client import (
    LinkError,
)

from .core import FEE_PER_CONTRACT_ROUND_TRIP, RouterCore
from .gate import entry_refusal


class Entries(RouterCore):
    async def watch_trading(self) -> None:
        """A kill switch or a halt aborts the entries still being chosen."""
        while True:
            await self.inbox.trading.wait_transition()
            if self.choosing and entry_refusal(self.gate_view()) is not None:
                for scope in self.choosing.values():
                    scope.cancel()

    def _refuse(self, intent: EntryIntent, reason: str, option: OptionSpec | None = None, *,
                state: IntentState = "rejected") -> None:
        self.ledger.refuse(intent.intent_id, kind="entry", strategy=intent.signal.strategy,
                           symbol=intent.signal.symbol, reason=reason,
                           now=self.ctx.clock.now_utc(), option=option, state=state)
        self.commit()

    async def enter(self, intent: EntryIntent) -> None:
        """Choose, size and submit one approved entry (or refuse it, journaled)."""
        sig = intent.signal
        self._trade("decision", intent_id=intent.intent_id, approved=True, symbol=sig.symbol,
                    strategy=sig.strategy, direction=sig.direction, right=sig.right,
                    equity=intent.budget.equity, reasons=list(sig.reasons))
        if intent.intent_id in self.ledger.intents:
            self.ctx.log.warning("entry %s delivered twice: ignored", intent.intent_id)
            return
        if (why := entry_refusal(self.gate_view())) is not None:
            self._refuse(intent, why)
            return
        if sig.symbol in self.ledger.busy_symbols():
            self._refuse(intent, f"a {sig.symbol} position or entry is already open")
            return
        scope = trio.CancelScope()
        self.choosing[intent.intent_id] = scope
        try:
            with scope:
                plan, spec, quote = await self._choose(intent)
        except _Refused as exc:
            self._refuse(intent, str(exc), exc.option)
            return
        finally:
            self.candidates.pop(intent.intent_id, None)
            self.choosing.pop(intent.intent_id, None)
            self._publish_wanted()
        if scope.cancelled_caught or (why := entry_refusal(self.gate_view())) is not None:
            why = entry_refusal(self.gate_view()) or "trading stopped"
            self._refuse(intent, f"aborted while the option was chosen: {why}",
                         state="cancelled")
            return
        now = self.ctx.clock.now_utc()
        if now >= intent.deadline:
            self._refuse(intent, "deadline passed while the option was chosen", spec)
            return
        if intent.intent_id in self.ledger.intents or sig.symbol in self.ledger.busy_symbols():
            self._refuse(intent, f"a {sig.symbol} position or entry opened meanwhile", spec)
            return
        params = params_for(sig.strategy, self.inbox.gameplan.value)
        bracket = self.mode is not Mode.DRY_RUN
        tp = round_price(plan.limit_price * (1 + params.take_profit_pct), up=True)
        sl = round_price(plan.limit_price * (1 - params.stop_loss_pct), up=False)
        if bracket and not tp > plan.limit_price > sl:
            self._refuse(intent, f"premium {plan.limit_price:.2f} too small for a bracket "
                                 f"(TP {tp:.2f}, SL {sl:.2f})", spec)
            return
        self.ledger.open_entry(intent.intent_id, option=plan.option, strategy=sig.strategy,
                               contracts=plan.contracts, limit=plan.limit_price,
                               take_profit=tp if bracket else None,
                               stop_loss=sl if bracket else None, deadline=intent.deadline,
                               now=now)
        self.ctx.emit("order_intent", intent_id=intent.intent_id, symbol=sig.symbol,
                      contract=plan.option.key, quantity=plan.contracts, limit=plan.limit_price,
                      strategy=sig.strategy, take_profit=tp if bracket else None,
                      stop_loss=sl if bracket else None, sizing=plan.size.reason)
        self.ctx.log.info("entry %s: BUY %d %s LMT %.2f%s (%s)", intent.intent_id,
                          plan.contracts, plan.option.key, plan.limit_price,
                          f", TP {tp:.2f} / SL {sl:.2f}" if bracket else "", plan.size.reason)
        self._trade("order_intent", intent_id=intent.intent_id, contract=plan.option.key,
                    quantity=plan.contracts, limit=plan.limit_price, strategy=sig.strategy,
                    take_profit=tp if bracket else None, stop_loss=sl if bracket else None,
                    bid=quote.bid, ask=quote.ask, sizing=plan.size.reason, dte=plan.dte)
        self.commit()
        if self.mode is Mode.DRY_RUN:
            self._simulate_buy(intent.intent_id, quote)
        else:
            await self.submit(intent.intent_id)

    async def _choose(self, intent: EntryIntent) -> tuple[EntryPlan, OptionSpec, Quote]:
        sig = intent.signal
        plan_doc = self.inbox.gameplan.value
        params = params_for(sig.strategy, plan_doc)
        fc_dte = force_close_dte(plan_doc)
        try:
            chain: OptionChain = await self.client.call(
                OptionChainRequest(underlying=sig.symbol), timeout=self.tuning.request_timeout)
        except LinkError as exc:
            raise _Refused(f"option chain for {sig.symbol} unavailable: {exc}") from exc
        expiries = sorted(dt.date(int(e[:4]), int(e[4:6]), int(e[6:8]))
                          for e in chain.expirations if len(e) >= 8 and e[:8].isdigit())
        today = self.ctx.clock.today_et()
        expiry = choose_expiry(expiries, today, min_dte=entry_min_dte(params, fc_dte),
                               max_dte=params.max_dte)
        if isinstance(expiry, Refusal):
            raise _Refused(f"{expiry.stage}: {expiry.reason}")
        strike = choose_strike(chain.strikes, sig.close, sig.right, params.moneyness)
        if isinstance(strike, Refusal):
            raise _Refused(f"{strike.stage}: {strike.reason}")
        spec = OptionSpec(underlying=sig.symbol, expiry=expiry, strike=strike, right=sig.right,
                          multiplier=chain.multiplier, trading_class=chain.trading_class)
        self.candidates[intent.intent_id] = spec
        self._publish_wanted()
        quote = await self._await_quote(spec, need_open_interest=params.min_open_interest > 0)
        if quote is None:
            raise _Refused(f"quote: no live two-sided quote for {spec.key} within "
                           f"{self.tuning.quote_wait:g}s", spec)
        oq = OptionQuote(spec=spec, bid=quote.bid, ask=quote.ask, volume=quote.volume,
                         open_interest=quote.open_interest)
        b = intent.budget
        result = plan_option_entry(
            underlying=sig.symbol, right=sig.right, underlying_price=sig.close, today=today,
            expiries=expiries, strikes_for=lambda _e: chain.strikes,
            quote_for=lambda s: oq if s.key == spec.key else None, params=params,
            force_close_dte=fc_dte,
            budget=RiskBudget(equity=b.equity, account_max_position_pct=b.account_max_position_pct,
                              max_risk_per_trade=b.max_risk_per_trade,
                              max_risk_ceiling=b.max_risk_ceiling,
                              max_single_position=b.max_single_position,
                              fee_per_contract=FEE_PER_CONTRACT_ROUND_TRIP),
            size_multiplier=sig.size_multiplier)
        if isinstance(result, Refusal):
            raise _Refused(f"{result.stage}: {result.reason}", spec)
        # the doctrine decided on a copy of the spec; keep the chain's details on ours
        return _with_option(result, spec), spec, quote

    async def _await_quote(self, spec: OptionSpec, *,
                           need_open_interest: bool = False) -> Quote | None:
        """A fresh two-sided quote; with `need_open_interest`, one that also carries it (IB
        may send the open-interest tick a moment after bid and ask). Past the wait, the last
        two-sided quote is returned as it is and the liquidity gate judges what it lacks."""
        last: Quote | None = None
        with trio.move_on_after(self.tuning.quote_wait):
            while True:
                q = self.fresh_quote(spec)
                if q is not None and q.bid is not None and q.ask is not None and \
                        q.bid > 0 and q.ask > 0:
                    last = q
                    if not need_open_interest or q.open_interest is not None:
                        return q
                await self.inbox.quotes.wait_transition()
        return last

    def cancel_entries(self, reason: str) -> None:
        now = self.ctx.clock.now_utc()
        for intent in self.ledger.open_intents("entry"):
            intent.cancel_why = intent.cancel_why or f"cancelled: {reason}"
            parent = self.ledger.orders.get(intent.intent_id)
            if parent is None:
                continue
            if parent.status == "new":
                self.ledger.expire_unsent(intent, now, reason)
            elif parent.live:
                self.ledger.request_cancel(parent.ref, now)
        self.commit()

    def _check_deadlines(self) -> None:
        now = self.ctx.clock.now_utc()
        changed = False
        for intent in self.ledger.entries_past_deadline(now):
            parent = self.ledger.orders.get(intent.intent_id)
            if parent is None:
                continue
            if not intent.cancel_why:
                intent.cancel_why = "expired"
                changed = True
            if parent.status == "new":
                self.ledger.expire_unsent(intent, now, "deadline passed before it was sent")
                changed = True
            elif parent.live and parent.cancel_requested is None:
                self.ledger.request_cancel(parent.ref, now)
                self.ctx.log.info("entry %s not filled by its deadline: cancelling",
                                  intent.intent_id)
                changed = True
        if changed:
            self.commit()



class _Refused(Exception):
    def __init__(self, reason: str, option: OptionSpec | None = None) -> None:
        super().__init__(reason)
        self.option = option



def _with_option(plan: EntryPlan, spec: OptionSpec) -> EntryPlan:
    import dataclasses

    return dataclasses.replace(plan, option=spec)
