"""Every channel of the bot, declared in one place with its policy and its ends.

    BarFeed ──bars──▶ Indicators ──snapshots──▶ StrategySelector ──signals──▶ ModeGuard
    ModeGuard ──orders──▶ OrderRouter ──order_events──▶ ModeGuard
    BarFeed, OrderRouter ──link_requests──▶ GatewayLink ──notices──▶ BarFeed
    GatewayLink ──broker_events──▶ OrderRouter        (order status, fills, commissions)
    anyone ──alerts──▶ Notifier                         (drop-oldest, critical kept)
    operator (health endpoint, kill file) ──commands──▶ ModeGuard
    latest values: link_state (GatewayLink), trading and governor (ModeGuard), vix, last_bar,
    quotes and symbols (BarFeed), wanted_quotes (the option quotes the money path needs),
    gameplan and decision (StrategySelector: today's validated plan, the strategy in force);
    the status read-model book (OrderRouter), risk (ModeGuard), resources (ResourceProbe)

Capacities are generous: a full channel means a consumer is stuck, which the tree dump shows
as a depth, and backpressure then slows the producer rather than losing an order event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from config.gameplan import Gameplan
from messages.alerts import Alert
from messages.brain import EntrySignal, IndicatorSnapshot, StrategyDecision
from messages.control import OperatorCommand, TradingState, TradingStatus
from messages.link import FeedSymbols, GatewayNotice, LinkState, LinkStatus
from messages.market import Bar, BarGap, OptionSpec, Quote, VixReading
from messages.orders import BrokerEvent, OrderCommand, OrderEvent
from messages.status import BookStatus, ResourceStatus, RiskStatus
from runtime.gateway.link_client import Envelope
from runtime.supervision.channels import Channel, DropOldest, Latest

ALERTS_CAPACITY = 256


def _critical(alert: Alert) -> bool:
    return alert.severity == "critical"


class Wiring:
    """Owns the original end of every channel for the life of the program."""

    def __init__(self) -> None:
        self.bars: Channel[Bar | BarGap] = Channel("bars", 4096)
        self.snapshots: Channel[IndicatorSnapshot] = Channel("snapshots", 1024)
        self.signals: Channel[EntrySignal] = Channel("signals", 256)
        self.orders: Channel[OrderCommand] = Channel("orders", 256)
        self.order_events: Channel[OrderEvent] = Channel("order_events", 1024)
        self.link_requests: Channel[Envelope] = Channel("link_requests", 256)
        self.notices: Channel[GatewayNotice] = Channel("notices", 256)
        self.broker_events: Channel[BrokerEvent] = Channel("broker_events", 4096)
        self.commands: Channel[OperatorCommand] = Channel("commands", 64)
        self.alerts: DropOldest[Alert] = DropOldest("alerts", ALERTS_CAPACITY, keep=_critical)
        self.link_state: Latest[LinkState] = Latest(
            "link_state", LinkState(status=LinkStatus.DOWN, reason="not connected yet"))
        self.trading: Latest[TradingStatus] = Latest(
            "trading", TradingStatus(state=TradingState.HALTED, reasons=("starting",)))
        self.vix: Latest[VixReading | None] = Latest("vix", None)
        # the clock time the last live bar arrived (the health endpoint's last_bar_age_s)
        self.last_bar: Latest[dt.datetime | None] = Latest("last_bar", None)
        self.quotes: Latest[Mapping[str, Quote]] = Latest("quotes", {})
        # the bar symbols IB refused (unknown, no permission) and when they are tried again
        self.symbols: Latest[FeedSymbols] = Latest("symbols", FeedSymbols())     # BarFeed
        self.wanted_quotes: Latest[frozenset[OptionSpec]] = Latest("wanted_quotes", frozenset())
        self.gameplan: Latest[Gameplan | None] = Latest("gameplan", None)
        self.decision: Latest[StrategyDecision | None] = Latest("decision", None)
        self.governor: Latest[bool] = Latest("governor", False)   # weekly drawdown governor
        # the status read-model (messages/status.py): one writer each, read by the operator's views
        self.book: Latest[BookStatus | None] = Latest("book", None)           # OrderRouter
        self.risk: Latest[RiskStatus | None] = Latest("risk", None)           # ModeGuard
        self.resources: Latest[ResourceStatus | None] = Latest("resources", None)  # ResourceProbe

    def channels(self) -> list[Channel[Any] | DropOldest[Any] | Latest[Any]]:
        return [self.bars, self.snapshots, self.signals, self.orders, self.order_events,
                self.link_requests, self.notices, self.broker_events, self.commands,
                self.alerts, self.link_state, self.trading, self.vix, self.last_bar,
                self.quotes, self.symbols, self.wanted_quotes, self.gameplan, self.decision,
                self.governor,
                self.book, self.risk, self.resources]

    def depths(self) -> dict[str, int]:
        return {c.name: c.depth() for c in self.channels()}
