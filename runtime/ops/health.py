"""The health endpoint: what a scheduler, a script or the operator can ask the running bot.

    GET  /health       JSON {mode, trading_state, link, last_bar_age_s, uptime_s, ...};
                       200 while healthy, 503 while the link has been down longer than
                       LINK_GRACE_S (outside the scheduled Gateway restart) or trading is
                       halted by a fault
    GET  /tree         the actor tree (the `tree` dump, reason "request"); the way to get a
                       dump on Windows, where there is no SIGUSR1 (`python -m tools.dump_tree`)
    POST /kill-switch  body {"engaged": true|false}, Content-Type application/json: an
                       OperatorCommand to ModeGuard; answers 202 (ModeGuard applies it: watch
                       `trading_state` in /health), 503 when the command queue is full

HEAD works wherever GET does. The server is HTTP/1.1 on h11 over trio, bound to 127.0.0.1
only, one request per connection, with bounded request sizes and a deadline per connection,
so a stuck or hostile client costs one small task for a few seconds and nothing else.

Loopback is not a wall against a web page open in the operator's browser, which may POST to
127.0.0.1. So the kill switch demands `Content-Type: application/json` (a cross-site form
cannot send it without a CORS preflight, which is never granted) and refuses requests that
carry an `Origin` header; every request must name a loopback `Host` (DNS rebinding).

The actual port (HEALTH_PORT=0 picks a free one) is logged, journaled (`health_listening`)
and written to STATE_DIR/health_port for `tools.dump_tree`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h11
import trio

from messages.control import OperatorCommand, TradingState

if TYPE_CHECKING:
    from runtime.app.bot import BotHandle

log = logging.getLogger("runtime.ops.health")

LINK_GRACE_S = 120.0
"""The link may be down this long (clock seconds) before /health answers 503: a Gateway blip
or a reconnect with backoff is normal. The scheduled daily restart (`expected_outage`) never
counts, however long it takes; GatewayLink alerts separately when it overruns."""

PORT_FILE = "health_port"
"""STATE_DIR/health_port holds the port actually bound (one line)."""

HOST = "127.0.0.1"
MAX_HEAD_BYTES = 8 * 1024
MAX_BODY_BYTES = 1024
CONNECTION_DEADLINE_S = 5.0
"""A connection that has not sent its request and read the answer by then is closed."""
MAX_CONNECTIONS = 16
"""Connections served at once; more are closed at once (a local script does not need more)."""
REBIND_RETRY_S = 30.0
"""If the port is taken, the bot runs on (trading does not depend on it) and retries binding."""
LINGER_S = 0.5
LINGER_MAX_BYTES = 256 * 1024
TREE_CACHE_S = 1.0
"""/tree requests within this long of the previous dump get that dump again instead of a new
one, so a polling script cannot flood the log with tree blocks."""

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


@dataclass
class Answer:
    status: int
    body: Any
    headers: Sequence[tuple[str, str]] = ()


# -- /health ------------------------------------------------------------------------------
def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat().replace(
        "+00:00", "Z")


def health_report(bot: BotHandle) -> Answer:
    """The /health answer from the bot's latest values (pure reading, never blocks)."""
    clock = bot.clock
    now = clock.now_utc()
    link = bot.wiring.link_state.value
    trading = bot.wiring.trading.value
    last_bar = bot.wiring.last_bar.value
    problems: list[str] = []
    link_down_s: float | None = None
    if not link.up:
        since = link.since or clock.utc_at(bot.started_at)
        link_down_s = max(0.0, (now - since).total_seconds())
        if link_down_s > LINK_GRACE_S and not link.expected_outage:
            problems.append(f"Gateway link {link.status.value} for {link_down_s:.0f}s "
                            f"(grace {LINK_GRACE_S:g}s)"
                            + (f": {link.reason}" if link.reason else ""))
    if trading.state is TradingState.HALTED and trading.fault:
        problems.append("trading halted by a fault: " + (", ".join(trading.reasons) or "?"))
    uptime = (trio.current_time() - bot.started_at) * clock.speed
    body: dict[str, Any] = {
        "healthy": not problems,
        "problems": problems,
        "mode": bot.settings.mode.value,
        "trading_state": trading.state.value,
        "trading_reasons": list(trading.reasons),
        "trading_fault": trading.fault,
        "link": link.status.value,
        "link_session": link.session_id,
        "link_since": _iso(link.since),
        "link_down_s": None if link_down_s is None else round(link_down_s, 1),
        "link_reason": link.reason,
        "expected_outage": link.expected_outage,
        "last_bar_age_s": None if last_bar is None else round(
            max(0.0, (now - last_bar).total_seconds()), 1),
        "uptime_s": round(uptime, 1),
        "now": _iso(now),
        "pid": os.getpid(),
        "stopping": bot.stop_requested.is_set(),
    }
    for node in bot.root.walk():
        if "resource" in node.extra:
            body["resource"] = node.extra["resource"]
    return Answer(503 if problems else 200, body)


