"""ModeGuard: trading state, mode interlocks and risk limits.

PLACEHOLDER: idles until its issue lands (README, "Status").
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from messages.base import Message
from messages.control import OperatorCommand, TradingStatus
from messages.link import LinkState
from runtime.actor import ActorContext
from runtime.channels import Latest
from runtime.placeholder import idle


@dataclass(frozen=True)
class Inbox:
    signals: trio.MemoryReceiveChannel[Message]
    order_events: trio.MemoryReceiveChannel[Message]
    commands: trio.MemoryReceiveChannel[OperatorCommand]
    link_state: Latest[LinkState]


@dataclass(frozen=True)
class Outbox:
    orders: trio.MemorySendChannel[Message]
    trading: Latest[TradingStatus]


async def run(ctx: ActorContext, inbox: Inbox, outbox: Outbox, *,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    await idle(ctx, task_status)
