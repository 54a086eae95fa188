"""OS signals, portably: stop on SIGINT/SIGTERM (and CTRL_BREAK on Windows), dump the tree on
SIGUSR1 where it exists. A second stop signal while stopping forces the issue."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable

import trio

log = logging.getLogger("runtime")


def stop_signals() -> list[int]:
    sigs: list[int] = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGBREAK"):      # Windows: CTRL_BREAK_EVENT, what schedulers send
        sigs.append(signal.SIGBREAK)
    return sigs


def dump_signals() -> list[int]:
    return [signal.SIGUSR1] if hasattr(signal, "SIGUSR1") else []


async def watch_signals(request_stop: Callable[[str], None], force_stop: Callable[[], None],
                        dump_tree: Callable[[str], object]) -> None:
    """Runs for the life of the program in the main thread."""
    stops = stop_signals()
    with trio.open_signal_receiver(*stops, *dump_signals()) as signals:
        stopping = False
        async for signum in signals:
            name = signal.Signals(signum).name
            if signum in stops:
                if stopping:
                    log.warning("second %s: forcing shutdown", name)
                    force_stop()
                else:
                    stopping = True
                    log.info("%s received: shutting down in order", name)
                    request_stop(name)
            else:
                dump_tree("request")
