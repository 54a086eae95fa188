"""Indicators: RSI, EMA, session VWAP and Bollinger bands per symbol.

PLACEHOLDER: idles until its issue lands (README, "Status").
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from messages.base import Message
from messages.market import Bar, BarGap
from runtime.actor import ActorContext
from runtime.placeholder import idle


@dataclass(frozen=True)
class Inbox:
    bars: trio.MemoryReceiveChannel[Bar | BarGap]


@dataclass(frozen=True)
class Outbox:
    snapshots: trio.MemorySendChannel[Message]


async def run(ctx: ActorContext, inbox: Inbox, outbox: Outbox, *,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    await idle(ctx, task_status)
