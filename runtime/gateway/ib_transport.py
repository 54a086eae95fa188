"""The production transport: real ib_async over TCP, one private asyncio loop per session.

Everything here that touches an ib_async object runs on the session's loop thread (through the
bridge); what comes back to trio is plain data or immutable messages. A session never outlives
its `open_session` block: the next one gets a new thread, a new loop and a new `IB()`, so no
state of a dead Gateway session can leak into the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio

from messages.base import Message
from messages.link import GatewayNotice
from runtime.gateway import ib_market, ib_orders
from runtime.gateway.aio_bridge import AsyncioLoop, LoopClosed, open_asyncio_loop
from runtime.gateway.ib_codes import CLIENT_ID_IN_USE, classify
from runtime.gateway.link_transport import (
    ConnectFailed,
    SessionBase,
    SessionEvents,
    SessionInfo,
    SessionParams,
    Subscriptions,
)

T = TypeVar("T")

CONNECT_TIMEOUT = 5.0
"""ib_async applies it separately to TCP, the handshake and each startup request."""

PORT_PROBE_TIMEOUT = 2.0

HANDLERS: dict[type[Message], ib_market.Handler] = {**ib_market.HANDLERS, **ib_orders.HANDLERS}
"""Request type -> handler. The money path's order handlers register here too."""


@dataclass(eq=False)
class IbAsyncSession(SessionBase):
    aio: AsyncioLoop = field(kw_only=True)
    ib: Any = field(kw_only=True)
    received_at: float = field(default_factory=time.monotonic)
    """`time.monotonic()` of the last bytes from the Gateway: written on the loop thread (a
    float store, atomic under the GIL), read by `quiet_for` in trio."""

    def quiet_for(self) -> float:
        return max(0.0, time.monotonic() - self.received_at)

    async def handle(self, request: Message, stream: trio.MemorySendChannel[Message] | None,
                     subs: Subscriptions) -> tuple[Any, int | None]:
        handler = HANDLERS.get(type(request))
        if handler is None:
            raise ValueError(f"unsupported request {type(request).__name__}")
        return await handler(self, request, stream, subs)

    async def ib_request(self, kind: str, fn: Callable[[], Awaitable[T]], *,
                         timeout: float) -> T:
        """`request()` for an ib_async coroutine: it runs on this session's asyncio loop."""
        return await self.request(kind, lambda: self.aio.run(fn), timeout=timeout)

    def cancel(self, cancel: Callable[[], None]) -> None:
        with contextlib.suppress(LoopClosed):
            self.aio.call_nowait(cancel)

    async def probe(self) -> None:
        await self.aio.run(self.ib.reqCurrentTimeAsync)

    async def gateway_time(self) -> dt.datetime:
        value = await self.aio.run(self.ib.reqCurrentTimeAsync)
        if not isinstance(value, dt.datetime):
            raise ConnectionError(f"unexpected reqCurrentTime answer {value!r}")
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)

    def notice(self, code: int, text: str, request_id: int) -> GatewayNotice:
        return GatewayNotice(session_id=self.session_id, code=code, text=text,
                             kind=classify(code, text), request_id=request_id,
                             ts=self.clock.now_utc_any_thread())


@dataclass(frozen=True)
class IbAsyncTransport:
    host: str
    port: int
    connect_timeout: float = CONNECT_TIMEOUT
    liveness_interval: float = 2.0     # reqCurrentTime at most every 2 s (IB ignores >1/s)
    liveness_deadline: float = 4.0

    async def port_open(self) -> bool:
        try:
            with trio.fail_after(PORT_PROBE_TIMEOUT):
                stream = await trio.open_tcp_stream(self.host, self.port)
            await stream.aclose()
            return True
        except (OSError, trio.TooSlowError):
            return False

    @contextlib.asynccontextmanager
    async def open_session(self, params: SessionParams) -> AsyncIterator[IbAsyncSession]:
        async with open_asyncio_loop(f"ib-session-{params.session_id}") as aio:
            ib, info = await _connect(aio, self.host, self.port, params, self.connect_timeout)
            session = IbAsyncSession(info=info, clock=params.clock, journal=params.journal,
                                     actor=params.actor, breakers=params.breakers, aio=aio,
                                     ib=ib)
            try:
                await aio.call(_attach_events, session, params.events)
                yield session
            finally:
                session.closing = True
                with trio.CancelScope(shield=True):
                    await _disconnect(aio, ib)


def _new_ib() -> Any:
    from ib_async import IB

    ib = IB()
    ib.RaiseRequestErrors = True     # errors end requests as RequestError, not as empty data
    return ib


