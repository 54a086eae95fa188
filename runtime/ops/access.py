"""Who may use the console: the token, the Host and the Origin.

The server listens on 127.0.0.1 only, but loopback is not a wall against a web page open in the
operator's browser: any site can make the browser send requests to 127.0.0.1, and a DNS name
can be rebound to it. So:

* every request must name a loopback Host (a rebound name is refused);
* a request that carries an Origin must come from the console's own origin (another site's
  page is refused; `POST /kill-switch`, meant for scripts, refuses any Origin at all);
* `/api`, `/ws`, the page and every action need the token: `Authorization: Bearer TOKEN`, or
  the cookie the server sets when the page is opened once with `/?token=TOKEN` (HttpOnly,
  SameSite=Strict: another site's page can neither read it nor make the browser send it).

The token is created at first start in STATE_DIR/console.token, owner-only where the OS has
permissions; its path is logged, never its value.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

TOKEN_FILE = "console.token"
COOKIE = "crucible_console"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


def load_or_create_token(state_dir: Path) -> tuple[str, Path, bool]:
    """(token, its path, created now). An existing readable token is kept across restarts."""
    path = state_dir / TOKEN_FILE
    try:
        token = path.read_text(encoding="ascii").strip()
        if len(token) >= 32:
            return token, path, False
    except (OSError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(token + "\n")
    os.replace(tmp, path)
    if os.name == "posix":
        os.chmod(path, 0o600)
    return token, path, True


def host_ok(host: str) -> bool:
    """A loopback Host header (with or without a port); an absent Host is HTTP/1.0: allowed."""
    host = host.strip().lower()
    if not host:
        return True
    if host in LOOPBACK_HOSTS:
        return True
    name, _, port = host.rpartition(":")
    return name in LOOPBACK_HOSTS and port.isdigit()


def origin_ok(origin: str, host: str) -> bool:
    """The console's own origin: http:// and the same loopback host:port the request names."""
    return host_ok(host) and bool(host) and origin.strip().lower() == f"http://{host.lower()}"


def token_ok(expected: str, offered: str | None) -> bool:
    return offered is not None and hmac.compare_digest(expected.encode(), offered.encode())


def bearer(authorization: str) -> str | None:
    scheme, _, value = authorization.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def cookie_value(cookie_header: str, name: str = COOKIE) -> str | None:
    for part in cookie_header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None