# -- the server ---------------------------------------------------------------------------
@dataclass
class HealthServer:
    """Routes requests for one bot. `port` is set once listening."""

    bot: BotHandle
    commands: trio.MemorySendChannel[OperatorCommand]
    port: int | None = None
    _limiter: trio.CapacityLimiter = field(
        default_factory=lambda: trio.CapacityLimiter(MAX_CONNECTIONS))
    _tree: dict[str, Any] | None = None
    _tree_at: float = -1e18

    def route(self, method: str, target: str, headers: dict[str, str],
              body: bytes) -> Answer:
        path = target.split("?", 1)[0]
        host = headers.get("host", "").strip().lower()
        if host and host.rsplit(":", 1)[0] not in _LOOPBACK_HOSTS and host not in (
                _LOOPBACK_HOSTS):
            return Answer(403, {"error": "the Host header must name the loopback address"})
        if path == "/health":
            if method not in ("GET", "HEAD"):
                return _not_allowed("GET, HEAD")
            return health_report(self.bot)
        if path == "/tree":
            if method not in ("GET", "HEAD"):
                return _not_allowed("GET, HEAD")
            return Answer(200, self._tree_dump())
        if path == "/kill-switch":
            if method != "POST":
                return _not_allowed("POST")
            return self._kill_switch(headers, body)
        if path == "/drill/loss":
            if method != "POST":
                return _not_allowed("POST")
            return self._drill_loss(headers, body)
        return Answer(404, {"error": f"no such endpoint: {path}",
                            "endpoints": ["GET /health", "GET /tree", "POST /kill-switch"]})

    def _tree_dump(self) -> dict[str, Any]:
        now = trio.current_time()
        if self._tree is None or now - self._tree_at >= TREE_CACHE_S:
            self._tree = self.bot.dump_tree("request")
            self._tree_at = now
        return self._tree

    def _kill_switch(self, headers: dict[str, str], body: bytes) -> Answer:
        if "origin" in headers:
            return Answer(403, {"error": "requests from web pages are refused"})
        if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return Answer(415, {"error": "Content-Type must be application/json"})
        try:
            parsed = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError):
            parsed = None
        engaged = parsed.get("engaged") if isinstance(parsed, dict) else None
        if not isinstance(engaged, bool):
            return Answer(400, {"error": 'the body must be {"engaged": true} or '
                                         '{"engaged": false}'})
        command = OperatorCommand(kind="kill_switch_on" if engaged else "kill_switch_off",
                                  source="http", ts=self.bot.clock.now_utc())
        try:
            self.commands.send_nowait(command)
        except trio.WouldBlock:
            log.error("Kill switch request (engaged=%s) refused: the command queue is full",
                      engaged)
            return Answer(503, {"error": "the command queue is full: ModeGuard is not "
                                         "reading; try again", "engaged": engaged})
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return Answer(503, {"error": "the bot is stopping", "engaged": engaged})
        log.warning("Kill switch %s by HTTP request", "ENGAGED" if engaged else "released")
        self.bot.journal.emit("kill_switch", "runtime.ops.health", source="http", engaged=engaged)
        return Answer(202, {"accepted": True, "engaged": engaged,
                            "note": "ModeGuard applies it; watch trading_state in /health"})

    def _drill_loss(self, headers: dict[str, str], body: bytes) -> Answer:
        """The guardrail drill: book a simulated loss past the daily limit (soak, demo).

        Only on a simulated clock (`--sim-start`, refused in LIVE mode): a real account's
        risk state is never touched by a drill.
        """
        if "origin" in headers:
            return Answer(403, {"error": "requests from web pages are refused"})
        if not self.bot.clock.follows_gateway:
            return Answer(403, {"error": "drills run only on a simulated clock (--sim-start)"})
        try:
            parsed = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError):
            parsed = None
        amount = parsed.get("amount_usd") if isinstance(parsed, dict) else "bad"
        if amount is not None and (not isinstance(amount, int | float) or amount <= 0):
            return Answer(400, {"error": 'the body must be {} or {"amount_usd": <positive>}'})
        command = OperatorCommand(kind="drill_loss", source="http", ts=self.bot.clock.now_utc(),
                                  amount_usd=float(amount) if amount is not None else None)
        try:
            self.commands.send_nowait(command)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            return Answer(503, {"error": "ModeGuard is not taking commands right now"})
        log.warning("Guardrail drill requested by HTTP: booking a simulated loss")
        return Answer(202, {"accepted": True, "drill": "loss",
                            "note": "watch for halt and a critical alert in the journal"})

    # -- connections --------------------------------------------------------------------
    async def handle(self, stream: trio.SocketStream) -> None:
        try:
            self._limiter.acquire_nowait()
        except trio.WouldBlock:
            await stream.aclose()
            return
        try:
            with trio.move_on_after(CONNECTION_DEADLINE_S):
                await self._serve_one(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass                      # the client went away: nothing to answer
        finally:
            self._limiter.release()
            with trio.move_on_after(0.5) as closing:
                closing.shield = True
                await stream.aclose()

    async def _serve_one(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        try:
            request, body = await _read_request(stream, conn)
        except _BadRequest as bad:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                await _send(stream, conn, Answer(bad.status, {"error": bad.reason}), head=False)
                await _linger(stream)
            return
        if request is None:           # the client closed without a request
            return
        method = request.method.decode("ascii", "replace").upper()
        target = request.target.decode("ascii", "replace")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}
        try:
            answer = self.route(method, target, headers, body)
        except Exception:
            log.exception("health endpoint: %s %s failed", method, target)
            answer = Answer(500, {"error": "internal error (see the log)"})
        await _send(stream, conn, answer, head=method == "HEAD")
        await _linger(stream)


async def _linger(stream: trio.SocketStream) -> None:
    """Half-close, then read what the client still sends (briefly, boundedly) before closing:
    closing a socket with unread input makes the OS send a reset, which can destroy the answer
    before the client reads it (an oversized request is exactly that case)."""
    with trio.move_on_after(LINGER_S):
        await stream.send_eof()
        drained = 0
        while drained < LINGER_MAX_BYTES and (chunk := await stream.receive_some(16384)):
            drained += len(chunk)


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def _read_request(stream: trio.SocketStream,
                        conn: h11.Connection) -> tuple[h11.Request | None, bytes]:
    request: h11.Request | None = None
    body = bytearray()
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            raise _BadRequest(status, f"bad request: {exc}") from None
        if event is h11.NEED_DATA:
            data = await stream.receive_some(4096)
            conn.receive_data(data)    # b"" means the peer closed
            continue
        if isinstance(event, h11.Request):
            request = event
            length = dict(event.headers).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
                raise _BadRequest(413, f"body larger than {MAX_BODY_BYTES} bytes")
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY_BYTES:
                raise _BadRequest(413, f"body larger than {MAX_BODY_BYTES} bytes")
        elif isinstance(event, h11.EndOfMessage):
            return request, bytes(body)
        elif isinstance(event, h11.ConnectionClosed):
            return None, b""


def _not_allowed(allow: str) -> Answer:
    return Answer(405, {"error": f"method not allowed (allowed: {allow})"},
                  headers=(("Allow", allow),))


async def _send(stream: trio.SocketStream, conn: h11.Connection, answer: Answer, *,
                head: bool) -> None:
    payload = (json.dumps(answer.body, default=str, allow_nan=False, indent=None) + "\n"
               ).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
               ("Cache-Control", "no-store"), ("Connection", "close"), *answer.headers]
    out = conn.send(h11.Response(status_code=answer.status, headers=headers))
    if not head:
        out += conn.send(h11.Data(data=payload))
    out += conn.send(h11.EndOfMessage())
    await stream.send_all(out)


