"""Erlang/OTP-style supervision on trio (trio-util has none, so it lives here).

Vocabulary, as in OTP:
  * restart strategies: one_for_one (restart the child that died), one_for_all (restart every
    child), rest_for_one (restart the child that died and every child started after it);
  * restart types: permanent (always restarted), transient (restarted only after a failure),
    temporary (never restarted);
  * restart intensity: more than `max_restarts` restarts within `within` seconds and the
    supervisor gives up: it stops its children and fails to its parent (escalation) or, for a
    subtree that must never give up (the Gateway link), pauses and starts over slowly.

Children start in order with `nursery.start`, so a child is ready before the next one starts,
and stop in reverse order, each waited for before the previous one is asked to stop. A
`trio.Cancelled` reaching a child is a shutdown, never a crash.

Stopping is bounded, as in tractor (soft cancel, then hard kill): a child is cancelled and given
its `stop_grace` to finish its cleanup; one still running after that (a shielded wait that never
ends, a thread that cannot be cancelled) is abandoned: the escalation is logged as critical and
reported to the hooks (`stop_overdue`: the journal's `actor_stop_overdue` and an alert), and the
supervisor carries on (restarts it, or stops the next sibling) without it. Trio cannot kill a
task, so an abandoned task stays in the nursery until it ends by itself; `stop()` returns anyway
and lists it in `abandoned`, and the composition root ends the process rather than wait.

A child that raises `ExpectedRestart` (the scheduled Gateway restart) is restarted without
counting against the intensity and without growing the backoff.
"""

from __future__ import annotations

import logging
import math
import random
import traceback
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import trio

from runtime.supervision.failures import (
    ExpectedRestart,
    FatalInChild,
    OperationalFailure,
    SupervisorGaveUp,
    classify,
    describe_error,
    is_operational,
)
from runtime.supervision.spec import (
    ActorSpec,
    Backoff,
    ChildSpec,
    Intensity,
    Restart,
    RunFn,
    Strategy,
    SupervisorSpec,
    WhenExhausted,
    build_nodes,
)
from runtime.supervision.tree import ABANDONED_TASKS, NodeState, TreeNode

__all__ = [  # the specs and failures are re-exported: callers import them from here
    "ActorSpec", "Backoff", "ChildExit", "ChildSpec", "ExpectedRestart", "Intensity",
    "OperationalFailure", "Restart", "RunFn", "Strategy", "SupervisionHooks", "Supervisor",
    "SupervisorGaveUp", "SupervisorSpec", "WhenExhausted", "build_nodes", "describe_error",
    "is_operational", "run_supervisor"]

log = logging.getLogger("runtime.supervision.supervisor")


class _TaskStatus(Protocol):
    def started(self, value: None = None) -> None: ...


@dataclass(frozen=True)
class ChildExit:
    """How one incarnation of a child ended (what the hooks are told)."""

    node: TreeNode
    incarnation: int
    error: BaseException | None
    expected: bool
    reason: str
    operational: bool = False


class SupervisionHooks:
    """Observers of the tree (journal, tree dumps, alerts). The defaults do nothing."""

    def stop_overdue(self, node: TreeNode, incarnation: int, grace: float) -> None:
        """A cancelled child was still running `grace` seconds later and was abandoned."""

    def child_failed(self, exit: ChildExit) -> None:
        """A child ended with an error (or an expected restart)."""

    def restarted(self, supervisor: TreeNode, nodes: Sequence[TreeNode], reason: str,
                  expected: bool, operational: bool = False) -> None:
        """Children were restarted and are running again."""

    def exhausted(self, supervisor: TreeNode, reason: str, escalating: bool) -> None:
        """A supervisor exceeded its restart intensity."""


@dataclass(eq=False)
class _Child:
    spec: ChildSpec
    node: TreeNode
    alive: bool = False
    ready: bool = False
    stop_requested: bool = False
    scope: trio.CancelScope | None = None
    supervisor: Supervisor | None = None
    done: trio.Event = field(default_factory=trio.Event)


