"""ModeGuard: the trading state, the mode interlocks and the risk limits.

It owns the answer to "may the bot trade now?":

* Mode interlock, on EVERY new Gateway session: DRY_RUN needs a read-only session; PAPER needs
  every managed account to be a paper account (`DU…`) on a read-write session; LIVE needs
  (besides the acknowledgement the settings demand) no paper account at all. A mismatch or an
  unknown account type halts trading (a fault), cancels working entries where the session
  allows it, raises a critical alert, and holds until a session that matches. OrderRouter
  checks each session itself (doctrine/modes.py) and takes ModeGuard's `SessionVerdict` as
  a veto: no handshake to wait on.
* Trading state: ACTIVE; REDUCING (exits only) while the link is down or degraded, inside the
  scheduled Gateway restart window, or while the session is not yet checked and reconciled;
  HALTED on a risk breach, a mode mismatch, the kill switch, or a state it cannot read.
* Risk from real numbers (doctrine/risk.py): realised P&L from our fills, unrealised from live
  option bids; the daily loss limit flattens and halts for the ET day; PDT day trades counted
  from actual round trips over 5 sessions; the weekly drawdown governor; pivots; per-trade and
  per-position budgets from the account's equity (NetLiquidation, or in dry-run the starting
  equity plus realised P&L). Unknown equity means no entries.
* Exits: doctrine/exits.py on every open position against the option's live bid and the clock
  (a native bracket works the take-profit and stop-loss at the broker; those two are only
  sent from here if the bracket has not acted within a grace period).
* Kill switch: the file STATE_DIR/KILL_SWITCH (polled) and the health endpoint's command (which
  writes or removes the file, so both always agree): entries cancelled, everything flattened.

Everything is persisted in STATE_DIR/risk.json after every change and restored at start; an
unreadable file halts trading (never a reset), and the file is left untouched for the operator.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, assert_never

import trio

from config.gameplan import Gameplan
from config.market_calendar import ET, get_calendar
from config.settings import Mode
from doctrine.exits import ExitRules, OpenPosition, check_exit
from doctrine.modes import mode_problem
from doctrine.risk import (
    EntryGate,
    RiskState,
    RiskStateError,
    daily_loss_breached,
    entry_refusal,
    governor_due,
    loss_limit,
    opened_today,
    pdt_left,
    plan_refusal,
    short_unrealized,
    unrealized,
)
from messages.base import Message
from messages.brain import EntrySignal, StrategyDecision
from messages.control import OperatorCommand, TradingState, TradingStatus
from messages.link import LinkState, LinkStatus
from messages.market import Quote
from messages.orders import (
    AccountReport,
    CancelEntries,
    DaySummary,
    EntryIntent,
    EntryRefused,
    ExitIntent,
    ExitWhy,
    FillReport,
    IntentUpdate,
    OrderCommand,
    OrderEvent,
    PositionsReport,
    PositionView,
    RouterStatus,
    SessionVerdict,
    ShortView,
    SizingBudget,
)
from messages.status import LimitUse, RiskStatus
from runtime.gateway.gateway_schedule import in_restart_window, next_restart_window
from runtime.infra.file_watch import open_file_watch
from runtime.infra.state_store import StateStore, StateUnreadable
from runtime.supervision.actor import ActorContext
from runtime.supervision.channels import Latest
from runtime.supervision.ordered import OrderedSender
from runtime.supervision.tree import Gauge

# -- inbox and outbox -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Inbox:
    signals: trio.MemoryReceiveChannel[Message]
    order_events: trio.MemoryReceiveChannel[OrderEvent]
    commands: trio.MemoryReceiveChannel[OperatorCommand]
    link_state: Latest[LinkState]
    quotes: Latest[Mapping[str, Quote]]
    gameplan: Latest[Gameplan | None]
    decision: Latest[StrategyDecision | None]


@dataclass(frozen=True)
class Outbox:
    orders: trio.MemorySendChannel[OrderCommand]
    trading: Latest[TradingStatus]
    governor: Latest[bool]
    risk: Latest[RiskStatus | None] | None = None      # the status read-model (one writer)


STATE_NAME = "risk"
POSITIONS_HELD = Gauge("positions_held", "option positions in the router's last report")
MARKS_MISSING = Gauge("marks_missing", "positions whose mark is missing or stale (their loss "
                      "cannot be measured: entries halt until it is back)")
WATCH_CHECKS = Gauge("watch_checks", "limit checks the watch made since this incarnation started")
REFUSED = "risk state refused"    # the halt reason when the file is another mode's/account's
KILL_FILE = "KILL_SWITCH"


@dataclass(frozen=True)
class Tuning:
    entry_ttl_market_s: float = 180.0        # an entry not filled by then is cancelled
    max_signal_age_market_s: float = 120.0   # an older signal is history, not a setup
    tick: float = 1.0                        # trio s between looks at the kill file (no inotify)
    min_interval: float = 0.05               # trio seconds: quotes cannot make it spin
    bracket_grace_market_s: float = 120.0    # TP/SL left to the native bracket this long
    summary_after_close_market_s: float = 60.0
    max_wait_market_s: float = 900.0         # the watch's safety net (not a polling tick)
    quote_max_age_market_s: float = 300.0    # an older bid is no mark for P&L


# -- the actor ------------------------------------------------------------------------------------


async def run(ctx: ActorContext, inbox: Inbox, outbox: Outbox, *, tuning: Tuning | None = None,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    guard = _Guard(ctx, inbox, outbox, tuning or Tuning())
    guard.restore()
    guard.say_capital()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(guard.orders_out.pump)
        guard.evaluate()
        task_status.started()
        guard.nursery = nursery
        nursery.start_soon(guard.signals)
        nursery.start_soon(guard.order_events)
        nursery.start_soon(guard.commands)
        nursery.start_soon(guard.watch)


class _Guard:
    def __init__(self, ctx: ActorContext, inbox: Inbox, outbox: Outbox, tuning: Tuning) -> None:
        self.ctx = ctx
        self.inbox = inbox
        self.outbox = outbox
        self.tuning = tuning
        self.settings = ctx.settings
        self.mode = ctx.settings.mode
        self.store = StateStore(ctx.settings.state_dir)
        self.orders_out = OrderedSender(outbox.orders)
        self.kill_path: Path = ctx.settings.state_dir / KILL_FILE
        self.calendar = get_calendar()
        self.risk = RiskState()
        self.state_error: str | None = None
        self.save_error: str | None = None
        self.nursery: trio.Nursery | None = None
        self.session_checked = 0
        self.verdicts: dict[int, str | None] = {}      # session -> problem (None: fits)
        self.router_session = 0
        self.router_reconciled = 0
        self.router_fault: str | None = None
        self.positions: tuple[PositionView, ...] | None = None
        self.shorts: tuple[ShortView, ...] = ()         # short options at the broker (alarm)
        self.loss_unconfirmed: str | None = None        # a breach only missing marks make
        self._risk_at: dt.datetime | None = None        # when the risk read-model was built
        self.equity_reported: float | None = None
        self.marks: dict[str, float] = {}
        self.exits_sent: dict[str, str] = {}           # option key -> exit intent id
        self.deferred: dict[str, float] = {}           # option key -> first seen (market s)
        self.status: TradingStatus | None = None
        self.wake = trio.Event()                        # check now (positions changed, ...)
        self.wakeups = 0                                # the watch's checks (tests count them)
        self.marks_missing: list[str] = []

    # -- persistence -------------------------------------------------------------------------
    def say_capital(self) -> None:
        account = self.account_equity()
        capital = self.equity()
        self.ctx.log.info("capital: BOT_CAPITAL_USD %.2f, account equity %s: sizing and risk "
                          "limits use %s", self.settings.bot_capital_usd,
                          f"{account:,.2f}" if account is not None else "not yet known",
                          f"{capital:,.2f}" if capital is not None else "nothing until it is")
        self.ctx.emit("capital", bot_capital_usd=self.settings.bot_capital_usd,
                      equity_usd=account, capital_usd=capital)

    def restore(self) -> None:
        self.ctx.log.info("ModeGuard in %s mode: %s", self.mode.words, {
            Mode.DRY_RUN: "read-only session required, fills simulated, no order to IB",
            Mode.PAPER: "every account must be a paper account (DU…)",
            Mode.LIVE: "real money: paper accounts refused"}[self.mode])
        try:
            doc = self.store.load(STATE_NAME)
            if doc is not None:
                self.risk = RiskState.from_dict(doc)
                self.ctx.log.info(
                    "risk state restored: day %s realised %+.2f, %d day trade(s) on record, "
                    "kill switch %s, halted day %s, governor %s", self.risk.day,
                    self.risk.realized_today, len(self.risk.day_trades),
                    "ON" if self.risk.kill_switch else "off", self.risk.halted_day,
                    "ON" if self.risk.governor else "off")
            self._check_binding(None)      # the mode now; the account when a session comes
        except (StateUnreadable, RiskStateError) as exc:
            self.state_error = str(exc)
            self.ctx.alert("critical", "Risk state unreadable: trading HALTED",
                           f"{exc}. Daily P&L, day trades and halts cannot be known, so nothing "
                           "new is traded (a reset would be more permissive). Fix or remove "
                           "the file and restart.", key="risk-state")

    def _check_binding(self, account: str | None) -> bool:
        """The risk state is this mode's and account's (bound now if it was not yet), or it
        is refused: HALTED, one clear line, the file left as it is for the operator."""
        if self.state_error is not None:
            return False
        problem = self.risk.binding_problem(self.mode.value, account,
                                            capital=self.settings.bot_capital_usd)
        if problem is None:
            if self.risk.bound_mode != self.mode.value or \
                    (account is not None and self.risk.bound_account != account):
                self.risk.bind(self.mode.value, account)
                self.save()
            return True
        self.state_error = f"{REFUSED}: {problem}"
        self.ctx.alert("critical", "Trading HALTED: risk state refused",
                       f"{self.store.path(STATE_NAME)}: {problem}; its losses, day trades and "
                       "limits are not this account's, so nothing new is traded. Move the file "
                       "away (or back to its mode) and restart.", key="risk-state")
        return False

    def save(self) -> None:
        if self.state_error is not None:
            return                 # never overwrite the file the operator must look at
        try:
            self.store.save(STATE_NAME, self.risk.to_dict())
            if self.save_error is not None:
                self.save_error = None
                self.ctx.alert("info", "Risk state saved again", key="risk-save")
        except (OSError, ValueError) as exc:
            if self.save_error is None:
                self.ctx.alert("critical", "Risk state cannot be saved: trading HALTED",
                               str(exc), key="risk-save")
            self.save_error = str(exc)

    # -- sending -----------------------------------------------------------------------------
    def send(self, msg: OrderCommand) -> None:
        """Never dropped, never reordered (runtime/supervision/ordered.py)."""
        self.orders_out.send_nowait(msg)

    # -- numbers -----------------------------------------------------------------------------
    @property
    def plan(self) -> Gameplan | None:
        return self.inbox.gameplan.value

    def account_equity(self) -> float | None:
        """The account's equity: NetLiquidation, or in DRY_RUN the simulated one."""
        if self.mode is Mode.DRY_RUN:
            return self.settings.starting_equity_usd + self.risk.dry_run_realized_total
        return self.equity_reported

    def equity(self) -> float | None:
        """The capital sizing and every risk limit use: min(BOT_CAPITAL_USD, equity)."""
        account = self.account_equity()
        if account is None:
            return None
        return min(self.settings.bot_capital_usd, account)

    def fresh_marks(self) -> tuple[dict[str, float], bool]:
        """Bids of the open positions from this session's quotes; complete = all have one."""
        now = self.ctx.clock.now_utc()
        sid = self.inbox.link_state.value.session_id
        board = self.inbox.quotes.value
        fresh: dict[str, float] = {}
        for p in self.positions or ():
            q = board.get(p.option_key)
            if q is None or q.bid is None or not q.bid > 0:
                continue
            if q.session_id is not None and q.session_id != sid:
                continue
            if (now - q.ts).total_seconds() > self.tuning.quote_max_age_market_s:
                continue
            fresh[p.option_key] = q.bid
            self.marks[p.option_key] = q.bid
        complete = all(p.option_key in fresh for p in self.positions or ())
        return fresh, complete

    def fresh_asks(self) -> dict[str, float]:
        """Asks of the SHORT positions from this session's fresh quotes."""
        now = self.ctx.clock.now_utc()
        sid = self.inbox.link_state.value.session_id
        out: dict[str, float] = {}
        for s in self.shorts:
            q = self.inbox.quotes.value.get(s.option_key)
            if q is None or q.ask is None or not q.ask > 0 or \
                    (q.session_id is not None and q.session_id != sid) or \
                    (now - q.ts).total_seconds() > self.tuning.quote_max_age_market_s:
                continue
            out[s.option_key] = q.ask
        return out

    def pnl_today(self) -> float:
        """Realised plus open P&L at CONSERVATIVE marks: a long without a fresh bid counts at
        zero (a stale mark must not hide a loss), a short at its ask."""
        fresh, _ = self.fresh_marks()
        return self.risk.realized_today + \
            unrealized(self.positions or (), fresh, missing_at_zero=True) + \
            short_unrealized(self.shorts, self.fresh_asks())

    def limit(self) -> float | None:
        plan = self.plan
        return loss_limit(self.risk.day_start_equity, self.settings.max_daily_loss_pct,
                          plan.hard_limits.max_daily_loss_pct if plan else None)

    def pdt_left(self) -> int:
        today = self.ctx.clock.today_et()
        window = [s.date for s in self.calendar.sessions_back(today, 5)]
        plan = self.plan
        return pdt_left(self.risk, window=window, today=today,
                        plan_remaining=plan.hard_limits.pdt_trades_remaining if plan else None)

    # -- the state ---------------------------------------------------------------------------
    def evaluate(self) -> None:
        """Roll the day, apply the limits, publish the trading state. Synchronous."""
        now = self.ctx.clock.now_utc()
        today = self.ctx.clock.today_et()
        notes = self.risk.roll(today, self.equity())
        if notes:
            for note in notes:
                self.ctx.log.info("%s", note)
            self.save()
        self._check_session()
        self._poll_kill_file()
        self._check_limits(today)
        self._publish(now, today)
        self.publish_risk(now)

    def publish_risk(self, now: dt.datetime) -> None:
        """The risk read-model, replaced whole when it changed (at most once a market second
        while the trading state stays the same: quotes move the P&L many times a second)."""
        if self.outbox.risk is None:
            return
        status = self.status or self.outbox.trading.value
        old = self.outbox.risk.value
        if old is not None and old.trading_state == status.state.value and \
                old.reasons == status.reasons and old.kill_switch == self.risk.kill_switch and \
                self._risk_at is not None and (now - self._risk_at).total_seconds() < 1.0:
            return
        self._risk_at = now
        capital = self.equity()
        limit = self.limit()
        pnl = self.pnl_today()
        plan = self.plan
        decision = self.inbox.decision.value
        max_pivots = plan.hard_limits.max_intraday_pivots if plan is not None else \
            (decision.max_pivots if decision is not None else None)
        used = sum(p.entry_premium * p.contracts * p.option.multiplier
                   for p in self.positions or ())
        limits = [
            LimitUse(name="daily_loss", used=round(max(0.0, -pnl), 2),
                     limit=round(limit, 2) if limit is not None else None, unit="usd",
                     detail=f"P&L today {pnl:+,.2f} at conservative marks"),
            LimitUse(name="pivots", used=decision.pivots if decision is not None else 0,
                     limit=max_pivots, unit="count"),
            LimitUse(name="capital", used=round(used, 2), limit=capital, unit="usd",
                     detail="premium paid for the open positions"),
        ]
        if self.settings.pdt_enabled:
            left = self.pdt_left()
            limits.append(LimitUse(name="pdt", used=max(0, 3 - left), limit=3, unit="count",
                                   detail=f"{left} day trade(s) left in 5 sessions"))
        risk = RiskStatus(ts=now, trading_state=status.state.value, reasons=status.reasons,
                          kill_switch=self.risk.kill_switch, governor=self.outbox.governor.value,
                          equity_usd=self.account_equity(), capital_usd=capital,
                          limits=tuple(limits))
        if old is None or old.model_copy(update={"ts": now}) != risk:
            self.outbox.risk.set(risk)

    def _publish(self, now: dt.datetime, today: dt.date) -> None:
        halts: list[str] = []
        fault = False
        if self.state_error:
            halts.append(REFUSED if self.state_error.startswith(REFUSED)
                         else "risk state unreadable")
            fault = True
        if self.save_error:
            halts.append("risk state cannot be saved")
            fault = True
        if self.router_fault:
            halts.append(f"order router: {self.router_fault}")
            fault = True
        link = self.inbox.link_state.value
        # the last session checked decides, also while the link is down: a mismatch holds
        # until a session that matches (or a restart with the right settings)
        last = link.session_id if link.up else max(self.verdicts, default=0)
        problem = self.verdicts.get(last)
        if problem:
            halts.append(f"mode mismatch: {problem}")
            fault = True
        if link.exhausted:
            halts.append("Gateway link exhausted its restarts (retrying slowly)")
            fault = True
        if self.shorts:
            halts.append("short option position at the broker: " +
                         ", ".join(f"{s.option_key} -{s.contracts}" for s in self.shorts))
            fault = True
        if self.loss_unconfirmed:
            halts.append(self.loss_unconfirmed)
        if self.risk.kill_switch:
            halts.append("kill switch engaged")
        if self.risk.halted_day == today:
            halts.append(f"halted for the day: {self.risk.halted_reason}")
        reducing: list[str] = []
        if not link.up:
            reducing.append("Gateway link down")
        elif link.status is LinkStatus.DEGRADED:
            reducing.append("IB connectivity lost (1100)")
        if in_restart_window(now, self.settings.gateway_restart_time,
                             self.settings.gateway_restart_window_min):
            reducing.append("scheduled Gateway restart window")
        if link.up and link.session_id not in self.verdicts:
            reducing.append("mode check pending")
        if link.up and self.router_reconciled != link.session_id:
            reducing.append("orders not yet reconciled")
        if self.positions is None:
            reducing.append("positions not yet known")
        if self.equity() is None:
            reducing.append("account equity unknown")
        state = TradingState.HALTED if halts else \
            TradingState.REDUCING if reducing else TradingState.ACTIVE
        reasons = tuple(halts or reducing)
        old = self.status if self.status is not None else self.outbox.trading.value
        kill = self.risk.kill_switch
        if self.status is not None and old.state is state and old.reasons == reasons \
                and old.fault == fault and old.kill_switch == kill:
            return
        since = old.since if old.state is state and old.since else now
        status = TradingStatus(state=state, reasons=reasons, since=since, fault=fault,
                               kill_switch=kill)
        self.status = status
        self.outbox.trading.set(status)
        self.ctx.set_note(f"{state.value}" + (f": {reasons[0]}" if reasons else ""))
        if old.state is state and self.status is not None and old.reasons == reasons:
            return
        text = "; ".join(reasons) or "all checks pass"
        if state is TradingState.HALTED and (old.state is not TradingState.HALTED
                                             or old.reasons != reasons):
            self.ctx.emit("halt", reason=text, state=state.value, fault=fault)
            self.ctx.log.warning("Trading HALTED: %s", text)
        elif old.state is TradingState.HALTED and state is not TradingState.HALTED \
                and "starting" not in old.reasons:
            self.ctx.emit("resume", reason=text, state=state.value)
            self.ctx.alert("info", f"Trading resumed: {state.value}", text, key="trading")
        elif old.state is not state:
            self.ctx.log.info("Trading %s: %s", state.value, text)
        else:                    # the same state, one reason fewer or more: journaled only
            self.ctx.log.debug("Trading %s: %s", state.value, text)
        self.ctx.emit("trading_state", state=state.value, reasons=list(reasons), fault=fault)

    # -- mode interlock ----------------------------------------------------------------------
    def _check_session(self) -> None:
        link = self.inbox.link_state.value
        if not link.up or link.session_id == self.session_checked:
            return
        self.session_checked = link.session_id
        problem = mode_problem(self.settings, link)
        self.verdicts[link.session_id] = problem
        for old in [s for s in self.verdicts if s < link.session_id - 5]:
            del self.verdicts[old]
        self.ctx.emit("mode_check", session=link.session_id, ok=problem is None,
                      mode=self.mode.value, accounts=list(link.accounts),
                      readonly=link.readonly, reason=problem or "matches")
        self.send(SessionVerdict(session_id=link.session_id, ok=problem is None,
                                 reason=problem or "matches"))
        if problem is None:
            self._check_binding(",".join(sorted(a.strip() for a in link.accounts
                                                if a.strip())) or None)
            self.ctx.log.info("session %d fits %s mode (accounts %s, %s)", link.session_id,
                              self.mode.words, ",".join(link.accounts) or "-",
                              "read-only" if link.readonly else "read-write")
            return
        self.ctx.alert("critical", f"MODE MISMATCH: trading halted ({self.mode.words})",
                       f"session {link.session_id}: {problem}. Nothing is sent on this session; "
                       "fix the settings or the Gateway login, then restart.",
                       key="mode-mismatch")
        self.send(CancelEntries(ts=self.ctx.clock.now_utc(), reason=f"mode mismatch: {problem}"))

    # -- limits and exits --------------------------------------------------------------------
    def _check_limits(self, today: dt.date) -> None:
        fresh, complete = self.fresh_marks()
        missing = sorted(p.option_key for p in self.positions or () if p.option_key not in fresh)
        if missing != self.marks_missing:
            self.marks_missing = missing
            self.ctx.gauge(MARKS_MISSING, ", ".join(missing) or "none")
        complete = complete and (not self.shorts or
                                 len(self.fresh_asks()) == len(self.shorts))
        limit = self.limit()
        pnl = self.pnl_today()
        breached = daily_loss_breached(pnl, limit)
        # a breach that only the missing marks make halts entries until the quotes are back;
        # flattening on it would sell at whatever bid returns first (the sell needs one anyway)
        unconfirmed = None
        if breached and not complete and self.risk.halted_day != today:
            unconfirmed = (f"daily loss limit possibly reached ({pnl:,.2f} with positions "
                           "lacking a fresh quote counted at zero)")
            breached = False
        if unconfirmed != self.loss_unconfirmed:
            self.loss_unconfirmed = unconfirmed
            if unconfirmed:
                self.ctx.alert("warning", "Marks missing: entries halted", unconfirmed,
                               key="loss-unconfirmed")
        if self.risk.halted_day != today and breached:
            assert limit is not None
            self.risk.halted_day = today
            self.risk.halted_reason = (f"daily loss {pnl:,.2f} reached the limit "
                                       f"-{limit:,.2f}")
            self.save()
            self.ctx.emit("risk_breach", kind="daily_loss", pnl=round(pnl, 2),
                          limit=round(limit, 2))
            self.ctx.alert("critical", "Daily loss limit hit: flattening, halted for the day",
                           self.risk.halted_reason, key="daily-loss")
            self.send(CancelEntries(ts=self.ctx.clock.now_utc(), reason="daily loss limit"))
        plan = self.plan
        reason = governor_due(self.risk, self.equity(),
                              plan.hard_limits.max_weekly_drawdown_pct if plan else None)
        if reason is not None and not self.risk.governor:
            self.risk.governor, self.risk.governor_reason = True, reason
            self.save()
            self.ctx.alert("warning", "Weekly drawdown governor ON: Strategy C for the week",
                           reason, key="governor")
        active = self.risk.governor or bool(plan and plan.hard_limits.
                                            weekly_drawdown_governor_active)
        if self.outbox.governor.value != active:
            self.outbox.governor.set(active)
        if self.risk.kill_switch:
            self._flatten("kill_switch", "kill switch engaged")
        elif self.risk.halted_day == today:
            self._flatten("daily_loss", self.risk.halted_reason)
        else:
            self._exits(today)

    def _flatten(self, why: ExitWhy, detail: str) -> None:
        for p in self.positions or ():
            self._send_exit(p, why, detail, urgent=True)

    def _send_exit(self, p: PositionView, why: ExitWhy, detail: str, *, urgent: bool) -> None:
        if p.exiting or p.option_key in self.exits_sent:
            return
        intent_id = _new_id("X", self.ctx.clock.now_utc())
        self.exits_sent[p.option_key] = intent_id
        self.ctx.log.info("exit %s for %s x%d: %s (%s)", intent_id, p.option_key, p.contracts,
                          why, detail)
        self.send(ExitIntent(intent_id=intent_id, ts=self.ctx.clock.now_utc(),
                             option_key=p.option_key, reason=why, detail=detail,
                             mark=self.marks.get(p.option_key), urgent=urgent))

    def _exits(self, today: dt.date) -> None:
        now = self.ctx.clock.now_utc()
        now_s = now.timestamp()
        session = self.calendar.session_at(now)
        close_s = session.close.timestamp() if session is not None else None
        fresh, _ = self.fresh_marks()
        plan = self.plan
        for p in self.positions or ():
            if p.exiting or p.option_key in self.exits_sent:
                continue
            rules = ExitRules.for_strategy(p.strategy, plan) \
                if p.managed and p.strategy in ("A", "B") else ExitRules.unmanaged(plan)
            pos = OpenPosition(symbol=p.option.underlying, option=p.option,
                               strategy=p.strategy, contracts=p.contracts,
                               entry_premium=p.entry_premium, entry_s=p.entry_ts.timestamp(),
                               rules=rules)
            found = check_exit(pos, mark=fresh.get(p.option_key), now_s=now_s, today=today,
                               session_close_s=close_s)
            if found is None:
                self.deferred.pop(p.option_key, None)
                continue
            reason, detail = found
            if p.protected and reason in ("take_profit", "stop_loss"):
                first = self.deferred.setdefault(p.option_key, now_s)
                if now_s - first < self.tuning.bracket_grace_market_s:
                    continue              # the native bracket order works it at the broker
                detail += " (the native bracket has not acted)"
            self.deferred.pop(p.option_key, None)
            self._send_exit(p, reason, detail, urgent=reason == "emergency_stop")

    # -- kill switch -------------------------------------------------------------------------
    def _kill_file_present(self) -> bool:
        try:
            return self.kill_path.exists()
        except OSError:
            return True                    # cannot tell: assume engaged (fail closed)

    def _poll_kill_file(self) -> None:
        present = self._kill_file_present()
        if present != self.risk.kill_switch:
            self._set_kill(present, "file")

    def _set_kill(self, engaged: bool, source: str) -> None:
        if engaged == self.risk.kill_switch:
            return
        self.risk.kill_switch = engaged
        self.save()
        if source == "file":
            self.ctx.emit("kill_switch", source="file", engaged=engaged)
        if engaged:
            self.ctx.alert("critical", "KILL SWITCH ENGAGED: cancelling entries, flattening",
                           f"via {source}; remove {self.kill_path} (or POST /kill-switch "
                           "engaged=false) to release", key="kill-switch")
            self.send(CancelEntries(ts=self.ctx.clock.now_utc(), reason="kill switch"))
        else:
            self.ctx.alert("warning", "Kill switch released", f"via {source}", key="kill-switch")

    async def commands(self) -> None:
        async for cmd in self.inbox.commands:
            if cmd.kind == "drill_loss":
                self._drill_loss(cmd)
                continue
            if cmd.kind == "close_position":
                self._close_position(cmd)
                continue
            if cmd.kind not in ("kill_switch_on", "kill_switch_off"):
                continue
            engaged = cmd.kind == "kill_switch_on"
            try:
                if engaged:
                    self.kill_path.parent.mkdir(parents=True, exist_ok=True)
                    self.kill_path.write_text(
                        f"engaged via {cmd.source} at {cmd.ts.isoformat()}\n", encoding="utf-8")
                else:
                    self.kill_path.unlink(missing_ok=True)
            except OSError as exc:
                self.ctx.alert("critical", "Kill switch file could not be changed",
                               f"{self.kill_path}: {exc}", key="kill-file")
            self._set_kill(engaged, cmd.source)
            self.evaluate()

    def _close_position(self, cmd: OperatorCommand) -> None:
        """The operator closes one position (the console's button): the same exit intent as
        any exit rule, through the router's pre-trade gate; allowed in every trading state,
        since a sell only reduces risk. A position that does not exist (or is already being
        closed) is said so, not guessed at."""
        found = [p for p in self.positions or () if p.option_key == cmd.option_key]
        if not found:
            self.ctx.alert("warning", "Close refused: no such position",
                           f"{cmd.option_key!r} via {cmd.source}: the bot holds no such "
                           "position; nothing was sent", key="operator-close")
            return
        p = found[0]
        if p.exiting or p.option_key in self.exits_sent:
            self.ctx.alert("info", "Close: already exiting",
                           f"{p.option_key} via {cmd.source}: an exit is already working",
                           key="operator-close")
            return
        self.ctx.alert("info", "Closing one position on the operator's request",
                       f"{p.option_key} x{p.contracts} via {cmd.source}", key="operator-close")
        self._send_exit(p, "operator", f"closed by the operator via {cmd.source}", urgent=False)

    def _drill_loss(self, cmd: OperatorCommand) -> None:
        """Guardrail drill: book a simulated loss and let the real limit logic react.

        Refused unless the clock is simulated (a soak or demo run): a drill must never touch
        a real account's risk state. The loss is booked as realised P&L, so the same path that
        a real losing trade takes (breach -> cancel entries, flatten, halt, critical alert)
        is the one exercised.
        """
        if not self.ctx.clock.follows_gateway:
            self.ctx.log.error("guardrail drill refused: not on a simulated clock")
            return
        self.risk.roll(self.ctx.clock.today_et(), self.equity())
        limit = self.limit()
        # by default: whatever takes today's P&L (profits included) 10 % past the limit
        amount = cmd.amount_usd if cmd.amount_usd is not None else (
            max(0.0, self.pnl_today()) + limit * 1.1 if limit is not None else None)
        if amount is None:
            self.ctx.log.error("guardrail drill refused: the daily loss limit is unknown "
                               "(no equity yet)")
            return
        self.risk.realized_today -= amount
        self.save()
        self.ctx.emit("drill", kind="daily_loss", amount=round(amount, 2),
                      limit=round(limit, 2) if limit is not None else None)
        self.ctx.log.warning("guardrail drill: booked a simulated loss of %.2f (limit %s)",
                             amount, f"{limit:.2f}" if limit is not None else "unknown")
        self.evaluate()

    # -- inputs ------------------------------------------------------------------------------
    async def signals(self) -> None:
        async for msg in self.inbox.signals:
            if isinstance(msg, EntrySignal):
                self.evaluate()
                self.decide(msg)

    def decide(self, sig: EntrySignal) -> None:
        now = self.ctx.clock.now_utc()
        today = self.ctx.clock.today_et()
        intent_id = _new_id("E", now)
        _, marks_complete = self.fresh_marks()
        plan = self.plan
        decision = self.inbox.decision.value
        status = self.status or self.outbox.trading.value
        equity = self.equity()
        gate = EntryGate(
            symbol=sig.symbol, signal_age_s=(now - sig.ts).total_seconds(),
            max_signal_age_s=self.tuning.max_signal_age_market_s,
            trading_active=status.state is TradingState.ACTIVE, trading_reasons=status.reasons,
            equity=equity, loss_limit=self.limit(), pnl_today=self.pnl_today(),
            marks_complete=marks_complete, pdt_enabled=self.settings.pdt_enabled,
            pdt_left=self.pdt_left(), opened_today=opened_today(self.positions or (), today),
            governor=self.outbox.governor.value,
            busy_symbols=frozenset(p.option.underlying for p in self.positions or ()),
            pivots=decision.pivots if decision is not None else 0,
            max_pivots=plan.hard_limits.max_intraday_pivots if plan is not None else
            (decision.max_pivots if decision is not None else None))
        refusal = entry_refusal(gate) or plan_refusal(sig, plan, decision)
        if refusal is not None:
            self.risk.rejections_today += 1
            self.save()
            self.ctx.emit("order_rejected", intent_id=intent_id, reason=refusal,
                          symbol=sig.symbol, strategy=sig.strategy, stage="risk")
            self.ctx.log.info("entry %s %s %s refused: %s", sig.symbol, sig.strategy,
                              sig.direction, refusal)
            self.send(EntryRefused(intent_id=intent_id, ts=now, signal=sig, reason=refusal))
            return
        assert equity is not None
        budget = SizingBudget(
            equity=equity, account_max_position_pct=self.settings.max_position_pct,
            max_risk_per_trade=plan.max_risk_per_trade if plan else None,
            max_risk_ceiling=plan.max_risk_ceiling if plan else None,
            max_single_position=plan.hard_limits.max_single_position if plan else None)
        deadline = now + dt.timedelta(seconds=self.tuning.entry_ttl_market_s)
        self.ctx.log.info("ENTRY %s %s %s approved (strategy %s, x%.2f; %s): %s; equity %.2f, "
                          "P&L today %+.2f, PDT left %d", sig.symbol, sig.direction,
                          "calls" if sig.right == "C" else "puts", sig.strategy,
                          sig.size_multiplier, intent_id, "; ".join(sig.reasons), equity,
                          self.pnl_today(), self.pdt_left())
        self.send(EntryIntent(intent_id=intent_id, ts=now, deadline=deadline, signal=sig,
                              budget=budget))

    async def order_events(self) -> None:
        """Apply what the router reports, then check the limits once per burst.

        A closing fill and the positions after it leave the router in one step; checked
        between the two, the fill's realised loss would count twice (realised, and again as
        the position still listed, at its mark or at zero without one) and halt entries for
        the few milliseconds until the positions arrive. So every event already waiting is
        applied before `evaluate`."""
        receiver = self.inbox.order_events
        async for first in receiver:
            self._on_order_event(first)
            while True:
                try:
                    self._on_order_event(receiver.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            self.evaluate()

    def _on_order_event(self, ev: OrderEvent) -> None:
        if isinstance(ev, FillReport):
            self._on_fill(ev)
        elif isinstance(ev, PositionsReport):
            if bool(ev.positions) != bool(self.positions):
                self.wake.set()              # flat <-> holding changes the check rate
            self.positions = ev.positions
            self.shorts = ev.shorts
            self.ctx.gauge(POSITIONS_HELD, len(ev.positions))
            held = {p.option_key for p in ev.positions}
            for key in [k for k in self.exits_sent if k not in held]:
                del self.exits_sent[key]
        elif isinstance(ev, IntentUpdate):
            self._on_intent(ev)
        elif isinstance(ev, AccountReport):
            if ev.net_liquidation is not None and ev.net_liquidation > 0:
                first = self.equity_reported is None
                self.equity_reported = ev.net_liquidation
                if first:
                    self.say_capital()
            elif ev.error:
                self.ctx.log.warning("account values unavailable: %s", ev.error)
        elif isinstance(ev, RouterStatus):
            self._on_router(ev)
        else:
            assert_never(ev)

    def _on_fill(self, fill: FillReport) -> None:
        day = fill.ts.astimezone(self.ctx.clock.now_et().tzinfo).date()
        self.risk.roll(self.ctx.clock.today_et(), self.equity())
        trade = self.risk.apply_fill(fill, day, dry_run=self.mode is Mode.DRY_RUN)
        self.save()
        if trade is not None:
            self.ctx.emit("day_trade", day=trade.day, contract=trade.option_key,
                          order_ref=trade.order_ref, pdt_left=self.pdt_left())
            self.ctx.log.info("day trade on %s (%s): %d left in the 5-session window",
                              trade.option_key, trade.order_ref, self.pdt_left())

    def _on_intent(self, ev: IntentUpdate) -> None:
        if not ev.terminal:
            return
        if ev.kind == "entry" and ev.state == "rejected":
            self.risk.rejections_today += 1
            self.save()
        if ev.kind == "exit" and not ev.reason.startswith("merged into exit"):
            for key, iid in list(self.exits_sent.items()):
                if iid == ev.intent_id:
                    del self.exits_sent[key]     # flat, or re-sent on the next check

    def _on_router(self, ev: RouterStatus) -> None:
        self.router_session = ev.session_id
        if ev.reconciled:
            self.router_reconciled = ev.session_id
        elif self.router_reconciled == ev.session_id:
            self.router_reconciled = 0
        if ev.fault != self.router_fault:
            self.router_fault = ev.fault

    # -- the clock ---------------------------------------------------------------------------
    async def watch(self) -> None:
        """Check on every event (quotes, link, gameplan, the kill-switch file) and at the next
        instant the clock alone changes something (`next_deadline`): no polling tick.

        Virtual-clock simulations of many days pay for every wake-up, and a check that runs
        when nothing can have changed only hides which event should have caused it.
        """
        async def on_change(value: Latest[Any]) -> None:
            while True:
                await value.wait_transition()
                self.wake.set()

        async with trio.open_nursery() as nursery:
            for value in (self.inbox.quotes, self.inbox.link_state, self.inbox.gameplan):
                nursery.start_soon(on_change, value)
            nursery.start_soon(self._watch_kill_file)
            while True:
                now = self.ctx.clock.now_utc()
                wait = (self.next_deadline(now) - now).total_seconds()
                with trio.move_on_after(max(self.tuning.min_interval,
                                            self.ctx.clock.to_trio_seconds(wait))):
                    await self.wake.wait()
                self.wake = trio.Event()
                self.wakeups += 1
                self.ctx.gauge(WATCH_CHECKS, self.wakeups)
                self.evaluate()
                self._daily_summary()
                await trio.sleep(self.tuning.min_interval)

    async def _watch_kill_file(self) -> None:
        """The kill-switch file: the kernel says when it appears or goes (inotify on Linux,
        runtime/infra/file_watch.py); elsewhere a stat every `tick`. The watch loop wakes only
        when its presence changed (and every check of the watch looks at it too)."""
        async with open_file_watch(self.kill_path, poll_s=self.tuning.tick) as watch:
            while True:
                await watch.wait_changed()
                if self._kill_file_present() != self.risk.kill_switch:
                    self.wake.set()

    def next_deadline(self, now: dt.datetime) -> dt.datetime:
        """The next instant at which the clock alone changes a decision: the ET day rolls,
        the Gateway restart window opens or closes, a session opens or nears its close, the
        daily summary is due, a position's mark goes stale, its time stop or bracket grace
        runs out. Capped by
        `max_wait_market_s` (a safety net, not a tick)."""
        cands = [now + dt.timedelta(seconds=self.tuning.max_wait_market_s)]
        et = now.astimezone(ET)
        cands.append(dt.datetime.combine(et.date() + dt.timedelta(days=1), dt.time(0),
                                         tzinfo=ET))
        cands += list(next_restart_window(now, self.settings.gateway_restart_time,
                                          self.settings.gateway_restart_window_min))
        session = self.calendar.session(et.date())
        plan = self.plan
        if session is not None:
            cands.append(session.open)
            cands.append(session.close + dt.timedelta(
                seconds=self.tuning.summary_after_close_market_s))
        board = self.inbox.quotes.value
        for key in [p.option_key for p in self.positions or ()] + \
                [s.option_key for s in self.shorts]:
            q = board.get(key)                # a mark goes stale: the loss counts it at zero
            if q is not None:
                cands.append(q.ts + dt.timedelta(seconds=self.tuning.quote_max_age_market_s + 1))
        for p in self.positions or ():
            rules = ExitRules.for_strategy(p.strategy, plan) \
                if p.managed and p.strategy in ("A", "B") else ExitRules.unmanaged(plan)
            if session is not None:
                cands.append(session.close - dt.timedelta(seconds=rules.flatten_before_close_s))
            if rules.time_stop_s is not None:
                cands.append(p.entry_ts + dt.timedelta(seconds=rules.time_stop_s))
        for first in self.deferred.values():
            cands.append(dt.datetime.fromtimestamp(first, dt.UTC) + dt.timedelta(
                seconds=self.tuning.bracket_grace_market_s))
        future = [c for c in cands if c > now]
        return min(future) if future else now + dt.timedelta(seconds=1)

    def _daily_summary(self) -> None:
        now = self.ctx.clock.now_utc()
        today = self.ctx.clock.today_et()
        session = self.calendar.session(today)
        if session is None or self.risk.summary_day == today:
            return
        if (now - session.close).total_seconds() < self.tuning.summary_after_close_market_s:
            return
        self.risk.summary_day = today
        self.save()
        trades = len(self.risk.closing_orders_today)
        pnl = round(self.risk.realized_today, 2)
        left = self.pdt_left() if self.settings.pdt_enabled else None
        rejections = self.risk.rejections_today
        self.ctx.emit("daily_summary", date=today, trades=trades, pnl=pnl, pdt_left=left,
                      rejections=rejections)
        self.ctx.alert("info", f"Daily summary {today}",
                       f"{trades} trade(s), P&L {pnl:+,.2f} USD, PDT left "
                       f"{left if left is not None else 'n/a'}, {rejections} rejection(s)",
                       key="daily-summary", trades=str(trades), pnl=f"{pnl:+.2f}",
                       pdt_left=str(left), rejections=str(rejections))
        self.send(DaySummary(ts=now, day=today, trades=trades, pnl=pnl, pdt_left=left,
                             rejections=rejections))


def _new_id(prefix: str, now: dt.datetime) -> str:
    """Unique across restarts and processes: the orderRef and idempotency key."""
    return f"{prefix}{now.astimezone(dt.UTC):%y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
