"""What every log line is stamped and scrubbed with: the runtime's clock and the secrets.

Shared by the human log (runtime/infra/logs.py) and the event journal (journal.py), and safe on
any thread: the asyncio thread of the Gateway link logs too.
"""

from __future__ import annotations

import datetime as dt
import threading

from runtime.infra.clock import Clock

UTC = dt.UTC

_clock_lock = threading.Lock()
_clock: Clock | None = None
_secrets: list[str] = []
secret_bytes: list[bytes] = []
"""The registered secrets, UTF-8 encoded, for scrubbing encoded journal lines."""


def set_log_clock(clock: Clock | None) -> None:
    """Make log timestamps follow `clock` (simulated or real)."""
    global _clock
    with _clock_lock:
        _clock = clock


def register_secret(value: str | None) -> None:
    """Never let `value` reach a log line: it is replaced by `***` wherever it appears."""
    if value and len(value) >= 6 and value not in _secrets:
        _secrets.append(value)
        secret_bytes.append(value.encode())


def scrub(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def now_utc() -> dt.datetime:
    """The log clock's time on any thread (falls back to the wall clock outside trio)."""
    clock = _clock
    if clock is not None:
        return clock.now_utc_any_thread()
    return dt.datetime.now(UTC)
