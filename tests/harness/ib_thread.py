"""ib_async under trio tests: a dedicated thread running its own asyncio loop.

The trio test submits work with `asyncio.run_coroutine_threadsafe` and waits for it in a worker
thread (`trio.to_thread.run_sync`), bounded by `trio.fail_after`. Every ib_async call, even the
synchronous ones (`reqMktData`, event `+=`), runs on the loop thread, as ib_async expects.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import trio
from ib_async import IB


class AsyncioThread:
    def __init__(self) -> None:
        self.clients: list[IB] = []
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="ib-asyncio", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def run(self, fn: Callable[[], Any], timeout: float = 15.0) -> Any:
        """Run `fn()` on the loop thread (awaiting it if it returns a coroutine or future).

        Results are `Any`: ib_async is untyped, and a precise signature would not survive
        lambdas that return either a value or an awaitable.
        """

        async def call() -> Any:
            result = fn()
            # await coroutines and futures only: eventkit Events are awaitable too (they wait
            # for the next emit), and `event.connect(...)` returns the event
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                result = await result
            return result

        future = asyncio.run_coroutine_threadsafe(call(), self.loop)
        try:
            with trio.fail_after(timeout):
                return await trio.to_thread.run_sync(future.result, abandon_on_cancel=True)
        except BaseException:
            future.cancel()
            raise

    def close(self) -> None:
        async def cancel_leftovers() -> None:
            for ib in self.clients:
                try:
                    ib.disconnect()
                except Exception:           # half-open leftovers of a failed connect
                    ib.client.disconnect()  # type: ignore[no-untyped-call]
            me = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not me]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(cancel_leftovers(), self.loop).result(5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.close()


class IBClient:
    """One ib_async `IB` plus what its events reported (read from the trio side)."""

    def __init__(self, thread: AsyncioThread) -> None:
        self.thread = thread
        self.ib: IB | None = None
        self.errors: list[tuple[int, int, str]] = []
        self.disconnects = 0

    async def create(self) -> IB:
        def make() -> IB:
            ib = IB()
            ib.RaiseRequestErrors = False
            ib.errorEvent += lambda req_id, code, text, contract=None: self.errors.append(
                (req_id, code, text))
            ib.disconnectedEvent += self._on_disconnect
            self.thread.clients.append(ib)
            return ib

        ib: IB = await self.thread.run(make)
        self.ib = ib
        return ib

    def _on_disconnect(self) -> None:
        self.disconnects += 1

    async def connect(self, port: int, client_id: int = 1, *, timeout: float = 5.0,
                      readonly: bool = False) -> IB:
        ib = self.ib if self.ib is not None else await self.create()
        await self.thread.run(lambda: ib.connectAsync("127.0.0.1", port, clientId=client_id,
                                                      timeout=timeout, readonly=readonly),
                              timeout=timeout * 7 + 5)
        return ib

    async def call(self, fn: Callable[[IB], Any], timeout: float = 15.0) -> Any:
        ib = self.ib
        assert ib is not None, "create() or connect() first"
        return await self.thread.run(lambda: fn(ib), timeout)

    def error_codes(self) -> list[int]:
        return [code for _, code, _ in self.errors]

    async def disconnect(self) -> None:
        ib = self.ib
        if ib is not None:
            await self.thread.run(ib.disconnect, 5.0)
