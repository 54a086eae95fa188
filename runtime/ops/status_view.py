"""StatusView: the one typed read-model the operator's views read (HTTP, console, Notifier,
ResourceProbe), instead of reaching into the BotHandle.

It is a window, not a store: the latest values each keep their one writer (GatewayLink writes
`link_state`, ModeGuard `trading`, `risk` and `governor`, OrderRouter `book`, StrategySelector
`decision`, ResourceProbe `resources`...). Reading never blocks and never touches an actor.
Beside them it holds what the process itself knows: when this run started and whether a stop
was asked (RunState), the actor tree (a snapshot function), the journal's recent events
(EventTail, fed by a journal tap) and the trade history (TradeDb).

Clocks, stated once: `bot` seconds are the bot's clock (simulated under --sim-start), `trio`
seconds are the process's own (real) time. Every JSON document that carries a duration names
its clock in a `clock` field.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from config.gameplan import Gameplan
from config.market_calendar import ET
from config.settings import Settings
from messages.brain import StrategyDecision
from messages.control import TradingState, TradingStatus
from messages.link import FeedSymbols, LinkState
from messages.market import Quote, VixReading
from messages.status import BookStatus, ResourceStatus, RiskStatus
from runtime.infra.clock import Clock
from runtime.infra.trade_db import TradeDb
from runtime.supervision.channels import Latest

LINK_GRACE_S = 120.0
"""The link may be down this long (clock seconds) before /health answers 503: a Gateway blip
or a reconnect with backoff is normal. The scheduled daily restart (`expected_outage`) never
counts, however long it takes; GatewayLink alerts separately when it overruns."""

TAIL_EVENTS = 300
"""Recent journal events kept for a page that just opened (the live stream continues it)."""
RESOURCE_POINTS = 120
"""Resource samples kept for the console's small chart."""
SIGNAL_EVENTS = ("signal", "order_rejected", "order_intent", "intent_done", "halt", "resume",
                 "kill_switch", "operator_action")
"""The events the console lists as "last signals and rejections"."""
SIGNALS_KEPT = 30
DAY_PNL_CACHE_S = 1.0


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat().replace(
        "+00:00", "Z")


@dataclass
class RunState:
    """This run of the process: when it started (trio time) and whether a stop was asked."""

    started_at: float
    stop_requested: trio.Event = field(default_factory=trio.Event)
    stop_reason: str = "stop requested"

    def request_stop(self, reason: str) -> None:
        if not self.stop_requested.is_set():
            self.stop_reason = reason
            self.stop_requested.set()


@dataclass(frozen=True)
class StatusSources:
    """The latest values the read-model shows (each has one writer elsewhere)."""

    link_state: Latest[LinkState]
    trading: Latest[TradingStatus]
    last_bar: Latest[dt.datetime | None]
    decision: Latest[StrategyDecision | None]
    gameplan: Latest[Gameplan | None]
    vix: Latest[VixReading | None]
    governor: Latest[bool]
    quotes: Latest[Mapping[str, Quote]]
    book: Latest[BookStatus | None]
    risk: Latest[RiskStatus | None]
    resources: Latest[ResourceStatus | None]
    symbols: Latest[FeedSymbols]         # symbols the Gateway refused (BarFeed)
    depths: Callable[[], dict[str, int]]


class Subscription:
    """One reader's bounded queue of journal events: when full, the oldest goes (and is
    counted). Filling it is O(1) and never waits, so a stalled reader costs no actor time."""

    def __init__(self, capacity: int) -> None:
        self.queue: deque[dict[str, Any]] = deque(maxlen=capacity)
        self.dropped = 0
        self.wake = trio.Event()

    def put(self, event: dict[str, Any]) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1
        self.queue.append(event)
        self.wake.set()

    def take(self) -> list[dict[str, Any]]:
        items = list(self.queue)
        self.queue.clear()
        self.wake = trio.Event()
        return items


