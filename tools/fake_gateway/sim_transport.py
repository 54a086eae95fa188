"""The simulator without sockets or ib_async: a link Transport for MockClock simulations.

`tools.fake_gateway` over TCP is what the bot's integration tests, the demo and the soak use:
real ib_async, real sockets, real time. It cannot run on trio's MockClock (ib_async lives on an
asyncio thread in real time). This transport serves GatewayLink's requests straight from the
same `Market` (the same prices, the same option chains) inside the trio program, so the whole
actor tree can live through five trading days of Gateway restarts, drops, hangs, a 326 and
farm blips in seconds of wall time, with the same GatewayLink, BarFeed and brain code.

Faults mirror the simulator's control commands: `drop`, `restart(seconds)`, `hang`/`unhang`,
`send_error(code)` (1101 also silently kills the streams, like IB), `farm_blip` (2103 then
2104, after which existing streams stay dead: the case BarFeed must resubscribe), and
`clientid_in_use(n)` (the next n connects get 326).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from config.market_calendar import ET, Session
from messages.base import Message
from messages.link import (
    BarUpdate,
    CurrentTime,
    GatewayNotice,
    OptionChain,
    OptionChainRequest,
    SubscribeBars,
    SubscribeQuote,
)
from messages.market import Quote
from runtime.gateway.ib_codes import classify
from runtime.gateway.link_transport import (
    ConnectFailed,
    RequestRejected,
    SessionBase,
    SessionInfo,
    SessionParams,
    Subscriptions,
)
from runtime.infra.clock import Clock
from tools.fake_gateway.contracts import UNDERLYINGS, chain_strikes, option_contract
from tools.fake_gateway.market import Market

BAR = dt.timedelta(minutes=1)
CONNECT_TIMEOUT = 5.0         # what a hung Gateway costs a connect attempt (trio seconds)
QUOTE_EVERY = dt.timedelta(seconds=5)
SERVER_VERSION = 178

SimHandler = Callable[["SimSession", Any, "trio.MemorySendChannel[Message] | None",
                       Subscriptions], Awaitable[tuple[Any, int | None]]]


@dataclass(eq=False)
class _Stream:
    """One streaming subscription; `dead` streams stay subscribed but never speak again."""

    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    dead: bool = False


class SimGateway:
    """The Gateway's state shared by all in-process sessions: market, clock, faults."""

    def __init__(self, market: Market, clock: Clock, *, account: str = "DU1234567") -> None:
        self.market = market
        self.clock = clock
        self.account = account
        self.sessions: set[SimSession] = set()
        self.handlers: dict[type[Message], SimHandler] = dict(MARKET_HANDLERS)
        self.down_until = -1.0           # trio time until which the port refuses
        self.hung = False
        self.unhung = trio.Event()
        self.unhung.set()
        self.clientid_in_use_next = 0
        self.connects = 0
        self.faults: list[str] = []
        self.known_symbols: frozenset[str] | None = None   # None: every simulated symbol
        self.rejections: dict[str | None, int] = {}       # symbol (None: any) -> error code

    @property
    def accepting(self) -> bool:
        return trio.current_time() >= self.down_until

    # -- faults ---------------------------------------------------------------------------
    def drop(self) -> None:
        self.faults.append("drop")
        for s in list(self.sessions):
            s.mark_lost("the Gateway closed the connection")

    def restart(self, seconds: float) -> None:
        """Drop everyone and refuse connections for `seconds` (trio seconds)."""
        self.faults.append(f"restart {seconds:g}")
        self.down_until = trio.current_time() + seconds
        self.drop()

    def hang(self) -> None:
        self.faults.append("hang")
        self.hung = True
        self.unhung = trio.Event()

    def unhang(self) -> None:
        self.hung = False
        self.unhung.set()

    def clientid_in_use(self, connects: int = 1) -> None:
        self.faults.append(f"clientid-in-use x{connects}")
        self.clientid_in_use_next = connects

    def send_error(self, code: int, text: str | None = None) -> None:
        self.faults.append(f"error {code}")
        for s in list(self.sessions):
            if code == 1101:          # data lost: every existing stream falls silent
                s.kill_streams()
            s.push_notice(code, text or _TEXTS.get(code, f"code {code}"))

    def refusal(self, symbol: str) -> SimRequestError | None:
        """How a data request for `symbol` is refused (200 unknown, or a `rejections` code)."""
        if self.known_symbols is not None and symbol not in self.known_symbols:
            return SimRequestError(200, "No security definition has been found for the request")
        code = self.rejections.get(symbol, self.rejections.get(None))
        if code is None:
            return None
        return SimRequestError(code, _TEXTS.get(code, f"simulated error {code}"))

    def farm_blip(self) -> None:
        """2103 then 2104; the streams that were open stay dead (IB's silent failure)."""
        self.faults.append("farm blip")
        for s in list(self.sessions):
            s.kill_streams()
            s.push_notice(2103, _TEXTS[2103])
            s.push_notice(2104, _TEXTS[2104])


