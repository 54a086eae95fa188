"""Strategy selection per crucible.md: first match wins, and every doubt selects C.

Order (the first rule that matches decides):

 1. no valid gameplan for today (missing, invalid, stale date)    C  transient
 2. locked for the day (pivot cap reached, VIX gate failed,        C
    no valid gameplan by the 09:15 ET deadline)
 3. data quarantine (`data_quality.quarantine_active`)             C
 4. weekly drawdown governor (plan flag, or ModeGuard's)           C
 5. an earnings catalyst                                           C
 6. two or more high-impact catalysts (plain strings count)        C
 7. the gameplan itself says C                                     C
 8. VIX missing, non-numeric, <= 0, stale or from the future       C  transient
 9. VIX >= 25 (or >= the plan's `vix_ceiling`, if lower)            C
10. VIX gate not yet checked (before `check_time`, or no fresh     C  transient
    reading since) / failed (VIX >= threshold at check time)       C, locked for the day
11. VIX < 18 -> A; 18 <= VIX < 25 -> B
12. the plan caps the result: it can only make things MORE conservative (A < B < C). A plan
    for A lets the VIX rules pick A or B; a plan for B never trades A; a plan for C is C.

"Transient" Cs are data faults or checks still pending: no entries while they last, but they
are not regime decisions, so they do not count as pivots (a 6-minute VIX outage must not use
up the day's pivots). Every change of the regime decision (the result of rules 3-12) after
the day's first one is a pivot; when the count reaches the plan's `max_intraday_pivots`
(default 2) C locks for the rest of the day. So with the default, the first pivot is traded
and the second one locks C; a plan with 0 pivots allowed is C all day.

The gameplan deadline: a valid plan for today must have been accepted before 09:15 ET, or
have been produced by then (its `session_id` time, which survives a restart); otherwise C
locks at 09:15 for the day, even if a plan turns up later.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from config.gameplan import Gameplan
from doctrine.params import params_for, size_multiplier
from doctrine.sessions import epoch_of, et_date_of, et_epoch, utc_of
from messages.brain import GateState, Strategy, StrategyDecision
from messages.market import VixReading

_ORDER = {"A": 0, "B": 1, "C": 2}
_BEFORE_VIX = frozenset({"no_plan", "plan_stale", "locked", "quarantine", "governor",
                         "earnings", "catalysts", "plan_c"})
_TEXT_IS_NEWS = frozenset({"no_plan", "plan_stale", "locked", "quarantine", "governor",
                           "earnings", "catalysts"})


@dataclass(frozen=True, slots=True)
class SelectionConfig:
    """Thresholds of the selection. The VIX staleness limit is 5 minutes: the VIX index
    prints every 15 s and 1-minute bars can miss a minute or two (see the 2019 data), so 5
    minutes tolerates a short hole but not a dead feed."""

    vix_max_age_s: float = 300.0
    vix_future_tolerance_s: float = 60.0
    vix_a_below: float = 18.0
    vix_c_at_or_above: float = 25.0
    plan_deadline: dt.time = dt.time(9, 15)
    default_max_pivots: int = 2


@dataclass(frozen=True, slots=True)
class Selection:
    """The result of the selection rules for one instant."""

    strategy: Strategy
    rule: str
    reasons: tuple[str, ...]
    transient: bool = False


def vix_problem(value: object, vix_ts: float | None, now_s: float,
                config: SelectionConfig) -> str | None:
    """Why this VIX reading may not be used, or None if it may."""
    if value is None:
        return "VIX missing: no reading received"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"VIX is not a number: {value!r}"
    if not math.isfinite(value):
        return f"VIX is not a finite number: {value!r}"
    if value <= 0:
        return f"VIX {value!r} <= 0 is not a real reading"
    if vix_ts is None:
        return "VIX reading has no timestamp"
    age = now_s - vix_ts
    if age > config.vix_max_age_s:
        return (f"VIX is stale: last reading {_duration(age)} old "
                f"(max {_duration(config.vix_max_age_s)})")
    if -age > config.vix_future_tolerance_s:
        return f"VIX reading is {_duration(-age)} in the future: clock or feed is wrong"
    return None


@dataclass(frozen=True, slots=True)
class PlanFacts:
    """What selection reads from a plan, computed once per plan rather than once per bar."""

    earnings: tuple[str, ...]
    high_impact: int
    vix_ceiling: float | None
    produced_at_s: float | None
    max_pivots: int
    gate: tuple[dt.time, float] | None
    multiplier: dict[str, float]

    @classmethod
    def of(cls, plan: Gameplan) -> PlanFacts:
        produced = plan.produced_at
        gate = plan.vix_gate
        return cls(
            earnings=tuple(plan.earnings_catalysts), high_impact=plan.high_impact_catalysts,
            vix_ceiling=(params_for(plan.strategy, plan).vix_ceiling
                         if plan.strategy != "C" else None),
            produced_at_s=produced.timestamp() if produced is not None else None,
            max_pivots=plan.hard_limits.max_intraday_pivots,
            gate=(gate.check_time, gate.threshold) if gate is not None else None,
            multiplier={s: size_multiplier(s, plan) for s in ("A", "B")})


def select_strategy(*, plan: Gameplan | None, plan_problem: str | None, today: dt.date,
                    now_s: float, vix: object, vix_ts: float | None, governor_active: bool,
                    locked_reason: str | None, gate: GateState, gate_detail: str = "",
                    config: SelectionConfig = SelectionConfig(),
                    facts: PlanFacts | None = None) -> Selection:
    """The strategy for this instant. Pure: the caller owns the day's state.

    `facts` may carry `PlanFacts.of(plan)` precomputed (the hot path); it must be the plan's.
    """
    if plan is None:
        return Selection("C", "no_plan", (plan_problem or "no valid gameplan loaded",), True)
    if plan.date != today:
        return Selection("C", "plan_stale", (
            f"gameplan is for {plan.date.isoformat()}, today (ET) is {today.isoformat()}",),
            True)
    if locked_reason is not None:
        return Selection("C", "locked", (f"C locked for the day: {locked_reason}",))
    if plan.data_quality.quarantine_active:
        stale = ", ".join(plan.data_quality.stale_fields) or "none listed"
        return Selection("C", "quarantine", (f"data quarantine active (stale: {stale})",))
    if plan.hard_limits.weekly_drawdown_governor_active or governor_active:
        source = "gameplan" if plan.hard_limits.weekly_drawdown_governor_active else "risk state"
        return Selection("C", "governor", (f"weekly drawdown governor active ({source})",))
    if facts is None:
        facts = PlanFacts.of(plan)
    earnings = facts.earnings
    if earnings:
        return Selection("C", "earnings", (f"earnings catalyst: {earnings[0]}",))
    high = facts.high_impact
    if high >= 2:
        return Selection("C", "catalysts", (
            f"{high} high-impact catalysts (plain-string catalysts count as high)",))
    if plan.strategy == "C":
        return Selection("C", "plan_c", ("gameplan strategy is C",))
    problem = vix_problem(vix, vix_ts, now_s, config)
    if problem is not None:
        return Selection("C", "vix_unusable", (problem,), True)
    assert isinstance(vix, int | float)
    ceiling = config.vix_c_at_or_above
    plan_ceiling = facts.vix_ceiling
    if vix >= ceiling:
        return Selection("C", "vix_high", (f"VIX {vix:.2f} >= {ceiling:g}",))
    if plan_ceiling is not None and vix >= plan_ceiling:
        return Selection("C", "vix_high", (
            f"VIX {vix:.2f} >= the plan's vix_ceiling {plan_ceiling:g}",))
    if gate == "pending":
        return Selection("C", "vix_gate_pending", (gate_detail or "VIX gate not yet checked",),
                         True)
    if gate == "failed":
        return Selection("C", "vix_gate_failed", (gate_detail or "VIX gate failed",))
    if vix < config.vix_a_below:
        rule: Strategy = "A"
        reason = f"VIX {vix:.2f} < {config.vix_a_below:g} -> A (momentum)"
    else:
        rule = "B"
        reason = (f"VIX {vix:.2f} in [{config.vix_a_below:g}, {ceiling:g}) -> B "
                  f"(mean reversion)")
    if _ORDER[plan.strategy] > _ORDER[rule]:
        return Selection(plan.strategy, "plan_cap", (
            reason, f"gameplan strategy {plan.strategy} caps it: the plan can only be more "
                    f"conservative than the VIX rules"))
    return Selection(rule, f"regime_{rule.lower()}", (reason,))


@dataclass(slots=True)
class SelectionMemory:
    """The day's selection state worth persisting (ModeGuard's risk state), so that a
    restarted bot is never more permissive than the one that stopped."""

    day: dt.date
    pivots: int = 0
    regime: Strategy | None = None
    locked_reason: str | None = None
    gate_state: GateState = "none"
    gate_key: tuple[str, float] | None = None
    deadline_met: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "pivots": self.pivots, "regime": self.regime,
                "locked_reason": self.locked_reason, "gate_state": self.gate_state,
                "gate_key": list(self.gate_key) if self.gate_key else None,
                "deadline_met": self.deadline_met}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelectionMemory:
        key = data.get("gate_key")
        return cls(day=dt.date.fromisoformat(data["day"]), pivots=int(data["pivots"]),
                   regime=data.get("regime"), locked_reason=data.get("locked_reason"),
                   gate_state=data.get("gate_state", "none"),
                   gate_key=(str(key[0]), float(key[1])) if key else None,
                   deadline_met=bool(data.get("deadline_met", False)))


@dataclass(slots=True)
class _Inputs:
    plan: Gameplan | None = None
    facts: PlanFacts | None = None
    plan_problem: str | None = "no gameplan loaded yet"
    plan_at: float = math.inf
    vix: object = None
    vix_ts: float | None = None
    governor: bool = False


@dataclass(slots=True)
class SelectionState:
    """The day's selection: inputs in, a StrategyDecision out, rolling over at ET midnight.

    `evaluate` is cheap to call on every bar: while no input changed and no time event
    (deadline, gate time, VIX expiry, midnight) has passed, it returns the same decision
    object. A new decision object is made only when something an operator cares about
    changed (strategy, rule, lock, gate, pivots, plan), and that is what gets logged.
    """

    config: SelectionConfig = field(default_factory=SelectionConfig)
    restored: SelectionMemory | None = None
    _in: _Inputs = field(default_factory=_Inputs)
    _mem: SelectionMemory | None = None
    _day_end_s: float = -math.inf
    _day_start_s: float = math.inf
    _deadline_s: float = math.inf
    _gate_check: tuple[dt.time, float] | None = None
    _dirty: bool = True
    _vix_dirty: bool = False
    _valid_until: float = -math.inf
    _other_until: float = -math.inf
    _band: tuple[float, float] | None = None
    _decision: StrategyDecision | None = None
    _key: tuple[Any, ...] | None = None

    # -- inputs ------------------------------------------------------------------------------
    def set_plan(self, plan: Gameplan | None, *, at: dt.datetime | float,
                 problem: str | None = None) -> None:
        """A newly loaded plan (None with `problem` when loading failed: C, transient)."""
        self._in.plan = plan
        self._in.facts = PlanFacts.of(plan) if plan is not None else None
        self._in.plan_problem = None if plan is not None else (problem or "no gameplan")
        self._in.plan_at = at if isinstance(at, float | int) else epoch_of(at)
        self._dirty = True

    def set_vix(self, value: object, ts: dt.datetime | float | None) -> None:
        """The latest VIX as received (validated at use, so a bad value selects C)."""
        inp = self._in
        inp.vix = value
        inp.vix_ts = ts if ts is None or type(ts) is float or isinstance(
            ts, float | int) else epoch_of(ts)
        self._vix_dirty = True

    def set_vix_reading(self, reading: VixReading | None) -> None:
        if reading is None:
            self.set_vix(None, None)
        else:
            self.set_vix(reading.value, reading.ts)

    def set_governor(self, active: bool) -> None:
        """ModeGuard's weekly drawdown governor (in addition to the plan's flag)."""
        if active != self._in.governor:
            self._in.governor = active
            self._dirty = True

    def restarted(self, restored: SelectionMemory | None) -> SelectionState:
        """A fresh state from `restored` memory with this one's inputs (plan, VIX, governor):
        what a selector does when the day's memory changes under it (a failed save locks C)."""
        fresh = SelectionState(config=self.config, restored=restored)
        fresh._in = dataclasses.replace(self._in)
        return fresh

    # -- reading -------------------------------------------------------------------------------
    @property
    def plan(self) -> Gameplan | None:
        return self._in.plan

    @property
    def decision(self) -> StrategyDecision | None:
        return self._decision

    def memory(self) -> SelectionMemory | None:
        """A copy of the day's memory (the caller may keep it; the state goes on changing)."""
        return None if self._mem is None else dataclasses.replace(self._mem)

    def memory_is_one_of(self, *known: SelectionMemory | None) -> bool:
        """Whether the day's memory is absent or equal to one of `known`, without the copy
        `memory()` makes: the selector asks on every bar, and it has nearly always not
        changed."""
        mem = self._mem
        return mem is None or any(k is not None and mem == k for k in known)

    def evaluate(self, now: dt.datetime) -> StrategyDecision:
        return self.evaluate_at(epoch_of(now))

    def evaluate_at(self, now_s: float) -> StrategyDecision:
        """The decision in force at `now_s` (UTC epoch seconds)."""
        if not self._dirty and self._decision is not None:
            if not self._vix_dirty:
                if now_s < self._valid_until:
                    return self._decision
            elif self._band is not None and now_s < self._other_until:
                fast = self._vix_fast_path(now_s)
                if fast is not None:
                    return fast
        self._dirty = False
        self._vix_dirty = False
        if not (self._day_start_s <= now_s < self._day_end_s) or self._mem is None:
            self._roll(et_date_of(now_s))
        mem = self._mem
        assert mem is not None
        day = mem.day
        inp = self._in
        plan = inp.plan if inp.plan is not None and inp.plan.date == day else None
        facts = inp.facts if plan is not None else None
        cfg = self.config
        valid_until = self._day_end_s

        # the 09:15 deadline
        deadline_s = self._deadline_s
        if facts is not None and not mem.deadline_met and (
                inp.plan_at < deadline_s or (facts.produced_at_s is not None
                                             and facts.produced_at_s <= deadline_s)):
            mem.deadline_met = True
        if not mem.deadline_met:
            if now_s >= deadline_s:
                if mem.locked_reason is None:
                    mem.locked_reason = f"no valid gameplan by {cfg.plan_deadline:%H:%M} ET"
            elif deadline_s < valid_until:
                valid_until = deadline_s

        # the VIX gate
        gate: GateState = "none"
        gate_detail = ""
        if facts is not None and facts.gate is not None:
            gate, gate_detail, check_s = self._check_gate(facts.gate, now_s, mem)
            if check_s is not None and check_s < valid_until:
                valid_until = check_s

        # the VIX reading expires, or stops being "from the future"
        self._other_until = valid_until
        vix_ts = inp.vix_ts
        if vix_ts is not None:
            stale_at = vix_ts + cfg.vix_max_age_s
            if now_s < stale_at < valid_until:
                valid_until = stale_at
            future_ok = vix_ts - cfg.vix_future_tolerance_s
            if now_s < future_ok < valid_until:
                valid_until = future_ok

        max_pivots = facts.max_pivots if facts is not None else cfg.default_max_pivots
        sel = select_strategy(
            plan=inp.plan, plan_problem=inp.plan_problem, today=day, now_s=now_s, vix=inp.vix,
            vix_ts=vix_ts, governor_active=inp.governor, locked_reason=mem.locked_reason,
            gate=gate, gate_detail=gate_detail, config=cfg, facts=inp.facts)

        if not sel.transient and sel.rule != "locked":
            if mem.regime is None:
                mem.regime = sel.strategy
            elif sel.strategy != mem.regime:
                mem.pivots += 1
                mem.regime = sel.strategy
            if mem.pivots >= max_pivots:
                mem.locked_reason = (f"pivot cap: {mem.pivots} strategy pivot(s) today, "
                                     f"max {max_pivots}")
                sel = Selection("C", "locked", (f"C locked for the day: {mem.locked_reason}",
                                                *sel.reasons))

        self._valid_until = valid_until
        self._band = self._vix_band(sel, facts, gate)
        return self._publish(sel, now_s, plan, facts, mem, max_pivots, gate)

    def _vix_band(self, sel: Selection, facts: PlanFacts | None,
                  gate: GateState) -> tuple[float, float] | None:
        """The VIX values over which a NEW reading cannot change this decision (with every
        other input unchanged), or None when a new reading needs the full evaluation.

        Rules decided before the VIX is looked at ignore it entirely; the VIX rules keep
        their result inside their band. The pending gate and a refused VIX always take the
        full path. Only a speed-up: `test_vix_fast_path_agrees_with_full_evaluation` pins it.
        """
        if gate == "pending" or sel.transient:
            return None
        if sel.rule in _BEFORE_VIX:
            return (-math.inf, math.inf)
        cfg = self.config
        top = cfg.vix_c_at_or_above
        if facts is not None and facts.vix_ceiling is not None:
            top = min(top, facts.vix_ceiling)
        if sel.rule in ("regime_a", "plan_cap"):
            return (0.0, min(cfg.vix_a_below, top))
        if sel.rule == "regime_b":
            return (cfg.vix_a_below, top) if cfg.vix_a_below < top else None
        if sel.rule == "vix_high":
            return (top, math.inf)
        return None

    def _vix_fast_path(self, now_s: float) -> StrategyDecision | None:
        band = self._band
        assert band is not None and self._decision is not None
        inp = self._in
        if band[0] == -math.inf:
            self._vix_dirty = False
            self._valid_until = self._other_until
            return self._decision
        value, ts = inp.vix, inp.vix_ts
        if type(value) is not float or ts is None:
            return None
        lo, hi = band
        inside = lo < value < hi or (value == lo and lo > 0)  # (0, a) open; [a, top) closed
        if not inside:
            return None
        cfg = self.config
        stale_at = ts + cfg.vix_max_age_s
        if not (now_s < stale_at and ts - now_s <= cfg.vix_future_tolerance_s):
            return None
        self._vix_dirty = False
        self._valid_until = min(self._other_until, stale_at)
        return self._decision

    # -- internals -------------------------------------------------------------------------------
    def _check_gate(self, gate_cfg: tuple[dt.time, float], now_s: float,
                    mem: SelectionMemory) -> tuple[GateState, str, float | None]:
        """Advance the gate; returns (state, detail, the check instant while still ahead)."""
        check_time, threshold = gate_cfg
        key = (f"{check_time:%H:%M}", threshold)
        if mem.gate_key != key:
            mem.gate_key = key
            mem.gate_state = "pending"
        if mem.gate_state == "failed":
            return "failed", mem.locked_reason or "VIX gate failed", None
        if mem.gate_state == "passed":
            return "passed", f"VIX gate passed at {check_time:%H:%M} ET", None
        check_s = et_epoch(mem.day, check_time)
        if now_s < check_s:
            return "pending", f"VIX gate pending until {check_time:%H:%M} ET", check_s
        inp = self._in
        if (inp.vix_ts is not None and inp.vix_ts >= check_s
                and vix_problem(inp.vix, inp.vix_ts, now_s, self.config) is None):
            vix = float(inp.vix)  # type: ignore[arg-type]
            if vix >= threshold:
                mem.gate_state = "failed"
                if mem.locked_reason is None:
                    mem.locked_reason = (f"VIX gate failed: VIX {vix:.2f} >= {threshold:g} at "
                                         f"{check_time:%H:%M} ET")
                return "failed", mem.locked_reason, None
            mem.gate_state = "passed"
            return "passed", (f"VIX gate passed: VIX {vix:.2f} < {threshold:g} at "
                              f"{check_time:%H:%M} ET"), None
        return "pending", (f"VIX gate pending: no usable VIX reading since "
                           f"{check_time:%H:%M} ET"), None

    def _roll(self, day: dt.date) -> None:
        if self._mem is not None and self._mem.day == day:
            return
        restored = self.restored
        if restored is not None and restored.day == day:
            self._mem = dataclasses.replace(restored)
        else:
            self._mem = SelectionMemory(day)
        self._day_start_s = et_epoch(day, dt.time(0, 0))
        self._day_end_s = et_epoch(day + dt.timedelta(days=1), dt.time(0, 0))
        self._deadline_s = et_epoch(day, self.config.plan_deadline)

    def _publish(self, sel: Selection, now_s: float, plan: Gameplan | None,
                 facts: PlanFacts | None, mem: SelectionMemory, max_pivots: int,
                 gate: GateState) -> StrategyDecision:
        locked = mem.locked_reason is not None
        # reasons that quote a live number (VIX level, reading age) would make a new
        # decision every minute; they are part of the key only where the text is the news
        key = (sel.strategy, sel.rule, sel.reasons if sel.rule in _TEXT_IS_NEWS else None,
               locked, gate, mem.pivots, max_pivots,
               plan.session_id if plan is not None else None, mem.day)
        if key == self._key and self._decision is not None:
            return self._decision
        previous = self._decision.strategy if self._decision is not None else None
        vix = self._in.vix
        vix_value = float(vix) if isinstance(vix, int | float) and not isinstance(vix, bool) \
            and math.isfinite(vix) else None
        vix_ts = self._in.vix_ts
        multiplier = facts.multiplier.get(sel.strategy, 0.0) if facts is not None else 0.0
        self._decision = StrategyDecision(
            ts=utc_of(now_s), day=mem.day, strategy=sel.strategy, previous=previous,
            changed=previous is not None and previous != sel.strategy, rule=sel.rule,
            reasons=sel.reasons, transient=sel.transient, pivots=mem.pivots,
            max_pivots=max_pivots, locked=locked, vix=vix_value,
            vix_ts=utc_of(vix_ts) if vix_ts is not None else None, vix_gate=gate,
            plan_session_id=plan.session_id if plan is not None else None,
            size_multiplier=multiplier if sel.strategy != "C" else 0.0)
        self._key = key
        return self._decision


def _duration(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"

