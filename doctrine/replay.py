"""The replay engine: the live brain driven by recorded bars on a virtual clock, plus a dry run.

Each event is processed at the instant it became known: a bar at its END (start + length),
a VIX bar likewise, VIX before bars at the same instant (the decision at 10:31 sees the
10:30 VIX bar that also just completed). The clock is the data's: no wall time, no unseeded
randomness, so two runs over the same bars produce identical output, and the soak can
compare the live bot's signals with replay's over the same bars.

Per bar: the brain (doctrine/brain.Brain.step: indicators -> strategy decision -> entry
gates, the very stages the Indicators and StrategySelector actors drive) -> exits of the
symbol's open position -> (dry run) option choice, sizing and a simulated fill of an entry.
The VIX comes from intraday bars, a constant, or a daily file as it was known
(doctrine/vix_daily.py: the day's open from 09:30, never its close). Option quotes come from
a QuoteSource (doctrine/option_quotes.py): the Black-Scholes model by default (sigma =
VIX/100, a spread of about 1 % of the premium, weekly expiries, $1 strikes, no volume or
open interest, so replay waives those two liquidity minimums) or quotes the operator
recorded. A held option is repriced on every bar unless its Calm proves no premium exit can
fire (the time-based exits run every bar). Risk limits that ModeGuard owns (daily loss, PDT,
weekly governor from P&L) are not simulated here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from config.gameplan import DataQuality, Gameplan, HardLimits, PlanSymbol
from config.market_calendar import MarketCalendar, Session, get_calendar
from doctrine.bars import BarColumns as BarColumns  # re-exported: replay's input types
from doctrine.bars import RawBar as RawBar
from doctrine.brain import Brain, Skipped
from doctrine.dry_run import FillModel, PositionBook
from doctrine.exits import ExitRules, OpenPosition, check_exit, premium_band, time_exit_at
from doctrine.indicators import IndicatorParams
from doctrine.option_quotes import Calm, ModelQuotes, QuoteSource
from doctrine.options import OptionQuote, Refusal, RiskBudget, plan_option_entry
from doctrine.params import StrategyParams, TradingStrategy, force_close_dte
from doctrine.replay_record import ReplayRecord
from doctrine.selection import SelectionConfig
from doctrine.sessions import SessionClock, et_date_of, et_epoch
from doctrine.vix_daily import DAILY_MAX_AGE_S, DailyVix
from messages.brain import EntrySignal, StrategyDecision
from messages.market import OptionSpec


@dataclass(frozen=True, slots=True)
class ReplayConfig:
    equity: float = 600.0
    account_max_position_pct: float = 0.20
    dry_run: bool = True
    fill: FillModel = field(default_factory=FillModel)
    risk_free_rate: float = 0.05
    half_spread_pct: float = 0.005
    strike_step: float = 1.0
    bar_seconds: int = 60
    vix_constant: float | None = None
    selection: SelectionConfig = field(default_factory=SelectionConfig)


def default_plan(symbols: Iterable[str], day: dt.date) -> Gameplan:
    """The plan replay uses without --gameplan: the VIX rules choose (the plan's strategy A
    caps nothing), the given symbols that a plan may name, default hard limits."""
    allowed: tuple[PlanSymbol, ...] = tuple(dict.fromkeys(
        s for s in ("SPY", "QQQ", "IWM") if s in set(symbols)))[:2]
    return Gameplan(
        date=day, session_id=f"gauntlet_{day:%Y%m%d}_0900", regime="unknown",
        strategy="A" if allowed else "C", symbols=allowed, operator_id="replay",
        hard_limits=HardLimits(max_daily_loss_pct=0.10, pdt_trades_remaining=3,
                               weekly_drawdown_governor_active=False, max_intraday_pivots=2),
        data_quality=DataQuality(quarantine_active=False, last_verified=None))


class ReplayEngine:
    """Feed VIX readings and bars in time order; read records and a summary."""

    def __init__(self, symbols: Sequence[str], *, plan: Gameplan | None = None,
                 config: ReplayConfig | None = None,
                 calendar: MarketCalendar | None = None, vix_daily: DailyVix | None = None,
                 quotes: QuoteSource | None = None) -> None:
        """`vix_daily`: the VIX as known from a daily file (its open from 09:30 ET), observed
        at every bar; `quotes`: recorded option quotes instead of the Black-Scholes model."""
        self.config = config if config is not None else ReplayConfig()
        self._calendar = calendar if calendar is not None else get_calendar()
        self._sessions = SessionClock(self._calendar)
        self.symbols = tuple(symbols)
        self.plan_template = plan if plan is not None else default_plan(self.symbols,
                                                                         dt.date(2000, 1, 3))
        self.plan_is_default = plan is None
        params = IndicatorParams.from_plan(self.plan_template)
        selection = self.config.selection
        if vix_daily is not None:    # a daily value is current until the next is published
            selection = dataclasses.replace(selection, vix_max_age_s=DAILY_MAX_AGE_S)
        self.brain = Brain(params=params, selection=selection, calendar=self._calendar)
        self._decisions = self.brain.decisions
        self._exit_rules: dict[TradingStrategy, ExitRules] = {
            "A": ExitRules.for_strategy("A", self.plan_template),
            "B": ExitRules.for_strategy("B", self.plan_template)}
        self._force_close_dte = force_close_dte(self.plan_template)
        self.book = PositionBook(starting_equity=self.config.equity)
        self._day: dt.date | None = None
        self._day_end_s = -math.inf
        self._vix: float | None = None
        self._decision: StrategyDecision | None = None
        self.decisions: list[StrategyDecision] = []
        # counters for the summary (bars per symbol: the indicator sets count them)
        self._strategy_bars: dict[str, int] = {}
        self._counted = 0                            # bars counted so far, all symbols
        self._counted_at_decision = 0                # ...when the decision in force began
        self._session: Session | None = None
        self._session_close_s = 0.0
        self.signals: Counter[str] = Counter()
        self.signal_directions: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.exits: Counter[str] = Counter()
        self.rejection_examples: dict[str, str] = {}
        self._vix_daily = vix_daily
        self._vix_reading: tuple[float, float] | None = None
        self._vix_from = self._vix_until = 0.0     # the daily reading's span: [from, until)
        self.quotes: QuoteSource = quotes if quotes is not None else ModelQuotes(
            self._calendar, risk_free_rate=self.config.risk_free_rate,
            half_spread_pct=self.config.half_spread_pct, strike_step=self.config.strike_step)
        self.sessions: set[dt.date] = set()
        self.skipped: Counter[str] = Counter()
        self._held: dict[str, OpenPosition] = {}     # the book's open position per symbol
        self._calm: dict[str, tuple[Calm, float]] = {}  # ...where its bid cannot exit, and
        #                                                until when no time-based exit fires
        self.calm_enabled = True                     # False: reprice every bar (tests)
        self.calm_skips = 0
        self.keep_records = True
        self._waived: dict[str, tuple[StrategyParams, StrategyParams]] = {}
        self._bands: dict[str, tuple[OpenPosition, tuple[float, float]]] = {}  # premium_band

    @property
    def calendar(self) -> MarketCalendar:
        return self._calendar

    @property
    def bars(self) -> dict[str, int]:
        """Bars counted per symbol (duplicates and refused bars are in `skipped`)."""
        return {s: ind.bars_seen for s, ind in sorted(self.brain.indicators.sets.items())
                if ind.bars_seen}

    @property
    def strategy_bars(self) -> dict[str, int]:
        """Bars counted under each strategy (counted per decision, not per bar: hot path)."""
        counts = dict(self._strategy_bars)
        if self._decision is not None:
            s = self._decision.strategy
            counts[s] = counts.get(s, 0) + self._counted - self._counted_at_decision
        return counts

    def _new_decision(self, decision: StrategyDecision) -> None:
        old = self._decision
        if old is not None:
            counts = self._strategy_bars
            counts[old.strategy] = (counts.get(old.strategy, 0) + self._counted
                                    - self._counted_at_decision)
        self._counted_at_decision = self._counted
        self._decision = decision
        self.decisions.append(decision)

    # -- inputs ----------------------------------------------------------------------------------
    def on_gap(self, symbol: str) -> None:
        """A marked gap in `symbol`'s bars: the next bar does not continue the last one."""
        self.brain.indicators.mark_gap(symbol)

    def on_vix(self, value: float, ts_s: float) -> None:
        """A VIX reading observed at `ts_s` (for a VIX bar: its end)."""
        self._roll(ts_s)
        self._vix = value
        self._decisions.set_vix(value, ts_s)

    def on_bar(self, symbol: str, ts: float, high: float, low: float, close: float,
               volume: float) -> ReplayRecord | None:
        """One bar through the brain (and the dry-run money path); its record, or None if
        the bar was not counted (or `keep_records` is off: see `replay_all`)."""
        cfg = self.config
        bar_seconds = cfg.bar_seconds
        now = ts + bar_seconds
        if now >= self._day_end_s:
            self._roll(now)
        if cfg.vix_constant is not None:
            self._vix = cfg.vix_constant
            self._decisions.set_vix(cfg.vix_constant, now)
        elif self._vix_daily is not None and not self._vix_from <= now < self._vix_until:
            reading, self._vix_from, self._vix_until = self._vix_daily.reading_span(now)
            if reading is not self._vix_reading:     # a newly published daily value
                self._vix_reading = reading
                if reading is None:
                    self._vix = None
                    self._decisions.set_vix(None, None)
                else:
                    self._vix = reading[0]
                    self._decisions.set_vix(reading[0], reading[1])
        step = self.brain.step(symbol, ts, high, low, close, volume, bar_seconds)
        if type(step) is Skipped:
            self.skipped[step.reason] += 1
            return None
        values, decision, entry = step  # type: ignore[misc]
        if decision is not self._decision:
            self._new_decision(decision)
        self._counted += 1
        strategy = decision.strategy
        session = values.session
        exit_info = None
        if session is not None:
            if session is not self._session:
                self._session = session
                self._session_close_s = session.close.timestamp()
                self.sessions.add(session.date)
            if self._held:                          # only ever filled by the dry run
                pos = self._held.get(symbol)
                if pos is not None:
                    quiet = self._calm.get(symbol)
                    if quiet is not None and now < quiet[1] and quiet[0].holds(
                            close, now, self._vix):
                        self.calm_skips += 1        # no exit can fire: see _manage
                    else:
                        exit_info = self._manage(pos, close, now, session.date,
                                                 self._session_close_s)
        if entry is None:
            return ReplayRecord(values, strategy, None, exit_info) if self.keep_records \
                else None
        signal_info: dict[str, Any]
        if isinstance(entry, EntrySignal):
            self.signals[entry.strategy] += 1
            self.signal_directions[f"{entry.strategy}:{entry.direction}"] += 1
            signal_info = {"strategy": entry.strategy, "direction": entry.direction,
                           "right": entry.right, "reasons": list(entry.reasons),
                           "size_multiplier": entry.size_multiplier, "accepted": True}
            if cfg.dry_run:
                self._enter(entry, signal_info, close, now, values.session)
        else:
            self.rejected[entry.stage] += 1
            self.rejection_examples.setdefault(entry.stage, entry.reason)
            signal_info = {"strategy": entry.strategy, "direction": entry.direction,
                           "accepted": False, "stage": entry.stage, "reason": entry.reason}
        return ReplayRecord(values, strategy, signal_info, exit_info) if self.keep_records \
            else None

    # -- the dry-run money path ------------------------------------------------------------------
    def _enter(self, entry: EntrySignal, info: dict[str, Any], close: float,
               now: float, session: Session | None) -> None:
        if entry.symbol in self._held:
            self._refuse(info, "position", f"a {entry.symbol} position is already open")
            return
        strategy = entry.strategy
        params = self._entry_params(strategy)
        today = session.date if session is not None else et_date_of(now)  # the same day
        plan = self.plan_template
        budget = RiskBudget(equity=self.book.equity,
                            account_max_position_pct=self.config.account_max_position_pct,
                            max_risk_per_trade=plan.max_risk_per_trade,
                            max_risk_ceiling=plan.max_risk_ceiling,
                            max_single_position=plan.hard_limits.max_single_position,
                            fee_per_contract=2 * self.config.fill.commission_per_contract)
        result = plan_option_entry(
            underlying=entry.symbol, right=entry.right, underlying_price=close, today=today,
            expiries=self.quotes.expiries(entry.symbol, today),
            strikes_for=lambda expiry: self.quotes.strikes(entry.symbol, expiry, close),
            quote_for=lambda spec: self._quote(spec, close, now), params=params,
            force_close_dte=self._force_close_dte, budget=budget,
            size_multiplier=entry.size_multiplier)
        if isinstance(result, Refusal):
            self._refuse(info, result.stage, result.reason)
            return
        price = self.config.fill.buy_price(result.quote.ask)
        if price is None:
            self._refuse(info, "fill", "no ask to buy at")
            return
        commission = self.config.fill.commission(result.contracts, price)
        position = OpenPosition(
            symbol=entry.symbol, option=result.option, strategy=strategy,
            contracts=result.contracts, entry_premium=price, entry_s=now,
            rules=self._exit_rules[strategy])
        self.book.open(position, commission)
        self._held[entry.symbol] = position
        info.update(option=result.option.key, contracts=result.contracts, price=price,
                    commission=round(commission, 2), dte=result.dte,
                    sizing=result.size.reason)

    def _entry_params(self, strategy: TradingStrategy) -> StrategyParams:
        """The plan's parameters for `strategy` with the liquidity minimums waived (modelled
        quotes have no volume or open interest); once per plan's parameters, not per entry."""
        params = self._decisions.rules.params[strategy]
        cached = self._waived.get(strategy)
        if cached is None or cached[0] is not params:
            cached = self._waived[strategy] = (params, dataclasses.replace(
                params, min_option_volume=0, min_open_interest=0))
        return cached[1]

    def _refuse(self, info: dict[str, Any], stage: str, reason: str) -> None:
        self.rejected[stage] += 1
        self.rejection_examples.setdefault(stage, reason)
        info.update(accepted=False, stage=stage, reason=reason)

    def _manage(self, pos: OpenPosition, close: float, now: float, today: dt.date,
                close_s: float | None) -> dict[str, Any] | None:
        """Exits of a held position at this bar. While its Calm holds, no premium exit can
        fire, so only the time-based checks run (the bid is computed only if one fires); and
        until `time_exit_at` (on_bar checks that) none of those can fire either: the same
        exits as repricing every bar, at a fraction of the cost (a test pins that)."""
        quiet = self._calm.get(pos.symbol)
        if (quiet is not None and quiet[0].holds(close, now, self._vix)
                and check_exit(pos, mark=None, now_s=now, today=today,
                               session_close_s=close_s) is None):
            self.calm_skips += 1
            return None
        band = self._bands.get(pos.symbol)
        if band is None or band[0] is not pos:
            band = self._bands[pos.symbol] = (pos, premium_band(pos))
        mark, calm = self.quotes.mark(pos.option, close, now, self._vix, band[1])
        found = check_exit(pos, mark=mark, now_s=now, today=today, session_close_s=close_s)
        if found is None:
            if calm is not None and self.calm_enabled:
                self._calm[pos.symbol] = (calm, time_exit_at(
                    pos, today=today, session_close_s=close_s) - 1.0)
            else:
                self._calm.pop(pos.symbol, None)
            return None
        self._calm.pop(pos.symbol, None)
        reason, detail = found
        price = self.config.fill.sell_price(mark)
        if price is None:
            return {"reason": reason, "detail": detail, "option": pos.option.key,
                    "filled": False}
        commission = self.config.fill.commission(pos.contracts, price)
        trade = self.book.close(pos.option.key, price=price, commission=commission, now_s=now,
                                reason=reason)
        del self._held[pos.symbol]
        self.exits[reason] += 1
        return {"reason": reason, "detail": detail, "option": pos.option.key, "filled": True,
                "contracts": pos.contracts, "price": price, "entry_price": pos.entry_premium,
                "pnl": round(trade.pnl, 2)}

    def _quote(self, spec: OptionSpec, underlying: float, now: float) -> OptionQuote | None:
        return self.quotes.quote(spec, underlying, now, self._vix)

    # -- days --------------------------------------------------------------------------------------
    def _roll(self, now: float) -> None:
        if now < self._day_end_s and self._day is not None:
            return
        day = et_date_of(now)
        if day == self._day:
            return
        self._day = day
        self._day_end_s = et_epoch(day + dt.timedelta(days=1), dt.time(0, 0))
        plan = self.plan_template.for_day(day)
        self._decisions.set_plan(plan, at=et_epoch(day, dt.time(9, 0)))

    # -- results -----------------------------------------------------------------------------------
    def _pivots_by_day(self) -> dict[dt.date, int]:
        out: dict[dt.date, int] = {}
        for d in self.decisions:
            out[d.day] = max(out.get(d.day, 0), d.pivots)
        return out

    def summary(self) -> dict[str, Any]:
        book = self.book
        marks = {}
        for pos in book.open_positions:
            ind = self.brain.indicators.sets.get(pos.symbol)
            last = ind.last_close if ind is not None else None
            q = self._quote(pos.option, last or 1.0, self._day_end_s)
            if q is not None and q.bid is not None:
                marks[pos.option.key] = q.bid
        wins = sum(1 for t in book.trades if t.pnl > 0)
        strategy_bars = self.strategy_bars
        return {
            "summary": True,
            "bars": self._counted,
            "bars_by_symbol": self.bars,
            "sessions": len(self.sessions),
            "strategy_bars": {k: strategy_bars.get(k, 0) for k in ("A", "B", "C")},
            "decisions": len(self.decisions),
            "pivots": sum(self._pivots_by_day().values()),
            "locked_days": sum(1 for d in {d.day for d in self.decisions if d.locked}),
            "signals": {k: self.signals.get(k, 0) for k in ("A", "B")},
            "signal_directions": dict(sorted(self.signal_directions.items())),
            "rejected": dict(sorted(self.rejected.items())),
            "dry_run": self.config.dry_run,
            "trades": len(book.trades),
            "wins": wins,
            "losses": len(book.trades) - wins,
            "exits": dict(sorted(self.exits.items())),
            "realized_pnl": round(book.realized_pnl, 2),
            "commissions": round(book.commissions, 2),
            "open_positions": len(book.open_positions),
            "unrealized_pnl": round(book.unrealized(marks), 2),
            "starting_equity": book.starting_equity,
            "final_equity": round(book.equity + book.unrealized(marks), 2),
            "plan": "default" if self.plan_is_default else self.plan_template.session_id,
        }


