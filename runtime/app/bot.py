"""The bot as one trio program: clock, logs, wiring, the supervised tree, orderly shutdown."""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import random
from dataclasses import dataclass
from typing import Any

import trio

from actors import gateway_link
from config.market_calendar import ET
from config.settings import Settings
from runtime.app.app import TreeOptions, build_tree
from runtime.app.os_signals import watch_signals
from runtime.app.wiring import Wiring
from runtime.infra.clock import Clock
from runtime.infra.logs import (
    Journal,
    close_logging_now,
    open_logging,
    register_secret,
    set_log_clock,
)
from runtime.infra.trade_db import DB_FILE, TradeDb
from runtime.ops.status_view import RunState, StatusSources, StatusView
from runtime.supervision.actor import ActorEnv
from runtime.supervision.observe import TreeObserver, dump_periodically
from runtime.supervision.supervisor import Supervisor, SupervisorGaveUp, build_nodes
from runtime.supervision.tree import TreeNode

log = logging.getLogger("runtime")

VERSION = "0.1.0"
EXIT_OK = 0
EXIT_GAVE_UP = 1
EXIT_BAD_SETTINGS = 2

MODE_LINES = {
    "DRY_RUN": "DRY-RUN mode active",
    "PAPER": "Paper trading mode ACTIVE",
    "LIVE": "LIVE trading mode ACTIVE",
}


@dataclass
class BotOptions:
    sim_start: dt.datetime | None = None     # a simulated clock starting here...
    sim_speed: float = 1.0                   # ...running this many times faster than real time
    console: bool = True                     # also log to stderr
    handle_signals: bool = True              # False in tests that run several bots in one process
    # (a bot that handles the signals owns the process: a shutdown stuck on an abandoned task
    # ends the process, see _exit_stuck)
    tree: TreeOptions | None = None          # per-actor tunings and stand-ins (None: production)


@dataclass
class BotHandle:
    """What a running bot exposes to the process around it (CLI, demo, tests). Nothing inside
    the tree reads it: actors and the HTTP server read the status read-model (`status`)."""

    settings: Settings
    clock: Clock
    journal: Journal
    wiring: Wiring
    root: TreeNode
    observer: TreeObserver
    status: StatusView

    @property
    def run(self) -> RunState:
        return self.status.run

    @property
    def started_at(self) -> float:
        return self.status.run.started_at

    @property
    def stop_requested(self) -> trio.Event:
        return self.status.run.stop_requested

    @property
    def stop_reason(self) -> str:
        return self.status.run.stop_reason

    def request_stop(self, reason: str) -> None:
        self.status.run.request_stop(reason)

    def dump_tree(self, reason: str = "request") -> dict[str, Any]:
        return self.observer.dump(reason)


def make_clock(options: BotOptions) -> Clock:
    if options.sim_start is not None:
        clock = Clock(options.sim_start, speed=options.sim_speed)
        clock.follows_gateway = True
        return clock
    return Clock.wall()


async def run_bot(settings: Settings, options: BotOptions | None = None, *,
                  task_status: trio.TaskStatus[BotHandle] = trio.TASK_STATUS_IGNORED) -> int:
    """Run until asked to stop (signal or `BotHandle.request_stop`); returns the exit code."""
    options = options or BotOptions()
    clock = make_clock(options)
    set_log_clock(clock)
    for secret in (settings.discord_webhook_url, settings.live_trading_ack):
        register_secret(secret.get_secret_value() if secret else None)
    with open_logging(log_file=settings.log_file, max_bytes=settings.log_max_bytes,
                      backup_count=settings.log_backup_count, level=settings.log_level,
                      console=options.console, events_file=settings.events_file) as journal:
        return await _run(settings, options, clock, journal, task_status)


