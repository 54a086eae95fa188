"""StateStore.save_async: the fsync off the event loop, the state still durable on return, and
saves through one store landing in the order they were made."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.lowlevel

from runtime.infra.state_store import StateStore


async def test_save_async_writes_what_save_writes(tmp_path: Path) -> None:
    a, b = StateStore(tmp_path / "a"), StateStore(tmp_path / "b")
    state = {"day": "2026-11-20", "entries": 2, "pnl": -12.5}
    a.save("risk", state)
    await b.save_async("risk", state)
    assert b.load("risk") == state
    written = [(tmp_path / d / "risk.json").read_bytes() for d in ("a", "b")]
    assert written[0] == written[1]


class _SlowDisk:
    """The real write, held until the test lets it go (a disk stalled in fsync)."""

    def __init__(self, store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        real = store._write_file

        def write(name: str, data: bytes) -> None:
            self.started.set()
            self.release.wait(10)
            real(name, data)

        monkeypatch.setattr(store, "_write_file", write)


async def test_the_event_loop_runs_while_the_disk_is_slow(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = StateStore(tmp_path)
    disk = _SlowDisk(store, monkeypatch)
    ticks = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.save_async, "decision", {"strategy": "A"})
        await trio.to_thread.run_sync(disk.started.wait, 10)
        for _ in range(5):                 # other actors keep running meanwhile
            await trio.lowlevel.checkpoint()
            ticks += 1
        assert store.load("decision") is None      # not durable yet, and nobody said it was
        disk.release.set()
    assert ticks == 5
    assert store.load("decision") == {"strategy": "A"}


async def test_saves_through_one_store_land_in_the_order_they_were_made(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = StateStore(tmp_path)
    disk = _SlowDisk(store, monkeypatch)
    state: dict[str, Any] = {"n": 1}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.save_async, "ledger", dict(state))
        await trio.to_thread.run_sync(disk.started.wait, 10)
        state["n"] = 2
        nursery.start_soon(store.save_async, "ledger", dict(state))
        await trio.sleep(0.05)
        disk.release.set()
    assert store.load("ledger") == {"n": 2}


async def test_a_save_made_while_an_older_one_waits_in_its_thread_is_not_undone_by_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The selector saves on its own task when an entry needs its memory on disk, while its
    writer's older save may still be in a worker thread: the older one must not land last."""
    store = StateStore(tmp_path)
    started, release = threading.Event(), threading.Event()
    main = threading.current_thread()
    real = store._write

    def late_thread(name: str, data: bytes, order: int) -> None:
        if threading.current_thread() is not main:     # the worker: stalls before writing
            started.set()
            release.wait(10)
        real(name, data, order)

    monkeypatch.setattr(store, "_write", late_thread)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.save_async, "selection", {"pivots": 1})
        await trio.to_thread.run_sync(started.wait, 10)
        store.save("selection", {"pivots": 2})          # later in call order, lands first
        release.set()
    assert store.load("selection") == {"pivots": 2}