_TEXTS = {
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and TWS has been restored- data lost.",
    1102: "Connectivity between IB and TWS has been restored- data maintained.",
    2103: "Market data farm connection is broken:usfarm",
    2104: "Market data farm connection is OK:usfarm",
    2105: "HMDS data farm connection is broken:ushmds",
    2106: "HMDS data farm connection is OK:ushmds",
    10197: "No market data during competing live session",
    162: "Historical Market Data Service error message:Historical data request pacing "
         "violation",
    354: "Requested market data is not subscribed.",
}


class SimRequestError(RuntimeError):
    """A request the simulated Gateway answered with an error code (like ib_async's
    RequestError with RaiseRequestErrors on); the code also goes out as a notice."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"API error: {code}: {text}")
        self.code = code
        self.text = text


@dataclass(frozen=True)
class SimTransport:
    gateway: SimGateway
    # virtual time is cheap to wait in but each probe costs real CPU: probe less often; the
    # simulated hang is still caught well within a minute of simulated time
    liveness_interval: float = 20.0
    liveness_deadline: float = 10.0

    async def port_open(self) -> bool:
        await trio.lowlevel.checkpoint()
        return self.gateway.accepting

    @contextlib.asynccontextmanager
    async def open_session(self, params: SessionParams) -> AsyncIterator[SimSession]:
        gw = self.gateway
        await trio.lowlevel.checkpoint()
        if not gw.accepting:
            raise ConnectFailed("refused", "Connect call failed (simulated)")
        if gw.hung:
            await trio.sleep(CONNECT_TIMEOUT)
            raise ConnectFailed("timeout", f"no answer to the API handshake within "
                                f"{CONNECT_TIMEOUT:g}s", handshake_done=False)
        if gw.clientid_in_use_next > 0:
            gw.clientid_in_use_next -= 1
            raise ConnectFailed("client_id_in_use", f"client id {params.client_id} in use (326)")
        gw.connects += 1
        info = SessionInfo(session_id=params.session_id, client_id=params.client_id,
                           accounts=(gw.account,), server_version=SERVER_VERSION,
                           readonly=params.readonly, connect_ms=1.0)
        session = SimSession(info=info, clock=params.clock, journal=params.journal,
                             actor=params.actor, breakers=params.breakers, gateway=gw,
                             on_notice=params.events.on_notice)
        async with trio.open_nursery() as nursery:
            session.nursery = nursery
            gw.sessions.add(session)
            try:
                yield session
            finally:
                session.closing = True
                gw.sessions.discard(session)
                nursery.cancel_scope.cancel()


@dataclass(eq=False)
class SimSession(SessionBase):
    gateway: SimGateway = field(kw_only=True)
    on_notice: Callable[[GatewayNotice], None] = field(kw_only=True)
    nursery: trio.Nursery | None = None
    streams: dict[int, _Stream] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def handle(self, request: Message, stream: trio.MemorySendChannel[Message] | None,
                     subs: Subscriptions) -> tuple[Any, int | None]:
        await self.gateway.unhung.wait()
        handler = self.gateway.handlers.get(type(request))
        if handler is None:
            raise ValueError(f"unsupported request {type(request).__name__}")
        return await handler(self, request, stream, subs)

    def cancel(self, cancel: Callable[[], None]) -> None:
        cancel()

    async def probe(self) -> None:
        await self.gateway.unhung.wait()
        await trio.lowlevel.checkpoint()

    async def gateway_time(self) -> dt.datetime:
        await self.gateway.unhung.wait()
        return self.gateway.clock.now_utc()

    def push_notice(self, code: int, text: str) -> None:
        self.on_notice(GatewayNotice(session_id=self.session_id, code=code, text=text,
                                     kind=classify(code, text), request_id=-1,
                                     ts=self.clock.now_utc()))

    def kill_streams(self) -> None:
        for s in self.streams.values():
            s.dead = True

    def start_stream(self, subs: Subscriptions,
                     body: Callable[[_Stream], Awaitable[None]]) -> int:
        """Run `body` in the session until cancelled; returns the subscription id."""
        assert self.nursery is not None
        sub_id = next(self._ids)
        st = _Stream()
        self.streams[sub_id] = st

        async def run() -> None:
            with st.scope:
                await body(st)

        def cancel() -> None:
            st.scope.cancel()
            self.streams.pop(sub_id, None)

        subs[sub_id] = cancel
        self.nursery.start_soon(run)
        return sub_id


# -- market data ------------------------------------------------------------------------------


def _bar_start(t: dt.datetime, session: Session) -> dt.datetime:
    return session.open + BAR * int((t - session.open) // BAR)


def bars_between(market: Market, symbol: str, start: dt.datetime, now: dt.datetime,
                 session_id: int) -> list[BarUpdate]:
    """Every RTH 1-minute bar starting in [start, now), the last one possibly still forming."""
    series = market.series(symbol)
    cal = market.calendar
    out: list[BarUpdate] = []
    first_day = start.astimezone(ET).date()
    for session in cal.sessions(first_day, now.astimezone(ET).date()):
        if session.open >= now:
            break
        day = series.day(session)
        for m in range(day.minutes):
            ts = session.open + BAR * m
            if ts < start:
                continue
            if ts >= now:
                break
            if ts + BAR <= now:
                o, h, lo, c, v = day.o[m], day.h[m], day.low[m], day.c[m], day.v[m]
            else:
                part = series.aggregate(session, ts, now)
                if part is None:
                    break
                o, h, lo, c, v = part.open, part.high, part.low, part.close, part.volume
            out.append(BarUpdate(symbol=symbol, ts=ts, open=o, high=h, low=lo, close=c,
                                 volume=v, session_id=session_id))
    return out


async def subscribe_bars(session: SimSession, req: SubscribeBars,
                         stream: trio.MemorySendChannel[Message] | None,
                         subs: Subscriptions) -> tuple[list[BarUpdate], int | None]:
    if stream is None:
        raise RequestRejected("SubscribeBars needs a stream")
    market, clock = session.gateway.market, session.gateway.clock
    refusal = session.gateway.refusal(req.symbol)
    if refusal is not None:
        session.push_notice(refusal.code, refusal.text)
        raise refusal

    async def history() -> list[BarUpdate]:
        await trio.lowlevel.checkpoint()
        now = clock.now_utc()
        return bars_between(market, req.symbol, now - dt.timedelta(seconds=req.lookback_s),
                            now, session.session_id)

    initial = await session.request("historical", history, timeout=60)
    if not initial:
        raise RequestRejected(f"no historical bars for {req.symbol}")

    async def stream_updates(st: _Stream) -> None:
        cal = market.calendar
        series = market.series(req.symbol)
        while True:
            now = clock.now_utc()
            current = cal.session_at(now)
            if current is None:
                await clock.sleep_until(cal.next_session_after(now).open + dt.timedelta(
                    seconds=1))
                continue
            boundary = _bar_start(now, current) + BAR
            await clock.sleep_until(min(boundary, current.close) + dt.timedelta(seconds=1))
            if st.dead:
                continue
            done = boundary - BAR
            day = series.day(current)
            m = int((done - current.open) // BAR)
            if 0 <= m < day.minutes:
                _send(stream, BarUpdate(symbol=req.symbol, ts=done, open=day.o[m],
                                        high=day.h[m], low=day.low[m], close=day.c[m],
                                        volume=day.v[m], session_id=session.session_id))
            now = clock.now_utc()
            if cal.session_at(now) is current:
                part = series.aggregate(current, boundary, now)
                if part is not None:
                    _send(stream, BarUpdate(symbol=req.symbol, ts=boundary, open=part.open,
                                            high=part.high, low=part.low, close=part.close,
                                            volume=part.volume,
                                            session_id=session.session_id))

    return initial, session.start_stream(subs, stream_updates)


def _send(stream: trio.MemorySendChannel[Message], msg: Message) -> None:
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError,
                             trio.WouldBlock):
        stream.send_nowait(msg)


async def subscribe_quote(session: SimSession, req: SubscribeQuote,
                          stream: trio.MemorySendChannel[Message] | None,
                          subs: Subscriptions) -> tuple[None, int | None]:
    if stream is None:
        raise RequestRejected("SubscribeQuote needs a stream")
    if req.sec_type != "OPT" or req.expiry is None or req.strike is None or req.right is None:
        raise RequestRejected("only option quotes are simulated in-process")
    refusal = session.gateway.refusal(req.symbol)    # 200 unknown, or a `rejections` code
    if refusal is not None:
        session.push_notice(refusal.code, refusal.text)
        raise refusal
    und = UNDERLYINGS.get(req.symbol)
    if und is None:
        raise RequestRejected(f"no such underlying {req.symbol}")
    spec = option_contract(und, dt.datetime.strptime(req.expiry, "%Y%m%d").date(), req.strike,
                           req.right)
    market, clock = session.gateway.market, session.gateway.clock

    async def quotes(st: _Stream) -> None:
        while True:
            if not st.dead:
                q = market.option_quote(spec, clock.now_utc())
                _send(stream, Quote(key=req.key, ts=clock.now_utc(), bid=q.market.bid,
                                    ask=q.market.ask, last=q.last, bid_size=q.bid_size,
                                    ask_size=q.ask_size, volume=q.volume, delta=q.model.delta,
                                    implied_vol=q.vol,
                                    open_interest=market.option_open_interest(
                                        spec, clock.now_utc()),
                                    session_id=session.session_id))
            await clock.sleep_market(QUOTE_EVERY.total_seconds())

    return None, session.start_stream(subs, quotes)


async def option_chain(session: SimSession, req: OptionChainRequest,
                       stream: trio.MemorySendChannel[Message] | None,
                       subs: Subscriptions) -> tuple[OptionChain, None]:
    und = UNDERLYINGS.get(req.underlying)
    if und is None or not und.has_options:
        raise RequestRejected(f"no option chain for {req.underlying}")
    market, clock = session.gateway.market, session.gateway.clock
    now = clock.now_utc()
    expiries = market.options.listed_expiries(und, now.astimezone(ET).date())
    strikes = chain_strikes(market.price(req.underlying, now))
    return OptionChain(underlying=req.underlying,
                       expirations=tuple(e.strftime("%Y%m%d") for e in sorted(expiries)),
                       strikes=tuple(sorted(strikes)), multiplier=100,
                       trading_class=req.underlying, session_id=session.session_id), None


async def current_time(session: SimSession, req: CurrentTime,
                       stream: trio.MemorySendChannel[Message] | None,
                       subs: Subscriptions) -> tuple[dt.datetime, None]:
    await trio.lowlevel.checkpoint()
    return session.gateway.clock.now_utc(), None


MARKET_HANDLERS: dict[type[Message], SimHandler] = {
    SubscribeBars: subscribe_bars,
    SubscribeQuote: subscribe_quote,
    OptionChainRequest: option_chain,
    CurrentTime: current_time,
}
