"""One ib_async session on its private asyncio loop: connect, observe, probe, request.

Everything here that touches an ib_async object runs on the session's loop thread (through the
bridge); what comes back to trio is plain data or immutable messages. A session never outlives
its GatewayLink incarnation: the next incarnation builds a new loop, a new `IB()`, a new session.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio

from messages.link import GatewayNotice
from runtime.aio_bridge import AsyncioLoop, LoopClosed
from runtime.breaker import Breaker, BreakerOpen
from runtime.clock import Clock
from runtime.ib_codes import CLIENT_ID_IN_USE, classify
from runtime.logs import Journal

T = TypeVar("T")
log = logging.getLogger("runtime.ib_session")

CONNECT_TIMEOUT = 5.0
"""ib_async applies it separately to TCP, the handshake and each startup request."""


class ConnectFailed(RuntimeError):
    """The Gateway did not give us an API session. `kind` says how it refused."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind      # refused | timeout | client_id_in_use | broken | error
        self.detail = detail


class SessionLost(RuntimeError):
    """The established session ended (peer closed, hang detected, port reset)."""


@dataclass
class SessionInfo:
    session_id: int
    client_id: int
    accounts: tuple[str, ...]
    server_version: int
    readonly: bool
    connect_ms: float


def _new_ib() -> Any:
    from ib_async import IB

    ib = IB()
    ib.RaiseRequestErrors = True     # errors end requests as RequestError, not as empty data
    return ib


async def connect(aio: AsyncioLoop, *, host: str, port: int, client_id: int, readonly: bool,
                  session_id: int, timeout: float = CONNECT_TIMEOUT,
                  ) -> tuple[Any, SessionInfo]:
    """Connect a fresh IB() on `aio`; ConnectFailed says why it could not."""
    ib = await aio.call(_new_ib)
    codes: list[int] = []
    in_use = trio.Event()

    def on_error(req_id: int, code: int, text: str, contract: object) -> None:
        codes.append(code)
        if code == CLIENT_ID_IN_USE:
            aio.to_trio(in_use.set)

    await aio.call(lambda: ib.errorEvent.connect(on_error))
    started = time.perf_counter()
    failure: list[BaseException] = []

    async def attempt(cancel_scope: trio.CancelScope) -> None:
        try:
            await aio.run(ib.connectAsync, host, port, client_id, timeout, readonly)
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
        await disconnect(aio, ib)
        raise ConnectFailed("client_id_in_use", f"client id {client_id} in use (326)")
    try:
        if failure:
            raise failure[0]
    except ConnectionRefusedError as exc:
        raise ConnectFailed("refused", str(exc)) from None
    except TimeoutError as exc:
        if CLIENT_ID_IN_USE in codes:
            raise ConnectFailed("client_id_in_use", f"client id {client_id} in use") from None
        raise ConnectFailed("timeout", "no API handshake/login within "
                            f"{timeout:g}s ({exc or 'TimeoutError'})") from None
    except ConnectionError as exc:
        raise ConnectFailed("broken", str(exc)) from None
    except OSError as exc:
        raise ConnectFailed("refused", str(exc)) from None
    connect_ms = (time.perf_counter() - started) * 1000

    def describe() -> tuple[tuple[str, ...], int]:
        ib.errorEvent.disconnect(on_error)
        return tuple(ib.managedAccounts()), int(ib.client.serverVersion())

    accounts, server_version = await aio.call(describe)
    return ib, SessionInfo(session_id=session_id, client_id=client_id, accounts=accounts,
                           server_version=server_version, readonly=readonly,
                           connect_ms=round(connect_ms, 1))


async def disconnect(aio: AsyncioLoop, ib: Any) -> None:
    """Close the socket and let the loop run until the transport is really closed.

    A disconnect that only *starts* closing leaves the Gateway holding our client id for a
    moment, and the next connect gets 326 (ib_insync #376).
    """
    async def close() -> None:
        import asyncio

        ib.disconnect()
        for _ in range(3):
            await asyncio.sleep(0)

    with contextlib.suppress(LoopClosed, Exception):
        await aio.run(close)


@dataclass
class IbSession:
    """A live session: the IB object, its loop, and the bookkeeping around requests."""

    aio: AsyncioLoop
    ib: Any
    info: SessionInfo
    clock: Clock
    journal: Journal
    actor: str
    breakers: dict[str, Breaker]
    lost: trio.Event = field(default_factory=trio.Event)
    lost_reason: str = ""
    lost_code: int | None = None
    closing: bool = False        # we are closing it ourselves: its disconnect is not a loss

    @property
    def session_id(self) -> int:
        return self.info.session_id

    def mark_lost(self, reason: str, code: int | None = None) -> None:
        if not self.lost.is_set() and not self.closing:
            self.lost_reason, self.lost_code = reason, code
            self.lost.set()

    def breaker(self, kind: str) -> Breaker:
        b = self.breakers.get(kind)
        if b is None:
            b = self.breakers[kind] = Breaker(kind, trio.current_time)
        return b

    async def request(self, kind: str, fn: Callable[[], Awaitable[T]], *,
                      timeout: float) -> T:
        """Run one Gateway request: breaker-gated, bounded, timed and journaled."""
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
                result = await self.aio.run(fn)
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
            outcome = "pacing" if _is_pacing(exc) else "error"
            if outcome == "pacing":
                breaker.record_failure()
            else:
                breaker.record_neutral()
            raise
        finally:
            self.journal.emit("request", self.actor, kind=kind,
                              duration_ms=round((trio.current_time() - started) * 1000, 2),
                              outcome=outcome, session=self.session_id)

    def notice(self, code: int, text: str, request_id: int) -> GatewayNotice:
        return GatewayNotice(session_id=self.session_id, code=code, text=text,
                             kind=classify(code, text), request_id=request_id,
                             ts=self.clock.now_utc_any_thread())


def _is_pacing(exc: BaseException) -> bool:
    code = getattr(exc, "code", None)
    text = str(exc).lower()
    return code in (162, 322, 420) and ("pacing" in text or code != 162)
