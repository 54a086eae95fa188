"""The one clock of the program: trio time mapped to wall time (UTC and US/Eastern).

Actors never call `time.time()` or `datetime.now()`; they ask this clock. That is what lets a
test run five trading days in seconds on `trio.testing.MockClock(autojump_threshold=0)` and lets
`--sim-start/--sim-speed` follow a Gateway simulator running on accelerated time.

Two kinds of duration exist and must not be mixed:
  * market durations (bar length, time stops, "16:30 ET") are in simulated seconds and go
    through `sleep_market()` / `sleep_until()`, which divide by `speed`;
  * infrastructure durations (socket timeouts, backoff, probe deadlines) are plain trio
    seconds, because the network and the Gateway do not run faster when the market does.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import sys
import time

import trio

from config.market_calendar import ET

UTC = dt.UTC
log = logging.getLogger("runtime.clock")

FOLLOW_MIN_LIMIT_S = 600.0
"""`follow` always accepts corrections up to 10 simulated minutes."""
FOLLOW_LATE_START_WALL_S = 120.0
"""...and up to this many WALL seconds of a late start times the speed (60x: 2 hours)."""


class Clock:
    """Maps trio's clock onto wall time: `utc = anchor_utc + (trio_now - anchor_trio) * speed`."""

    def __init__(self, anchor_utc: dt.datetime, *, speed: float = 1.0,
                 anchor_trio: float | None = None) -> None:
        if anchor_utc.tzinfo is None:
            raise ValueError("the clock's anchor must be timezone-aware")
        if not (speed > 0 and math.isfinite(speed)):
            raise ValueError(f"clock speed must be a positive number, not {speed!r}")
        self._anchor_utc = anchor_utc.astimezone(UTC)
        self._anchor_trio = trio.current_time() if anchor_trio is None else anchor_trio
        self._anchor_perf = time.perf_counter() - (trio.current_time() - self._anchor_trio
                                                   if anchor_trio is not None else 0.0)
        self.speed = float(speed)
        self.follows_gateway = False   # sim mode: re-anchor on the simulator's clock
        self.refused_jump: float | None = None   # the last correction `follow` refused

    @classmethod
    def wall(cls) -> Clock:
        """Production: anchored at the real time now, running at real speed."""
        return cls(dt.datetime.now(UTC))

    # -- reading ---------------------------------------------------------------------------
    def now_utc(self) -> dt.datetime:
        return self.utc_at(trio.current_time())

    def now_utc_any_thread(self) -> dt.datetime:
        """`now_utc()` from any thread (log records of the ib_async thread, writer threads).

        Outside the trio thread trio's clock cannot be read; trio's system clock advances
        with `time.perf_counter()`, so the elapsed time since the anchor is estimated from it.
        """
        try:
            return self.now_utc()
        except RuntimeError:
            elapsed = (time.perf_counter() - self._anchor_perf) * self.speed
            return self._anchor_utc + dt.timedelta(seconds=elapsed)

    def now_et(self) -> dt.datetime:
        return self.now_utc().astimezone(ET)

    def now_ns(self) -> int:
        """UTC nanoseconds since the epoch (for journals that want integers)."""
        delta = self.now_utc() - dt.datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000

    def today_et(self) -> dt.date:
        """The US/Eastern date: the trading day, not the UTC day."""
        return self.now_et().date()

    # -- conversions -----------------------------------------------------------------------
    def utc_at(self, trio_time: float) -> dt.datetime:
        return self._anchor_utc + dt.timedelta(seconds=(trio_time - self._anchor_trio) * self.speed)

    def trio_time_at(self, when: dt.datetime) -> float:
        """The trio deadline at which the clock will read `when`."""
        if when.tzinfo is None:
            raise ValueError("naive datetime given to the clock")
        return self._anchor_trio + (when - self._anchor_utc).total_seconds() / self.speed

    def to_trio_seconds(self, market_seconds: float) -> float:
        return market_seconds / self.speed

    # -- waiting ---------------------------------------------------------------------------
    async def sleep_until(self, when: dt.datetime) -> None:
        """Sleep until the clock reads `when` (returns at once if that is past)."""
        await trio.sleep_until(self.trio_time_at(when))

    async def sleep_market(self, market_seconds: float) -> None:
        """Sleep for a market duration (simulated seconds)."""
        await trio.sleep(max(0.0, market_seconds) / self.speed)

    def max_follow_jump(self) -> float:
        """The largest correction `follow` takes (simulated seconds): what a bot started a
        couple of wall minutes after its simulator is behind, never less than 10 minutes."""
        return max(FOLLOW_MIN_LIMIT_S, FOLLOW_LATE_START_WALL_S * self.speed)

    def follow(self, reference_now: dt.datetime, tolerance: float = 1.0) -> float:
        """Re-anchor so that now reads `reference_now`; returns the correction (seconds).

        Used on a simulated clock to follow the Gateway simulator's time (its clock has one-
        second resolution, hence the tolerance). Never used on the production clock.

        A correction beyond `max_follow_jump()` is refused with a warning and 0.0 returned: a
        simulator started on another day than `--sim-start` would otherwise move the bot days
        ahead in silence (and into a weekend it then trades as a "new trading day").
        """
        now_trio = trio.current_time()
        correction = (reference_now - self.utc_at(now_trio)).total_seconds()
        if abs(correction) > self.max_follow_jump():
            self.refused_jump = correction
            log.warning(
                "The Gateway's clock reads %s ET but the simulated clock %s ET (%+.0fs, %.1f "
                "days): not followed (more than %.0fs). Start the simulator with --start equal "
                "to --sim-start.", reference_now.astimezone(ET).strftime("%Y-%m-%d %H:%M:%S"),
                self.utc_at(now_trio).astimezone(ET).strftime("%Y-%m-%d %H:%M:%S"), correction,
                correction / 86400, self.max_follow_jump())
            return 0.0
        if abs(correction) > tolerance:
            self._anchor_utc, self._anchor_trio = reference_now.astimezone(UTC), now_trio
            self._anchor_perf = time.perf_counter()
            return correction
        return 0.0

    def resync_to_wall(self) -> float:
        """Re-anchor a real-speed clock on the wall clock; returns the drift corrected (s).

        Only meaningful at speed 1: trio's monotonic clock and NTP-slewed wall time drift
        apart by a few ms a day, which matters for bar alignment over a long run.
        """
        if self.speed != 1.0:
            return 0.0
        now_trio = trio.current_time()
        wall = dt.datetime.now(UTC)
        drift = (wall - self.utc_at(now_trio)).total_seconds()
        self._anchor_utc, self._anchor_trio = wall, now_trio
        self._anchor_perf = time.perf_counter()
        return drift


def on_virtual_clock() -> bool:
    """True under trio.testing.MockClock (tests and simulations), where time is not real.

    Without importing trio.testing: it imports pytest when pytest is installed (~5 MB and 60 ms
    at every start of the bot). Whoever runs trio on a MockClock has imported it already."""
    testing = sys.modules.get("trio.testing")
    return testing is not None and isinstance(trio.lowlevel.current_clock(), testing.MockClock)
