"""How actors talk to GatewayLink: a request on the `link_requests` channel, one reply back.

A request never waits forever: it fails fast with LinkUnavailable while no session is up (the
caller decides whether to wait for `link_state` and retry), and with RequestTimeout after its
deadline. Replies carry the session they came from, so a reply from a dead session is never
mistaken for one from the current session.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

import trio

from messages.base import Message, Request
from messages.link import CancelSubscription, LinkState
from runtime.gateway import error_policy
from runtime.supervision.channels import Latest

_ids = itertools.count(1)
R = TypeVar("R")


class LinkError(RuntimeError):
    """A request to the Gateway did not succeed."""


class LinkUnavailable(LinkError):
    """No Gateway session is up (or it went down while the request was in flight)."""


class RequestTimeout(LinkError):
    pass


class RequestFailed(LinkError):
    """The Gateway (or the breaker) refused or failed the request; `code` is IB's if known."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code

    @property
    def pacing(self) -> bool:
        """IB's pacing limits (162 "pacing violation", 100, 101, 322, 420): the error policy."""
        return error_policy.is_pacing(self.code, str(self))


class RequestPaused(RequestFailed):
    """Not sent: the circuit breaker for this kind of request is open. Wait `retry_after`
    seconds; this says nothing about the link, which is up."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Reply:
    ok: bool
    session_id: int
    value: Any = None
    error: str | None = None
    code: int | None = None
    unavailable: bool = False
    subscription_id: int | None = None
    retry_after: float | None = None     # the breaker refused it: try again after this long


@dataclass(eq=False)
class Envelope:
    """A request in flight. Not a message: it carries channel ends and lives in-process only."""

    request: Message
    reply: trio.MemorySendChannel[Reply]
    stream: trio.MemorySendChannel[Message] | None = None
    deadline: float | None = None     # trio time after which the caller no longer waits
    request_id: int = field(default_factory=lambda: next(_ids))

    def answer_nowait(self, reply: Reply) -> None:
        with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError,
                                 trio.ClosedResourceError):
            self.reply.send_nowait(reply)


class LinkClient:
    def __init__(self, requests: trio.MemorySendChannel[Envelope],
                 link_state: Latest[LinkState]) -> None:
        self._requests = requests
        self._state = link_state

    @property
    def state(self) -> LinkState:
        return self._state.value

    @overload
    async def call(self, request: Request[R], *, timeout: float = 15.0) -> R: ...

    @overload
    async def call(self, request: Message, *, timeout: float = 15.0) -> Any: ...

    async def call(self, request: Message, *, timeout: float = 15.0) -> Any:
        """One request, one reply value: typed by the request when it is a `Request[R]`
        (the order path's requests that are plain messages still return Any)."""
        reply = await self._send(request, None, timeout)
        return reply.value

    @overload
    def open_stream(self, request: Request[R], *, timeout: float = 30.0,
                    buffer: float = math.inf,
                    ) -> contextlib.AbstractAsyncContextManager[
                        tuple[R, trio.MemoryReceiveChannel[Message]]]: ...

    @overload
    def open_stream(self, request: Message, *, timeout: float = 30.0,
                    buffer: float = math.inf,
                    ) -> contextlib.AbstractAsyncContextManager[
                        tuple[Any, trio.MemoryReceiveChannel[Message]]]: ...

    def open_stream(self, request: Message, *, timeout: float = 30.0,
                    buffer: float = math.inf,
                    ) -> contextlib.AbstractAsyncContextManager[
                        tuple[Any, trio.MemoryReceiveChannel[Message]]]:
        """Subscribe; yields (initial value, stream). Leaving the block cancels it at IB."""
        return self._open_stream(request, timeout, buffer)

    @contextlib.asynccontextmanager
    async def _open_stream(self, request: Message, timeout: float, buffer: float,
                           ) -> AsyncIterator[tuple[Any, trio.MemoryReceiveChannel[Message]]]:
        send, receive = trio.open_memory_channel[Message](buffer)
        reply = await self._send(request, send, timeout)
        try:
            async with receive:
                yield reply.value, receive
        finally:
            if reply.subscription_id is not None and self.state.session_id == reply.session_id:
                with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError,
                                         trio.ClosedResourceError):
                    self._requests.send_nowait(Envelope(
                        CancelSubscription(subscription_id=reply.subscription_id),
                        trio.open_memory_channel[Reply](1)[0]))

    async def _send(self, request: Message, stream: trio.MemorySendChannel[Message] | None,
                    timeout: float) -> Reply:
        if not self.state.up:
            raise LinkUnavailable(f"no Gateway session ({self.state.status}): "
                                  f"{type(request).__name__} not sent")
        send, receive = trio.open_memory_channel[Reply](1)
        env = Envelope(request, send, stream, deadline=trio.current_time() + timeout)
        with trio.move_on_after(timeout) as scope:
            await self._requests.send(env)
            reply = await receive.receive()
        if scope.cancelled_caught:
            raise RequestTimeout(f"{type(request).__name__}: no reply within {timeout:g}s")
        if reply.unavailable:
            raise LinkUnavailable(reply.error or "link went down")
        if not reply.ok and reply.retry_after is not None:
            raise RequestPaused(reply.error or "paused by the circuit breaker",
                                reply.retry_after)
        if not reply.ok:
            raise RequestFailed(reply.error or "request failed", reply.code)
        return reply
