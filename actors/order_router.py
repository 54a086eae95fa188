"""OrderRouter: the order ledger, dry-run fills, brackets and reconciliation.

PLACEHOLDER: idles until its issue lands (README, "Status").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import trio

from messages.base import Message
from messages.link import LinkState
from runtime.actor import ActorContext
from runtime.channels import Latest
from runtime.placeholder import idle


@dataclass(frozen=True)
class Inbox:
    orders: trio.MemoryReceiveChannel[Message]
    link_state: Latest[LinkState]


@dataclass(frozen=True)
class Outbox:
    order_events: trio.MemorySendChannel[Message]
    link_requests: trio.MemorySendChannel[Any]


async def run(ctx: ActorContext, inbox: Inbox, outbox: Outbox, *,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    await idle(ctx, task_status)
