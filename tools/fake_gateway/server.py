"""The simulated Gateway: listeners, connections, faults, and the broker that outlives them.

`open_fake_gateway(config)` is entered inside a running trio program and owns a nursery with the
API listener, the control listener, every client connection and the matching engine. The broker
state (orders, fills, positions, cash) belongs to the `FakeGateway` object, so it survives client
reconnects and `restart`, and the engine keeps filling orders while no client is connected.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import IO, Any

import trio

from config.market_calendar import ET, UTC, MarketCalendar, get_calendar
from runtime.infra.clock import Clock
from tools.fake_gateway import outgoing as out
from tools.fake_gateway.broker import (
    Broker,
    BrokerEvent,
    CancelEvent,
    FillEvent,
    OrderErrorEvent,
    OrderStatusEvent,
    OrderTicket,
    PositionEvent,
    WhatIfEvent,
)
from tools.fake_gateway.config import FakeGatewayConfig
from tools.fake_gateway.contracts import UNDERLYINGS, ContractBook, ContractQuery, ContractSpec
from tools.fake_gateway.control import serve_control_connection
from tools.fake_gateway.market import Market, load_market
from tools.fake_gateway.pacing import HistoricalPacer
from tools.fake_gateway.session import ClientSession

log = logging.getLogger("tools.fake_gateway")

ENGINE_INTERVAL = 0.25          # wall seconds between matching-engine passes
HOST = "127.0.0.1"
MAX_CONNECTIONS = 64            # bounded memory; a real Gateway allows 32 API clients

STATUS_TEXTS: dict[int, str] = {
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    1300: "TWS socket port has been reset and this connection is being dropped. Please "
          "reconnect on the new port - {port}",
    2103: "Market data farm connection is broken:usfarm",
    2104: "Market data farm connection is OK:usfarm",
    2105: "HMDS data farm connection is broken:ushmds",
    2106: "HMDS data farm connection is OK:ushmds",
    2107: "HMDS data farm connection is inactive but should be available upon demand.ushmds",
    2108: "Market data farm connection is inactive but should be available upon demand.usfarm",
    2110: "Connectivity between TWS and server is broken. It will be restored automatically.",
    2157: "Sec-def data farm connection is broken:secdefnj",
    2158: "Sec-def data farm connection is OK:secdefnj",
    10197: "No market data during competing live session",
    354: "Requested market data is not subscribed.",
    10090: "Part of requested market data is not subscribed.",
    10167: "Requested market data is not subscribed. Displaying delayed market data.",
    10168: "Requested market data is not subscribed. Delayed market data is not enabled.",
    162: "Historical Market Data Service error message:Historical data request pacing "
         "violation",
}


def default_start(market: Market, calendar: MarketCalendar) -> dt.datetime:
    """09:25 ET on the second CSV session (a full session of history before it), else now."""
    days = market.csv_sessions()
    if days:
        day = days[1] if len(days) > 1 else days[0]
        return dt.datetime.combine(day, dt.time(9, 25), ET).astimezone(UTC)
    return dt.datetime.now(UTC)     # the one wall-clock read: the default anchor of the clock


class FakeGateway:
    """A running simulator. Fault methods mirror the control commands one to one."""

    def __init__(self, config: FakeGatewayConfig, clock: Clock, calendar: MarketCalendar,
                 market: Market, nursery: trio.Nursery) -> None:
        self.config = config
        self.clock = clock
        self.calendar = calendar
        self.market = market
        self.book = ContractBook(calendar)
        self.broker = Broker(market, calendar, config.account, config.cash)
        self.port = config.port
        self.control_port = config.control_port
        self.accepting = False
        self.hung = False
        self.pacing = False
        self.clientid_in_use = False
        self.login_pending = False
        self.connectivity_lost = False
        self.market_farm_ok = True
        self.hmds_farm_ok = True
        self.known_symbols = config.known_symbols
        self.rejections: dict[str | None, int] = {}   # symbol (None: any) -> code for data
        self.current_time_requests = 0   # reqCurrentTime received (a client's liveness probes)
        self._nursery = nursery
        self._sessions: dict[int, ClientSession] = {}
        self._unhung = trio.Event()
        self._unhung.set()
        self._accepting_event = trio.Event()
        self._listener: trio.SocketListener | None = None
        self._accept_scope = trio.CancelScope()
        self._reopen_scope: trio.CancelScope | None = None
        self._engine_wake = trio.Event()
        self._pacer = HistoricalPacer()
        self._orders_log: IO[str] | None = None
        if config.orders_log is not None:
            config.orders_log.parent.mkdir(parents=True, exist_ok=True)
            self._orders_log = config.orders_log.open("a", encoding="utf-8")

    # -- lifecycle --------------------------------------------------------------------------
    async def _start(self) -> None:
        await self._open_api_listener()
        control = (await trio.open_tcp_listeners(self.control_port, host=HOST))[0]
        self.control_port = control.socket.getsockname()[1]
        self._nursery.start_soon(self._serve_control, control)
        self._nursery.start_soon(self._engine)
        log.info("fake gateway on %s:%d (control %d), sim time %s, speed %g, account %s%s",
                 HOST, self.port, self.control_port, self.clock.now_utc().isoformat(),
                 self.clock.speed, self.config.account,
                 ", read-only API" if self.config.read_only else "")

    def _close(self) -> None:
        if self._orders_log is not None:
            self._orders_log.close()
            self._orders_log = None

    async def _open_api_listener(self) -> None:
        listeners = await trio.open_tcp_listeners(self.port, host=HOST)
        listener = listeners[0]
        for extra in listeners[1:]:
            await extra.aclose()
        self.port = listener.socket.getsockname()[1]
        self._listener = listener
        self._accept_scope = trio.CancelScope()
        self._nursery.start_soon(self._accept_loop, listener, self._accept_scope)
        self.accepting = True
        self._accepting_event.set()

    async def _accept_loop(self, listener: trio.SocketListener, scope: trio.CancelScope) -> None:
        with scope:
            async with listener:
                while True:
                    try:
                        stream = await listener.accept()
                    except (trio.ClosedResourceError, trio.BrokenResourceError):
                        return
                    except OSError as exc:      # e.g. EMFILE: keep serving the others
                        log.warning("accept failed: %s", exc)
                        await trio.sleep(0.05)
                        continue
                    self._nursery.start_soon(self._serve_connection, stream)

    async def _close_api_listener(self) -> None:
        self.accepting = False
        self._accepting_event = trio.Event()
        self._accept_scope.cancel()
        if self._listener is not None:
            await self._listener.aclose()
            self._listener = None

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        if len(self._sessions) >= MAX_CONNECTIONS:
            log.warning("more than %d connections: refusing a new one", MAX_CONNECTIONS)
            await trio.aclose_forcefully(stream)
            return
        session = ClientSession(self, stream)
        self._sessions[session.conn_id] = session
        log.info("%s: connected", session.label)
        try:
            await session.run()
        except Exception:                    # one client's failure never stops the server
            log.exception("%s: connection failed", session.label)
        finally:
            self._sessions.pop(session.conn_id, None)
            await trio.aclose_forcefully(stream)
            session.closed.set()
            log.info("%s: disconnected", session.label)

    async def _serve_control(self, listener: trio.SocketListener) -> None:
        async with listener:
            while True:
                stream = await listener.accept()
                self._nursery.start_soon(serve_control_connection, self, stream)

    async def _engine(self) -> None:
        while True:
            wake = trio.Event()
            self._engine_wake = wake
            try:
                self.dispatch(self.broker.tick(self.clock.now_utc()))
            except Exception:                 # a bug in matching must not stop the simulator
                log.exception("matching engine pass failed")
            with trio.move_on_after(ENGINE_INTERVAL):
                await wake.wait()

    # -- queries used by sessions -----------------------------------------------------------
    async def wait_unhung(self) -> None:
        if self.hung:
            await self._unhung.wait()

    async def wait_accepting(self) -> None:
        """Until the API port accepts connections again (after `restart`)."""
        await self._accepting_event.wait()

    @property
    def market_data_paused(self) -> bool:
        return self.connectivity_lost or not self.market_farm_ok

    @property
    def hmds_paused(self) -> bool:
        return self.connectivity_lost or not self.hmds_farm_ok

    def sessions(self) -> list[ClientSession]:
        return list(self._sessions.values())

    def ready_sessions(self) -> list[ClientSession]:
        return [s for s in self._sessions.values() if s.ready]

    def session_for(self, client_id: int) -> ClientSession | None:
        for s in self._sessions.values():
            if s.ready and s.client_id == client_id:
                return s
        return None

    def client_id_taken(self, client_id: int, asking: ClientSession) -> bool:
        if self.clientid_in_use:
            return True
        return any(s is not asking and s.ready and s.client_id == client_id
                   for s in self._sessions.values())

    def farm_notices(self) -> list[tuple[int, str]]:
        mkt = 2104 if self.market_farm_ok else 2103
        hmds = 2106 if self.hmds_farm_ok else 2105
        return [(mkt, STATUS_TEXTS[mkt]), (hmds, STATUS_TEXTS[hmds]), (2158, STATUS_TEXTS[2158])]

    def resolve(self, q: ContractQuery, now: dt.datetime) -> list[ContractSpec]:
        symbol = q.symbol.strip().upper()
        if self.known_symbols is not None and symbol and symbol not in self.known_symbols:
            return []
        near = self.market.price(symbol, now) if symbol in UNDERLYINGS else None
        return self.book.resolve(q, now, strikes_near=near)

    def rejection(self, symbol: str) -> tuple[int, str] | None:
        """The error a market-data request for `symbol` is answered with (`reject` command)."""
        code = self.rejections.get(symbol.strip().upper(), self.rejections.get(None))
        if code is None:
            return None
        return code, STATUS_TEXTS.get(code, f"Simulated error {code}").format(port=self.port)

    def day_start(self) -> dt.datetime:
        """Midnight ET of the simulated day (reqExecutions/reqCompletedOrders cover today)."""
        today = self.clock.now_utc().astimezone(ET).date()
        return dt.datetime.combine(today, dt.time(0), ET).astimezone(UTC)

    def check_pacing(self, spec: ContractSpec, what: str, bar_size: str, duration: str,
                     end: str, format_date: int) -> str | None:
        if not self.pacing:
            return None
        return self._pacer.check(trio.current_time(), (spec.con_id, spec.exchange, what),
                                 (spec.con_id, what, bar_size, duration, end, format_date))

    # -- orders -----------------------------------------------------------------------------
    def log_order(self, client_id: int, query: ContractQuery, t: OrderTicket,
                  rejected: str | None) -> None:
        if self._orders_log is None:
            return
        record: dict[str, Any] = {
            "ts": self.clock.now_utc().isoformat().replace("+00:00", "Z"),
            "clientId": client_id, "orderId": t.order_id, "action": t.action,
            "qty": t.quantity, "type": t.order_type, "lmt": t.lmt_price, "aux": t.aux_price,
            "tif": t.tif, "parentId": t.parent_id, "ocaGroup": t.oca_group,
            "orderRef": t.order_ref, "account": t.account, "transmit": t.transmit,
            "whatIf": t.what_if,
            "contract": {"conId": query.con_id, "symbol": query.symbol,
                         "secType": query.sec_type, "expiry": query.expiry,
                         "strike": query.strike, "right": query.right,
                         "exchange": query.exchange, "localSymbol": query.local_symbol},
        }
        if rejected:
            record["rejected"] = rejected
        self._orders_log.write(json.dumps(record) + "\n")
        self._orders_log.flush()

    def place_order(self, client_id: int, spec: ContractSpec, ticket: OrderTicket) -> None:
        self.dispatch(self.broker.place(client_id, spec, ticket, self.clock.now_utc()))
        self._engine_wake.set()

    def cancel_order(self, client_id: int, order_id: int) -> None:
        self.dispatch(self.broker.cancel(client_id, order_id, self.clock.now_utc()))

    def global_cancel(self) -> None:
        self.dispatch(self.broker.cancel_all(self.clock.now_utc()))

    def dispatch(self, events: list[BrokerEvent]) -> None:
        """Route broker events to the connections that should hear about them."""
        positions_changed = False
        for ev in events:
            if isinstance(ev, OrderStatusEvent):
                s = self.session_for(ev.order.client_id)
                if s is not None:
                    sv = s.server_version
                    s.send_all([out.open_order(sv, ev.order), out.order_status(ev.order)])
            elif isinstance(ev, FillEvent):
                s = self.session_for(ev.order.client_id)
                log.info("fill: %s %s %g @ %.2f (client %d order %d)", ev.fill.side,
                         ev.fill.spec.local_symbol, ev.fill.shares, ev.fill.price,
                         ev.order.client_id, ev.order.order_id)
                if s is not None:
                    sv = s.server_version
                    s.send_all([out.exec_details(sv, -1, ev.fill), out.order_status(ev.order),
                                out.open_order(sv, ev.order), out.commission_report(ev.fill)])
            elif isinstance(ev, CancelEvent):
                s = self.session_for(ev.order.client_id)
                if s is not None:
                    msgs = [out.order_status(ev.order), out.open_order(s.server_version,
                                                                      ev.order)]
                    if ev.code is not None:
                        msgs.append(out.error(s.server_version, ev.order.order_id, ev.code,
                                              ev.text))
                    s.send_all(msgs)
            elif isinstance(ev, OrderErrorEvent):
                s = self.session_for(ev.client_id)
                if s is not None:
                    s.error(ev.order_id, ev.code, ev.text)
            elif isinstance(ev, WhatIfEvent):
                s = self.session_for(ev.client_id)
                if s is not None:
                    s.send(out.open_order(s.server_version, ev.order, "PreSubmitted",
                                          what_if=True, init_margin=ev.init_margin,
                                          commission=ev.commission))
            elif isinstance(ev, PositionEvent):
                positions_changed = True
                pos = ev.position
                for s in self.ready_sessions():
                    if s.positions_subscribed:
                        s.send(out.position(self.config.account, pos.spec, pos.quantity,
                                            pos.avg_cost))
        if positions_changed:
            for s in self.ready_sessions():
                if s.account_updates:
                    s.send_all(s.account_snapshot()[:-1])   # without accountDownloadEnd

    # -- faults (the control commands) -------------------------------------------------------
    async def drop(self) -> None:
        """Close every client connection (the broker state stays); returns once they are."""
        dropped = list(self._sessions.values())
        for s in dropped:
            s.cancel_scope.cancel()
        with trio.move_on_after(2.0):
            for s in dropped:
                await s.closed.wait()
        await trio.lowlevel.checkpoint()
        log.info("drop: %d client connection(s) closed", len(dropped))

    async def restart(self, seconds: float) -> None:
        """A Gateway restart: drop everyone, refuse connections for `seconds`, accept again.

        Returns once the port refuses connections; `wait_accepting()` waits for the reopening.
        """
        if self._reopen_scope is not None:
            self._reopen_scope.cancel()
        await self._close_api_listener()
        await self.drop()
        log.info("restart: refusing connections for %.1f s", seconds)
        scope = trio.CancelScope()
        self._reopen_scope = scope
        self._nursery.start_soon(self._reopen_after, seconds, scope)

    async def _reopen_after(self, seconds: float, scope: trio.CancelScope) -> None:
        with scope:
            await trio.sleep(seconds)
            self._pacer.reset()
            while True:
                try:
                    await self._open_api_listener()
                    break
                except OSError as exc:     # someone took the port meanwhile: keep trying
                    log.warning("restart: cannot listen on port %d again (%s); retrying",
                                self.port, exc)
                    await trio.sleep(0.5)
            self._reopen_scope = None
            log.info("restart: accepting connections again on port %d", self.port)

    async def hang(self) -> None:
        """Accept but stop answering (a frozen Gateway: sockets stay open, nothing moves)."""
        if not self.hung:
            self.hung = True
            self._unhung = trio.Event()
            log.info("hang: the gateway stops answering")
        await trio.lowlevel.checkpoint()

    async def unhang(self) -> None:
        if self.hung:
            self.hung = False
            self._unhung.set()
            log.info("unhang: the gateway answers again")
        await trio.lowlevel.checkpoint()

    async def send_error(self, code: int) -> None:
        """Send a status/error code (reqId −1) to every client, with its side effects."""
        text = STATUS_TEXTS.get(code, f"Simulated status {code}").format(port=self.port)
        if code == 1100:
            self.connectivity_lost = True
        elif code in (1101, 1102):
            self.connectivity_lost = False
        elif code in (2103, 2104):
            self.market_farm_ok = code == 2104
        elif code in (2105, 2106):
            self.hmds_farm_ok = code == 2106
        for s in self.ready_sessions():
            s.error(-1, code, text)
            if code == 1101:
                s.drop_market_data()
            s.wake_streams()
        log.info("error %d sent to %d client(s)", code, len(self.ready_sessions()))
        if code == 1300:
            await trio.sleep(0.05)
            await self.drop()
        await trio.lowlevel.checkpoint()

    async def set_rejection(self, code: int | None, symbol: str | None = None) -> None:
        """Answer market-data requests (history, quotes, real-time bars) for `symbol` (None:
        every symbol) with `code`; code None stops it (for that symbol, or all when None)."""
        key = symbol.strip().upper() if symbol else None
        if code is None:
            if key is None:
                self.rejections.clear()
            else:
                self.rejections.pop(key, None)
        else:
            self.rejections[key] = code
        await trio.lowlevel.checkpoint()

    async def set_known_symbols(self, symbols: frozenset[str] | None) -> None:
        self.known_symbols = symbols
        await trio.lowlevel.checkpoint()

    async def set_login_pending(self, on: bool) -> None:
        """Answer the API handshake but never start a session (a login not finished)."""
        self.login_pending = on
        await trio.lowlevel.checkpoint()

    async def set_clientid_in_use(self, on: bool) -> None:
        self.clientid_in_use = on
        await trio.lowlevel.checkpoint()

    async def fill_order(self, order_ref: str, price: float | None = None) -> None:
        """Fill a working order now (see Broker.fill_working); LookupError if there is none."""
        self.dispatch(self.broker.fill_working(order_ref, price, self.clock.now_utc()))
        await trio.lowlevel.checkpoint()

    async def set_pacing(self, on: bool) -> None:
        self.pacing = on
        if not on:
            self._pacer.reset()
        await trio.lowlevel.checkpoint()

    def status(self) -> dict[str, Any]:
        now = self.clock.now_utc()
        ready = self.ready_sessions()
        values = self.broker.account_values(now)
        series = self.market.series(self.market.bars_symbol) if self.market.bars_symbol else None
        return {
            "sim_time": now.isoformat(),
            "sim_time_et": now.astimezone(ET).isoformat(),
            "speed": self.clock.speed,
            "port": self.port,
            "control_port": self.control_port,
            "accepting": self.accepting,
            "hung": self.hung,
            "pacing": self.pacing,
            "clientid_in_use": self.clientid_in_use,
            "login_pending": self.login_pending,
            "read_only": self.config.read_only,
            "connectivity_lost": self.connectivity_lost,
            "market_data_farm_ok": self.market_farm_ok,
            "hmds_farm_ok": self.hmds_farm_ok,
            "known_symbols": None if self.known_symbols is None else sorted(self.known_symbols),
            "rejections": {k or "*": v for k, v in self.rejections.items()},
            "clients": sorted(s.client_id for s in ready if s.client_id is not None),
            "connections": len(self._sessions),
            "subscriptions": sum(s.subscription_count for s in self._sessions.values()),
            "orders": len(self.broker.orders),
            "open_orders": len(self.broker.open_orders()),
            "executions": len(self.broker.fills),
            "current_time_requests": self.current_time_requests,
            "positions": [
                {"conId": p.spec.con_id, "symbol": p.spec.symbol, "secType": p.spec.sec_type,
                 "localSymbol": p.spec.local_symbol, "position": p.quantity,
                 "avgCost": round(p.avg_cost, 4)}
                for p in self.broker.open_positions()],
            "account": self.config.account,
            "net_liquidation": values["NetLiquidation"],
            "cash": values["TotalCashValue"],
            "csv": None if series is None else {
                "symbol": series.symbol,
                "first": series.csv_first.isoformat() if series.csv_first else None,
                "last": series.csv_last.isoformat() if series.csv_last else None},
        }


def _prepare(config: FakeGatewayConfig) -> tuple[MarketCalendar, Market]:
    """The slow part of startup (calendar, CSV parsing), run off the trio thread."""
    calendar = get_calendar()
    market = load_market(calendar, seed=config.seed, bars=config.bars, vix=config.vix)
    return calendar, market


@asynccontextmanager
async def open_fake_gateway(config: FakeGatewayConfig) -> AsyncIterator[FakeGateway]:
    """Start a simulator inside the running trio program; it stops when the block exits."""
    calendar, market = await trio.to_thread.run_sync(functools.partial(_prepare, config))
    start = config.start if config.start is not None else default_start(market, calendar)
    clock = Clock(start, speed=config.speed)
    # warm the caches of the first session off the trio thread (first requests stay fast)
    session = market.series("SPY").session_at_or_before(start)
    if session is not None:
        warm = session
        await trio.to_thread.run_sync(lambda: [market.series(s).day(warm) for s in
                                               ("SPY", "QQQ", "IWM", "VIX")])
    async with trio.open_nursery() as nursery:
        gw = FakeGateway(config, clock, calendar, market, nursery)
        try:
            await gw._start()
            yield gw
        finally:
            nursery.cancel_scope.cancel()
            gw._close()
