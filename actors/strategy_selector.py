"""StrategySelector: the daily gameplan, the strategy in force (A/B/C) and the entry signals.

This actor drives the second stage of the one brain, doctrine/brain.DecisionStage (selection
and entry gates), the very code replay drives; it feeds it the live inputs in the order replay
does, so that the live bot makes exactly the decisions its backtest makes on the same bars
(tools/consistency.py checks the I/O around the stage on a run's journal):

* Every decision is evaluated at a DATA instant, as in replay: a bar at its end, a VIX reading
  at its timestamp, a timer at its scheduled time (09:15 ET, the plan's VIX gate, midnight, the
  instant the VIX reading goes stale), a plan or governor change at the clock's now. Instants
  never go backwards: a late event is evaluated at the latest instant already seen.
* VIX before bars at the same instant. BarFeed publishes a VIX bar and a SPY bar of the same
  minute independently, a few seconds apart in either order. A live bar waits (at most
  `VIX_ALIGN_GRACE_S` of market time after its end) for the VIX reading of its instant, and
  any reading published meanwhile is applied before the bar.
* History bars warm the indicators and nothing else: the selection is not re-lived for hours
  the bot did not live through (the VIX is a latest value, its past is not available here),
  and no bar but a live one may enter (evaluate_entry refuses them).

The gameplan is loaded at start and re-read when its fingerprint changes (polled every
`PLAN_POLL_SECONDS` of trio time) and at each new ET day. Anything wrong with it selects C,
withdraws the `gameplan` latest value and raises an alert naming the field and the reason,
once per distinct problem. A plan dated before today found before the 09:15 deadline is the
normal overnight state (yesterday's plan goes stale at midnight, today's is written in the
morning): it is said as info, not cried as critical every night; at 09:15 without a valid plan
it becomes critical, and C locks for the day.

The day's selection memory (pivots, lock, VIX gate outcome, deadline) is persisted in
STATE_DIR on every change, BEFORE the decision is published, and restored at start: a restart
is never more permissive than the bot that stopped. A state file that cannot be read, or
written, locks C for the day with a critical alert; it is never silently reset.

Exits, option choice and sizing are the money path's (ModeGuard/OrderRouter): an EntrySignal
leaves `option`, `contracts` and `limit_price` None.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import trio

from config.gameplan import (
    Gameplan,
    GameplanError,
    GameplanStale,
    describe_plan_changes,
    gameplan_fingerprint,
    load_gameplan,
)
from config.market_calendar import ET, get_calendar
from doctrine.brain import DecisionStage
from doctrine.selection import SelectionConfig, SelectionMemory
from doctrine.sessions import epoch_of, et_date_of, et_epoch, utc_of
from messages.brain import EntrySignal, IndicatorSnapshot, SignalRejected, StrategyDecision
from messages.market import VixReading
from runtime.infra.file_watch import open_file_watch
from runtime.infra.state_store import StateStore, StateUnreadable
from runtime.supervision.actor import ActorContext
from runtime.supervision.channels import Latest, send_now_or_wait
from runtime.supervision.tree import Gauge

# -- inbox and outbox -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Inbox:
    snapshots: trio.MemoryReceiveChannel[IndicatorSnapshot]
    vix: Latest[VixReading | None]
    governor: Latest[bool]                   # ModeGuard's weekly drawdown governor


@dataclass(frozen=True)
class Outbox:
    signals: trio.MemorySendChannel[EntrySignal]
    gameplan: Latest[Gameplan | None]        # today's validated plan, None when there is none
    decision: Latest[StrategyDecision | None]


PLAN_POLL_SECONDS = 5.0
"""Where the file system cannot tell (not Linux, or the plan's folder does not exist yet): trio
seconds between checks of the gameplan file's fingerprint (a 2 KB read and a hash). On Linux the
selector sleeps until inotify says the file was written (runtime/infra/file_watch.py)."""

FINAL_SAVE_S = 5.0
"""Trio seconds a stopping (or failing) incarnation gives its last state save."""

VIX_ALIGN_GRACE_S = 7.0
"""Market seconds after a live bar's end to wait for the VIX reading of the same instant.
BarFeed closes a bar at the latest 5 s after its end (COMPLETE_GRACE), so the VIX of the same
minute is there by then; 2 s more for a busy event loop. A VIX minute that is missing in the
feed (the index skips minutes) costs that bar this wait, nothing else."""

VIX_ALIGN_MIN_WAIT_S = 1.0
"""...and at least this many real seconds from the bar's arrival. The Gateway pushes bar
updates on its own wall-clock cadence, so on an accelerated clock (a soak) a market-time
deadline alone has passed before the bar even arrives, and the bar would be judged with the
previous minute's VIX: live decisions would drift from the replay's."""

STATE_NAME = "selection"
"""STATE_DIR/selection.json: the day's SelectionMemory."""

STALE_MARGIN_S = 1.0
"""The VIX is stale strictly AFTER its max age; the staleness timer fires this much later."""

ENTRIES = Gauge("entries", "entry signals sent since this incarnation started")
REJECTED = Gauge("rejected", "setups the doctrine refused since this incarnation started")
VIX_WAITS = Gauge("vix_waits", "live bars that waited for the VIX reading of their minute")
VIX_TIMEOUTS = Gauge("vix_timeouts", "of those, bars decided without it (the wait ran out)")
_COUNTED = {"entries": ENTRIES, "rejected": REJECTED, "vix_waits": VIX_WAITS,
            "vix_timeouts": VIX_TIMEOUTS}

_NAMES = {"A": "momentum", "B": "mean reversion", "C": "cash preservation"}
_GATES = frozenset({"none", "pending", "passed", "failed"})


@dataclass(frozen=True)
class Tuning:
    """The actor's knobs; production uses the defaults (tests shorten the poll)."""

    plan_poll_s: float = PLAN_POLL_SECONDS
    vix_align_grace_s: float = VIX_ALIGN_GRACE_S
    selection: SelectionConfig = field(default_factory=SelectionConfig)


# -- the state of one incarnation -----------------------------------------------------------------


class _Selector:
    """Inputs in, decisions and signals out. Every method but the waits is synchronous, so
    one input is fully handled (persisted, published, journaled) before the next."""

    def __init__(self, ctx: ActorContext, inbox: Inbox, outbox: Outbox, tuning: Tuning) -> None:
        self.ctx = ctx
        self.inbox = inbox
        self.outbox = outbox
        self.tuning = tuning
        self.cfg = tuning.selection
        self.path: Path = ctx.settings.gameplan_path
        self.store = StateStore(ctx.settings.state_dir)
        self.stage = DecisionStage(self.cfg, get_calendar())   # the brain's second stage
        self.plan: Gameplan | None = None
        self.plan_error: GameplanError | None = None
        self.plan_at = -math.inf
        self.plan_day: dt.date | None = None
        self.fingerprint: str | None = None
        self.vix_applied: VixReading | None = None
        self.governor = False
        self.last_at = -math.inf
        self.decision: StrategyDecision | None = None
        self.shown: StrategyDecision | None = outbox.decision.value   # last one published
        self.saved: SelectionMemory | None = None
        self.pending: SelectionMemory | None = None   # changed, not yet on disk (writer's job)
        self.save_wanted = trio.Event()
        self.save_lock = trio.Lock()
        self.failed: SelectionMemory | None = None    # the last memory that could not be saved
        self.save_error: str | None = None
        self.alerted_problem: str | None = None
        self.problem_severity: str | None = None
        self.deadline_alerted: dt.date | None = None
        self.wake = trio.Event()
        self.counts = {"entries": 0, "rejected": 0, "vix_waits": 0, "vix_timeouts": 0}
        self.reported: tuple[int, ...] | None = None   # the counts the tree shows

    def now_s(self) -> float:
        return epoch_of(self.ctx.clock.now_utc())

    # -- start -----------------------------------------------------------------------------
    def start(self) -> None:
        """Restore the day's memory, load the plan, read the inputs, decide once."""
        self.stage.reset(self._restore())
        self.governor = bool(self.inbox.governor.value)
        self.stage.set_governor(self.governor)
        self.vix_applied = self.inbox.vix.value
        self.stage.set_vix_reading(self.vix_applied)
        self.check_plan(evaluate=False)
        self.evaluate(self.now_s(), "start", save_now=True)

    def _restore(self) -> SelectionMemory | None:
        try:
            doc = self.store.load(STATE_NAME)
            if doc is None:
                return None
            memory = SelectionMemory.from_dict(doc)
            if memory.pivots < 0 or memory.gate_state not in _GATES or \
                    memory.regime not in (None, "A", "B", "C"):
                raise ValueError(f"impossible values: {doc}")
        except StateUnreadable as exc:
            reason = exc.reason
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            reason = f"not a selection memory: {exc!r}"
        else:
            if memory.day == self.ctx.clock.today_et():
                self.ctx.log.info(
                    "selection memory restored for %s: %d pivot(s), gate %s%s", memory.day,
                    memory.pivots, memory.gate_state,
                    f", locked: {memory.locked_reason}" if memory.locked_reason else "")
            # not marked as saved: the first decision writes it back, which proves STATE_DIR
            # still takes writes (if not, C locks, rather than trusting an older file)
            return memory
        return self._fail_closed_on_unreadable(reason)

    def _fail_closed_on_unreadable(self, reason: str) -> SelectionMemory:
        """C for the day: the lost state may have held pivots or a failed gate."""
        path = self.store.path(STATE_NAME)
        aside = path.with_name(path.name + ".unreadable")
        try:
            path.replace(aside)
            kept = f"the file was moved to {aside}"
        except OSError as exc:
            kept = f"it could not be moved aside ({exc}) and will be overwritten"
        self.ctx.alert(
            "critical", "Selection state unreadable: Strategy C for the day",
            f"{path}: {reason}. The day's pivots, lock and VIX gate cannot be known, so C is "
            f"locked until midnight ET; {kept}.", key="selection-state")
        return SelectionMemory(day=self.ctx.clock.today_et(),
                               locked_reason=f"selection state unreadable ({reason})")

    # -- the gameplan ----------------------------------------------------------------------
    def check_plan(self, *, evaluate: bool = True) -> None:
        """Re-read the plan if its file changed or the ET day did."""
        today = self.ctx.clock.today_et()
        fingerprint = gameplan_fingerprint(self.path)
        if (self.plan_day == today and fingerprint == self.fingerprint
                and (self.plan is not None or self.plan_error is not None)):
            return
        self.plan_day = today
        self.fingerprint = fingerprint
        try:
            plan: Gameplan | None = load_gameplan(
                self.path, today_et=today, operator_id=self.ctx.settings.operator_id)
            error: GameplanError | None = None
        except GameplanError as exc:
            plan, error = None, exc
        self._apply_plan(plan, error, evaluate=evaluate)

    def _apply_plan(self, plan: Gameplan | None, error: GameplanError | None, *,
                    evaluate: bool) -> None:
        old = self.plan
        problem = str(error) if error is not None else None
        old_problem = str(self.plan_error) if self.plan_error is not None else None
        if plan == old and problem == old_problem:
            return                                # rewritten with the same content
        now = self.now_s()
        changes = describe_plan_changes(old, plan)
        if plan is not None:
            self.ctx.log.info("Gameplan %s accepted from %s: %s", plan.session_id, self.path,
                              changes)
        else:
            self.ctx.log.warning("Gameplan refused: %s (%s)", problem, changes)
        self.ctx.emit(
            "gameplan", status="accepted" if plan is not None else "refused",
            session_id=plan.session_id if plan is not None else None, changes=changes,
            problem=problem, kind=error.kind if error is not None else None,
            field=error.field if error is not None else None, path=str(self.path),
            fingerprint=self.fingerprint,
            plan=plan.model_dump(mode="json") if plan is not None else None)
        self.plan, self.plan_error, self.plan_at = plan, error, now
        self.stage.set_plan(plan, at=now, problem=problem)
        self.outbox.gameplan.set(plan)
        if error is not None:
            self._alert_plan_problem(error, now)
        else:
            self.alerted_problem = self.problem_severity = None
        self.wake.set()
        if evaluate:
            self.evaluate(now, "gameplan")

    def _alert_plan_problem(self, error: GameplanError, now_s: float) -> None:
        text = str(error)
        if text == self.alerted_problem:
            return
        self.alerted_problem = text
        fields = {"kind": error.kind}
        if error.field is not None:
            fields["field"] = error.field
        day = et_date_of(now_s)
        deadline = et_epoch(day, self.cfg.plan_deadline)
        if self.stage.calendar.session(day) is None:   # no session today: nothing to do, no alarm
            self.problem_severity = "info"
            self.ctx.alert("info", "No market session today: the gameplan can wait",
                           f"{text}. Strategy C; a plan for the next session is checked then.",
                           key="gameplan", **fields)
            return
        if isinstance(error, GameplanStale) and now_s < deadline:
            self.problem_severity = "info"
            self.ctx.alert("info", "Waiting for today's gameplan",
                           f"{text}. Strategy C until today's plan is loaded; no valid plan by "
                           f"{self.cfg.plan_deadline:%H:%M} ET locks C for the day.",
                           key="gameplan", **fields)
            return
        self.problem_severity = "critical"
        self.ctx.alert("critical", f"Gameplan refused ({error.kind}): Strategy C",
                       f"{text}. No entries until a valid plan for today is loaded.",
                       key="gameplan", **fields)

    def _escalate_at_deadline(self, at: float) -> None:
        day = et_date_of(at)
        if self.plan is not None or self.deadline_alerted == day \
                or self.stage.calendar.session(day) is None:
            return
        self.deadline_alerted = day
        if self.problem_severity == "critical":
            return                                # already said, loudly
        self.problem_severity = "critical"
        self.ctx.alert("critical",
                       f"No valid gameplan by {self.cfg.plan_deadline:%H:%M} ET: "
                       "Strategy C for the day",
                       self.alerted_problem or "no gameplan loaded", key="gameplan")

    # -- inputs ----------------------------------------------------------------------------
    def apply_vix(self) -> None:
        """The newest VIX reading, evaluated at its own instant (never later than now)."""
        reading = self.inbox.vix.value
        if reading is self.vix_applied:
            return
        self.vix_applied = reading
        self.stage.set_vix_reading(reading)
        now = self.now_s()
        self.evaluate(now if reading is None else min(epoch_of(reading.ts), now), "vix")
        self.wake.set()                          # the staleness timer moves

    def apply_governor(self) -> None:
        active = bool(self.inbox.governor.value)
        if active == self.governor:
            return
        self.governor = active
        self.ctx.log.warning("weekly drawdown governor %s (ModeGuard)",
                             "ACTIVE" if active else "released")
        self.stage.set_governor(active)
        self.evaluate(self.now_s(), "governor")

    async def on_snapshot(self, snap: IndicatorSnapshot) -> EntrySignal | None:
        end = snap.end_epoch
        if snap.source == "live":
            await self._wait_for_vix(end)
        self.apply_vix()                         # VIX before bars at the same instant
        if snap.source == "history":
            return None
        decision = self.evaluate(min(end, self.now_s()), "bar")
        result = self.stage.entry(snap, decision)
        if isinstance(result, EntrySignal):
            if self.pending is not None and not self._entry_memory_saved():
                result = SignalRejected(ts=result.ts, symbol=result.symbol,
                                        strategy=result.strategy, direction=result.direction,
                                        stage="selection", reason="the selection state behind "
                                        "this entry could not be saved (C locked)")
                self._journal_rejected(result, snap)
                return None
            self._journal_entry(result, decision)
            return result
        if isinstance(result, SignalRejected):
            self._journal_rejected(result, snap)
        return None

    def _entry_memory_saved(self) -> bool:
        """An entry leaves only once the memory that allowed it is durable: a restart must
        know the pivot or the gate this bar's decision counted (rare: the memory changed on
        this very bar). Saved here, on this task, rather than by waiting for the writer: a
        selector that waited would fall behind the bars, and the VIX reading of a later minute
        would meet an older bar (live would no longer equal replay). The store lands saves in
        call order, so the writer's older document cannot overwrite this one."""
        if not self._save_now():
            self.evaluate(self.last_at, "state")     # C is locked now: publish it
            return False
        return self.save_error is None

    async def _wait_for_vix(self, end: float) -> None:
        reading = self.inbox.vix.value
        if reading is not None and epoch_of(reading.ts) >= end:
            return
        deadline = max(self.ctx.clock.trio_time_at(utc_of(end + self.tuning.vix_align_grace_s)),
                       trio.current_time() + VIX_ALIGN_MIN_WAIT_S)
        self.counts["vix_waits"] += 1
        with trio.move_on_at(deadline) as waited:
            await self.inbox.vix.wait_value(
                lambda r: r is not None and epoch_of(r.ts) >= end)
        if waited.cancelled_caught:
            self.counts["vix_timeouts"] += 1

    # -- deciding --------------------------------------------------------------------------
    def evaluate(self, at: float, cause: str, *, save_now: bool = False) -> StrategyDecision:
        """The decision at `at` (clamped so instants never go back), published, its memory
        persisted: on this task with `save_now` (start), else by the writer task, so a bar never
        waits for an fsync (an entry saves first: `_entry_memory_saved`)."""
        at = max(at, self.last_at)
        self.last_at = at
        decision = self.stage.decide(at)
        if save_now:
            if not self._save_now():
                decision = self.stage.decide(at)     # the state was locked for the day
                self._save_now()
        else:
            self._queue_save()
        if decision is not self.decision:
            self._publish(decision, cause)
        return decision

    def _changed_memory(self) -> SelectionMemory | None:
        selection = self.stage.selection
        if selection.memory_is_one_of(self.saved, self.failed):
            return None
        return selection.memory()

    def _queue_save(self) -> None:
        memory = self._changed_memory()
        if memory is not None and memory != self.pending:
            self.pending = memory
            self.save_wanted.set()

    def _save_now(self) -> bool:
        """Save the day's memory if it changed; False if that failed and C was locked."""
        memory = self._changed_memory()
        if memory is None:
            return True
        self.pending = None
        try:
            self.store.save(STATE_NAME, memory.to_dict())
        except (OSError, ValueError) as exc:
            return self._refused(memory, exc)
        self._saved(memory)
        return True

    async def flush(self) -> bool:
        """Put the pending memory on disk (a worker thread does the fsync); False if the disk
        refused it, in which case C is now locked for the day and published."""
        async with self.save_lock:
            memory = self.pending
            if memory is None:
                return self.save_error is None
            try:
                await self.store.save_async(STATE_NAME, memory.to_dict())
            except (OSError, ValueError) as exc:
                if self.pending is memory:
                    self.pending = None
                if not self._refused(memory, exc):
                    self.evaluate(self.last_at, "state")     # publishes the lock
                return False
            if self.pending is memory:
                self.pending = None
            self._saved(memory)
            return True

    def _saved(self, memory: SelectionMemory) -> None:
        self.saved = memory
        if self.save_error is not None:
            self.ctx.log.info("selection state saved again after: %s", self.save_error)
            self.save_error = None

    def _refused(self, memory: SelectionMemory, exc: Exception) -> bool:
        """The disk refused `memory`: alert once, lock C; False if the lock is new."""
        first = self.save_error is None
        self.save_error = str(exc)
        self.failed = memory                 # tried once; again when it changes
        if first:
            self.ctx.alert(
                "critical", "Selection state cannot be saved: Strategy C for the day",
                f"{self.store.path(STATE_NAME)}: {exc}. A restart could not know today's "
                "pivots, lock and VIX gate, so C is locked until midnight ET.",
                key="selection-state")
        if memory.locked_reason is not None:
            return True                      # already C for the day; retry on change
        memory.locked_reason = f"selection state cannot be saved ({exc})"
        self.stage.reset(memory)
        return False

    def _publish(self, d: StrategyDecision, cause: str) -> None:
        shown = self.shown
        self.decision = self.shown = d
        self.outbox.decision.set(d)
        self.ctx.emit(
            "signal", kind="decision", strategy=d.strategy, symbol=None, direction=None,
            reasons=list(d.reasons), rule=d.rule, at=d.ts, day=d.day, previous=d.previous,
            transient=d.transient, pivots=d.pivots, max_pivots=d.max_pivots, locked=d.locked,
            vix=d.vix, vix_ts=d.vix_ts, vix_gate=d.vix_gate, plan=d.plan_session_id,
            size_multiplier=d.size_multiplier, cause=cause)
        changed = shown is None or shown.strategy != d.strategy
        self.ctx.log.log(logging.DEBUG if changed else logging.INFO,   # the alert says it
                         "Strategy %s (%s%s) at %s ET: %s", d.strategy, d.rule,
                         ", locked" if d.locked else "",
                         d.ts.astimezone(ET).strftime("%Y-%m-%d %H:%M:%S"),
                         "; ".join(d.reasons))
        self.ctx.set_note(
            f"{d.strategy} ({d.rule}{', locked' if d.locked else ''}) pivots "
            f"{d.pivots}/{d.max_pivots}, plan {d.plan_session_id or 'none'}")
        if changed:
            self.ctx.alert("info", f"Strategy {d.strategy} ({_NAMES[d.strategy]})",
                           "; ".join(d.reasons), key="strategy")
        if d.locked and (shown is None or not shown.locked or shown.day != d.day):
            self.ctx.alert("warning", "Strategy C locked for the day", "; ".join(d.reasons),
                           key=f"lock:{d.day.isoformat()}")

    def _journal_entry(self, e: EntrySignal, d: StrategyDecision) -> None:
        self.counts["entries"] += 1
        self.ctx.emit("signal", kind="entry", strategy=e.strategy, symbol=e.symbol,
                      direction=e.direction, reasons=list(e.reasons), bar_ts=e.bar_ts, at=e.ts,
                      right=e.right, size_multiplier=e.size_multiplier, close=e.close,
                      rsi=e.rsi, ema_fast=e.ema_fast, ema_slow=e.ema_slow, vwap=e.vwap,
                      bb_upper=e.bb_upper, bb_lower=e.bb_lower, rule=d.rule,
                      plan=d.plan_session_id)
        # DEBUG: the operator's line for an entry is ModeGuard's (approved, with these reasons,
        # or refused, with why): one line per entry, written after the signal has left
        if self.ctx.log.isEnabledFor(logging.DEBUG):   # the join is not free
            self.ctx.log.debug("ENTRY %s %s %s (strategy %s, x%.2f): %s", e.symbol, e.direction,
                               "calls" if e.right == "C" else "puts", e.strategy,
                               e.size_multiplier, "; ".join(e.reasons))

    def _journal_rejected(self, r: SignalRejected, snap: IndicatorSnapshot) -> None:
        self.counts["rejected"] += 1
        self.ctx.emit("signal", kind="rejected", strategy=r.strategy, symbol=r.symbol,
                      direction=r.direction, reasons=[f"{r.stage}: {r.reason}"],
                      stage=r.stage, bar_ts=snap.ts, at=r.ts)
        self.ctx.log.info("setup refused: %s %s %s at %s: %s", r.symbol, r.strategy, r.direction,
                          r.stage, r.reason)

    # -- time ------------------------------------------------------------------------------
    def next_timer_s(self, now_s: float) -> float:
        """The next instant a decision may change without any input: 09:15, the VIX gate,
        the current VIX reading going stale, midnight ET."""
        day = et_date_of(now_s)
        candidates = [et_epoch(day + dt.timedelta(days=1), dt.time(0, 0)),
                      et_epoch(day, self.cfg.plan_deadline)]
        gate = self.plan.vix_gate if self.plan is not None else None
        if gate is not None:
            candidates.append(et_epoch(day, gate.check_time))
        if self.vix_applied is not None:
            candidates.append(epoch_of(self.vix_applied.ts) + self.cfg.vix_max_age_s
                              + STALE_MARGIN_S)
        return min((c for c in candidates if c > now_s), default=candidates[0])

    def on_timer(self, at: float) -> None:
        self.check_plan(evaluate=False)          # a new ET day makes yesterday's plan stale
        self.evaluate(at, "timer")
        if at == et_epoch(et_date_of(at), self.cfg.plan_deadline):
            self._escalate_at_deadline(at)

    def report(self) -> None:
        counts = tuple(self.counts.values())
        if counts == self.reported:              # nearly every bar: nothing new to show
            return
        self.reported = counts
        for name, value in self.counts.items():
            self.ctx.gauge(_COUNTED[name], value)


# -- the loop -------------------------------------------------------------------------------------


async def run(ctx: ActorContext, inbox: Inbox, outbox: Outbox, tuning: Tuning | None = None, *,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    sel = _Selector(ctx, inbox, outbox, tuning if tuning is not None else Tuning())
    sel.start()
    task_status.started()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch_vix, sel)
        nursery.start_soon(_watch_governor, sel)
        nursery.start_soon(_follow_plan_file, sel)
        nursery.start_soon(_run_timers, sel)
        nursery.start_soon(_write_memory, sel)
        try:
            async for snapshot in inbox.snapshots:
                entry = await sel.on_snapshot(snapshot)
                if entry is not None:
                    await send_now_or_wait(outbox.signals, entry)
                sel.report()
        finally:
            with trio.CancelScope(shield=True) as last_save:   # stopping or failing: what
                last_save.deadline = trio.current_time() + FINAL_SAVE_S   # changed is kept
                await sel.flush()
        nursery.cancel_scope.cancel()            # end of the channel: the program is stopping


async def _write_memory(sel: _Selector) -> None:
    """The writer: each changed memory goes to disk off the bar path (the latest wins)."""
    while True:
        await sel.save_wanted.wait()
        sel.save_wanted = trio.Event()
        await sel.flush()


async def _watch_vix(sel: _Selector) -> None:
    while True:
        sel.apply_vix()                          # the value first: a change before the wait
        await sel.inbox.vix.wait_transition()    # is not lost


async def _watch_governor(sel: _Selector) -> None:
    while True:
        sel.apply_governor()
        await sel.inbox.governor.wait_transition()


async def _follow_plan_file(sel: _Selector) -> None:
    """Re-read the plan when its file may have changed (the timers also re-read it at the ET
    day's change and at the 09:15 deadline)."""
    async with open_file_watch(sel.path, poll_s=sel.tuning.plan_poll_s) as watch:
        sel.ctx.log.debug("gameplan %s watched by %s", sel.path, watch.mode)
        while True:
            await watch.wait_changed()
            sel.check_plan()


async def _run_timers(sel: _Selector) -> None:
    clock = sel.ctx.clock
    while True:
        wake = sel.wake = trio.Event()
        at = sel.next_timer_s(sel.now_s())
        with trio.move_on_at(clock.trio_time_at(utc_of(at))) as timer:
            await wake.wait()                    # an input moved a timer: recompute
        if timer.cancelled_caught:
            sel.on_timer(at)

