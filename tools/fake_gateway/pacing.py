"""IB's historical-data pacing rules, enforced only while `pacing on`.

Rules (IB's historical_limitations page): no identical request within 15 s; no 6 or more requests
for the same contract, exchange and data type within 2 s; no more than 60 requests in any
10-minute window. IB applies them to small bars only; the simulator applies them to every bar
size so that a bot using 1-minute bars can still be tested against a 162. Time here is trio
(wall) time: pacing is a property of IB's servers, which do not run faster with the market.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

IDENTICAL_WINDOW_S = 15.0
SAME_CONTRACT_WINDOW_S = 2.0
SAME_CONTRACT_MAX = 5            # the 6th within 2 s violates
TOTAL_WINDOW_S = 600.0
TOTAL_MAX = 60

PACING_VIOLATION_TEXT = ("Historical Market Data Service error message:"
                         "Historical data request pacing violation")


class HistoricalPacer:
    def __init__(self) -> None:
        self._accepted: deque[tuple[float, Hashable, Hashable]] = deque()

    def check(self, now: float, contract_key: Hashable, request_key: Hashable) -> str | None:
        """Record the request if allowed; otherwise return why it violates the pacing rules."""
        while self._accepted and now - self._accepted[0][0] > TOTAL_WINDOW_S:
            self._accepted.popleft()
        if len(self._accepted) >= TOTAL_MAX:
            return f"more than {TOTAL_MAX} historical requests in 10 minutes"
        same_contract = 0
        for t, ckey, rkey in self._accepted:
            if rkey == request_key and now - t < IDENTICAL_WINDOW_S:
                return "identical historical request within 15 seconds"
            if ckey == contract_key and now - t < SAME_CONTRACT_WINDOW_S:
                same_contract += 1
        if same_contract >= SAME_CONTRACT_MAX:
            return "6 or more requests for the same contract within 2 seconds"
        self._accepted.append((now, contract_key, request_key))
        return None

    def reset(self) -> None:
        self._accepted.clear()
