"""The registry of the live supervision tree and its dump (text block and nested JSON).

Every supervisor and actor has one `TreeNode` for its whole life; incarnations come and go, the
node stays, so restarts, uptime and the last error can be read at any moment (by the tree dump,
the health endpoint's `/tree` and the tests).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import trio


class NodeState(enum.StrEnum):
    IDLE = "idle"            # declared, not started yet
    STARTING = "starting"    # started, not ready yet
    RUNNING = "running"
    BACKOFF = "backoff"      # failed; waiting before the restart
    STOPPING = "stopping"
    STOPPED = "stopped"      # stopped on purpose (shutdown, or a transient/temporary child done)
    FAILED = "failed"        # gave up (supervisor exhausted) or a temporary child crashed
    EXHAUSTED = "exhausted"  # a persistent supervisor past its restart intensity, slow retrying


DepthProbe = Callable[[], dict[str, int]]
"""Returns {channel name: items buffered} for the channels an actor reads."""


@dataclass(eq=False)
class TreeNode:
    name: str
    path: str
    kind: str                      # "supervisor" or "actor"
    strategy: str | None = None    # supervisors only
    restart: str = "permanent"
    state: NodeState = NodeState.IDLE
    incarnation: int = 0
    restarts: int = 0
    started_at: float | None = None   # trio time of the current incarnation's start
    last_error: str | None = None
    note: str | None = None           # free-form status an actor may set (e.g. "connected s=3")
    healthy: bool = False             # this incarnation got where it was going (see Supervisor)
    children: list[TreeNode] = field(default_factory=list)
    depth_probe: DepthProbe | None = None
    extra: dict[str, Any] = field(default_factory=dict)   # actor-reported state, e.g. breakers

    def child(self, name: str, kind: str, **kw: Any) -> TreeNode:
        node = TreeNode(name=name, path=f"{self.path}.{name}", kind=kind, **kw)
        self.children.append(node)
        return node

    def walk(self) -> Iterator[TreeNode]:
        yield self
        for c in self.children:
            yield from c.walk()

    def find(self, path: str) -> TreeNode:
        for n in self.walk():
            if n.path == path:
                return n
        raise KeyError(path)

    def uptime(self, now: float | None = None) -> float:
        if self.started_at is None or self.state not in (NodeState.RUNNING, NodeState.STARTING):
            return 0.0
        return max(0.0, (trio.current_time() if now is None else now) - self.started_at)

    def channel_depths(self) -> dict[str, int]:
        if self.depth_probe is None:
            return {}
        try:
            return self.depth_probe()
        except Exception:  # a probe must never break a dump
            return {}

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """Nested JSON-able dict (CONTRACT.md: name, state, incarnation, restarts, uptime...)."""
        if now is None:
            now = trio.current_time()
        out: dict[str, Any] = {
            "name": self.name,
            "path": self.path,
            "kind": self.kind,
            "state": str(self.state),
            "incarnation": self.incarnation,
            "restarts": self.restarts,
            "uptime_s": round(self.uptime(now), 3),
            "last_error": self.last_error,
            "channels": self.channel_depths(),
        }
        if self.strategy:
            out["strategy"] = self.strategy
        if self.note:
            out["note"] = self.note
        if self.extra:
            out["extra"] = dict(self.extra)
        if self.children:
            out["children"] = [c.snapshot(now) for c in self.children]
        return out


def _fmt_uptime(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def render_snapshot(snapshot: dict[str, Any], depth: int = 0) -> list[str]:
    """The indented block, one line per node, from a `snapshot()` (or `/tree` JSON)."""
    parts = [f"{'  ' * depth}{snapshot.get('name', '?')} [{snapshot.get('state', '?')}]"]
    if snapshot.get("strategy"):
        parts.append(str(snapshot["strategy"]))
    parts.append(f"inc={snapshot.get('incarnation', 0)} restarts={snapshot.get('restarts', 0)} "
                 f"up={_fmt_uptime(float(snapshot.get('uptime_s') or 0.0))}")
    channels = snapshot.get("channels") or {}
    if channels:
        # inbox depths (messages waiting), said so: "bars=0" read as "no bars seen"
        parts.append("queued " + " ".join(f"{k}={v}" for k, v in sorted(channels.items())))
    if snapshot.get("note"):
        parts.append(f"({snapshot['note']})")
    error = snapshot.get("last_error")
    if error:
        error = error if len(error) <= 120 else error[:117] + "..."
        parts.append(f"last_error={error!r}")
    lines = [" ".join(parts)]
    for child in snapshot.get("children") or []:
        lines += render_snapshot(child, depth + 1)
    return lines


def render_tree(node: TreeNode, now: float | None = None) -> list[str]:
    """The indented block for the human log, one line per node."""
    return render_snapshot(node.snapshot(now))
