"""The money path with real ib_async over TCP against tools.fake_gateway, at 60x.

Each test runs the whole bot (every actor) on 2024-02-21 from 10:00 ET (real SPY bars) and
injects the StrategySelector's entry signals itself; ModeGuard, OrderRouter, GatewayLink and
the simulator do the rest. Outcomes are read where an operator would read them: the event
journal, `logs/trades.jsonl`, STATE_DIR, and the simulator's own books and orders log.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest
import trio

from messages.control import TradingState
from messages.orders import EntryIntent, ExitIntent, SizingBudget
from tests.harness import read_jsonl, wait_until
from tests.harness.bot import BOT_WAIT
from tests.harness.money import (
    broker_order,
    broker_position,
    entry_filled,
    entry_signal,
    fill_at_the_broker,
    inject,
    ledger_positions,
    open_money_bot,
    orders_received,
    terminal_states,
    wait_trading,
)

PAPER = {"DRY_RUN": "false", "PAPER_TRADING": "true", "OPERATOR_ID": "op",
         "BOT_CAPITAL_USD": "100000"}
DRY = {"STARTING_EQUITY_USD": "100000", "BOT_CAPITAL_USD": "100000"}

pytestmark = pytest.mark.slow


def _one_send_per_ref(h: object) -> None:
    refs = Counter(o["orderRef"] for o in orders_received(h))   # type: ignore[arg-type]
    assert refs and all(n == 1 for n in refs.values()), f"sent twice: {refs}"


async def test_paper_bracket_round_trip(tmp_path: Path, shared_data: Path) -> None:
    async with open_money_bot(tmp_path, shared_data, env=PAPER) as h:
        with trio.fail_after(90):
            await wait_trading(h)
            await inject(h, entry_signal(h))
            intent = await h.journal.wait_for("order_intent")
            ref = intent["intent_id"]
            key = intent["contract"]
            await entry_filled(h, ref)
            legs = {o["orderRef"]: o for o in orders_received(h)}
            assert set(legs) == {ref, f"{ref}/tp", f"{ref}/sl"}
            assert legs[ref]["type"] == "LMT" and legs[ref]["transmit"] is False
            assert legs[f"{ref}/tp"]["type"] == "LMT" and legs[f"{ref}/tp"]["transmit"] is False
            assert legs[f"{ref}/sl"]["type"] == "STP" and legs[f"{ref}/sl"]["transmit"] is True
            assert legs[f"{ref}/tp"]["parentId"] == legs[ref]["orderId"] == \
                legs[f"{ref}/sl"]["parentId"]
            assert legs[ref]["contract"]["secType"] == "OPT"       # never the underlying
            assert legs[f"{ref}/tp"]["lmt"] > legs[ref]["lmt"] > legs[f"{ref}/sl"]["aux"]
            qty = intent["quantity"]
            assert broker_position(h, key) == qty
            # the market reaches the take-profit: the native child sells, the stop goes (OCA)
            await fill_at_the_broker(h, f"{ref}/tp")
            sell = await h.journal.wait_for("fill", where=lambda e: e["side"] == "SELL")
            assert sell["order_ref"] == f"{ref}/tp" and sell["quantity"] == qty
            await wait_until(lambda: broker_order(h, f"{ref}/sl").status == "Cancelled",
                             timeout=BOT_WAIT)
            await wait_until(lambda: ledger_positions(h) == {}, timeout=BOT_WAIT)
            assert broker_position(h, key) == 0
            buy = h.journal.of("fill", order_ref=ref)[0]
            expected = (sell["price"] - buy["price"]) * qty * 100 - sell["commission"]
            assert sell["realized_pnl"] == pytest.approx(expected, abs=0.01)
            await trio.sleep(1)
        _one_send_per_ref(h)
        trades = read_jsonl(h.settings.log_dir / "trades.jsonl")
        kinds = Counter(t["kind"] for t in trades)
        assert kinds["decision"] == 1 and kinds["order_intent"] == 1 and kinds["fill"] == 2
        assert kinds["order"] == 3
        assert terminal_states(h.journal.events) == {ref: ["filled"]}


async def test_a_forced_exit_cancels_the_bracket_then_sells_what_is_held(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_money_bot(tmp_path, shared_data, env=PAPER) as h:
        with trio.fail_after(90):
            await wait_trading(h)
            await inject(h, entry_signal(h))
            intent = await h.journal.wait_for("order_intent")
            ref, key = intent["intent_id"], intent["contract"]
            await entry_filled(h, ref)
            send = h.bot.wiring.orders.clone_sender()
            async with send:                            # what ModeGuard sends at a time stop
                await send.send(ExitIntent(intent_id="X-test", ts=h.bot.clock.now_utc(),
                                           option_key=key, reason="time_stop"))
            sell = await h.journal.wait_for("fill", where=lambda e: e["side"] == "SELL")
            assert sell["order_ref"].startswith("X-test/")
            await wait_until(lambda: ledger_positions(h) == {}, timeout=BOT_WAIT)
            assert broker_position(h, key) == 0
            for child in ("tp", "sl"):
                assert broker_order(h, f"{ref}/{child}").status == "Cancelled"
            await trio.sleep(1)
            sold = sum(f.shares for f in h.gateway.broker.fills if f.side == "SLD")
            assert sold == intent["quantity"]            # never more than held: no short
            assert all(p.quantity >= 0 for p in h.gateway.broker.positions.values())
        _one_send_per_ref(h)


async def test_restart_while_the_entry_works_and_while_fills_happen(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_money_bot(tmp_path, shared_data, env=PAPER) as h:
        with trio.fail_after(150):
            await wait_trading(h)
            await inject(h, entry_signal(h))
            intent = await h.journal.wait_for("order_intent")
            ref, key, qty = intent["intent_id"], intent["contract"], intent["quantity"]
            await wait_until(lambda: len(orders_received(h)) == 3, timeout=BOT_WAIT)
            mark = h.journal.mark()
            await h.gateway.restart(3)                   # the Gateway goes: 3 min of market
            parent = broker_order(h, ref)
            if parent.working:                           # still working: it fills meanwhile
                await fill_at_the_broker(h, ref)
            assert parent.status == "Filled"
            await h.journal.wait_for("reconcile", after=mark, timeout=60)
            await wait_trading(h)
            await wait_until(lambda: ledger_positions(h) == {key: qty}, timeout=BOT_WAIT)
            assert broker_position(h, key) == qty
            assert len(h.journal.of("fill", order_ref=ref)) == 1       # recovered, once
            # a second outage: the take-profit child trades while nobody is connected
            mark = h.journal.mark()
            await h.gateway.restart(3)
            await fill_at_the_broker(h, f"{ref}/tp")
            await h.journal.wait_for("reconcile", after=mark, timeout=60)
            await wait_until(lambda: ledger_positions(h) == {}, timeout=BOT_WAIT)
            assert broker_position(h, key) == 0
            assert len(h.journal.of("fill", order_ref=f"{ref}/tp")) == 1
            recovered = [e for e in h.journal.events[mark:] if e["event"] == "reconcile"]
            assert recovered[0]["fills_recovered"] == 1
            await trio.sleep(1)
        _one_send_per_ref(h)
        assert len(orders_received(h)) == 3                # no order submitted twice, ever
        assert terminal_states(h.journal.events) == {ref: ["filled"]}


async def test_a_live_account_in_paper_mode_halts_and_the_simulator_receives_nothing(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_money_bot(tmp_path, shared_data, env=PAPER,
                              gateway={"account": "U1234567"}) as h:
        with trio.fail_after(60):
            await wait_trading(h, TradingState.HALTED)
            await wait_until(lambda: h.bot.wiring.trading.value.fault, timeout=BOT_WAIT)
            status = h.bot.wiring.trading.value
            assert "mode mismatch" in status.reasons[0] and "U1234567" in status.reasons[0]
            alert = await h.journal.wait_for("alert", where=lambda e: e["severity"] ==
                                             "critical" and "MODE MISMATCH" in e["title"])
            assert "PAPER TRADING" in alert["title"]
            for _ in range(3):
                await inject(h, entry_signal(h))
            await wait_until(lambda: len(h.journal.of("order_rejected")) == 3, timeout=BOT_WAIT)
            await trio.sleep(2)
        assert orders_received(h) == []
        assert h.gateway.status()["orders"] == 0
        assert h.journal.of("halt") and h.journal.of("order_submitted") == []


async def test_dry_run_fills_against_live_quotes_and_the_simulator_never_gets_an_order(
        tmp_path: Path, shared_data: Path) -> None:
    async with open_money_bot(tmp_path, shared_data, env=DRY) as h:
        with trio.fail_after(90):
            await wait_trading(h)
            await inject(h, entry_signal(h))
            buy = await h.journal.wait_for("fill")
            assert buy["mode"] == "DRY_RUN" and buy["side"] == "BUY"
            assert buy["commission"] == pytest.approx(max(1.0, 0.65 * buy["quantity"]))
            trades = read_jsonl(h.settings.log_dir / "trades.jsonl")
            decided = next(t for t in trades if t["kind"] == "order_intent")
            assert decided["bid"] < buy["price"]                  # bought at the ask, not mid
            (h.settings.state_dir / "KILL_SWITCH").write_text("flatten\n")
            sell = await h.journal.wait_for("fill", where=lambda e: e["side"] == "SELL")
            assert sell["mode"] == "DRY_RUN"
            await wait_until(lambda: ledger_positions(h) == {}, timeout=BOT_WAIT)
            await wait_trading(h, TradingState.HALTED)
            await trio.sleep(2)
        assert orders_received(h) == []
        assert h.gateway.status()["orders"] == 0
        assert h.journal.of("kill_switch")[0]["source"] == "file"


async def test_daily_loss_breach_flattens_and_halts_for_the_day(
        tmp_path: Path, shared_data: Path) -> None:
    env = {**DRY, "MAX_DAILY_LOSS_PCT": "0.0005"}      # 50 USD of 100,000
    async with open_money_bot(tmp_path, shared_data, env=env) as h:
        with trio.fail_after(90):
            await wait_trading(h)
            await inject(h, entry_signal(h))
            await h.journal.wait_for("fill")               # the spread alone costs > 50 USD
            halt = await h.journal.wait_for("halt")
            assert "daily loss" in halt["reason"] and halt["fault"] is False
            sell = await h.journal.wait_for("fill", where=lambda e: e["side"] == "SELL")
            assert sell["order_ref"].startswith("X")
            await wait_until(lambda: ledger_positions(h) == {}, timeout=BOT_WAIT)
            await inject(h, entry_signal(h, "QQQ"))
            refused = await h.journal.wait_for("order_rejected")
            assert "not ACTIVE" in refused["reason"]
        risk = json.loads((h.settings.state_dir / "risk.json").read_text())["state"]
        assert risk["halted_day"] == "2024-02-21"


def _gameplan(path: Path, *, pdt_remaining: int) -> None:
    """A valid plan for the simulated day: Strategy C (the selector sends nothing of its
    own) with the operator's PDT count."""
    path.write_text(json.dumps({
        "date": "2024-02-21", "session_id": "gauntlet_20240221_0800", "regime": "unknown",
        "strategy": "C", "symbols": [], "operator_id": "op",
        "hard_limits": {"max_daily_loss_pct": 0.10, "pdt_trades_remaining": pdt_remaining,
                        "weekly_drawdown_governor_active": False, "max_intraday_pivots": 2},
        "data_quality": {"quarantine_active": False, "last_verified": None}}))


