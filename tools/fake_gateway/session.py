"""One API client connection: handshake, request dispatch, its subscriptions and stream loop.

All per-client state lives here (request ids, subscriptions, read-only detection); everything the
broker knows lives in the gateway. A bad request is answered like IB answers it (error 320/321/
200/162 …) or ignored with a log line; it never ends the connection, let alone the server.

Read-only sessions (a simulator convention): a real Gateway enforces read-only by its own
"Read-Only API" setting (`FakeGatewayConfig.read_only` here). In addition, an ib_async client
connected with `readonly=True` never sends reqOpenOrders (5) or reqCompletedOrders (99) in the
startup burst of `IB.connectAsync`; a connection that has sent neither (nor reqAllOpenOrders 16 /
reqAutoOpenOrders 15) by the time of its first reqExecutions or placeOrder is treated as
read-only, and its orders get error 321 like under the Gateway setting.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from config.market_calendar import ET
from tools.fake_gateway import outgoing as out
from tools.fake_gateway.accounts import account_summary_rows, account_value_rows
from tools.fake_gateway.contracts import (
    UNDERLYINGS,
    ContractQuery,
    ContractSpec,
    chain_strikes,
    contract_details,
)
from tools.fake_gateway.history import (
    WHAT_TO_SHOW,
    HistoryRequestError,
    compute_bar,
    format_header_time,
    history_windows,
    parse_bar_size,
    parse_duration,
    parse_end,
)
from tools.fake_gateway.incoming import parse_place_order, read_contract
from tools.fake_gateway.streams import BarStream, RealTimeBarStream, TickStream
from tools.fake_gateway.wire import (
    FieldReader,
    FrameDecoder,
    ProtocolError,
    parse_version_range,
    split_fields,
)

if TYPE_CHECKING:
    from tools.fake_gateway.server import FakeGateway

log = logging.getLogger("tools.fake_gateway.session")

MIN_SERVER_VERSION = 157
MAX_SERVER_VERSION = 178
OUTBOX_LIMIT = 50_000              # queued messages before a non-reading client is dropped
POLL_INTERVAL = 0.25               # wall seconds between stream polls...
POLL_MAX_SIM_SECONDS = 5.0         # ...but at most 5 simulated seconds apart, as IB pushes
POLL_MIN_INTERVAL = 0.01           # ...and never more often than every 10 ms of wall time
# On an accelerated clock a wall-time cadence alone delivers bars in batches minutes late
# (4 simulated minutes at 1000x), which no real Gateway does: a consumer would see its VIX go
# stale and its bars arrive in bursts.
MAX_TICKERS = 100                  # IB's default market data lines
MAX_OPEN_HISTORICAL = 50           # simultaneous keepUpToDate streams (IB: 322 beyond)
CURRENT_TIME_MIN_INTERVAL = 0.5    # wall s: TWS ignores a reqCurrentTime repeated within ~1 s
NO_SECDEF = "No security definition has been found for the request"
_CLOSE = b""                       # outbox sentinel: flush, then close the connection
_EXEC_SIDES = {"BUY": "BOT", "SELL": "SLD"}
_conn_ids = itertools.count(1)


class ClientSession:
    def __init__(self, gw: FakeGateway, stream: trio.SocketStream) -> None:
        self.gw = gw
        self.conn_id = next(_conn_ids)
        self._stream = stream
        self.server_version = 0
        self.client_id: int | None = None
        self.ready = False
        self.cancel_scope = trio.CancelScope()
        self.closed = trio.Event()          # set once the socket is closed
        self._send_out, self._recv_out = trio.open_memory_channel[bytes](OUTBOX_LIMIT)
        self._wake = trio.Event()
        self.ticks: dict[int, TickStream] = {}
        self.bars: dict[int, BarStream] = {}
        self.rt_bars: dict[int, RealTimeBarStream] = {}
        self.positions_subscribed = False
        self.account_updates = False
        self.account_multi: set[int] = set()
        self.account_summaries: set[int] = set()
        self.market_data_type = 1
        self._order_requests_seen = False
        self._read_only_latched: bool | None = None
        self._last_current_time = -math.inf
        self._handlers: dict[int, Callable[[list[str]], None]] = {
            1: self._req_mkt_data, 2: self._cancel_mkt_data, 3: self._place_order,
            4: self._cancel_order, 5: self._req_open_orders, 6: self._req_account_updates,
            7: self._req_executions, 8: self._req_ids, 9: self._req_contract_details,
            15: self._req_auto_open_orders, 16: self._req_all_open_orders,
            17: self._req_managed_accounts, 20: self._req_historical_data,
            25: self._cancel_historical_data, 49: self._req_current_time,
            50: self._req_real_time_bars, 51: self._cancel_real_time_bars,
            58: self._req_global_cancel, 59: self._req_market_data_type,
            61: self._req_positions, 62: self._req_account_summary,
            63: self._cancel_account_summary, 64: self._cancel_positions,
            71: self._start_api, 74: self._req_positions_multi,
            75: self._cancel_positions_multi, 76: self._req_account_updates_multi,
            77: self._cancel_account_updates_multi, 78: self._req_sec_def_opt_params,
            87: self._req_head_timestamp, 90: self._cancel_head_timestamp,
            99: self._req_completed_orders,
        }

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def label(self) -> str:
        return f"conn#{self.conn_id}" + (f"/client{self.client_id}" if self.client_id is not None
                                          else "")

    @property
    def subscription_count(self) -> int:
        return len(self.ticks) + len(self.bars) + len(self.rt_bars)

    def send(self, msg: bytes) -> None:
        """Queue a message; a client that stops reading for too long is disconnected."""
        if not msg:
            return
        try:
            self._send_out.send_nowait(msg)
        except trio.WouldBlock:
            log.warning("%s: client is not reading (%d messages queued): disconnecting",
                        self.label, OUTBOX_LIMIT)
            self.cancel_scope.cancel()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    def send_all(self, msgs: list[bytes]) -> None:
        if msgs:
            self.send(b"".join(msgs))

    def close_after_flush(self) -> None:
        try:
            self._send_out.send_nowait(_CLOSE)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.cancel_scope.cancel()

    def wake_streams(self) -> None:
        self._wake.set()

    def error(self, req_id: int, code: int, text: str) -> None:
        self.send(out.error(self.server_version or MAX_SERVER_VERSION, req_id, code, text))

    async def run(self) -> None:
        with self.cancel_scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, nursery.cancel_scope)
                nursery.start_soon(self._stream_loop)
                await self._reader()
                nursery.cancel_scope.cancel()

    async def _reader(self) -> None:
        decoder = FrameDecoder()
        handshake_done = False
        while True:
            try:
                data = await self._stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return
            try:
                payloads = decoder.feed(data)
            except ProtocolError as exc:
                log.warning("%s: protocol error, closing: %s", self.label, exc)
                return
            for payload in payloads:
                await self.gw.wait_unhung()
                if not handshake_done:
                    try:
                        self._handshake(payload)
                    except ProtocolError as exc:
                        log.warning("%s: %s; closing", self.label, exc)
                        self.close_after_flush()
                        return
                    handshake_done = True
                    continue
                self._dispatch(split_fields(payload))

    async def _writer(self, scope: trio.CancelScope) -> None:
        async with self._recv_out:
            while True:
                first = await self._recv_out.receive()
                batch = [first]
                size = len(first)
                while size < 256 * 1024 and first != _CLOSE:
                    try:
                        more = self._recv_out.receive_nowait()
                    except trio.WouldBlock:
                        break
                    batch.append(more)
                    size += len(more)
                    if more == _CLOSE:
                        break
                await self.gw.wait_unhung()
                closing = _CLOSE in batch
                data = b"".join(m for m in batch if m != _CLOSE)
                try:
                    if data:
                        await self._stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    scope.cancel()
                    return
                if closing:
                    scope.cancel()
                    return

    # -- handshake --------------------------------------------------------------------------
    def _handshake(self, payload: bytes) -> None:
        lo, hi, options = parse_version_range(payload)
        version = min(hi, MAX_SERVER_VERSION)
        if version < max(lo, MIN_SERVER_VERSION):
            raise ProtocolError(f"no common API version (client v{lo}..{hi}, "
                                f"server v{MIN_SERVER_VERSION}..{MAX_SERVER_VERSION})")
        self.server_version = version
        now_et = self.gw.clock.now_utc().astimezone(ET)
        self.send(out.handshake_reply(version, f"{now_et:%Y%m%d %H:%M:%S} {now_et:%Z}"))
        log.info("%s: handshake v%d..%d%s -> server version %d", self.label, lo, hi,
                 f" {options}" if options else "", version)

    def _start_api(self, fields: list[str]) -> None:
        if self.ready:
            return
        r = FieldReader(fields, 2)
        client_id = r.integer()
        self.client_id = client_id
        if self.gw.login_pending:
            # a Gateway whose login has not finished (2FA, a dialog): the handshake is
            # answered, the session never starts
            log.info("%s: login pending: startApi left unanswered", self.label)
            return
        if self.gw.client_id_taken(client_id, self):
            log.info("%s: client id %d is in use: 326 and close", self.label, client_id)
            self.error(-1, 326, "Unable to connect as the client id is already in use. Retry "
                                "with a unique client id.")
            self.close_after_flush()
            return
        self.ready = True
        self.send(out.managed_accounts([self.gw.config.account]))
        self.send(out.next_valid_id(self.gw.broker.next_order_id(client_id)))
        for code, text in self.gw.farm_notices():
            self.error(-1, code, text)
        log.info("%s: API started", self.label)

    # -- dispatch ---------------------------------------------------------------------------
    def _dispatch(self, fields: list[str]) -> None:
        if not fields:
            return
        try:
            msg_id = int(fields[0])
        except ValueError:
            log.warning("%s: message without a numeric id: %r", self.label, fields[:3])
            self.error(-1, 320, "Server error when reading an API client request.")
            return
        if not self.ready and msg_id != 71:
            log.warning("%s: message %d before startApi ignored", self.label, msg_id)
            return
        handler = self._handlers.get(msg_id)
        if handler is None:
            log.warning("%s: unsupported message %d ignored: %r", self.label, msg_id,
                        fields[:6])
            return
        try:
            handler(fields)
        except (ValueError, IndexError, KeyError, OverflowError) as exc:
            req_id = _guess_req_id(fields)
            log.warning("%s: malformed message %d (%s): %r", self.label, msg_id, exc,
                        fields[:12])
            self.error(req_id, 320, "Server error when reading an API client request.")
        except Exception:                  # a simulator bug: answer like IB, keep serving
            req_id = _guess_req_id(fields)
            log.exception("%s: message %d failed: %r", self.label, msg_id, fields[:12])
            self.error(req_id, 322, "Error processing request.")

    def _resolve_one(self, req_id: int, q: ContractQuery) -> ContractSpec | None:
        now = self.gw.clock.now_utc()
        matches = self.gw.resolve(q, now)
        if len(matches) != 1:
            if len(matches) > 1:
                log.info("%s: ambiguous contract %s", self.label, q.describe())
            self.error(req_id, 200, NO_SECDEF)
            return None
        return matches[0]

    def _rejected(self, req_id: int, spec: ContractSpec) -> bool:
        """The `reject CODE [SYMBOL]` fault: answer this data request with that error."""
        rejection = self.gw.rejection(spec.symbol)
        if rejection is None:
            return False
        self.error(req_id, *rejection)
        return True

    # -- contracts --------------------------------------------------------------------------
    def _req_contract_details(self, fields: list[str]) -> None:
        r = FieldReader(fields, 2)
        req_id = r.integer()
        q = read_contract(r)
        now = self.gw.clock.now_utc()
        matches = self.gw.resolve(q, now)
        if not matches:
            self.error(req_id, 200, NO_SECDEF)
            return
        sv = self.server_version
        self.send_all([out.contract_data(sv, req_id, contract_details(self.gw.book, m, now))
                       for m in matches] + [out.contract_data_end(req_id)])

    def _req_sec_def_opt_params(self, fields: list[str]) -> None:
        r = FieldReader(fields, 1)
        req_id = r.integer()
        symbol = r.text().strip().upper()
        r.text()                                 # futFopExchange
        sec_type = r.text().strip().upper()
        con_id = r.integer()
        und = UNDERLYINGS.get(symbol)
        if und is None or not und.has_options or (sec_type and sec_type != und.sec_type) or \
                (con_id and con_id != und.con_id):
            self.error(req_id, 200, NO_SECDEF)
            return
        now = self.gw.clock.now_utc()
        today = now.astimezone(ET).date()
        expiries = [f"{e:%Y%m%d}" for e in self.gw.book.options.listed_expiries(und, today)
                    if now < self.gw.book.options.expiry_close(e)]
        strikes = chain_strikes(self.gw.market.price(und.symbol, now))
        msgs = [out.sec_def_opt_params(req_id, exchange, und.con_id, und.symbol, "100",
                                       expiries, strikes)
                for exchange in ("SMART", "CBOE", "AMEX", "ISE")]
        self.send_all([*msgs, out.sec_def_opt_params_end(req_id)])

    # -- market data ------------------------------------------------------------------------
    def _req_market_data_type(self, fields: list[str]) -> None:
        self.market_data_type = FieldReader(fields, 2).integer(1)

    def _req_mkt_data(self, fields: list[str]) -> None:
        r = FieldReader(fields, 2)
        req_id = r.integer()
        q = read_contract(r)
        if q.sec_type.upper() == "BAG":
            r.skip(4 * r.integer())
        if r.flag():
            r.skip(3)
        generic = r.text_or("")
        snapshot = r.flag() if r.remaining() else False
        regulatory = r.flag() if r.remaining() else False
        if req_id in self.ticks:
            self.error(req_id, 322, "Error processing request.-'bN' : cause - Duplicate ticker "
                                    f"id {req_id}")
            return
        spec = self._resolve_one(req_id, q)
        if spec is None or self._rejected(req_id, spec):
            return
        if not snapshot and not regulatory and len(self.ticks) >= MAX_TICKERS:
            self.error(req_id, 101, "Max number of tickers has been reached")
            return
        ticks = frozenset(t.strip() for t in generic.split(",") if t.strip())
        stream = TickStream(req_id, spec, ticks)
        now = self.gw.clock.now_utc()
        msgs = [out.tick_req_params(req_id, 0.01, "9c0001" if spec.is_option else "a60001", 3),
                out.market_data_type(req_id, 1 if self.market_data_type in (1, 3) else 2)]
        msgs += stream.poll(self.gw.market, now)
        if snapshot or regulatory:
            msgs.append(out.tick_snapshot_end(req_id))
            self.send_all(msgs)
            return
        self.ticks[req_id] = stream
        self.send_all(msgs)
        self.wake_streams()

    def _cancel_mkt_data(self, fields: list[str]) -> None:
        self.ticks.pop(FieldReader(fields, 2).integer(), None)

    def _req_historical_data(self, fields: list[str]) -> None:
        r = FieldReader(fields, 1)
        req_id = r.integer()
        q = read_contract(r)
        r.text()                                         # includeExpired
        end_text = r.text()
        bar_size_text = r.text()
        duration_text = r.text()
        r.text()                                         # useRTH: only RTH data exists
        what = r.text().strip().upper()
        format_date = r.integer(1)
        if q.sec_type.upper() == "BAG":
            r.skip(4 * r.integer())
        keep_up = r.flag() if r.remaining() else False
        spec = self._resolve_one(req_id, q)
        if spec is None or self._rejected(req_id, spec):
            return
        now = self.gw.clock.now_utc()
        try:
            if keep_up and end_text.strip():
                raise HistoryRequestError(321, "Error validating request.-'bX' : cause - End "
                                               "date not supported with live updates")
            if what not in WHAT_TO_SHOW:
                raise HistoryRequestError(321, "Error validating request.-'bX' : cause - "
                                               f"whatToShow {what!r} is not supported")
            size = parse_bar_size(bar_size_text)
            duration = parse_duration(duration_text)
            end = parse_end(end_text, now)
            if keep_up and len(self.bars) >= MAX_OPEN_HISTORICAL:
                raise HistoryRequestError(322, "Error processing request.-'bX' : cause - Only "
                                               "50 simultaneous API historical data requests "
                                               "allowed.")
            violation = self.gw.check_pacing(spec, what, bar_size_text, duration_text,
                                             end_text, format_date)
            if violation is not None:
                log.info("%s: pacing violation (%s) for reqId %d", self.label, violation,
                         req_id)
                raise HistoryRequestError(162, "Historical Market Data Service error message:"
                                               "Historical data request pacing violation")
            windows = history_windows(self.gw.calendar, size, duration, end)
        except HistoryRequestError as exc:
            self.error(req_id, exc.code, exc.text)
            return
        bars = [b for w in windows
                if (b := compute_bar(self.gw.market, spec, what, size, w, end, format_date))]
        if not bars:
            self.error(req_id, 162, "Historical Market Data Service error message:HMDS query "
                                    f"returned no data: {spec.symbol}@{spec.exchange} "
                                    f"{what.title()}")
            return
        start_text = format_header_time(windows[0].start)
        self.send(out.historical_data(req_id, start_text, format_header_time(end), bars))
        if keep_up:
            last = windows[-1]
            self.bars[req_id] = BarStream(req_id, spec, what, size, format_date, last, bars[-1])
            self.wake_streams()

    def _cancel_historical_data(self, fields: list[str]) -> None:
        req_id = FieldReader(fields, 2).integer()
        if self.bars.pop(req_id, None) is None:
            log.debug("%s: cancelHistoricalData for unknown/finished reqId %d", self.label,
                      req_id)

    def _req_head_timestamp(self, fields: list[str]) -> None:
        r = FieldReader(fields, 1)
        req_id = r.integer()
        spec = self._resolve_one(req_id, read_contract(r))
        if spec is None:
            return
        cal = self.gw.calendar
        head = cal.next_session(cal.first_day).open
        if spec.is_option:
            listed = dt.datetime.combine(spec.expiry_date - dt.timedelta(days=60),
                                         dt.time(9, 30), ET)
            head = max(head, listed)
        self.send(out.head_timestamp(req_id, f"{head.astimezone(dt.UTC):%Y%m%d-%H:%M:%S}"))

    def _cancel_head_timestamp(self, fields: list[str]) -> None:
        return

    def _req_real_time_bars(self, fields: list[str]) -> None:
        r = FieldReader(fields, 2)
        req_id = r.integer()
        q = read_contract(r)
        bar_size = r.integer(5)
        what = r.text().strip().upper()
        spec = self._resolve_one(req_id, q)
        if spec is None or self._rejected(req_id, spec):
            return
        if bar_size != 5 or what not in WHAT_TO_SHOW or spec.is_option:
            self.error(req_id, 420, "Invalid Real-time Query: only 5-second bars of TRADES, "
                                    "MIDPOINT, BID or ASK for stocks and indexes")
            return
        self.rt_bars[req_id] = RealTimeBarStream(req_id, spec, what, self.gw.clock.now_utc())
        self.wake_streams()

    def _cancel_real_time_bars(self, fields: list[str]) -> None:
        self.rt_bars.pop(FieldReader(fields, 2).integer(), None)

    def _req_current_time(self, fields: list[str]) -> None:
        self.gw.current_time_requests += 1
        now_wall = trio.current_time()
        if now_wall - self._last_current_time < CURRENT_TIME_MIN_INTERVAL:
            log.info("%s: reqCurrentTime repeated within %.1f s: ignored (as TWS does)",
                     self.label, CURRENT_TIME_MIN_INTERVAL)
            return
        self._last_current_time = now_wall
        self.send(out.current_time(int(self.gw.clock.now_utc().timestamp())))

    # -- streaming --------------------------------------------------------------------------
    def drop_market_data(self) -> None:
        """After 1101 (connectivity restored, data lost) every subscription is gone."""
        self.ticks.clear()
        self.bars.clear()
        self.rt_bars.clear()

    async def _stream_loop(self) -> None:
        while True:
            wake = trio.Event()
            self._wake = wake
            await self.gw.wait_unhung()
            deadline = math.inf
            if self.ready and self.subscription_count:
                now = self.gw.clock.now_utc()
                self._poll(now)
                deadline = self._next_poll(now)
            with trio.move_on_at(deadline):
                await wake.wait()

    def _poll(self, now: dt.datetime) -> None:
        gw = self.gw
        msgs: list[bytes] = []
        groups: list[tuple[bool, dict[int, Any]]] = [
            (gw.market_data_paused, self.ticks), (gw.hmds_paused, self.bars),
            (gw.market_data_paused, self.rt_bars)]
        for paused, subs in groups:
            if paused:
                continue
            for req_id, sub in list(subs.items()):
                try:
                    if isinstance(sub, TickStream):
                        msgs += sub.poll(gw.market, now)
                    else:
                        msgs += sub.poll(gw.market, gw.calendar, now)
                except Exception:          # one broken stream must not stop the others
                    log.exception("%s: stream %d failed; it is cancelled", self.label, req_id)
                    subs.pop(req_id, None)
                    msgs.append(out.error(self.server_version, req_id, 10182,
                                          "Failed to request live updates (disconnected)."))
        self.send_all(msgs)

    def _next_poll(self, now: dt.datetime) -> float:
        clock = self.gw.clock
        t = trio.current_time()
        if self.gw.calendar.session_at(now) is None:
            nxt = self.gw.calendar.next_session_after(now)
            return clock.trio_time_at(nxt.open)
        interval = min(POLL_INTERVAL, max(POLL_MIN_INTERVAL,
                                          clock.to_trio_seconds(POLL_MAX_SIM_SECONDS)))
        minute = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        boundary = clock.trio_time_at(minute) + 0.001
        if 0.1 <= boundary - t <= interval:
            return boundary
        return t + interval

    # -- orders -----------------------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        if self.gw.config.read_only:
            return True
        if self._read_only_latched is None:
            self._read_only_latched = not self._order_requests_seen
            if self._read_only_latched:
                log.info("%s: no open/completed-orders request at startup: treated as a "
                         "read-only (readonly=True) session", self.label)
        return self._read_only_latched

    def _reject_read_only(self, order_id: int) -> None:
        self.error(order_id, 321, "Error validating request.-'bN' : cause - The API interface "
                                  "is currently in Read-Only mode.")

    def _place_order(self, fields: list[str]) -> None:
        query, ticket = parse_place_order(fields, self.server_version)
        assert self.client_id is not None
        read_only = self.read_only
        self.gw.log_order(self.client_id, query, ticket,
                          rejected="read-only" if read_only else None)
        if read_only:
            self._reject_read_only(ticket.order_id)
            return
        spec = self._resolve_one(ticket.order_id, query)
        if spec is None:
            return
        self.gw.place_order(self.client_id, spec, ticket)

    def _cancel_order(self, fields: list[str]) -> None:
        order_id = FieldReader(fields, 2).integer()
        if self.read_only:
            self._reject_read_only(order_id)
            return
        assert self.client_id is not None
        self.gw.cancel_order(self.client_id, order_id)

    def _req_global_cancel(self, fields: list[str]) -> None:
        if self.read_only:
            self._reject_read_only(-1)
            return
        self.gw.global_cancel()

    def _req_ids(self, fields: list[str]) -> None:
        assert self.client_id is not None
        self.send(out.next_valid_id(self.gw.broker.next_order_id(self.client_id)))

    def _send_open_orders(self, client_id: int | None) -> None:
        sv = self.server_version
        msgs: list[bytes] = []
        for o in self.gw.broker.open_orders(client_id):
            msgs += [out.open_order(sv, o), out.order_status(o)]
        msgs.append(out.open_order_end())
        self.send_all(msgs)

    def _req_open_orders(self, fields: list[str]) -> None:
        self._order_requests_seen = True
        self._send_open_orders(self.client_id if self.client_id != 0 else None)

    def _req_all_open_orders(self, fields: list[str]) -> None:
        self._order_requests_seen = True
        self._send_open_orders(None)

    def _req_auto_open_orders(self, fields: list[str]) -> None:
        self._order_requests_seen = True

    def _req_completed_orders(self, fields: list[str]) -> None:
        self._order_requests_seen = True
        since = self.gw.day_start()
        sv = self.server_version
        msgs = [out.completed_order(sv, o) for o in self.gw.broker.completed_orders(since)]
        self.send_all([*msgs, out.completed_orders_end()])

    def _req_executions(self, fields: list[str]) -> None:
        _ = self.read_only                          # latch the read-only decision now
        r = FieldReader(fields, 2)
        req_id = r.integer()
        client_filter = r.integer() if r.remaining() else 0
        account = r.text_or("")
        time_text = r.text_or("")
        symbol = r.text_or("").upper()
        sec_type = r.text_or("").upper()
        exchange = r.text_or("").upper()
        side = r.text_or("").upper()
        since = self.gw.day_start()
        if time_text.strip():
            try:
                since = max(since, parse_end(time_text, self.gw.clock.now_utc()))
            except HistoryRequestError:
                pass
        sv = self.server_version
        msgs: list[bytes] = []
        for f in self.gw.broker.fills_since(since):
            if client_filter and f.client_id != client_filter:
                continue
            if (account and f.account != account) or (symbol and f.spec.symbol != symbol) or \
                    (sec_type and f.spec.sec_type != sec_type) or \
                    (exchange and f.exchange != exchange and exchange != "SMART") or \
                    (side and _EXEC_SIDES.get(side, side) != f.side):
                continue
            msgs += [out.exec_details(sv, req_id, f), out.commission_report(f)]
        msgs.append(out.exec_details_end(req_id))
        self.send_all(msgs)

    # -- account ----------------------------------------------------------------------------
    def _req_positions(self, fields: list[str]) -> None:
        self.positions_subscribed = True
        account = self.gw.config.account
        msgs = [out.position(account, p.spec, p.quantity, p.avg_cost)
                for p in self.gw.broker.open_positions()]
        self.send_all([*msgs, out.position_end()])

    def _cancel_positions(self, fields: list[str]) -> None:
        self.positions_subscribed = False

    def _req_positions_multi(self, fields: list[str]) -> None:
        r = FieldReader(fields, 2)
        req_id = r.integer()
        account = self.gw.config.account
        msgs = [out.position_multi(req_id, account, p.spec, p.quantity, p.avg_cost)
                for p in self.gw.broker.open_positions()]
        self.send_all([*msgs, out.position_multi_end(req_id)])

    def _cancel_positions_multi(self, fields: list[str]) -> None:
        return

    def _req_account_updates(self, fields: list[str]) -> None:
        r = FieldReader(fields, 2)
        subscribe = r.flag()
        self.account_updates = subscribe
        if subscribe:
            self.send_all(self.account_snapshot())

    def account_snapshot(self) -> list[bytes]:
        """updateAccountValue rows, the portfolio, the account time and the download end."""
        gw = self.gw
        now = gw.clock.now_utc()
        account = gw.config.account
        msgs = [out.update_account_value(k, v, c, account)
                for k, v, c in account_value_rows(gw.broker, account, now)]
        for p in gw.broker.open_positions():
            mark = gw.broker.mark(p.spec, now)
            value = p.quantity * mark * p.spec.price_multiplier
            msgs.append(out.update_portfolio(p.spec, p.quantity, mark, value, p.avg_cost,
                                             value - p.quantity * p.avg_cost, p.realized,
                                             account))
        msgs.append(out.update_account_time(f"{now.astimezone(ET):%H:%M}"))
        msgs.append(out.account_download_end(account))
        return msgs

    def _req_account_updates_multi(self, fields: list[str]) -> None:
        r = FieldReader(fields, 2)
        req_id = r.integer()
        account = self.gw.config.account
        now = self.gw.clock.now_utc()
        msgs = [out.account_update_multi(req_id, account, "", k, v, c)
                for k, v, c in account_value_rows(self.gw.broker, account, now)]
        self.account_multi.add(req_id)
        self.send_all([*msgs, out.account_update_multi_end(req_id)])

    def _cancel_account_updates_multi(self, fields: list[str]) -> None:
        self.account_multi.discard(FieldReader(fields, 2).integer())

    def _req_account_summary(self, fields: list[str]) -> None:
        r = FieldReader(fields, 2)
        req_id = r.integer()
        r.text()                                         # group name ("All")
        tags = [t.strip() for t in r.text_or("").split(",") if t.strip()]
        account = self.gw.config.account
        now = self.gw.clock.now_utc()
        msgs = [out.account_summary(req_id, account, tag, value, currency)
                for tag, value, currency in account_summary_rows(self.gw.broker, tags, now)]
        self.account_summaries.add(req_id)
        self.send_all([*msgs, out.account_summary_end(req_id)])

    def _cancel_account_summary(self, fields: list[str]) -> None:
        self.account_summaries.discard(FieldReader(fields, 2).integer())

    def _req_managed_accounts(self, fields: list[str]) -> None:
        self.send(out.managed_accounts([self.gw.config.account]))


def _guess_req_id(fields: list[str]) -> int:
    """The request id of a malformed request, for the 320 answer (−1 if unknowable)."""
    for index in (2, 1):
        if len(fields) > index:
            try:
                return int(fields[index])
            except ValueError:
                continue
    return -1
