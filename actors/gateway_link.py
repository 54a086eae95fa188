"""GatewayLink: one ib_async session per incarnation, on its own thread and asyncio loop.

An incarnation waits for the Gateway's port (a cheap TCP probe every 0.25 s: a closed port is
not a struggling Gateway), connects a fresh `IB()` on a fresh loop (a failed connect is retried
here with growing pauses, not by a restart), publishes the session, serves requests, probes
liveness with `reqCurrentTime` (a hung Gateway keeps the socket open and `isConnected()` true),
and ends by raising when the session is lost. The supervisor then starts a new incarnation, with
backoff for failures and without counting the scheduled daily restart.

Until a session is up, the outage alert is a deadline on the clock (OUTAGE_ALERT_MIN), whatever
the cause; a cause that keeps restarting the subtree is a storm: one alert and a long pause.
What each Gateway code means comes from `runtime.gateway.error_policy`: only link-level codes
touch the session; per-request ones are BarFeed's and the order path's.

What must survive an incarnation (outage timing, session numbering, client-id rotation,
breakers, the restart ledger) lives in `Memory`, created once by the composition root.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field

import trio

from config.settings import Mode
from messages.link import (
    CancelSubscription,
    GatewayNotice,
    LinkState,
    LinkStatus,
    RestartSession,
)
from messages.orders import BrokerEvent
from runtime.gateway import error_policy
from runtime.gateway.aio_bridge import LoopClosed
from runtime.gateway.breaker import Breaker, BreakerOpen, BreakerState
from runtime.gateway.error_policy import Action, ErrorClass
from runtime.gateway.gateway_schedule import in_restart_window
from runtime.gateway.link_client import Envelope, Reply
from runtime.gateway.link_transport import (
    ConnectFailed,
    LinkSession,
    RequestRejected,
    SessionEvents,
    SessionInfo,
    SessionParams,
    Subscriptions,
    Transport,
)
from runtime.gateway.outage import (
    connect_retry_delay,
    describe_connect_failure,
    outage_deadline,
)
from runtime.gateway.restart_storm import RestartLedger
from runtime.supervision.actor import ActorContext
from runtime.supervision.channels import Latest
from runtime.supervision.supervisor import ExpectedRestart, OperationalFailure
from runtime.supervision.tree import Gauge

# -- inbox and outbox -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Inbox:
    requests: trio.MemoryReceiveChannel[Envelope]


@dataclass(frozen=True)
class Outbox:
    link_state: Latest[LinkState]
    notices: trio.MemorySendChannel[GatewayNotice]    # to BarFeed (same subtree)
    broker: trio.MemorySendChannel[BrokerEvent]       # order events to OrderRouter


BREAKERS = Gauge("breakers", "request kinds whose circuit breaker is open, half-open or "
                 "counting failures: state (failures in a row, current cooldown)")

# -- state that outlives an incarnation -----------------------------------------------------------


@dataclass
class Memory:
    sessions: int = 0
    down_since: dt.datetime | None = None     # clock time the last session ended (None: never up)
    down_since_trio: float | None = None      # ...and in trio (real) seconds
    first_start: dt.datetime | None = None
    first_start_trio: float | None = None
    outage_alerted: bool = False
    outage_known: str = "not connected yet"   # what was last observed of the Gateway, in words
    client_id_offset: int = 0
    login_timeouts: int = 0                   # handshake answered, session never started
    timeouts_in_a_row: int = 0
    breakers: dict[str, Breaker] = field(default_factory=dict)
    breakers_reported_open: set[str] = field(default_factory=set)
    breakers_shown: bool = False              # the tree shows the breakers since one failed
    restarts: RestartLedger = field(default_factory=RestartLedger)   # shared with BarFeed
    unknown_codes: set[int] = field(default_factory=set)   # logged once each
    competing_announced: int = 0              # the session 10197 was last announced for
    exhausted: bool = False                   # the link subtree went past its restart
                                              # intensity (set by the composition root's hook)


PORT_PROBE_INTERVAL = 0.25     # trio seconds while a Gateway is expected back
SLOW_PROBE_INTERVAL = 5.0      # after the outage alert: keep trying, more gently
CLOCK_QUERY_DEADLINE = 4.0     # reading the Gateway's clock at session start
LOGIN_PENDING_AFTER = 3        # handshake timeouts with the port open before we say so
CLIENT_ID_SPAN = 5             # 326 rotates through client ids base .. base+4
EXPECTED_RETRY = 0.25          # restart delay inside the scheduled window
BUSY_PROBE_INTERVAL = 30.0     # trio seconds: a link whose data flows is still asked this often


class LinkLost(OperationalFailure):
    """The session ended unexpectedly: a failure for the supervisor (backoff, intensity)."""


# -- the loop -------------------------------------------------------------------------------------


async def run(ctx: ActorContext, inbox: Inbox, outbox: Outbox, memory: Memory,
              transport: Transport, *,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    memory.first_start = memory.first_start or ctx.clock.now_utc()
    if memory.first_start_trio is None:
        memory.first_start_trio = trio.current_time()
    task_status.started()
    if memory.exhausted:
        _publish(outbox, memory, LinkStatus.DOWN, ctx,
                 reason="the Gateway link exhausted its restarts; retrying slowly")
    session_box: list[LinkSession] = []
    async with trio.open_nursery() as outer:
        # until a session is up, whatever the cause and however long, the outage alert is one
        # deadline away on the clock
        watch = trio.CancelScope()
        outer.start_soon(_watch_outage, ctx, memory, watch)
        async with contextlib.AsyncExitStack() as stack:
            # registered first, so it runs last: after the transport has closed the session
            stack.push_async_callback(_after_close, ctx, outbox, memory, session_box)
            await _pause_if_storm(ctx, outbox, memory)
            session = await _connect(ctx, outbox, memory, transport, stack, session_box)
            watch.cancel()
            session_box.append(session)
            memory.sessions += 1
            if ctx.clock.follows_gateway:
                await _follow_gateway_clock(ctx, session)
            subs: Subscriptions = {}
            _link_up(ctx, outbox, memory, session.info)
            ctx.mark_healthy()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_serve, session, inbox, nursery, subs, ctx, memory)
                nursery.start_soon(_probe_liveness, session, transport)
                nursery.start_soon(_settle, ctx, memory)
                await session.lost.wait()
                nursery.cancel_scope.cancel()
    raise _lost(ctx, memory, session)


async def _after_close(ctx: ActorContext, outbox: Outbox, memory: Memory,
                       session_box: list[LinkSession]) -> None:
    """The session is closed (quietly: our own close is no loss): say so once."""
    if session_box:
        _link_down(ctx, outbox, memory, session_box[0])


async def _settle(ctx: ActorContext, memory: Memory) -> None:
    """A session that stays up a whole storm window ends any storm: a new one alerts again."""
    await trio.sleep(ctx.clock.to_trio_seconds(memory.restarts.window))
    memory.restarts.settled()


# -- waiting for the Gateway ----------------------------------------------------------------------


async def _connect(ctx: ActorContext, outbox: Outbox, memory: Memory, transport: Transport,
                   stack: contextlib.AsyncExitStack, session_box: list[LinkSession]
                   ) -> LinkSession:
    """Connect, retrying inside this incarnation until a session is up.

    A Gateway that refuses or does not answer is the world, not a crash of ours: retrying here
    (growing pauses, faster inside the scheduled window) keeps the outage watch running and
    never spends the link's restart intensity on it.
    """
    failures = 0
    while True:
        await _wait_for_port(ctx, transport, outbox, memory)
        settings = ctx.settings
        params = SessionParams(
            client_id=settings.ibkr_client_id + memory.client_id_offset,
            readonly=settings.mode is Mode.DRY_RUN, session_id=memory.sessions + 1,
            clock=ctx.clock, journal=ctx.journal, actor=ctx.path, breakers=memory.breakers,
            events=SessionEvents(on_notice=lambda n: _on_notice(session_box, outbox, ctx,
                                                                memory, n),
                                 broker=outbox.broker))
        _publish(outbox, memory, LinkStatus.CONNECTING, ctx, reason="connecting",
                 login_pending=memory.login_timeouts >= LOGIN_PENDING_AFTER)
        try:
            return await stack.enter_async_context(transport.open_session(params))
        except ConnectFailed as exc:
            failures += 1
            delay = _connect_failed(ctx, outbox, memory, exc, failures)
        await trio.sleep(delay)


async def _wait_for_port(ctx: ActorContext, transport: Transport, outbox: Outbox,
                         memory: Memory) -> None:
    """Return once the Gateway's API port accepts connections."""
    host, port = ctx.settings.ibkr_host, ctx.settings.ibkr_port
    announced = False
    while True:
        if await transport.port_open():
            return
        memory.outage_known = f"the Gateway's port {host}:{port} is closed"
        if not announced:
            announced = True
            _publish(outbox, memory, LinkStatus.DOWN, ctx,
                     reason=f"Gateway port {host}:{port} closed")
            ctx.set_note(f"waiting for {host}:{port}")
        await trio.sleep(SLOW_PROBE_INTERVAL if memory.outage_alerted else PORT_PROBE_INTERVAL)


