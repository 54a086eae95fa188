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


class OrderedSender(Generic[T]):
    def __init__(self, channel: trio.MemorySendChannel[T]) -> None:
        self._channel = channel
        self._backlog: deque[T] = deque()
        self._wake = trio.Event()
        self.closed = False

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    def send_nowait(self, msg: T) -> None:
        """Deliver now if there is room and nothing waits; else queue behind what waits."""
        if self.closed:
            return
        if not self._backlog:
            try:
                self._channel.send_nowait(msg)
                return
            except trio.WouldBlock:
                pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.closed = True
                return
        self._backlog.append(msg)
        self._wake.set()

    async def pump(self) -> NoReturn:
        """Run for the sender's life (one task): drains the backlog in order."""
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            while self._backlog:
                try:
                    await self._channel.send(self._backlog[0])
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self.closed = True
                    self._backlog.clear()
                    break
                self._backlog.popleft()


class OrderedDelivery(Generic[T]):
    """The same guarantee for code that has no task of its own to run a pump in (callbacks
    handed over from another thread, such as ib_async's order events): what does not fit waits
    in one FIFO, and ONE drainer task exists only while that FIFO is non-empty. A message that
    arrives while the drainer works queues behind the others, so the order of the calls is the
    order of delivery; a task per message (the old fallback) let two waiting sends swap.
    Call only from trio (single-threaded, so `draining` needs no lock)."""

    def __init__(self, channel: trio.MemorySendChannel[T]) -> None:
        self._channel = channel
        self._backlog: deque[T] = deque()
        self._draining = False
        self.closed = False

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    def deliver(self, msg: T) -> None:
        if self.closed:
            return
        if not self._backlog:
            try:
                self._channel.send_nowait(msg)
                return
            except trio.WouldBlock:
                pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.closed = True
                return
        self._backlog.append(msg)
        if not self._draining:
            self._draining = True
            trio.lowlevel.spawn_system_task(self._drain)

    async def _drain(self) -> None:
        try:
            while self._backlog:
                try:
                    await self._channel.send(self._backlog[0])
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self.closed = True
                    self._backlog.clear()
                    return
                self._backlog.popleft()
        finally:
            self._draining = False
