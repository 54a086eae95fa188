"""The money path's invariants under faults: hypothesis drives the REAL OrderRouter actor.

Each example is one program of steps — entries, exits, fills at the broker, and the faults of
issue 12 (a lost order, a dropped session, 1101-stale quotes, a 326 takeover of the client id,
the kill switch at any point, an unsaveable ledger, a position closed by hand in TWS) — run on
trio's virtual clock against a model broker that answers the router's requests like
GatewayLink and the Gateway would. After EVERY step the invariants are checked:

  * never short: the broker's position never goes below zero;
  * never an order while halted: no BUY reaches the broker while the kill switch is engaged;
  * never a position without protection or a working sell for longer than a bound (while the
    bot can act: a fault that forbids selling — no saved ledger, no fresh bid, no session of
    its own client id — stops the bound's clock; protection is never stripped in those);
  * every intent ends in exactly one terminal state (at most one at any time; exactly one
    after the faults heal and the market runs on).

The machine is a list of steps rather than a RuleBasedStateMachine because the actor lives in
one trio run: each example is one `trio.run` with a MockClock (hypothesis' stateful runner
cannot interleave its rules with a running trio loop).
"""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from actors import order_router
from messages.brain import EntrySignal
from messages.control import TradingState, TradingStatus
from messages.link import (
    LinkState,
    LinkStatus,
    OptionChain,
    OptionChainRequest,
    RestartSession,
)
from messages.orders import (
    AccountValues,
    AccountValuesRequest,
    BrokerExecution,
    BrokerExecutions,
    BrokerOrder,
    BrokerOrderError,
    BrokerOrders,
    BrokerOrderStatus,
    BrokerPosition,
    BrokerPositions,
    CancelEntries,
    CancelOrder,
    CompletedOrdersRequest,
    EntryIntent,
    ExecutionsRequest,
    ExitIntent,
    GlobalCancel,
    IntentUpdate,
    OpenOrdersRequest,
    PlacedOrders,
    PlaceOrders,
    PositionsRequest,
    SessionVerdict,
    SizingBudget,
)
from runtime.gateway.link_client import Reply
from tests.harness.actor_rig import SPY_CALL, Actors, context, open_actor_env

TUNING = order_router.Tuning(quote_wait=5.0, reconcile_every=30.0, recheck_after=1.0,
                             account_every=3600.0, positions_every=30.0, retry_min=1.0,
                             retry_max=8.0, lost_after_market_s=60.0)
PAPER = {"DRY_RUN": "false", "PAPER_TRADING": "true", "OPERATOR_ID": "op"}
BOUND_S = 600.0          # a held position without a working sell at the broker, at most
STEP_S = 20.0            # market (= trio) seconds each step lets pass


@dataclass
class SimOrder:
    order_id: int
    client_id: int
    perm_id: int
    ref: str
    action: str
    qty: int
    order_type: str
    limit: float | None
    stop: float | None
    parent: int | None           # perm id of the parent (bracket children)
    status: str = "Submitted"    # PreSubmitted (child waiting), Submitted, Filled, Cancelled
    filled: int = 0

    @property
    def working(self) -> bool:
        return self.status in ("PreSubmitted", "Submitted")