def _in_window(ctx: ActorContext) -> bool:
    s = ctx.settings
    return in_restart_window(ctx.clock.now_utc(), s.gateway_restart_time,
                             s.gateway_restart_window_min)


async def _watch_outage(ctx: ActorContext, memory: Memory, scope: trio.CancelScope) -> None:
    """One critical alert once no session has been up for OUTAGE_ALERT_MIN (outside the
    scheduled window), naming what was last observed; runs while this incarnation has no
    session, so a hang, a closed port, a hanging handshake or a storm pause all count."""
    with scope:
        await _alert_outage_when_due(ctx, memory)


async def _alert_outage_when_due(ctx: ActorContext, memory: Memory) -> None:
    limit = ctx.settings.outage_alert_min * 60
    while not memory.outage_alerted:
        since = memory.down_since or memory.first_start
        since_trio = memory.down_since_trio if memory.down_since else memory.first_start_trio
        if since is None or since_trio is None:
            return
        await trio.sleep_until(outage_deadline(ctx.clock, since, since_trio, limit))
        if _in_window(ctx):
            # the scheduled restart is no outage; look again once the window is over
            await trio.sleep(ctx.clock.to_trio_seconds(60))
            continue
        down = (ctx.clock.now_utc() - since).total_seconds()
        memory.outage_alerted = True
        ctx.emit("link_outage", down_s=round(down, 1), known=memory.outage_known)
        ctx.alert("critical", "Gateway unreachable",
                  f"no Gateway session for {down / 60:.0f} min (since "
                  f"{since.astimezone(ctx.clock.now_et().tzinfo):%H:%M} ET); last seen: "
                  f"{memory.outage_known}; still trying", key="link-outage")


