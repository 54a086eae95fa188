"""OrderRouter alone, on trio's virtual clock, against a scripted GatewayLink."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio

from actors import order_router
from doctrine.ledger import Ledger
from messages.base import Message
from messages.brain import EntrySignal
from messages.control import TradingState, TradingStatus
from messages.link import OptionChain, OptionChainRequest
from messages.orders import (
    AccountValues,
    AccountValuesRequest,
    BrokerExecutions,
    BrokerOrders,
    BrokerPosition,
    BrokerPositions,
    CancelEntries,
    CancelOrder,
    CompletedOrdersRequest,
    EntryIntent,
    ExecutionsRequest,
    ExitIntent,
    FillReport,
    IntentUpdate,
    OpenOrdersRequest,
    OrderCommand,
    PlacedOrders,
    PlaceOrders,
    PositionsReport,
    PositionsRequest,
    RouterStatus,
    SessionVerdict,
    SizingBudget,
)
from runtime.app.app import TreeOptions
from runtime.gateway.link_client import Reply
from tests.harness.actor_rig import SPY_CALL, Actors, context, drain, open_actor_env

M = TypeVar("M", bound=Message)
PAPER = {"DRY_RUN": "false", "PAPER_TRADING": "true", "OPERATOR_ID": "op"}
FAST = order_router.Tuning(quote_wait=5.0, reconcile_every=3600.0, account_every=3600.0,
                           positions_every=5.0, retry_min=0.5, retry_max=2.0)


@dataclass
class FakeLink:
    """Answers the router's requests like GatewayLink would, from a scripted broker."""

    a: Actors
    requests: list[Message] = field(default_factory=list)
    broken: dict[type[Message], str] = field(default_factory=dict)   # type -> how it fails
    positions: list[BrokerPosition] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(10))

    def of(self, kind: type[M]) -> list[M]:
        return [r for r in self.requests if isinstance(r, kind)]

    def answer(self, req: Message) -> Any:
        sid = self.a.wiring.link_state.value.session_id
        if isinstance(req, (OpenOrdersRequest, CompletedOrdersRequest)):
            return BrokerOrders(session_id=sid, orders=())
        if isinstance(req, ExecutionsRequest):
            return BrokerExecutions(session_id=sid, fills=())
        if isinstance(req, PositionsRequest):
            return BrokerPositions(session_id=sid, positions=tuple(self.positions))
        if isinstance(req, AccountValuesRequest):
            return AccountValues(session_id=sid, net_liquidation=10_000.0)
        if isinstance(req, OptionChainRequest):
            return OptionChain(underlying=req.underlying, expirations=("20240712",),
                               strikes=(540.0, 545.0, 550.0), trading_class="SPY",
                               session_id=sid)
        if isinstance(req, PlaceOrders):
            return PlacedOrders(order_ids=tuple(next(self.ids) for _ in req.legs),
                                client_id=1, session_id=sid)
        if isinstance(req, CancelOrder):
            return None
        raise AssertionError(f"unexpected request {req!r}")

    async def serve(self, receiver: trio.MemoryReceiveChannel[Any]) -> None:
        async for env in receiver:
            req = env.request
            self.requests.append(req)
            sid = self.a.wiring.link_state.value.session_id
            how = self.broken.get(type(req))
            if how == "timeout":
                continue                                  # never answered
            if how == "unavailable":
                env.answer_nowait(Reply(ok=False, session_id=sid, unavailable=True,
                                        error="link went down"))
            elif how == "failed":
                env.answer_nowait(Reply(ok=False, session_id=sid, error="refused"))
            else:
                env.answer_nowait(Reply(ok=True, session_id=sid, value=self.answer(req)))


