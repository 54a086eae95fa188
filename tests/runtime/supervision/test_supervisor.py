"""Supervisor semantics: strategies, restart types, intensity, ordering, expected restarts."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest
import trio
import trio.lowlevel
import trio.testing

from runtime.supervision.supervisor import (
    ActorSpec,
    Backoff,
    ChildExit,
    ExpectedRestart,
    Intensity,
    Restart,
    Strategy,
    SupervisionHooks,
    Supervisor,
    SupervisorGaveUp,
    SupervisorSpec,
    WhenExhausted,
    build_nodes,
)
from runtime.supervision.tree import NodeState, TreeNode

NO_BACKOFF = Backoff(initial=0.0)


@dataclass
class Probe:
    """Records what the actors did, and lets a test make one of them fail or return."""

    events: list[str] = field(default_factory=list)
    fail: dict[str, trio.Event] = field(default_factory=dict)
    finish: dict[str, trio.Event] = field(default_factory=dict)
    fail_with: dict[str, Callable[[], BaseException]] = field(default_factory=dict)
    fail_before_ready: dict[str, int] = field(default_factory=dict)
    state: dict[str, int] = field(default_factory=dict)

    def actor(self, name: str, restart: Restart = Restart.PERMANENT) -> ActorSpec:
        self.fail.setdefault(name, trio.Event())
        self.finish.setdefault(name, trio.Event())

        async def run(node: TreeNode, task_status: trio.TaskStatus[None]) -> None:
            self.events.append(f"start {name}")
            if self.fail_before_ready.get(name, 0) > 0:
                self.fail_before_ready[name] -= 1
                raise RuntimeError(f"{name} could not start")
            await trio.lowlevel.checkpoint()
            self.state[name] = 0      # fresh state per incarnation
            self.events.append(f"ready {name}")
            task_status.started()
            try:
                async with trio.open_nursery() as n:
                    async def wait_finish() -> None:
                        await self.finish[name].wait()
                        n.cancel_scope.cancel()
                    n.start_soon(wait_finish)
                    await self.fail[name].wait()
                    self.fail[name] = trio.Event()
                    raise self.fail_with.get(name, lambda: RuntimeError(f"{name} boom"))()
            finally:
                with trio.CancelScope(shield=True):
                    await trio.sleep(0.01)   # a stop that takes time must be waited for
                self.events.append(f"stopped {name}")

        return ActorSpec(name, run, restart=restart)

    def crash(self, name: str) -> None:
        self.fail[name].set()

    async def crash_and_wait(self, name: str, node: TreeNode) -> None:
        """Crash `name` and wait until its supervisor has dealt with it."""
        before = node.incarnation
        self.crash(name)
        while node.state is NodeState.RUNNING and node.incarnation == before:
            await trio.sleep(0.001)

    def end(self, name: str) -> None:
        self.finish[name].set()
        self.finish[name] = trio.Event()


class RecordingHooks(SupervisionHooks):
    def __init__(self) -> None:
        self.failed: list[ChildExit] = []
        self.restarts: list[tuple[str, list[str], bool]] = []
        self.exhaustions: list[tuple[str, bool]] = []

    def child_failed(self, exit: ChildExit) -> None:
        self.failed.append(exit)

    def restarted(self, supervisor: TreeNode, nodes: Sequence[TreeNode], reason: str,
                  expected: bool, operational: bool = False) -> None:
        self.restarts.append((supervisor.path, [n.name for n in nodes], expected))

    def exhausted(self, supervisor: TreeNode, reason: str, escalating: bool) -> None:
        self.exhaustions.append((supervisor.path, escalating))


async def settle() -> None:
    """Let every runnable task run (MockClock autojumps over sleeps)."""
    await trio.testing.wait_all_tasks_blocked()
    await trio.sleep(1)
    await trio.testing.wait_all_tasks_blocked()


def incarnations(root: TreeNode) -> dict[str, int]:
    return {n.name: n.incarnation for n in root.walk() if n.kind == "actor"}


async def start_tree(nursery: trio.Nursery, spec: SupervisorSpec,
                     hooks: SupervisionHooks | None = None) -> tuple[Supervisor, TreeNode]:
    root = build_nodes(spec)
    sup = Supervisor(spec, root, hooks=hooks, rng=random.Random(7))
    await nursery.start(sup.run)
    return sup, root


@pytest.mark.parametrize(
    ("strategy", "crashing", "restarted"),
    [
        (Strategy.ONE_FOR_ONE, "b", {"b"}),
        (Strategy.ONE_FOR_ALL, "b", {"a", "b", "c"}),
        (Strategy.REST_FOR_ONE, "b", {"b", "c"}),
        (Strategy.REST_FOR_ONE, "a", {"a", "b", "c"}),
        (Strategy.REST_FOR_ONE, "c", {"c"}),
    ],
)
async def test_strategy_restarts_exactly_the_right_children(
        autojump_clock: trio.testing.MockClock, strategy: Strategy, crashing: str,
        restarted: set[str]) -> None:
    p = Probe()
    spec = SupervisorSpec("root", tuple(p.actor(n) for n in "abc"), strategy=strategy,
                          backoff=NO_BACKOFF, intensity=Intensity(5, 10))
    async with trio.open_nursery() as n:
        sup, root = await start_tree(n, spec)
        before = incarnations(root)
        p.crash(crashing)
        await settle()
        after = incarnations(root)
        assert {k for k in after if after[k] != before[k]} == restarted
        assert all(after[k] == before[k] + 1 for k in restarted)
        assert root.find(f"root.{crashing}").last_error == f"RuntimeError: {crashing} boom"
        assert all(c.state is NodeState.RUNNING for c in root.children)
        await sup.stop()


async def test_children_start_in_order_each_ready_before_the_next(
        autojump_clock: trio.testing.MockClock) -> None:
    p = Probe()
    spec = SupervisorSpec("root", tuple(p.actor(n) for n in "abc"))
    async with trio.open_nursery() as n:
        sup, _ = await start_tree(n, spec)
        assert p.events == ["start a", "ready a", "start b", "ready b", "start c", "ready c"]
        await sup.stop()


async def test_stop_is_reverse_order_and_waits_for_each_child(
        autojump_clock: trio.testing.MockClock) -> None:
    p = Probe()
    inner = SupervisorSpec("inner", (p.actor("b1"), p.actor("b2")))
    spec = SupervisorSpec("root", (p.actor("a"), inner, p.actor("c")))
    async with trio.open_nursery() as n:
        sup, root = await start_tree(n, spec)
        p.events.clear()
        await sup.stop()
    assert p.events == ["stopped c", "stopped b2", "stopped b1", "stopped a"]
    assert all(node.state is NodeState.STOPPED for node in root.walk())


async def test_one_for_all_subtree_restart_leaves_sibling_subtree_state_and_incarnation(
        autojump_clock: trio.testing.MockClock) -> None:
    p = Probe()
    brain = SupervisorSpec("brain", (p.actor("indicators"), p.actor("selector")),
                           strategy=Strategy.REST_FOR_ONE)
    link = SupervisorSpec("link", (p.actor("gateway"), p.actor("feed")),
                          strategy=Strategy.ONE_FOR_ALL, backoff=NO_BACKOFF)
    spec = SupervisorSpec("root", (brain, link))
    async with trio.open_nursery() as n:
        sup, root = await start_tree(n, spec)
        p.state["indicators"] = 42          # state accumulated by the brain
        for _ in range(3):
            p.crash("gateway")
            await settle()
        inc = incarnations(root)
        assert inc["gateway"] == inc["feed"] == 4
        assert inc["indicators"] == inc["selector"] == 1
        assert p.state["indicators"] == 42
        assert root.find("root.link").incarnation == 1     # handled inside the subtree
        await sup.stop()


@pytest.mark.parametrize(
    ("restart", "how", "restarted"),
    [
        (Restart.PERMANENT, "crash", True),
        (Restart.PERMANENT, "return", True),
        (Restart.TRANSIENT, "crash", True),
        (Restart.TRANSIENT, "return", False),
        (Restart.TEMPORARY, "crash", False),
        (Restart.TEMPORARY, "return", False),
    ],
)
async def test_restart_type_decides_whether_a_child_comes_back(
        autojump_clock: trio.testing.MockClock, restart: Restart, how: str,
        restarted: bool) -> None:
    p = Probe()
    spec = SupervisorSpec("root", (p.actor("x", restart), p.actor("y")), backoff=NO_BACKOFF)
    async with trio.open_nursery() as n:
        sup, root = await start_tree(n, spec)
        if how == "crash":
            p.crash("x")
        else:
            p.end("x")
        await settle()
        node = root.find("root.x")
        assert (node.incarnation == 2) is restarted
        if not restarted:
            assert node.state is (NodeState.FAILED if how == "crash" else NodeState.STOPPED)
        assert root.find("root.y").incarnation == 1
        await sup.stop()


async def test_intensity_exceeded_escalates_to_parent_which_restarts_the_subtree(
        autojump_clock: trio.testing.MockClock) -> None:
    p = Probe()
    hooks = RecordingHooks()
    inner = SupervisorSpec("inner", (p.actor("w"),), intensity=Intensity(2, 60),
                           backoff=NO_BACKOFF)
    spec = SupervisorSpec("root", (inner, p.actor("other")), intensity=Intensity(5, 60),
                          backoff=NO_BACKOFF)
    async with trio.open_nursery() as n:
        sup, root = await start_tree(n, spec, hooks)
        for _ in range(3):               # the third restart within 60 s exceeds 2
            p.crash("w")
            await settle()
        assert hooks.exhaustions == [("root.inner", True)]
        inner_node = root.find("root.inner")
        assert inner_node.incarnation == 2       # the parent restarted the whole subtree
        assert "gave up" in (inner_node.last_error or "")
        assert root.find("root.other").incarnation == 1
        await sup.stop()


async def test_root_that_gives_up_ends_the_run_with_supervisor_gave_up(
        autojump_clock: trio.testing.MockClock) -> None:
    p = Probe()
    spec = SupervisorSpec("root", (p.actor("w"),), intensity=Intensity(1, 60),
                          backoff=NO_BACKOFF)
    with pytest.RaisesGroup(SupervisorGaveUp):
        async with trio.open_nursery() as n:
            await start_tree(n, spec)
            p.crash("w")
            await settle()
            p.crash("w")
            await settle()
    assert p.events[-1] == "stopped w"


async def test_expected_restarts_do_not_count_against_intensity(
        autojump_clock: trio.testing.MockClock) -> None:
    p = Probe()
    hooks = RecordingHooks()
    p.fail_with["link"] = lambda: ExpectedRestart("scheduled Gateway restart", delay=0.5)
    spec = SupervisorSpec("root", (p.actor("link"),), intensity=Intensity(1, 3600))
    async with trio.open_nursery() as n:
        sup, root = await start_tree(n, spec, hooks)
        for _ in range(5):
            p.crash("link")
            await settle()
        assert root.find("root.link").incarnation == 6
        assert hooks.exhaustions == []
        assert all(expected for _, _, expected in hooks.restarts)
        assert all(f.expected for f in hooks.failed)
        await sup.stop()


async def test_backoff_grows_between_quick_failures_and_resets_after_a_stable_run(
        autojump_clock: trio.testing.MockClock) -> None:
    p = Probe()
    backoff = Backoff(initial=1.0, maximum=8.0, factor=2.0, jitter=0.0, reset_after=100.0)
    spec = SupervisorSpec("root", (p.actor("w"),), backoff=backoff, intensity=Intensity(50, 60))
    gaps: list[float] = []
    async with trio.open_nursery() as n:
        sup, root = await start_tree(n, spec)
        node = root.find("root.w")

        async def crash_and_time_restart() -> None:
            p.crash("w")
            while node.state is NodeState.RUNNING:
                await trio.sleep(0.001)
            t0 = trio.current_time()
            while node.state is not NodeState.RUNNING:
                await trio.sleep(0.001)
            gaps.append(round(trio.current_time() - t0, 1))

        for _ in range(5):
            await crash_and_time_restart()
        await trio.sleep(200)      # a stable run resets the streak
        await crash_and_time_restart()
        await sup.stop()
    assert gaps == [1.0, 2.0, 4.0, 8.0, 8.0, 1.0]


def test_backoff_jitter_stays_within_bounds() -> None:
    b = Backoff(initial=0.25, maximum=30.0, jitter=0.2)
    rng = random.Random(1)
    for streak in range(1, 20):
        base = min(30.0, 0.25 * 2 ** (streak - 1))
        for _ in range(50):
            d = b.delay(streak, rng)
            assert base * 0.8 - 1e-9 <= d <= min(30.0, base * 1.2) + 1e-9


async def test_external_cancellation_is_a_shutdown_not_a_crash(
        autojump_clock: trio.testing.MockClock) -> None:
    p = Probe()
    hooks = RecordingHooks()
    spec = SupervisorSpec("root", (p.actor("a"), p.actor("b")))
    with trio.move_on_after(5):
        async with trio.open_nursery() as n:
            await start_tree(n, spec, hooks)
            await trio.sleep_forever()
    assert hooks.failed == []
    assert hooks.restarts == []


async def test_child_failing_before_ready_is_retried_and_later_siblings_wait(
        autojump_clock: trio.testing.MockClock) -> None:
    p = Probe()
    p.fail_before_ready["a"] = 2
    spec = SupervisorSpec("root", (p.actor("a"), p.actor("b")), strategy=Strategy.REST_FOR_ONE,
                          backoff=NO_BACKOFF, intensity=Intensity(5, 60))
    async with trio.open_nursery() as n:
        sup, root = await start_tree(n, spec)
        await settle()
        assert root.find("root.a").state is NodeState.RUNNING
        assert root.find("root.b").state is NodeState.RUNNING
        # b never started while a was failing to start
        first_b = p.events.index("start b")
        assert p.events[:first_b].count("ready a") == 1
        await sup.stop()


async def test_persistent_supervisor_never_gives_up_and_retries_slowly(
        autojump_clock: trio.testing.MockClock) -> None:
    p = Probe()
    hooks = RecordingHooks()
    link = SupervisorSpec("link", (p.actor("gw"),), intensity=Intensity(2, 60),
                          backoff=NO_BACKOFF, when_exhausted=WhenExhausted.PERSIST,
                          exhausted_retry_delay=120)
    spec = SupervisorSpec("root", (link,), intensity=Intensity(0, 60))
    async with trio.open_nursery() as n:
        sup, root = await start_tree(n, spec, hooks)
        gw = root.find("root.link.gw")
        for _ in range(2):
            await p.crash_and_wait("gw", gw)
            while gw.state is not NodeState.RUNNING:
                await trio.sleep(0.001)
        await p.crash_and_wait("gw", gw)
        await trio.sleep(1)
        assert hooks.exhaustions == [("root.link", False)]
        assert root.find("root.link").state is NodeState.EXHAUSTED
        t0 = trio.current_time()
        while root.find("root.link.gw").state is not NodeState.RUNNING:
            await trio.sleep(1)
        assert trio.current_time() - t0 >= 119
        assert root.find("root.link").state is NodeState.RUNNING
        assert root.find("root.link").incarnation == 1    # the parent never saw a failure
        await sup.stop()


async def test_a_child_that_declared_itself_healthy_restarts_without_growing_the_backoff(
        autojump_clock: trio.testing.MockClock) -> None:
    backoff = Backoff(initial=1.0, maximum=30.0, factor=2.0, jitter=0.0, reset_after=1000.0)

    async def session(node: TreeNode, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        node.healthy = True            # e.g. the Gateway session came up
        await trio.sleep(5)
        raise RuntimeError("Gateway restarted")

    spec = SupervisorSpec("root", (ActorSpec("link", session),), backoff=backoff,
                          intensity=Intensity(50, 60))
    async with trio.open_nursery() as n:
        sup, root = await start_tree(n, spec)
        await trio.sleep(57)     # lives start at 0, 6, ..., 54 s (not at a tie with 60)
        node = root.find("root.link")
        # 5 s of life + 1 s delay each time: ten lives in a minute, never a longer delay
        assert node.incarnation == 10
        await sup.stop()