def _exit_stuck(journal: Journal, abandoned: list[str], reason: str, clock: Clock,
                handle: BotHandle) -> None:
    """The last step of the hard stop: tasks that ignored their cancellation cannot be killed
    inside trio (it waits for every task), so the process ends without them, logs written out.
    Exit code EXIT_GAVE_UP: the scheduler treats it as a crash and starts a fresh process."""
    log.critical("Shutdown (%s): %s would not stop; ending the process without them",
                 reason, ", ".join(abandoned))
    journal.emit("shutdown", "runtime", reason=reason, exit_code=EXIT_GAVE_UP, clean=False,
                 abandoned=abandoned,
                 uptime_s=round((trio.current_time() - handle.started_at) * clock.speed, 3))
    close_logging_now()
    os._exit(EXIT_GAVE_UP)


def log_startup(settings: Settings, journal: Journal, clock: Clock, options: BotOptions) -> None:
    mode = settings.mode
    log.info("Crucible bot %s starting (pid %d) at %s ET%s", VERSION, os.getpid(),
             clock.now_et().strftime("%Y-%m-%d %H:%M:%S"),
             f" on a simulated clock at {options.sim_speed:g}x" if options.sim_start else "")
    log.info("Configuration loaded: DRY_RUN=%s, PAPER_TRADING=%s",
             "true" if settings.dry_run else "false", "true" if settings.paper_trading else "false")
    log.info("%s", MODE_LINES[mode.value])
    log.info("Settings other than the defaults: %s (all of them: python -m runtime --check)",
             ", ".join(f"{k}={v}" for k, v in non_default_settings(settings).items())
             or "none")
    journal.emit("startup", "runtime", mode=mode.value, settings_hash=settings.settings_hash(),
                 pid=os.getpid(), version=VERSION, sim=options.sim_start is not None,
                 speed=options.sim_speed)


def non_default_settings(settings: Settings) -> dict[str, str]:
    """The redacted settings whose value differs from the default: a start line that fits on
    a screen (the whole list, 600+ characters, is what --check prints)."""
    defaults = type(settings).model_validate({}).redacted()
    return {k: v for k, v in settings.redacted().items() if defaults.get(k) != v}


def next_daily_stop(settings: Settings, now: dt.datetime) -> dt.datetime | None:
    """The first DAILY_STOP_TIME (ET) at least a minute after `now`; None = run until stopped.

    The bot stops itself cleanly once a day, after the close and the scheduled Gateway restart,
    and the scheduler starts it again in the morning: a run never reaches Task Scheduler's 23 h
    execution limit (a hard kill with no shutdown record) and never spans two trading days.
    """
    if settings.daily_stop_time is None:
        return None
    local = now.astimezone(ET)
    stop = dt.datetime.combine(local.date(), settings.daily_stop_time, tzinfo=ET)
    if stop <= local + dt.timedelta(minutes=1):
        stop = dt.datetime.combine(local.date() + dt.timedelta(days=1),
                                   settings.daily_stop_time, tzinfo=ET)
    return stop


def status_view(wiring: Wiring, settings: Settings, clock: Clock,
                journal: Journal) -> StatusView:
    """The status read-model over this run's latest values, tree, journal and trade history."""
    trades: TradeDb | None = None
    try:
        trades = TradeDb(settings.state_dir / DB_FILE)
    except Exception as exc:             # the history is for the operator; trading goes on
        log.error("Trade history %s cannot be opened (%s): /api/trades is unavailable",
                  settings.state_dir / DB_FILE, exc)
    w = wiring
    view = StatusView(
        settings=settings, clock=clock, run=RunState(started_at=trio.current_time()),
        sources=StatusSources(link_state=w.link_state, trading=w.trading, last_bar=w.last_bar,
                              decision=w.decision, gameplan=w.gameplan, vix=w.vix,
                              governor=w.governor, quotes=w.quotes, book=w.book, risk=w.risk,
                              resources=w.resources, symbols=w.symbols,
                              depths=w.depths),
        tree=dict, trades=trades)                 # the tree is bound once it is built
    journal.add_tap(view.events)
    return view


async def _stop_daily(handle: BotHandle) -> None:
    stop = next_daily_stop(handle.settings, handle.clock.now_utc())
    if stop is None:
        return
    log.info("Daily stop scheduled at %s ET (DAILY_STOP_TIME)", f"{stop:%Y-%m-%d %H:%M}")
    await handle.clock.sleep_until(stop)
    handle.request_stop("daily stop (DAILY_STOP_TIME)")


