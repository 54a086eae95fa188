"""Notifier: tells the operator on Discord, and never at the cost of a bar or an order.

A popular peer bot posted to its webhook from inside its trading loop, so one slow webhook
stalled trading for ~20 s. Here nothing another actor does can wait on Discord:
  * actors hand alerts over with `ctx.alert(...)`, a `send_nowait` on a drop-oldest channel
    that cannot block and cannot fail (critical alerts are never dropped there);
  * a pump task moves each alert at once into a priority lane: critical (never dropped),
    warning, info (both bounded, oldest dropped first with a counter that the next message
    reports; repeats of one `key` waiting in a lane are coalesced into "3× …");
  * ONE sender task talks to Discord: up to 10 alerts per message, paced under Discord's
    limits, short timeouts, retries with backoff on 5xx and network errors, 429 `retry_after`
    honoured, a webhook answering 401/403/404 abandoned (said once in the log);
  * every delivery result is a `notify` journal event. The Notifier's own trouble goes to the
    log only, never through itself: an alert about failing alerts would feed on itself.

It posts the startup message when it starts and the shutdown message when it is stopped. It
is started first and stopped last, and flushes for a few seconds (shielded) when stopped, so
that message, and any critical alert still queued, is the last thing out.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import os
import random
from collections import Counter, OrderedDict, deque
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field

import trio

from config.market_calendar import ET
from messages.alerts import Alert, Severity
from messages.control import TradingStatus
from messages.link import LinkState
from runtime.ops.discord import (
    COLOURS,
    MAX_EMBED_TOTAL,
    MAX_EMBEDS,
    MAX_PER_MINUTE,
    MIN_INTERVAL_S,
    Embed,
    Pacer,
    Timeouts,
    Webhook,
    WebhookReply,
    WebhookUnreachable,
    make_embed,
    webhook_body,
)
from runtime.ops.status_view import StatusView
from runtime.supervision.actor import ActorContext
from runtime.supervision.channels import DropOldest
from runtime.supervision.tree import Gauge

QUEUED = Gauge("notifier_queued", "alerts waiting per lane (critical, warning, info)")
SENT = Gauge("notifier_sent", "alerts the webhook accepted")
LOGGED = Gauge("notifier_logged", "alerts only logged (no webhook, or it is disabled)")
FAILED = Gauge("notifier_failed", "alerts given up after retries")
DROPPED = Gauge("notifier_dropped", "alerts dropped from a full lane (oldest first)")
DISABLED = Gauge("notifier_disabled", "times the webhook was disabled (HTTP 401/403/404)")
REQUESTS = Gauge("notifier_requests", "HTTP requests made to the webhook")


@dataclass(frozen=True)
class NotifierConfig:
    timeouts: Timeouts = field(default_factory=Timeouts)
    shutdown_flush_s: float = 4.0
    """How long the final flush may take. Well inside the Notifier's stop grace (10 s), so a
    dead Discord delays the process exit by at most this much."""
    info_capacity: int = 64
    """Info alerts waiting at most; the oldest goes first (news gets stale)."""
    warning_capacity: int = 128
    max_attempts: int = 4
    """Delivery attempts for an info or warning alert before it is given up (`failed`).
    Critical alerts are retried for as long as the process runs."""
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    startup_link_wait_s: float = 20.0
    """The startup message waits this long at most for the Gateway link to come up, so that
    it can say whether it did (the Notifier starts first, before the link exists)."""
    min_interval_s: float = MIN_INTERVAL_S
    per_minute: int = MAX_PER_MINUTE
    username: str = "Crucible bot"


@dataclass(frozen=True)
class Inbox:
    alerts: DropOldest[Alert]
    status: StatusView | None = None
    """The status read-model: link and trading for the startup message, the stop request and
    the day's P&L for the farewell. None (a benchmark) leaves those fields out."""


@dataclass(frozen=True)
class Outbox:
    """Nothing goes back into the bot: Discord is outside the process."""


@dataclass
class Memory:
    """What outlives an incarnation: how many of the alerts channel's drops were reported, so
    a new incarnation reports exactly those lost while no Notifier was reading."""

    inbox_dropped_seen: int = 0


