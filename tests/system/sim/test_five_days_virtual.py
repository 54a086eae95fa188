"""Five trading days of the whole actor tree on trio's MockClock, through every kind of outage.

The in-process SimTransport serves the simulator's market (real SPY bars from ../shared/data,
seeded walks for QQQ/IWM/VIX). Each day the Gateway restarts at 16:30 ET (IBC's schedule) and,
during the session, seeded random faults hit it: drops, hangs, farm blips that leave streams
silently dead, 1101 (data lost), a 326 on reconnect. The invariants are the operator's:
every bar reaches the brain exactly once or a gap is marked; the brain keeps its first
incarnation; the link never gives up; every restart is followed by a tree dump.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from config.market_calendar import ET, get_calendar
from messages.link import LinkStatus
from runtime.app.app import TreeOptions
from runtime.app.bot import BotHandle, BotOptions, run_bot
from runtime.infra.clock import Clock
from tests.harness import closed_port, settings_for
from tools.fake_gateway.market import Market
from tools.fake_gateway.sim_transport import SimGateway, SimTransport

SPY_1M = "spy_1m_src-leoxu2023_2024-02-20_2024-05-17_rth.csv"
MONDAY = dt.date(2024, 2, 26)
DAYS = 5
FAULTS_PER_DAY = 4
UNDERLYINGS = ("SPY", "QQQ", "IWM")


async def _scenario(gw: SimGateway, clock: Clock, rng: random.Random,
                    sessions: list[Any]) -> list[str]:
    """Inject faults during each session and the scheduled restart at 16:30 ET."""
    log: list[str] = []
    for session in sessions:
        moments = sorted(session.open + dt.timedelta(minutes=rng.randint(20, 370))
                         for _ in range(FAULTS_PER_DAY))
        for when in moments:
            await clock.sleep_until(when)
            fault = rng.choice(["drop", "hang", "farm_blip", "error_1101", "clientid_326"])
            log.append(f"{when.astimezone(ET):%a %H:%M} {fault}")
            if fault == "drop":
                gw.drop()
            elif fault == "hang":
                gw.hang()
                await trio.sleep(rng.uniform(10, 40))
                gw.unhang()
            elif fault == "farm_blip":
                gw.farm_blip()
            elif fault == "error_1101":
                gw.send_error(1101)
            else:
                gw.clientid_in_use(1)
                gw.drop()
        restart_at = dt.datetime.combine(session.date, dt.time(16, 30), tzinfo=ET)
        await clock.sleep_until(restart_at + dt.timedelta(seconds=rng.uniform(0, 30)))
        gw.restart(rng.uniform(60, 180))
        log.append(f"{session.date:%a} 16:30 scheduled restart")
    return log


def _minutes(session: Any) -> set[dt.datetime]:
    n = int((session.close - session.open).total_seconds() // 60)
    return {session.open + dt.timedelta(minutes=m) for m in range(n)}


@pytest.mark.slow
async def test_five_trading_days_of_restarts_and_faults_keep_every_invariant(
        tmp_path: Path, shared_data: Path, autojump_clock: trio.testing.MockClock) -> None:
    cal = get_calendar()
    sessions = cal.sessions(MONDAY, MONDAY + dt.timedelta(days=6))[:DAYS]
    start = dt.datetime.combine(MONDAY, dt.time(6, 0), tzinfo=ET)
    market = await trio.to_thread.run_sync(
        lambda: Market(cal, seed=11, bars_csv=shared_data / SPY_1M))
    gw = SimGateway(market, Clock(start))
    settings = settings_for(tmp_path, IBKR_PORT=str(closed_port()), DAILY_STOP_TIME="",
                            GAMEPLAN_PATH=str(tmp_path / "no_gameplan.json"))
    events: list[dict[str, Any]] = []
    rng = random.Random(20240226)
    async with trio.open_nursery() as nursery:
        bot: BotHandle = await nursery.start(run_bot, settings, BotOptions(
            sim_start=start, console=False, handle_signals=False,
            tree=TreeOptions(transport=SimTransport(gw))))
        bot.journal.add_tap(events.append)
        faults = await _scenario(gw, bot.clock, rng, sessions)
        await bot.clock.sleep_until(sessions[-1].close + dt.timedelta(hours=1))
        final_link = bot.wiring.link_state.value
        root = bot.root
        bars_left = bot.wiring.bars.depth()
        bot.request_stop("scenario over")

    assert len(faults) == DAYS * (FAULTS_PER_DAY + 1)

    # the link never gave up: same subtree incarnation, up again at the end
    assert final_link.status is LinkStatus.UP
    assert root.find("root.link").incarnation == 1
    assert not [e for e in events if e["event"] == "alert" and "exceeded its restart intensity"
                in e.get("title", "")]
    downs = [e for e in events if e["event"] == "link_down"]
    assert sum(1 for e in downs if e["expected"]) >= DAYS          # the daily restarts
    assert len([e for e in events if e["event"] == "link_up"]) >= DAYS + 1

    # the brain never restarted
    assert root.find("root.brain.indicators").incarnation == 1
    assert root.find("root.brain.strategy_selector").incarnation == 1
    assert root.find("root.brain").incarnation == 1

    # every session minute of every underlying reached the brain exactly once, or a gap says so
    delivered: dict[str, list[dt.datetime]] = defaultdict(list)
    for e in events:
        if e["event"] == "bar" and e["symbol"] in UNDERLYINGS:
            delivered[e["symbol"]].append(dt.datetime.fromisoformat(e["bar_ts"]))
    gaps: dict[str, list[tuple[dt.datetime, dt.datetime]]] = defaultdict(list)
    for e in events:
        if e["event"] == "bar_gap":
            gaps[e["symbol"]].append((dt.datetime.fromisoformat(e["start"]),
                                      dt.datetime.fromisoformat(e["end"])))
    for symbol in UNDERLYINGS:
        got = delivered[symbol]
        assert len(got) == len(set(got)), f"{symbol}: a bar was delivered twice"
        assert got == sorted(got), f"{symbol}: bars out of order"
        for session in sessions:
            missing = _minutes(session) - set(got)
            unexplained = {m for m in missing
                           if not any(a <= m < b for a, b in gaps[symbol])}
            assert not unexplained, f"{symbol} {session.date}: {len(unexplained)} minutes lost"
    assert bars_left == 0

    # every restart is followed by a tree dump, but for a retry after a reconnect attempt
    # that failed before its session came up (one tree per outage, not one per attempt)
    for i, e in enumerate(events[:-1]):
        if e["event"] == "actor_restart" and events[i + 1]["event"] != "actor_restart" \
                and "ConnectFailed" not in e["reason"]:
            assert events[i + 1]["event"] == "tree" and events[i + 1]["reason"] == "restart"
