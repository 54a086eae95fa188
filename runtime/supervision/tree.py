"""The registry of the live supervision tree and its dump (text block and nested JSON).

Every supervisor and actor has one `TreeNode` for its whole life; incarnations come and go, the
node stays, so restarts, uptime and the last error can be read at any moment (by the tree dump,
the health endpoint's `/tree` and the tests).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping
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

Scalar = int | float | str | bool | None
GaugeValue = Scalar | Mapping[str, Scalar]
"""A gauge shows a number (or a short word), or one number per key (contracts per position)."""


@dataclass(frozen=True)
class Gauge:
    """A value an actor shows in the tree for the operator: display only, never state.

    The name says what is counted and in what unit (`bars_in`, `positions_open`, `lag_ms`),
    so a number in the dump cannot be mistaken for another (an inbox depth, a total). `counts`
    is the one-line meaning, shown in `/tree` JSON. Declare gauges as module constants next to
    the actor that sets them; the actor keeps its state itself and writes the gauge after
    changing it (`ctx.gauge(BARS_IN, n)`). Nothing may read a gauge to decide anything: other
    parts get values over channels (messages/status.py for the read-model).
    """

    name: str
    counts: str

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or not self.name.islower():
            raise ValueError(f"gauge name {self.name!r}: lower_snake_case, unit or noun last")


ROOT_JOURNAL_DROPPED = Gauge("journal_lines_dropped",
                             "event journal lines lost since start (writer behind or disk "
                             "refusing); each gap is also a journal_dropped event")
ABANDONED_TASKS = Gauge("abandoned_tasks",
                        "incarnations that ignored their cancellation past the stop grace and "
                        "were left behind (escalated: actor_stop_overdue)")


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
    gauges: dict[str, tuple[Gauge, GaugeValue]] = field(default_factory=dict)

    def set_gauge(self, gauge: Gauge, value: GaugeValue) -> None:
        """Show `value` under `gauge.name` in the dump (display only; see `Gauge`)."""
        self.gauges[gauge.name] = (gauge, value)

    def shown(self, name: str) -> GaugeValue:
        """What the gauge `name` shows now (None if never set): for the dump and for tests
        that check the display; an actor never decides on it (see `Gauge`)."""
        entry = self.gauges.get(name)
        return None if entry is None else entry[1]

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
        if self.gauges:
            out["gauges"] = {name: {"value": _json_value(value), "counts": gauge.counts}
                             for name, (gauge, value) in self.gauges.items()}
        if self.children:
            out["children"] = [c.snapshot(now) for c in self.children]
        return out


def _json_value(value: GaugeValue) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{_fmt_value(v)}" for k, v in value.items()) + "}"
    return str(value)


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
    if channels:   # items waiting in each channel the actor reads: a depth, not a total
        parts.append(" ".join(f"inbox.{k}={v}" for k, v in sorted(channels.items())))
    gauges = snapshot.get("gauges") or {}
    if gauges:
        parts.append(" ".join(f"{k}={_fmt_value(g.get('value'))}"
                              for k, g in sorted(gauges.items())))
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
