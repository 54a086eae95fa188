"""Making the tree visible: restart events, tree dumps, alerts on exhaustion.

The tree is dumped (an indented block in the human log and a `tree` journal event) at start,
after every restart (but not after each failed reconnect attempt), every 15 minutes, on
SIGUSR1 (POSIX) and on `GET /tree`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import trio

from messages.alerts import Alert
from runtime.infra.clock import Clock
from runtime.infra.logs import Journal, log_block
from runtime.supervision.channels import DropOldest
from runtime.supervision.supervisor import ChildExit, SupervisionHooks
from runtime.supervision.tree import ROOT_JOURNAL_DROPPED, TreeNode, render_tree

log = logging.getLogger("runtime")

PERIODIC_DUMP_SECONDS = 15 * 60


class TreeObserver(SupervisionHooks):
    """Journals restarts, dumps the tree after each, alerts when a subtree is exhausted."""

    def __init__(self, root: TreeNode, journal: Journal, alerts: DropOldest[Alert],
                 clock: Clock, on_exhausted: Callable[[TreeNode], None] | None = None) -> None:
        self.root = root
        self.journal = journal
        self.alerts = alerts
        self.clock = clock
        self.on_exhausted = on_exhausted
        self.reports_health: set[str] = set()      # nodes seen healthy (they mark it)
        self.failed_attempt = False                 # the last failure was a retry that failed

    def dump(self, reason: str) -> dict[str, Any]:
        self.root.set_gauge(ROOT_JOURNAL_DROPPED, self.journal.stats.dropped)
        tree = self.root.snapshot()
        log_block(log, f"Actor tree ({reason}):", render_tree(self.root))
        self.journal.emit("tree", "runtime", reason=reason, tree=tree)
        return tree

    def stop_overdue(self, node: TreeNode, incarnation: int, grace: float) -> None:
        title = f"{node.path} would not stop"
        text = (f"incarnation {incarnation} ignored its cancellation for {grace:g}s and was "
                "abandoned; the supervisor carried on without it")
        self.journal.emit("actor_stop_overdue", node.path, incarnation=incarnation,
                          grace_s=grace)
        self.journal.emit("alert", node.path, severity="critical", title=title, text=text)
        self.alerts.send_nowait(Alert(severity="critical", title=title, text=text,
                                      source=node.path, ts=self.clock.now_utc(),
                                      key=f"overdue:{node.path}"))

    def child_failed(self, exit: ChildExit) -> None:
        # a node that marks itself healthy (GatewayLink: a session up) and failed before it
        # did is a failed reconnect attempt: its restart gets no tree (one per outage, not
        # one per attempt)
        path = exit.node.path
        if exit.node.healthy:
            self.reports_health.add(path)
        self.failed_attempt = path in self.reports_health and not exit.node.healthy
        if not exit.expected:
            self.journal.emit("actor_failed", exit.node.path, incarnation=exit.incarnation,
                              reason=exit.reason, operational=exit.operational)

    def restarted(self, supervisor: TreeNode, nodes: Sequence[TreeNode], reason: str,
                  expected: bool, operational: bool = False) -> None:
        for node in nodes:
            self.journal.emit("actor_restart", node.path, path=node.path,
                              incarnation=node.incarnation, reason=reason, expected=expected,
                              operational=operational)
        attempt, self.failed_attempt = self.failed_attempt, False
        log.log(logging.INFO if expected or operational else logging.WARNING,
                "restarted %s (%s)", ", ".join(n.path for n in nodes), reason)
        if not attempt or any(n.healthy for n in nodes):     # a retry that is up: done
            self.dump("restart")

    def exhausted(self, supervisor: TreeNode, reason: str, escalating: bool) -> None:
        title = f"Supervisor {supervisor.path} exceeded its restart intensity"
        text = reason + ("; escalating" if escalating else "; slow retrying, never giving up")
        self.journal.emit("alert", supervisor.path, severity="critical", title=title, text=text)
        self.alerts.send_nowait(Alert(severity="critical", title=title, text=text,
                                      source=supervisor.path, ts=self.clock.now_utc(),
                                      key=f"exhausted:{supervisor.path}"))
        if self.on_exhausted is not None:
            self.on_exhausted(supervisor)


async def dump_periodically(observer: TreeObserver,
                            every: float = PERIODIC_DUMP_SECONDS) -> None:
    """Every 15 minutes of trio time (real seconds in production)."""
    while True:
        await trio.sleep(every)
        observer.dump("periodic")
