"""The bot's HTTP endpoints as one small ASGI application (served by hypercorn on trio).

    GET  /health        token-free, for monitors: {mode, trading_state, link, last_bar_age_s,
                        uptime_s, clock: "bot", ...}; 200 healthy, 503 not (see StatusView)
    GET  /tree          token-free: the actor tree (a `tree` dump, reason "request", at most one
                        new dump a second); uptimes in trio (real) seconds, `clock: "trio"`
    POST /kill-switch   token-free for scripts (CONTRACT.md), JSON only, no Origin: 202
    POST /drill/loss    the guardrail drill, simulated clocks only
    GET  /              the console page (token: once as /?token=, then the cookie)
    GET  /static/...    the page's script and style (no data in them)
    GET  /api/status | /api/positions | /api/orders | /api/trades | /api/pnl   (token)
    POST /api/kill-switch {"engaged": bool, "confirm": bool}   release needs confirm (token)
    POST /api/close       {"option_key": str}                    (token)
    WS   /ws            journal events and status changes (token)

HEAD works wherever GET does. Every action is an OperatorCommand to ModeGuard (the same door
as the kill-switch file) and is journaled (`operator_action`) with its source. Why no web
framework: nine routes and one WebSocket do not need one, and every dependency is a thing to
keep; why hypercorn: README, "Dependencies and why".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import trio

from messages.control import OperatorCommand
from runtime.infra.logs import Journal
from runtime.infra.trade_db import stats
from runtime.ops import access
from runtime.ops.connections import Connections
from runtime.ops.status_view import StatusView
from runtime.ops.trade_history import off_the_loop
from runtime.ops.ws import serve_websocket

log = logging.getLogger("runtime.ops.http")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

MAX_BODY_BYTES = 1024
TREE_CACHE_S = 1.0
"""/tree requests within this long of the previous dump get that dump again, so a polling
script cannot flood the log with tree blocks."""
WS_QUEUE = 500
"""Journal events waiting for one WebSocket client at most; past it the oldest go (counted)."""
WS_STATUS_EVERY_S = 0.5
"""A status document goes out at most this often, and only when it changed."""
WS_SEND_TIMEOUT_S = 10.0
"""A client that takes longer than this to accept one message is disconnected."""
TRADES_LIMIT = 200

STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8",
          "index.html": "text/html; charset=utf-8"}
ENDPOINTS = ["GET /health", "GET /tree", "POST /kill-switch", "POST /drill/loss", "GET /",
             "GET /api/status",
             "GET /api/positions", "GET /api/orders", "GET /api/trades", "GET /api/pnl",
             "POST /api/kill-switch", "POST /api/close", "WS /ws"]


@dataclass
class Answer:
    status: int
    body: Any
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"


def _json(status: int, body: Any, *headers: tuple[str, str]) -> Answer:
    return Answer(status, body, list(headers))


def _not_allowed(allow: str) -> Answer:
    return _json(405, {"error": f"method not allowed (allowed: {allow})"}, ("Allow", allow))


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""


def _static(name: str) -> bytes:
    return resources.files("runtime.ops.console").joinpath(name).read_bytes()


class OpsApp:
    """The ASGI application for one bot run."""

    def __init__(self, view: StatusView, journal: Journal, token: str,
                 commands: trio.MemorySendChannel[OperatorCommand],
                 dump_tree: Callable[[str], dict[str, Any]]) -> None:
        self.view = view
        self.journal = journal
        self.token = token
        self.commands = commands
        self.dump_tree = dump_tree
        self._tree: dict[str, Any] | None = None
        self._tree_at = -1e18
        self.connections = Connections()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await serve_websocket(self, scope, receive, send)

    # -- HTTP ---------------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        request = Request(method=scope["method"].upper(), path=scope["path"],
                          query=parse_qs(scope.get("query_string", b"").decode("latin-1")),
                          headers=headers)
        length = headers.get("content-length", "0")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            answer = _json(413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"})
        else:
            body = await _read_body(receive)
            if body is None:
                answer = _json(413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"})
            else:
                request.body = body
                try:
                    answer = await self.route(request)
                except Exception:
                    log.exception("HTTP %s %s failed", request.method, request.path)
                    answer = _json(500, {"error": "internal error (see the log)"})
        await _respond(send, answer, head=request.method == "HEAD")

    def authorized(self, request: Request) -> bool:
        offered = access.bearer(request.headers.get("authorization", "")) or \
            access.cookie_value(request.headers.get("cookie", ""))
        return access.token_ok(self.token, offered)

    async def route(self, r: Request) -> Answer:
        host = r.headers.get("host", "")
        if not access.host_ok(host):
            return _json(403, {"error": "the Host header must name the loopback address"})
        origin = r.headers.get("origin")
        get = r.method in ("GET", "HEAD")
        if r.path == "/health":
            if not get:
                return _not_allowed("GET, HEAD")
            healthy, body = self.view.health()
            return _json(200 if healthy else 503, body)
        if r.path == "/tree":
            return self._tree_dump() if get else _not_allowed("GET, HEAD")
        if r.path in ("/kill-switch", "/drill/loss"):
            if r.method != "POST":
                return _not_allowed("POST")
            if origin is not None:
                return _json(403, {"error": "requests from web pages are refused here (the "
                                            "console uses /api/kill-switch)"})
            return (self._legacy_kill_switch(r) if r.path == "/kill-switch"
                    else self._drill_loss(r))
        if r.path.startswith("/static/"):
            name = r.path.removeprefix("/static/")
            if name not in STATIC or not get:
                return _json(404, {"error": f"no such file: {r.path}"})
            return Answer(200, _static(name), content_type=STATIC[name])
        if origin is not None and not access.origin_ok(origin, host):
            return _json(403, {"error": "requests from other sites' pages are refused"})
        if r.path == "/":
            return self._page(r) if get else _not_allowed("GET, HEAD")
        if r.path.startswith("/api/"):
            if not self.authorized(r):
                return _json(401, {"error": "the console token is required: "
                                            "Authorization: Bearer <STATE_DIR/console.token>"},
                             ("WWW-Authenticate", "Bearer"))
            return await self._api(r, get)
        return _json(404, {"error": f"no such endpoint: {r.path}", "endpoints": ENDPOINTS})

    def _page(self, r: Request) -> Answer:
        offered = r.query.get("token", [None])[0]
        if offered is not None:
            if not access.token_ok(self.token, offered):
                return Answer(401, _refusal("That token is not this bot's token."),
                              content_type="text/html; charset=utf-8")
            cookie = (f"{access.COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict")
            return Answer(303, b"", [("Location", "/"), ("Set-Cookie", cookie)],
                          content_type="text/plain")
        if not self.authorized(r):
            return Answer(401, _refusal("Open the console with its token once: "
                                        "http://127.0.0.1:PORT/?token=TOKEN (the token is in "
                                        "STATE_DIR/console.token)."),
                          content_type="text/html; charset=utf-8")
        return Answer(200, _static("index.html"), content_type=STATIC["index.html"])

    def _tree_dump(self) -> Answer:
        now = trio.current_time()
        if self._tree is None or now - self._tree_at >= TREE_CACHE_S:
            self._tree = {**self.dump_tree("request"), "clock": "trio"}
            self._tree_at = now
        return _json(200, self._tree)

    async def _api(self, r: Request, get: bool) -> Answer:
        reads: dict[str, Callable[[], Any]] = {
            "/api/status": self.view.status, "/api/positions": self.view.positions,
            "/api/orders": self.view.orders, "/api/pnl": self.view.pnl}
        if r.path in reads:
            return _json(200, reads[r.path]()) if get else _not_allowed("GET, HEAD")
        if r.path == "/api/trades":
            return await self._trades() if get else _not_allowed("GET, HEAD")
        if r.path in ("/api/kill-switch", "/api/close"):
            if r.method != "POST":
                return _not_allowed("POST")
            parsed = _json_body(r)
            if isinstance(parsed, Answer):
                return parsed
            if r.path == "/api/kill-switch":
                return self._console_kill_switch(parsed)
            return self._close(parsed)
        return _json(404, {"error": f"no such endpoint: {r.path}", "endpoints": ENDPOINTS})

    async def _trades(self) -> Answer:
        db = self.view.trades
        if db is None:
            return _json(503, {"error": "the trade history is not available (see the log)"})
        trades = await off_the_loop(lambda: db.trades(limit=TRADES_LIMIT))
        return _json(200, {"trades": [t.as_dict() for t in trades],
                           "stats": stats(trades).as_dict(), "limit": TRADES_LIMIT})

    # -- actions ------------------------------------------------------------------------
    def _command(self, kind: str, source: str, **fields: Any) -> Answer | None:
        command = OperatorCommand.model_validate(
            {"kind": kind, "source": source, "ts": self.view.clock.now_utc(), **fields})
        try:
            self.commands.send_nowait(command)
        except trio.WouldBlock:
            log.error("Operator command %s from %s refused: the command queue is full",
                      kind, source)
            return _json(503, {"error": "the command queue is full: ModeGuard is not "
                                        "reading; try again"})
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return _json(503, {"error": "the bot is stopping"})
        self.journal.emit("operator_action", "runtime.ops.http", action=kind, source=source,
                          **fields)
        return None

    def _legacy_kill_switch(self, r: Request) -> Answer:
        if r.headers.get("content-type", "").split(";")[0].strip().lower() != \
                "application/json":
            return _json(415, {"error": "send Content-Type: application/json"})
        parsed = _json_body(r)
        engaged = parsed.get("engaged") if isinstance(parsed, dict) else None
        if not isinstance(engaged, bool):
            return _json(400, {"error": 'the body must be {"engaged": true} or '
                                        '{"engaged": false}'})
        return self._kill_switch(engaged, "http")

    def _console_kill_switch(self, body: dict[str, Any]) -> Answer:
        engaged = body.get("engaged")
        if not isinstance(engaged, bool):
            return _json(400, {"error": 'the body must be {"engaged": true|false}'})
        if not engaged and body.get("confirm") is not True:
            return _json(409, {"error": "releasing the kill switch needs "
                                        '{"engaged": false, "confirm": true}'})
        return self._kill_switch(engaged, "console")

    def _kill_switch(self, engaged: bool, source: str) -> Answer:
        refused = self._command("kill_switch_on" if engaged else "kill_switch_off", source)
        if refused is not None:
            return refused
        log.warning("Kill switch %s by %s request", "ENGAGED" if engaged else "released",
                    source)
        self.journal.emit("kill_switch", "runtime.ops.http", source=source, engaged=engaged)
        return _json(202, {"accepted": True, "engaged": engaged,
                           "note": "ModeGuard applies it; watch trading_state in /health"})

    def _close(self, body: dict[str, Any]) -> Answer:
        key = body.get("option_key")
        if not isinstance(key, str) or not key:
            return _json(400, {"error": 'the body must be {"option_key": "<position key>"}'})
        refused = self._command("close_position", "console", option_key=key)
        if refused is not None:
            return refused
        log.warning("Close of %s requested from the console", key)
        return _json(202, {"accepted": True, "option_key": key,
                           "note": "ModeGuard decides; the exit shows in the journal"})

    def _drill_loss(self, r: Request) -> Answer:
        """The guardrail drill: book a simulated loss past the daily limit (soak, demo).
        Only on a simulated clock: a real account's risk state is never touched."""
        if not self.view.clock.follows_gateway:
            return _json(403, {"error": "drills run only on a simulated clock (--sim-start)"})
        parsed = _json_body(r, empty="{}")
        amount = parsed.get("amount_usd") if isinstance(parsed, dict) else "bad"
        if amount is not None and (not isinstance(amount, int | float) or amount <= 0):
            return _json(400, {"error": 'the body must be {} or {"amount_usd": <positive>}'})
        refused = self._command("drill_loss", "http",
                                amount_usd=float(amount) if amount is not None else None)
        if refused is not None:
            return _json(503, {"error": "ModeGuard is not taking commands right now"})
        log.warning("Guardrail drill requested by HTTP: booking a simulated loss")
        return _json(202, {"accepted": True, "drill": "loss",
                           "note": "watch for halt and a critical alert in the journal"})


