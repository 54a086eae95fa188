"""Restarts of the link subtree, counted by cause: a storm becomes one alert and a long pause.

The supervisor's backoff and intensity bound a crash loop of *any* causes; what they cannot see
is one cause coming back every few seconds for ever (a session that dies the same way each
time it comes up), which against a real Gateway means hammering it with connects. GatewayLink
and BarFeed record why they end the subtree here (one ledger, shared through their memories),
and the next GatewayLink incarnation asks `storm()` before it connects.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

STORM_RESTARTS = 5          # more than this many restarts for one cause...
STORM_WINDOW = 600.0        # ...within this many seconds of the bot's clock is a storm
STORM_PAUSE = 900.0         # then wait this long (clock seconds) before the next connect
# Clock seconds, not trio seconds: in production they agree; on an accelerated clock (the soak
# at 1000x, the demo) a day's random faults are compressed into real seconds and are no storm.


@dataclass(frozen=True)
class Storm:
    cause: str
    restarts: int
    window: float
    pause: float


@dataclass
class RestartLedger:
    limit: int = STORM_RESTARTS
    window: float = STORM_WINDOW
    pause: float = STORM_PAUSE
    times: dict[str, deque[float]] = field(default_factory=dict)
    last_cause: str | None = None
    alerted: set[str] = field(default_factory=set)    # causes whose storm alert went out

    def record(self, cause: str, now: float) -> None:
        """The link subtree is about to restart because of `cause` (not a scheduled one)."""
        times = self.times.setdefault(cause, deque())
        times.append(now)
        self._expire(times, now)
        self.last_cause = cause

    def storm(self, now: float) -> Storm | None:
        """The storm the last restart belongs to, if its cause came back too often."""
        cause = self.last_cause
        if cause is None:
            return None
        times = self.times.get(cause, deque())
        self._expire(times, now)
        if len(times) <= self.limit:
            return None
        return Storm(cause, len(times), self.window, self.pause)

    def paused(self, storm: Storm) -> None:
        """The long pause is over: count this cause afresh (the alert stays sent until a
        session has stayed up, see `settled`)."""
        self.times.pop(storm.cause, None)
        self.last_cause = None

    def settled(self) -> None:
        """A session came up and stayed: a later storm is a new one, worth a new alert."""
        self.alerted.clear()

    def _expire(self, times: deque[float], now: float) -> None:
        while times and now - times[0] > self.window:
            times.popleft()
