"""The bot's loopback HTTP server, run as a supervised child of the tree.

One port (HEALTH_PORT, 127.0.0.1 only) serves the health endpoint for monitors and the
operator console (runtime/ops/http_app.py lists the routes). The server is hypercorn's trio
worker with a small ASGI app: a bug in a route answers 500 and the server goes on; a crash of
the server itself ends this child, which its supervisor restarts like any actor (trading never
depends on it). A taken port is not a crash: the child logs it and retries binding.

hypercorn's own `serve` is not used, for one reason: it shields every socket write from
cancellation, so a WebSocket client that stops reading would hold its connection's task, and
with it the bot's shutdown, until TCP gives up (measured: a stalled console client kept the
bot from stopping for good). Here each connection's stream is known (`Connections`), so a
stalled client is disconnected after a send timeout and every connection is closed when the
server stops; the connections themselves are served by hypercorn's TCPServer, as `serve` does.

The actual port (HEALTH_PORT=0 picks a free one) is logged, journaled (`health_listening`)
and written to STATE_DIR/health_port for `tools.dump_tree`. The console token's path (never
its value) is logged at start.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, cast

import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config
from hypercorn.trio.worker_context import WorkerContext

from messages.control import OperatorCommand
from runtime.infra.logs import Journal
from runtime.ops import access
from runtime.ops.http_app import MAX_BODY_BYTES, OpsApp
from runtime.ops.status_view import LINK_GRACE_S, StatusView
from runtime.ops.trade_history import follow_trades

__all__ = ["HOST", "LINK_GRACE_S", "MAX_BODY_BYTES", "PORT_FILE", "port_file", "serve_ops"]

log = logging.getLogger("runtime.ops.health")

PORT_FILE = "health_port"
"""STATE_DIR/health_port holds the port actually bound (one line)."""
HOST = "127.0.0.1"
REBIND_RETRY_S = 30.0
"""If the port is taken, the bot runs on (trading does not depend on it) and retries binding."""
TRADES_JSONL = "trades.jsonl"


def port_file(state_dir: Path) -> Path:
    return state_dir / PORT_FILE


def _write_port_file(path: Path, port: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{port}\n", encoding="ascii")
    os.replace(tmp, path)


def _config(port: int) -> Config:
    config = Config()
    config.bind = [f"{HOST}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("runtime.ops.http.server")
    config.graceful_timeout = 1.0
    config.keep_alive_timeout = 5.0
    config.h11_max_incomplete_size = 8 * 1024
    config.websocket_max_message_size = 64 * 1024
    config.include_server_header = False
    return config


async def _listen(port: int) -> list[trio.SocketListener] | None:
    try:
        return await trio.open_tcp_listeners(port, host=HOST)
    except OSError as exc:
        log.error("Health endpoint cannot listen on %s:%d (%s); retrying every %gs",
                  HOST, port, exc, REBIND_RETRY_S)
        return None


async def _serve(app: OpsApp, listeners: list[trio.SocketListener], config: Config) -> None:
    """hypercorn's TCPServer on every accepted connection; on the way out (cancelled),
    every connection is closed first, so none can hold the stop."""
    wrapper = ASGIWrapper(cast(Any, app))   # ASGI 3 in plain mappings, not hypercorn's TypedDicts
    context = WorkerContext(None)
    async with trio.open_nursery() as handlers:
        try:
            await trio.serve_listeners(partial(app.connections.serve, wrapper, config, context),
                                       listeners, handler_nursery=handlers)
        finally:
            app.connections.close_all()


async def serve_ops(view: StatusView, journal: Journal,
                    commands: trio.MemorySendChannel[OperatorCommand],
                    dump_tree: Callable[[str], dict[str, Any]], *, port: int | None = None,
                    task_status: trio.TaskStatus[int | None] = trio.TASK_STATUS_IGNORED
                    ) -> None:
    """Serve until cancelled. Started with the port bound (or with None when the port is
    taken: trading goes on without the endpoint, and binding is retried)."""
    settings = view.settings
    want = settings.health_port if port is None else port
    token, token_path, created = access.load_or_create_token(settings.state_dir)
    log.info("Console token %s %s (send it as Authorization: Bearer, or open /?token= once)",
             "created in" if created else "read from", token_path)
    app = OpsApp(view, journal, token, commands, dump_tree)
    path = port_file(settings.state_dir)
    started = False
    bound: int | None = None
    try:
        async with trio.open_nursery() as nursery:
            if view.trades is not None:
                nursery.start_soon(follow_trades, view.trades,
                                   settings.log_dir / TRADES_JSONL, view.events)
            while (listeners := await _listen(want)) is None:
                if not started:
                    started = True
                    task_status.started(None)
                await trio.sleep(REBIND_RETRY_S)
            bound = int(listeners[0].socket.getsockname()[1])
            nursery.start_soon(_serve, app, listeners, _config(bound))
            _write_port_file(path, bound)
            log.info("Health endpoint and console on http://%s:%d (GET /health, GET /tree, "
                     "POST /kill-switch, console at /)", HOST, bound)
            journal.emit("health_listening", "runtime.ops.health", host=HOST, port=bound)
            if not started:
                started = True
                task_status.started(bound)
            await trio.sleep_forever()
    finally:
        commands.close()
        if bound is not None:
            try:
                if path.read_text(encoding="ascii").strip() == str(bound):
                    path.unlink()
            except OSError:
                pass