async def _pause_if_storm(ctx: ActorContext, outbox: Outbox, memory: Memory) -> None:
    """Too many restarts for one cause: one critical alert, then a long pause, not a loop."""
    storm = memory.restarts.storm(ctx.clock.now_utc().timestamp())
    if storm is None:
        return
    ctx.emit("link_storm", cause=storm.cause, restarts=storm.restarts,
             window_s=storm.window, pause_s=storm.pause)
    text = (f"{storm.restarts} link restarts within {storm.window / 60:.0f} min for the same "
            f"cause ({storm.cause}); pausing {storm.pause / 60:.0f} min before connecting "
            "again")
    if storm.cause not in memory.restarts.alerted:
        memory.restarts.alerted.add(storm.cause)
        ctx.alert("critical", "Gateway link restart storm", text, key="link-storm")
    else:
        ctx.log.warning("%s", text)
    _publish(outbox, memory, LinkStatus.DOWN, ctx, reason=f"restart storm: {storm.cause}")
    ctx.set_note(f"storm pause ({storm.cause})")
    await trio.sleep(ctx.clock.to_trio_seconds(storm.pause))
    memory.restarts.paused(storm)


def _connect_failed(ctx: ActorContext, outbox: Outbox, memory: Memory,
                    exc: ConnectFailed, failures: int) -> float:
    """Record a failed connect in the operator's terms; returns the pause before the next."""
    ctx.emit("link_connect_failed", kind=exc.kind, detail=exc.detail,
             client_id=ctx.settings.ibkr_client_id + memory.client_id_offset)
    if exc.kind == "client_id_in_use":
        memory.client_id_offset = (memory.client_id_offset + 1) % CLIENT_ID_SPAN
        ctx.log.warning("client id in use (326); next attempt uses client id %d",
                        ctx.settings.ibkr_client_id + memory.client_id_offset)
    timeouts = memory.timeouts_in_a_row = (memory.timeouts_in_a_row + 1
                                           if exc.kind == "timeout" else 0)
    memory.outage_known = describe_connect_failure(
        exc, f"{ctx.settings.ibkr_host}:{ctx.settings.ibkr_port}", timeouts)
    # login pending: the Gateway answers the handshake but never starts the session
    memory.login_timeouts = (memory.login_timeouts + 1 if exc.kind == "timeout" and
                             exc.handshake_done is not False else 0)
    _publish(outbox, memory, LinkStatus.DOWN, ctx, reason=f"connect failed: {exc}",
             login_pending=memory.login_timeouts >= LOGIN_PENDING_AFTER)
    return connect_retry_delay(failures,
                               quick=_in_window(ctx) or exc.kind == "client_id_in_use")


