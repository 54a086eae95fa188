"""Channels owned by the runtime, each with a declared policy.

The runtime keeps the original ends of every channel for the life of the program and hands each
actor *incarnation* clones (through `Ports`), which that incarnation closes when it ends. So a
consumer never sees end-of-channel because its producer restarted, and a producer never sees a
broken channel because its consumer restarted: the buffer simply waits for the next incarnation.

Policies:
  * BACKPRESSURE: a bounded trio memory channel; a full channel blocks the sender. Order events
    and bars use it: they are never dropped.
  * LATEST: a `trio_util.AsyncValue`; readers see the newest value, intermediate ones may be
    skipped (link state, trading state, the VIX).
  * DROP_OLDEST: never blocks the sender; when full, the oldest droppable item goes and a counter
    grows (alerts: the operator would rather get the newest news; critical ones are never dropped).
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

import trio
from trio_util import AsyncValue

T = TypeVar("T")


class Policy(enum.StrEnum):
    BACKPRESSURE = "backpressure"
    LATEST = "latest"
    DROP_OLDEST = "drop_oldest"


class Channel(Generic[T]):
    """A BACKPRESSURE channel; hand out clones with `Ports`, never the originals."""

    policy = Policy.BACKPRESSURE

    def __init__(self, name: str, capacity: int) -> None:
        if capacity < 1 and capacity != math.inf:
            raise ValueError(f"channel {name}: capacity must be >= 1")
        self.name = name
        self.capacity = capacity
        self._send, self._receive = trio.open_memory_channel[T](capacity)

    def clone_sender(self) -> trio.MemorySendChannel[T]:
        return self._send.clone()

    def clone_receiver(self) -> trio.MemoryReceiveChannel[T]:
        return self._receive.clone()

    def depth(self) -> int:
        return self._send.statistics().current_buffer_used

    def close(self) -> None:
        """End of program only: lets consumers drain and see end-of-channel."""
        self._send.close()
        self._receive.close()


class DropOldest(Generic[T]):
    """A bounded queue whose sender never blocks; `keep(item)` items are never dropped."""

    policy = Policy.DROP_OLDEST

    def __init__(self, name: str, capacity: int,
                 keep: Callable[[T], bool] = lambda item: False) -> None:
        if capacity < 1:
            raise ValueError(f"channel {name}: capacity must be >= 1")
        self.name = name
        self.capacity = capacity
        self._keep = keep
        self._items: deque[T] = deque()
        self._lot = trio.lowlevel.ParkingLot()
        self.dropped = 0

    def send_nowait(self, item: T) -> None:
        """Never blocks and never fails; may drop the oldest droppable item."""
        self._items.append(item)
        if len(self._items) > self.capacity:
            for i, old in enumerate(self._items):
                if not self._keep(old):
                    del self._items[i]
                    self.dropped += 1
                    break
            # if everything buffered must be kept, the queue grows past capacity: by design
        self._lot.unpark()

    def receive_nowait(self) -> T:
        if not self._items:
            raise trio.WouldBlock
        return self._items.popleft()

    async def receive(self) -> T:
        while not self._items:
            await self._lot.park()
        await trio.lowlevel.checkpoint()
        if not self._items:        # another receiver got it first
            return await self.receive()
        return self._items.popleft()

    def __aiter__(self) -> DropOldest[T]:
        return self

    async def __anext__(self) -> T:
        return await self.receive()

    def depth(self) -> int:
        return len(self._items)


class Latest(Generic[T]):
    """A LATEST value with a name (for the tree dump); wraps `trio_util.AsyncValue`."""

    policy = Policy.LATEST

    def __init__(self, name: str, initial: T) -> None:
        self.name = name
        self.value_holder: AsyncValue[T] = AsyncValue(initial)

    @property
    def value(self) -> T:
        value: T = self.value_holder.value
        return value

    def set(self, value: T) -> None:
        self.value_holder.value = value

    async def wait_value(self, predicate: Callable[[T], bool]) -> T:
        result: T = await self.value_holder.wait_value(predicate)
        return result

    async def wait_transition(self) -> tuple[T, T]:
        new, old = await self.value_holder.wait_transition()
        return new, old

    def depth(self) -> int:
        return 0


class Ports:
    """The channel ends of ONE actor incarnation; closing it closes exactly those clones."""

    def __init__(self) -> None:
        self._ends: list[Callable[[], None]] = []

    def sender(self, channel: Channel[T]) -> trio.MemorySendChannel[T]:
        end = channel.clone_sender()
        self._ends.append(end.close)
        return end

    def receiver(self, channel: Channel[T]) -> trio.MemoryReceiveChannel[T]:
        end = channel.clone_receiver()
        self._ends.append(end.close)
        return end

    def close(self) -> None:
        for close in self._ends:
            close()
        self._ends.clear()

    def __enter__(self) -> Ports:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def send_now_or_wait(channel: trio.MemorySendChannel[T], item: T) -> None:
    """Send without yielding when the channel has room, else wait for room.

    `MemorySendChannel.send` always yields to the scheduler, even when the item fits: on the
    bar -> decision path that is one scheduler pass (~10-20 us) per hop for nothing, since the
    sender's next `receive` yields anyway. Backpressure is kept: a full channel still waits.
    """
    try:
        channel.send_nowait(item)
    except trio.WouldBlock:
        await channel.send(item)
