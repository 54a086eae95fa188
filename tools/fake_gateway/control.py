"""The control port: one line command in, one line reply out (`ok`, `error: …` or JSON).

Commands (CONTRACT.md): status, drop, restart SECONDS, hang, unhang, error CODE,
clientid-in-use on|off, pacing on|off (plus `help`); and for the error policy's tests:
`reject CODE [SYMBOL]` / `reject off [SYMBOL]` (answer market-data requests with CODE) and
`symbols SYM,SYM|all` (the underlyings it knows; others get 200), `login-pending on|off`
(answer the API handshake, never start the session).
"""

from __future__ import annotations

import json
import logging
import math
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from tools.fake_gateway.server import FakeGateway

log = logging.getLogger("tools.fake_gateway.control")

MAX_LINE = 4096
MAX_RESTART_SECONDS = 3600.0
HELP = ("commands: status | drop | restart SECONDS | hang | unhang | error CODE | "
        "clientid-in-use on|off | pacing on|off | fill ORDER_REF [PRICE] | "
        "reject CODE|off [SYMBOL] | symbols SYM,SYM|all | login-pending on|off")


class CommandError(ValueError):
    """A control command that cannot be run; the text goes back as `error: <text>`."""


def _on_off(command: str, args: list[str]) -> bool:
    if len(args) != 1 or args[0].lower() not in ("on", "off"):
        raise CommandError(f"usage: {command} on|off")
    return args[0].lower() == "on"


async def run_command(gw: FakeGateway, line: str) -> str:
    words = line.strip().split()
    if not words:
        raise CommandError("empty command")
    command, args = words[0].lower(), words[1:]
    if command == "status":
        return json.dumps(gw.status(), sort_keys=True)
    if command == "help":
        return HELP
    if command in ("drop", "hang", "unhang") and args:
        raise CommandError(f"{command} takes no arguments")
    if command == "drop":
        await gw.drop()
    elif command == "restart":
        if len(args) != 1:
            raise CommandError("usage: restart SECONDS")
        try:
            seconds = float(args[0])
        except ValueError:
            raise CommandError(f"restart: not a number of seconds: {args[0]!r}") from None
        if not (0 <= seconds <= MAX_RESTART_SECONDS) or math.isnan(seconds):
            raise CommandError(f"restart: SECONDS must be within 0..{MAX_RESTART_SECONDS:g}")
        await gw.restart(seconds)
    elif command == "hang":
        await gw.hang()
    elif command == "unhang":
        await gw.unhang()
    elif command == "error":
        if len(args) != 1 or not args[0].isdigit():
            raise CommandError("usage: error CODE (a positive integer)")
        await gw.send_error(int(args[0]))
    elif command == "clientid-in-use":
        await gw.set_clientid_in_use(_on_off(command, args))
    elif command == "pacing":
        await gw.set_pacing(_on_off(command, args))
    elif command == "reject":
        if len(args) not in (1, 2) or not (args[0].isdigit() or args[0].lower() == "off"):
            raise CommandError("usage: reject CODE|off [SYMBOL]")
        await gw.set_rejection(None if args[0].lower() == "off" else int(args[0]),
                               args[1] if len(args) == 2 else None)
    elif command == "login-pending":
        await gw.set_login_pending(_on_off(command, args))
    elif command == "symbols":
        if len(args) != 1:
            raise CommandError("usage: symbols SYM,SYM|all")
        await gw.set_known_symbols(None if args[0].lower() == "all" else frozenset(
            s.strip().upper() for s in args[0].split(",") if s.strip()))
    elif command == "fill":
        if len(args) not in (1, 2):
            raise CommandError("usage: fill ORDER_REF [PRICE]")
        try:
            price = float(args[1]) if len(args) == 2 else None
        except ValueError:
            raise CommandError(f"fill: not a price: {args[1]!r}") from None
        try:
            await gw.fill_order(args[0], price)
        except LookupError as exc:
            raise CommandError(f"fill: {exc}") from None
    else:
        raise CommandError(f"unknown command {command!r} ({HELP})")
    return "ok"


async def serve_control_connection(gw: FakeGateway, stream: trio.SocketStream) -> None:
    """Reads commands until the peer closes; a bad command never ends the connection."""
    buffer = b""
    async with stream:
        while True:
            try:
                data = await stream.receive_some(4096)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return
            buffer += data
            while b"\n" in buffer:
                raw, buffer = buffer.split(b"\n", 1)
                line = raw.decode("utf-8", errors="replace").strip()
                if not line:
                    continue
                try:
                    reply = await run_command(gw, line)
                except CommandError as exc:
                    reply = f"error: {exc}"
                except Exception as exc:     # a control command must never kill the server
                    log.exception("control command %r failed", line)
                    reply = f"error: {type(exc).__name__}: {exc}"
                log.info("control: %s -> %s", line, reply if len(reply) < 120 else
                         reply[:117] + "...")
                try:
                    await stream.send_all((reply + "\n").encode("utf-8"))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
            if len(buffer) > MAX_LINE:
                await stream.send_all(b"error: line too long\n")
                return