async def _watch_affordability(handle: BotHandle) -> None:
    """At start and on every new gameplan: can any allowed contract fit the budgets? One
    warning with the numbers when not (doctrine/affordability.py), said once per answer."""
    from runtime.app.affordability_note import affordability_warning

    holder = handle.wiring.gameplan.value_holder
    said: str | None = None
    plan = holder.value
    while True:
        reading = handle.wiring.vix.value
        text = affordability_warning(handle.settings, plan,
                                     vix=reading.value if reading is not None else None)
        if text is not None and text != said:
            log.warning("%s", text)
            handle.journal.emit("affordability", "runtime", fits=False, text=text,
                                session_id=getattr(plan, "session_id", None))
        said = text
        plan, _ = await holder.wait_transition()


async def _run(settings: Settings, options: BotOptions, clock: Clock, journal: Journal,
               task_status: trio.TaskStatus[BotHandle]) -> int:
    log_startup(settings, journal, clock, options)
    wiring = Wiring()
    env = ActorEnv(clock=clock, settings=settings, journal=journal, alerts=wiring.alerts)
    observers: list[TreeObserver] = []           # the /tree dump, bound once the tree exists
    view = status_view(wiring, settings, clock, journal)
    link_memory = gateway_link.Memory()
    spec = build_tree(wiring, env, options.tree, link_memory=link_memory, view=view,
                      dump_tree=lambda reason: observers[0].dump(reason))
    root = build_nodes(spec)
    view.tree = root.snapshot

    def link_exhausted(supervisor: TreeNode) -> None:
        """DESIGN: a link subtree past its restart intensity halts trading (a fault) while it
        keeps retrying slowly; GatewayLink (link_state's only writer) says so from its next
        incarnation until a session is up again."""
        if supervisor.path == "root.link":
            link_memory.exhausted = True

    observer = TreeObserver(root, journal, wiring.alerts, clock, on_exhausted=link_exhausted)
    observers.append(observer)
    handle = BotHandle(settings=settings, clock=clock, journal=journal, wiring=wiring, root=root,
                       observer=observer, status=view)
    supervisor = Supervisor(spec, root, hooks=observer, rng=random.Random())
    exit_code = EXIT_OK
    reason = "stopped"
    try:
        async with trio.open_nursery() as nursery:
            if options.handle_signals:
                nursery.start_soon(watch_signals, handle.request_stop,
                                   nursery.cancel_scope.cancel, handle.dump_tree)
            await nursery.start(supervisor.run)
            # everything built at start (modules, the calendar, the tree) lives for the whole
            # run: keep it out of the collector's scans, which otherwise show up as the
            # multi-millisecond p99.9 of the bar path (docs/BENCHMARKS.md)
            gc.freeze()
            observer.dump("start")
            nursery.start_soon(dump_periodically, observer)
            nursery.start_soon(_stop_daily, handle)
            nursery.start_soon(_watch_affordability, handle)
            task_status.started(handle)
            await handle.stop_requested.wait()
            reason = handle.stop_reason
            log.info("Shutting down (%s): stopping actors in reverse start order", reason)
            await supervisor.stop(reason)
            if supervisor.abandoned and options.handle_signals:
                _exit_stuck(journal, supervisor.abandoned, reason, clock, handle)
            nursery.cancel_scope.cancel()
    except* SupervisorGaveUp as group:
        exit_code = EXIT_GAVE_UP
        reason = str(group.exceptions[0])
        log.critical("The supervision tree gave up: %s; exiting with code %d", reason, exit_code)
    uptime = trio.current_time() - handle.started_at
    day = view.day_text()
    journal.emit("shutdown", "runtime", reason=reason, exit_code=exit_code,
                 clean=exit_code == EXIT_OK, uptime_s=round(uptime * clock.speed, 3),
                 day_pnl=view.day_pnl())
    journal.remove_tap(view.events)
    if view.trades is not None:
        view.trades.close()
    log.info("Stopped (%s) after %.0fs; exit code %d%s", reason, uptime, exit_code,
             f"; {day}" if day else "")
    set_log_clock(None)
    return exit_code
