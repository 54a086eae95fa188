"""GatewayLink's market-data requests: bars (keepUpToDate), quotes, option chains, time.

Each handler gets the live session, the request message and (for subscriptions) the stream to
push immutable messages into. ib_async event handlers run on the loop thread; they only build a
message and hand it to trio (`aio.to_trio`), never touching trio state themselves.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from messages.base import Message
from messages.link import (
    BarUpdate,
    CurrentTime,
    OptionChain,
    OptionChainRequest,
    SubscribeBars,
    SubscribeQuote,
)
from messages.market import Quote
from runtime.gateway.link_transport import RequestRejected, Subscriptions

if TYPE_CHECKING:
    from runtime.gateway.ib_transport import IbAsyncSession as IbSession

FORMING_EVERY_MARKET_S = 2.0
"""A bar still forming reaches trio on a grid this fine (market seconds; the latest version)..."""
FORMING_EVERY_MAX_S = 2.0
"""...and never coarser than this in real seconds."""

QUALIFY_TIMEOUT = 15.0
HISTORY_TIMEOUT = 60.0
CHAIN_TIMEOUT = 20.0
TIME_TIMEOUT = 5.0

Handler = Callable[["IbSession", Any, "trio.MemorySendChannel[Message] | None", Subscriptions],
                   Awaitable[tuple[Any, int | None]]]

_next_sub = iter(range(1, 1 << 62))


def ib_duration(seconds: int) -> str:
    """IB's durationStr covering `seconds` (S up to a day, then whole days)."""
    seconds = max(60, int(seconds))
    if seconds <= 86_400:
        return f"{seconds} S"
    return f"{math.ceil(seconds / 86_400)} D"


def _contract(sec_type: str, symbol: str, *, expiry: str | None = None,
              strike: float | None = None, right: str | None = None) -> Any:
    from ib_async import Index, Option, Stock

    if sec_type == "IND":
        return Index(symbol, "CBOE", "USD")
    if sec_type == "OPT":
        return Option(symbol, expiry or "", strike or 0.0, right or "", "SMART", currency="USD")
    return Stock(symbol, "SMART", "USD")


async def _qualify(session: IbSession, contract: Any) -> Any:
    ib = session.ib
    result = await session.ib_request("qualify", lambda: ib.qualifyContractsAsync(contract),
                                   timeout=QUALIFY_TIMEOUT)
    if not result or result[0] is None or not getattr(result[0], "conId", 0):
        raise RequestRejected(f"no such contract: {contract!r}", 200)
    return result[0]


