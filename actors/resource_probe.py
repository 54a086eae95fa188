"""ResourceProbe: CPU, memory, disk and event-loop lag.

PLACEHOLDER: idles until its issue lands (README, "Status").
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from runtime.actor import ActorContext
from runtime.placeholder import idle


@dataclass(frozen=True)
class Inbox:
    """Nothing yet."""


@dataclass(frozen=True)
class Outbox:
    """Nothing yet."""


async def run(ctx: ActorContext, inbox: Inbox, outbox: Outbox, *,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    await idle(ctx, task_status)
