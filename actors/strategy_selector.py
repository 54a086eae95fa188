"""StrategySelector: the daily gameplan, strategy A/B/C and entry/exit signals.

PLACEHOLDER: idles until its issue lands (README, "Status").
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from messages.base import Message
from messages.market import VixReading
from runtime.actor import ActorContext
from runtime.channels import Latest
from runtime.placeholder import idle


@dataclass(frozen=True)
class Inbox:
    snapshots: trio.MemoryReceiveChannel[Message]
    vix: Latest[VixReading | None]


@dataclass(frozen=True)
class Outbox:
    signals: trio.MemorySendChannel[Message]


async def run(ctx: ActorContext, inbox: Inbox, outbox: Outbox, *,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    await idle(ctx, task_status)