@dataclass(frozen=True)
class _Exit:
    child: _Child
    incarnation: int
    error: BaseException | None
    expected: bool
    delay: float | None
    requested: bool


class _Ready:
    """Wraps a child's task_status to know whether it became ready before it ended."""

    def __init__(self, inner: trio.TaskStatus[None], child: _Child | None = None) -> None:
        self._inner = inner
        self._child = child
        self.called = False

    def started(self, value: None = None) -> None:
        if not self.called:
            self.called = True
            if self._child is not None:
                self._child.ready = True
            self._inner.started()

    def release(self) -> None:
        """Unblock `nursery.start` for a child that ended without becoming ready."""
        if not self.called:
            self.called = True
            self._inner.started()


class Supervisor:
    """Runs one SupervisorSpec over its (pre-built) registry node."""

    def __init__(self, spec: SupervisorSpec, node: TreeNode, *,
                 hooks: SupervisionHooks | None = None, rng: random.Random | None = None) -> None:
        if len(node.children) != len(spec.children):
            raise ValueError(f"registry node {node.path} does not match its spec")
        self.spec = spec
        self.node = node
        self.hooks = hooks or SupervisionHooks()
        self.rng = rng or random.Random()
        self._log = logging.getLogger(node.path)
        self._children = [_Child(c, n) for c, n in zip(spec.children, node.children, strict=True)]
        self._restart_times: deque[float] = deque()
        self._streak = 0
        self._exits_send, self._exits_recv = trio.open_memory_channel[_Exit](math.inf)
        self._work = trio.CancelScope()
        self._done = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._gave_up: SupervisorGaveUp | None = None
        self._children_stopped = trio.Event()
        self.abandoned: list[str] = []
        """Paths of incarnations (here or below) that outlived their grace and were left."""

    # -- public ----------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self.node.state in (NodeState.IDLE, NodeState.STOPPED):   # a root: no parent counts
            self.node.incarnation += 1
            self.node.started_at = trio.current_time()
        self.node.state = NodeState.STARTING
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                with self._work:
                    await self._start_range(range(len(self._children)))
                    self.node.state = NodeState.RUNNING
                    task_status.started()
                    await self._supervise()
                self.node.state = NodeState.STOPPING
                await self._stop_children(range(len(self._children)))
                self._children_stopped.set()   # the nursery now waits only for abandoned tasks
        finally:
            self._children_stopped.set()
            self._done.set()
        if self._gave_up is not None:
            self.node.state = NodeState.FAILED
            raise self._gave_up
        self.node.state = NodeState.STOPPED

    async def stop(self, reason: str = "shutdown") -> None:
        """Ordered stop: children in reverse start order, each waited for at most its grace.

        Returns when every child has stopped or been abandoned (`abandoned` lists those: then
        `run` itself cannot return until they end). Idempotent.
        """
        self._work.cancel(reason)
        await self._children_stopped.wait()
        if not self.abandoned:
            await self._done.wait()

    @property
    def stopped(self) -> bool:
        return self._done.is_set()

    # -- starting --------------------------------------------------------------------------
    async def _start_range(self, indices: Sequence[int] | range) -> bool:
        """Start children in order; stop at the first that fails before becoming ready."""
        for i in indices:
            if not await self._start_child(self._children[i]):
                return False
        return True

    async def _start_child(self, c: _Child) -> bool:
        assert self._nursery is not None
        c.node.incarnation += 1
        c.node.state = NodeState.STARTING
        c.node.started_at = trio.current_time()
        c.node.healthy = False
        c.stop_requested = False
        c.ready = False
        c.alive = True
        c.done = trio.Event()
        await self._nursery.start(self._child_task, c)
        if c.ready:
            c.node.state = NodeState.RUNNING
        return c.ready

    async def _child_task(self, c: _Child, task_status: trio.TaskStatus[None]) -> None:
        ready = _Ready(task_status, c)
        incarnation = c.node.incarnation
        done = c.done          # this incarnation's: an abandoned one must not touch the next's
        error: BaseException | None = None
        expected = False
        delay: float | None = None
        try:
            with trio.CancelScope() as scope:
                c.scope = scope
                try:
                    if isinstance(c.spec, SupervisorSpec):
                        sup = Supervisor(c.spec, c.node, hooks=self.hooks, rng=self.rng)
                        c.supervisor = sup
                        await sup.run(task_status=ready)
                    else:
                        await c.spec.run(c.node, ready)
                except BaseException as exc:
                    try:
                        error, expected, delay = classify(exc)
                    except FatalInChild:
                        raise exc from None
                    if error is None:
                        raise
        finally:
            if c.node.incarnation == incarnation:
                c.alive = False
                c.scope = None
                c.supervisor = None
            done.set()
        self._exits_send.send_nowait(
            _Exit(c, incarnation, error, expected, delay, c.stop_requested))
        ready.release()  # unblocks nursery.start if the child died before it was ready

    # -- supervising -----------------------------------------------------------------------
    async def _supervise(self) -> None:
        async for ex in self._exits_recv:
            if ex.requested or ex.incarnation != ex.child.node.incarnation:
                continue   # we stopped it ourselves, or it is an older incarnation
            await self._handle_exit(ex)

    async def _handle_exit(self, ex: _Exit) -> None:
        c = ex.child
        failed = ex.error is not None
        if failed:
            assert ex.error is not None
            reason = describe_error(ex.error)
            c.node.last_error = reason
            operational = is_operational(ex.error)
            if ex.expected:
                self._log.info("%s ended for an expected restart: %s", c.node.name, reason)
            elif operational:
                self._log.warning("%s ended (incarnation %d): %s", c.node.name, ex.incarnation,
                                  reason)
            else:
                self._log.error("%s failed (incarnation %d): %s\n%s", c.node.name,
                                ex.incarnation, reason, _format_tb(ex.error))
            self.hooks.child_failed(ChildExit(c.node, ex.incarnation, ex.error, ex.expected,
                                              reason, operational))
        else:
            reason = "exited"
            self._log.info("%s returned (incarnation %d)", c.node.name, ex.incarnation)

        restart = c.spec.restart is Restart.PERMANENT or (
            c.spec.restart is Restart.TRANSIENT and failed)
        if not restart:
            c.node.state = NodeState.FAILED if failed else NodeState.STOPPED
            return

        now = trio.current_time()
        if not ex.expected:
            self._restart_times.append(now)
            while self._restart_times and now - self._restart_times[0] > self.spec.intensity.within:
                self._restart_times.popleft()
            if len(self._restart_times) > self.spec.intensity.max_restarts:
                await self._exhausted(
                    f"{len(self._restart_times)} restarts within "
                    f"{self.spec.intensity.within:g}s (last: {c.node.name}: {reason})")
                return
            ran = now - (c.node.started_at or now)
            stable = c.node.healthy or ran >= self.spec.backoff.reset_after
            self._streak = 1 if stable else self._streak + 1

        if ex.delay is not None:
            delay = ex.delay
        elif ex.expected:
            delay = self.spec.backoff.initial
        else:
            delay = self.spec.backoff.delay(self._streak, self.rng)

        idx = self._children.index(c)
        if self.spec.strategy is Strategy.ONE_FOR_ONE:
            targets = [idx]
        elif self.spec.strategy is Strategy.ONE_FOR_ALL:
            targets = list(range(len(self._children)))
        else:
            targets = list(range(idx, len(self._children)))
        await self._stop_children(targets)
        for j in targets:
            self._children[j].node.state = NodeState.BACKOFF
        if delay > 0:
            self._log.info("restarting %s in %.2fs", ", ".join(
                self._children[j].node.name for j in targets), delay)
            await trio.sleep(delay)
        for j in targets:
            self._children[j].node.restarts += 1
        await self._start_range(targets)
        self.hooks.restarted(self.node, [self._children[j].node for j in targets],
                             f"{c.node.name}: {reason}", ex.expected,
                             ex.error is not None and is_operational(ex.error))

    async def _exhausted(self, reason: str) -> None:
        escalate = self.spec.when_exhausted is WhenExhausted.ESCALATE
        self._log.critical("restart intensity exceeded: %s; %s", reason,
                           "escalating" if escalate else
                           "stopping the subtree, retrying in "
                           f"{self.spec.exhausted_retry_delay:g}s")
        self.hooks.exhausted(self.node, reason, escalate)
        if escalate:
            self._gave_up = SupervisorGaveUp(self.node.path, reason)
            self._work.cancel("restart intensity exceeded")
            return
        all_children = range(len(self._children))
        await self._stop_children(all_children)
        self.node.state = NodeState.EXHAUSTED
        for c in self._children:
            c.node.state = NodeState.BACKOFF
        await trio.sleep(self.spec.exhausted_retry_delay)
        self._restart_times.clear()
        self._streak = 0
        for c in self._children:
            c.node.restarts += 1
        self.node.state = NodeState.RUNNING
        await self._start_range(all_children)
        self.hooks.restarted(self.node, [c.node for c in self._children],
                             f"retry after exhaustion ({reason})", False)

    # -- stopping --------------------------------------------------------------------------
    async def _stop_children(self, indices: Sequence[int] | range) -> None:
        for i in reversed(list(indices)):
            await self._stop_child(self._children[i])

    async def _stop_child(self, c: _Child) -> None:
        if not c.alive:
            if c.node.state not in (NodeState.FAILED, NodeState.BACKOFF):
                c.node.state = NodeState.STOPPED
            return
        c.stop_requested = True
        c.node.state = NodeState.STOPPING
        grace = c.spec.stop_grace
        sup = c.supervisor
        if sup is not None:
            with trio.move_on_after(grace):
                await sup.stop()     # its own children, in order, each within its grace
            self.abandoned += sup.abandoned
        if c.scope is not None:
            c.scope.cancel(f"stopped by {self.node.path}")
        with trio.move_on_after(grace) as waited:
            await c.done.wait()
        if waited.cancelled_caught:
            self._abandon(c, grace)
        c.node.state = NodeState.STOPPED

    def _abandon(self, c: _Child, grace: float) -> None:
        """The hard stop: a child deaf to its cancellation is left behind, loudly."""
        incarnation = c.node.incarnation
        self._log.critical(
            "%s (incarnation %d) ignored its cancellation for %.1fs (its stop grace): "
            "abandoned, carrying on without it; the task ends whenever its shielded work does",
            c.node.name, incarnation, grace)
        c.node.last_error = f"did not stop within {grace:g}s of its cancellation: abandoned"
        c.alive = False
        c.scope = None
        c.supervisor = None
        if c.node.path not in self.abandoned:
            self.abandoned.append(c.node.path)
        self.node.set_gauge(ABANDONED_TASKS, len(self.abandoned))
        self.hooks.stop_overdue(c.node, incarnation, grace)


def _format_tb(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).rstrip()


async def run_supervisor(spec: SupervisorSpec, node: TreeNode | None = None, *,
                         hooks: SupervisionHooks | None = None, rng: random.Random | None = None,
                         task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED,
                         ) -> None:
    """Run a whole tree; `task_status.started(supervisor)` hands out the root for `stop()`."""
    sup = Supervisor(spec, node or build_nodes(spec), hooks=hooks, rng=rng)

    class _Relay:
        def started(self, value: None = None) -> None:
            task_status.started(sup)

    await sup.run(task_status=_Relay())
