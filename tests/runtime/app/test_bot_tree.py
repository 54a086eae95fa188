"""The whole tree in-process: the dump's contents, restarts made visible, a virtual day."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing

from config.market_calendar import ET
from runtime.app.bot import BotHandle, BotOptions, run_bot
from runtime.infra.clock import Clock
from runtime.infra.logs import open_logging
from runtime.supervision.channels import DropOldest
from runtime.supervision.observe import TreeObserver
from runtime.supervision.supervisor import (
    ActorSpec,
    ExpectedRestart,
    Strategy,
    Supervisor,
    SupervisorSpec,
    build_nodes,
)
from runtime.supervision.tree import TreeNode
from tests.harness import closed_port, read_jsonl, settings_for

ACTORS = ("notifier", "resource_probe", "mode_guard", "order_router", "indicators",
          "strategy_selector", "gateway_link", "bar_feed")


@asynccontextmanager
async def open_bot(tmp_path: Path, start: dt.datetime,
                   **overrides: str) -> AsyncIterator[BotHandle]:
    settings = settings_for(tmp_path, IBKR_PORT=str(closed_port()), **overrides)
    async with trio.open_nursery() as n:
        handle: BotHandle = await n.start(
            run_bot, settings, BotOptions(sim_start=start, console=False, handle_signals=False))
        yield handle
        handle.request_stop("test over")


def _events(tmp_path: Path) -> list[dict[str, object]]:
    return read_jsonl(tmp_path / "logs" / "events.jsonl")


async def test_tree_dump_names_every_actor_with_state_incarnation_and_channels(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with open_bot(tmp_path, dt.datetime(2026, 11, 20, 9, 0, tzinfo=ET)) as bot:
        await trio.sleep(5)
        tree = bot.dump_tree("request")
    nodes = {}

    def walk(n: dict[str, object]) -> None:
        nodes[n["name"]] = n
        for c in n.get("children", []):  # type: ignore[attr-defined]
            walk(c)

    walk(tree)
    assert set(ACTORS) <= set(nodes)
    assert nodes["link"]["strategy"] == "one_for_all"
    assert nodes["brain"]["strategy"] == "rest_for_one"
    for name in ACTORS:
        n = nodes[name]
        assert n["state"] == "running" and n["incarnation"] == 1 and n["restarts"] == 0
        assert n["uptime_s"] >= 4.9 and n["last_error"] is None
    assert nodes["indicators"]["channels"] == {"bars": 0}
    assert nodes["mode_guard"]["channels"] == {"signals": 0, "order_events": 0, "commands": 0}
    dumps = [e for e in _events(tmp_path) if e["event"] == "tree"]
    assert [d["reason"] for d in dumps] == ["start", "request"]
    human = (tmp_path / "logs" / "bot.log").read_text(encoding="utf-8")
    assert "Actor tree (start):\n  root [running] one_for_one inc=1" in human


async def test_a_restart_is_journaled_and_followed_by_a_tree_dump(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    fail = trio.Event()

    async def flaky(node: TreeNode, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        if node.incarnation > 1:
            await trio.sleep_forever()
        await fail.wait()
        raise ExpectedRestart("scheduled Gateway restart")

    async def steady(node: TreeNode, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        await trio.sleep_forever()

    spec = SupervisorSpec("root", (
        SupervisorSpec("brain", (ActorSpec("indicators", steady),)),
        SupervisorSpec("link", (ActorSpec("gateway_link", flaky), ActorSpec("bar_feed", steady)),
                       strategy=Strategy.ONE_FOR_ALL)))
    root = build_nodes(spec)
    with open_logging(log_file=tmp_path / "logs" / "bot.log", max_bytes=1 << 20,
                      backup_count=2, console=False) as journal:
        observer = TreeObserver(root, journal, DropOldest("alerts", 8),
                                Clock(dt.datetime(2026, 11, 20, 16, 30, tzinfo=ET)))
        sup = Supervisor(spec, root, hooks=observer)
        async with trio.open_nursery() as n:
            await n.start(sup.run)
            fail.set()
            await trio.sleep(5)
            assert root.find("root.link.gateway_link").incarnation == 2
            assert root.find("root.link.bar_feed").incarnation == 2      # one_for_all
            assert root.find("root.brain.indicators").incarnation == 1   # untouched
            await sup.stop()
    events = _events(tmp_path)
    restarts = [e for e in events if e["event"] == "actor_restart"]
    assert {e["path"] for e in restarts} == {"root.link.gateway_link", "root.link.bar_feed"}
    assert all(e["expected"] is True and e["incarnation"] == 2 for e in restarts)
    after = events[events.index(restarts[-1]) + 1]
    assert after["event"] == "tree" and after["reason"] == "restart"
    link = after["tree"]["children"][1]
    assert [c["incarnation"] for c in link["children"]] == [2, 2]
    human = (tmp_path / "logs" / "bot.log").read_text(encoding="utf-8")
    assert "Actor tree (restart):" in human and "gateway_link [running]" in human


@pytest.mark.slow
async def test_a_virtual_trading_day_passes_with_periodic_tree_dumps(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    start = dt.datetime(2026, 11, 20, 0, 0, tzinfo=ET)
    async with open_bot(tmp_path, start, DAILY_STOP_TIME="") as bot:
        await trio.sleep(24 * 3600)
        assert bot.clock.now_et() >= start + dt.timedelta(hours=24)
        assert all(bot.root.find(p).incarnation == 1
                   for p in ("root.brain.indicators", "root.link.gateway_link"))
    periodic = [e for e in _events(tmp_path) if e["event"] == "tree" and e["reason"] == "periodic"]
    assert len(periodic) == 96         # every 15 minutes for 24 hours


async def test_clock_maps_trio_time_to_eastern_across_a_dst_change(
        autojump_clock: trio.testing.MockClock) -> None:
    clock = Clock(dt.datetime(2024, 3, 9, 12, 0, tzinfo=ET))
    await clock.sleep_until(dt.datetime(2024, 3, 10, 12, 0, tzinfo=ET))
    assert clock.now_et().hour == 12 and clock.now_et().day == 10
    assert trio.current_time() == 23 * 3600      # the spring-forward day is 23 hours long


async def test_the_bot_stops_itself_cleanly_at_the_daily_stop_time(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    settings = settings_for(tmp_path, IBKR_PORT=str(closed_port()), DAILY_STOP_TIME="17:00")
    start = dt.datetime(2026, 11, 20, 6, 0, tzinfo=ET)
    options = BotOptions(sim_start=start, console=False, handle_signals=False)
    code = await run_bot(settings, options)          # returns by itself
    assert code == 0
    assert trio.current_time() == pytest.approx(11 * 3600, abs=5)    # 06:00 -> 17:00
    shutdown = [e for e in _events(tmp_path) if e["event"] == "shutdown"]
    assert shutdown[0]["clean"] is True and "daily stop" in shutdown[0]["reason"]