async def _connect(aio: AsyncioLoop, host: str, port: int, params: SessionParams,
                   timeout: float) -> tuple[Any, SessionInfo]:
    """Connect a fresh IB() on `aio`; ConnectFailed says why it could not."""
    ib = await aio.call(_new_ib)
    codes: list[int] = []
    in_use = trio.Event()

    def on_error(req_id: int, code: int, text: str, contract: object) -> None:
        codes.append(code)
        if code == CLIENT_ID_IN_USE:
            aio.to_trio(in_use.set)

    await aio.call(lambda: ib.errorEvent.connect(on_error))
    handshake: list[bool] = []
    await aio.call(_note_handshake, ib, handshake)
    started = time.perf_counter()
    failure: list[BaseException] = []

    async def attempt(cancel_scope: trio.CancelScope) -> None:
        try:
            await aio.run(ib.connectAsync, host, port, params.client_id, timeout,
                          params.readonly)
        except Exception as exc:
            failure.append(exc)
        finally:
            cancel_scope.cancel()

    async def watch_326(cancel_scope: trio.CancelScope) -> None:
        # ib_async only reports a 326 as a TimeoutError after the whole connect timeout
        await in_use.wait()
        cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(attempt, nursery.cancel_scope)
        nursery.start_soon(watch_326, nursery.cancel_scope)
    if in_use.is_set():
        await _disconnect(aio, ib)
        raise ConnectFailed("client_id_in_use", f"client id {params.client_id} in use (326)")
    if failure:
        raise _connect_failure(failure[0], timeout, bool(handshake))
    connect_ms = (time.perf_counter() - started) * 1000

    def describe() -> tuple[tuple[str, ...], int]:
        ib.errorEvent.disconnect(on_error)
        return tuple(ib.managedAccounts()), int(ib.client.serverVersion())

    accounts, server_version = await aio.call(describe)
    return ib, SessionInfo(session_id=params.session_id, client_id=params.client_id,
                           accounts=accounts, server_version=server_version,
                           readonly=params.readonly, connect_ms=round(connect_ms, 1))


def _note_handshake(ib: Any, handshake: list[bool]) -> None:
    """On the loop thread: remember when the API handshake completes (ib_async calls the
    wrapper's connectAck then), so a timeout can say whether the handshake or the session
    start (login, accounts, next order id) is what hangs."""
    ack = ib.wrapper.connectAck

    def noted() -> None:
        handshake.append(True)
        ack()

    ib.wrapper.connectAck = noted


def _connect_failure(exc: BaseException, timeout: float, handshake_done: bool
                     ) -> ConnectFailed:
    """ib_async's exceptions, in the order that matters (they are all OSErrors)."""
    if isinstance(exc, ConnectionRefusedError):
        return ConnectFailed("refused", str(exc))
    if isinstance(exc, TimeoutError):
        if handshake_done:
            return ConnectFailed("timeout", f"API handshake done, but no session start "
                                 f"(accounts, next order id) within {timeout:g}s",
                                 handshake_done=True)
        return ConnectFailed("timeout", f"no answer to the API handshake within {timeout:g}s",
                             handshake_done=False)
    if isinstance(exc, ConnectionError):
        return ConnectFailed("broken", str(exc))
    if isinstance(exc, OSError):
        return ConnectFailed("refused", str(exc))
    return ConnectFailed("error", f"{type(exc).__name__}: {exc}")


async def _disconnect(aio: AsyncioLoop, ib: Any) -> None:
    """Close the socket and let the loop run until the transport is really closed.

    A disconnect that only *starts* closing leaves the Gateway holding our client id for a
    moment, and the next connect gets 326 (ib_insync #376).
    """
    async def close() -> None:
        ib.disconnect()
        for _ in range(3):
            await asyncio.sleep(0)

    with contextlib.suppress(LoopClosed, Exception):
        await aio.run(close)


def _attach_events(session: IbAsyncSession, events: SessionEvents) -> None:
    """On the loop thread: ib_async events become trio calls (never trio state touched here)."""
    ib, aio = session.ib, session.aio

    def on_disconnected() -> None:
        aio.to_trio(session.mark_lost, "the Gateway closed the connection")

    def on_data(_data: bytes) -> None:
        session.received_at = time.monotonic()

    def on_error(req_id: int, code: int, text: str, contract: object) -> None:
        aio.to_trio(events.on_notice, session.notice(code, text, req_id))

    ib.disconnectedEvent += on_disconnected
    ib.client.conn.hasData += on_data       # ib_async's Connection event: every socket read
    session.received_at = time.monotonic()
    ib.errorEvent += on_error
    ib_orders.attach_order_events(session, events)
