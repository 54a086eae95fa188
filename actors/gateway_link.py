"""GatewayLink: one ib_async session per incarnation, on its own thread and asyncio loop.

An incarnation waits for the Gateway's port (a cheap TCP probe every 0.25 s: a closed port is
not a struggling Gateway), connects a fresh `IB()` on a fresh loop, publishes the session, serves
requests, probes liveness with `reqCurrentTime` (a hung Gateway keeps the socket open and
`isConnected()` true), and ends by raising when the session is lost. The supervisor then starts
a new incarnation, with backoff for failures and without counting the scheduled daily restart.

What must survive an incarnation (outage timing, session numbering, client-id rotation,
breakers) lives in `Memory`, created once by the wiring.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field

import trio

from config.settings import Mode
from messages.base import Message
from messages.link import CancelSubscription, GatewayNotice, LinkState, LinkStatus
from runtime.gateway.aio_bridge import LoopClosed
from runtime.gateway.breaker import Breaker, BreakerOpen, BreakerState
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
from runtime.supervision.actor import ActorContext
from runtime.supervision.channels import Latest
from runtime.supervision.supervisor import ExpectedRestart, OperationalFailure

# -- inbox and outbox -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Inbox:
    requests: trio.MemoryReceiveChannel[Envelope]


@dataclass(frozen=True)
class Outbox:
    link_state: Latest[LinkState]
    notices: trio.MemorySendChannel[GatewayNotice]    # to BarFeed (same subtree)
    broker: trio.MemorySendChannel[Message]           # order events to OrderRouter


# -- state that outlives an incarnation -----------------------------------------------------------


@dataclass
class Memory:
    sessions: int = 0
    down_since: dt.datetime | None = None     # clock time the last session ended (None: never up)
    down_since_trio: float | None = None      # ...and in trio (real) seconds
    first_start: dt.datetime | None = None
    first_start_trio: float | None = None
    outage_alerted: bool = False
    client_id_offset: int = 0
    login_timeouts: int = 0
    login_alerted: bool = False
    breakers: dict[str, Breaker] = field(default_factory=dict)
    breakers_reported_open: set[str] = field(default_factory=set)


PORT_PROBE_INTERVAL = 0.25     # trio seconds while a Gateway is expected back
SLOW_PROBE_INTERVAL = 5.0      # after the outage alert: keep trying, more gently
CLOCK_QUERY_DEADLINE = 4.0     # reading the Gateway's clock at session start
LOGIN_PENDING_AFTER = 3        # handshake timeouts with the port open before we say so
CLIENT_ID_SPAN = 5             # 326 rotates through client ids base .. base+4
EXPECTED_RETRY = 0.25          # restart delay inside the scheduled window
OUTAGE_ALERT_MIN_REAL_S = 20.0  # a "long" outage must also have lasted this long in real time
# On an accelerated clock (a soak at 1000x) reconnecting takes real seconds (a hang is only
# detected after the liveness deadline), which are simulated hours: without a real-time floor
# every injected fault would read as a long outage. In production both clocks agree.


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
    await _wait_for_port(ctx, transport, outbox, memory)
    settings = ctx.settings
    params = SessionParams(
        client_id=settings.ibkr_client_id + memory.client_id_offset,
        readonly=settings.mode is Mode.DRY_RUN, session_id=memory.sessions + 1,
        clock=ctx.clock, journal=ctx.journal, actor=ctx.path, breakers=memory.breakers,
        events=SessionEvents(on_notice=lambda n: _on_notice(session_box, outbox, ctx, n),
                             broker=outbox.broker))
    session_box: list[LinkSession] = []
    _publish(outbox, memory, LinkStatus.CONNECTING, ctx, reason="connecting")
    async with contextlib.AsyncExitStack() as stack:
        # registered first, so it runs last: after the transport has closed the session
        stack.push_async_callback(_after_close, ctx, outbox, memory, session_box)
        try:
            session = await stack.enter_async_context(transport.open_session(params))
        except ConnectFailed as exc:
            raise _connect_failed(ctx, outbox, memory, exc) from None
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
            await session.lost.wait()
            nursery.cancel_scope.cancel()
    raise _lost(ctx, session)


async def _after_close(ctx: ActorContext, outbox: Outbox, memory: Memory,
                       session_box: list[LinkSession]) -> None:
    """The session is closed (quietly: our own close is no loss): say so once."""
    if session_box:
        _link_down(ctx, outbox, memory, session_box[0])


# -- waiting for the Gateway ----------------------------------------------------------------------


async def _wait_for_port(ctx: ActorContext, transport: Transport, outbox: Outbox,
                         memory: Memory) -> None:
    """Return once the Gateway's API port accepts connections."""
    host, port = ctx.settings.ibkr_host, ctx.settings.ibkr_port
    announced = False
    while True:
        if await transport.port_open():
            return
        if not announced:
            announced = True
            _publish(outbox, memory, LinkStatus.DOWN, ctx,
                     reason=f"Gateway port {host}:{port} closed")
            ctx.set_note(f"waiting for {host}:{port}")
        _check_outage(ctx, memory)
        await trio.sleep(SLOW_PROBE_INTERVAL if memory.outage_alerted else PORT_PROBE_INTERVAL)


def _in_window(ctx: ActorContext) -> bool:
    s = ctx.settings
    return in_restart_window(ctx.clock.now_utc(), s.gateway_restart_time,
                             s.gateway_restart_window_min)


