"""Persistent state in STATE_DIR: atomic writes, loud failures, never a silent reset.

A state file is written to a temporary file in the same directory, flushed and fsynced, then
renamed over the old one (`os.replace`, atomic on POSIX and Windows), so a crash at any moment
leaves either the old state or the new one, never half of each. Reading distinguishes "there
is no state yet" (first run: the caller starts from defaults) from "there is state and it is
unreadable" (StateUnreadable: money paths must fail closed, not start over).

The fsync costs ~0.5 ms typically and 10+ ms at the tail (measured: docs/BENCHMARKS.md); `save`
pays it on the caller's thread, which for an actor is the event loop, so every actor waits.
`save_async` pays it in a worker thread: the caller still resumes only once the state is
durable, but the other actors run meanwhile.

Saves of one name land in the order they were called, whichever thread writes them: each call
takes a sequence number on the caller's thread, and a write that finds a later one already on
disk is skipped. So a `save` that follows a `save_async` still in its thread is never undone by
that older document landing after it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import trio

FORMAT_VERSION = 1


class StateUnreadable(RuntimeError):
    """A state file exists but cannot be trusted (I/O error, bad JSON, wrong version)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"state file {path} is unreadable: {reason}")
        self.path = path
        self.reason = reason


class StateStore:
    """JSON documents by name in one directory (STATE_DIR)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._async_lock: trio.Lock | None = None    # created in trio, on first use
        self._order = itertools.count(1)              # taken on the caller's thread
        self._landed: dict[str, int] = {}             # name -> the latest call on disk
        self._write_lock = threading.Lock()           # one write at a time, any thread

    def path(self, name: str) -> Path:
        if not name or any(c in name for c in "/\\:") or name.startswith("."):
            raise ValueError(f"bad state name {name!r}")
        return self.directory / f"{name}.json"

    def load(self, name: str) -> dict[str, Any] | None:
        """The saved document, or None if it was never saved. Raises StateUnreadable."""
        path = self.path(name)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateUnreadable(path, str(exc)) from exc
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StateUnreadable(path, f"not valid JSON ({exc})") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION or \
                not isinstance(doc.get("state"), dict):
            raise StateUnreadable(path, f"not a version-{FORMAT_VERSION} state document")
        state: dict[str, Any] = doc["state"]
        return state

    def save(self, name: str, state: dict[str, Any]) -> None:
        """Write atomically (temp file, fsync, rename). Raises OSError if the disk refuses."""
        self._write(name, self._encode(state), next(self._order))

    async def save_async(self, name: str, state: dict[str, Any]) -> None:
        """`save` with the disk work in a worker thread; returns once the state is durable.

        The state is encoded on the caller (a later change to `state` cannot leak in), and saves
        through one store are serialised, so an older document never lands after a newer one.
        Cancellation waits for the write in progress (a half-done save is never abandoned).
        """
        data = self._encode(state)
        order = next(self._order)
        if self._async_lock is None:
            self._async_lock = trio.Lock()
        async with self._async_lock:
            await trio.to_thread.run_sync(self._write, name, data, order)

    @staticmethod
    def _encode(state: dict[str, Any]) -> bytes:
        return json.dumps({"format": FORMAT_VERSION, "state": state}, sort_keys=True,
                          allow_nan=False, default=str, indent=1).encode("utf-8")

    def _write(self, name: str, data: bytes, order: int) -> None:
        with self._write_lock:
            if self._landed.get(name, 0) > order:
                return                  # a later save of this name is already on disk
            self._write_file(name, data)
            self._landed[name] = order

    def _write_file(self, name: str, data: bytes) -> None:
        path = self.path(name)
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(self.directory)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable where the OS allows it (not on Windows)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
