"""The link's error policy end to end, the whole actor tree on trio's MockClock (issue 13).

The in-process SimTransport (tools.fake_gateway.sim_transport) stands in for the Gateway so
that outages of many simulated minutes run in milliseconds: a hang that must raise the outage
alert at OUTAGE_ALERT_MIN, a restart storm, an unknown symbol retried at a long interval, a
competing session, pacing and a code the policy does not know. The same scenarios over real
TCP and real ib_async are in tests/system/integration/test_error_policy_against_simulator.py.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
import trio.testing

from actors import bar_feed
from config.market_calendar import ET, get_calendar
from messages.link import FeedSymbols, GatewayNotice
from messages.market import Bar, BarGap, OptionSpec, Quote
from runtime.app.app import TreeOptions
from runtime.app.bot import BotHandle, BotOptions, run_bot
from runtime.gateway.link_client import LinkClient
from runtime.gateway.restart_storm import STORM_PAUSE, STORM_RESTARTS
from runtime.infra.clock import Clock
from runtime.supervision.actor import ActorEnv
from runtime.supervision.channels import Latest
from runtime.supervision.tree import TreeNode
from tests.harness import closed_port, events_named, first_event, settings_for, wait_until
from tools.fake_gateway.market import Market
from tools.fake_gateway.sim_transport import SimGateway, SimTransport

SPY_1M = "spy_1m_src-leoxu2023_2024-02-20_2024-05-17_rth.csv"
START = dt.datetime(2024, 2, 27, 10, 0, tzinfo=ET)     # a Tuesday, mid-session

Event = dict[str, Any]


@dataclass
class Sim:
    bot: BotHandle
    gw: SimGateway
    events: list[Event]

    def of(self, name: str, after: int = 0, **match: Any) -> list[Event]:
        return events_named(self.events, name, after=after, **match)

    def alerts(self, title: str, after: int = 0) -> list[Event]:
        return [e for e in self.of("alert", after) if e["title"] == title]

    async def wait_for(self, name: str, *, after: int = 0,
                       where: Callable[[Event], bool] = lambda e: True,
                       within: float = 3600.0) -> Event:
        """The first matching event at index >= after, within `within` simulated seconds."""
        await wait_until(lambda: first_event(self.events, name, after=after, where=where)
                         is not None, timeout=within, poll=1.0)
        found = first_event(self.events, name, after=after, where=where)
        assert found is not None
        return found

    async def link_up(self) -> None:
        with trio.fail_after(600):
            await self.bot.wiring.link_state.wait_value(lambda s: s.up)

    def ts(self, event: Event) -> dt.datetime:
        return dt.datetime.fromisoformat(event["ts"])


@asynccontextmanager
async def open_sim(tmp_path: Path, shared_data: Path, *,
                   known_symbols: frozenset[str] | None = None,
                   **settings: str) -> AsyncIterator[Sim]:
    market = await trio.to_thread.run_sync(
        lambda: Market(get_calendar(), seed=3, bars_csv=shared_data / SPY_1M))
    gw = SimGateway(market, Clock(START))
    gw.known_symbols = known_symbols
    env = {"IBKR_PORT": str(closed_port()), "DAILY_STOP_TIME": "",
           "GAMEPLAN_PATH": str(tmp_path / "no_gameplan.json"), **settings}
    events: list[Event] = []
    # the Gateway opens its port a few (virtual) seconds in, so the journal tap below is
    # attached before anything the tests count can happen
    gw.down_until = trio.current_time() + 5.0
    async with trio.open_nursery() as nursery:
        bot: BotHandle = await nursery.start(run_bot, settings_for(tmp_path, **env), BotOptions(
            sim_start=START, console=False, handle_signals=False,
            tree=TreeOptions(transport=SimTransport(gw))))
        bot.journal.add_tap(events.append)
        try:
            yield Sim(bot, gw, events)
        finally:
            bot.request_stop("test over")


def _live(symbol: str) -> Callable[[Event], bool]:
    return lambda e: e["symbol"] == symbol and e["source"] == "live"


async def test_a_hang_raises_the_outage_alert_at_outage_alert_min_naming_what_is_known(
        tmp_path: Path, shared_data: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with open_sim(tmp_path, shared_data, OUTAGE_ALERT_MIN="10") as sim:
        await sim.link_up()
        sim.gw.hang()
        down = await sim.wait_for("link_down")
        alert = await sim.wait_for("alert", where=lambda e: e["title"] == "Gateway unreachable")
        after = (sim.ts(alert) - sim.ts(down)).total_seconds()
        assert 600 <= after < 630, f"outage alert {after:.0f}s after the link went down"
        assert alert["severity"] == "critical"
        assert "handshake" in alert["text"]           # a hung Gateway: the port stays open
        assert "2FA" not in alert["text"]             # no guessing at the cause
        since = sim.bot.wiring.link_state.value.since   # retries do not restart the outage
        assert since is not None and abs((since - sim.ts(down)).total_seconds()) < 1
        await trio.sleep(3600)                        # an hour more of hanging
        assert len(sim.alerts("Gateway unreachable")) == 1
        mark = len(sim.events)
        sim.gw.unhang()
        await sim.wait_for("link_up", after=mark, within=120)


async def test_a_closed_port_is_named_in_the_outage_alert(
        tmp_path: Path, shared_data: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with open_sim(tmp_path, shared_data, OUTAGE_ALERT_MIN="5") as sim:
        await sim.link_up()
        sim.gw.restart(3600)
        alert = await sim.wait_for("alert", where=lambda e: e["title"] == "Gateway unreachable",
                                   within=400)
        assert "closed" in alert["text"] or "refuses" in alert["text"]


async def test_a_restart_storm_is_one_critical_alert_and_a_long_pause(
        tmp_path: Path, shared_data: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with open_sim(tmp_path, shared_data) as sim:
        await sim.link_up()
        for _ in range(STORM_RESTARTS + 3):            # each session dies the same way
            await trio.sleep(5)
            mark = len(sim.events)
            sim.gw.drop()
            await sim.wait_for("link_up", after=mark, within=STORM_PAUSE + 120)
        storms = sim.alerts("Gateway link restart storm")
        assert len(storms) == 1
        assert storms[0]["severity"] == "critical"
        assert "the Gateway closed the connection" in storms[0]["text"]
        # the session after the storm alert came only after the long pause
        at = sim.events.index(storms[0])
        next_up = next(e for e in sim.events[at:] if e["event"] == "link_up")
        assert (sim.ts(next_up) - sim.ts(storms[0])).total_seconds() >= STORM_PAUSE * 0.99


async def test_an_unknown_symbol_is_disabled_alone_with_one_alert_and_retried_later(
        tmp_path: Path, shared_data: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with open_sim(tmp_path, shared_data,
                        known_symbols=frozenset({"SPY", "QQQ", "VIX"})) as sim:
        await sim.wait_for("symbol_disabled", where=lambda e: e["symbol"] == "IWM")
        unavailable = sim.bot.wiring.symbols.value.unavailable
        assert [(u.symbol, u.code) for u in unavailable] == [("IWM", 200)]
        mark = len(sim.events)
        await sim.wait_for("bar", after=mark, where=_live("SPY"), within=180)
        await trio.sleep(2 * 3600)                    # two long retry intervals go by
        assert len(sim.alerts("Market data for IWM unavailable")) == 1
        retries = sim.of("symbol_disabled", symbol="IWM")
        assert 2 <= len(retries) <= 6, "retried at a long interval, never in a loop"
        assert sim.of("link_down") == []
        assert sim.bot.root.find("root.link.gateway_link").incarnation == 1
        assert sim.bot.wiring.symbols.value.available("SPY")
        # the symbol comes back at its next try
        sim.gw.known_symbols = None
        mark = len(sim.events)
        back = await sim.wait_for("alert", after=mark, within=3600,
                                  where=lambda e: e["title"] == "Market data for IWM back")
        assert back["severity"] == "info"
        assert sim.bot.wiring.symbols.value.unavailable == ()
        await sim.wait_for("bar", after=mark, where=_live("IWM"), within=180)


async def test_a_refused_option_quote_is_alerted_once_and_retried_at_a_long_interval(
        tmp_path: Path, shared_data: Path, autojump_clock: trio.testing.MockClock) -> None:
    """An option contract IB refuses for good (200) is not asked for every 10 s: one alert,
    retries every QUOTE_REFUSED_RETRY_MARKET_S, the link untouched; the quote comes back at
    the next try once IB knows it. BarFeed's quote lines run here on their own wanted set
    (the running OrderRouter owns the bot's), over the running link and simulator."""
    async with open_sim(tmp_path, shared_data,
                        known_symbols=frozenset({"SPY", "QQQ", "VIX"})) as sim:
        await sim.link_up()
        w = sim.bot.wiring
        env = ActorEnv(clock=sim.bot.clock, settings=sim.bot.settings, journal=sim.bot.journal,
                       alerts=w.alerts)
        ctx = env.context(TreeNode("quote_lines", "root.link.quote_lines", "actor"))
        spec = OptionSpec(underlying="IWM", strike=200.0, right="C",
                          expiry=sim.bot.clock.now_et().date() + dt.timedelta(days=3))
        wanted: Latest[frozenset[OptionSpec]] = Latest("wanted", frozenset({spec}))
        quotes: Latest[Mapping[str, Quote]] = Latest("quotes", {})
        _notices_tx, notices_rx = trio.open_memory_channel[GatewayNotice](1)
        bars_tx, _bars_rx = trio.open_memory_channel[Bar | BarGap](1)
        requests = w.link_requests.clone_sender()
        inbox = bar_feed.Inbox(link_state=w.link_state, notices=notices_rx,
                               wanted_quotes=wanted)
        outbox = bar_feed.Outbox(bars=bars_tx, link_requests=requests, vix=Latest("v", None),
                                 last_bar=Latest("b", None), quotes=quotes,
                                 symbols=Latest("s", FeedSymbols()))
        client = LinkClient(requests, w.link_state)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bar_feed._sync_quotes, ctx, client, inbox, outbox, {})
            title = f"Option quote unavailable: {spec.key}"
            await sim.wait_for("alert", where=lambda e: e["title"] == title, within=60)
            mark = len(sim.events)
            await trio.sleep(2 * 3600)                    # four long retry intervals go by
            asked = sim.of("quote_refused", mark, contract=spec.key)
            assert 2 <= len(asked) <= 6, f"retried at a long interval, not in a loop: {asked}"
            assert len(sim.alerts(title)) == 1
            assert sim.bot.root.find("root.link.gateway_link").incarnation == 1
            sim.gw.known_symbols = None
            back = await sim.wait_for("alert", after=mark, within=3600, where=lambda e:
                                      e["title"] == f"Option quote back: {spec.key}")
            assert back["severity"] == "info"
            assert spec.key in quotes.value
            nursery.cancel_scope.cancel()


