"""One bot per state directory, one per health port: what keeps several accounts apart.

A second start of the SAME bot (Task Scheduler's repetition, an impatient operator) finds the
state directory locked and exits 0 ("already running", CONTRACT.md). A start of ANOTHER bot
(one process per account, each with its own .env) that names the same STATE_DIR or the same
HEALTH_PORT is a configuration mistake: it would trade against the other account's risk state,
or answer the other bot's health checks. That is refused with one line naming the setting and
the other instance (exit 2), never silently treated as "already running".

The lock is an OS file lock (filelock: fcntl on POSIX, msvcrt on Windows), released by the OS if
the process dies, so a crash never leaves a stale lock behind (a PID file would). Beside it,
`instance.json` names the holder (pid, settings file, client id, health port); an instance is
"the same bot" when it reads the same settings file (resolved path).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from config.settings import Settings

LOCK_NAME = "runtime.lock"
OWNER_NAME = "instance.json"
HOST = "127.0.0.1"


class AlreadyRunning(RuntimeError):
    """This same bot already runs: the new start exits 0."""


class InstanceConflict(RuntimeError):
    """Another bot (other settings) claims this state directory or port: exit 2."""

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"{setting}: {reason}")
        self.setting = setting


@dataclass(frozen=True)
class InstanceOwner:
    """Who holds a state directory; written to STATE_DIR/instance.json while the lock is held."""

    settings_file: str
    pid: int
    ibkr_client_id: int
    health_port: int
    started_utc: str

    @classmethod
    def of(cls, settings: Settings, env_file: Path | None) -> InstanceOwner:
        source = str(env_file.resolve()) if env_file is not None else "(environment only)"
        return cls(settings_file=source, pid=os.getpid(),
                   ibkr_client_id=settings.ibkr_client_id, health_port=settings.health_port,
                   started_utc=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))

    def describe(self) -> str:
        return (f"pid {self.pid}, settings {self.settings_file}, IBKR_CLIENT_ID "
                f"{self.ibkr_client_id}, HEALTH_PORT {self.health_port}")


def acquire_instance_lock(state_dir: Path, owner: InstanceOwner | None = None) -> FileLock:
    """Take the lock or raise AlreadyRunning / InstanceConflict.

    Keep the returned lock alive; `.release()` at exit. Without `owner` (tests, the demo) any
    holder counts as "already running".
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(state_dir / LOCK_NAME), timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        holder = read_owner(state_dir)
        if owner is not None and holder is not None \
                and holder.settings_file != owner.settings_file:
            raise InstanceConflict(
                "STATE_DIR", f"{state_dir} is in use by another bot instance "
                             f"({holder.describe()}); every account needs its own STATE_DIR"
            ) from None
        raise AlreadyRunning(
            f"another instance is already running (lock {state_dir / LOCK_NAME} is held"
            + (f" by {holder.describe()})" if holder is not None else ")")) from None
    if owner is not None:
        _write_owner(state_dir, owner)
    return lock


def read_owner(state_dir: Path) -> InstanceOwner | None:
    """The holder named in instance.json, or None when absent or unreadable."""
    try:
        data = json.loads((state_dir / OWNER_NAME).read_text(encoding="utf-8"))
        return InstanceOwner(**data)
    except (OSError, ValueError, TypeError):
        return None


def _write_owner(state_dir: Path, owner: InstanceOwner) -> None:
    path = state_dir / OWNER_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(owner), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def check_health_port_free(port: int) -> None:
    """Raise InstanceConflict if 127.0.0.1:`port` is already taken (0 picks a free one).

    Bound with the options trio's listener uses (SO_REUSEADDR on POSIX, so a previous run's
    TIME_WAIT connections do not count; SO_EXCLUSIVEADDRUSE on Windows), then released at once:
    the health endpoint binds it a moment later, and if it loses that race it retries anyway.
    """
    if port == 0:
        return
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if sys.platform == "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(1)
    except OSError as exc:
        raise InstanceConflict(
            "HEALTH_PORT", f"{HOST}:{port} is already in use ({exc.strerror or exc}); another "
                           "bot instance? every account needs its own HEALTH_PORT") from None
    finally:
        sock.close()
