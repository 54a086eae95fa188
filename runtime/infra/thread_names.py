"""OS threads named after their Python names, so `top -H`, `ps -L` and tools.bench_idle show
which of the bot's threads works (the journal writer, the human log's writer, the ib_async
loop of a session) instead of "python" for each.

CPython gives OS threads their Python names only from 3.14; trio already names its worker
threads. Linux only (`prctl(PR_SET_NAME)`, 15 bytes); elsewhere, or if the call fails, nothing
happens: a name is for the operator's tools and never worth an error.
"""

from __future__ import annotations

import ctypes
import functools
import sys
import threading
from typing import Any

_PR_SET_NAME = 15
_OS_NAME_BYTES = 15


@functools.cache
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)   # the process's own symbols: libc's prctl
    except OSError:
        return None


def name_os_thread(name: str | None = None) -> None:
    """Give the calling thread's OS thread `name` (default: its Python name)."""
    libc = _libc()
    if libc is None:
        return
    text = (name if name is not None else threading.current_thread().name)
    try:
        libc.prctl(_PR_SET_NAME, text.encode("utf-8", "replace")[:_OS_NAME_BYTES], 0, 0, 0)
    except (AttributeError, OSError):
        return