async def test_a_competing_session_is_announced_in_words_without_a_restart(
        tmp_path: Path, shared_data: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with open_sim(tmp_path, shared_data) as sim:
        await sim.wait_for("bar", where=_live("SPY"), within=300)
        sim.gw.rejections[None] = 10197
        sim.gw.send_error(1101)                       # every stream subscribes again: refused
        alert = await sim.wait_for("alert", within=120,
                                   where=lambda e: e["title"].startswith("Competing IB session"))
        assert "logged in elsewhere" in alert["text"]
        await trio.sleep(600)
        assert len([e for e in sim.of("alert") if e["title"].startswith("Competing")]) == 1
        assert sim.of("link_down") == [] and sim.of("symbol_disabled") == []
        sim.gw.rejections.clear()
        mark = len(sim.events)
        await sim.wait_for("bar", after=mark, where=_live("SPY"), within=900)
        assert sim.bot.root.find("root.link.gateway_link").incarnation == 1


async def test_pacing_162_backs_off_and_retries_without_a_restart(
        tmp_path: Path, shared_data: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with open_sim(tmp_path, shared_data) as sim:
        await sim.wait_for("bar", where=_live("SPY"), within=300)
        sim.gw.rejections["SPY"] = 162
        mark = len(sim.events)
        sim.gw.send_error(1101)
        await trio.sleep(600)
        assert sim.of("bar", after=mark, symbol="SPY", source="live") == []
        assert sim.of("bar", after=mark, symbol="QQQ", source="live")   # the others flow
        sim.gw.rejections.clear()
        mark = len(sim.events)
        await sim.wait_for("bar", after=mark, where=_live("SPY"), within=600)
        assert sim.of("link_down") == [] and sim.of("symbol_disabled") == []


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def test_an_unknown_code_is_logged_once_and_changes_nothing(
        tmp_path: Path, shared_data: Path, autojump_clock: trio.testing.MockClock) -> None:
    lines = _Lines()
    logger = logging.getLogger("root.link.gateway_link")
    logger.addHandler(lines)
    try:
        async with open_sim(tmp_path, shared_data) as sim:
            await sim.wait_for("bar", where=_live("SPY"), within=300)
            for _ in range(3):
                sim.gw.send_error(31337, "a code from a future Gateway")
                await trio.sleep(1)
            mark = len(sim.events)
            await sim.wait_for("bar", after=mark, where=_live("SPY"), within=180)
            assert sim.of("link_down") == []
    finally:
        logger.removeHandler(lines)
    assert len([t for t in lines.lines if "31337" in t and "not in the error policy" in t]) == 1
