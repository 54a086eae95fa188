"""A private asyncio event loop on its own thread, owned by one trio task.

ib_async is asyncio through and through. Rather than patch asyncio into trio (trio-asyncio does
not import on Python 3.14) or run trio as a guest, each GatewayLink incarnation opens one of
these: a fresh thread, a fresh loop, a fresh `IB()`. Nothing can leak from a dead Gateway
session into the next, and trio's structured cancellation holds at the boundary:

  * `run(fn, *args)` runs `fn(*args)` as an asyncio task and waits for it from trio. If the
    trio side is cancelled, the asyncio task is cancelled and *awaited* (shielded, bounded)
    before the cancellation continues, so no asyncio work outlives the trio scope.
  * `call(fn, *args)` runs a plain function on the loop thread (ib_async objects are not
    thread-safe: every touch happens there) and returns its result.
  * `to_trio(fn, *args)` is for ib_async event handlers on the loop thread: it schedules `fn` in
    trio. It never raises (eventkit swallows handler exceptions, so a failure there would be
    silent); a finished trio run makes it a no-op. Calls made in one turn of the asyncio loop
    (ib_async decodes every message of a socket read in one turn: four symbols' bar updates,
    a fill and its status) reach trio as one batch, in order: one wake-up of the trio thread
    instead of one per event. The batch goes out at the end of the turn (`call_soon`), before
    any request completion that the same turn caused, so the order trio sees is unchanged.
  * leaving the context cancels every remaining asyncio task, waits for them, closes the loop
    and joins the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import trio

from runtime.infra.thread_names import name_os_thread

T = TypeVar("T")
log = logging.getLogger("runtime.gateway.aio_bridge")

CANCEL_GRACE = 10.0
"""How long a cancelled asyncio task may take to finish before we stop waiting (and say so)."""


class LoopClosed(RuntimeError):
    """The asyncio side went away (thread stopped) while trio was waiting on it."""


class AsyncioLoop:
    """Handle to the private loop. Only valid inside `open_asyncio_loop`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread,
                 token: trio.lowlevel.TrioToken) -> None:
        self.loop = loop
        self.thread = thread
        self._token = token
        self.closed = False
        self._batch: list[tuple[Callable[..., object], tuple[Any, ...]]] = []
        self.handoffs = 0      # batches sent to trio (for the idle-cost benchmark and tests)

    # -- trio -> asyncio -------------------------------------------------------------------
    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run the coroutine function `fn(*args)` on the loop; trio-cancellable."""
        done = trio.Event()
        box: dict[str, asyncio.Task[T]] = {}
        token = trio.lowlevel.current_trio_token()

        def start() -> None:
            async def main() -> T:
                return await fn(*args)

            task = self.loop.create_task(main())
            box["task"] = task
            task.add_done_callback(lambda _t: _set_from_thread(token, done))

        self._submit(start)
        try:
            await done.wait()
        except BaseException:
            def cancel() -> None:
                task = box.get("task")
                if task is not None:
                    task.cancel()
            with contextlib.suppress(LoopClosed):
                self._submit(cancel)
            with trio.CancelScope(shield=True), trio.move_on_after(CANCEL_GRACE) as waited:
                await done.wait()
            if waited.cancelled_caught:
                log.error("asyncio task %s did not finish within %.0fs of its cancellation",
                          getattr(fn, "__qualname__", fn), CANCEL_GRACE)
            raise
        task = box["task"]
        if task.cancelled():
            raise LoopClosed("the asyncio task was cancelled by its loop (shutting down)")
        return task.result()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run the plain function `fn(*args)` on the loop thread and return its result."""

        async def wrapper() -> T:
            return fn(*args)

        return await self.run(wrapper)

    def call_nowait(self, fn: Callable[..., object], *args: Any) -> None:
        """Fire and forget onto the loop thread (e.g. cancelling a market data line)."""
        self._submit(fn, *args)

    def _submit(self, fn: Callable[..., object], *args: Any) -> None:
        if self.closed or self.loop.is_closed():
            raise LoopClosed("the asyncio loop is closed")
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError as exc:       # loop closed between the check and the call
            raise LoopClosed(str(exc)) from exc

    # -- asyncio -> trio -------------------------------------------------------------------
    def to_trio(self, fn: Callable[..., object], *args: Any) -> None:
        """From the loop thread: run `fn(*args)` soon in trio, in order. Never raises."""
        self._batch.append((fn, args))
        if len(self._batch) == 1:
            try:
                self.loop.call_soon(self._flush)
            except RuntimeError:          # the loop is closing: hand over at once
                self._flush()

    def _flush(self) -> None:
        """On the loop thread, at the end of a turn: one trio wake-up for the turn's calls."""
        batch, self._batch = self._batch, []
        if not batch:
            return
        self.handoffs += 1
        try:
            self._token.run_sync_soon(_run_batch, batch)
        except trio.RunFinishedError:
            pass


def _run_batch(batch: list[tuple[Callable[..., object], tuple[Any, ...]]]) -> None:
    for fn, args in batch:
        _guarded(fn, args)


def _guarded(fn: Callable[..., object], args: tuple[Any, ...]) -> None:
    """An exception in a run_sync_soon callback would crash trio: log it instead."""
    try:
        fn(*args)
    except Exception:
        log.exception("callback from the asyncio thread failed: %r", fn)


def _set_from_thread(token: trio.lowlevel.TrioToken, event: trio.Event) -> None:
    with contextlib.suppress(trio.RunFinishedError):
        token.run_sync_soon(event.set)


def _thread_main(ready: threading.Event, box: dict[str, asyncio.AbstractEventLoop]) -> None:
    name_os_thread()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    box["loop"] = loop
    ready.set()
    try:
        loop.run_forever()
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


@contextlib.asynccontextmanager
async def open_asyncio_loop(name: str = "asyncio") -> AsyncIterator[AsyncioLoop]:
    """A fresh thread running a fresh asyncio loop, for the duration of the block."""
    ready = threading.Event()
    box: dict[str, asyncio.AbstractEventLoop] = {}
    thread = threading.Thread(target=_thread_main, args=(ready, box), name=name, daemon=True)
    thread.start()
    await trio.to_thread.run_sync(ready.wait)
    handle = AsyncioLoop(box["loop"], thread, trio.lowlevel.current_trio_token())
    try:
        yield handle
    finally:
        handle.closed = True
        with contextlib.suppress(RuntimeError):
            handle.loop.call_soon_threadsafe(handle.loop.stop)
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(thread.join, CANCEL_GRACE)
        if thread.is_alive():
            log.error("asyncio thread %s did not end within %.0fs", name, CANCEL_GRACE)
