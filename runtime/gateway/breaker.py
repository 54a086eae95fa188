"""A circuit breaker per Gateway request kind: a struggling Gateway is not hammered.

closed -> (N consecutive failures) -> open -> (cool-down) -> half_open -> one trial request:
success closes it, failure opens it again with a longer cool-down. It only gates *requests*;
it never decides reconnects (liveness does), so an open breaker cannot keep the link down.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerOpen(RuntimeError):
    """Refused without asking the Gateway: the breaker for this kind is open."""

    def __init__(self, kind: str, retry_in: float) -> None:
        super().__init__(f"circuit breaker for {kind!r} is open; retry in {retry_in:.1f}s")
        self.kind = kind
        self.retry_in = retry_in


@dataclass
class Breaker:
    kind: str
    now: Callable[[], float]            # trio.current_time in production
    failure_threshold: int = 3
    cooldown: float = 30.0
    max_cooldown: float = 600.0
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    current_cooldown: float = field(default=0.0)
    trial_in_flight: bool = False
    on_change: Callable[[Breaker, BreakerState, BreakerState], None] | None = None

    def before_request(self) -> None:
        """Raise BreakerOpen, or let one request through (the trial one when half-open)."""
        if self.state is BreakerState.OPEN:
            waited = self.now() - self.opened_at
            if waited < self.current_cooldown:
                raise BreakerOpen(self.kind, self.current_cooldown - waited)
            self._set(BreakerState.HALF_OPEN)
        if self.state is BreakerState.HALF_OPEN:
            if self.trial_in_flight:
                raise BreakerOpen(self.kind, 1.0)
            self.trial_in_flight = True

    def record_success(self) -> None:
        self.failures = 0
        self.trial_in_flight = False
        self.current_cooldown = 0.0
        if self.state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self.failures += 1
        was_trial = self.trial_in_flight
        self.trial_in_flight = False
        if self.state is BreakerState.HALF_OPEN or (
                self.state is BreakerState.CLOSED and self.failures >= self.failure_threshold):
            self.current_cooldown = (min(self.max_cooldown, self.current_cooldown * 2)
                                     if was_trial and self.current_cooldown else self.cooldown)
            self.opened_at = self.now()
            self._set(BreakerState.OPEN)

    def record_neutral(self) -> None:
        """The request ended without telling us anything (cancelled): release a trial slot."""
        self.trial_in_flight = False

    def _set(self, state: BreakerState) -> None:
        old, self.state = self.state, state
        if self.on_change is not None and old is not state:
            self.on_change(self, old, state)

    def snapshot(self) -> dict[str, object]:
        return {"state": str(self.state), "failures": self.failures,
                "cooldown_s": self.current_cooldown}