def _utc(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    raise RequestRejected(f"bar without an intraday timestamp: {value!r}")


def _bar_update(symbol: str, bar: Any, session_id: int) -> BarUpdate:
    return BarUpdate.model_construct(
        symbol=symbol, ts=_utc(bar.date), open=float(bar.open), high=float(bar.high),
        low=float(bar.low), close=float(bar.close), volume=max(0.0, float(bar.volume or 0)),
        session_id=session_id)


def _push(session: IbSession, stream: trio.MemorySendChannel[Message], msg: Message) -> None:
    """On the loop thread: deliver into trio; a closed stream is simply dropped."""

    def deliver() -> None:
        try:
            stream.send_nowait(msg)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass     # the subscriber went away; its cancel request follows

    session.aio.to_trio(deliver)


async def subscribe_bars(session: IbSession, req: SubscribeBars,
                         stream: trio.MemorySendChannel[Message] | None,
                         subs: Subscriptions) -> tuple[list[BarUpdate], int | None]:
    if stream is None:
        raise RequestRejected("SubscribeBars needs a stream")
    ib = session.ib
    contract = await _qualify(session, _contract(req.sec_type, req.symbol))
    bar_size = "1 min" if req.bar_seconds == 60 else f"{req.bar_seconds} secs"
    what = "TRADES"
    bars = await session.ib_request(
        "historical",
        lambda: ib.reqHistoricalDataAsync(contract, "", ib_duration(req.lookback_s), bar_size,
                                          what, req.use_rth, 2, True,
                                          timeout=HISTORY_TIMEOUT - 5),
        timeout=HISTORY_TIMEOUT)
    if not bars:
        raise RequestRejected(f"no historical bars for {req.symbol} (IB ignores keepUpToDate "
                              "after an empty answer; will retry)")
    sid = session.session_id
    initial = [_bar_update(req.symbol, b, sid) for b in bars]
    every = min(FORMING_EVERY_MAX_S, session.clock.to_trio_seconds(FORMING_EVERY_MARKET_S))

    await session.aio.call(follow_forming, bars, session, stream, req.symbol, every)
    sub_id = next(_next_sub)
    subs[sub_id] = lambda: ib.cancelHistoricalData(bars)
    return initial, sub_id


def follow_forming(bars: Any, session: IbSession, stream: trio.MemorySendChannel[Message],
                   symbol: str, every: float) -> None:
    """On the loop thread: hand a keepUpToDate bar list's updates to `stream` (`_FormingBar`)."""
    forming = _FormingBar(session, stream, symbol, every)
    # keep_ref: eventkit holds a bound method only weakly, and nothing else holds `forming`
    bars.updateEvent.connect(forming.on_update, keep_ref=True)


@dataclass(eq=False)
class _FormingBar:
    """On the loop thread: one keepUpToDate subscription's updates, handed to trio sparingly.

    The Gateway (and the simulator, several times a wall second) re-sends the bar still
    forming whenever it changes, but BarFeed only ever uses the last version of a bar: it
    publishes a bar once complete. So a new bar (which completes the previous one) goes to
    trio at once, and the forming bar's later versions wait for the next tick of an `every`
    grid on the loop's clock, the latest version only, far inside BarFeed's completion grace
    (10 market seconds, at least 1 s). Every subscription uses the same grid, so the symbols'
    versions leave in the same turn of the loop: one trio wake-up for all of them. What
    BarFeed publishes is unchanged; trio wakes a few times less.
    """

    session: IbSession
    stream: trio.MemorySendChannel[Message]
    symbol: str
    every: float
    latest: Any = None                      # the newest version not handed over yet
    timer: asyncio.TimerHandle | None = None

    def on_update(self, data: Any, has_new_bar: bool) -> None:
        if not data:
            return
        if has_new_bar:
            self._cancel_timer()
            self.latest = None
            if len(data) >= 2:
                self._hand(data[-2])        # the completed bar, in its final version
            self._hand(data[-1])            # the new bar: BarFeed starts its deadline
            return
        self.latest = data[-1]
        if self.timer is None:
            loop = self.session.aio.loop
            tick = (math.floor(loop.time() / self.every) + 1) * self.every
            self.timer = loop.call_at(tick, self._hand_latest)

    def _hand_latest(self) -> None:
        self.timer = None
        if self.latest is not None:
            bar, self.latest = self.latest, None
            self._hand(bar)

    def _hand(self, bar: Any) -> None:
        _push(self.session, self.stream, _bar_update(self.symbol, bar, self.session.session_id))

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def _num(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and x != -1.0 else None


async def subscribe_quote(session: IbSession, req: SubscribeQuote,
                          stream: trio.MemorySendChannel[Message] | None,
                          subs: Subscriptions) -> tuple[Quote | None, int | None]:
    if stream is None:
        raise RequestRejected("SubscribeQuote needs a stream")
    ib = session.ib
    contract = await _qualify(session, _contract(req.sec_type, req.symbol, expiry=req.expiry,
                                                 strike=req.strike, right=req.right))
    sid = session.session_id
    clock = session.clock

    oi_field = "putOpenInterest" if req.right == "P" else "callOpenInterest"

    def to_quote(t: Any) -> Quote:
        greeks = getattr(t, "modelGreeks", None)
        return Quote.model_construct(
            key=req.key, ts=clock.now_utc_any_thread(), bid=_num(t.bid), ask=_num(t.ask),
            last=_num(t.last), bid_size=_num(t.bidSize), ask_size=_num(t.askSize),
            volume=_num(t.volume), open_interest=_num(getattr(t, oi_field, None)),
            delta=_num(greeks.delta) if greeks else None,
            implied_vol=_num(greeks.impliedVol) if greeks else None, session_id=sid)

    def start() -> None:
        # generic tick 101: an option's open interest (ticks 27/28), for the liquidity gate
        ticker = ib.reqMktData(contract, "101" if req.sec_type == "OPT" else "", False, False)
        ticker.updateEvent += lambda t: _push(session, stream, to_quote(t))

    await session.aio.call(start)
    sub_id = next(_next_sub)
    subs[sub_id] = lambda: ib.cancelMktData(contract)
    return None, sub_id


async def option_chain(session: IbSession, req: OptionChainRequest,
                       stream: trio.MemorySendChannel[Message] | None,
                       subs: Subscriptions) -> tuple[OptionChain, None]:
    ib = session.ib
    underlying = await _qualify(session, _contract("STK", req.underlying))
    chains = await session.ib_request(
        "option_chain",
        lambda: ib.reqSecDefOptParamsAsync(req.underlying, "", "STK", underlying.conId),
        timeout=CHAIN_TIMEOUT)
    picked = [c for c in chains or () if c.exchange == "SMART" and
              c.tradingClass == req.underlying] or list(chains or ())
    if not picked:
        raise RequestRejected(f"no option chain for {req.underlying}")
    chain = picked[0]
    return OptionChain(underlying=req.underlying, expirations=tuple(sorted(chain.expirations)),
                       strikes=tuple(sorted(float(s) for s in chain.strikes)),
                       multiplier=int(chain.multiplier or 100),
                       trading_class=chain.tradingClass or None,
                       session_id=session.session_id), None


async def current_time(session: IbSession, req: CurrentTime,
                       stream: trio.MemorySendChannel[Message] | None,
                       subs: Subscriptions) -> tuple[dt.datetime, None]:
    ib = session.ib
    value = await session.ib_request("current_time", ib.reqCurrentTimeAsync, timeout=TIME_TIMEOUT)
    return _utc(value), None


HANDLERS: dict[type[Message], Handler] = {
    SubscribeBars: subscribe_bars,
    SubscribeQuote: subscribe_quote,
    OptionChainRequest: option_chain,
    CurrentTime: current_time,
}
