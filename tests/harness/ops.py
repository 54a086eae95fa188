"""The HTTP server (health, tree, console API) served for a hand-built status read-model, so
each test sets the latest values it needs. Real HTTP on 127.0.0.1, a real hypercorn."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

from config.market_calendar import ET
from config.settings import Settings
from messages.status import BookStatus, PositionStatus, WorkingOrder
from runtime.app.bot import status_view
from runtime.app.wiring import Wiring
from runtime.infra.clock import Clock
from runtime.ops.access import TOKEN_FILE
from runtime.ops.health import serve_ops
from runtime.ops.status_view import StatusView
from runtime.supervision.observe import TreeObserver
from runtime.supervision.supervisor import ActorSpec, SupervisorSpec, build_nodes
from runtime.supervision.tree import NodeState, TreeNode
from tests.harness import events_named, memory_journal, settings_for

START = dt.datetime(2026, 11, 20, 10, 0, tzinfo=ET)


async def _idle(node: TreeNode, task_status: trio.TaskStatus[None]) -> None:
    task_status.started()
    await trio.sleep_forever()


@dataclass
class Served:
    view: StatusView
    wiring: Wiring
    clock: Clock
    settings: Settings
    port: int
    events: list[dict[str, Any]]
    client: httpx.AsyncClient          # no token
    api: httpx.AsyncClient             # Authorization: Bearer <the console token>
    token: str

    def journal(self, event: str) -> list[dict[str, Any]]:
        return events_named(self.events, event)


@asynccontextmanager
async def open_health(tmp_path: Path, **env: str) -> AsyncIterator[Served]:
    settings = settings_for(tmp_path, **env)
    journal, events = memory_journal("ops")
    wiring = Wiring()
    root = build_nodes(SupervisorSpec("root", (ActorSpec("notifier", _idle),
                                               ActorSpec("mode_guard", _idle))))
    for node in root.walk():
        node.state, node.incarnation, node.started_at = NodeState.RUNNING, 1, trio.current_time()
    clock = Clock(START)
    view = status_view(wiring, settings, clock, journal)
    view.tree = root.snapshot
    observer = TreeObserver(root, journal, wiring.alerts, clock)
    try:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_ops, view, journal, wiring.commands.clone_sender(),
                                       observer.dump)
            token = (settings.state_dir / TOKEN_FILE).read_text(encoding="ascii").strip()
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, timeout=5.0) as client, \
                    httpx.AsyncClient(base_url=base, timeout=5.0,
                                      headers={"Authorization": f"Bearer {token}"}) as api:
                yield Served(view=view, wiring=wiring, clock=clock, settings=settings, port=port,
                             events=events, client=client, api=api, token=token)
            nursery.cancel_scope.cancel()
    finally:
        journal.remove_tap(view.events)
        if view.trades is not None:
            view.trades.close()


def one_position_book(h: Served, mark: float) -> BookStatus:
    """A PAPER book with one protected SPY call marked at `mark` and its take-profit working."""
    now = h.clock.now_utc()
    return BookStatus(
        ts=now, mode="PAPER", realized_pnl_today=25.0, unrealized_pnl=(mark - 1.5) * 200,
        trades_today=1, reconciled=True,
        positions=(PositionStatus(option_key="SPY 20261120 C 600", symbol="SPY", right="C",
                                  strike=600.0, expiry=dt.date(2026, 11, 20), contracts=2,
                                  entry_premium=1.5, mark=mark, mark_ts=now,
                                  unrealized_pnl=(mark - 1.5) * 200, protection="native",
                                  strategy="A"),),
        orders=(WorkingOrder(order_ref="e1/tp", option_key="SPY 20261120 C 600",
                             action="SELL", quantity=2, order_type="LMT", limit=2.25,
                             state="working", purpose="take_profit"),))
