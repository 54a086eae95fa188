"""Reconnect latency after a Gateway restart: this bot's GatewayLink vs ib_async's Watchdog.

    python -m tools.bench_reconnect [--restarts 20] [--outage 2] [--speed 60]

One simulator (`tools.fake_gateway`, real TCP on 127.0.0.1), two clients on it at once: the
whole bot (real ib_async on its own asyncio thread, DRY_RUN) and ib_async's `Watchdog` with a
no-op IBC controller (the simulator does the restarting) and its documented defaults but for
`appStartupTime=0` (there is no Gateway process to wait for). For each restart we measure, from
the instant the simulator accepts connections again:
  (a) link up: the bot's `link_up` event / Watchdog's `startedEvent`;
  (b) first bar delivered downstream: the bot's first `bar` event after (a) (the backfill of
      the outage) / the first bars of the app's keepUpToDate request made on `startedEvent`
      (Watchdog resubscribes nothing by itself: the app must, as its docs say).
Results go to stdout as a Markdown table (docs/BENCHMARKS.md keeps the measured numbers).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from config.market_calendar import ET
from config.settings import load_settings
from runtime.app.bot import BotHandle, BotOptions, run_bot
from runtime.gateway.aio_bridge import AsyncioLoop, open_asyncio_loop
from tools.fake_gateway import FakeGatewayConfig, open_fake_gateway

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SPY_1M = DATA / "spy_1m_src-leoxu2023_2024-02-20_2024-05-17_rth.csv"
START = dt.datetime(2024, 2, 21, 10, 0, tzinfo=ET)
WAIT = 60.0


@dataclass
class Marks:
    """trio times of the events we time, per client."""

    link_up: list[float] = field(default_factory=list)
    first_bar: list[float] = field(default_factory=list)
    bar_pending: bool = False


_changed = trio.lowlevel.ParkingLot()
"""Woken whenever a mark is recorded (the waiters re-check their condition)."""


class NoController:
    """Watchdog drives an IBC controller; here the simulator restarts by itself."""

    async def startAsync(self) -> None:
        return None

    async def terminateAsync(self) -> None:
        return None


def _stamp(times: list[float]) -> None:
    times.append(trio.current_time())
    _changed.unpark_all()


def _after(times: list[float], t0: float) -> float | None:
    later = [t for t in times if t >= t0]
    return later[0] - t0 if later else None


async def _wait_for(times: list[float], t0: float) -> float:
    with trio.fail_after(WAIT):
        while (d := _after(times, t0)) is None:
            await _changed.park()
    return d


async def _start_watchdog(aio: AsyncioLoop, port: int, marks: Marks) -> Any:
    from ib_async import IB, Stock, Watchdog

    def build() -> Any:
        ib = IB()
        wd = Watchdog(NoController(), ib, port=port, clientId=77,   # type: ignore[arg-type]
                      appStartupTime=0, readonly=True)

        def on_started(_: Any) -> None:
            aio.to_trio(_stamp, marks.link_up)   # the time is read in trio, not here

            async def resubscribe() -> None:
                contract = Stock("SPY", "SMART", "USD")
                await ib.qualifyContractsAsync(contract)
                bars = await ib.reqHistoricalDataAsync(contract, "", "1800 S", "1 min",
                                                       "TRADES", True, 2, True)
                if bars:
                    aio.to_trio(_stamp, marks.first_bar)

            aio.loop.create_task(resubscribe())

        wd.startedEvent += on_started
        wd.start()   # type: ignore[no-untyped-call]
        return wd

    return await aio.call(build)


def _stats(values: Sequence[float]) -> tuple[float, float, float]:
    ms = sorted(v * 1000 for v in values)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return statistics.median(ms), p99, ms[-1]


async def bench(restarts: int, outage: float, speed: float) -> str:
    bot_marks, wd_marks = Marks(), Marks()
    config = FakeGatewayConfig(port=0, control_port=0, bars=SPY_1M, speed=speed, start=START)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(None, {
            "LOG_FILE": f"{tmp}/logs/bot.log", "STATE_DIR": f"{tmp}/state", "HEALTH_PORT": "0",
            "DAILY_STOP_TIME": "", "LOG_LEVEL": "WARNING", "GAMEPLAN_PATH": f"{tmp}/none.json",
            "IBKR_PORT": "1"})   # replaced below once the simulator has its port
        async with open_fake_gateway(config) as gw:
            settings = settings.model_copy(update={"ibkr_port": gw.port})

            def tap(event: dict[str, Any]) -> None:
                now = trio.current_time()
                if event["event"] == "link_up":
                    bot_marks.link_up.append(now)
                    bot_marks.bar_pending = True
                    _changed.unpark_all()
                elif event["event"] == "bar" and bot_marks.bar_pending:
                    bot_marks.first_bar.append(now)
                    bot_marks.bar_pending = False
                    _changed.unpark_all()

            async with trio.open_nursery() as nursery, open_asyncio_loop("watchdog") as aio:
                bot: BotHandle = await nursery.start(run_bot, settings, BotOptions(
                    sim_start=gw.clock.now_utc(), sim_speed=speed, console=False,
                    handle_signals=False))
                bot.journal.add_tap(tap)
                watchdog = await _start_watchdog(aio, gw.port, wd_marks)
                await _wait_for(bot_marks.first_bar, 0.0)
                await _wait_for(wd_marks.first_bar, 0.0)
                rows: dict[str, list[float]] = {k: [] for k in
                                                ("bot_a", "bot_b", "wd_a", "wd_b")}
                rng = random.Random(20261120)
                for i in range(restarts):
                    await trio.sleep(2.0)
                    await gw.restart(outage * rng.uniform(0.5, 1.5))
                    await gw.wait_accepting()
                    t0 = trio.current_time()
                    rows["bot_a"].append(await _wait_for(bot_marks.link_up, t0))
                    rows["bot_b"].append(await _wait_for(bot_marks.first_bar, t0))
                    rows["wd_a"].append(await _wait_for(wd_marks.link_up, t0))
                    rows["wd_b"].append(await _wait_for(wd_marks.first_bar, t0))
                    print(f"restart {i + 1}/{restarts}: bot {rows['bot_a'][-1]*1000:.0f}/"
                          f"{rows['bot_b'][-1]*1000:.0f} ms, watchdog "
                          f"{rows['wd_a'][-1]*1000:.0f}/{rows['wd_b'][-1]*1000:.0f} ms",
                          file=sys.stderr)
                await aio.call(watchdog.stop)
                bot.request_stop("benchmark over")
    lines = [f"Reconnect after a simulated Gateway restart ({restarts} restarts, outages of "
             f"{outage * 0.5:g}-{outage * 1.5:g} s, simulator at {speed:g}x), from the port "
             "accepting again:", "",
             "| client | (a) link up p50 / p99 / max (ms) | (b) first bar p50 / p99 / max (ms) |",
             "|---|---|---|"]
    for name, a, b in (("this bot (GatewayLink + BarFeed)", "bot_a", "bot_b"),
                       ("ib_async Watchdog (defaults, appStartupTime=0)", "wd_a", "wd_b")):
        sa, sb = _stats(rows[a]), _stats(rows[b])
        lines.append(f"| {name} | {sa[0]:.0f} / {sa[1]:.0f} / {sa[2]:.0f} | "
                     f"{sb[0]:.0f} / {sb[1]:.0f} / {sb[2]:.0f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench_reconnect", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--restarts", type=int, default=20)
    p.add_argument("--outage", type=float, default=2.0,
                   help="mean wall seconds the port refuses (each restart: 0.5x..1.5x, seeded, "
                        "so no retry period can align with it)")
    p.add_argument("--speed", type=float, default=60.0)
    args = p.parse_args(argv)
    if not SPY_1M.is_file():
        print(f"error: {SPY_1M} not found (../shared/data)", file=sys.stderr)
        return 2
    print(trio.run(bench, args.restarts, args.outage, args.speed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
