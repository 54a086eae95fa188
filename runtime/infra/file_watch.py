"""`open_file_watch(path)`: wake when one file may have changed, without ticking while it does not.

The gameplan is written by the operator (or `tools.gameplan new`) at any hour; the selector must
notice within seconds, and the bot must cost nothing while nobody writes it (issue 17: no polling
loop where an event would do).

* Linux: inotify on the file's directory, awaited with `trio.lowlevel.wait_readable`: the task
  sleeps in the kernel until a write to that file is closed, the file is renamed into place
  (an atomic replace), renamed away or deleted. Other files of the directory are filtered out.
  A directory that does not exist yet (or that is removed) is looked for again every `poll_s`
  until it exists, then watched.
* Elsewhere (Windows, macOS), and on Linux if inotify is unavailable (no more watches): a poll
  every `poll_s`. Chosen rather than an untested ReadDirectoryChangesW binding: on the operator's
  Windows desktop the poll is one 2 KB read every 5 s (~0.004 % of a core, docs/BENCHMARKS.md).

A wake-up means "look again", never "it changed": the caller compares the content (the
selector's fingerprint), so a spurious or coalesced wake-up costs one read and loses nothing.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

__all__ = ["FileWatch", "open_file_watch"]

# <sys/inotify.h>
_IN_CLOSE_WRITE = 0x00000008      # a writer closed the file
_IN_MOVED_FROM = 0x00000040
_IN_MOVED_TO = 0x00000080         # an atomic replace lands here
_IN_CREATE = 0x00000100
_IN_DELETE = 0x00000200
_IN_DELETE_SELF = 0x00000400      # the directory itself went away
_IN_MOVE_SELF = 0x00000800
_IN_IGNORED = 0x00008000          # the kernel dropped the watch (directory gone)
_IN_Q_OVERFLOW = 0x00004000
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_FILE_EVENTS = _IN_CLOSE_WRITE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE
_DIR_GONE = _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_IGNORED
_EVENT = struct.Struct("iIII")    # wd, mask, cookie, len (then `len` bytes of name)


class _Inotify:
    """One inotify descriptor watching one directory (Linux only)."""

    def __init__(self) -> None:
        # the process's own symbols include libc's: no `find_library` (it runs ldconfig)
        self._libc = ctypes.CDLL(None, use_errno=True)
        fd = self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd: int = fd

    def watch(self, directory: Path) -> bool:
        """Watch `directory`; False if it does not exist (yet)."""
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(directory),
                                          _FILE_EVENTS | _DIR_GONE)
        if wd < 0:
            err = ctypes.get_errno()
            if err in (errno.ENOENT, errno.ENOTDIR):
                return False
            raise OSError(err, f"inotify_add_watch {directory}: {os.strerror(err)}")
        return True

    def drain(self, name: bytes) -> tuple[bool, bool]:
        """Read every queued event: (the file was touched, the directory watch is gone)."""
        touched = gone = False
        while True:
            try:
                data = os.read(self.fd, 64 * 1024)
            except BlockingIOError:
                return touched, gone
            offset = 0
            while offset + _EVENT.size <= len(data):
                _wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                raw = data[offset + _EVENT.size: offset + _EVENT.size + length]
                offset += _EVENT.size + length
                if mask & _IN_Q_OVERFLOW:
                    touched = True               # events were lost: look again anyway
                if mask & _DIR_GONE:
                    gone = touched = True
                elif raw.rstrip(b"\0") == name:
                    touched = True

    def close(self) -> None:
        os.close(self.fd)


class FileWatch:
    """`await wait_changed()` returns when `path` may have changed (see the module doc)."""

    def __init__(self, path: Path, poll_s: float) -> None:
        self.path = path
        self.poll_s = poll_s
        self.wakeups = 0                      # times wait_changed returned (tests, the tree)
        self._name = os.fsencode(path.name)
        self._inotify: _Inotify | None = None
        self._watching = False
        if sys.platform == "linux":
            try:
                self._inotify = _Inotify()
            except OSError:
                self._inotify = None              # e.g. the per-user instance limit: poll
        self.mode = "inotify" if self._inotify is not None else "poll"
        if self._inotify is not None:
            self._watch(self._inotify)

    async def wait_changed(self) -> None:
        inotify = self._inotify
        if inotify is None:
            await trio.sleep(self.poll_s)
        else:
            await self._wait_inotify(inotify)
        self.wakeups += 1

    async def _wait_inotify(self, inotify: _Inotify) -> None:
        if not self._watching:
            if self._watch(inotify):
                return          # watched from now on; what happened before is unknown: look
            await trio.sleep(self.poll_s)         # no folder yet: look for it later
            return
        while True:
            await trio.lowlevel.wait_readable(inotify.fd)
            touched, gone = inotify.drain(self._name)
            if gone:
                self._watching = False
            if touched:
                return

    def _watch(self, inotify: _Inotify) -> bool:
        try:
            self._watching = inotify.watch(self.path.parent)
        except OSError:
            self._watching = False
        return self._watching

    def close(self) -> None:
        """Release the descriptor (a task still waiting on it is woken with an error)."""
        if self._inotify is not None:
            trio.lowlevel.notify_closing(self._inotify.fd)
            self._inotify.close()
            self._inotify = None


@asynccontextmanager
async def open_file_watch(path: Path, *, poll_s: float) -> AsyncIterator[FileWatch]:
    """A watch on `path` for the block's duration (the inotify descriptor closed after)."""
    watch = FileWatch(path, poll_s)
    try:
        yield watch
    finally:
        watch.close()