# -- session up / down ----------------------------------------------------------------------------


def _publish(outbox: Outbox, memory: Memory, status: LinkStatus, ctx: ActorContext, *,
             reason: str | None = None, info: SessionInfo | None = None,
             login_pending: bool = False) -> None:
    old = outbox.link_state.value
    # `since` is when the link stopped (or started) being up: retrying (DOWN <-> CONNECTING)
    # does not restart an outage's clock, or /health would never see it last
    up = status in (LinkStatus.UP, LinkStatus.DEGRADED)
    outbox.link_state.set(LinkState(
        status=status, session_id=info.session_id if info else memory.sessions,
        accounts=info.accounts if info else old.accounts,
        server_version=info.server_version if info else old.server_version,
        client_id=info.client_id if info else old.client_id,
        readonly=info.readonly if info else old.readonly,
        since=old.since if old.since and (old.status is status or not (old.up or up)) else
        ctx.clock.now_utc(),
        reason=reason, expected_outage=status is not LinkStatus.UP and _in_window(ctx),
        login_pending=login_pending,
        exhausted=memory.exhausted and status is not LinkStatus.UP))


def _link_up(ctx: ActorContext, outbox: Outbox, memory: Memory, info: SessionInfo) -> None:
    now = ctx.clock.now_utc()
    outage = (now - memory.down_since).total_seconds() if memory.down_since else None
    expected = _in_window(ctx)
    _publish(outbox, memory, LinkStatus.UP, ctx, reason="session up", info=info)
    ctx.set_note(f"session {info.session_id} up, client {info.client_id}")
    ctx.emit("link_up", session=info.session_id, accounts=list(info.accounts),
             server_version=info.server_version, connect_ms=info.connect_ms,
             client_id=info.client_id, readonly=info.readonly,
             outage_s=round(outage, 3) if outage is not None else None)
    ctx.log.info("Gateway session %d up: accounts %s, server version %d, client id %d, %s, "
                 "connect %.0f ms", info.session_id, ",".join(info.accounts),
                 info.server_version, info.client_id, "read-only" if info.readonly else
                 "read-write", info.connect_ms)
    if outage is not None:
        ctx.alert("info" if expected or not memory.outage_alerted else "warning",
                  "Scheduled Gateway restart done" if expected else "Gateway link restored",
                  f"session {info.session_id} up after {outage:.0f}s", key="link")
    memory.down_since = None
    memory.down_since_trio = None
    memory.outage_alerted = False
    memory.login_timeouts = memory.timeouts_in_a_row = 0
    memory.exhausted = False
    memory.outage_known = f"session {info.session_id} was up"
    if memory.client_id_offset and info.client_id == ctx.settings.ibkr_client_id:
        memory.client_id_offset = 0


