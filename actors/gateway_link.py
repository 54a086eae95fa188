"""GatewayLink: one ib_async session on its own asyncio thread.

PLACEHOLDER: idles until its issue lands (README, "Status").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import trio

from messages.link import LinkState
from runtime.actor import ActorContext
from runtime.channels import Latest
from runtime.placeholder import idle


@dataclass(frozen=True)
class Inbox:
    requests: trio.MemoryReceiveChannel[Any]


@dataclass(frozen=True)
class Outbox:
    link_state: Latest[LinkState]


async def run(ctx: ActorContext, inbox: Inbox, outbox: Outbox, *,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    await idle(ctx, task_status)