# -- life ---------------------------------------------------------------------------------
def port_file(state_dir: Path) -> Path:
    return state_dir / PORT_FILE


def _write_port_file(path: Path, port: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{port}\n", encoding="ascii")
    os.replace(tmp, path)


async def serve_health(bot: BotHandle, *, port: int | None = None,
                       task_status: trio.TaskStatus[int | None] = trio.TASK_STATUS_IGNORED
                       ) -> None:
    """Serve until cancelled. Started with the port bound (or with None when the port is
    taken: trading goes on without the endpoint, and binding is retried)."""
    want = bot.settings.health_port if port is None else port
    commands = bot.wiring.commands.clone_sender()
    server = HealthServer(bot, commands)
    started = False
    path = port_file(bot.settings.state_dir)
    try:
        while True:
            try:
                listeners = await trio.open_tcp_listeners(want, host=HOST)
            except OSError as exc:
                log.error("Health endpoint cannot listen on %s:%d (%s); retrying every %gs",
                          HOST, want, exc, REBIND_RETRY_S)
                if not started:
                    started = True
                    task_status.started(None)
                await trio.sleep(REBIND_RETRY_S)
                continue
            server.port = int(listeners[0].socket.getsockname()[1])
            _write_port_file(path, server.port)   # a few bytes once: no thread (MockClock)
            log.info("Health endpoint on http://%s:%d (GET /health, GET /tree, "
                     "POST /kill-switch)", HOST, server.port)
            bot.journal.emit("health_listening", "runtime.ops.health", host=HOST, port=server.port)
            if not started:
                started = True
                task_status.started(server.port)
            await trio.serve_listeners(server.handle, listeners)
    finally:
        commands.close()
        if server.port is not None:
            try:
                if path.read_text(encoding="ascii").strip() == str(server.port):
                    path.unlink()
            except OSError:
                pass
