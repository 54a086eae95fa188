"""What GatewayLink needs from a Gateway connection, independent of how it is made.

Production uses `runtime.gateway.ib_transport.IbAsyncTransport` (real ib_async on a private asyncio
loop, over TCP). The multi-day simulations use a pure-trio transport that runs on trio's
MockClock, so five trading days of reconnects, gaps and faults run in seconds. GatewayLink's
own logic (port probing, outage alerts, the scheduled window, liveness, serving requests,
breakers) is the same code in both.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import trio

from messages.base import Message
from messages.link import GatewayNotice
from messages.orders import BrokerEvent
from runtime.gateway.breaker import Breaker, BreakerOpen
from runtime.infra.clock import Clock
from runtime.infra.logs import Journal
from runtime.supervision.supervisor import OperationalFailure

T = TypeVar("T")

Subscriptions = dict[int, Callable[[], None]]
"""subscription id -> function that cancels it at the Gateway."""


class ConnectFailed(OperationalFailure):
    """The Gateway did not give us an API session. `kind` says how it refused."""

    def __init__(self, kind: str, detail: str, *, handshake_done: bool | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind      # refused | timeout | client_id_in_use | broken | error
        self.detail = detail
        # for a timeout: did the Gateway answer the API handshake (so it is the login/session
        # start that hangs) or not even that? None: not known
        self.handshake_done = handshake_done


class RequestRejected(RuntimeError):
    """The Gateway answered, but not with what was asked (unknown contract, no data).
    `code` is the IB code it amounts to, when one applies (200 for an unknown contract), so
    the error policy can read it like one the Gateway sent."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class SessionInfo:
    session_id: int
    client_id: int
    accounts: tuple[str, ...]
    server_version: int
    readonly: bool
    connect_ms: float


@dataclass
class SessionEvents:
    """Where a session reports what the Gateway pushes; both are called in trio."""

    on_notice: Callable[[GatewayNotice], None]
    broker: trio.MemorySendChannel[BrokerEvent] | None = None  # order events -> OrderRouter


@dataclass(eq=False)
class SessionBase:
    """Bookkeeping every transport's session shares: loss, breakers, request journaling."""

    info: SessionInfo
    clock: Clock
    journal: Journal
    actor: str
    breakers: dict[str, Breaker]
    lost: trio.Event = field(default_factory=trio.Event)
    lost_reason: str = ""
    lost_code: int | None = None
    closing: bool = False      # we are closing it ourselves: its disconnect is not a loss

    @property
    def session_id(self) -> int:
        return self.info.session_id

    def mark_lost(self, reason: str, code: int | None = None) -> None:
        if not self.lost.is_set() and not self.closing:
            self.lost_reason, self.lost_code = reason, code
            self.lost.set()

    def quiet_for(self) -> float:
        """Real seconds since the Gateway last sent anything on this session.

        Data flow is proof of life: GatewayLink probes only a link that has been quiet for a
        whole liveness interval. `inf` means the transport cannot tell, and the link probes on
        every interval, as it always did (the in-process simulator's sessions).
        """
        return math.inf

    def breaker(self, kind: str) -> Breaker:
        b = self.breakers.get(kind)
        if b is None:
            b = self.breakers[kind] = Breaker(kind, trio.current_time)
        return b

    async def request(self, kind: str, call: Callable[[], Awaitable[T]], *,
                      timeout: float) -> T:
        """One Gateway request: breaker-gated, bounded, timed and journaled."""
        breaker = self.breaker(kind)
        try:
            breaker.before_request()
        except BreakerOpen:
            self.journal.emit("request", self.actor, kind=kind, duration_ms=0.0,
                              outcome="breaker_open", session=self.session_id)
            raise
        started = trio.current_time()
        outcome = "error"
        try:
            with trio.fail_after(timeout):
                result = await call()
            outcome = "ok"
            breaker.record_success()
            return result
        except trio.TooSlowError:
            outcome = "timeout"
            breaker.record_failure()
            raise
        except trio.Cancelled:
            outcome = "cancelled"
            breaker.record_neutral()
            raise
        except Exception as exc:
            code = getattr(exc, "code", None)
            if code in (162, 322, 420) and ("pacing" in str(exc).lower() or code != 162):
                outcome = "pacing"
                breaker.record_failure()
            else:
                breaker.record_neutral()
            raise
        finally:
            self.journal.emit("request", self.actor, kind=kind,
                              duration_ms=round((trio.current_time() - started) * 1000, 2),
                              outcome=outcome, session=self.session_id)


class LinkSession(Protocol):
    info: SessionInfo
    lost: trio.Event
    lost_reason: str
    lost_code: int | None
    breakers: dict[str, Breaker]

    @property
    def session_id(self) -> int: ...

    def mark_lost(self, reason: str, code: int | None = None) -> None: ...

    def quiet_for(self) -> float:
        """Real seconds since the Gateway last sent anything (inf: not known)."""
        ...

    async def handle(self, request: Message, stream: trio.MemorySendChannel[Message] | None,
                     subs: Subscriptions) -> tuple[Any, int | None]:
        """Serve one request; returns (value, subscription id or None)."""
        ...

    def cancel(self, cancel: Callable[[], None]) -> None:
        """Cancel a subscription at the Gateway (fire and forget)."""
        ...

    async def probe(self) -> None:
        """One liveness round trip; returns when answered (the caller bounds it)."""
        ...

    async def gateway_time(self) -> dt.datetime: ...


@dataclass(frozen=True)
class SessionParams:
    client_id: int
    readonly: bool
    session_id: int
    clock: Clock
    journal: Journal
    actor: str
    breakers: dict[str, Breaker]
    events: SessionEvents


class Transport(Protocol):
    """How GatewayLink reaches a Gateway."""

    @property
    def liveness_interval(self) -> float:
        """Seconds between liveness probes (the protocol has no heartbeat)."""
        ...

    @property
    def liveness_deadline(self) -> float:
        """A probe not answered within this many seconds means the Gateway hangs."""
        ...

    async def port_open(self) -> bool:
        """Cheap check that something accepts connections (no API handshake)."""
        ...

    def open_session(self, params: SessionParams) -> contextlib.AbstractAsyncContextManager[
            LinkSession]:
        """Connect (raising ConnectFailed); leaving the block closes the session quietly."""
        ...

