"""BarFeed: 1-minute bars delivered exactly once and in order, across any number of sessions.

On every new Gateway session it subscribes each symbol with keepUpToDate, asking for enough
history to reach back to the last bar it delivered (the backfill), and delivers completed bars
newer than that cursor. The cursor and the wish list live in `Memory`, outside the link
subtree, so a Gateway restart changes nothing downstream but a `source="backfill"` on the bars
it missed. A hole the Gateway cannot fill is marked with a `BarGap`, never papered over.

A stream can die silently (2103 without 2104, a keepUpToDate that just stops): during market
hours a stream quiet for three bars is resubscribed. What a failed subscription means comes
from `runtime.gateway.error_policy`: a symbol IB refuses for good (200 unknown, 354 not
subscribed, ...) is disabled alone and tried again half an hour later (outside a session: at
the next open), never in a loop; only
requests the Gateway does not answer at all bring the link subtree down. Option quotes are
subscribed only while somebody wants them, so market data lines never pile up.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import trio

from config.market_calendar import ET, CalendarRangeError, MarketCalendar, get_calendar
from messages.link import (
    BarUpdate,
    FeedSymbols,
    GatewayNotice,
    LinkState,
    LinkStatus,
    SecType,
    SubscribeBars,
    SubscribeQuote,
)
from messages.market import Bar, BarGap, BarSource, OptionSpec, Quote, VixReading
from runtime.gateway import error_policy
from runtime.gateway.link_client import (
    Envelope,
    LinkClient,
    LinkUnavailable,
    RequestFailed,
    RequestPaused,
    RequestTimeout,
)
from runtime.gateway.restart_storm import RestartLedger
from runtime.gateway.symbol_gate import SymbolGate
from runtime.supervision.actor import ActorContext
from runtime.supervision.channels import Latest
from runtime.supervision.supervisor import OperationalFailure
from runtime.supervision.tree import Gauge

# -- inbox and outbox -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Inbox:
    link_state: Latest[LinkState]
    notices: trio.MemoryReceiveChannel[GatewayNotice]
    wanted_quotes: Latest[frozenset[OptionSpec]]


@dataclass(frozen=True)
class Outbox:
    bars: trio.MemorySendChannel[Bar | BarGap]
    link_requests: trio.MemorySendChannel[Envelope]
    vix: Latest[VixReading | None]
    last_bar: Latest[dt.datetime | None]
    quotes: Latest[Mapping[str, Quote]]
    symbols: Latest[FeedSymbols]                      # the symbols without data, and why


QUOTE_LINES_OPEN = Gauge("quote_lines_open", "option quote streams open now (IB market data lines)")

# -- state that outlives the link subtree ---------------------------------------------------------


@dataclass
class Memory:
    symbols: tuple[str, ...] = ("SPY", "QQQ", "IWM")
    vix_symbol: str = "VIX"
    warmup_sessions: int = 2      # history asked for on the first session (>= 145 bars needed)
    cursors: dict[str, dt.datetime] = field(default_factory=dict)   # start of last bar delivered
    gate: SymbolGate = field(default_factory=SymbolGate)   # symbols IB refused, for now
    restarts: RestartLedger = field(default_factory=RestartLedger)   # shared with GatewayLink
    delivered: int = 0
    gaps: int = 0


BAR = dt.timedelta(minutes=1)
COMPLETE_GRACE = dt.timedelta(seconds=10)  # market time after a bar's end before we close it
COMPLETE_GRACE_MIN_S = 1.0                 # ...and never less than this in real seconds
STALE_AFTER = 3 * BAR                      # quiet this long in market hours: resubscribe
STALE_AFTER_MIN_S = 15.0                   # ...and never less than this in real seconds
# The Gateway pushes keepUpToDate updates on its own wall-clock cadence (every few seconds),
# not per simulated minute: on an accelerated clock a market-time deadline alone would close
# bars before their final update and call healthy streams stale.
RESUBSCRIBE_LIMIT = 3                      # unanswered subscriptions in a row before escalating
TRANSIENT_DELAY_MAX = 300.0                # the longest pause between transient failures
COMPETING_RETRY_MAX = 300.0                # polling while a competing session holds the data
RETRY_DELAY = 2.0                          # trio seconds between failed subscriptions
PACING_DELAY_MAX = 120.0                   # the longest wait after IB's pacing answers
MAX_QUOTE_LINES = 10                       # option quotes at most (IB market data lines)


class FeedStalled(OperationalFailure):
    """Subscriptions go unanswered: restart the link subtree for a clean session."""


@dataclass(eq=False)
class _Stream:
    symbol: str
    sec_type: SecType
    scope: trio.CancelScope | None = None
    failures: int = 0        # unanswered subscriptions in a row (escalate at the limit)
    refusals: int = 0        # transient refusals in a row (a growing pause, never escalate)
    pacing_waits: int = 0
    resubscribes: int = 0

    def resubscribe(self) -> None:
        if self.scope is not None:
            self.scope.cancel("resubscribe")


# -- the loop -------------------------------------------------------------------------------------


async def run(ctx: ActorContext, inbox: Inbox, outbox: Outbox, memory: Memory, *,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    task_status.started()
    state = await inbox.link_state.wait_value(lambda s: s.status is LinkStatus.UP)
    ctx.set_note(f"subscribing (session {state.session_id})")
    client = LinkClient(outbox.link_requests, inbox.link_state)
    streams = [_Stream(s, "STK") for s in memory.symbols]
    streams.append(_Stream(memory.vix_symbol, "IND"))
    async with trio.open_nursery() as nursery:
        for stream in streams:
            nursery.start_soon(_keep_subscribed, ctx, client, stream, outbox, memory)
        quote_lines = _QuoteLines()
        nursery.start_soon(_watch_notices, ctx, inbox, streams, quote_lines)
        nursery.start_soon(_sync_quotes, ctx, client, inbox, outbox, quote_lines)
        nursery.start_soon(_watch_quotes, ctx, quote_lines)


async def _keep_subscribed(ctx: ActorContext, client: LinkClient, stream: _Stream,
                           outbox: Outbox, memory: Memory) -> None:
    """Subscribe, stream, and subscribe again whenever asked to or when it fails.

    What a failure means comes from the error policy: a permanent per-symbol code disables this
    symbol only (the others keep streaming, the link stays up); pacing and a competing session
    make it wait; anything else per-request is retried with a growing pause. Only a request the
    Gateway never answers (a wedged session) escalates to a link restart.
    """
    while True:
        await _wait_while_disabled(ctx, stream, memory)
        with trio.CancelScope() as scope:
            stream.scope = scope
            try:
                await _stream_bars(ctx, client, stream, outbox, memory)
            except LinkUnavailable:
                await trio.sleep_forever()       # the link subtree is restarting around us
            except RequestPaused as exc:
                # the breaker holds history requests back: wait it out, never reconnect for it
                ctx.log.info("%s: history requests paused by the circuit breaker; retrying in "
                             "%.0f s", stream.symbol, exc.retry_after)
                await trio.sleep(max(RETRY_DELAY, exc.retry_after))
            except RequestFailed as exc:
                await _request_failed(ctx, stream, exc, outbox, memory)
            except RequestTimeout as exc:
                await _failed(ctx, stream, exc, memory)
        if scope.cancelled_caught:
            stream.resubscribes += 1
            ctx.log.info("%s: resubscribing", stream.symbol)


async def _request_failed(ctx: ActorContext, stream: _Stream, exc: RequestFailed,
                          outbox: Outbox, memory: Memory) -> None:
    code, text = exc.code, str(exc)
    if code is not None and error_policy.disables_symbol(code, text):
        _disable(ctx, stream, code, text, outbox, memory)
        return
    if code in error_policy.COMPETING_SESSION:
        # GatewayLink announces it in words; no data for anyone until the other session ends
        stream.pacing_waits += 1
        delay = min(COMPETING_RETRY_MAX, RETRY_DELAY * 2 ** min(stream.pacing_waits, 8))
        ctx.log.info("%s: no market data during a competing live session (10197); retrying "
                     "in %.0f s", stream.symbol, delay)
        await trio.sleep(delay)
        return
    if error_policy.is_pacing(code, text):
        # IB's pacing: slow down; a reconnect would only add requests
        stream.pacing_waits += 1
        delay = min(PACING_DELAY_MAX, RETRY_DELAY * 2 ** min(stream.pacing_waits, 6))
        ctx.log.warning("%s: IB pacing (%s); retrying in %.0f s", stream.symbol, code, delay)
        await trio.sleep(delay)
        return
    # per-request and transient (no data yet, a cancelled query): retry, growing, never a
    # link restart: the link is fine, it answered
    stream.refusals += 1
    delay = min(TRANSIENT_DELAY_MAX, RETRY_DELAY * 2 ** min(stream.refusals - 1, 8))
    ctx.log.warning("%s: subscription failed (%d in a row, code %s): %s; retrying in %.0f s",
                    stream.symbol, stream.refusals, code, exc, delay)
    await trio.sleep(delay)


def _disable(ctx: ActorContext, stream: _Stream, code: int, text: str, outbox: Outbox,
             memory: Memory) -> None:
    """Stop asking for this symbol until the next session or a long interval; say so once."""
    entry, first = memory.gate.disable(stream.symbol, code, text, ctx.clock.now_utc())
    outbox.symbols.set(memory.gate.snapshot())
    retry = f"{entry.retry_at.astimezone(ET):%Y-%m-%d %H:%M} ET"
    ctx.emit("symbol_disabled", symbol=stream.symbol, code=code, reason=entry.reason,
             retry_at=entry.retry_at)
    if not first:
        ctx.log.info("%s: still unavailable (IB %d: %s); next try at %s", stream.symbol, code,
                     entry.reason, retry)
        return
    ctx.alert("critical", f"Market data for {stream.symbol} unavailable",
              f"IB {code}: {entry.reason}. {stream.symbol} is disabled (no data: no trades in "
              f"it); the other symbols keep streaming and the link stays up. Next try at "
              f"{retry}.", key=f"feed:{stream.symbol}")


async def _wait_while_disabled(ctx: ActorContext, stream: _Stream, memory: Memory) -> None:
    retry_at = memory.gate.retry_at(stream.symbol)
    if retry_at is not None:
        await ctx.clock.sleep_until(retry_at)
        ctx.log.info("%s: trying the disabled symbol again", stream.symbol)


def _enabled(ctx: ActorContext, stream: _Stream, outbox: Outbox, memory: Memory) -> None:
    """A subscription succeeded: a disabled symbol is back."""
    was_disabled, was_alerted = memory.gate.enable(stream.symbol)
    if was_disabled:
        outbox.symbols.set(memory.gate.snapshot())
        ctx.emit("symbol_enabled", symbol=stream.symbol)
    if was_alerted:
        ctx.alert("info", f"Market data for {stream.symbol} back",
                  f"{stream.symbol} subscribed again", key=f"feed:{stream.symbol}")


async def _failed(ctx: ActorContext, stream: _Stream, exc: Exception, memory: Memory) -> None:
    """A subscription the Gateway never answered: retry, then escalate (a wedged session)."""
    stream.failures += 1
    ctx.log.warning("%s: subscription failed (%d in a row): %s", stream.symbol, stream.failures,
                    exc)
    if stream.failures >= RESUBSCRIBE_LIMIT:
        ctx.alert("warning", f"Market data for {stream.symbol} not answered",
                  f"{stream.failures} subscriptions got no answer: {exc}; restarting the "
                  "Gateway link", key=f"feed:{stream.symbol}")
        memory.restarts.record("subscriptions unanswered", ctx.clock.now_utc().timestamp())
        raise FeedStalled(f"{stream.symbol}: {exc}") from exc
    await trio.sleep(RETRY_DELAY)


async def _stream_bars(ctx: ActorContext, client: LinkClient, stream: _Stream, outbox: Outbox,
                       memory: Memory) -> None:
    clock = ctx.clock
    cursor = memory.cursors.get(stream.symbol)
    now = clock.now_utc()
    request = SubscribeBars(symbol=stream.symbol, sec_type=stream.sec_type,
                            lookback_s=math.ceil(lookback(now, cursor,
                                                          memory.warmup_sessions).total_seconds()))
    async with client.open_stream(request) as (initial, updates):
        stream.failures = stream.refusals = 0
        stream.pacing_waits = 0
        _enabled(ctx, stream, outbox, memory)
        subscribed_at = clock.now_utc()
        first_source: BarSource = "history" if cursor is None else "backfill"

        def source_of(bar: BarUpdate) -> BarSource:
            """Bars that had ended before we subscribed were missed, not lived through."""
            return first_source if bar.ts + BAR <= subscribed_at else "live"

        forming: BarUpdate | None = None
        for update in initial:
            forming = await _advance(ctx, stream, forming, update, outbox, memory,
                                     source_of(forming or update))
        last_heard = trio.current_time()
        grace = max(clock.to_trio_seconds(COMPLETE_GRACE.total_seconds()), COMPLETE_GRACE_MIN_S)
        stale = max(clock.to_trio_seconds(STALE_AFTER.total_seconds()), STALE_AFTER_MIN_S)
        while True:
            # one deadline per forming bar, not per update: an update of the bar already
            # forming changes nothing but the bar's values and the time last heard, so it
            # costs a comparison and two stores (the staleness deadline computed here may be
            # older than `last_heard`; when it fires early, the loop just computes it again)
            deadline = math.inf
            if forming is not None:
                deadline = clock.trio_time_at(forming.ts + BAR) + grace
            if get_calendar().session_at(clock.now_utc()) is not None:
                deadline = min(deadline, last_heard + stale)
            else:
                deadline = min(deadline, trio.current_time() + clock.to_trio_seconds(60))
            with trio.move_on_at(deadline):
                while True:
                    pushed = await updates.receive()
                    last_heard = trio.current_time()
                    if not isinstance(pushed, BarUpdate):
                        continue
                    if forming is not None and pushed.ts == forming.ts:
                        forming = pushed
                        continue
                    forming = await _advance(ctx, stream, forming, pushed, outbox, memory,
                                             source_of(forming or pushed))
                    break      # a new bar is forming: its own deadline
                continue
            if (forming is not None and
                    trio.current_time() >= clock.trio_time_at(forming.ts + BAR) + grace):
                await _deliver(ctx, stream, forming, outbox, memory, source_of(forming))
                forming = None
            elif (get_calendar().session_at(clock.now_utc()) is not None and
                  trio.current_time() >= last_heard + stale):
                ctx.log.warning("%s: no update for %.0f s: resubscribing", stream.symbol,
                                trio.current_time() - last_heard)
                ctx.emit("feed_stale", symbol=stream.symbol)
                return


async def _advance(ctx: ActorContext, stream: _Stream, forming: BarUpdate | None,
                   update: BarUpdate, outbox: Outbox, memory: Memory,
                   source: BarSource) -> BarUpdate | None:
    """Fold one update into the forming bar; a newer bar completes the forming one."""
    if forming is None or update.ts == forming.ts:
        return update
    if update.ts > forming.ts:
        await _deliver(ctx, stream, forming, outbox, memory, source)
        return update
    return forming      # an update for a bar already closed: too late, ignore it


async def _deliver(ctx: ActorContext, stream: _Stream, update: BarUpdate, outbox: Outbox,
                   memory: Memory, source: BarSource) -> None:
    """Deliver a completed bar exactly once (the cursor) and in order; mark real holes."""
    cursor = memory.cursors.get(stream.symbol)
    if cursor is not None and update.ts <= cursor:
        return
    is_vix = stream.sec_type == "IND"
    if cursor is not None and not is_vix:
        expected = _next_bar_start(cursor)
        if expected is not None and update.ts > expected:
            gap = BarGap(symbol=stream.symbol, start=expected, end=update.ts,
                         reason="not in the Gateway's data (after a reconnect or a feed gap)")
            memory.gaps += 1
            ctx.emit("bar_gap", symbol=stream.symbol, start=gap.start, end=gap.end,
                     reason=gap.reason)
            ctx.log.warning("%s: bars missing from %s to %s: gap marked", stream.symbol,
                            gap.start, gap.end)
            await outbox.bars.send(gap)
    bar = Bar(symbol=stream.symbol, ts=update.ts, open=update.open, high=update.high,
              low=update.low, close=update.close, volume=update.volume, source=source,
              session_id=update.session_id)
    if is_vix:
        outbox.vix.set(VixReading(value=bar.close, ts=bar.end))
    else:
        await outbox.bars.send(bar)
    memory.cursors[stream.symbol] = bar.ts
    memory.delivered += 1
    if source == "live":
        outbox.last_bar.set(ctx.clock.now_utc())
    ctx.emit("bar", symbol=bar.symbol, bar_ts=bar.ts, open=bar.open, high=bar.high, low=bar.low,
             close=bar.close, volume=bar.volume, source=source)


def lookback(now: dt.datetime, cursor: dt.datetime | None,
             warmup_sessions: int) -> dt.timedelta:
    """How far back a subscription must reach: past the cursor (the backfill) or over the
    warm-up sessions, and always into the last session's closing bars.

    IB ignores keepUpToDate updates after an empty first answer, and an answer is empty when
    the window holds no regular-hours bar (before the open, the gap since yesterday's last bar;
    on a Monday morning, a warm-up counted in calendar days). Bars before the cursor are
    dropped on delivery, so reaching further back costs a few bars, never a duplicate.
    """
    cal = get_calendar()
    begun = [s for s in cal.sessions_back(now.astimezone(ET).date(), warmup_sessions + 1)
             if s.open < now]
    if not begun:           # no session in the last days at all: the calendar's first days
        return dt.timedelta(days=7)
    last = begun[-1]
    anchor = max(last.open, min(now, last.close) - 30 * BAR)
    if cursor is None:
        anchor = begun[-warmup_sessions].open if len(begun) >= warmup_sessions else begun[0].open
    elif cursor < anchor:
        anchor = cursor
    return now - anchor + 2 * BAR


def _next_bar_start(cursor: dt.datetime) -> dt.datetime | None:
    """The start of the regular-hours bar after the one starting at `cursor`."""
    cal = get_calendar()
    nxt = cursor + BAR
    session = cal.session_at(cursor)
    if session is not None and nxt < session.close:
        return nxt
    try:
        return cal.next_session_after(cursor).open
    except LookupError:
        return None


# -- notices: resubscribe when IB says data was lost ----------------------------------------------


async def _watch_notices(ctx: ActorContext, inbox: Inbox, streams: list[_Stream],
                         quote_lines: Mapping[str, _QuoteLine]) -> None:
    farm_down = False
    async for notice in inbox.notices:
        if notice.kind == "restored_data_lost":
            ctx.log.warning("Gateway %d (%s): resubscribing every stream", notice.code,
                            notice.text)
            for s in streams:
                s.resubscribe()
            for line in quote_lines.values():      # option quotes die with the bars
                line.resubscribe()
        elif notice.kind == "farm_down":
            farm_down = True
        elif notice.kind == "farm_up" and farm_down:
            farm_down = False     # after 2103 -> 2104 some feeds stay silently dead
            ctx.log.info("market data farm back (%d): resubscribing every stream", notice.code)
            for s in streams:
                s.resubscribe()
            for line in quote_lines.values():
                line.resubscribe()


# -- option quotes on demand ----------------------------------------------------------------------


@dataclass(eq=False)
class _QuoteLine:
    """One option quote subscription: resubscribed after 1101, after a farm came back, and
    when it has been quiet too long in market hours (a quote that silently stopped would
    leave the money path with a stale bid: no exit, no mark)."""

    key: str
    scope: trio.CancelScope                 # the whole line (unwanted: cancelled for good)
    inner: trio.CancelScope | None = None   # one subscription (resubscribe: cancelled)
    last: float = 0.0                       # trio time of the last quote (or subscription)
    resubscribes: int = 0
    refused: int | None = None              # IB's code while the contract is refused for good
    refused_alerted: bool = False

    def resubscribe(self) -> None:
        if self.inner is not None:
            self.inner.cancel("resubscribe")


class _QuoteLines(dict[str, _QuoteLine]):
    """The open quote lines by contract key; adding one wakes the staleness watchdog."""

    def __init__(self) -> None:
        super().__init__()
        self.added = trio.Event()

    def __setitem__(self, key: str, line: _QuoteLine) -> None:
        super().__setitem__(key, line)
        self.added.set()


QUOTE_STALE_AFTER_MARKET_S = 120.0          # no quote this long in market hours: resubscribe
QUOTE_STALE_AFTER_MIN_S = 10.0              # ...and never sooner than this in real seconds
QUOTE_REFUSED_RETRY_MARKET_S = 1800.0       # a contract IB refuses for good (200, 354, ...)
                                            # is asked for again this rarely
QUOTE_CHECK_FLOOR_S = 1.0
"""Trio seconds the watchdog sleeps at least: at a session boundary the clock may read a hair
before the instant it slept for, and the watchdog must not spin on it."""


async def _watch_quotes(ctx: ActorContext, quote_lines: _QuoteLines) -> None:
    """The quote staleness watchdog, in market hours only (quiet nights are normal).

    No tick: it sleeps until the quietest line would turn stale, a line is added, or the session
    closes; at night, until the next session opens. A line that streams keeps moving its own
    deadline, so a healthy line costs one wake-up per QUOTE_STALE_AFTER_MARKET_S at most."""
    cal = get_calendar()
    limit = max(QUOTE_STALE_AFTER_MIN_S, ctx.clock.to_trio_seconds(QUOTE_STALE_AFTER_MARKET_S))
    while True:
        added = quote_lines.added = trio.Event()
        wake = _check_quotes(ctx, cal, quote_lines, limit)
        with trio.move_on_at(max(wake, trio.current_time() + QUOTE_CHECK_FLOOR_S)):
            await added.wait()


def _check_quotes(ctx: ActorContext, cal: MarketCalendar, quote_lines: _QuoteLines,
                  limit: float) -> float:
    """Resubscribe the lines silent for `limit` trio seconds in market hours; the trio time at
    which to look again."""
    now_utc = ctx.clock.now_utc()
    session = cal.session_at(now_utc)
    if session is None:
        try:
            opens = cal.next_session_after(now_utc).open
        except CalendarRangeError:
            return trio.current_time() + limit       # past the calendar: said elsewhere
        return ctx.clock.trio_time_at(opens)
    now = trio.current_time()
    wake = ctx.clock.trio_time_at(session.close)
    for line in list(quote_lines.values()):
        if line.inner is None or line.refused is not None:
            wake = min(wake, now + limit)            # not streaming now: look again later
            continue
        deadline = line.last + limit
        if now >= deadline:
            ctx.log.warning("quote %s silent for %.0f s: resubscribing", line.key,
                            now - line.last)
            line.last = now
            line.resubscribe()
            deadline = now + limit
        wake = min(wake, deadline)
    return wake


def _quote_refused(ctx: ActorContext, line: _QuoteLine, code: int | None, text: str) -> None:
    """A per-contract refusal (error_policy.disables_symbol): one alert, then quiet retries."""
    line.refused = code
    ctx.emit("quote_refused", contract=line.key, code=code,
             retry_in_s=QUOTE_REFUSED_RETRY_MARKET_S)
    if line.refused_alerted:
        return
    line.refused_alerted = True
    meaning = error_policy.policy(code).meaning if code is not None else text
    ctx.alert("warning", f"Option quote unavailable: {line.key}",
              f"IB {code}: {meaning}. Without a bid this contract has no mark (it counts at "
              "zero against the loss limit) and no exit at a price; its native bracket stays. "
              f"Asked again every {QUOTE_REFUSED_RETRY_MARKET_S / 60:.0f} min.",
              key=f"quote-refused:{line.key}")


def _quote_back(ctx: ActorContext, line: _QuoteLine) -> None:
    line.refused_alerted = False
    ctx.alert("info", f"Option quote back: {line.key}", key=f"quote-refused:{line.key}")


async def _sync_quotes(ctx: ActorContext, client: LinkClient, inbox: Inbox,
                       outbox: Outbox, quote_lines: dict[str, _QuoteLine]) -> None:
    running = quote_lines
    async with trio.open_nursery() as nursery:
        wanted: frozenset[OptionSpec] = inbox.wanted_quotes.value
        while True:
            keys = {spec.key: spec for spec in sorted(wanted, key=lambda s: s.key)}
            for key in [k for k in running if k not in keys]:
                running.pop(key).scope.cancel()
                board = dict(outbox.quotes.value)
                board.pop(key, None)
                outbox.quotes.set(board)
            for key, spec in keys.items():
                if key not in running:
                    if len(running) >= MAX_QUOTE_LINES:
                        ctx.log.warning("quote for %s not subscribed: %d lines in use", key,
                                        MAX_QUOTE_LINES)
                        continue
                    line = _QuoteLine(key, trio.CancelScope(), last=trio.current_time())
                    running[key] = line
                    nursery.start_soon(_stream_quote, ctx, client, spec, line, outbox)
            ctx.gauge(QUOTE_LINES_OPEN, len(running))
            wanted, _ = await inbox.wanted_quotes.wait_transition()


async def _stream_quote(ctx: ActorContext, client: LinkClient, spec: OptionSpec,
                        line: _QuoteLine, outbox: Outbox) -> None:
    request = SubscribeQuote(key=spec.key, symbol=spec.underlying, sec_type="OPT",
                             expiry=spec.expiry.strftime("%Y%m%d"), strike=spec.strike,
                             right=spec.right)
    with line.scope:
        while True:
            with trio.CancelScope() as inner:
                line.inner = inner
                line.last = trio.current_time()
                try:
                    async with client.open_stream(request) as (_, quotes):
                        async for quote in quotes:
                            line.last = trio.current_time()
                            if line.refused_alerted:
                                _quote_back(ctx, line)
                            board = dict(outbox.quotes.value)
                            board[spec.key] = quote   # type: ignore[assignment]
                            outbox.quotes.set(board)
                except LinkUnavailable:
                    await trio.sleep_forever()
                except RequestFailed as exc:
                    if not error_policy.disables_symbol(exc.code, str(exc)):
                        ctx.log.warning("quote %s: %s", spec.key, exc)
                        await trio.sleep(RETRY_DELAY * 5)
                        continue
                    # asking again will not help this session: alert once, ask rarely
                    _quote_refused(ctx, line, exc.code, str(exc))
                    try:
                        await trio.sleep(ctx.clock.to_trio_seconds(
                            QUOTE_REFUSED_RETRY_MARKET_S))
                    finally:
                        line.refused = None
                except RequestTimeout as exc:
                    ctx.log.warning("quote %s: %s", spec.key, exc)
                    await trio.sleep(RETRY_DELAY * 5)
            if inner.cancelled_caught:
                line.resubscribes += 1
                ctx.log.info("quote %s: resubscribing", spec.key)
