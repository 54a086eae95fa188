"""How the end of a child is read: a crash, an expected restart, a failure of the world, or a
shutdown (a `trio.Cancelled` is never a crash). Used by supervisor.py and the observers.
"""

from __future__ import annotations

import trio


class ExpectedRestart(Exception):
    """Raised by a child that should be restarted without it counting as a failure.

    `delay` (seconds) overrides the backoff for this restart: a Gateway that is known to be
    coming back is worth polling quickly.
    """

    def __init__(self, reason: str, *, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class OperationalFailure(Exception):
    """A failure of the world, not of the code: the Gateway closed the connection, a feed
    cannot be resubscribed. Restarted and counted like any failure, but logged as a warning
    without a traceback (the actor has already said what happened in the operator's terms)."""


class SupervisorGaveUp(Exception):
    """A supervisor exceeded its restart intensity and escalates to its parent."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"supervisor {path} gave up: {reason}")
        self.path = path
        self.reason = reason


def describe_error(exc: BaseException) -> str:
    """One line for the tree and the logs: the innermost meaningful error."""
    leaves = list(_leaves(exc))
    shown = leaves[0] if leaves else exc
    text = f"{type(shown).__name__}: {shown}" if str(shown) else type(shown).__name__
    if len(leaves) > 1:
        text += f" (+{len(leaves) - 1} more)"
    return text


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        out: list[BaseException] = []
        for e in exc.exceptions:
            out.extend(_leaves(e))
        return out
    return [exc]


class FatalInChild(Exception):
    """Marker: a KeyboardInterrupt/SystemExit inside a child must not be swallowed."""


def is_operational(exc: BaseException) -> bool:
    """Every leaf is an OperationalFailure or an ExpectedRestart (no bug involved)."""
    return all(isinstance(e, OperationalFailure | ExpectedRestart) for e in _leaves(exc))


def classify(exc: BaseException) -> tuple[BaseException | None, bool, float | None]:
    """(failure or None for a pure cancellation, expected?, delay).

    Raises the original exception back for KeyboardInterrupt/SystemExit, which end the
    program rather than an actor.
    """
    if isinstance(exc, trio.Cancelled):
        return None, False, None
    rest: BaseException | None = exc
    if isinstance(exc, BaseExceptionGroup):
        _, rest = exc.split(trio.Cancelled)
        if rest is None:
            return None, False, None
    assert rest is not None
    leaves = _leaves(rest)
    if any(not isinstance(e, Exception) for e in leaves):
        raise FatalInChild from exc
    expected = all(isinstance(e, ExpectedRestart) for e in leaves)
    delays = [e.delay for e in leaves if isinstance(e, ExpectedRestart) and e.delay is not None]
    return rest, expected, (min(delays) if expected and delays else None)