def _link_down(ctx: ActorContext, outbox: Outbox, memory: Memory,
               session: LinkSession) -> None:
    memory.down_since = ctx.clock.now_utc()
    memory.down_since_trio = trio.current_time()
    reason = session.lost_reason or "shutdown"
    memory.outage_known = f"session {session.session_id} ended: {reason}"
    expected = _in_window(ctx) or not session.lost.is_set()
    _publish(outbox, memory, LinkStatus.DOWN, ctx, reason=reason)
    ctx.set_note(f"session {session.session_id} down: {reason}")
    ctx.emit("link_down", session=session.session_id, reason=reason, code=session.lost_code,
             expected=expected)
    if session.lost.is_set():
        if expected:
            ctx.alert("info", "Scheduled Gateway restart: link down", reason, key="link")
        else:
            ctx.alert("warning", "Gateway link lost", reason, key="link")


def _lost(ctx: ActorContext, memory: Memory, session: LinkSession) -> Exception:
    if _in_window(ctx):
        return ExpectedRestart(f"scheduled Gateway restart ({session.lost_reason})",
                               delay=EXPECTED_RETRY)
    cause = (f"IB {session.lost_code}" if session.lost_code else
             session.lost_reason.split(" (")[0].split(":")[0])
    memory.restarts.record(cause, ctx.clock.now_utc().timestamp())
    return LinkLost(session.lost_reason)


async def _follow_gateway_clock(ctx: ActorContext, session: LinkSession) -> None:
    """On a simulated clock, take the simulator's time as the truth at every session start.

    A runtime started a few wall seconds after its simulator would otherwise run minutes of
    simulated time behind it, and bars would look like they came from the future.
    """
    try:
        with trio.fail_after(CLOCK_QUERY_DEADLINE):
            gateway_now = await session.gateway_time()
    except (trio.TooSlowError, ConnectionError, LoopClosed) as exc:
        ctx.log.warning("could not read the Gateway's clock: %s", exc)
        return
    correction = ctx.clock.follow(gateway_now)
    if abs(correction) >= 1.0:
        ctx.log.info("simulated clock moved %+.1fs to follow the Gateway's clock", correction)


# -- events from ib_async (run on the loop thread) ------------------------------------------------