@dataclass
class Desk:
    """The model broker and GatewayLink in one: answers requests, pushes order events."""

    a: Actors
    broker_tx: trio.MemorySendChannel[Any]
    orders: dict[int, SimOrder] = field(default_factory=dict)      # perm id -> order
    execs: list[BrokerExecution] = field(default_factory=list)
    position: int = 0
    lose_next: int = 0
    restart_requests: list[int] = field(default_factory=list)
    halted: bool = False
    violations: list[str] = field(default_factory=list)
    perm: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    ids: dict[int, itertools.count[int]] = field(default_factory=dict)

    @property
    def link(self) -> LinkState:
        return self.a.wiring.link_state.value

    def _event(self, msg: Any) -> None:
        if self.link.up:                        # while down, the reconciliation finds it
            self.broker_tx.send_nowait(msg)

    def _status(self, o: SimOrder) -> None:
        if o.client_id == self.link.client_id:  # status goes to the client that placed it
            self._event(BrokerOrderStatus(
                session_id=self.link.session_id, order_id=o.order_id, perm_id=o.perm_id,
                client_id=o.client_id, order_ref=o.ref, status=o.status, filled=o.filled,
                remaining=o.qty - o.filled, ts=self.a.env.clock.now_utc()))

    def _fill(self, o: SimOrder, price: float) -> None:
        o.filled, o.status = o.qty, "Filled"
        self.position += o.qty if o.action == "BUY" else -o.qty
        if self.position < 0:
            self.violations.append(f"SHORT {self.position} after {o.ref}")
        ex = BrokerExecution(
            session_id=self.link.session_id, exec_id=f"x{o.perm_id}", order_id=o.order_id,
            perm_id=o.perm_id, client_id=o.client_id, order_ref=o.ref, con_id=1, symbol="SPY",
            sec_type="OPT", option=SPY_CALL, side="BOT" if o.action == "BUY" else "SLD",
            shares=o.qty, price=price, time=self.a.env.clock.now_utc(), commission=1.0)
        self.execs.append(ex)
        self._status(o)
        if o.client_id == self.link.client_id:
            self._event(ex)
        for child in self.orders.values():     # children go live; OCA siblings cancelled
            if child.parent == o.perm_id and child.status == "PreSubmitted":
                child.status = "Submitted"
                self._status(child)
            elif o.parent is not None and child.parent == o.parent and child.working:
                child.status = "Cancelled"
                self._status(child)

    # -- requests ---------------------------------------------------------------------------
    def answer(self, req: Any) -> Any:
        sid = self.link.session_id
        if isinstance(req, OpenOrdersRequest | CompletedOrdersRequest):
            want_open = isinstance(req, OpenOrdersRequest)
            return BrokerOrders(session_id=sid, orders=tuple(
                BrokerOrder(session_id=sid, order_id=o.order_id, perm_id=o.perm_id,
                            client_id=o.client_id, order_ref=o.ref, action=o.action,
                            quantity=o.qty, order_type=o.order_type, limit=o.limit,
                            stop=o.stop, status=o.status, filled=o.filled,
                            remaining=o.qty - o.filled, option=SPY_CALL)
                for o in self.orders.values() if o.working == want_open))
        if isinstance(req, ExecutionsRequest):
            return BrokerExecutions(session_id=sid, fills=tuple(
                e.model_copy(update={"session_id": sid}) for e in self.execs))
        if isinstance(req, PositionsRequest):
            held = (BrokerPosition(account="DU1234567", con_id=1, symbol="SPY", sec_type="OPT",
                                   option=SPY_CALL, quantity=self.position, avg_cost=200.0),)
            return BrokerPositions(session_id=sid, positions=held if self.position else ())
        if isinstance(req, AccountValuesRequest):
            return AccountValues(session_id=sid, net_liquidation=10_000.0)
        if isinstance(req, OptionChainRequest):
            return OptionChain(underlying="SPY", expirations=("20240712",),
                               strikes=(540.0, 545.0, 550.0), trading_class="SPY",
                               session_id=sid)
        if isinstance(req, PlaceOrders):
            return self.place(req)
        if isinstance(req, CancelOrder):
            self.cancel(req.order_id)
            return None
        if isinstance(req, RestartSession):        # counted; the session goes on here
            self.restart_requests.append(req.session_id)
            return None
        if isinstance(req, GlobalCancel):          # every client id's orders
            for o in self.orders.values():
                if o.working:
                    o.status = "Cancelled"
                    self._status(o)
            return None
        raise AssertionError(f"unexpected request {req!r}")

    def place(self, req: PlaceOrders) -> PlacedOrders:
        cid = self.link.client_id or 1
        ids = self.ids.setdefault(cid, itertools.count(1))
        order_ids = tuple(next(ids) for _ in req.legs)
        if self.halted and any(leg.action == "BUY" for leg in req.legs):
            self.violations.append(f"BUY {req.legs[0].ref} sent while halted")
        if self.lose_next > 0:                   # lost on the way: nobody will ever know
            self.lose_next -= 1
            return PlacedOrders(order_ids=order_ids, client_id=cid,
                                session_id=self.link.session_id)
        parent: int | None = None
        for i, (leg, oid) in enumerate(zip(req.legs, order_ids, strict=True)):
            o = SimOrder(order_id=oid, client_id=cid, perm_id=next(self.perm), ref=leg.ref,
                         action=leg.action, qty=leg.quantity, order_type=leg.order_type,
                         limit=leg.limit, stop=leg.stop,
                         parent=parent if req.bracket and i > 0 else None,
                         status="PreSubmitted" if req.bracket and i > 0 else "Submitted")
            if i == 0:
                parent = o.perm_id
            self.orders[o.perm_id] = o
            self._status(o)
        return PlacedOrders(order_ids=order_ids, client_id=cid, session_id=self.link.session_id)

    def cancel(self, order_id: int) -> None:
        cid = self.link.client_id
        found = [o for o in self.orders.values() if o.order_id == order_id and
                 o.client_id == cid]
        if not found or not found[0].working:
            self._event(BrokerOrderError(session_id=self.link.session_id, order_id=order_id,
                                         client_id=cid or -1, code=10147,
                                         text="OrderId not found", ts=self.a.env.clock.now_utc()))
            return
        o = found[0]
        o.status = "Cancelled"
        self._status(o)
        for child in self.orders.values():
            if child.parent == o.perm_id and child.working:
                child.status = "Cancelled"
                self._status(child)

    async def serve(self, receiver: trio.MemoryReceiveChannel[Any]) -> None:
        async for env in receiver:
            sid = self.link.session_id
            if not self.link.up:
                env.answer_nowait(Reply(ok=False, session_id=sid, unavailable=True,
                                        error="link down"))
                continue
            env.answer_nowait(Reply(ok=True, session_id=sid, value=self.answer(env.request)))

    # -- the market and the operator ----------------------------------------------------------
    def working_sells(self) -> list[SimOrder]:
        return [o for o in self.orders.values() if o.action == "SELL" and
                o.status == "Submitted"]

    def hit(self, kind: str) -> None:
        for o in self.working_sells():
            if (kind == "stop" and o.ref.endswith("/sl")) or \
                    (kind == "take_profit" and o.ref.endswith("/tp")) or \
                    (kind == "exit" and o.ref.startswith("X")):
                self._fill(o, o.limit or o.stop or 1.0)
                return

    def fill_entry(self) -> None:
        for o in self.orders.values():
            if o.action == "BUY" and o.status == "Submitted":
                self._fill(o, o.limit or 2.0)
                return

    def manual_close(self) -> None:
        for o in self.working_sells() + [o for o in self.orders.values()
                                         if o.status == "PreSubmitted"]:
            o.status = "Cancelled"
            self._status(o)
        self.position = 0


