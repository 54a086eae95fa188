"""`python -m tools.bench_notifier [--bars N]`: what a slow Discord costs the bar path.

Runs the same bar pipeline three times in one trio program: a feed sends N bars through a
backpressure channel (1 ms apart) to a "strategy" that raises an info alert on every bar and
a critical one on every 20th (signals, fills), as real actors do with `ctx.alert(...)`:

  baseline   alerts go into the alerts channel and nobody reads them (no Notifier)
  stalled    the real Notifier posts to a webhook that accepts the connection and never
             answers (a listening socket nobody accepts from: the request sits there)
  fast       the real Notifier posts to a local webhook answering 204 at once

It prints the bar hand-off latency (send -> receive) and the strategy's per-bar time
(including `ctx.alert`) as p50 / p99 / max. The Notifier's added latency on the bar path is
the difference between `stalled` (or `fast`) and `baseline`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from actors import notifier
from config.settings import load_settings
from messages.alerts import Alert
from runtime.infra.clock import Clock
from runtime.infra.logs import open_logging
from runtime.supervision.actor import ActorEnv
from runtime.supervision.channels import DropOldest
from runtime.supervision.tree import TreeNode


@dataclass
class Result:
    name: str
    handoff_ms: list[float]
    step_us: list[float]
    wall_s: float

    def line(self) -> str:
        def q(xs: list[float], p: float) -> float:
            s = sorted(xs)
            return s[min(len(s) - 1, int(len(s) * p))]
        h, st = self.handoff_ms, self.step_us
        return (f"{self.name:9} bars {len(h):5}  wall {self.wall_s:6.3f} s  hand-off ms "
                f"p50 {statistics.median(h):7.3f} p99 {q(h, .99):7.3f} max {max(h):7.3f}  "
                f"strategy step us p50 {statistics.median(st):8.1f} p99 {q(st, .99):8.1f} "
                f"max {max(st):8.1f}")


_SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


async def _pipeline(name: str, bars: int, url: str | None, run_notifier: bool,
                    workdir: Path) -> Result:
    values = {"LOG_FILE": str(workdir / name / "bot.log"), "STATE_DIR": str(workdir / name)}
    if url:
        values["DISCORD_WEBHOOK_URL"] = url
    settings = load_settings(None, values)
    with open_logging(log_file=settings.log_file, max_bytes=1 << 24, backup_count=2,
                      console=False) as journal:
        alerts: DropOldest[Alert] = DropOldest("alerts", 256,
                                               keep=lambda a: a.severity == "critical")
        env = ActorEnv(clock=Clock(dt.datetime.now(dt.UTC)), settings=settings,
                       journal=journal, alerts=alerts)
        source = env.context(TreeNode("strategy_selector", "root.brain.strategy_selector",
                                      "actor"))
        handoff: list[float] = []
        steps: list[float] = []
        async with trio.open_nursery() as nursery:
            if run_notifier:
                await nursery.start(notifier.run,
                                    env.context(TreeNode("notifier", "root.notifier", "actor",
                                                         incarnation=1)),
                                    notifier.Inbox(alerts=alerts), notifier.Outbox(),
                                    notifier.NotifierConfig(shutdown_flush_s=0.5,
                                                            startup_link_wait_s=0.0))
                await trio.sleep(0.2)         # the startup message is on its way
            send, recv = trio.open_memory_channel[tuple[int, float]](0)

            async def feed() -> None:
                async with send:
                    for i in range(bars):
                        await send.send((i, time.perf_counter()))
                        await trio.sleep(0.001)

            async def strategy() -> None:
                async with recv:
                    async for i, sent in recv:
                        t0 = time.perf_counter()
                        handoff.append((t0 - sent) * 1000)
                        source.alert("info", f"signal on bar {i}", "entry SPY 450C")
                        if i % 20 == 0:
                            source.alert("critical", f"order {i} filled", "1 SPY 450C @ 1.25")
                        steps.append((time.perf_counter() - t0) * 1e6)

            began = time.perf_counter()
            async with trio.open_nursery() as inner:
                inner.start_soon(feed)
                inner.start_soon(strategy)
            wall = time.perf_counter() - began
            nursery.cancel_scope.cancel()
    return Result(name, handoff, steps, wall)


async def _bench(bars: int, stalled_url: str, fast_url: str) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        return [await _pipeline("baseline", bars, None, False, work),
                await _pipeline("stalled", bars, stalled_url, True, work),
                await _pipeline("fast", bars, fast_url, True, work)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_notifier",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bars", type=int, default=2000)
    args = parser.parse_args(argv)
    # "stalled": a socket that listens and never accepts, so a request is never answered.
    # "fast": a webhook in another process, as Discord is: a server thread in this process
    # would compete for the GIL and be measured instead of the Notifier.
    server = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE,
                              text=True)
    try:
        with socket.socket() as stalled:
            stalled.bind(("127.0.0.1", 0))
            stalled.listen(16)
            assert server.stdout is not None
            fast_port = int(server.stdout.readline())
            results = trio.run(
                _bench, args.bars,
                f"http://127.0.0.1:{stalled.getsockname()[1]}/api/webhooks/1/bench",
                f"http://127.0.0.1:{fast_port}/api/webhooks/1/bench")
    finally:
        server.terminate()
        server.wait(timeout=5)
    for result in results:
        print(result.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
