"""Writer threads get their work when the event loop goes idle, not in the middle of a burst.

The journal and the human log are written by threads (journal.py, logs.py). A line put into a
thread's queue used to wake the thread at once; the woken thread then wants the GIL, and the
event loop hands it over at its next poll (every scheduler batch releases the GIL around
`epoll_wait`) and waits to get it back: a few context switches per batch for as long as the
writer works. On a 2-core machine that landed on the bar being decided: an entry bar (which
journals its signal) took tens of microseconds longer, and so did the bars after it
(`python -m tests.system.brain.bench_actors`, docs/BENCHMARKS.md).

With `open_idle_handoff` active, a line made on the trio thread is held and its writer is not
woken: the `IdleHandOff` instrument rings the bell when the loop is about to sleep (the burst is
over, nothing is runnable) or, for a loop that never sleeps, once the oldest held line is
`MAX_HOLD_S` old. The journal holds the event itself, not its encoded line: the bell's wake-up
encodes the burst and calls the taps then (journal.py), so an entry signal's line no longer
costs its bar the encoding's 30-50 µs of cold code. Lines from other threads (ib_async's asyncio
thread logs) ring at once, as before. A kill -9 loses what was not yet handed to the OS either
way; the window grows from the writer's pause to the end of the current burst (normally well
under a millisecond).

Not on a virtual clock (trio.testing.MockClock): there the loop may never sleep in real time,
and tests read the files while virtual minutes pass in real microseconds. And not hostage to the
trio thread: if it hangs in synchronous code, a safety-net thread hands over what has been held
for SAFETY_NET_S, so the lines that led up to the hang are on disk.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import trio

from runtime.infra.clock import on_virtual_clock
from runtime.infra.thread_names import name_os_thread

MAX_HOLD_S = 0.02
"""Real seconds a line may wait for an idle loop before its writer is woken anyway."""

SAFETY_NET_S = 1.0
"""If the trio thread never runs its loop again (stuck in synchronous code: a hang), the
instrument never rings; a small thread looks every this many seconds and hands over what has
been held that long, so the last lines before a hang still reach the disk. Its only cost is one
wake-up a second (it takes the GIL for a few microseconds)."""


class DeferredWake:
    """A writer thread's wake-up that one thread (the trio thread) may hold until it is idle."""

    __slots__ = ("_hold_on", "_wake", "held_since")

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._hold_on: int | None = None      # the thread whose rings are held (trio's)
        self.held_since: float | None = None  # monotonic time of the first held ring

    @property
    def holding(self) -> bool:
        return self._hold_on is not None

    @property
    def pending(self) -> bool:
        """Whether a held ring waits for the holding thread's next idle."""
        return self.held_since is not None

    def holds_here(self) -> bool:
        """Whether rings made on the calling thread are held."""
        return self._hold_on == threading.get_ident()

    def ring(self) -> None:
        """Work was queued: wake the writer now, or at the holding thread's next idle."""
        if self.holds_here():
            self.hold_again()
            return
        self._wake()

    def hold_again(self) -> None:
        """Hold a ring, from any thread (`ring` on the holding thread; elsewhere, a wake-up
        whose work the holding thread must finish, such as the journal's taps of lines the
        safety net wrote): the wake-up runs at the holding thread's next idle."""
        if self.held_since is None:
            self.held_since = time.monotonic()

    def release(self) -> None:
        """Wake the writer if a ring is held."""
        if self.held_since is not None:
            self.held_since = None
            self._wake()

    def release_if_held_for(self, seconds: float) -> None:
        """Wake the writer if a ring has been held at least `seconds`."""
        since = self.held_since
        if since is not None and time.monotonic() - since >= seconds:
            self.release()

    def hold_on(self, ident: int | None) -> None:
        """Hold rings made on thread `ident` (None: hold nothing, and wake for what was held)."""
        self._hold_on = ident
        if ident is None:
            self.release()


class IdleHandOff(trio.abc.Instrument):
    """Rings the held bells when the loop is about to sleep, or when a hold grew too old."""

    def __init__(self, bells: Sequence[DeferredWake], max_hold_s: float = MAX_HOLD_S) -> None:
        self.bells = tuple(bells)
        self.max_hold_s = max_hold_s

    def before_io_wait(self, timeout: float) -> None:
        for bell in self.bells:
            if timeout > 0:                  # about to sleep: the burst is over
                bell.release()
            else:
                bell.release_if_held_for(self.max_hold_s)


def _safety_net(bells: Sequence[DeferredWake], stop: threading.Event, every: float) -> None:
    name_os_thread()
    while not stop.wait(every):
        for bell in bells:
            bell.release_if_held_for(every)


def _in_trio_run() -> bool:
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        return False
    return True


@contextlib.contextmanager
def open_idle_handoff(bells: Sequence[DeferredWake], max_hold_s: float = MAX_HOLD_S,
                      safety_net_s: float = SAFETY_NET_S) -> Iterator[bool]:
    """Hold the bells' rings made on this thread until the trio loop is idle; yields whether it
    does (False outside a trio run or on a virtual clock, where it changes nothing)."""
    if not bells or not _in_trio_run() or on_virtual_clock():
        yield False
        return
    instrument = IdleHandOff(bells, max_hold_s)
    ident = threading.get_ident()
    stop = threading.Event()
    net = threading.Thread(target=_safety_net, args=(tuple(bells), stop, safety_net_s),
                           name="idle-handoff-net", daemon=True)
    for bell in bells:
        bell.hold_on(ident)
    trio.lowlevel.add_instrument(instrument)
    net.start()
    try:
        yield True
    finally:
        stop.set()
        for bell in bells:
            bell.hold_on(None)
        with contextlib.suppress(KeyError, RuntimeError):   # removed already, or trio is gone
            trio.lowlevel.remove_instrument(instrument)
        net.join(1.0)