# -- the lanes ----------------------------------------------------------------------------
@dataclass(eq=False)
class Pending:
    """An alert waiting for delivery; `count` > 1 when repeats of its key were coalesced."""

    alert: Alert
    key: Hashable
    first_ts: dt.datetime
    count: int = 1
    attempts: int = 0
    last: bool = False        # goes after everything else (the farewell)
    first: bool = False       # goes before everything else (the startup message)

    def merge(self, newer: Pending) -> None:
        """Fold a later occurrence of the same condition into this one (the newest text wins)."""
        self.count += newer.count
        self.alert = newer.alert
        self.attempts = max(self.attempts, newer.attempts)


class Lanes:
    """Critical, warning and info alerts waiting for the sender, highest severity first.

    Critical alerts are never dropped (the lane grows as needed). Warning and info lanes are
    bounded: past capacity the oldest goes, counted in `dropped` and `unreported_drops` (the
    next message tells the operator). Alerts with the same `key` coalesce while they wait.
    """

    def __init__(self, info_capacity: int, warning_capacity: int) -> None:
        self._first: deque[Pending] = deque()
        self._critical: deque[Pending] = deque()
        self._last: deque[Pending] = deque()
        self._bounded: dict[str, OrderedDict[Hashable, Pending]] = {
            "warning": OrderedDict(), "info": OrderedDict()}
        self._capacity = {"warning": warning_capacity, "info": info_capacity}
        self._ids = itertools.count()
        self.dropped: Counter[str] = Counter()
        self.unreported_drops = 0

    def __len__(self) -> int:
        return (len(self._first) + len(self._critical) + len(self._last)
                + sum(len(lane) for lane in self._bounded.values()))

    def depths(self) -> dict[str, int]:
        return {"critical": len(self._critical),
                **{name: len(lane) for name, lane in self._bounded.items()}}

    def put(self, alert: Alert) -> list[Pending]:
        """Queue `alert`; returns what had to be dropped to make room (for the journal)."""
        key: Hashable = ("key", alert.key) if alert.key else ("id", next(self._ids))
        pending = Pending(alert=alert, key=key, first_ts=alert.ts)
        if alert.severity == "critical":
            self._critical.append(pending)
            return []
        lane = self._bounded[self._lane_name(alert.severity)]
        if key in lane:
            lane[key].merge(pending)
            return []
        lane[key] = pending
        dropped: list[Pending] = []
        while len(lane) > self._capacity[self._lane_name(alert.severity)]:
            _, oldest = lane.popitem(last=False)
            dropped.append(oldest)
            self.dropped[oldest.alert.severity] += oldest.count
            self.unreported_drops += oldest.count
        return dropped

    def put_first(self, alert: Alert) -> None:
        """Queue `alert` ahead of everything, whatever its severity (the startup message:
        the operator reads every later alert in its context)."""
        self._first.append(Pending(alert=alert, key=("first", next(self._ids)),
                                   first_ts=alert.ts, first=True))

    def put_last(self, alert: Alert) -> None:
        """Queue `alert` behind everything else, whatever its severity (the farewell)."""
        self._last.append(Pending(alert=alert, key=("last", next(self._ids)),
                                  first_ts=alert.ts, last=True))

    def pop(self) -> Pending | None:
        if self._first:
            return self._first.popleft()
        if self._critical:
            return self._critical.popleft()
        for name in ("warning", "info"):
            lane = self._bounded[name]
            if lane:
                return lane.popitem(last=False)[1]
        if self._last:
            return self._last.popleft()
        return None

    def push_front(self, pending: Pending) -> None:
        """Put back an alert that could not go yet, ahead of the ones that came after it.

        A lane may exceed its capacity by the alerts put back; the next `put` trims it.
        """
        if pending.last:
            self._last.appendleft(pending)
            return
        if pending.first:
            self._first.appendleft(pending)
            return
        if pending.alert.severity == "critical":
            self._critical.appendleft(pending)
            return
        lane = self._bounded[self._lane_name(pending.alert.severity)]
        newer = lane.pop(pending.key, None)
        if newer is not None:
            pending.merge(newer)
        lane[pending.key] = pending
        lane.move_to_end(pending.key, last=False)

    def drain(self) -> Iterator[Pending]:
        while (p := self.pop()) is not None:
            yield p

    @staticmethod
    def _lane_name(severity: Severity) -> str:
        return "warning" if severity == "warning" else "info"


