"""A child deaf to its cancellation is abandoned after its stop grace, loudly, and the supervisor
carries on: it is never awaited forever (the hard stop, as tractor does it)."""

from __future__ import annotations

import datetime as dt
import logging
import random

import pytest
import trio
import trio.testing

from messages.alerts import Alert
from runtime.infra.clock import Clock
from runtime.supervision.channels import DropOldest
from runtime.supervision.observe import TreeObserver
from runtime.supervision.supervisor import (
    ActorSpec,
    Backoff,
    Strategy,
    Supervisor,
    SupervisorSpec,
    build_nodes,
)
from runtime.supervision.tree import NodeState, TreeNode
from tests.harness import memory_journal, wait_until

GRACE = 2.0


class Deaf:
    """An actor whose first incarnation's cleanup waits, shielded, until the test releases it."""

    def __init__(self) -> None:
        self.release = trio.Event()
        self.crash = trio.Event()
        self.cleanups_done = 0

    async def run(self, node: TreeNode, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        try:
            await self.crash.wait()
            self.crash = trio.Event()
            raise RuntimeError("crashed on purpose")
        finally:
            if node.incarnation == 1:
                with trio.CancelScope(shield=True):
                    await self.release.wait()
            self.cleanups_done += 1


async def _crasher(node: TreeNode, task_status: trio.TaskStatus[None]) -> None:
    task_status.started()
    await trio.sleep(10)
    raise RuntimeError("a fails")


def _observer(root: TreeNode) -> tuple[TreeObserver, list[dict[str, object]],
                                       DropOldest[Alert]]:
    journal, events = memory_journal("stop_grace")
    alerts: DropOldest[Alert] = DropOldest("alerts", 100)
    clock = Clock(dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC))
    return TreeObserver(root, journal, alerts, clock), events, alerts


async def test_a_deaf_child_is_abandoned_after_its_grace_and_its_restart_goes_ahead(
        autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture) -> None:
    deaf = Deaf()
    spec = SupervisorSpec("root", (ActorSpec("a", _crasher),
                                   ActorSpec("b", deaf.run, stop_grace=GRACE)),
                          strategy=Strategy.ONE_FOR_ALL, backoff=Backoff(initial=0.0))
    root = build_nodes(spec)
    observer, events, alerts = _observer(root)
    b = root.find("root.b")
    async with trio.open_nursery() as nursery:
        sup = Supervisor(spec, root, hooks=observer, rng=random.Random(1))
        await nursery.start(sup.run)
        with caplog.at_level(logging.CRITICAL):
            await wait_until(lambda: b.incarnation == 2, timeout=10 + GRACE + 1)
        # restarted GRACE seconds after a failed, not never
        assert trio.current_time() == pytest.approx(10 + GRACE, abs=0.1)
        assert b.state is NodeState.RUNNING
        assert sup.abandoned == ["root.b"]
        assert "ignored its cancellation for 2.0s" in caplog.text
        overdue = [e for e in events if e["event"] == "actor_stop_overdue"]
        assert overdue and overdue[0]["actor"] == "root.b" and overdue[0]["incarnation"] == 1
        assert any(a.severity == "critical" and "would not stop" in a.title
                   for a in [alerts.receive_nowait() for _ in range(alerts.depth())])
        assert root.snapshot()["gauges"]["abandoned_tasks"]["value"] == 1

        deaf.release.set()                      # the abandoned incarnation ends at last
        await wait_until(lambda: deaf.cleanups_done == 1)
        await trio.testing.wait_all_tasks_blocked()
        # ... without disturbing the incarnation that replaced it: it still crashes and restarts
        assert b.state is NodeState.RUNNING and b.incarnation >= 2
        before = b.incarnation
        deaf.crash.set()
        await wait_until(lambda: b.incarnation > before and b.state is NodeState.RUNNING)
        await sup.stop()
        nursery.cancel_scope.cancel()


async def test_stop_returns_after_the_grace_and_lists_what_it_abandoned(
        autojump_clock: trio.testing.MockClock) -> None:
    deaf = Deaf()
    spec = SupervisorSpec("root", (ActorSpec("b", deaf.run, stop_grace=GRACE),))
    root = build_nodes(spec)
    async with trio.open_nursery() as nursery:
        sup = Supervisor(spec, root, rng=random.Random(1))
        await nursery.start(sup.run)
        started = trio.current_time()
        with trio.fail_after(GRACE + 1):
            await sup.stop()
        assert trio.current_time() - started == pytest.approx(GRACE, abs=0.1)
        assert sup.abandoned == ["root.b"]
        assert not sup.stopped                 # its nursery still holds the deaf task
        deaf.release.set()
    assert sup.stopped


async def test_a_child_that_stops_within_its_grace_is_waited_for_not_abandoned(
        autojump_clock: trio.testing.MockClock) -> None:
    async def slow_cleanup(node: TreeNode, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(GRACE / 2)

    spec = SupervisorSpec("root", (ActorSpec("b", slow_cleanup, stop_grace=GRACE),))
    root = build_nodes(spec)
    async with trio.open_nursery() as nursery:
        sup = Supervisor(spec, root, rng=random.Random(1))
        await nursery.start(sup.run)
        await sup.stop()
        assert sup.stopped and sup.abandoned == []
        assert root.find("root.b").state is NodeState.STOPPED


async def test_a_deaf_grandchild_bounds_the_stop_of_its_whole_subtree(
        autojump_clock: trio.testing.MockClock) -> None:
    """The link subtree's GatewayLink stuck in a shielded asyncio wait must not hang shutdown."""
    deaf = Deaf()
    link = SupervisorSpec("link", (ActorSpec("gateway_link", deaf.run, stop_grace=GRACE),),
                          stop_grace=3.0)
    spec = SupervisorSpec("root", (link,))
    root = build_nodes(spec)
    async with trio.open_nursery() as nursery:
        sup = Supervisor(spec, root, rng=random.Random(1))
        await nursery.start(sup.run)
        started = trio.current_time()
        with trio.fail_after(GRACE + 2 * 3.0 + 1):
            await sup.stop()
        assert trio.current_time() - started <= GRACE + 2 * 3.0
        assert sup.abandoned == ["root.link.gateway_link", "root.link"]
        deaf.release.set()
    assert sup.stopped and root.find("root.link").state is NodeState.STOPPED
