"""The supervision tree of the bot: read this file to draw it.

    root                 one_for_one; giving up ends the process non-zero (scheduler restarts)
    ├─ notifier          started first, stopped last: the last alerts get out
    ├─ resource_probe
    ├─ http              the loopback HTTP server: /health, /tree, the operator console; a
    │                    route's bug answers 500, a crash of the server restarts only it
    ├─ mode_guard        restores persisted risk state; never more permissive after a restart
    ├─ order_router      the order ledger survives link restarts; reconciles on every new session
    ├─ brain             rest_for_one: a new Indicators invalidates the selector's inputs
    │   ├─ indicators
    │   └─ strategy_selector
    └─ link              one_for_all: a new Gateway session means new subscriptions; backoff
        │                0.25 s -> 30 s with jitter; past its intensity it never gives up: it
        │                pauses, alerts, and starts over slowly. A failed connect is retried
        │                inside gateway_link (no restart); a restart storm of one cause is one
        │                alert and a long pause (runtime/gateway/restart_storm.py)
        ├─ gateway_link  owns one ib_async session (thread + asyncio loop + IB()) per incarnation
        └─ bar_feed      session-scoped subscriptions; what it must subscribe to and the last bar
                         delivered live outside the subtree and are re-applied on entry

The strategy state (indicators, the selected strategy, positions, risk counters) lives outside
the link subtree, so a Gateway restart never touches it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from actors import (
    bar_feed,
    gateway_link,
    indicators,
    mode_guard,
    notifier,
    order_router,
    resource_probe,
    strategy_selector,
)
from runtime.app.wiring import Wiring
from runtime.gateway.ib_transport import IbAsyncTransport
from runtime.gateway.link_transport import Transport
from runtime.ops.health import serve_ops
from runtime.ops.status_view import StatusView
from runtime.supervision.actor import ActorContext, ActorEnv
from runtime.supervision.channels import Ports
from runtime.supervision.supervisor import (
    Backoff,
    Intensity,
    Strategy,
    SupervisorSpec,
    WhenExhausted,
)

ROOT_INTENSITY = Intensity(max_restarts=5, within=60.0)
BRAIN_INTENSITY = Intensity(max_restarts=5, within=60.0)
LINK_INTENSITY = Intensity(max_restarts=30, within=120.0)
LINK_BACKOFF = Backoff(initial=0.25, maximum=30.0, factor=2.0, jitter=0.2, reset_after=60.0)
LINK_EXHAUSTED_RETRY = 60.0


@dataclass(frozen=True)
class TreeOptions:
    """Every per-actor tuning and stand-in, in one place; None = the production default.

    Tests, the demo and the soak shorten timings or swap the Gateway for the simulated
    transport here, and `build_tree` hands each actor its own as an explicit argument: no
    actor reaches into a shared dict for its configuration.
    """

    transport: Transport | None = None       # the Gateway: ib_async over TCP unless given
    notifier_config: notifier.NotifierConfig | None = None
    probe_config: resource_probe.ProbeConfig | None = None
    probe_sampler: resource_probe.Sampler | None = None   # CPU/RSS/disk readings (psutil)
    guard_tuning: mode_guard.Tuning | None = None
    router_tuning: order_router.Tuning | None = None
    selector_tuning: strategy_selector.Tuning | None = None



def build_tree(w: Wiring, env: ActorEnv, options: TreeOptions | None = None, *,
               link_memory: gateway_link.Memory | None = None, view: StatusView | None = None,
               dump_tree: Callable[[str], dict[str, Any]] | None = None) -> SupervisorSpec:
    """The whole tree, each actor wired to fresh clones of its channels per incarnation.

    `options`: every tuning and stand-in (the Gateway transport: real ib_async over TCP unless
    a test or a simulation hands in another, tools.fake_gateway.sim_transport on a MockClock).
    `link_memory`: GatewayLink's memory, when the caller must reach it (the exhaustion hook).
    `view`: the status read-model (the bot always has one): with it the HTTP server is a child
    too (`dump_tree` answers its /tree), and the Notifier and ResourceProbe read it.
    """
    opts = options or TreeOptions()
    notifier_memory = notifier.Memory()      # the alert drops already reported

    async def start_notifier(ctx: ActorContext, p: Ports, ts: trio.TaskStatus[None]) -> None:
        await notifier.run(ctx, notifier.Inbox(alerts=w.alerts, status=view), notifier.Outbox(),
                           opts.notifier_config, notifier_memory, task_status=ts)

    async def start_probe(ctx: ActorContext, p: Ports, ts: trio.TaskStatus[None]) -> None:
        await resource_probe.run(ctx, resource_probe.Inbox(status=view),
                                 resource_probe.Outbox(resources=w.resources),
                                 opts.probe_config, opts.probe_sampler, task_status=ts)

    async def start_http(ctx: ActorContext, p: Ports, ts: trio.TaskStatus[None]) -> None:
        assert view is not None and dump_tree is not None
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_ops, view, env.journal, p.sender(w.commands),
                                       dump_tree)
            ctx.set_note(f"http://127.0.0.1:{port}" if port else "port taken: retrying")
            ts.started()

    async def start_guard(ctx: ActorContext, p: Ports, ts: trio.TaskStatus[None]) -> None:
        signals = p.receiver(w.signals)      # typed by the channel (EntrySignal), not the inbox
        await mode_guard.run(
            ctx,
            mode_guard.Inbox(signals=signals, order_events=p.receiver(w.order_events),
                             commands=p.receiver(w.commands), link_state=w.link_state,
                             quotes=w.quotes, gameplan=w.gameplan, decision=w.decision),
            mode_guard.Outbox(orders=p.sender(w.orders), trading=w.trading, governor=w.governor,
                              risk=w.risk),
            tuning=opts.guard_tuning, task_status=ts)

    router_process = uuid.uuid4().hex[:8]    # one per process: the ledger's session epochs

    async def start_router(ctx: ActorContext, p: Ports, ts: trio.TaskStatus[None]) -> None:
        await order_router.run(
            ctx,
            order_router.Inbox(orders=p.receiver(w.orders), broker=p.receiver(w.broker_events),
                               link_state=w.link_state, quotes=w.quotes, gameplan=w.gameplan,
                               trading=w.trading),
            order_router.Outbox(order_events=p.sender(w.order_events),
                                link_requests=p.sender(w.link_requests),
                                wanted_quotes=w.wanted_quotes, book=w.book),
            tuning=opts.router_tuning, process_id=router_process,
            task_status=ts)

    # state that outlives the incarnations of the actors using it
    indicator_memory = indicators.Memory()   # ring buffers: a restarted Indicators re-warms

    async def start_indicators(ctx: ActorContext, p: Ports, ts: trio.TaskStatus[None]) -> None:
        await indicators.run(
            ctx, indicators.Inbox(bars=p.receiver(w.bars), gameplan=w.gameplan),
            indicators.Outbox(snapshots=p.sender(w.snapshots)), indicator_memory,
            task_status=ts)

    async def start_selector(ctx: ActorContext, p: Ports, ts: trio.TaskStatus[None]) -> None:
        await strategy_selector.run(
            ctx, strategy_selector.Inbox(snapshots=p.receiver(w.snapshots), vix=w.vix,
                                         governor=w.governor),
            strategy_selector.Outbox(signals=p.sender(w.signals), gameplan=w.gameplan,
                                     decision=w.decision),
            opts.selector_tuning, task_status=ts)

    # outage timing, sessions, client ids, breakers, and why the subtree restarted (storms)
    link_memory = link_memory or gateway_link.Memory()
    # wish list, cursors, disabled symbols; restarts recorded in the same ledger
    feed_memory = bar_feed.Memory(restarts=link_memory.restarts)
    link_transport: Transport = opts.transport or IbAsyncTransport(env.settings.ibkr_host,
                                                                   env.settings.ibkr_port)

    async def start_link(ctx: ActorContext, p: Ports, ts: trio.TaskStatus[None]) -> None:
        await gateway_link.run(
            ctx, gateway_link.Inbox(requests=p.receiver(w.link_requests)),
            gateway_link.Outbox(link_state=w.link_state, notices=p.sender(w.notices),
                                broker=p.sender(w.broker_events)),
            link_memory, link_transport, task_status=ts)

    async def start_feed(ctx: ActorContext, p: Ports, ts: trio.TaskStatus[None]) -> None:
        await bar_feed.run(
            ctx, bar_feed.Inbox(link_state=w.link_state, notices=p.receiver(w.notices),
                                wanted_quotes=w.wanted_quotes),
            bar_feed.Outbox(bars=p.sender(w.bars), link_requests=p.sender(w.link_requests),
                            vix=w.vix, last_bar=w.last_bar, quotes=w.quotes,
                            symbols=w.symbols),
            feed_memory, task_status=ts)

    brain = SupervisorSpec(
        "brain",
        (env.actor("indicators", start_indicators, reads=[w.bars]),
         env.actor("strategy_selector", start_selector, reads=[w.snapshots])),
        strategy=Strategy.REST_FOR_ONE, intensity=BRAIN_INTENSITY)
    link = SupervisorSpec(
        "link",
        (env.actor("gateway_link", start_link, reads=[w.link_requests]),
         env.actor("bar_feed", start_feed, reads=[w.notices])),
        strategy=Strategy.ONE_FOR_ALL, intensity=LINK_INTENSITY, backoff=LINK_BACKOFF,
        when_exhausted=WhenExhausted.PERSIST, exhausted_retry_delay=LINK_EXHAUSTED_RETRY)
    return SupervisorSpec(
        "root",
        (env.actor("notifier", start_notifier, reads=[w.alerts], stop_grace=10.0),
         env.actor("resource_probe", start_probe),
         *((env.actor("http", start_http, stop_grace=3.0),) if view is not None else ()),
         env.actor("mode_guard", start_guard, reads=[w.signals, w.order_events, w.commands]),
         env.actor("order_router", start_router, reads=[w.orders, w.broker_events]),
         brain,
         link),
        strategy=Strategy.ONE_FOR_ONE, intensity=ROOT_INTENSITY)