# -- rendering ----------------------------------------------------------------------------
def et_text(when: dt.datetime) -> str:
    return when.astimezone(ET).strftime("%Y-%m-%d %H:%M:%S ET")


_TITLE_PREFIX: dict[str, str] = {"critical": "CRITICAL: ", "warning": "Warning: ", "info": ""}


def render_embed(p: Pending) -> Embed:
    """One alert as an embed: colour by severity, repeats as "3× …", ET time in the footer."""
    a = p.alert
    title = f"{_TITLE_PREFIX.get(a.severity, '')}{f'{p.count}× ' if p.count > 1 else ''}{a.title}"
    footer = f"{a.source or 'bot'} · {et_text(a.ts)}"
    if p.count > 1:
        footer += f" · first {et_text(p.first_ts)}"
    return make_embed(title, a.text, colour=COLOURS.get(a.severity, COLOURS["info"]),
                      timestamp=a.ts, fields=list(a.fields.items()), footer=footer)


def summary_line(p: Pending) -> str:
    """The alert as one log line (what would have been posted)."""
    a = p.alert
    head = f"[{a.severity.upper()}] {f'{p.count}x ' if p.count > 1 else ''}{a.title}"
    text = f": {a.text}" if a.text else ""
    extra = "".join(f" | {k}: {v}" for k, v in a.fields.items())
    return f"{head}{text}{extra}"


def link_text(state: LinkState) -> str:
    if state.up:
        accounts = ", ".join(state.accounts) or "no accounts"
        return f"{state.status.value}: session {state.session_id} ({accounts})"
    reason = f" ({state.reason})" if state.reason else ""
    return f"{state.status.value}{reason}"


def trading_text(status: TradingStatus) -> str:
    reasons = f" ({', '.join(status.reasons)})" if status.reasons else ""
    return f"{status.state.value}{reasons}"


def _is_cancellation(exc: BaseException) -> bool:
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_cancellation(e) for e in exc.exceptions)
    return False


# -- the actor ----------------------------------------------------------------------------
@dataclass
class _Stats:
    sent: int = 0
    logged: int = 0
    failed: int = 0
    disabled: int = 0
    dropped: int = 0
    requests: int = 0


