"""What a supervision tree is, declared: restart types and strategies, intensity, backoff, and
the specs of actors and supervisors (runtime/app/app.py declares the bot's tree with these).

Plain data: supervisor.py runs it.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from runtime.supervision.tree import TreeNode


class Restart(enum.StrEnum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


class Strategy(enum.StrEnum):
    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


class WhenExhausted(enum.StrEnum):
    ESCALATE = "escalate"   # stop the children and fail to the parent (OTP)
    PERSIST = "persist"     # stop the children, report, wait, start over (never give up)


@dataclass(frozen=True)
class Intensity:
    """At most `max_restarts` restarts within `within` seconds (trio time)."""

    max_restarts: int = 3
    within: float = 5.0


@dataclass(frozen=True)
class Backoff:
    """Exponential restart delay with jitter.

    The streak (and so the delay) resets when the failed incarnation had run `reset_after`
    seconds, or had declared itself healthy (`TreeNode.healthy`, set by the actor: e.g. a
    Gateway session that came up). Backoff is for crash loops that never get anywhere; a
    healthy child that later fails restarts at once, and the restart intensity still bounds
    a loop of short healthy lives.
    """

    initial: float = 0.25
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2
    reset_after: float = 30.0

    def delay(self, streak: int, rng: random.Random) -> float:
        """Delay before the `streak`-th consecutive restart (1-based)."""
        if streak <= 0 or self.initial <= 0:
            return 0.0
        base = min(self.maximum, self.initial * self.factor ** min(streak - 1, 64))
        jittered = base * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)
        return max(0.0, min(self.maximum, jittered))


RunFn = Callable[[TreeNode, "trio.TaskStatus[None]"], Awaitable[None]]
"""An actor body: `async def run(node, task_status)`; calls `task_status.started()` when ready."""


@dataclass(frozen=True)
class ActorSpec:
    name: str
    run: RunFn
    restart: Restart = Restart.PERMANENT
    stop_grace: float = 5.0


@dataclass(frozen=True)
class SupervisorSpec:
    name: str
    children: tuple[ActorSpec | SupervisorSpec, ...]
    strategy: Strategy = Strategy.ONE_FOR_ONE
    intensity: Intensity = Intensity()
    backoff: Backoff = Backoff()
    restart: Restart = Restart.PERMANENT
    when_exhausted: WhenExhausted = WhenExhausted.ESCALATE
    exhausted_retry_delay: float = 60.0
    stop_grace: float = 10.0


ChildSpec = ActorSpec | SupervisorSpec


def build_nodes(spec: SupervisorSpec, parent: TreeNode | None = None) -> TreeNode:
    """The registry nodes of a tree, built once: they outlive every incarnation."""
    if parent is None:
        node = TreeNode(name=spec.name, path=spec.name, kind="supervisor",
                        strategy=str(spec.strategy), restart=str(spec.restart))
    else:
        node = parent.child(spec.name, "supervisor", strategy=str(spec.strategy),
                            restart=str(spec.restart))
    for c in spec.children:
        if isinstance(c, SupervisorSpec):
            build_nodes(c, node)
        else:
            node.child(c.name, "actor", restart=str(c.restart))
    return node