@dataclass
class Routed:
    a: Actors
    link: FakeLink
    orders: trio.MemorySendChannel[OrderCommand]
    events: trio.MemoryReceiveChannel[Message]
    seen: list[Message] = field(default_factory=list)

    async def got(self, kind: type[M]) -> list[M]:
        self.seen += await drain(self.events)
        return [m for m in self.seen if isinstance(m, kind)]

    async def wait_for(self, kind: type[M], where: Callable[[M], bool] = lambda m: True,
                       timeout: float = 60.0) -> M:
        with trio.fail_after(timeout):
            while True:
                found = [m for m in await self.got(kind) if where(m)]
                if found:
                    return found[0]
                await trio.sleep(0.1)

    def entry(self, intent_id: str = "E1", *, equity: float = 10_000.0) -> EntryIntent:
        now = self.a.env.clock.now_utc()
        sig = EntrySignal(ts=now, bar_ts=now - dt.timedelta(minutes=1), symbol="SPY",
                          strategy="A", direction="bullish", right="C", reasons=("test",),
                          size_multiplier=1.0, close=545.2)
        return EntryIntent(intent_id=intent_id, ts=now, deadline=now + dt.timedelta(minutes=3),
                           signal=sig, budget=SizingBudget(equity=equity,
                                                           account_max_position_pct=0.2))


@asynccontextmanager
async def open_router(a: Actors, link: FakeLink | None = None,
                      incarnation: int = 1) -> AsyncIterator[Routed]:
    w = a.wiring
    link = link or FakeLink(a)
    inbox = order_router.Inbox(orders=w.orders.clone_receiver(),
                               broker=w.broker_events.clone_receiver(),
                               link_state=w.link_state, quotes=w.quotes, gameplan=w.gameplan,
                               trading=w.trading)
    w.trading.set(TradingStatus(state=TradingState.ACTIVE))   # the tests play ModeGuard
    outbox = order_router.Outbox(order_events=w.order_events.clone_sender(),
                                 link_requests=w.link_requests.clone_sender(),
                                 wanted_quotes=w.wanted_quotes)
    r = Routed(a=a, link=link, orders=w.orders.clone_sender(),
               events=w.order_events.clone_receiver())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(link.serve, w.link_requests.clone_receiver())
        await nursery.start(functools.partial(
            order_router.run, tuning=a.tree.router_tuning,
            process_id=f"test{id(a.env)}"), context(a, "order_router", incarnation), inbox,
            outbox)
        yield r
        nursery.cancel_scope.cancel()


async def ready(r: Routed, session: int = 1, *, dry_run: bool = False) -> None:
    r.a.link_up(session, readonly=dry_run)
    if not dry_run:
        await r.orders.send(SessionVerdict(session_id=session, ok=True, reason="matches"))
    await r.wait_for(RouterStatus, lambda s: s.session_id == session and s.reconciled)


def ledger_file(a: Actors) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (a.env.settings.state_dir / "ledger.json").read_text())["state"]
    return doc


# -- entries --------------------------------------------------------------------------------------


