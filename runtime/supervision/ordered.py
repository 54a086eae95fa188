"""An ordered, never-dropping `send_nowait` for synchronous code on a BACKPRESSURE channel.

Actors often decide inside synchronous code (a ledger commit, a risk evaluation) and must not
block there, yet the message must neither be dropped (order events never are) nor overtaken by
a later one. Spawning a task per message that waits for room reorders them: two waiting tasks
wake in any order. Here what does not fit waits in one FIFO that ONE pump task drains, and
every later message queues behind it, so the receiver sees exactly the order of the calls.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, NoReturn, TypeVar

import trio

T = TypeVar("T")


class _Ordered(Generic[T]):
    """Deliver now when nothing waits and there is room; else queue behind what waits."""

    def __init__(self, channel: trio.MemorySendChannel[T]) -> None:
        self._channel = channel
        self._backlog: deque[T] = deque()
        self.closed = False

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    def _send_or_queue(self, msg: T) -> bool:
        """True when `msg` was queued (someone must drain the backlog)."""
        if self.closed:
            return False
        if not self._backlog:
            try:
                self._channel.send_nowait(msg)
                return False
            except trio.WouldBlock:
                pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.closed = True
                return False
        self._backlog.append(msg)
        return True

    async def _drain(self) -> None:
        """Send the backlog in order until it is empty (or the receiver is gone)."""
        while self._backlog:
            try:
                await self._channel.send(self._backlog[0])
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.closed = True
                self._backlog.clear()
                return
            self._backlog.popleft()


class OrderedSender(_Ordered[T]):
    """For an actor: one pump task, started with the actor, drains the backlog."""

    def __init__(self, channel: trio.MemorySendChannel[T]) -> None:
        super().__init__(channel)
        self._wake = trio.Event()

    def send_nowait(self, msg: T) -> None:
        if self._send_or_queue(msg):
            self._wake.set()

    async def pump(self) -> NoReturn:
        """Run for the sender's life (one task): drains the backlog in order."""
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            await self._drain()


class OrderedDelivery(_Ordered[T]):
    """The same guarantee for code that has no task of its own to run a pump in (callbacks
    handed over from another thread, such as ib_async's order events): ONE drainer task exists
    only while the backlog is non-empty, and a message that arrives while it works queues
    behind the others, so the order of the calls is the order of delivery; a task per message
    (the old fallback) let two waiting sends swap. Call only from trio (single-threaded, so
    `_draining` needs no lock)."""

    def __init__(self, channel: trio.MemorySendChannel[T]) -> None:
        super().__init__(channel)
        self._draining = False

    def deliver(self, msg: T) -> None:
        if self._send_or_queue(msg) and not self._draining:
            self._draining = True
            trio.lowlevel.spawn_system_task(self._drain_once)

    async def _drain_once(self) -> None:
        try:
            await self._drain()
        finally:
            self._draining = False
