"""GatewayLink and BarFeed, with real ib_async over TCP against tools.fake_gateway.

Each test starts at 10:00 ET on 2024-02-21, mid-session (a replay of real SPY bars at 60x: a
simulated minute per wall second) and checks the operator-visible outcome in the event journal.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import trio

from config.market_calendar import ET
from messages.link import LinkStatus
from tests.harness.bot import Harness, Recorder, open_bot_and_gateway

pytestmark = pytest.mark.slow   # real time against the simulator at 60x


def _no_duplicate_bars(journal: Recorder) -> None:
    seen = Counter((e["symbol"], e["bar_ts"]) for e in journal.of("bar"))
    dupes = [k for k, n in seen.items() if n > 1]
    assert not dupes, f"bars delivered twice: {dupes[:5]}"


async def _first_live_bar(h: Harness, *, after: int = 0,
                          session: int | None = None) -> dict[str, Any]:
    def fresh(e: dict[str, Any]) -> bool:
        return bool(e["source"] == "live" and e["symbol"] == "SPY")
    bar = await h.journal.wait_for("bar", after=after, where=fresh, timeout=60)
    if session is not None:
        assert h.bot.wiring.link_state.value.session_id == session
    return bar


async def test_gateway_restart_resubscribes_backfills_and_keeps_strategy_state(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_bot_and_gateway(tmp_path, shared_data) as h:
        up = await h.journal.wait_for("link_up")
        assert up["readonly"] is True and up["accounts"] == ["DU1234567"]   # DRY_RUN
        assert up["outage_s"] is None
        await _first_live_bar(h)
        mark = h.journal.mark()
        await h.gateway.restart(3)
        down = await h.journal.wait_for("link_down", after=mark)
        assert down["expected"] is False
        again = await h.journal.wait_for("link_up", after=mark, timeout=60)
        assert again["session"] == 2 and again["outage_s"] >= 3 * 60 * 0.9   # sim seconds
        await _first_live_bar(h, after=h.journal.mark(), session=2)
        backfilled = [e for e in h.journal.events[mark:]
                      if e["event"] == "bar" and e["source"] == "backfill"]
        assert {e["symbol"] for e in backfilled} >= {"SPY", "QQQ", "IWM"}
        assert h.journal.of("bar_gap") == []
        _no_duplicate_bars(h.journal)
        root = h.bot.root
        assert root.find("root.link.gateway_link").incarnation == 2
        assert root.find("root.link.bar_feed").incarnation == 2
        assert root.find("root.brain.indicators").incarnation == 1
        assert root.find("root.brain.strategy_selector").incarnation == 1
        restart = h.journal.of("actor_restart", path="root.link.gateway_link")
        assert restart and restart[-1]["expected"] is False
        trees = [e for e in h.journal.events[mark:] if e["event"] == "tree"]
        assert trees and trees[0]["reason"] == "restart"


async def test_bars_reach_downstream_in_order_exactly_once_across_three_restarts(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_bot_and_gateway(tmp_path, shared_data) as h:
        await _first_live_bar(h)
        for i in range(3):
            mark = h.journal.mark()
            await h.gateway.restart(1)
            await h.journal.wait_for("link_up", after=mark, timeout=60)
            await _first_live_bar(h, after=h.journal.mark(), session=i + 2)
        _no_duplicate_bars(h.journal)
        spy = [dt.datetime.fromisoformat(e["bar_ts"]) for e in h.journal.of("bar", symbol="SPY")]
        assert spy == sorted(spy)
        live = [t for t, e in zip(spy, h.journal.of("bar", symbol="SPY"), strict=True)
                if e["source"] != "history"]
        gaps = [b - a for a, b in itertools.pairwise(live)
                if b - a != dt.timedelta(minutes=1)]
        assert gaps == []       # in-session minutes are contiguous across every restart


async def test_hung_gateway_is_detected_by_the_liveness_probe(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_bot_and_gateway(tmp_path, shared_data) as h:
        await h.journal.wait_for("link_up")
        mark = h.journal.mark()
        await h.gateway.hang()
        down = await h.journal.wait_for("link_down", after=mark, timeout=20)
        assert "stopped answering" in down["reason"]
        await h.gateway.unhang()
        await h.journal.wait_for("link_up", after=mark, timeout=90)


async def test_drop_while_a_request_is_in_flight_fails_it_cleanly_and_the_feed_retries(
        tmp_path: Path, shared_data: Path) -> None:
    from messages.link import OptionChainRequest
    from runtime.gateway.link_client import LinkClient, LinkUnavailable

    async with open_bot_and_gateway(tmp_path, shared_data) as h:
        await _first_live_bar(h)
        client = LinkClient(h.bot.wiring.link_requests.clone_sender(), h.bot.wiring.link_state)
        await h.gateway.hang()                  # the request will sit unanswered...
        mark = h.journal.mark()
        outcome: list[str] = []

        async def ask() -> None:
            try:
                await client.call(OptionChainRequest(underlying="SPY"), timeout=30)
                outcome.append("answered")
            except LinkUnavailable as exc:
                outcome.append(f"unavailable: {exc}")

        async with trio.open_nursery() as n:
            n.start_soon(ask)
            await trio.sleep(0.5)
            await h.gateway.drop()              # ...until the connection drops under it
            await h.gateway.unhang()
        assert outcome and outcome[0].startswith("unavailable")
        await h.journal.wait_for("link_up", after=mark, timeout=60)
        await _first_live_bar(h, after=h.journal.mark())
        chain = await client.call(OptionChainRequest(underlying="SPY"), timeout=30)
        assert chain.expirations and chain.strikes and chain.session_id == 2


async def test_error_1101_resubscribes_every_stream_without_reconnecting(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_bot_and_gateway(tmp_path, shared_data) as h:
        await _first_live_bar(h)
        mark = h.journal.mark()
        history_requests = len(h.journal.of("request", kind="historical"))
        await h.gateway.send_error(1101)
        await _first_live_bar(h, after=h.journal.mark())
        with trio.fail_after(30):
            while len(h.journal.of("request", kind="historical")) < history_requests + 4:
                await trio.sleep(0.1)
        assert h.journal.of("link_up") and len(h.journal.of("link_up")) == 1
        assert h.bot.wiring.link_state.value.status is LinkStatus.UP
        assert not [e for e in h.journal.events[mark:] if e["event"] == "link_down"]
        _no_duplicate_bars(h.journal)


async def test_client_id_in_use_is_noticed_at_once_and_retried_with_another_id(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_bot_and_gateway(tmp_path, shared_data) as h:
        await h.journal.wait_for("link_up")
        await h.gateway.set_clientid_in_use(True)
        mark = h.journal.mark()
        await h.gateway.drop()
        for _ in range(2):                  # each 326 is seen without waiting for a timeout
            failed = await h.journal.wait_for(
                "link_connect_failed", after=h.journal.mark(), timeout=20,
                where=lambda e: e["kind"] == "client_id_in_use")
        await h.gateway.set_clientid_in_use(False)
        up = await h.journal.wait_for("link_up", after=mark, timeout=60)
        assert up["client_id"] != 1 and failed["client_id"] != 1


async def test_scheduled_restart_is_expected_and_not_an_alarm(
        tmp_path: Path, shared_data: Path) -> None:
    start = dt.datetime(2024, 2, 21, 16, 29, 30, tzinfo=ET)
    async with open_bot_and_gateway(tmp_path, shared_data, start=start,
                                    GATEWAY_RESTART_TIME="16:30") as h:
        await h.journal.wait_for("link_up")
        mark = h.journal.mark()
        await h.gateway.restart(2)
        down = await h.journal.wait_for("link_down", after=mark)
        assert down["expected"] is True
        await h.journal.wait_for("link_up", after=mark, timeout=60)
        restarts = [e for e in h.journal.events[mark:] if e["event"] == "actor_restart"]
        assert restarts and all(e["expected"] for e in restarts)
        alerts = [e for e in h.journal.events[mark:] if e["event"] == "alert"]
        assert alerts and all(a["severity"] == "info" for a in alerts)
        assert any(a["title"] == "Scheduled Gateway restart done" for a in alerts)


async def test_long_outage_outside_the_window_raises_one_critical_alert_and_keeps_trying(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_bot_and_gateway(tmp_path, shared_data, OUTAGE_ALERT_MIN="0.1") as h:
        await h.journal.wait_for("link_up")
        mark = h.journal.mark()
        await h.gateway.restart(9)     # 9 simulated minutes > 6 s, and 9 real seconds > 6 s
        alert = await h.journal.wait_for(
            "alert", after=mark, where=lambda e: e["title"] == "Gateway unreachable")
        assert alert["severity"] == "critical"
        await h.journal.wait_for("link_up", after=mark, timeout=60)
        assert len([e for e in h.journal.events[mark:] if e["event"] == "alert" and
                    e["title"] == "Gateway unreachable"]) == 1


async def test_on_an_accelerated_clock_a_short_real_outage_is_not_a_long_one(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_bot_and_gateway(tmp_path, shared_data, speed=600.0,
                                    OUTAGE_ALERT_MIN="10") as h:
        await h.journal.wait_for("link_up")
        mark = h.journal.mark()
        await h.gateway.restart(3)       # 30 simulated minutes, but 3 real seconds
        up = await h.journal.wait_for("link_up", after=mark, timeout=60)
        assert up["outage_s"] > 10 * 60
        assert not [e for e in h.journal.events[mark:] if e["event"] == "alert"
                    and e["title"] == "Gateway unreachable"]


@pytest.mark.slow
async def test_pacing_violations_open_the_breaker_and_never_cause_a_reconnect(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_bot_and_gateway(tmp_path, shared_data) as h:
        await _first_live_bar(h)
        await h.gateway.set_pacing(True)
        mark = h.journal.mark()
        for _ in range(8):                     # 8 resubscriptions per contract within 2 s
            await h.gateway.send_error(1101)
            await trio.sleep(0.1)
        alert = await h.journal.wait_for(
            "alert", after=mark, timeout=30,
            where=lambda e: e["title"] == "Gateway requests paused: historical")
        assert alert["severity"] == "warning"
        paced = [e for e in h.journal.events[mark:] if e["event"] == "request"
                 and e["kind"] == "historical" and e["outcome"] == "pacing"]
        assert paced
        tree = h.bot.dump_tree("request")
        link = next(c for c in tree["children"] if c["name"] == "link")
        gateway_link = next(c for c in link["children"] if c["name"] == "gateway_link")
        assert gateway_link["gauges"]["breakers"]["value"]["historical"].startswith("open")
        await h.gateway.set_pacing(False)
        await h.journal.wait_for("alert", after=mark, timeout=90,
                                 where=lambda e: e["title"] == "Gateway requests resumed: "
                                 "historical")
        await _first_live_bar(h, after=h.journal.mark())
        assert not [e for e in h.journal.events[mark:] if e["event"] in ("link_down",
                                                                         "link_up")]
        assert h.bot.root.find("root.link.gateway_link").incarnation == 1
