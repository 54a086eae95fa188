"""GatewayLink's liveness probe: data flow is proof of life (issue 17, idle cost).

The schedule on trio's MockClock, with a session whose traffic the test drives: a busy link is
not probed (but for one request-path check every BUSY_PROBE_INTERVAL), a quiet one is probed
every interval, and a Gateway that hangs mid-stream is caught within interval + deadline of its
last bytes, as before. The same behaviour over real TCP with real ib_async:
tests/system/integration/test_liveness_data_flow.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import trio
import trio.testing

from actors.gateway_link import BUSY_PROBE_INTERVAL, _probe_liveness

INTERVAL = 2.0
DEADLINE = 4.0


@dataclass(frozen=True)
class _Transport:
    liveness_interval: float = INTERVAL
    liveness_deadline: float = DEADLINE


@dataclass(eq=False)
class _Session:
    """The part of a LinkSession the probe uses; `heard_at` is trio time of the last bytes."""

    heard_at: float = -math.inf
    hung: bool = False
    probes: list[float] = field(default_factory=list)
    lost: trio.Event = field(default_factory=trio.Event)
    lost_at: float = math.nan
    lost_reason: str = ""

    def quiet_for(self) -> float:
        return trio.current_time() - self.heard_at

    def mark_lost(self, reason: str, code: int | None = None) -> None:
        if not self.lost.is_set():
            self.lost_at, self.lost_reason = trio.current_time(), reason
            self.lost.set()

    async def probe(self) -> None:
        self.probes.append(trio.current_time())
        if self.hung:
            await trio.sleep_forever()
        self.heard_at = trio.current_time()      # the answer is bytes too


async def _stream(session: _Session, every: float, until: float) -> None:
    """The Gateway pushing bar updates every `every` seconds until `until`."""
    while trio.current_time() < until:
        session.heard_at = trio.current_time()
        await trio.sleep(every)


def _run(test: object) -> None:
    trio.run(test, clock=trio.testing.MockClock(autojump_threshold=0))  # type: ignore[arg-type]


def test_a_busy_link_is_not_probed_but_for_the_periodic_request_check() -> None:
    async def main() -> None:
        session = _Session()
        async with trio.open_nursery() as n:
            n.start_soon(_stream, session, 0.25, math.inf)
            n.start_soon(_probe_liveness, session, _Transport())
            await trio.sleep(3 * BUSY_PROBE_INTERVAL + 1)
            n.cancel_scope.cancel()
        # the old schedule asked every 2 s: 45 probes in these 91 s
        assert session.probes == [BUSY_PROBE_INTERVAL, 2 * BUSY_PROBE_INTERVAL,
                                  3 * BUSY_PROBE_INTERVAL]
        assert not session.lost.is_set()
    _run(main)


def test_a_quiet_link_is_probed_every_interval() -> None:
    async def main() -> None:
        session = _Session()
        async with trio.open_nursery() as n:
            n.start_soon(_probe_liveness, session, _Transport())
            await trio.sleep(10.5)
            n.cancel_scope.cancel()
        assert session.probes == [2.0, 4.0, 6.0, 8.0, 10.0]
    _run(main)


def test_a_link_that_goes_quiet_is_probed_one_interval_after_its_last_bytes() -> None:
    async def main() -> None:
        session = _Session()
        async with trio.open_nursery() as n:
            n.start_soon(_stream, session, 0.5, 10.0)     # last bytes at 9.5
            n.start_soon(_probe_liveness, session, _Transport())
            await trio.sleep(12.0)
            n.cancel_scope.cancel()
        assert session.probes == [9.5 + INTERVAL]
    _run(main)


def test_a_gateway_that_hangs_mid_stream_is_caught_within_interval_plus_deadline() -> None:
    async def main() -> None:
        session = _Session()
        hang_at = 17.3
        async with trio.open_nursery() as n:
            n.start_soon(_stream, session, 0.1, hang_at)   # a hung Gateway sends nothing
            n.start_soon(_probe_liveness, session, _Transport())
            await trio.sleep(hang_at)
            session.hung = True
            await session.lost.wait()
            n.cancel_scope.cancel()
        assert hang_at < session.lost_at <= hang_at + INTERVAL + DEADLINE
        assert "stopped answering" in session.lost_reason
    _run(main)