Step = tuple[str, int]
STEPS = st.lists(st.tuples(st.sampled_from([
    "entry", "entry", "fill_entry", "fill_entry", "exit", "stop", "take_profit", "fill_exit",
    "lose_next", "drop", "stale_quotes", "fresh_quotes", "takeover_326", "kill_switch",
    "unsaveable", "saveable", "manual_close", "manual_close_exit", "wait"]),
    st.integers(1, 6)),
    min_size=2, max_size=16)


@dataclass
class World:
    a: Actors
    desk: Desk
    orders_tx: trio.MemorySendChannel[Any]
    updates: list[IntentUpdate] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    session: int = 1
    client_id: int = 1
    stale: bool = False
    unsaveable: bool = False
    unprotected_for: float = 0.0
    n: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def up(self) -> None:
        self.a.wiring.link_state.set(LinkState(
            status=LinkStatus.UP, session_id=self.session, accounts=("DU1234567",),
            readonly=False, client_id=self.client_id, since=self.a.env.clock.now_utc()))
        self.quote()

    def quote(self) -> None:
        if self.stale:
            self.a.wiring.quotes.set({})
        else:
            self.a.quote(SPY_CALL, 1.98, 2.00, session=self.session)

    async def new_session(self, *, client_id: int | None = None) -> None:
        self.a.link_down()
        await trio.sleep(1.0)
        self.session += 1
        self.client_id = client_id or self.client_id
        self.up()
        await self.orders_tx.send(SessionVerdict(session_id=self.session, ok=True,
                                                 reason="matches"))

    @property
    def ledger(self) -> Path:
        return self.a.env.settings.state_dir / "ledger.json"

    def set_unsaveable(self, on: bool) -> None:
        self.unsaveable = on
        if on and not self.ledger.is_dir():
            self.ledger.unlink(missing_ok=True)
            self.ledger.mkdir(parents=True)
        elif not on and self.ledger.is_dir():
            shutil.rmtree(self.ledger)

    async def step(self, kind: str, arg: int) -> None:
        now = self.a.env.clock.now_utc()
        d = self.desk
        if kind == "entry":
            iid = f"E{next(self.n)}"
            self.sent.append(iid)
            sig = EntrySignal(ts=now, bar_ts=now - dt.timedelta(minutes=1), symbol="SPY",
                              strategy="A", direction="bullish", right="C", reasons=("sm",),
                              size_multiplier=1.0, close=545.2)
            await self.orders_tx.send(EntryIntent(
                intent_id=iid, ts=now, deadline=now + dt.timedelta(minutes=3), signal=sig,
                budget=SizingBudget(equity=10_000.0, account_max_position_pct=0.2)))
        elif kind in ("exit", "kill_switch", "manual_close_exit"):
            if kind == "manual_close_exit":      # the time stop right after a close in TWS
                d.manual_close()
            if kind == "kill_switch":
                d.halted = True
                self.a.wiring.trading.set(TradingStatus(
                    state=TradingState.HALTED, reasons=("kill switch engaged",), fault=False,
                    kill_switch=True))
                await self.orders_tx.send(CancelEntries(ts=now, reason="kill switch"))
            iid = f"X{next(self.n)}"
            self.sent.append(iid)
            await self.orders_tx.send(ExitIntent(intent_id=iid, ts=now,
                                                 option_key=SPY_CALL.key,
                                                 reason="kill_switch" if kind != "exit"
                                                 else "time_stop",
                                                 urgent=kind == "kill_switch"))
        elif kind == "fill_entry":
            d.fill_entry()
        elif kind in ("stop", "take_profit"):
            d.hit(kind)
        elif kind == "fill_exit":
            d.hit("exit")
        elif kind == "lose_next":
            d.lose_next = 1
        elif kind == "drop":
            await self.new_session()
        elif kind == "takeover_326":
            await self.new_session(client_id=self.client_id + 1)
        elif kind == "stale_quotes":
            self.stale = True
            self.quote()
        elif kind == "fresh_quotes":
            self.stale = False
            self.quote()
        elif kind == "unsaveable":
            self.set_unsaveable(True)
        elif kind == "saveable":
            self.set_unsaveable(False)
        elif kind == "manual_close":
            d.manual_close()
        for _ in range(arg if kind == "wait" else 1):
            await self.settle(STEP_S)

    async def settle(self, seconds: float) -> None:
        """Let the market run `seconds`, quotes refreshed as a live feed would, checking the
        protection bound as time passes."""
        for _ in range(int(seconds // 5)):
            await trio.sleep(5.0)
            if self.desk.restart_requests and self.desk.restart_requests[-1] == self.session:
                await self.new_session()         # as GatewayLink does after a RestartSession
            self.quote()
            self.check_protection(5.0)

    def can_act(self) -> bool:
        return not (self.stale or self.unsaveable or self.client_id != 1)

    def check_protection(self, dt_s: float) -> None:
        d = self.desk
        if d.position > 0 and not d.working_sells() and self.can_act():
            self.unprotected_for += dt_s
            if self.unprotected_for > BOUND_S:
                d.violations.append(f"{d.position} held without a working sell for "
                                    f"{self.unprotected_for:.0f} s")
        else:
            self.unprotected_for = 0.0

    def check(self, *, final: bool = False) -> None:
        assert self.desk.violations == [], self.desk.violations
        terminal = Counter(u.intent_id for u in self.updates if u.terminal)
        assert all(n == 1 for n in terminal.values()), terminal
        if final:
            assert {i for i in self.sent} <= set(terminal), \
                f"never ended: {sorted(set(self.sent) - set(terminal))}"


async def _program(tmp: Path, steps: list[Step]) -> None:
    async with open_actor_env(tmp, env=PAPER) as a:
        w = a.wiring
        broker_tx = w.broker_events.clone_sender()
        desk = Desk(a, broker_tx)
        inbox = order_router.Inbox(orders=w.orders.clone_receiver(),
                                   broker=w.broker_events.clone_receiver(),
                                   link_state=w.link_state, quotes=w.quotes,
                                   gameplan=w.gameplan, trading=w.trading)
        outbox = order_router.Outbox(order_events=w.order_events.clone_sender(),
                                     link_requests=w.link_requests.clone_sender(),
                                     wanted_quotes=w.wanted_quotes, book=w.book)
        world = World(a, desk, w.orders.clone_sender())
        w.trading.set(TradingStatus(state=TradingState.ACTIVE))

        async def collect() -> None:
            async for ev in w.order_events.clone_receiver():
                if isinstance(ev, IntentUpdate):
                    world.updates.append(ev)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(desk.serve, w.link_requests.clone_receiver())
            nursery.start_soon(collect)

            async def router(task_status: trio.TaskStatus[None]) -> None:
                await order_router.run(context(a, "order_router"), inbox, outbox,
                                       tuning=TUNING, process_id="sm",
                                       task_status=task_status)
            await nursery.start(router)
            world.up()
            await world.orders_tx.send(SessionVerdict(session_id=1, ok=True, reason="matches"))
            await world.settle(10.0)
            for kind, arg in steps:
                await world.step(kind, arg)
                world.check()
            # the faults heal: the bot's own client id, quotes, the disk; the market runs on
            world.set_unsaveable(False)
            world.stale = False
            if world.client_id != 1:
                await world.new_session(client_id=1)
            desk.lose_next = 0
            for _ in range(12):
                await world.settle(300.0)
                desk.hit("exit")
                desk.fill_entry()
                world.check()
            world.check(final=True)
            nursery.cancel_scope.cancel()


@pytest.mark.slow
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS)
# each fault of issue 12 at least once, whatever the generator draws
@example(steps=[("entry", 1), ("kill_switch", 1), ("entry", 1), ("wait", 2)])
@example(steps=[("entry", 1), ("fill_entry", 1), ("manual_close_exit", 1), ("fill_exit", 1)])
@example(steps=[("entry", 1), ("fill_entry", 1), ("lose_next", 1), ("exit", 1), ("wait", 6),
                ("fill_exit", 1)])
@example(steps=[("entry", 1), ("fill_entry", 1), ("stale_quotes", 1), ("kill_switch", 1),
                ("wait", 3), ("fresh_quotes", 1), ("fill_exit", 1)])
@example(steps=[("entry", 1), ("fill_entry", 1), ("unsaveable", 1), ("exit", 1), ("wait", 3),
                ("saveable", 1), ("wait", 2), ("fill_exit", 1)])
@example(steps=[("entry", 1), ("fill_entry", 1), ("takeover_326", 1), ("kill_switch", 1),
                ("wait", 3), ("stop", 1)])
@example(steps=[("entry", 1), ("drop", 1), ("fill_entry", 1), ("drop", 1), ("exit", 1),
                ("wait", 2), ("fill_exit", 1)])
def test_the_router_keeps_its_invariants_under_any_sequence_of_faults(
        steps: list[Step]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(_program, Path(tmp), steps,
                 clock=trio.testing.MockClock(autojump_threshold=0))
