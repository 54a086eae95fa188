"""Five trading days of the money path on trio's MockClock, with fills during outages.

The whole actor tree runs in PAPER mode against the in-process SimTransport (real SPY bars from
../shared/data) with the simulator's broker behind it (tools/fake_gateway/sim_orders.py). As the
operator runs it, the bot starts each morning and stops after the 16:30 ET Gateway restart; its
state carries over in STATE_DIR. Every day: entries on SPY and QQQ, Gateway restarts while an
entry or a bracket child is working, fills that land while nobody is connected, a drop, a hang,
the doctrine's exits and the flatten before the close. At the end the operator's invariants:
positions equal the broker's, every intent has exactly one terminal state, no order reached the
broker twice, and the P&L the bot booked is the cash the broker moved.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from actors import mode_guard, order_router
from config.market_calendar import ET, get_calendar
from messages.brain import EntrySignal
from messages.control import TradingState
from messages.market import Right
from messages.orders import TERMINAL_STATES
from runtime.app.app import TreeOptions
from runtime.app.bot import BotHandle, BotOptions, run_bot
from runtime.infra.clock import Clock
from tests.harness import closed_port, read_jsonl, settings_for
from tools.fake_gateway.market import Market
from tools.fake_gateway.sim_orders import DeskTransport, SimOrderDesk
from tools.fake_gateway.sim_transport import SimGateway, SimTransport

SPY_1M = "spy_1m_src-leoxu2023_2024-02-20_2024-05-17_rth.csv"
MONDAY = dt.date(2024, 2, 26)
DAYS = 5
CASH = 100_000.0

pytestmark = pytest.mark.slow


def _at(day: dt.date, hh: int, mm: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm), tzinfo=ET)


async def _signal(bot: BotHandle, market: Market, symbol: str, right: Right) -> None:
    now = bot.clock.now_utc()
    send = bot.wiring.signals.clone_sender()
    async with send:
        await send.send(EntrySignal(
            ts=now, bar_ts=now - dt.timedelta(minutes=1), symbol=symbol, strategy="A",
            direction="bullish" if right == "C" else "bearish", right=right,
            reasons=("five-day scenario",), size_multiplier=1.0,
            close=round(market.price(symbol, now), 2)))


def _working(desk: SimOrderDesk, suffix: str) -> list[Any]:
    return [o for o in desk.broker.open_orders() if o.order_ref.endswith(suffix) and o.active]


async def _trade_day(bot: BotHandle, gw: SimGateway, desk: SimOrderDesk, day: dt.date,
                     n: int, log: list[str]) -> None:
    clock = gw.clock
    market = gw.market
    await clock.sleep_until(_at(day, 9, 45))
    with trio.fail_after(3600):
        await bot.wiring.trading.wait_value(lambda s: s.state is TradingState.ACTIVE)
    # an entry with its bracket; the Gateway restarts and a child trades while nobody is
    # connected (take-profit or stop-loss, alternately)
    await clock.sleep_until(_at(day, 10, 0))
    await _signal(bot, market, "SPY", "C" if n % 2 == 0 else "P")
    await clock.sleep_until(_at(day, 10, 0) + dt.timedelta(seconds=30))
    gw.restart(240)
    for o in _working(desk, "/tp" if n % 2 == 0 else "/sl")[:1]:
        desk.dispatch(desk.broker.fill_working(o.order_ref, None, desk.now))
        log.append(f"{day} {o.order_ref} filled during an outage")
    # another outage: whatever the market fills meanwhile is recovered the same way
    await clock.sleep_until(_at(day, 11, 0))
    gw.restart(180)
    # a second underlying; then a drop and a hang while it may be working
    await clock.sleep_until(_at(day, 11, 30))
    await _signal(bot, market, "QQQ", "P" if n % 2 == 0 else "C")
    await clock.sleep_until(_at(day, 11, 31))
    gw.drop()
    await clock.sleep_until(_at(day, 13, 0))
    gw.hang()
    await trio.sleep(45)
    gw.unhang()
    # the stop-loss side of a bracket at the broker while connected (on alternate days)
    await clock.sleep_until(_at(day, 14, 0))
    if n % 2 == 0:
        for o in _working(desk, "/sl")[:1]:
            desk.dispatch(desk.broker.fill_working(o.order_ref, o.aux_price, desk.now))
            log.append(f"{day} stop-loss {o.order_ref} filled while connected")
    # a late entry the session-end flatten closes; the scheduled restart at 16:30 ET
    await clock.sleep_until(_at(day, 15, 30))
    await _signal(bot, market, "SPY", "C")
    await clock.sleep_until(_at(day, 16, 30) + dt.timedelta(seconds=20))
    gw.restart(150)
    await clock.sleep_until(_at(day, 16, 45))


async def test_five_trading_days_end_with_the_brokers_positions_and_one_outcome_per_intent(
        tmp_path: Path, shared_data: Path, autojump_clock: trio.testing.MockClock) -> None:
    cal = get_calendar()
    sessions = cal.sessions(MONDAY, MONDAY + dt.timedelta(days=6))[:DAYS]
    market = await trio.to_thread.run_sync(
        lambda: Market(cal, seed=11, bars_csv=shared_data / SPY_1M))
    gw = SimGateway(market, Clock(_at(MONDAY, 9, 20)))
    desk = SimOrderDesk(gw, cash=CASH)
    transport = DeskTransport(SimTransport(gw), desk)
    settings = settings_for(
        tmp_path, IBKR_PORT=str(closed_port()), DAILY_STOP_TIME="",
        GAMEPLAN_PATH=str(tmp_path / "no_gameplan.json"), DRY_RUN="false",
        PAPER_TRADING="true", OPERATOR_ID="op", PDT_ENABLED="false", BOT_CAPITAL_USD=str(CASH))
    tree = TreeOptions(transport=transport, guard_tuning=mode_guard.Tuning(tick=5.0),
                       router_tuning=order_router.Tuning(housekeeping_every=5.0,
                                                         reconcile_every=300.0,
                                                         account_every=120.0))
    log: list[str] = []
    async with trio.open_nursery() as outer:
        outer.start_soon(desk.run_engine)
        for n, session in enumerate(sessions):
            await gw.clock.sleep_until(_at(session.date, 9, 25))
            async with trio.open_nursery() as nursery:   # one bot process per day
                bot: BotHandle = await nursery.start(run_bot, settings, BotOptions(
                    sim_start=gw.clock.now_utc(), console=False, handle_signals=False,
                    tree=tree))
                await _trade_day(bot, gw, desk, session.date, n, log)
                bot.request_stop("end of the trading day")
        outer.cancel_scope.cancel()
    events = read_jsonl(tmp_path / "logs" / "events.jsonl")

    def of(name: str) -> list[dict[str, Any]]:
        return [e for e in events if e["event"] == name]

    # the scenario did what it says
    assert len(of("startup")) == DAYS
    assert sum(1 for line in log if "during an outage" in line) >= DAYS
    recovered = sum(e["fills_recovered"] for e in of("reconcile"))
    assert recovered >= DAYS, f"fills recovered after outages: {recovered}"
    assert len(of("order_intent")) >= 2 * DAYS
    assert any(e["state"] == "filled" and e["kind"] == "exit" for e in of("intent_done"))

    # no order reached the broker twice
    refs = Counter(o["orderRef"] for o in desk.received)
    assert all(n == 1 for n in refs.values()), [r for r, n in refs.items() if n > 1]

    # every intent has exactly one terminal state, journaled once; none is left open
    outcomes = Counter(e["intent_id"] for e in of("intent_done"))
    assert all(n == 1 for n in outcomes.values()), [i for i, n in outcomes.items() if n > 1]
    ledger = json.loads((tmp_path / "state" / "ledger.json").read_text())["state"]
    open_intents = [i for i in ledger["intents"] if i["state"] not in TERMINAL_STATES]
    assert open_intents == []
    for e in of("order_intent"):
        assert outcomes[e["intent_id"]] == 1, e

    # positions equal the broker's (flat at every close)
    broker_held = {p.spec.con_id: p.quantity for p in desk.broker.open_positions()}
    assert ledger["positions"] == [] and broker_held == {}

    # the P&L the bot booked is the cash the broker moved
    booked = sum(e["realized_pnl"] for e in of("fill"))
    assert booked == pytest.approx(desk.broker.cash - CASH, abs=0.05)
    risk = json.loads((tmp_path / "state" / "risk.json").read_text())["state"]
    assert risk["day"] == sessions[-1].date.isoformat()
    assert not [e for e in of("halt") if e.get("fault")]
