"""Indicators: one IndicatorSet per symbol, fed every bar exactly once and in order.

This actor drives the first stage of the one brain, doctrine/brain.IndicatorStage, the very
code replay drives (so live = replay by construction); it owns what a pure stage cannot: the
channels, the log and journal lines, with which periods, and for how long the state lives.

* Exactly once (the stage's rule). A bar at or before the symbol's last counted bar is
  skipped: a duplicate (BarFeed's backfill after a reconnect overlapping what it delivered, a
  resent message) would otherwise enter every EMA twice and shift every later value. A
  `BarGap` marks the set, so the next snapshot says `after_gap` and no crossover is read
  across the hole.
* Never dropped. One `IndicatorSnapshot` per counted bar goes to `snapshots`, a backpressure
  channel: the selector must see every bar the indicators saw, or the live decisions drift
  from the backtest's.
* Periods from the plan. The validated gameplan's `strategy_parameters` (the `gameplan` latest
  value) may change the EMA/RSI/Bollinger periods. A period change changes what every past
  value means, so the affected sets are rebuilt and re-warmed at once from a ring buffer of
  the symbol's recent bars kept here: no history request, no blind spell while 21+ new bars
  arrive. A withdrawn plan (None: stale at midnight, refused) changes nothing: the periods in
  force stay until a valid plan says otherwise, so the indicators do not flap overnight.
* Lifetime. The actor lives in the brain subtree, outside the link subtree, so a Gateway
  restart never touches it. The ring buffers live in `Memory` (created once, outside every
  incarnation): a new incarnation after a crash rebuilds its sets from the raw bars, instead
  of either trusting state a failure interrupted or starting cold.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import trio

from config.gameplan import Gameplan
from config.market_calendar import get_calendar
from doctrine.brain import HistoryBar, IndicatorStage, Skipped
from doctrine.indicators import IndicatorParams
from doctrine.sessions import SessionClock, epoch_of
from messages.brain import IndicatorSnapshot
from messages.market import Bar, BarGap
from runtime.supervision.actor import ActorContext
from runtime.supervision.channels import Latest, send_now_or_wait
from runtime.supervision.tree import Gauge

# -- inbox and outbox -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Inbox:
    bars: trio.MemoryReceiveChannel[Bar | BarGap]
    gameplan: Latest[Gameplan | None]        # the selector's validated plan: periods


@dataclass(frozen=True)
class Outbox:
    snapshots: trio.MemorySendChannel[IndicatorSnapshot]


# -- state that outlives an incarnation -----------------------------------------------------------

BARS_COUNTED = Gauge("bars_counted", "bars turned into snapshots since the program started, "
                     "every incarnation (duplicates and refused bars not included)")
PERIODS = Gauge("periods", "the indicator periods in force (the gameplan's, else the defaults)")

RingBar = HistoryBar
"""(start in UTC epoch seconds, high, low, close, volume, bar seconds): what a re-warm needs."""

SESSION_BARS = 390
"""1-minute bars in a full regular session. VWAP needs every bar since today's open, so a
re-warm late in the day needs the whole session in the ring."""

RING_FLOOR = 1024
"""The smallest ring per symbol. The default periods (8/21, RSI 14, Bollinger 20) need 145 bars
for the slow EMA's SMA seed to fade below 1e-6 (`IndicatorParams.history_bars`), plus a full
session for VWAP: 535. 1024 leaves room for periods up to an EMA of about 70 without growing;
longer periods grow the ring to `history_bars + SESSION_BARS`. At 6 floats a bar that is
about 100 KB per symbol."""


def ring_capacity(params: IndicatorParams) -> int:
    return max(RING_FLOOR, params.history_bars + SESSION_BARS)


@dataclass
class Memory:
    rings: dict[str, deque[RingBar]] = field(default_factory=dict)
    pending_gaps: set[str] = field(default_factory=set)   # gap marked, next bar not seen yet
    params: IndicatorParams | None = None                  # the periods last in force
    counted: int = 0
    skipped: int = 0
    refused: int = 0
    gaps: int = 0
    rebuilds: int = 0


# -- the state of one incarnation -----------------------------------------------------------------


class _Indicators:
    """The brain's indicator stage and the rules for feeding it (synchronous: no await)."""

    def __init__(self, ctx: ActorContext, memory: Memory, params: IndicatorParams) -> None:
        self.ctx = ctx
        self.memory = memory
        self.params = params
        self.sessions = SessionClock(get_calendar())
        self.stage = IndicatorStage(params, self.sessions)
        memory.params = params
        for symbol in memory.rings:
            self._resize_ring(symbol)
            self._rewarm(symbol)
        self.update_note()

    # -- bars ------------------------------------------------------------------------------
    def on_bar(self, bar: Bar) -> IndicatorSnapshot | None:
        """The snapshot of a bar not counted before; None for a duplicate or a refused bar."""
        symbol = bar.symbol
        if symbol not in self.stage.sets:
            self.memory.rings[symbol] = deque(maxlen=ring_capacity(self.params))
            self._rewarm(symbol)
        ts = epoch_of(bar.ts)
        values = self.stage.bar(symbol, ts, bar.high, bar.low, bar.close, bar.volume,
                                bar.bar_seconds, bar.source == "live")
        if isinstance(values, Skipped):
            if values.reason == "duplicate":
                self.memory.skipped += 1
                self.ctx.log.debug("%s bar %s already counted: skipped", symbol,
                                   bar.ts.isoformat())
                return None
            # refused: not counted; the stage marked a gap so the next bar is not taken for
            # its continuation, and the mark outlives a restart
            self.memory.refused += 1
            self.memory.pending_gaps.add(symbol)
            self.ctx.log.warning("bar refused: %s", values.detail)
            self.ctx.emit("bar_refused", symbol=symbol, bar_ts=bar.ts, reason=values.detail)
            return None
        self.memory.rings[symbol].append(
            (ts, bar.high, bar.low, bar.close, bar.volume, bar.bar_seconds))
        self.memory.pending_gaps.discard(symbol)
        self.memory.counted += 1
        if self.stage.sets[symbol].bars_seen <= self.params.warmup_bars:
            self.update_note()                   # the note only changes while warming
        return values.to_snapshot(bar.source)

    def on_gap(self, gap: BarGap) -> None:
        self.memory.gaps += 1
        self.memory.pending_gaps.add(gap.symbol)
        self.stage.mark_gap(gap.symbol, gap)

    # -- periods ---------------------------------------------------------------------------
    def set_params(self, params: IndicatorParams) -> None:
        """New periods: rebuild every set from its ring (what the values would have been)."""
        if params == self.params:
            return
        old = self.params
        self.params = params
        self.memory.params = params
        self.memory.rebuilds += 1
        symbols = list(self.stage.sets)
        self.stage = IndicatorStage(params, self.sessions)
        counts = {}
        for symbol in symbols:
            self._resize_ring(symbol)
            self._rewarm(symbol)
            counts[symbol] = len(self.memory.rings[symbol])
        self.ctx.log.info(
            "indicator periods changed by the gameplan: %s -> %s; re-warmed from the ring "
            "buffer: %s", _describe(old), _describe(params),
            ", ".join(f"{s} {n} bars" for s, n in counts.items()) or "no bars yet")
        self.ctx.emit("indicator_params", old=_as_dict(old), new=_as_dict(params),
                      rewarmed=counts)
        self.update_note()

    def _resize_ring(self, symbol: str) -> None:
        ring = self.memory.rings[symbol]
        capacity = ring_capacity(self.params)
        if ring.maxlen != capacity:
            self.memory.rings[symbol] = deque(ring, maxlen=capacity)

    def _rewarm(self, symbol: str) -> None:
        self.stage.rewarm(symbol, self.memory.rings[symbol],
                          gap_pending=symbol in self.memory.pending_gaps)

    # -- the tree note ---------------------------------------------------------------------
    def update_note(self) -> None:
        """`SPY ready, QQQ warming 12/21`: which symbols can produce signals yet."""
        need = self.params.warmup_bars
        parts = [f"{s} ready" if ind.warmed else f"{s} warming {ind.bars_seen}/{need}"
                 for s, ind in sorted(self.stage.sets.items())]
        self.ctx.set_note(", ".join(parts) if parts else "waiting for bars")
        self.ctx.gauge(PERIODS, _describe(self.params))


