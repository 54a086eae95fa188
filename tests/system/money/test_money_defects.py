"""Issue 12's defects, each reproduced against tools.fake_gateway with real ib_async over TCP.

Every test here failed on the code before the fix (the commit that added it says how): a SELL
the account could not cover, an entry sent after the kill switch, protection stripped while
its replacement could not be sent, quotes that never came back after 1101, an exit blocked by
one lost reply. Outcomes are read at the simulator (its books and orders log) and in the
bot's journal, where an operator would look.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
import trio

from actors import order_router
from messages.control import OperatorCommand, TradingState
from messages.link import LinkStatus, RestartSession
from messages.orders import EntryIntent, ExitIntent, SizingBudget
from runtime.app.app import TreeOptions
from runtime.gateway.link_client import LinkClient
from runtime.gateway.restart_storm import STORM_RESTARTS
from tests.harness import wait_until
from tests.harness.bot import BOT_WAIT
from tests.harness.money import (
    PAPER_ENV,
    broker_order,
    broker_position,
    entry_signal,
    fill_at_the_broker,
    filled_entry,
    inject,
    ledger_positions,
    open_money_bot,
    orders_received,
    terminal_states,
    wait_trading,
)
from tools.fake_gateway.faults import (
    hold_client_id,
    manual_close,
    manual_short,
    swallow_orders,
)

PAPER = PAPER_ENV
DRY = {"STARTING_EQUITY_USD": "100000", "BOT_CAPITAL_USD": "100000"}
QUICK = TreeOptions(router_tuning=order_router.Tuning(
    reconcile_every=2.0, recheck_after=0.5, retry_min=0.2, retry_max=1.0))

pytestmark = pytest.mark.slow


def _sells_of(h: Any, prefix: str) -> list[dict[str, Any]]:
    return [o for o in orders_received(h) if o["action"] == "SELL" and
            str(o["orderRef"]).startswith(prefix)]


def _never_short(h: Any) -> None:
    short = {p.spec.local_symbol: p.quantity for p in h.gateway.broker.positions.values()
             if p.quantity < 0}
    assert not short, f"the account went short: {short}"


async def _send(h: Any, msg: Any) -> None:
    send = h.bot.wiring.orders.clone_sender()
    async with send:
        await send.send(msg)


# -- 1. never sell what the account does not hold ------------------------------------------------


async def test_an_exit_never_sells_a_position_closed_by_hand_in_tws(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_money_bot(tmp_path, shared_data, env=PAPER, tree=QUICK) as h:
        with trio.fail_after(90):
            ref, key, _qty = await filled_entry(h)
            # the operator closes it in TWS: bracket cancelled, sold; the ledger still holds it
            h.gateway.dispatch(manual_close(h.gateway.broker, ref, h.gateway.clock.now_utc()))
            assert broker_position(h, key) == 0
            await _send(h, ExitIntent(intent_id="X-test", ts=h.bot.clock.now_utc(),
                                      option_key=key, reason="time_stop"))
            await wait_until(lambda: ledger_positions(h) == {},
                             timeout=BOT_WAIT)   # the broker's count adopted
            await trio.sleep(1.0)
        assert _sells_of(h, "X-test") == []
        _never_short(h)
        assert terminal_states(h.journal.events)["X-test"] == ["cancelled"]


async def test_a_dry_run_ledger_is_refused_in_paper_and_nothing_is_sent(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_money_bot(tmp_path, shared_data, env=DRY) as h:
        with trio.fail_after(60):
            await wait_trading(h)
            await inject(h, entry_signal(h))
            await h.journal.wait_for("fill")
            await wait_until(lambda: bool(ledger_positions(h)), timeout=BOT_WAIT)
    held = ledger_positions(h)
    (key, _qty), = held.items()
    # README_DEPLOYMENT's move from dry run to paper, on the same STATE_DIR
    async with open_money_bot(tmp_path, shared_data, env=PAPER, tree=QUICK) as h:
        with trio.fail_after(60):
            await _send(h, ExitIntent(intent_id="X-carried", ts=h.bot.clock.now_utc(),
                                      option_key=key, reason="time_stop"))
            await wait_until(lambda: h.bot.wiring.link_state.value.up, timeout=BOT_WAIT)
            await wait_until(lambda: any("order ledger refused" in r for r in
                                         h.bot.wiring.trading.value.reasons), timeout=BOT_WAIT)
            status = h.bot.wiring.trading.value
            assert status.state is TradingState.HALTED and status.fault
            await trio.sleep(2.0)
        assert orders_received(h) == []
        _never_short(h)
        assert ledger_positions(h) == held                  # left for the operator, untouched


async def test_a_short_option_at_the_broker_halts_entries_and_alerts(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_money_bot(tmp_path, shared_data, env=PAPER, tree=QUICK) as h:
        with trio.fail_after(90):
            ref, key, _qty = await filled_entry(h)
            h.gateway.dispatch(manual_short(h.gateway.broker, ref, 2,
                                            h.gateway.clock.now_utc()))
            assert broker_position(h, key) == -2
            await wait_until(lambda: any("short option position" in r for r in
                                         h.bot.wiring.trading.value.reasons), timeout=BOT_WAIT)
            assert h.bot.wiring.trading.value.state is TradingState.HALTED
            alert = await h.journal.wait_for(
                "alert", where=lambda e: "SHORT option position" in str(e.get("title", "")))
            assert alert["severity"] == "critical"
            mark = h.journal.mark()
            await inject(h, entry_signal(h, "QQQ"))
            refused = await h.journal.wait_for("order_rejected", after=mark)
            assert "short option position" in refused["reason"]
        assert [o for o in orders_received(h) if o["action"] == "SELL"] == \
            [o for o in orders_received(h) if o["orderRef"] in (f"{ref}/tp", f"{ref}/sl")]


# -- 4. nothing after the kill switch ------------------------------------------------------------


async def test_the_kill_switch_aborts_an_entry_still_being_chosen(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_money_bot(tmp_path, shared_data, env=PAPER, tree=QUICK) as h:
        with trio.fail_after(60):
            await wait_trading(h)
            now = h.bot.clock.now_utc()
            await h.gateway.hang()            # the option chain answer is on its way...
            await _send(h, EntryIntent(
                intent_id="E-late", ts=now, deadline=now + dt.timedelta(minutes=3),
                signal=entry_signal(h), budget=SizingBudget(equity=100_000,
                                                            account_max_position_pct=0.2)))
            await trio.sleep(0.05)
            cmd = h.bot.wiring.commands.clone_sender()
            async with cmd:                    # ...when the operator pulls the kill switch
                await cmd.send(OperatorCommand(kind="kill_switch_on", source="http", ts=now))
            await wait_until(lambda: "kill switch engaged" in h.bot.wiring.trading.value.reasons,
                             poll=0.005, timeout=BOT_WAIT)
            await h.gateway.unhang()
            done = await h.journal.wait_for("intent_done",
                                            where=lambda e: e["intent_id"] == "E-late")
            assert done["state"] == "cancelled" and "kill switch" in done["reason"]
            await trio.sleep(2.0)
        assert [o for o in orders_received(h) if o["orderRef"].startswith("E-late")] == []


# -- 6. protection is never stripped when its replacement cannot be sent ------------------------


async def test_an_unsaveable_ledger_keeps_the_bracket_and_the_exit_resumes_after(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_money_bot(tmp_path, shared_data, env=PAPER, tree=QUICK) as h:
        with trio.fail_after(90):
            ref, key, qty = await filled_entry(h)
            ledger = h.settings.state_dir / "ledger.json"
            ledger.unlink()
            ledger.mkdir()                    # the disk refuses every save from now on
            await _send(h, ExitIntent(intent_id="X-disk", ts=h.bot.clock.now_utc(),
                                      option_key=key, reason="time_stop"))
            alert = await h.journal.wait_for(
                "alert", where=lambda e: "cannot be saved" in str(e.get("title", "")))
            await trio.sleep(3.0)             # 3 simulated minutes
            assert broker_order(h, f"{ref}/sl").working      # the stop is still there
            assert broker_order(h, f"{ref}/tp").working
            assert broker_position(h, key) == qty
            assert _sells_of(h, "X-disk") == []
            assert "stay working" in str(alert["text"])       # the alert says what happens
            shutil.rmtree(ledger)             # the disk is back: the exit goes through
            sell = await h.journal.wait_for("order_submitted",
                                            where=lambda e: e["order_ref"].startswith("X-disk"))
            assert sell["quantity"] == qty
        _never_short(h)


# -- 2. quotes come back after 1101 --------------------------------------------------------------


async def test_option_quotes_come_back_after_1101_and_the_exit_sells(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_money_bot(tmp_path, shared_data, env=PAPER, tree=QUICK) as h:
        with trio.fail_after(90):
            _ref, key, qty = await filled_entry(h)
            await wait_until(lambda: key in h.bot.wiring.quotes.value, timeout=BOT_WAIT)
            await h.gateway.send_error(1101)   # data lost: the simulator drops every stream
            lost_at = h.bot.clock.now_utc()
            await wait_until(lambda: h.bot.wiring.quotes.value[key].ts > lost_at +
                             dt.timedelta(seconds=30), timeout=30)
            await _send(h, ExitIntent(intent_id="X-1101", ts=h.bot.clock.now_utc(),
                                      option_key=key, reason="time_stop"))
            sell = await h.journal.wait_for("order_submitted",
                                            where=lambda e: e["order_ref"].startswith("X-1101"))
            assert sell["quantity"] == qty
        _never_short(h)


async def test_an_exit_without_a_bid_keeps_the_bracket(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_money_bot(tmp_path, shared_data, env=PAPER, tree=QUICK) as h:
        with trio.fail_after(90):
            ref, key, qty = await filled_entry(h)
            await wait_until(lambda: key in h.bot.wiring.quotes.value, timeout=BOT_WAIT)
            h.gateway.market_farm_ok = False   # quotes stop (silently: no 2103 sent)
            await trio.sleep(4.0)              # 4 simulated minutes: the bid goes stale
            await _send(h, ExitIntent(intent_id="X-nobid", ts=h.bot.clock.now_utc(),
                                      option_key=key, reason="time_stop"))
            await trio.sleep(3.0)
            assert broker_order(h, f"{ref}/sl").working
            assert _sells_of(h, "X-nobid") == []
            h.gateway.market_farm_ok = True    # the watchdog resubscribes; the exit goes
            sell = await h.journal.wait_for("order_submitted",
                                            where=lambda e: e["order_ref"].startswith("X-nobid"))
            assert sell["quantity"] == qty
        _never_short(h)


# -- 5. one lost reply does not block an exit ----------------------------------------------------


async def test_a_lost_exit_order_is_looked_up_declared_lost_and_the_exit_retried(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_money_bot(tmp_path, shared_data, env=PAPER, tree=QUICK) as h:
        with trio.fail_after(90):
            _ref, key, qty = await filled_entry(h)
            swallower = swallow_orders(h.gateway, 1)      # the next order never arrives
            await _send(h, ExitIntent(intent_id="X-lost", ts=h.bot.clock.now_utc(),
                                      option_key=key, reason="time_stop"))
            await wait_until(lambda: swallower.swallowed != [], timeout=BOT_WAIT)
            first = swallower.swallowed[0]
            assert first.startswith("X-lost/")
            alert = await h.journal.wait_for(
                "alert", where=lambda e: first in str(e.get("text", "")) and
                "declared lost" in str(e.get("text", "")))
            assert alert["severity"] == "critical"
            retry = await h.journal.wait_for(
                "order_submitted", where=lambda e: e["order_ref"].startswith("X-lost/") and
                e["order_ref"] != first)
            assert retry["quantity"] == qty
            await wait_until(lambda: any(o.order_ref == retry["order_ref"]
                                         for o in h.gateway.broker.orders.values()),
                                         timeout=BOT_WAIT)
            if broker_order(h, retry["order_ref"]).working:
                await fill_at_the_broker(h, retry["order_ref"], retry["limit"])
            await wait_until(lambda: ledger_positions(h) == {}, timeout=BOT_WAIT)
        _never_short(h)
        assert terminal_states(h.journal.events)["X-lost"] == ["filled"]


async def test_a_lost_order_forces_a_new_session_and_alerts_critically_naming_it(
        tmp_path: Path, shared_data: Path) -> None:
    """Defect 5's last guarantee: the lookup by orderRef found nothing past the bound, so the
    session is stuck: the router asks GatewayLink for a new one and says so, naming the
    order; the exit is retried on the new session."""
    async with open_money_bot(tmp_path, shared_data, env=PAPER, tree=QUICK) as h:
        with trio.fail_after(90):
            _ref, key, qty = await filled_entry(h)
            stuck_session = h.bot.wiring.link_state.value.session_id
            swallower = swallow_orders(h.gateway, 1)
            await _send(h, ExitIntent(intent_id="X-stuck", ts=h.bot.clock.now_utc(),
                                      option_key=key, reason="time_stop"))
            await wait_until(lambda: swallower.swallowed != [], timeout=BOT_WAIT)
            first = swallower.swallowed[0]
            alert = await h.journal.wait_for(
                "alert", where=lambda e: "forcing a new Gateway session" in
                str(e.get("title", "")))
            assert alert["severity"] == "critical" and first in alert["title"]
            asked = await h.journal.wait_for("link_restart_requested")
            assert asked["session"] == stuck_session and first in asked["reason"]
            down = await h.journal.wait_for(
                "link_down", where=lambda e: e["session"] == stuck_session)
            assert str(down["reason"]).startswith("restart requested")
            await wait_until(lambda: h.bot.wiring.link_state.value.up and
                             h.bot.wiring.link_state.value.session_id > stuck_session,
                             timeout=BOT_WAIT)
            retry = await h.journal.wait_for(
                "order_submitted", where=lambda e: e["order_ref"].startswith("X-stuck/") and
                e["order_ref"] != first)
            assert retry["quantity"] == qty
            await wait_until(lambda: any(o.order_ref == retry["order_ref"]
                                         for o in h.gateway.broker.orders.values()),
                                         timeout=BOT_WAIT)
            if broker_order(h, retry["order_ref"]).working:
                await fill_at_the_broker(h, retry["order_ref"], retry["limit"])
            await wait_until(lambda: ledger_positions(h) == {}, timeout=BOT_WAIT)
        _never_short(h)


async def test_restart_requests_are_counted_so_a_stuck_state_cannot_loop_the_link(
        tmp_path: Path, shared_data: Path) -> None:
    """GatewayLink records each requested restart by its cause in the restart-storm ledger:
    more than STORM_RESTARTS within the window is a storm (one alert, a long pause)."""
    async with open_money_bot(tmp_path, shared_data, env=PAPER, tree=QUICK,
                              speed=5.0) as h:
        requests = h.bot.wiring.link_requests.clone_sender()
        link = LinkClient(requests, h.bot.wiring.link_state)
        with trio.fail_after(90):
            for _ in range(STORM_RESTARTS + 1):
                await wait_until(lambda: h.bot.wiring.link_state.value.status is LinkStatus.UP,
                                 timeout=BOT_WAIT)
                sid = h.bot.wiring.link_state.value.session_id
                await link.call(RestartSession(reason="test: stuck", requested_by="test",
                                               session_id=sid), timeout=5.0)
                await wait_until(lambda sid=sid: not h.bot.wiring.link_state.value.up or
                                 h.bot.wiring.link_state.value.session_id != sid, timeout=BOT_WAIT)
            storm = await h.journal.wait_for("link_storm")
            assert storm["cause"] == "restart requested"
            assert storm["restarts"] == STORM_RESTARTS + 1


# -- 3. client id taken (326) after a crash ------------------------------------------------------


async def _reconnected_under_another_client_id(h: Any) -> None:
    """A zombie session keeps the bot's client id: after a drop the bot gets 326 and comes
    back under the next id, its bracket still working under the old one."""
    first = h.bot.wiring.link_state.value.client_id
    hold_client_id(h.gateway, first)
    await h.gateway.drop()
    await wait_until(lambda: h.bot.wiring.link_state.value.up and
                     h.bot.wiring.link_state.value.client_id != first, timeout=BOT_WAIT)


async def test_on_another_client_id_the_old_bracket_stays_and_its_cancel_alerts(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_money_bot(tmp_path, shared_data, env=PAPER, tree=QUICK) as h:
        with trio.fail_after(90):
            ref, key, qty = await filled_entry(h)
            await _reconnected_under_another_client_id(h)
            await _send(h, ExitIntent(intent_id="X-326", ts=h.bot.clock.now_utc(),
                                      option_key=key, reason="time_stop"))
            alert = await h.journal.wait_for(
                "alert", where=lambda e: "cannot be cancelled" in str(e.get("title", "")))
            assert alert["severity"] == "critical" and f"{ref}/" in alert["title"]
            await trio.sleep(2.0)
            assert broker_order(h, f"{ref}/sl").working       # still protected
            assert broker_position(h, key) == qty
            mark = h.journal.mark()
            await inject(h, entry_signal(h, "QQQ"))
            refused = await h.journal.wait_for("intent_done", after=mark)
            assert "another client id" in refused["reason"]
        _never_short(h)


async def test_a_flatten_after_a_326_cancels_globally_in_paper_and_sells(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_money_bot(tmp_path, shared_data, env=PAPER, tree=QUICK) as h:
        with trio.fail_after(90):
            ref, key, qty = await filled_entry(h)
            await _reconnected_under_another_client_id(h)
            await _send(h, ExitIntent(intent_id="X-kill", ts=h.bot.clock.now_utc(),
                                      option_key=key, reason="kill_switch", urgent=True))
            alert = await h.journal.wait_for(
                "alert", where=lambda e: "Global cancel" in str(e.get("title", "")))
            assert alert["severity"] == "critical"
            await wait_until(lambda: not broker_order(h, f"{ref}/sl").working, timeout=BOT_WAIT)
            sell = await h.journal.wait_for(
                "order_submitted", where=lambda e: e["order_ref"].startswith("X-kill"))
            assert sell["quantity"] == qty
            await wait_until(lambda: any(o.order_ref == sell["order_ref"]
                                         for o in h.gateway.broker.orders.values()),
                                         timeout=BOT_WAIT)
            if broker_order(h, sell["order_ref"]).working:
                await fill_at_the_broker(h, sell["order_ref"], sell["limit"])
            await wait_until(lambda: ledger_positions(h) == {}, timeout=BOT_WAIT)
        _never_short(h)