class EventTail:
    """The journal tap: recent events, the resource series, signals, and live subscribers.

    A Journal tap: called on the trio thread (when the journal hands a burst's lines over, as
    the loop goes idle); it only appends to bounded deques and sets trio Events."""

    def __init__(self, keep: int = TAIL_EVENTS) -> None:
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self.resources: deque[dict[str, Any]] = deque(maxlen=RESOURCE_POINTS)
        self.signals: deque[dict[str, Any]] = deque(maxlen=SIGNALS_KEPT)
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self._subs: set[Subscription] = set()
        self.seen = 0

    def __call__(self, event: dict[str, Any]) -> None:
        self.seen += 1
        name = event.get("event")
        if name == "tree":                   # large and already on /tree: not streamed
            return
        self.recent.append(event)
        if name == "resource":
            self.resources.append(event)
        elif name in SIGNAL_EVENTS:
            self.signals.append(event)
        for sub in self._subs:
            sub.put(event)
        for listener in self.listeners:
            listener(event)

    def subscribe(self, capacity: int) -> Subscription:
        sub = Subscription(capacity)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def dropped(self) -> list[int]:
        """Events dropped so far for each current subscriber."""
        return [sub.dropped for sub in self._subs]


@dataclass
class StatusView:
    """What the operator's views read. Built once per run by the composition root."""

    settings: Settings
    clock: Clock
    run: RunState
    sources: StatusSources
    tree: Callable[[], dict[str, Any]]
    events: EventTail = field(default_factory=EventTail)
    trades: TradeDb | None = None
    _day_pnl: tuple[float, float] | None = field(default=None, repr=False)

    # -- single facts ---------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.settings.mode.value

    @property
    def mode_words(self) -> str:
        return self.settings.mode.words

    @property
    def link(self) -> LinkState:
        return self.sources.link_state.value

    @property
    def trading(self) -> TradingStatus:
        return self.sources.trading.value

    def uptime_bot_s(self) -> float:
        """Seconds since start on the bot's clock (simulated under --sim-start)."""
        return (trio.current_time() - self.run.started_at) * self.clock.speed

    def day_pnl(self) -> float | None:
        """Today's (ET) realised P&L, net: OrderRouter's book, else the trade history (read at
        most once a second: the console asks twice a second per client)."""
        book = self.sources.book.value
        if book is not None:
            return round(book.realized_pnl_today, 2)
        if self.trades is None:
            return None
        now = trio.current_time()
        if self._day_pnl is None or now - self._day_pnl[0] >= DAY_PNL_CACHE_S:
            try:
                self._day_pnl = (now, self.trades.day_pnl(self.clock.now_et().date()))
            except Exception:            # a reader must never fail its caller
                return None
        return self._day_pnl[1]

    # -- documents ------------------------------------------------------------------------
    def health(self) -> tuple[bool, dict[str, Any]]:
        """The /health document (CONTRACT.md fields first); durations on the bot's clock."""
        now = self.clock.now_utc()
        link, trading, last_bar = self.link, self.trading, self.sources.last_bar.value
        problems: list[str] = []
        link_down_s: float | None = None
        if not link.up:
            since = link.since or self.clock.utc_at(self.run.started_at)
            link_down_s = max(0.0, (now - since).total_seconds())
            if link_down_s > LINK_GRACE_S and not link.expected_outage:
                problems.append(f"Gateway link {link.status.value} for {link_down_s:.0f}s "
                                f"(grace {LINK_GRACE_S:g}s)"
                                + (f": {link.reason}" if link.reason else ""))
        if trading.state is TradingState.HALTED and trading.fault:
            problems.append("trading halted by a fault: " + (", ".join(trading.reasons) or "?"))
        body: dict[str, Any] = {
            "mode": self.mode,
            "trading_state": trading.state.value,
            "link": link.status.value,
            "last_bar_age_s": None if last_bar is None else round(
                max(0.0, (now - last_bar).total_seconds()), 1),
            "uptime_s": round(self.uptime_bot_s(), 1),
            "clock": "bot",
            "healthy": not problems,
            "problems": problems,
            "trading_reasons": list(trading.reasons),
            "trading_fault": trading.fault,
            "link_session": link.session_id,
            "link_since": iso(link.since),
            "link_down_s": None if link_down_s is None else round(link_down_s, 1),
            "link_reason": link.reason,
            "expected_outage": link.expected_outage,
            "now": iso(now),
            "pid": os.getpid(),
            "stopping": self.run.stop_requested.is_set(),
        }
        # a symbol the Gateway refuses (unknown, no permission) trades nothing; the rest do
        body["symbols_unavailable"] = self.symbols_unavailable()
        resources = self.sources.resources.value
        if resources is not None:
            body["resource"] = resources.model_dump(mode="json")
        return not problems, body

    def symbols_unavailable(self) -> list[dict[str, Any]]:
        return [{"symbol": u.symbol, "code": u.code, "reason": u.reason,
                 "since": iso(u.since), "retry_at": iso(u.retry_at)}
                for u in self.sources.symbols.value.unavailable]

    def positions(self) -> dict[str, Any]:
        book = self.sources.book.value
        return {"ts": iso(book.ts) if book else None, "known": book is not None,
                "reconciled": book.reconciled if book else False,
                "positions": [p.model_dump(mode="json") for p in book.positions] if book else []}

    def orders(self) -> dict[str, Any]:
        book = self.sources.book.value
        return {"ts": iso(book.ts) if book else None, "known": book is not None,
                "orders": [o.model_dump(mode="json") for o in book.orders] if book else []}

    def pnl(self) -> dict[str, Any]:
        book, risk = self.sources.book.value, self.sources.risk.value
        return {
            "day": self.clock.now_et().date().isoformat(),
            "realized_today": self.day_pnl(),
            "unrealized": round(book.unrealized_pnl, 2) if book else None,
            "trades_today": book.trades_today if book else None,
            "equity_usd": risk.equity_usd if risk else None,
            "capital_usd": risk.capital_usd if risk else None,
            "limits": [lim.model_dump(mode="json") for lim in risk.limits] if risk else [],
            "governor": risk.governor if risk else self.sources.governor.value,
            "kill_switch": risk.kill_switch if risk else None,
            "source": "book" if book else "trade history" if self.trades else None,
        }

    def status(self) -> dict[str, Any]:
        """Everything the console shows at once (/api/status and the WebSocket's `status`)."""
        _, health = self.health()
        link, trading = self.link, self.trading
        decision = self.sources.decision.value
        vix = self.sources.vix.value
        risk = self.sources.risk.value
        return {
            "mode": self.mode, "mode_words": self.mode_words,
            "now": health["now"], "now_et": self.clock.now_et().strftime("%Y-%m-%d %H:%M:%S"),
            "uptime_s": health["uptime_s"], "clock": "bot", "healthy": health["healthy"],
            "problems": health["problems"], "stopping": health["stopping"],
            "link": link.model_dump(mode="json"),
            "trading": trading.model_dump(mode="json"),
            "risk": risk.model_dump(mode="json") if risk else None,
            "decision": decision.model_dump(mode="json") if decision else None,
            "vix": vix.model_dump(mode="json") if vix else None,
            "last_bar_age_s": health["last_bar_age_s"],
            "symbols_unavailable": health["symbols_unavailable"],
            "positions": self.positions()["positions"],
            "orders": self.orders()["orders"],
            "pnl": self.pnl(),
            "resources": self.resource_series(),
            "signals": list(self.events.signals),
            "channels": self.sources.depths(),
            "tree": self.tree(),             # uptimes in trio (real) seconds
        }

    def resource_series(self) -> list[dict[str, Any]]:
        keys = ("ts", "cpu_pct", "rss_mb", "loop_lag_ms", "log_dir_mb", "disk_free_gb")
        series = [{k: e.get(k) for k in keys} for e in self.events.resources]
        last = self.sources.resources.value
        if last is not None and (not series or series[-1]["ts"] != iso(last.ts)):
            series.append({k: v for k, v in last.model_dump(mode="json").items() if k in keys})
        return series

    def day_text(self) -> str:
        """`2024-02-26 P&L +12.34 USD` for the operator's messages, or '' when unknown."""
        pnl = self.day_pnl()
        return "" if pnl is None else (
            f"{self.clock.now_utc().astimezone(ET):%Y-%m-%d} P&L {pnl:+,.2f} USD")
