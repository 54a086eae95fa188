"""What an actor incarnation is given: its context (clock, settings, journal, alerts, log).

An actor module reads top to bottom as its Inbox and Outbox (dataclasses of channel ends), its
state, and `async def run(ctx, inbox, outbox, *, task_status)`. The wiring in runtime/app/app.py
builds the inbox/outbox from fresh channel clones for every incarnation and closes them after.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from config.settings import Settings
from messages.alerts import Alert, Severity
from runtime.infra.clock import Clock
from runtime.infra.logs import Journal
from runtime.supervision.channels import DropOldest, Ports
from runtime.supervision.supervisor import ActorSpec, Restart
from runtime.supervision.tree import Gauge, GaugeValue, TreeNode

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "critical": logging.CRITICAL}


@dataclass(frozen=True)
class ActorContext:
    node: TreeNode
    clock: Clock
    settings: Settings
    journal: Journal
    alerts: DropOldest[Alert]
    log: logging.Logger

    @property
    def path(self) -> str:
        return self.node.path

    @property
    def incarnation(self) -> int:
        return self.node.incarnation

    def emit(self, event: str, /, **fields: Any) -> None:
        """Write one event to the journal, attributed to this actor."""
        self.journal.emit(event, self.node.path, **fields)

    def alert(self, severity: Severity, title: str, text: str = "", *, key: str | None = None,
              **fields: str) -> None:
        """Tell the operator: a log line, an `alert` journal event and a Notifier message.

        Journaled here, at the source, so the alert is on record even if the Notifier is down.
        """
        self.log.log(_LEVELS[severity], "%s%s", title, f": {text}" if text else "")
        self.journal.emit("alert", self.node.path, severity=severity, title=title, text=text)
        self.alerts.send_nowait(Alert(severity=severity, title=title, text=text,
                                      source=self.node.path, ts=self.clock.now_utc(), key=key,
                                      fields=fields))

    def mark_healthy(self) -> None:
        """This incarnation works: if it fails later, restart it without growing the backoff."""
        self.node.healthy = True

    def set_note(self, note: str | None) -> None:
        """A short status shown in the tree dump (e.g. `session 3 up`)."""
        self.node.note = note

    def gauge(self, gauge: Gauge, value: GaugeValue) -> None:
        """Show a counted value in the tree dump (display only: the actor keeps its state)."""
        self.node.set_gauge(gauge, value)


class _Depth(Protocol):
    name: str

    def depth(self) -> int: ...


StartFn = Callable[[ActorContext, Ports, "trio.TaskStatus[None]"], Awaitable[None]]


@dataclass(frozen=True)
class ActorEnv:
    """What every actor context is made from (one per program)."""

    clock: Clock
    settings: Settings
    journal: Journal
    alerts: DropOldest[Alert]

    def context(self, node: TreeNode) -> ActorContext:
        return ActorContext(node=node, clock=self.clock, settings=self.settings,
                            journal=self.journal, alerts=self.alerts,
                            log=logging.getLogger(node.path))

    def actor(self, name: str, start: StartFn, *, reads: Sequence[_Depth] = (),
              restart: Restart = Restart.PERMANENT, stop_grace: float = 5.0) -> ActorSpec:
        """An ActorSpec whose every incarnation gets a fresh context and fresh channel clones."""

        async def run(node: TreeNode, task_status: trio.TaskStatus[None]) -> None:
            node.depth_probe = lambda: {ch.name: ch.depth() for ch in reads}
            ctx = self.context(node)
            with Ports() as ports:
                await start(ctx, ports, task_status)

        return ActorSpec(name, run, restart=restart, stop_grace=stop_grace)
