"""A Discord that never answers must not slow a bar or an order by anything measurable."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import trio

from actors import notifier
from tests.harness import wait_until
from tests.harness.fake_discord import Hang, run_fake_discord
from tests.harness.notifier import open_notifier

BARS = 400


async def test_a_discord_that_never_answers_does_not_hold_up_the_bar_and_order_path(
        tmp_path: Path) -> None:
    # production timeouts (10 s per request): Discord is "slow", not dead, for the whole test
    config = notifier.NotifierConfig(shutdown_flush_s=0.3, startup_link_wait_s=0.0)
    with run_fake_discord(default=Hang()) as discord:
        async with open_notifier(tmp_path, url=discord.url, config=config) as bot:
            await wait_until(lambda: len(discord.requests()) == 1)   # the sender is stuck
            bars_send, bars_recv = trio.open_memory_channel[tuple[int, float]](0)
            latencies: list[float] = []
            alert_costs: list[float] = []

            async def bar_feed() -> None:
                async with bars_send:
                    for i in range(BARS):
                        await bars_send.send((i, trio.current_time()))
                        await trio.sleep(0.001)

            async def strategy() -> None:
                async with bars_recv:
                    async for i, sent_at in bars_recv:
                        latencies.append(trio.current_time() - sent_at)
                        t0 = time.perf_counter()
                        bot.alert("info", f"signal on bar {i}", "entry SPY 450C")
                        if i % 20 == 0:      # an order filled: critical, never dropped
                            bot.alert("critical", f"order {i} filled", "1 SPY 450C @ 1.25")
                        alert_costs.append(time.perf_counter() - t0)

            began = time.monotonic()
            with trio.fail_after(20):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(bar_feed)
                    nursery.start_soon(strategy)
            took = time.monotonic() - began
            # every bar went through while Discord had not answered a single request
            assert len(latencies) == BARS
            assert discord.answered() == 0
            assert discord.requests()[0].answered_at is None
            queued = bot.ctx.node.shown("notifier_queued")
            assert queued["critical"] == BARS // 20          # all kept, waiting for Discord
    lat_ms = sorted(x * 1000 for x in latencies)
    cost_us = sorted(x * 1e6 for x in alert_costs)
    print(f"\n{BARS} bars in {took:.3f}s with Discord not answering; bar hand-off latency "
          f"p50 {statistics.median(lat_ms):.3f} ms, p99 {lat_ms[int(len(lat_ms) * .99)]:.3f} ms, "
          f"max {lat_ms[-1]:.3f} ms; ctx.alert() cost p50 {statistics.median(cost_us):.1f} us, "
          f"max {cost_us[-1]:.1f} us")