def _describe(p: IndicatorParams) -> str:
    return f"EMA {p.ema_fast}/{p.ema_slow}, RSI {p.rsi}, BB {p.bb_period}/{p.bb_std:g}"


def _as_dict(p: IndicatorParams) -> dict[str, float]:
    return {"ema_fast": p.ema_fast, "ema_slow": p.ema_slow, "rsi": p.rsi,
            "bb_period": p.bb_period, "bb_std": p.bb_std}


def params_of(plan: Gameplan | None, current: IndicatorParams) -> IndicatorParams:
    """The plan's periods; no plan (withdrawn, refused) keeps the periods in force."""
    if plan is None:
        return current
    return IndicatorParams.from_plan(plan)


# -- the loop -------------------------------------------------------------------------------------


async def run(ctx: ActorContext, inbox: Inbox, outbox: Outbox, memory: Memory | None = None, *,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    memory = memory if memory is not None else Memory()
    start = memory.params if memory.params is not None else IndicatorParams()
    state = _Indicators(ctx, memory, _checked_params(ctx, inbox.gameplan.value, start))
    task_status.started()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_follow_plan, ctx, inbox, state)
        snapshots = outbox.snapshots
        async for item in inbox.bars:
            if isinstance(item, BarGap):
                state.on_gap(item)
                continue
            snapshot = state.on_bar(item)
            if snapshot is not None:
                await send_now_or_wait(snapshots, snapshot)
            ctx.gauge(BARS_COUNTED, memory.counted)
        nursery.cancel_scope.cancel()   # end of the bars channel: the program is stopping


async def _follow_plan(ctx: ActorContext, inbox: Inbox, state: _Indicators) -> None:
    """Apply the plan's periods now and at every change (the selector may publish its first
    plan before this task first waits: reading the value first loses nothing)."""
    while True:
        state.set_params(_checked_params(ctx, inbox.gameplan.value, state.params))
        await inbox.gameplan.wait_transition()


def _checked_params(ctx: ActorContext, plan: Gameplan | None,
                    current: IndicatorParams) -> IndicatorParams:
    """The plan's periods if they make a valid IndicatorParams, else the ones in force."""
    try:
        params = params_of(plan, current)
    except ValueError as exc:   # the gameplan schema should make this impossible; stay safe
        ctx.log.error("indicator periods of the gameplan refused (%s); keeping %s", exc,
                      _describe(current))
        return current
    return params