async def test_a_paper_entry_is_a_native_bracket_priced_on_the_option_premium(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with open_actor_env(tmp_path, env=PAPER,
                              tree=TreeOptions(router_tuning=FAST)) as a, \
            open_router(a) as r:
        await ready(r)
        a.quote(SPY_CALL, 1.98, 2.00)
        await r.orders.send(r.entry())
        await r.wait_for(IntentUpdate, lambda u: u.state == "working")
        place = r.link.of(PlaceOrders)[0]
        assert place.bracket and place.option.key == SPY_CALL.key
        entry, tp, sl = place.legs
        assert (entry.ref, entry.action, entry.order_type, entry.limit) == ("E1", "BUY", "LMT",
                                                                             2.00)
        assert (tp.ref, tp.action, tp.order_type, tp.limit) == ("E1/tp", "SELL", "LMT", 2.30)
        assert (sl.ref, sl.action, sl.order_type, sl.stop) == ("E1/sl", "SELL", "STP", 1.50)
        # risk 3 % of 10,000 = 300 over (2.00 x 100 x 25 % + 1.30 fees) = 5 contracts
        assert entry.quantity == tp.quantity == sl.quantity == 5
        saved = ledger_file(a)
        assert {o["ref"]: o["status"] for o in saved["orders"]} == {
            "E1": "submitting", "E1/tp": "submitting", "E1/sl": "submitting"}
        assert {o["order_id"] for o in saved["orders"]} == {10, 11, 12}
        assert [e["event"] for e in a.events if e["event"].startswith("order_")].count(
            "order_submitted") == 3


async def test_zero_contracts_is_a_journaled_rejection_never_a_one_lot(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with open_actor_env(tmp_path, env=PAPER,
                              tree=TreeOptions(router_tuning=FAST)) as a, \
            open_router(a) as r:
        await ready(r)
        a.quote(SPY_CALL, 1.98, 2.00)
        await r.orders.send(r.entry(equity=600.0))     # 18 USD of risk < 51.30 per contract
        update = await r.wait_for(IntentUpdate, lambda u: u.state == "rejected")
        assert update.reason.startswith("size:")
        assert r.link.of(PlaceOrders) == []
        rejected = [e for e in a.events if e["event"] == "order_rejected"]
        assert rejected and rejected[0]["intent_id"] == "E1"


async def test_a_thinly_held_option_is_refused_at_the_liquidity_gate(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with open_actor_env(tmp_path, env=PAPER,
                              tree=TreeOptions(router_tuning=FAST)) as a, \
            open_router(a) as r:
        await ready(r)
        a.quote(SPY_CALL, 1.98, 2.00, open_interest=12)
        await r.orders.send(r.entry())
        update = await r.wait_for(IntentUpdate, lambda u: u.state == "rejected")
        assert "open interest" in update.reason
        assert r.link.of(PlaceOrders) == []


async def test_an_open_interest_tick_arriving_after_bid_and_ask_is_waited_for(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with open_actor_env(tmp_path, env=PAPER,
                              tree=TreeOptions(router_tuning=FAST)) as a, \
            open_router(a) as r:
        await ready(r)
        a.quote(SPY_CALL, 1.98, 2.00, open_interest=None)    # bid/ask first...
        await r.orders.send(r.entry())
        await trio.sleep(0.5)
        a.quote(SPY_CALL, 1.98, 2.00, open_interest=8_000)   # ...the OI tick a moment later
        update = await r.wait_for(IntentUpdate, lambda u: u.state in ("working", "rejected"))
        assert update.state == "working"
        with trio.fail_after(5):
            while not r.link.of(PlaceOrders):
                await trio.sleep(0.01)
        assert r.link.of(PlaceOrders)[0].option.key == SPY_CALL.key


async def test_no_order_without_the_mode_check_of_the_session(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with open_actor_env(tmp_path, env=PAPER,
                              tree=TreeOptions(router_tuning=FAST)) as a, \
            open_router(a) as r:
        a.link_up(1, ("U1234567",))
        await r.orders.send(SessionVerdict(session_id=1, ok=False, reason="looks live"))
        a.quote(SPY_CALL, 1.98, 2.00)
        await trio.sleep(5)
        await r.orders.send(r.entry())
        update = await r.wait_for(IntentUpdate, lambda u: u.state == "rejected")
        assert "reconciled Gateway session" in update.reason
        assert r.link.of(PlaceOrders) == [] and r.link.of(OpenOrdersRequest) == []


async def test_dry_run_fills_at_the_ask_plus_slippage_with_ib_commission_and_sends_nothing(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    tuning = order_router.Tuning(slippage=0.02, quote_wait=5.0)
    async with open_actor_env(tmp_path, tree=TreeOptions(router_tuning=tuning)) as a, \
            open_router(a) as r:
        await ready(r, dry_run=True)
        a.quote(SPY_CALL, 1.98, 2.00)
        await r.orders.send(r.entry(equity=100_000.0))
        buy = await r.wait_for(FillReport)
        assert (buy.side, buy.price) == ("BUY", 2.02)
        assert buy.commission == pytest.approx(max(1.0, 0.65 * buy.contracts))
        a.quote(SPY_CALL, 2.10, 2.12)
        await r.orders.send(ExitIntent(intent_id="X1", ts=a.env.clock.now_utc(),
                                       option_key=SPY_CALL.key, reason="time_stop"))
        sell = await r.wait_for(FillReport, lambda f: f.side == "SELL")
        assert sell.price == pytest.approx(2.08)            # the bid minus slippage
        gross = (2.08 - 2.02) * buy.contracts * 100
        assert sell.realized_pnl == pytest.approx(gross - sell.commission)
        assert r.link.of(PlaceOrders) == [] and r.link.of(CancelOrder) == []
        report = await r.wait_for(PositionsReport, lambda p: not p.positions and p.ts >= sell.ts)
        assert report.positions == ()


# -- reconciliation -------------------------------------------------------------------------------


def _held_ledger(a: Actors) -> None:
    """A ledger with 2 contracts open, as a previous process left it."""
    from messages.orders import BrokerExecution

    led = Ledger()
    led.bind(a.env.settings.mode.value)       # written by this bot in this mode
    now = a.env.clock.now_utc()
    led.open_entry("E0", option=SPY_CALL, strategy="A", contracts=2, limit=2.0,
                   take_profit=None, stop_loss=None, deadline=now, now=now)
    led.mark_submitting(["E0"], now)
    led.on_execution(BrokerExecution(session_id=1, exec_id="x0", order_id=1, perm_id=1,
                                     client_id=1, order_ref="E0", con_id=1, symbol="SPY",
                                     sec_type="OPT", option=SPY_CALL, side="BOT", shares=2,
                                     price=2.0, time=now, commission=1.3))
    led.fills["x0"].reported = True
    from runtime.infra.state_store import StateStore
    StateStore(a.env.settings.state_dir).save("ledger", led.to_dict())


@pytest.mark.parametrize("broken", [PositionsRequest, ExecutionsRequest, OpenOrdersRequest])
@pytest.mark.parametrize("how", ["unavailable", "failed", "timeout"])
async def test_an_unknown_reconciliation_answer_changes_nothing(
        tmp_path: Path, autojump_clock: trio.testing.MockClock, broken: type[Message],
        how: str) -> None:
    async with open_actor_env(tmp_path, env=PAPER,
                              tree=TreeOptions(router_tuning=FAST)) as a:
        _held_ledger(a)
        before = ledger_file(a)
        link = FakeLink(a, broken={broken: how})          # the broker holds nothing: if the
        async with open_router(a, link) as r:             # answers were believed, flat
            a.link_up(1)
            await r.orders.send(SessionVerdict(session_id=1, ok=True, reason="matches"))
            await trio.sleep(60)
            assert not [s for s in await r.got(RouterStatus) if s.reconciled]
            after = ledger_file(a)
            assert after["positions"] == before["positions"]
            assert len(link.of(broken)) >= 3             # retried, with backoff
            held = await r.wait_for(PositionsReport)
            assert [(p.option_key, p.contracts) for p in held.positions] == [(SPY_CALL.key, 2)]
            # the answers come back complete: now the broker's truth is adopted (twice seen)
            link.broken.clear()
            await r.wait_for(RouterStatus, lambda s: s.reconciled)
            await trio.sleep(10)
            assert ledger_file(a)["positions"] == []


async def test_an_unreadable_ledger_is_a_fault_and_nothing_is_sent(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with open_actor_env(tmp_path, env=PAPER,
                              tree=TreeOptions(router_tuning=FAST)) as a:
        path = a.env.settings.state_dir / "ledger.json"
        path.parent.mkdir(parents=True)
        path.write_text('{"format": 1, "state": {"version": 1, "orders": 3}}')
        async with open_router(a) as r:
            a.link_up(1)
            await r.orders.send(SessionVerdict(session_id=1, ok=True, reason="matches"))
            status = await r.wait_for(RouterStatus, lambda s: s.fault is not None)
            assert "unreadable" in (status.fault or "")
            await trio.sleep(20)
            assert r.link.requests == []
            assert any(al.severity == "critical" for al in a.all_alerts())
        assert '"orders": 3' in path.read_text()            # left for the operator


async def test_a_restart_resumes_an_unfinished_exit(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with open_actor_env(tmp_path, env=PAPER,
                              tree=TreeOptions(router_tuning=FAST)) as a:
        _held_ledger(a)
        link = FakeLink(a, positions=[BrokerPosition(
            account="DU1", con_id=1, symbol="SPY", sec_type="OPT", option=SPY_CALL,
            quantity=2, avg_cost=200.0)])
        async with open_router(a, link) as r:
            await ready(r)
            await r.orders.send(ExitIntent(intent_id="X1", ts=a.env.clock.now_utc(),
                                           option_key=SPY_CALL.key, reason="time_stop"))
            await trio.sleep(2)                             # no quote yet: nothing to sell at
        assert link.of(PlaceOrders) == []
        async with open_router(a, link, incarnation=2) as r2:
            a.quote(SPY_CALL, 2.10, 2.12, session=2)
            await ready(r2, 2)
            with trio.fail_after(30):
                while not link.of(PlaceOrders):
                    await trio.sleep(0.5)
            sell = link.of(PlaceOrders)[0]
            assert not sell.bracket and sell.legs[0].ref == "X1/1"
            assert (sell.legs[0].action, sell.legs[0].quantity, sell.legs[0].limit) == (
                "SELL", 2, 2.10)


async def test_an_entry_not_filled_by_its_deadline_is_cancelled_and_expires(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    from messages.orders import BrokerOrderStatus

    async with open_actor_env(tmp_path, env=PAPER,
                              tree=TreeOptions(router_tuning=FAST)) as a, \
            open_router(a) as r:
        await ready(r)
        a.quote(SPY_CALL, 1.98, 2.00)
        await r.orders.send(r.entry())
        await r.wait_for(IntentUpdate, lambda u: u.state == "working")
        broker = a.wiring.broker_events.clone_sender()
        for ref in ("E1", "E1/tp", "E1/sl"):           # acknowledged, resting
            await broker.send(BrokerOrderStatus(session_id=1, order_id=0, perm_id=0,
                                                client_id=1, order_ref=ref,
                                                status="Submitted", filled=0, remaining=5,
                                                ts=a.env.clock.now_utc()))
        await trio.sleep(170)
        assert r.link.of(CancelOrder) == []
        await trio.sleep(15)                            # the 3-minute deadline passes
        cancel = r.link.of(CancelOrder)
        assert [c.order_ref for c in cancel] == ["E1"] and cancel[0].order_id == 10
        await broker.send(BrokerOrderStatus(session_id=1, order_id=10, perm_id=0, client_id=1,
                                            order_ref="E1", status="Cancelled", filled=0,
                                            remaining=5, ts=a.env.clock.now_utc()))
        done = await r.wait_for(IntentUpdate, lambda u: u.state == "expired")
        assert done.intent_id == "E1" and done.filled == 0
        outcomes = [e for e in a.events if e["event"] == "intent_done"]
        assert [(e["intent_id"], e["state"]) for e in outcomes] == [("E1", "expired")]


async def test_a_failed_exit_is_retried_with_backoff_until_the_position_is_flat(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    from messages.orders import BrokerExecution

    async with open_actor_env(tmp_path, env=PAPER,
                              tree=TreeOptions(router_tuning=FAST)) as a:
        _held_ledger(a)
        link = FakeLink(a, broken={PlaceOrders: "failed"}, positions=[BrokerPosition(
            account="DU1", con_id=1, symbol="SPY", sec_type="OPT", option=SPY_CALL,
            quantity=2, avg_cost=200.0)])
        async with open_router(a, link) as r:
            await ready(r)
            a.quote(SPY_CALL, 2.10, 2.12)
            await r.orders.send(ExitIntent(intent_id="X1", ts=a.env.clock.now_utc(),
                                           option_key=SPY_CALL.key, reason="emergency_stop",
                                           urgent=True))
            await trio.sleep(30)
            tries = link.of(PlaceOrders)
            assert len(tries) >= 4                       # refused, retried, never dropped
            assert [t.legs[0].ref for t in tries[:3]] == ["X1/1", "X1/2", "X1/3"]
            assert tries[0].legs[0].limit == 2.05        # urgent: under the bid to fill
            refs = [t.legs[0].ref for t in tries]
            assert len(set(refs)) == len(refs)           # a new orderRef per attempt
            assert any(al.severity == "critical" and "keeps failing" in al.title
                       for al in a.all_alerts())
            link.broken.clear()
            with trio.fail_after(120):
                while len(link.of(PlaceOrders)) == len(tries):
                    await trio.sleep(0.5)
            last = link.of(PlaceOrders)[-1].legs[0]
            broker = a.wiring.broker_events.clone_sender()
            await broker.send(BrokerExecution(
                session_id=1, exec_id="x9", order_id=99, perm_id=9, client_id=1,
                order_ref=last.ref, con_id=1, symbol="SPY", sec_type="OPT", option=SPY_CALL,
                side="SLD", shares=2, price=2.05, time=a.env.clock.now_utc(), commission=1.3))
            done = await r.wait_for(IntentUpdate, lambda u: u.intent_id == "X1" and u.terminal)
            assert done.state == "filled"
            assert ledger_file(a)["positions"] == []


async def test_a_cancel_never_confirmed_raises_a_critical_alert_naming_the_order(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with open_actor_env(tmp_path, env=PAPER,
                              tree=TreeOptions(router_tuning=FAST)) as a, \
            open_router(a) as r:
        await ready(r)
        a.quote(SPY_CALL, 1.98, 2.00)
        await r.orders.send(r.entry())
        await r.wait_for(IntentUpdate, lambda u: u.state == "working")
        await r.orders.send(CancelEntries(ts=a.env.clock.now_utc(), reason="kill switch"))
        await trio.sleep(120)                 # the broker never confirms (nor denies)
        cancels = [c.order_ref for c in r.link.of(CancelOrder)]
        assert cancels.count("E1") >= 5
        alert, = [al for al in a.all_alerts() if "Cancel of E1 not confirmed" in al.title]
        assert alert.severity == "critical" and "order id" in alert.text


async def test_the_router_checks_each_session_itself_and_a_verdict_can_only_veto(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with open_actor_env(tmp_path, env=PAPER,
                              tree=TreeOptions(router_tuning=FAST)) as a, \
            open_router(a) as r:
        a.link_up(1)                                     # a paper account: no verdict needed
        await r.wait_for(RouterStatus, lambda s: s.session_id == 1 and s.reconciled)
        a.link_up(2, ("U1234567",))                      # a live account in PAPER mode...
        await r.orders.send(SessionVerdict(session_id=2, ok=True, reason="matches"))
        a.quote(SPY_CALL, 1.98, 2.00, session=2)
        await trio.sleep(5)                              # ...whatever ModeGuard said
        assert not [s for s in await r.got(RouterStatus) if s.session_id == 2 and s.reconciled]
        await r.orders.send(r.entry())
        update = await r.wait_for(IntentUpdate, lambda u: u.state == "rejected")
        assert "reconciled Gateway session" in update.reason
        a.link_up(3)                                     # a paper session, vetoed by ModeGuard
        await r.orders.send(SessionVerdict(session_id=3, ok=False, reason="veto"))
        await trio.sleep(5)
        await r.orders.send(r.entry("E2"))
        update = await r.wait_for(IntentUpdate, lambda u: u.intent_id == "E2" and u.terminal)
        assert update.state == "rejected"
        assert r.link.of(PlaceOrders) == []
