"""Notifier: Discord messages for the operator.

PLACEHOLDER: idles until its issue lands (README, "Status").
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from messages.alerts import Alert
from runtime.actor import ActorContext
from runtime.channels import DropOldest
from runtime.placeholder import idle


@dataclass(frozen=True)
class Inbox:
    alerts: DropOldest[Alert]


@dataclass(frozen=True)
class Outbox:
    """Nothing yet."""


async def run(ctx: ActorContext, inbox: Inbox, outbox: Outbox, *,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    await idle(ctx, task_status)
