"""Keeps the SQLite trade history (runtime/infra/trade_db.py) level with `logs/trades.jsonl`.

OrderRouter writes a trades.jsonl line right after the journal event of the same fact (a fill,
an order, an intent's outcome) on its own task. A journal listener only sets a flag; this task
then catches the database up from the file in a worker thread. So the order path pays nothing,
and the database is the file's lines by construction (also after a crash: the next sync reads
from the offset committed with the last rows).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import trio
import trio.lowlevel

from runtime.infra.clock import on_virtual_clock
from runtime.infra.trade_db import SyncResult, TradeDb
from runtime.ops.status_view import EventTail

log = logging.getLogger("runtime.ops.trade_history")
T = TypeVar("T")

TRADE_EVENTS = frozenset({"fill", "order_intent", "order_submitted", "intent_done",
                          "order_rejected", "order_status", "daily_summary"})
"""Journal events that come with (or just before) a trades.jsonl line."""
SAFETY_SYNC_S = 60.0
"""Lines without a journal event of their own (a refused decision) are picked up this late."""


async def follow_trades(db: TradeDb, jsonl: Path, events: EventTail) -> None:
    """Sync at start, after trade events, once a minute, and at the end. Runs until cancelled."""
    due = trio.Event()

    def listener(event: dict[str, Any]) -> None:
        if event.get("event") in TRADE_EVENTS:
            due.set()

    events.listeners.append(listener)
    try:
        while True:
            await _sync(db, jsonl)
            with trio.move_on_after(SAFETY_SYNC_S):
                await due.wait()
            due = trio.Event()
            await trio.lowlevel.checkpoint()   # let the writer finish its line
    finally:
        events.listeners.remove(listener)
        with trio.CancelScope(shield=True), trio.move_on_after(5.0):
            await _sync(db, jsonl)


async def off_the_loop(fn: Callable[[], T]) -> T:
    """`fn()` in a worker thread; inline on trio's MockClock, whose autojump would move the
    simulated time on while the thread runs (a simulated day must not drift by thread waits)."""
    if on_virtual_clock():
        return fn()
    return await trio.to_thread.run_sync(fn)


async def _sync(db: TradeDb, jsonl: Path) -> None:
    try:
        result: SyncResult = await off_the_loop(lambda: db.sync(jsonl))
    except Exception as exc:             # the history must never take the server down
        log.error("trade history %s not updated from %s: %s", db.path, jsonl, exc)
        return
    if result.skipped:
        log.warning("trade history: %d unreadable line(s) in %s skipped", result.skipped,
                    jsonl)
