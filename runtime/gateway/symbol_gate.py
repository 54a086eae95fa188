"""Which bar symbols the Gateway refused for now, until when, and whether the operator knows.

A symbol IB refuses for a reason that asking again will not fix this session (the error
policy's `disables_symbol`: 200 unknown, 354 not subscribed, ...) is disabled alone: BarFeed
stops asking for it for a long interval during a session, or until the next session's open
outside one, and publishes `FeedSymbols`. The gate lives in BarFeed's memory, outside the
link subtree, so a link restart neither forgets a disabled symbol (no retry loop) nor repeats
its alert.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from config.market_calendar import get_calendar
from messages.link import FeedSymbols, SymbolUnavailable
from runtime.gateway import error_policy

DISABLED_RETRY = dt.timedelta(minutes=30)   # in a session; outside one: the next open


@dataclass
class SymbolGate:
    disabled: dict[str, SymbolUnavailable] = field(default_factory=dict)
    alerted: set[str] = field(default_factory=set)    # symbols whose critical alert went out

    def disable(self, symbol: str, code: int, text: str, now: dt.datetime
                ) -> tuple[SymbolUnavailable, bool]:
        """Disable `symbol`; returns its entry and whether the operator must be told (the
        first refusal since it last worked)."""
        retry_at = now + DISABLED_RETRY
        calendar = get_calendar()
        if calendar.session_at(now) is None:      # no bars to miss before the next open
            try:
                retry_at = max(retry_at, calendar.next_session_after(now).open)
            except LookupError:
                pass
        entry = SymbolUnavailable(symbol=symbol, code=code,
                                  reason=error_policy.policy(code, text).meaning, since=now,
                                  retry_at=retry_at)
        self.disabled[symbol] = entry
        first = symbol not in self.alerted
        self.alerted.add(symbol)
        return entry, first

    def enable(self, symbol: str) -> tuple[bool, bool]:
        """`symbol` subscribed fine: returns (it was disabled, its alert had gone out)."""
        was_disabled = self.disabled.pop(symbol, None) is not None
        was_alerted = symbol in self.alerted
        self.alerted.discard(symbol)
        return was_disabled, was_alerted

    def retry_at(self, symbol: str) -> dt.datetime | None:
        entry = self.disabled.get(symbol)
        return entry.retry_at if entry is not None else None

    def snapshot(self) -> FeedSymbols:
        return FeedSymbols(unavailable=tuple(self.disabled[s] for s in sorted(self.disabled)))