def _on_notice(session_box: list[LinkSession], outbox: Outbox, ctx: ActorContext,
               memory: Memory, notice: GatewayNotice) -> None:
    """In trio: act on a Gateway code as the error policy says, and pass it on to BarFeed.

    Only link-level codes touch the session (1300 ends it; 1100/2110 degrade it); per-request
    codes (an unknown symbol, a permission) are BarFeed's and the order path's to act on, and
    never restart the link.
    """
    if not session_box:
        return
    session = session_box[0]
    p = error_policy.policy(notice.code, notice.text)
    if not p.known:
        if notice.code not in memory.unknown_codes:
            memory.unknown_codes.add(notice.code)
            ctx.log.warning("Gateway code %d not in the error policy (treated as "
                            "informational; logged once): %s", notice.code, notice.text)
    elif p.error_class is ErrorClass.PACING or notice.code in error_policy.FARM_DOWN \
            or notice.code in error_policy.PORT_RESET:
        # the other connectivity codes (1100/1101/1102) are said once, by their alert below
        ctx.log.warning("Gateway %d: %s", notice.code, notice.text)
    elif p.error_class in (ErrorClass.PERMANENT, ErrorClass.PERMISSION):
        ctx.log.info("Gateway %d for request %d: %s", notice.code, notice.request_id,
                     notice.text)
    if p.action is Action.RECONNECT and notice.code in error_policy.PORT_RESET:
        session.mark_lost(f"Gateway port reset (1300): {notice.text}", notice.code)
    elif p.action is Action.DEGRADE:
        _publish_status(outbox, ctx, LinkStatus.DEGRADED, f"IB connectivity lost ({notice.code})")
        ctx.alert("warning", "IB connectivity lost", f"{notice.code}: {notice.text}",
                  key="ib-connectivity")
    elif notice.code in (1101, 1102):
        _publish_status(outbox, ctx, LinkStatus.UP, f"IB connectivity restored ({notice.code})")
        ctx.alert("info", "IB connectivity restored", f"{notice.code}: {notice.text}",
                  key="ib-connectivity")
    elif notice.code in error_policy.COMPETING_SESSION and \
            memory.competing_announced != session.session_id:
        memory.competing_announced = session.session_id
        ctx.alert("warning", "Competing IB session: no market data",
                  "IB says the same user is logged in elsewhere (TWS, the mobile app or the "
                  f"web portal) and sends no market data meanwhile ({notice.code}: "
                  f"{notice.text}). The link stays up and retries by itself; log the other "
                  "session out to get data back.", key="competing")
    try:
        outbox.notices.send_nowait(notice)
    except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
        ctx.log.warning("notice %d not passed on: BarFeed is not keeping up", notice.code)


def _publish_status(outbox: Outbox, ctx: ActorContext, status: LinkStatus, reason: str) -> None:
    old = outbox.link_state.value
    outbox.link_state.set(old.model_copy(update={"status": status, "reason": reason,
                                                 "since": ctx.clock.now_utc()}))


# -- liveness -------------------------------------------------------------------------------------


async def _probe_liveness(session: LinkSession, transport: Transport) -> None:
    """No heartbeat exists in the protocol: ask for the time and treat silence as death.

    Data flow is proof of life: while the Gateway keeps sending (bars, quotes, anything), a
    probe would only add a round trip on both threads, so the probe waits until the socket has
    been quiet for a whole interval. A hung Gateway sends nothing, so it is still asked one
    interval after its last bytes and caught within interval + deadline, as before. A busy
    link is still asked every BUSY_PROBE_INTERVAL: streams flowing do not prove that the
    Gateway answers requests.
    """
    interval, deadline = transport.liveness_interval, transport.liveness_deadline
    busy_every = max(interval, BUSY_PROBE_INTERVAL)
    probed = trio.current_time()
    while not session.lost.is_set():
        now = trio.current_time()
        heard = now - session.quiet_for()
        due = min(max(probed, heard) + interval, probed + busy_every)
        if now < due:
            await trio.sleep_until(due)
            continue
        try:
            with trio.fail_after(deadline):
                await session.probe()
        except trio.TooSlowError:
            session.mark_lost(f"the Gateway stopped answering (connected but silent: no "
                              f"reply to reqCurrentTime within {deadline:g}s)")
        except (ConnectionError, LoopClosed) as exc:
            session.mark_lost(f"liveness probe failed: {exc}")
        probed = trio.current_time()


# -- requests -------------------------------------------------------------------------------------


async def _serve(session: LinkSession, inbox: Inbox, nursery: trio.Nursery, subs: Subscriptions,
                 ctx: ActorContext, memory: Memory) -> None:
    async for env in inbox.requests:
        if env.deadline is not None and trio.current_time() > env.deadline:
            continue      # its caller has given up: never act on a stale request
        if isinstance(env.request, CancelSubscription):
            cancel = subs.pop(env.request.subscription_id, None)
            if cancel is not None:
                session.cancel(cancel)
            env.answer_nowait(Reply(ok=True, session_id=session.session_id))
            continue
        if isinstance(env.request, RestartSession):
            _restart_requested(session, env, ctx)
            continue
        nursery.start_soon(_handle, session, env, subs, ctx, memory)


