"""The brain's vocabulary: indicator snapshots, strategy decisions, entry and exit signals.

Channel: Indicators -> StrategySelector -> ModeGuard (and the `signal` events of the journal).
The hot path (doctrine/) works on plain slots objects and builds these messages only at the
boundary, so a bar costs one validation, not one per intermediate step.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from messages.base import Message, UtcDatetime
from messages.market import BarSource, OptionSpec, Right

Strategy = Literal["A", "B", "C"]
"""A momentum, B mean reversion, C cash preservation (no entries)."""

Direction = Literal["bullish", "bearish"]
"""The view a signal takes: bullish buys calls, bearish buys puts. Never a short sale."""

GateState = Literal["none", "pending", "passed", "failed"]
"""The gameplan's VIX gate: none configured, not yet checked, passed, failed (C for the day)."""

ExitReason = Literal[
    "emergency_stop", "stop_loss", "take_profit", "dte_force_close", "session_end", "time_stop",
]


class IndicatorSnapshot(Message):
    """Indicator values after one completed bar of one symbol. `None` = not warmed up yet.

    `prev_ema_*` are the values after the previous bar, so a crossover "on this bar" can be
    judged from one snapshot. `after_gap` is true on the first bar after a marked gap (or an
    unexplained hole inside a session): the indicators carry on, but the bar does not continue
    the previous one, so entries are not taken on it.
    """

    symbol: str
    ts: UtcDatetime
    bar_seconds: int = 60
    close: float
    rsi: float | None = None
    ema_fast: float | None = None
    ema_slow: float | None = None
    prev_ema_fast: float | None = None
    prev_ema_slow: float | None = None
    vwap: float | None = None
    bb_upper: float | None = None
    bb_mid: float | None = None
    bb_lower: float | None = None
    session_date: dt.date | None = None
    after_gap: bool = False
    source: BarSource = "live"

    @property
    def end(self) -> dt.datetime:
        """The instant the bar completed: when its values became known."""
        return self.ts + dt.timedelta(seconds=self.bar_seconds)

    @property
    def end_epoch(self) -> float:
        return self.ts.timestamp() + self.bar_seconds

    @property
    def in_session(self) -> bool:
        return self.session_date is not None

    @property
    def live(self) -> bool:
        return self.source == "live"


class StrategyDecision(Message):
    """The strategy in force, why, and the state that led there (one `signal` event each).

    `rule` is the machine-readable id of the deciding rule (first match wins); `reasons` are
    the human-readable lines an operator reads. `size_multiplier` is 0 under C.
    """

    ts: UtcDatetime
    day: dt.date
    strategy: Strategy
    previous: Strategy | None = None
    changed: bool = False
    rule: str
    reasons: tuple[str, ...]
    transient: bool = False
    pivots: int = 0
    max_pivots: int = 2
    locked: bool = False
    vix: float | None = None
    vix_ts: UtcDatetime | None = None
    vix_gate: GateState = "none"
    plan_session_id: str | None = None
    size_multiplier: float = 0.0


class EntrySignal(Message):
    """A setup on a completed live bar that passed the doctrine's entry gates.

    `option`, `contracts` and `limit_price` are filled once the option has been chosen and
    sized (`model_copy(update=...)`); until then they are None.
    """

    ts: UtcDatetime
    bar_ts: UtcDatetime
    symbol: str
    strategy: Literal["A", "B"]
    direction: Direction
    right: Right
    reasons: tuple[str, ...]
    size_multiplier: float
    close: float
    rsi: float | None = None
    ema_fast: float | None = None
    ema_slow: float | None = None
    vwap: float | None = None
    bb_upper: float | None = None
    bb_lower: float | None = None
    option: OptionSpec | None = None
    contracts: int | None = None
    limit_price: float | None = None


class SignalRejected(Message):
    """A setup (or a sized entry) that the doctrine refused, with the stage and the reason.

    Zero contracts is a valid sizing answer and arrives here, never as a 1-lot.
    """

    ts: UtcDatetime
    symbol: str
    strategy: Strategy
    direction: Direction | None = None
    stage: str
    reason: str


class ExitSignal(Message):
    """Close an open option position; prices are OPTION premiums, never the underlying's."""

    ts: UtcDatetime
    symbol: str
    option: OptionSpec
    strategy: Strategy
    contracts: int
    reason: ExitReason
    detail: str
    mark: float | None = None
    entry_premium: float
    pnl_pct: float | None = None
