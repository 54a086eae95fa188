"""BarFeed: subscriptions, backfill and the stale-feed watchdog.

PLACEHOLDER: idles until its issue lands (README, "Status").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import trio

from messages.link import LinkState
from messages.market import Bar, BarGap, VixReading
from runtime.actor import ActorContext
from runtime.channels import Latest
from runtime.placeholder import idle


@dataclass(frozen=True)
class Inbox:
    link_state: Latest[LinkState]


@dataclass(frozen=True)
class Outbox:
    bars: trio.MemorySendChannel[Bar | BarGap]
    link_requests: trio.MemorySendChannel[Any]
    vix: Latest[VixReading | None]


async def run(ctx: ActorContext, inbox: Inbox, outbox: Outbox, *,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    await idle(ctx, task_status)
