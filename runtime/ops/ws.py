"""`/ws`: journal events and status changes pushed to one console client.

Each client has its own bounded queue (status_view.Subscription) that the journal tap fills in
O(1) and that drops the oldest event when the client falls behind; the client's own task does
all the serializing and sending. So a stalled or slow client can cost only its own task and
its own queue, never an actor's time (docs/BENCHMARKS.md measures it).

A client that does not take a message within SEND_TIMEOUT_S is disconnected: its socket is
closed through the server's connection registry (runtime/ops/connections.py), because
hypercorn shields its socket writes from cancellation. At most MAX_CLIENTS connections are
served at once; a new one beyond that is refused with 503.

Messages (JSON text frames):
    {"type": "hello", "mode": ..., "events": [recent journal events]}
    {"type": "events", "events": [...], "dropped": N}    N = dropped for this client so far
    {"type": "status", "status": {... /api/status ...}}  only when it changed

The token: `Authorization: Bearer` (scripts) or the console's cookie (the page; browsers
cannot set headers on a WebSocket); the Origin must be the console's own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import trio

from runtime.ops import access
from runtime.ops.status_view import Subscription

if TYPE_CHECKING:
    from runtime.ops.http_app import OpsApp

log = logging.getLogger("runtime.ops.http")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

QUEUE = 500
STATUS_EVERY_S = 0.5
BATCH_S = 0.05
"""After the first event, wait this long for more, so a burst goes out as one frame."""
MAX_CLIENTS = 8
SEND_TIMEOUT_S = 10.0
"""A client that has not taken one message in this long has stopped reading: disconnected."""
BATCH_MAX = 200
"""Events per frame at most: a frame stays well under the clients' message size limits."""


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, allow_nan=False, separators=(",", ":"))


async def serve_websocket(app: OpsApp, scope: Scope, receive: Receive, send: Send) -> None:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1")
               for k, v in scope.get("headers", [])}
    host, origin = headers.get("host", ""), headers.get("origin")
    offered = access.bearer(headers.get("authorization", "")) or \
        access.cookie_value(headers.get("cookie", ""))
    first = await receive()
    if first["type"] != "websocket.connect":
        return
    refusal = None
    if scope.get("path") != "/ws":
        refusal = 404
    elif not access.host_ok(host) or (origin is not None and not access.origin_ok(origin, host)):
        refusal = 403
    elif not access.token_ok(app.token, offered):
        refusal = 401
    elif app.view.events.subscribers >= MAX_CLIENTS:
        refusal = 503
    if refusal is not None:
        await send({"type": "websocket.http.response.start", "status": refusal,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "websocket.http.response.body",
                    "body": _dumps({"error": {401: "the console token is required",
                                              403: "refused: Host or Origin",
                                              503: "too many console connections",
                                              404: "no such endpoint"}[refusal]}).encode()})
        return
    await send({"type": "websocket.accept"})
    view = app.view
    sub = view.events.subscribe(QUEUE)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_until_closed, receive, nursery.cancel_scope)
            await _push(send, app, sub, scope)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        view.events.unsubscribe(sub)


async def _until_closed(receive: Receive, scope: trio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            scope.cancel()
            return


async def _after(delay: float, action: Callable[[], None]) -> None:
    await trio.sleep(delay)
    action()


async def _push(send: Send, app: OpsApp, sub: Subscription, scope: Scope) -> None:
    view = app.view

    async def out(doc: dict[str, Any]) -> None:
        text = _dumps(doc)
        async with trio.open_nursery() as watch:
            def stalled() -> None:
                log.warning("A console WebSocket client took no message for %gs: disconnected "
                            "(%d events dropped for it)", SEND_TIMEOUT_S, sub.dropped)
                app.connections.close(scope.get("client"))

            watch.start_soon(_after, SEND_TIMEOUT_S, stalled)
            await send({"type": "websocket.send", "text": text})
            watch.cancel_scope.cancel()

    await out({"type": "hello", "mode": view.mode, "events": list(view.events.recent)})
    sub.take()                       # what is in `recent` was just sent
    last_status = ""
    while True:
        with trio.move_on_after(STATUS_EVERY_S):
            await sub.wake.wait()
            await trio.sleep(BATCH_S)
        events = sub.take()
        for i in range(0, len(events), BATCH_MAX):
            await out({"type": "events", "events": events[i:i + BATCH_MAX],
                       "dropped": sub.dropped})
        doc = view.status()
        status = _dumps(doc)
        if status != last_status:
            last_status = status
            await out({"type": "status", "status": doc})
