"""Running the real Notifier actor against a real local HTTP server, with real log files."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from actors import notifier
from config.market_calendar import ET
from messages.alerts import Alert, Severity
from runtime.app.bot import status_view
from runtime.app.wiring import Wiring
from runtime.infra.clock import Clock
from runtime.infra.logs import open_logging
from runtime.ops.discord import Timeouts
from runtime.ops.status_view import StatusView
from runtime.supervision.actor import ActorContext, ActorEnv
from runtime.supervision.channels import DropOldest
from runtime.supervision.tree import TreeNode
from tests.harness import settings_for

START = dt.datetime(2026, 11, 20, 9, 30, tzinfo=ET)

FAST = notifier.NotifierConfig(
    timeouts=Timeouts(connect=1.0, read=2.0, total=3.0), shutdown_flush_s=1.5,
    min_interval_s=0.02, backoff_initial_s=0.05, backoff_max_s=0.2, startup_link_wait_s=0.0)
"""Production behaviour on a shorter fuse, so a test takes well under a second. The startup
message goes at once (the fake bot's Gateway link never comes up unless a test says so)."""


@dataclass
class Running:
    ctx: ActorContext            # the Notifier's own context
    source: ActorContext         # another actor raising alerts
    alerts: DropOldest[Alert]
    events: list[dict[str, Any]]
    log_dir: Path
    view: StatusView             # the status read-model it reads
    wiring: Wiring               # the latest values behind `view`
    stop: Callable[[], None]

    def alert(self, severity: Severity, title: str, text: str = "", *,
              key: str | None = None, **fields: str) -> None:
        self.source.alert(severity, title, text, key=key, **fields)

    def notify(self, outcome: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "notify"
                and (outcome is None or e["outcome"] == outcome)]

    def log_text(self) -> str:
        return "\n".join(p.read_text(encoding="utf-8") for p in sorted(self.log_dir.iterdir())
                         if p.is_file())


@asynccontextmanager
async def open_notifier(tmp_path: Path, *, url: str | None,
                        config: notifier.NotifierConfig = FAST,
                        env: dict[str, str] | None = None, level: str = "INFO",
                        incarnation: int = 1, alerts: DropOldest[Alert] | None = None,
                        memory: notifier.Memory | None = None) -> AsyncIterator[Running]:
    """The Notifier actor running as the runtime runs it; leaving the block stops it (cancel),
    which runs its shielded shutdown flush."""
    values = dict(env or {})
    if url:
        values["DISCORD_WEBHOOK_URL"] = url
    settings = settings_for(tmp_path, **values)
    with open_logging(log_file=settings.log_file, max_bytes=1 << 22, backup_count=2,
                      level=level, console=False) as journal:
        events: list[dict[str, Any]] = []
        journal.add_tap(events.append)
        if alerts is None:
            alerts = DropOldest("alerts", 256, keep=lambda a: a.severity == "critical")
        wiring = Wiring()
        clock = Clock(START)
        view = status_view(wiring, settings, clock, journal)
        actor_env = ActorEnv(clock=clock, settings=settings, journal=journal, alerts=alerts)
        node = TreeNode("notifier", "root.notifier", "actor", incarnation=incarnation)
        source = actor_env.context(TreeNode("strategy_selector",
                                            "root.brain.strategy_selector", "actor"))
        async with trio.open_nursery() as nursery:
            ctx = actor_env.context(node)
            await nursery.start(notifier.run, ctx, notifier.Inbox(alerts=alerts, status=view),
                                notifier.Outbox(), config, memory)
            yield Running(ctx=ctx, source=source, alerts=alerts, events=events,
                          log_dir=settings.log_dir, view=view, wiring=wiring,
                          stop=nursery.cancel_scope.cancel)
            nursery.cancel_scope.cancel()
