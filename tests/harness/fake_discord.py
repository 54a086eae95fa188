"""A real HTTP server on 127.0.0.1 standing in for Discord's webhook endpoint.

It is the standard library's `http.server` on its own thread (not our code, not trio), so the
Notifier's httpx client talks real HTTP/1.1 over real TCP to something it did not write. Each
request takes the next scripted answer (204 by default), is recorded with its arrival time,
and its body is checked against Discord's documented limits by `discord_problems`, written
here independently of runtime/ops/discord.py.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

WEBHOOK_PATH = "/api/webhooks/1234567890/SeCrEtToKeN-abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class Reply:
    status: int = 204
    body: dict[str, Any] | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Hang:
    """Read the request, then answer nothing until the server is released or closed."""


@dataclass
class Received:
    at: float                      # time.monotonic() on arrival
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    problems: list[str]
    answered_at: float | None = None
    status: int | None = None

    def titles(self) -> list[str]:
        return [str(e.get("title", "")) for e in self.body.get("embeds", [])]


@dataclass
class FakeDiscord:
    port: int = 0
    script: deque[Reply | Hang] = field(default_factory=deque)
    default: Reply | Hang = field(default_factory=Reply)
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    def answered(self) -> int:
        with self.lock:
            return sum(1 for r in self.received if r.answered_at is not None)

    def requests(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def delivered_titles(self) -> list[str]:
        """Embed titles of the requests answered with success, in arrival order."""
        return [t for r in self.requests() if r.status is not None and r.status < 300
                for t in r.titles()]

    def _next(self) -> Reply | Hang:
        with self.lock:
            return self.script.popleft() if self.script else self.default


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def discord_problems(body: Any) -> list[str]:
    """Everything in `body` that Discord's webhook endpoint would refuse (documented limits)."""
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    problems: list[str] = []
    known = {"content", "username", "avatar_url", "tts", "embeds", "allowed_mentions",
             "components", "flags", "thread_name", "attachments", "poll"}
    problems += [f"unknown top-level key {k!r}" for k in body if k not in known]
    content = body.get("content")
    embeds = body.get("embeds") or []
    if not content and not embeds:
        problems.append("neither content nor embeds")
    if content is not None and (not isinstance(content, str) or _utf16(content) > 2000):
        problems.append("content over 2000")
    if "username" in body and _utf16(str(body["username"])) > 80:
        problems.append("username over 80")
    if not isinstance(embeds, list) or len(embeds) > 10:
        problems.append("more than 10 embeds")
        return problems
    total = 0
    for i, e in enumerate(embeds):
        where = f"embed {i}"
        if not isinstance(e, dict):
            problems.append(f"{where} not an object")
            continue
        title = e.get("title", "")
        desc = e.get("description", "")
        footer = (e.get("footer") or {}).get("text", "")
        fields = e.get("fields") or []
        if _utf16(title) > 256:
            problems.append(f"{where} title over 256")
        if _utf16(desc) > 4096:
            problems.append(f"{where} description over 4096")
        if _utf16(footer) > 2048:
            problems.append(f"{where} footer over 2048")
        if len(fields) > 25:
            problems.append(f"{where} more than 25 fields")
        for f in fields:
            name, value = f.get("name", ""), f.get("value", "")
            if not name or not value:
                problems.append(f"{where} field with an empty name or value")
            if _utf16(name) > 256:
                problems.append(f"{where} field name over 256")
            if _utf16(value) > 1024:
                problems.append(f"{where} field value over 1024")
            if "inline" in f and not isinstance(f["inline"], bool):
                problems.append(f"{where} field inline not a bool")
        colour = e.get("color")
        if colour is not None and not (isinstance(colour, int) and 0 <= colour <= 0xFFFFFF):
            problems.append(f"{where} color not an int in 0..0xFFFFFF")
        if "timestamp" in e:
            try:
                dt.datetime.fromisoformat(e["timestamp"])
            except (TypeError, ValueError):
                problems.append(f"{where} timestamp not ISO 8601")
        total += _utf16(title) + _utf16(desc) + _utf16(footer) + sum(
            _utf16(f.get("name", "")) + _utf16(f.get("value", "")) for f in fields)
    if total > 6000:
        problems.append(f"embeds total {total} over 6000")
    return problems


def _handler(server_state: FakeDiscord) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = {"_raw": raw.decode("latin-1")}
            record = Received(at=time.monotonic(), path=self.path,
                              headers={k.lower(): v for k, v in self.headers.items()},
                              body=body, problems=discord_problems(body))
            with server_state.lock:
                server_state.received.append(record)
            action = server_state._next()
            if isinstance(action, Hang):
                server_state.release.wait(timeout=60)
                self.close_connection = True
                return
            payload = json.dumps(action.body).encode() if action.body is not None else b""
            self.send_response(action.status)
            for k, v in action.headers:
                self.send_header(k, v)
            if payload:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload:
                self.wfile.write(payload)
            self.wfile.flush()
            with server_state.lock:
                record.answered_at = time.monotonic()
                record.status = action.status

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def run_fake_discord(*script: Reply | Hang, default: Reply | Hang | None = None
                     ) -> Iterator[FakeDiscord]:
    """A FakeDiscord serving on a free loopback port for the duration of the block."""
    state = FakeDiscord(script=deque(script), default=default or Reply())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
