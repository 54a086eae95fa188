"""Benchmark of the IB Gateway simulator: connect latency and the CPU cost of streaming.

Runs `python -m tools.fake_gateway` as a subprocess (so its CPU is measured alone, with psutil)
and drives it with a real ib_async client:

* connect latency: N sequential `IB.connectAsync` + disconnect, each with its own client id
  (the whole startup burst: positions, open/completed orders, account updates, executions);
* streaming: 1-min keepUpToDate bars for SPY, QQQ, IWM and ticks for SPY, QQQ, IWM and VIX at
  `--speed` (default 1000×) during a regular session; reports the simulator's CPU share and the
  messages the client received.

    python -m tools.bench_fake_gateway --connects 50 --stream-seconds 20 --speed 1000

(Run it as a module: run as a script, `tools/` would shadow the standard library's `calendar`
with the project's `tools/calendar.py`.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from ib_async import IB, Index, Stock

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CSV = (REPO / ".." / "shared" / "data" /
               "spy_1m_src-leoxu2023_2024-02-20_2024-05-17_rth.csv")


def start_simulator(speed: float, start: str, bars: Path | None) -> tuple[subprocess.Popen[str],
                                                                          int, int]:
    args = [sys.executable, "-m", "tools.fake_gateway", "--port", "0", "--speed", str(speed),
            "--start", start, "--log-level", "WARNING"]
    if bars is not None and bars.is_file():
        args += ["--bars", str(bars)]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r":(\d+) control 127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"simulator did not start: {line!r}")
    return proc, int(m.group(1)), int(m.group(2))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def bench_connect(port: int, count: int) -> dict[str, float]:
    times: list[float] = []
    for i in range(count):
        ib = IB()
        started = time.perf_counter()
        await ib.connectAsync("127.0.0.1", port, clientId=100 + i, timeout=5)
        times.append((time.perf_counter() - started) * 1000)
        ib.disconnect()
    return {"connects": count, "p50_ms": round(statistics.median(times), 2),
            "p99_ms": round(percentile(times, 99), 2), "max_ms": round(max(times), 2)}


async def bench_stream(port: int, pid: int, seconds: float, speed: float) -> dict[str, Any]:
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=1, timeout=5)
    stocks = [Stock(s, "SMART", "USD") for s in ("SPY", "QQQ", "IWM")]
    vix = Index("VIX", "CBOE", "USD")
    await ib.qualifyContractsAsync(*stocks, vix)
    bar_lists = [await ib.reqHistoricalDataAsync(c, "", "1 D", "1 min", "TRADES", True,
                                                 keepUpToDate=True) for c in stocks]
    tick_updates = 0

    def on_ticks(tickers: Any) -> None:
        nonlocal tick_updates
        tick_updates += len(tickers)

    ib.pendingTickersEvent += on_ticks
    for c in [*stocks, vix]:
        ib.reqMktData(c)
    bars_before = sum(len(b) for b in bar_lists)
    proc = psutil.Process(pid)
    cpu0 = proc.cpu_times()
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    wall = time.perf_counter() - t0
    cpu1 = proc.cpu_times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    new_bars = sum(len(b) for b in bar_lists) - bars_before
    ib.disconnect()
    return {"seconds": round(wall, 2), "simulator_cpu_pct": round(100 * cpu / wall, 1),
            "new_1min_bars": new_bars, "ticker_updates": tick_updates,
            "sim_minutes": round(wall * speed / 60, 1)}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    proc, port, _ = start_simulator(args.speed, args.start, args.bars)
    try:
        await asyncio.sleep(0.5)
        result: dict[str, Any] = {"connect": await bench_connect(port, args.connects)}
        idle = psutil.Process(proc.pid)
        c0 = idle.cpu_times()
        await asyncio.sleep(2.0)
        c1 = idle.cpu_times()
        result["idle_cpu_pct"] = round(100 * ((c1.user - c0.user) + (c1.system - c0.system))
                                       / 2.0, 1)
        result["stream"] = await bench_stream(port, proc.pid, args.stream_seconds, args.speed)
        result["speed"] = args.speed
        return result
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--connects", type=int, default=50)
    p.add_argument("--stream-seconds", type=float, default=20.0)
    p.add_argument("--speed", type=float, default=1000.0)
    p.add_argument("--start", default="2024-02-21T09:30:00-05:00",
                   help="simulated start (keep the streaming window inside a session)")
    p.add_argument("--bars", type=Path, default=DEFAULT_CSV)
    args = p.parse_args()
    print(json.dumps(asyncio.run(main_async(args)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
