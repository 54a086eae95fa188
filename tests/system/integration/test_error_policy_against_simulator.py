"""The error policy over real TCP and real ib_async against tools.fake_gateway (issue 13).

At 60x (a simulated minute per wall second), mid-session. The same scenarios on MockClock,
with long outages and storms, are in tests/system/sim/test_error_policy_virtual.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import trio

from messages.link import LinkStatus
from tests.harness.bot import Harness, open_bot_and_gateway

pytestmark = pytest.mark.slow   # real time against the simulator at 60x


def _live(symbol: str) -> Any:
    return lambda e: e["symbol"] == symbol and e["source"] == "live"


def _alerts(h: Harness, title: str, after: int = 0) -> list[dict[str, Any]]:
    return [e for e in h.journal.events[after:] if e["event"] == "alert"
            and e["title"].startswith(title)]


async def test_an_unknown_symbol_disables_it_alone_without_a_link_restart(
        tmp_path: Path, shared_data: Path) -> None:
    known = frozenset({"SPY", "QQQ", "VIX"})          # IWM: 200, like a typo or a delisting
    async with open_bot_and_gateway(tmp_path, shared_data,
                                    gateway={"known_symbols": known}) as h:
        disabled = await h.journal.wait_for("symbol_disabled", timeout=60,
                                            where=lambda e: e["symbol"] == "IWM")
        assert disabled["code"] == 200
        mark = h.journal.mark()
        for symbol in ("SPY", "QQQ"):                 # the others keep streaming live bars
            await h.journal.wait_for("bar", after=mark, where=_live(symbol), timeout=60)
        await trio.sleep(5)                           # five more simulated minutes
        alerts = _alerts(h, "Market data for IWM unavailable")
        assert len(alerts) == 1 and alerts[0]["severity"] == "critical"
        assert "200" in alerts[0]["text"] and "no security definition" in alerts[0]["text"]
        assert [e for e in h.journal.events if e["event"] == "link_down"] == []
        assert h.bot.root.find("root.link.gateway_link").incarnation == 1
        assert h.bot.wiring.link_state.value.status is LinkStatus.UP
        assert [u.symbol for u in h.bot.wiring.symbols.value.unavailable] == ["IWM"]
        assert not [e for e in h.journal.events if e["event"] == "bar" and e["symbol"] == "IWM"]


async def test_a_competing_session_is_announced_and_the_link_stays_up(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_bot_and_gateway(tmp_path, shared_data) as h:
        await h.journal.wait_for("bar", where=_live("SPY"), timeout=60)
        await h.gateway.set_rejection(10197)
        mark = h.journal.mark()
        await h.gateway.send_error(1101)              # every stream subscribes again: refused
        alert = await h.journal.wait_for(
            "alert", after=mark, timeout=30,
            where=lambda e: e["title"].startswith("Competing IB session"))
        assert alert["severity"] == "warning" and "logged in elsewhere" in alert["text"]
        await trio.sleep(3)
        assert len(_alerts(h, "Competing IB session", mark)) == 1
        await h.gateway.set_rejection(None)
        again = h.journal.mark()
        await h.journal.wait_for("bar", after=again, where=_live("SPY"), timeout=90)
        assert not [e for e in h.journal.events[mark:]
                    if e["event"] in ("link_down", "symbol_disabled")]
        assert h.bot.root.find("root.link.gateway_link").incarnation == 1


async def test_the_outage_alert_names_a_login_that_never_completes(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_bot_and_gateway(tmp_path, shared_data, OUTAGE_ALERT_MIN="0.2") as h:
        await h.journal.wait_for("link_up", timeout=30)
        await h.gateway.set_login_pending(True)
        mark = h.journal.mark()
        await h.gateway.drop()
        alert = await h.journal.wait_for(
            "alert", after=mark, timeout=60, where=lambda e: e["title"] == "Gateway unreachable")
        assert "login pending" in alert["text"] and "handshake answered" in alert["text"]
        assert h.bot.wiring.link_state.value.status is not LinkStatus.UP
        await h.gateway.set_login_pending(False)
        await h.journal.wait_for("link_up", after=mark, timeout=60)


async def test_the_outage_alert_names_a_handshake_that_hangs(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_bot_and_gateway(tmp_path, shared_data, OUTAGE_ALERT_MIN="0.2") as h:
        await h.journal.wait_for("link_up", timeout=30)
        mark = h.journal.mark()
        await h.gateway.hang()
        down = await h.journal.wait_for("link_down", after=mark, timeout=30)
        assert "connected but silent" in down["reason"]
        alert = await h.journal.wait_for(
            "alert", after=mark, timeout=60, where=lambda e: e["title"] == "Gateway unreachable")
        assert "handshake hangs" in alert["text"] or "connected but silent" in alert["text"]
        assert "2FA" not in alert["text"]
        await h.gateway.unhang()
        await h.journal.wait_for("link_up", after=mark, timeout=60)


async def test_at_60x_a_hang_is_alerted_at_outage_alert_min_of_simulated_time(
        tmp_path: Path, shared_data: Path) -> None:
    """The reported bug: during an 18.8-minute hang at 60x the outage alert never fired (a
    20 s real-time floor meant 20 simulated minutes, and it was only checked on retries)."""
    async with open_bot_and_gateway(tmp_path, shared_data, OUTAGE_ALERT_MIN="10") as h:
        await h.journal.wait_for("link_up", timeout=30)
        mark = h.journal.mark()
        await h.gateway.hang()
        down = await h.journal.wait_for("link_down", after=mark, timeout=30)
        alert = await h.journal.wait_for(
            "alert", after=mark, timeout=40, where=lambda e: e["title"] == "Gateway unreachable")
        late = (dt.datetime.fromisoformat(alert["ts"]) -
                dt.datetime.fromisoformat(down["ts"])).total_seconds()
        # 10 simulated minutes are 10 real seconds: a loaded machine may add a few (the old
        # floor made it 20)
        assert 10 * 60 <= late < 15 * 60, f"alerted {late / 60:.1f} simulated min after down"
        await h.gateway.unhang()
