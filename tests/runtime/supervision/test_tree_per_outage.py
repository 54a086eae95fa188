"""One tree per Gateway outage, not one per failed reconnect attempt."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import trio
import trio.testing

from config.market_calendar import ET
from runtime.infra.clock import Clock
from runtime.infra.logs import open_logging
from runtime.supervision.channels import DropOldest
from runtime.supervision.observe import TreeObserver
from runtime.supervision.supervisor import (
    ActorSpec,
    Intensity,
    Strategy,
    Supervisor,
    SupervisorSpec,
    build_nodes,
)
from runtime.supervision.tree import TreeNode

FAILED_ATTEMPTS = 4


async def test_failed_reconnect_attempts_get_no_tree_each_but_the_outage_does(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    lose = trio.Event()

    async def link(node: TreeNode, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        if node.incarnation == 1:                       # a session that came up, then lost
            node.healthy = True                          # what ActorContext.mark_healthy sets
            await lose.wait()
            raise ConnectionError("the Gateway closed the connection")
        if node.incarnation <= 1 + FAILED_ATTEMPTS:      # refused while the Gateway restarts
            await trio.sleep(2.0)
            raise ConnectionError("connect failed: refused")
        await trio.sleep(1.0)
        node.healthy = True                              # up again
        await trio.sleep_forever()

    async def feed(node: TreeNode, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        await trio.sleep_forever()

    spec = SupervisorSpec("root", (
        SupervisorSpec("link", (ActorSpec("gateway_link", link), ActorSpec("bar_feed", feed)),
                       strategy=Strategy.ONE_FOR_ALL,
                       intensity=Intensity(max_restarts=100, within=60.0)),))
    root = build_nodes(spec)
    with open_logging(log_file=tmp_path / "logs" / "bot.log", max_bytes=1 << 20,
                      backup_count=2, console=False) as journal:
        observer = TreeObserver(root, journal, DropOldest("alerts", 8),
                                Clock(dt.datetime(2026, 11, 20, 11, 0, tzinfo=ET)))
        sup = Supervisor(spec, root, hooks=observer)
        async with trio.open_nursery() as n:
            await n.start(sup.run)
            lose.set()
            await trio.sleep(120)
            assert root.find("root.link.gateway_link").incarnation == 2 + FAILED_ATTEMPTS
            await sup.stop()
    events = [json.loads(x) for x in (tmp_path / "logs" / "events.jsonl")
              .read_text(encoding="utf-8").splitlines()]
    restarts = [e for e in events if e["event"] == "actor_restart"
                and e["path"] == "root.link.gateway_link"]
    trees = [e for e in events if e["event"] == "tree" and e["reason"] == "restart"]
    assert len(restarts) == 1 + FAILED_ATTEMPTS
    assert len(trees) == 1                  # the outage's first restart; no tree per attempt
    assert events[events.index(restarts[0]) + 2] == trees[0]     # right after it (and bar_feed)
