"""`python -m tests.runtime.ops.bench_ws`: does the console cost the bar path anything?

tests/system/brain/bench_actors.py's measurement (the app's brain subtree on trio's real clock, the
real journal, 1,950 SPY bars of the 2019 week; bar into `bars` -> snapshot -> decision) run
three ways in the same process: without the console; with the status read-model's journal tap
and the HTTP server running but no client; and with a WebSocket client that connected and then
stopped reading (its queue full, the server's writes to it blocked). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_websocket import open_websocket_url

from runtime.app.bot import status_view
from runtime.ops.access import TOKEN_FILE
from runtime.ops.health import serve_ops
from tests.system.brain import bench_actors

_open_brain = bench_actors.open_brain


def _with_console(stalled: bool) -> Any:
    @asynccontextmanager
    async def open_brain(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async with _open_brain(*args, **kwargs) as brain, trio.open_nursery() as nursery:
            view = status_view(brain.wiring, brain.settings, brain.clock, brain.journal)
            view.tree = brain.root.snapshot
            port = await nursery.start(serve_ops, view, brain.journal,
                                       brain.wiring.commands.clone_sender(), lambda _: {})
            if stalled:
                token = (brain.settings.state_dir / TOKEN_FILE).read_text().strip()
                async with open_websocket_url(
                        f"ws://127.0.0.1:{port}/ws", message_queue_size=1,
                        extra_headers=[(b"authorization", f"Bearer {token}".encode())]):
                    # never read: the hello, the status and the events pile up behind it
                    yield brain
            else:
                yield brain
            nursery.cancel_scope.cancel()
            brain.journal.remove_tap(view.events)
            if view.trades is not None:
                view.trades.close()
    return open_brain


ROUNDS = 3
"""The three ways are measured in turn, ROUNDS times (the machine's load drifts); the table
gives each way's p50 and p99 over all its bars, and the range of its per-round p99."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.runtime.ops.bench_ws",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS,
                        help=f"rounds of the three ways (default {ROUNDS})")
    rounds = parser.parse_args(argv).rounds
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    ways = (("no console", _open_brain),
            ("console, no client", _with_console(False)),
            ("console, one stalled WebSocket client", _with_console(True)))
    bench_actors.open_brain = _open_brain
    trio.run(bench_actors.measure)               # warm up
    lat: dict[str, list[float]] = {name: [] for name, _ in ways}
    p99s: dict[str, list[float]] = {name: [] for name, _ in ways}
    for _ in range(rounds):
        for name, opener in ways:
            bench_actors.open_brain = opener
            one = trio.run(bench_actors.measure).decision
            lat[name] += one
            p99s[name].append(bench_actors.percentile(one, 0.99))
    bench_actors.open_brain = _open_brain
    print(f"python {sys.version.split()[0]}; {rounds} rounds of 1,950 bars per way\n")
    print("| bar -> decision through the actors | p50 µs | p99 µs | p99 per round µs |")
    print("|---|---|---|---|")
    for name, _ in ways:
        print(f"| {name} | {statistics.median(lat[name]):.0f} | "
              f"{bench_actors.percentile(lat[name], 0.99):.0f} | "
              f"{min(p99s[name]):.0f}–{max(p99s[name]):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
