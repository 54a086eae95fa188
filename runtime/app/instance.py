"""One bot per state directory: a second start (Task Scheduler, an impatient operator) must
not trade against the same state and client id. An OS file lock (filelock: fcntl on POSIX,
msvcrt on Windows) is released by the OS if the process dies, so a crash never leaves a stale
lock behind (a PID file would).
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout

LOCK_NAME = "runtime.lock"


class AlreadyRunning(RuntimeError):
    pass


def acquire_instance_lock(state_dir: Path) -> FileLock:
    """Take the lock or raise AlreadyRunning. Keep the returned lock alive; `.release()` at exit."""
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(state_dir / LOCK_NAME), timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise AlreadyRunning(
            f"another instance is already running (lock {state_dir / LOCK_NAME} is held)"
        ) from None
    return lock