class Notifier:
    """One incarnation's state: the lanes, the pacer, the webhook and what it has done."""

    def __init__(self, ctx: ActorContext, inbox: Inbox, config: NotifierConfig,
                 url: str | None, memory: Memory | None = None) -> None:
        self.ctx = ctx
        self.memory = memory or Memory()
        self.inbox = inbox
        self.config = config
        self._url = url
        self.lanes = Lanes(config.info_capacity, config.warning_capacity)
        self.pacer = Pacer(min_interval=config.min_interval_s, per_minute=config.per_minute)
        self.stats = _Stats()
        self.disabled_status: int | None = None
        self._webhook: Webhook | None = None
        self._wake = trio.Event()
        self._failing_since: float | None = None
        self._failures = 0
        self._rng = random.Random()
        self._log: logging.Logger = ctx.log
        self._started = ctx.clock.now_utc()
        self._startup_due = True
        self._startup_queued = trio.Event()     # the sender waits for the startup message

    # -- life ---------------------------------------------------------------------------
    async def run(self, task_status: trio.TaskStatus[None]) -> None:
        async with contextlib.AsyncExitStack() as stack:
            if self._url:
                self._webhook = await stack.enter_async_context(
                    Webhook(self._url, self.config.timeouts))
            else:
                self._log.info("DISCORD_WEBHOOK_URL is not set: notifications go to this log "
                               "only")
            self._show()
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump)
                    nursery.start_soon(self._sender)
                    if self.ctx.incarnation == 1:
                        nursery.start_soon(self._announce_start)
                    else:
                        self._startup_due = False
                        self._startup_queued.set()
                        self._log.info("Notifier restarted (incarnation %d)",
                                       self.ctx.incarnation)
                    task_status.started()
            except BaseException as exc:
                await self._flush(self._farewell_alert() if _is_cancellation(exc) else None)
                raise

    async def _announce_start(self) -> None:
        """The startup message, once the Gateway link has a say (or after a short wait).

        The Notifier starts before every other actor, so at its start the link is always
        "not connected yet"; the operator wants to know whether it came up.
        """
        view = self.inbox.status
        if view is not None:
            with trio.move_on_after(self.config.startup_link_wait_s):
                await view.sources.link_state.wait_value(
                    lambda state: state.up or state.login_pending)
                # and ModeGuard has seen it: never "Gateway: up | Trading: (link down)"
                await view.sources.trading.wait_value(
                    lambda t: not any("link down" in r for r in t.reasons))
        self._queue_startup()

    def _queue_startup(self) -> None:
        self.lanes.put_first(self._startup_alert())
        self._startup_queued.set()
        self._wake.set()

    def _startup_alert(self) -> Alert:
        self._startup_due = False
        s = self.ctx.settings
        fields = {"Mode": s.mode.words, "Settings hash": s.settings_hash(),
                  "PID": str(os.getpid())}
        view = self.inbox.status
        if view is not None:
            fields["Gateway"] = link_text(view.link)
            fields["Trading"] = trading_text(view.trading)
        return Alert(severity="info", title=f"Bot started in {s.mode.words} mode at "
                                            f"{et_text(self._started)}",
                     text="", source=self.ctx.path, ts=self._started, key="startup",
                     fields=fields)

    def _farewell_alert(self) -> Alert:
        view = self.inbox.status
        requested = bool(view is not None and view.run.stop_requested.is_set())
        reason = view.run.stop_reason if requested and view is not None else (
            "the supervision tree is stopping")
        now = self.ctx.clock.now_utc()
        fields = {"Mode": self.ctx.settings.mode.words}
        if view is not None:
            fields["Uptime"] = _duration(view.uptime_bot_s())
            pnl = view.day_pnl()
            if pnl is not None:
                fields["P&L today"] = f"{pnl:+,.2f} USD"
        return Alert(severity="info" if requested else "warning",
                     title=f"Bot stopped ({reason}) at {et_text(now)}", text="",
                     source=self.ctx.path, ts=now, key="shutdown", fields=fields)

    # -- intake -------------------------------------------------------------------------
    async def _pump(self) -> None:
        async for alert in self.inbox.alerts:
            self._accept(alert)

    def _accept(self, alert: Alert) -> None:
        self._account_inbox_drops()
        if alert.severity == "debug":
            return
        for lost in self.lanes.put(alert):
            self._journal(lost, "dropped", None)
            self.stats.dropped += lost.count
        self._wake.set()
        self._show()

    def _account_inbox_drops(self) -> None:
        """Alerts dropped by the channel itself (only while no Notifier was reading it)."""
        seen = self.memory.inbox_dropped_seen
        now = self.inbox.alerts.dropped
        if now > seen:
            self.memory.inbox_dropped_seen = now
            self.lanes.unreported_drops += now - seen
            self.stats.dropped += now - seen
            self.ctx.emit("notify", severity="unknown", title="(dropped before the Notifier "
                          "read it)", outcome="dropped", status=None, count=now - seen)

    def _drain_inbox(self) -> None:
        while True:
            try:
                alert = self.inbox.alerts.receive_nowait()
            except trio.WouldBlock:
                return
            self._accept(alert)

    # -- sending ------------------------------------------------------------------------
    async def _sender(self) -> None:
        await self._startup_queued.wait()    # nothing goes out before "Bot started in ... mode"
        while True:
            while not self.lanes:
                self._wake = trio.Event()
                await self._wake.wait()
            if self._posting:
                await trio.sleep(self.pacer.delay(trio.current_time()))
            batch = self._take_batch()
            if await self._deliver(batch) == "retry":
                await trio.sleep(self._backoff())

    @property
    def _posting(self) -> bool:
        return self._webhook is not None and self.disabled_status is None

    def _take_batch(self) -> list[tuple[Pending, Embed]]:
        """Up to 10 alerts, highest severity first, within the 6000-character message budget
        (less one slot and its size for the "alerts dropped" note when there is one to tell;
        the note waits if the first alert alone needs the room)."""
        batch: list[tuple[Pending, Embed]] = []
        note = (self._drop_note(self.lanes.unreported_drops).size()
                if self.lanes.unreported_drops and self._posting else 0)
        total = 0
        while len(batch) < MAX_EMBEDS - (1 if note else 0):
            p = self.lanes.pop()
            if p is None:
                break
            embed = render_embed(p)
            if batch and total + embed.size() + note > MAX_EMBED_TOTAL:
                self.lanes.push_front(p)
                break
            batch.append((p, embed))
            total += embed.size()
        return batch

    async def _deliver(self, batch: list[tuple[Pending, Embed]]) -> str:
        """Deliver one batch; returns "done", "retry" (back off first) or "paced"."""
        if not batch:
            return "done"
        if self._webhook is None:
            for p, _ in batch:
                # an alert raised elsewhere was logged there (ctx.alert): once is enough for
                # the operator; the Notifier's own start/stop messages are logged only here
                own = p.alert.source == self.ctx.path and p.alert.key in ("startup", "shutdown")
                self._log.log(logging.INFO if own else logging.DEBUG,
                              "Notification (no webhook configured): %s", summary_line(p))
                self._journal(p, "logged", None)
            return "done"
        if self.disabled_status is not None:
            self._abandon(batch, "disabled", self.disabled_status)
            return "done"
        embeds = [e for _, e in batch]
        drops = self.lanes.unreported_drops
        if drops:
            note = self._drop_note(drops)
            if len(embeds) < MAX_EMBEDS and (
                    sum(e.size() for e in embeds) + note.size() <= MAX_EMBED_TOTAL):
                embeds.insert(0, note)
            else:
                drops = 0         # told with the next message
        body = webhook_body(embeds, username=self.config.username)
        self.pacer.sent(trio.current_time())
        self.stats.requests += 1
        try:
            reply = await self._webhook.post(body)
        except WebhookUnreachable as exc:
            return self._failed_attempt(batch, None, str(exc))
        except BaseException:
            self._put_back(batch)   # cancelled mid-request: the flush sends them
            raise
        self.pacer.answered(trio.current_time(), reply)
        if reply.ok:
            self.lanes.unreported_drops -= drops
            self._recovered()
            for p, _ in batch:
                self._journal(p, "sent", reply.status)
            return "done"
        if reply.status == 429:
            self._log.debug("Discord rate limit: retry after %.2fs", reply.retry_after or 1.0)
            self._put_back(batch)
            return "paced"
        if reply.dead:
            self._disable(reply)
            self._abandon(batch, "disabled", reply.status)
            return "done"
        if reply.retryable:
            return self._failed_attempt(batch, reply.status, f"HTTP {reply.status}")
        self._log.error("Discord refused a message (HTTP %d%s): %d alert(s) not delivered",
                        reply.status, f": {reply.detail}" if reply.detail else "", len(batch))
        self._abandon(batch, "failed", reply.status)
        return "done"

    def _failed_attempt(self, batch: list[tuple[Pending, Embed]], status: int | None,
                        why: str) -> str:
        """A 5xx or no answer: count the attempt, keep what may still go, back off."""
        self._failures += 1
        if self._failing_since is None:
            self._failing_since = trio.current_time()
            self._log.warning("Discord delivery failed (%s); retrying with backoff, %d alert(s) "
                              "queued", why, len(self.lanes) + len(batch))
        else:
            self._log.debug("Discord delivery failed again (%s), failure %d", why,
                            self._failures)
        keep: list[tuple[Pending, Embed]] = []
        for p, e in batch:
            p.attempts += 1
            if p.alert.severity == "critical" or p.attempts < self.config.max_attempts:
                keep.append((p, e))
            else:
                self._give_up(p, "failed", status)
        self._put_back(keep)
        return "retry"

    def _recovered(self) -> None:
        if self._failing_since is not None:
            self._log.info("Discord reachable again after %d failed attempt(s) over %.0fs",
                           self._failures, trio.current_time() - self._failing_since)
        self._failing_since = None
        self._failures = 0

    def _backoff(self) -> float:
        base = min(self.config.backoff_max_s,
                   self.config.backoff_initial_s * 2.0 ** min(self._failures - 1, 30))
        return base * self._rng.uniform(0.8, 1.2)

    def _disable(self, reply: WebhookReply) -> None:
        self.disabled_status = reply.status
        self._log.error("The Discord webhook answered HTTP %d%s: it is deleted or its token is "
                        "wrong, so it is no longer used; notifications go to this log only. "
                        "Fix DISCORD_WEBHOOK_URL and restart.", reply.status,
                        f" ({reply.detail})" if reply.detail else "")

    def _abandon(self, batch: list[tuple[Pending, Embed]], outcome: str,
                 status: int | None) -> None:
        for p, _ in batch:
            self._give_up(p, outcome, status)

    def _give_up(self, p: Pending, outcome: str, status: int | None) -> None:
        if p.alert.severity == "critical":
            self._log.error("Critical alert NOT delivered to Discord (%s%s): %s", outcome,
                            f", HTTP {status}" if status else "", summary_line(p))
        self._journal(p, outcome, status)

    def _put_back(self, batch: list[tuple[Pending, Embed]]) -> None:
        for p, _ in reversed(batch):
            self.lanes.push_front(p)
        self._show()

    def _drop_note(self, drops: int) -> Embed:
        by = ", ".join(f"{n} {sev}" for sev, n in sorted(self.lanes.dropped.items()))
        return make_embed(f"{drops} alert(s) dropped: the queue was full",
                          f"Dropped so far: {by or drops}. They are in the log.",
                          colour=COLOURS["warning"], timestamp=self.ctx.clock.now_utc())

    # -- the last word ------------------------------------------------------------------
    async def _flush(self, farewell: Alert | None) -> None:
        """Shielded and bounded: what is queued (critical first), then the farewell."""
        deadline = trio.current_time() + self.config.shutdown_flush_s
        with trio.CancelScope(shield=True, deadline=deadline):
            self._drain_inbox()
            if self._startup_due:         # stopped before the link had its say
                self._queue_startup()
            if farewell is not None:
                self.lanes.put_last(farewell)
            while self.lanes:
                if self._posting:
                    wait = self.pacer.delay(trio.current_time())
                    if trio.current_time() + wait >= deadline:
                        break
                    await trio.sleep(wait)
                outcome = await self._deliver(self._take_batch())
                if outcome == "retry":
                    await trio.sleep(min(0.5, self._backoff()))
        for p in self.lanes.drain():   # out of time (or cancelled): on record, not lost silently
            self._give_up(p, "failed", None)
        self._show()

    # -- records ------------------------------------------------------------------------
    def _journal(self, p: Pending, outcome: str, status: int | None) -> None:
        counter = {"sent": "sent", "logged": "logged", "failed": "failed",
                   "disabled": "disabled"}.get(outcome)
        if counter:
            setattr(self.stats, counter, getattr(self.stats, counter) + p.count)
        self.ctx.emit("notify", severity=p.alert.severity, title=p.alert.title,
                      outcome=outcome, status=status, count=p.count, attempts=p.attempts,
                      source=p.alert.source)
        self._show()

    def _show(self) -> None:
        """The Notifier's line in the tree dump, and its counters for /tree."""
        s = self.stats
        mode = ("no webhook: log only" if self._webhook is None else
                f"webhook disabled (HTTP {self.disabled_status})"
                if self.disabled_status is not None else "webhook")
        self.ctx.set_note(f"{mode}; queued {len(self.lanes)}, sent {s.sent}, "
                          f"failed {s.failed}, dropped {s.dropped}")
        for gauge, value in ((QUEUED, self.lanes.depths()), (SENT, s.sent), (LOGGED, s.logged),
                             (FAILED, s.failed), (DROPPED, s.dropped), (DISABLED, s.disabled),
                             (REQUESTS, s.requests)):
            self.ctx.gauge(gauge, value)


def _duration(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600}h{(s % 3600) // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


async def run(ctx: ActorContext, inbox: Inbox, outbox: Outbox,
              config: NotifierConfig | None = None, memory: Memory | None = None, *,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    config = config or NotifierConfig()
    secret = ctx.settings.discord_webhook_url
    notifier = Notifier(ctx, inbox, config, secret.get_secret_value() if secret else None,
                        memory)
    await notifier.run(task_status)