def _restart_requested(session: LinkSession, env: Envelope, ctx: ActorContext) -> None:
    """A reader found a state this session cannot clear: end it as a failure. The cause
    (`restart requested`, the text before the colon) goes into the restart-storm ledger in
    `_lost`, so a state that stays stuck pauses the link instead of looping it."""
    req = env.request
    assert isinstance(req, RestartSession)
    if req.session_id != session.session_id:
        # meant for a session already gone: the new one has not been found stuck
        env.answer_nowait(Reply(ok=False, session_id=session.session_id,
                                error=f"session {req.session_id} already ended"))
        return
    ctx.emit("link_restart_requested", session=session.session_id, by=req.requested_by,
             reason=req.reason)
    env.answer_nowait(Reply(ok=True, session_id=session.session_id))
    session.mark_lost(f"restart requested: {req.reason} (by {req.requested_by})")


async def _handle(session: LinkSession, env: Envelope, subs: Subscriptions,
                  ctx: ActorContext, memory: Memory) -> None:
    sid = session.session_id
    try:
        value, sub_id = await session.handle(env.request, env.stream, subs)
    except trio.Cancelled:
        env.answer_nowait(Reply(ok=False, session_id=sid, unavailable=True,
                                error="the Gateway session ended"))
        raise
    except BreakerOpen as exc:
        env.answer_nowait(Reply(ok=False, session_id=sid, error=str(exc),
                                retry_after=exc.retry_in))
    except trio.TooSlowError:
        env.answer_nowait(Reply(ok=False, session_id=sid,
                                error=f"{type(env.request).__name__} timed out"))
    except (ConnectionError, LoopClosed) as exc:
        env.answer_nowait(Reply(ok=False, session_id=sid, unavailable=True, error=str(exc)))
    except RequestRejected as exc:
        env.answer_nowait(Reply(ok=False, session_id=sid, error=str(exc), code=exc.code))
    except ValueError as exc:
        env.answer_nowait(Reply(ok=False, session_id=sid, error=str(exc)))
    except Exception as exc:
        code = getattr(exc, "code", None)
        env.answer_nowait(Reply(ok=False, session_id=sid, error=f"{type(exc).__name__}: {exc}",
                                code=code if isinstance(code, int) else None))
    else:
        env.answer_nowait(Reply(ok=True, session_id=sid, value=value, subscription_id=sub_id))
    finally:
        _report_breakers(ctx, memory)


def _report_breakers(ctx: ActorContext, memory: Memory) -> None:
    """Alert when a breaker opens and when it closes again; show them in the tree."""
    for kind, b in memory.breakers.items():
        if b.state is BreakerState.OPEN and kind not in memory.breakers_reported_open:
            memory.breakers_reported_open.add(kind)
            ctx.alert("warning", f"Gateway requests paused: {kind}",
                      f"{b.failures} failures in a row; circuit breaker open for "
                      f"{b.current_cooldown:g}s", key=f"breaker:{kind}")
        elif b.state is BreakerState.CLOSED and kind in memory.breakers_reported_open:
            memory.breakers_reported_open.discard(kind)
            ctx.alert("info", f"Gateway requests resumed: {kind}", key=f"breaker:{kind}")
    shown = {k: _describe_breaker(b) for k, b in memory.breakers.items()
             if b.state is not BreakerState.CLOSED or b.failures}
    if shown or memory.breakers_shown:      # a healthy link's dump stays quiet
        memory.breakers_shown = True
        ctx.gauge(BREAKERS, shown)


def _describe_breaker(b: Breaker) -> str:
    """One short word-and-numbers value per request kind, for the tree dump and /tree."""
    return f"{b.state} ({b.failures} failures, cooldown {b.current_cooldown:g}s)"
