"""OrderRouter's exits: worked until the position is flat. Protection (the native bracket)
is cancelled only when its replacement sell could be sent now; a sell never exceeds what the
broker holds (gate.py)."""

from __future__ import annotations

import trio

from config.settings import Mode
from doctrine.ledger import (
    IntentRec,
    round_price,
)
from messages.orders import (
    ExitIntent,
)

from .core import RouterCore
from .gate import SellView, replace_refusal, sell_refusal


class Exits(RouterCore):
    def open_exit(self, msg: ExitIntent) -> None:
        now = self.ctx.clock.now_utc()
        if msg.intent_id in self.ledger.intents:
            return
        rec = self.ledger.open_exit(msg.intent_id, msg.option_key, reason=msg.reason,
                                    urgent=msg.urgent, now=now)
        if rec is None or rec.intent_id != msg.intent_id:
            why = (f"merged into exit {rec.intent_id} already in progress" if rec is not None
                   else f"no open position {msg.option_key}")
            pos = self.ledger.positions.get(msg.option_key)
            self.ledger.refuse(msg.intent_id, kind="exit", strategy=pos.strategy if pos else "C",
                               symbol=msg.option_key.split(" ")[0], reason=why, now=now,
                               state="cancelled")
            self.commit()
            return
        self.ctx.log.info("exit %s: %s %s (%s)%s", rec.intent_id, msg.option_key, msg.reason,
                          msg.detail, " URGENT" if msg.urgent else "")
        self._trade("exit", intent_id=rec.intent_id, contract=msg.option_key,
                    reason=msg.reason, detail=msg.detail, mark=msg.mark, urgent=msg.urgent)
        self.commit()
        self.start_exit(rec.intent_id)

    def start_exit(self, intent_id: str) -> None:
        if intent_id in self.exit_tasks or self.nursery is None:
            return
        self.exit_tasks.add(intent_id)
        self.nursery.start_soon(self._work_exit, intent_id)

    async def _work_exit(self, intent_id: str) -> None:
        try:
            backoff = self.tuning.retry_min
            while not self.ledger.intents[intent_id].terminal:
                await self.wait_ready()
                intent = self.ledger.intents[intent_id]
                if intent.terminal:
                    break
                waited = await self._exit_step(intent)
                if waited == "retry":
                    await trio.sleep(backoff)
                    backoff = min(self.tuning.retry_max, backoff * 2)
                elif waited == "placed":
                    backoff = self.tuning.retry_min
        finally:
            self.exit_tasks.discard(intent_id)

    async def _exit_step(self, intent: IntentRec) -> str:
        """One step of working an exit: cancel what is in the way, or place the next sell."""
        led = self.ledger
        if self.persist_error is not None:
            self.commit()                 # try the disk again: exits wait for it
        pos = led.positions.get(intent.option_key or "")
        if pos is None or pos.exit_intent != intent.intent_id:
            led.settle(intent, self.ctx.clock.now_utc())
            self.commit()
            return "done"
        in_the_way = [o for o in led.orders.values() if o.action == "SELL" and o.live and
                      o.intent_id != intent.intent_id and
                      led.intents[o.intent_id].option_key == pos.key]
        sell = self.sell_view(pos.key, pos.contracts, intent_id=intent.intent_id)
        if in_the_way:
            # protection (the native bracket) goes only when its replacement could be sent
            why = replace_refusal(self.gate_view(), sell)
            if why is not None and not any(o.cancel_requested for o in in_the_way):
                self._exit_blocked(intent, sell, f"protection kept: {why}")
                return "retry"
            cid = self.inbox.link_state.value.client_id
            foreign = [o for o in in_the_way if o.client_id is not None and cid is not None
                       and o.client_id != cid]
            if foreign and intent.urgent and self.mode is Mode.PAPER:
                # a flatten (kill switch, loss limit) after a 326: only a global cancel reaches
                # orders of another client id; the replacement sell is ready (checked above)
                await self.global_cancel(f"flattening {pos.key} ({intent.exit_reason}): "
                                         f"{', '.join(o.ref for o in foreign)} were placed "
                                         f"under client id {foreign[0].client_id}")
            for o in in_the_way:
                await self.cancel(o)
            await self.changed(self.tuning.cancel_resend)
            return "waiting"
        for o in led.orders_of(intent.intent_id):
            if o.status == "new":       # never sent (or proven never received): re-priced
                led.drop_unsent(o.ref, "superseded by a fresh attempt", self.ctx.clock.now_utc())
        own = [o for o in led.orders_of(intent.intent_id) if o.live]
        if own:
            o = own[0]
            age = (self.ctx.clock.now_utc() - o.updated).total_seconds()
            if age >= self.tuning.lost_after_market_s:
                self.reconcile_soon.set()      # the broker has not said a word: look it up
            if age >= self.tuning.exit_reprice_market_s or o.cancel_requested is not None:
                await self.cancel(o)
            await self.changed(min(self.tuning.cancel_resend,
                                   self.ctx.clock.to_trio_seconds(
                                       self.tuning.exit_reprice_market_s) + 0.1))
            return "waiting"
        why = sell_refusal(self.gate_view(), sell)
        if why is not None:
            self._exit_blocked(intent, sell, why)
            return "retry"
        bid = sell.bid
        assert bid is not None
        if self.mode is Mode.DRY_RUN:
            price = self.fills.sell_price(bid)
            if price is None or not price > 0:
                self._exit_failed(intent, f"no price to sell {pos.key} at")
                return "retry"
            attempt = led.exit_attempt(intent.intent_id, quantity=pos.contracts,
                                       order_type="LMT", limit=round(price, 4),
                                       now=self.ctx.clock.now_utc())
            self._simulate(attempt.ref, "SELL", round(price, 4), pos.contracts)
            return "placed"
        limit = round_price(bid - self.tuning.urgent_concession, up=False) if intent.urgent \
            else round_price(bid, up=False)
        attempt = led.exit_attempt(intent.intent_id, quantity=pos.contracts, order_type="LMT",
                                   limit=limit, now=self.ctx.clock.now_utc())
        self.commit()
        await self.submit(intent.intent_id)
        if led.orders[attempt.ref].status == "rejected":
            self._exit_failed(intent, f"{attempt.ref} refused: {led.orders[attempt.ref].error}")
            return "retry"
        return "placed"

    def _exit_blocked(self, intent: IntentRec, sell: SellView, why: str) -> None:
        """The gate refused this exit's next step: ask the broker again where that helps."""
        if sell.broker_held is None or sell.broker_held != sell.ledger_held:
            self.reconcile_soon.set()
        self._exit_failed(intent, why)

    def _exit_failed(self, intent: IntentRec, why: str) -> None:
        n = self._exit_failures.get(intent.intent_id, 0) + 1
        self._exit_failures[intent.intent_id] = n
        self.ctx.log.warning("exit %s: attempt failed (%d): %s; retrying", intent.intent_id, n,
                             why)
        if n == self.tuning.exit_alert_after:
            self.ctx.alert("critical", f"Exit of {intent.option_key} keeps failing",
                           f"{n} attempts: {why}. Still retrying with backoff; the position "
                           "stays tracked until it is flat.", key=f"exit:{intent.option_key}")