def _json_body(r: Request, empty: str = "null") -> Any:
    try:
        parsed = json.loads(r.body or empty.encode())
    except (ValueError, UnicodeDecodeError):
        return _json(400, {"error": "the body must be JSON"})
    if r.path.startswith("/api/") and not isinstance(parsed, dict):
        return _json(400, {"error": "the body must be a JSON object"})
    return parsed


def _refusal(text: str) -> bytes:
    return (f"<!doctype html><meta charset=utf-8><title>Crucible console: token needed"
            f"</title><h1>401: token needed</h1><p>{text}</p>\n").encode()


async def _read_body(receive: Receive) -> bytes | None:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return bytes(body)
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            return None
        if not message.get("more_body"):
            return bytes(body)


async def _respond(send: Send, answer: Answer, *, head: bool) -> None:
    if isinstance(answer.body, bytes):
        payload = answer.body
    else:
        payload = (json.dumps(answer.body, default=str, allow_nan=False) + "\n").encode()
    headers = [(b"content-type", answer.content_type.encode()),
               (b"content-length", str(len(payload)).encode()),
               (b"cache-control", b"no-store"),
               (b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"no-referrer"),
               (b"content-security-policy",
                b"default-src 'self'; connect-src 'self'; frame-ancestors 'none'"),
               *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers)]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else payload})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