def _check_outage(ctx: ActorContext, memory: Memory) -> None:
    """A long outage outside the scheduled window is a critical alert (once per outage)."""
    if memory.outage_alerted or _in_window(ctx):
        return
    since = memory.down_since or memory.first_start
    since_trio = memory.down_since_trio if memory.down_since else memory.first_start_trio
    if since is None or since_trio is None:
        return
    down = (ctx.clock.now_utc() - since).total_seconds()
    limit = ctx.settings.outage_alert_min * 60
    if down >= limit and trio.current_time() - since_trio >= min(limit,
                                                                   OUTAGE_ALERT_MIN_REAL_S):
        memory.outage_alerted = True
        ctx.alert("critical", "Gateway unreachable",
                  f"no Gateway session for {down / 60:.0f} min (since "
                  f"{since.astimezone(ctx.clock.now_et().tzinfo):%H:%M} ET); still trying every "
                  f"{SLOW_PROBE_INTERVAL:g}s", key="link-outage")


def _connect_failed(ctx: ActorContext, outbox: Outbox, memory: Memory,
                    exc: ConnectFailed) -> Exception:
    ctx.emit("link_connect_failed", kind=exc.kind, detail=exc.detail,
             client_id=ctx.settings.ibkr_client_id + memory.client_id_offset)
    if exc.kind == "client_id_in_use":
        memory.client_id_offset = (memory.client_id_offset + 1) % CLIENT_ID_SPAN
        ctx.log.warning("client id in use (326); next attempt uses client id %d",
                        ctx.settings.ibkr_client_id + memory.client_id_offset)
    if exc.kind == "timeout":
        memory.login_timeouts += 1
        if memory.login_timeouts >= LOGIN_PENDING_AFTER and not memory.login_alerted:
            memory.login_alerted = True
            ctx.alert("critical", "Gateway does not complete the API login",
                      f"port {ctx.settings.ibkr_port} is open but {memory.login_timeouts} "
                      "connects got no API handshake: 2FA pending, wrong credentials, or the "
                      "API disabled / this client not trusted in the Gateway settings",
                      key="link-login")
    _publish(outbox, memory, LinkStatus.DOWN, ctx, reason=f"connect failed: {exc}",
             login_pending=memory.login_timeouts >= LOGIN_PENDING_AFTER)
    _check_outage(ctx, memory)
    if _in_window(ctx):
        return ExpectedRestart(f"Gateway restarting: {exc}", delay=EXPECTED_RETRY)
    return exc


# -- session up / down ----------------------------------------------------------------------------


def _publish(outbox: Outbox, memory: Memory, status: LinkStatus, ctx: ActorContext, *,
             reason: str | None = None, info: SessionInfo | None = None,
             login_pending: bool = False) -> None:
    old = outbox.link_state.value
    outbox.link_state.set(LinkState(
        status=status, session_id=info.session_id if info else memory.sessions,
        accounts=info.accounts if info else old.accounts,
        server_version=info.server_version if info else old.server_version,
        client_id=info.client_id if info else old.client_id,
        readonly=info.readonly if info else old.readonly,
        since=old.since if old.status is status and old.since else ctx.clock.now_utc(),
        reason=reason, expected_outage=status is not LinkStatus.UP and _in_window(ctx),
        login_pending=login_pending,
        exhausted=old.exhausted and status is not LinkStatus.UP))


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
    memory.login_timeouts = 0
    memory.login_alerted = False
    if memory.client_id_offset and info.client_id == ctx.settings.ibkr_client_id:
        memory.client_id_offset = 0


def _link_down(ctx: ActorContext, outbox: Outbox, memory: Memory,
               session: LinkSession) -> None:
    memory.down_since = ctx.clock.now_utc()
    memory.down_since_trio = trio.current_time()
    reason = session.lost_reason or "shutdown"
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


def _lost(ctx: ActorContext, session: LinkSession) -> Exception:
    if _in_window(ctx):
        return ExpectedRestart(f"scheduled Gateway restart ({session.lost_reason})",
                               delay=EXPECTED_RETRY)
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
               notice: GatewayNotice) -> None:
    """In trio: act on a classified Gateway code and pass it on to BarFeed."""
    if not session_box:
        return
    session = session_box[0]
    kind = notice.kind
    if kind in ("farm_down", "pacing") or notice.code == 1300:   # the others: their alert
        ctx.log.warning("Gateway %d: %s", notice.code, notice.text)   # below is the one line
    if notice.code == 1300:
        session.mark_lost(f"Gateway port reset (1300): {notice.text}", 1300)
    elif kind == "lost":
        _publish_status(outbox, ctx, LinkStatus.DEGRADED, f"IB connectivity lost ({notice.code})")
        ctx.alert("warning", "IB connectivity lost", f"{notice.code}: {notice.text}",
                  key="ib-connectivity")
    elif kind in ("restored", "restored_data_lost"):
        _publish_status(outbox, ctx, LinkStatus.UP, f"IB connectivity restored ({notice.code})")
        ctx.alert("info", "IB connectivity restored", f"{notice.code}: {notice.text}",
                  key="ib-connectivity")
    elif kind == "competing_session":
        ctx.alert("warning", "Competing IB session", notice.text, key="competing")
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
    """No heartbeat exists in the protocol: ask for the time and treat silence as death."""
    deadline = transport.liveness_deadline
    while not session.lost.is_set():
        await trio.sleep(transport.liveness_interval)
        try:
            with trio.fail_after(deadline):
                await session.probe()
        except trio.TooSlowError:
            session.mark_lost(f"the Gateway stopped answering (no reply to reqCurrentTime "
                              f"within {deadline:g}s)")
        except (ConnectionError, LoopClosed) as exc:
            session.mark_lost(f"liveness probe failed: {exc}")


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
        nursery.start_soon(_handle, session, env, subs, ctx, memory)


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
    except (RequestRejected, ValueError) as exc:
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
    ctx.node.extra["breakers"] = {k: b.snapshot() for k, b in memory.breakers.items()
                                  if b.state is not BreakerState.CLOSED or b.failures}
