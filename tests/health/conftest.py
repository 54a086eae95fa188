"""The health endpoint served for a hand-built BotHandle, so each test sets the state it needs."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

from config.market_calendar import ET
from config.settings import load_settings
from runtime.app.bot import BotHandle
from runtime.app.wiring import Wiring
from runtime.infra.clock import Clock
from runtime.infra.logs import Journal
from runtime.ops.health import serve_health
from runtime.supervision.observe import TreeObserver
from runtime.supervision.supervisor import ActorSpec, SupervisorSpec, build_nodes
from runtime.supervision.tree import NodeState, TreeNode

START = dt.datetime(2026, 11, 20, 10, 0, tzinfo=ET)


async def _idle(node: TreeNode, task_status: trio.TaskStatus[None]) -> None:
    task_status.started()
    await trio.sleep_forever()


@dataclass
class Served:
    bot: BotHandle
    port: int
    events: list[dict[str, Any]]
    client: httpx.AsyncClient

    def journal(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event]


@asynccontextmanager
async def open_health(tmp_path: Path) -> AsyncIterator[Served]:
    settings = load_settings(None, {"LOG_FILE": str(tmp_path / "logs" / "bot.log"),
                                    "STATE_DIR": str(tmp_path / "state"),
                                    "HEALTH_PORT": "0"})
    logger = logging.getLogger("tests.health.journal")
    logger.propagate = False
    journal = Journal(logger)
    events: list[dict[str, Any]] = []
    journal.add_tap(events.append)
    wiring = Wiring()
    root = build_nodes(SupervisorSpec("root", (ActorSpec("notifier", _idle),
                                               ActorSpec("mode_guard", _idle))))
    for node in root.walk():
        node.state, node.incarnation, node.started_at = NodeState.RUNNING, 1, trio.current_time()
    clock = Clock(START)
    bot = BotHandle(settings=settings, clock=clock, journal=journal, wiring=wiring, root=root,
                    observer=TreeObserver(root, journal, wiring.alerts, clock),
                    started_at=trio.current_time(), stop_requested=trio.Event())
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_health, bot)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                     timeout=5.0) as client:
            yield Served(bot=bot, port=port, events=events, client=client)
        nursery.cancel_scope.cancel()