def merge_events(bars: Mapping[str, Sequence[RawBar]], vix: Sequence[RawBar] | None,
                 bar_seconds: int, vix_seconds: int | None = None,
                 ) -> list[tuple[float, int, str, RawBar]]:
    """All events in the order they became known: (instant, kind, symbol, bar); VIX (kind 0)
    before bars (kind 1) at the same instant, symbols in name order."""
    events: list[tuple[float, int, str, RawBar]] = []
    if vix is not None:
        vs = bar_seconds if vix_seconds is None else vix_seconds
        events.extend((b[0] + vs, 0, "VIX", b) for b in vix)
    for symbol, series in bars.items():
        events.extend((b[0] + bar_seconds, 1, symbol, b) for b in series)
    events.sort(key=_event_order)
    return events


def _event_order(event: tuple[float, int, str, RawBar]) -> tuple[float, int, str]:
    return event[0], event[1], event[2]


def run_replay(engine: ReplayEngine, bars: Mapping[str, Sequence[RawBar]],
               vix: Sequence[RawBar] | None = None,
               vix_seconds: int | None = None) -> Iterator[ReplayRecord]:
    """Drive `engine` over the merged streams; yields one record per counted bar per symbol
    (a duplicate or a bad bar is counted in `engine.skipped` instead, as the live actor does).

    A VIX reading is its bar's close, observed at the bar's end."""
    bar_seconds = engine.config.bar_seconds
    on_bar = engine.on_bar
    on_vix = engine.on_vix
    if vix is None and len(bars) == 1:           # one stream: already in order
        ((symbol, series),) = bars.items()
        for b in series:
            record = on_bar(symbol, b[0], b[2], b[3], b[4], b[5])
            if record is not None:
                yield record
        return
    for at, kind, symbol, b in merge_events(bars, vix, bar_seconds, vix_seconds):
        if kind == 0:
            on_vix(b[4], at)
        else:
            record = on_bar(symbol, b[0], b[2], b[3], b[4], b[5])
            if record is not None:
                yield record


def replay_all(engine: ReplayEngine, bars: Mapping[str, Sequence[RawBar]],
               vix: Sequence[RawBar] | None = None, vix_seconds: int | None = None) -> None:
    """`run_replay` without building a record per bar: for callers that read the engine's
    state afterwards (the report, the sweep)."""
    engine.keep_records = False
    try:
        if vix is None and len(bars) == 1:       # one stream: already in order, no generator
            ((symbol, series),) = bars.items()
            on_bar = engine.on_bar
            if isinstance(series, BarColumns):   # no tuple per bar
                for ts, high, low, close, volume in zip(series.ts, series.high, series.low,
                                                        series.close, series.volume, strict=True):
                    on_bar(symbol, ts, high, low, close, volume)
                return
            for b in series:
                on_bar(symbol, b[0], b[2], b[3], b[4], b[5])
            return
        for _ in run_replay(engine, bars, vix, vix_seconds):
            pass
    finally:
        engine.keep_records = True