async def test_pdt_limit_reached_by_a_real_round_trip_blocks_the_next_entry(
        tmp_path: Path, shared_data: Path) -> None:
    _gameplan(tmp_path / "gameplan.json", pdt_remaining=1)
    async with open_money_bot(tmp_path, shared_data, env={**DRY, "OPERATOR_ID": "op"}) as h:
        with trio.fail_after(90):
            await wait_until(lambda: h.bot.wiring.gameplan.value is not None, timeout=BOT_WAIT)
            await wait_trading(h)
            # the first entry as ModeGuard would send it (a Strategy C plan: ModeGuard itself
            # refuses a signal the plan does not allow, which is not what this test is about)
            now = h.bot.clock.now_utc()
            send = h.bot.wiring.orders.clone_sender()
            async with send:
                await send.send(EntryIntent(
                    intent_id="E-first", ts=now, deadline=now + dt.timedelta(minutes=3),
                    signal=entry_signal(h), budget=SizingBudget(
                        equity=100_000, account_max_position_pct=0.2)))
            buy = await h.journal.wait_for("fill")
            send = h.bot.wiring.orders.clone_sender()
            async with send:
                await send.send(ExitIntent(intent_id="X-rt", ts=h.bot.clock.now_utc(),
                                           option_key=buy["contract"], reason="take_profit"))
            await h.journal.wait_for("day_trade")
            guard = h.bot.root.find("root.mode_guard")
            await wait_until(lambda: guard.shown("positions_held") == 0, timeout=BOT_WAIT)
            await inject(h, entry_signal(h, "QQQ"))
            refused = await h.journal.wait_for(
                "order_rejected", where=lambda e: e.get("stage") == "risk")
            assert "PDT" in refused["reason"]
        assert len(h.journal.of("order_intent")) == 1
        risk = json.loads((h.settings.state_dir / "risk.json").read_text())["state"]
        assert [d[0] for d in risk["day_trades"]] == ["2024-02-21"]
        assert dt.date.fromisoformat(risk["day"]) == dt.date(2024, 2, 21)
