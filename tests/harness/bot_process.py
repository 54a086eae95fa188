"""The bot as `python -m runtime --sim-start ISO --sim-speed X` runs it, plus one entry signal.

`python -m tests.harness.bot_process --sim-start ISO --sim-speed X --signal SYMBOL:CLOSE`: settings
from the environment, the instance lock, the whole actor tree; once trading is ACTIVE it sends
ONE StrategySelector-style entry signal (a test cannot reach into another process's channels),
then runs until it is killed. The SIGKILL test kills it after the fill and restarts the real
`python -m runtime` on the same STATE_DIR.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

import trio

from config.settings import load_settings
from messages.brain import EntrySignal
from messages.control import TradingState
from runtime.app.bot import BotHandle, BotOptions, run_bot
from runtime.app.instance import acquire_instance_lock


async def _run(options: BotOptions, symbol: str, close: float) -> None:
    settings = load_settings(None)
    async with trio.open_nursery() as nursery:
        bot: BotHandle = await nursery.start(run_bot, settings, options)
        await bot.wiring.trading.wait_value(lambda s: s.state is TradingState.ACTIVE)
        now = bot.clock.now_utc()
        send = bot.wiring.signals.clone_sender()
        async with send:
            await send.send(EntrySignal(
                ts=now, bar_ts=now - dt.timedelta(minutes=1), symbol=symbol, strategy="A",
                direction="bullish", right="C", reasons=("injected by the SIGKILL test",),
                size_multiplier=1.0, close=close))
        print("SIGNAL SENT", flush=True)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--sim-start", type=dt.datetime.fromisoformat, required=True)
    p.add_argument("--sim-speed", type=float, required=True)
    p.add_argument("--signal", required=True, help="SYMBOL:CLOSE")
    args = p.parse_args()
    symbol, close = args.signal.split(":")
    lock = acquire_instance_lock(load_settings(None).state_dir)
    try:
        trio.run(_run, BotOptions(sim_start=args.sim_start, sim_speed=args.sim_speed),
                 symbol, float(close))
    finally:
        lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
